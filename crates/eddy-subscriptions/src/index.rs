//! The match index: which triggers an event fires. Triggers are grouped by source, so matching
//! an event costs time in proportion to the triggers on its source, not to all triggers.

use std::collections::HashMap;

use eddy_core::{Event, Source};

use crate::app::{App, TriggerSpec};
use crate::filter::{Clause, EventView};

#[derive(Clone, Debug, Default)]
pub struct MatchIndex {
    triggers: Vec<TriggerSpec>,
    by_source: HashMap<Source, Vec<usize>>,
}

/// Why a trigger did or did not fire for an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    pub trigger: String,
    pub function: String,
    pub matched: bool,
    /// The trigger's own clauses in order: enabled, event type, then the filter's.
    pub clauses: Vec<Clause>,
}

impl MatchIndex {
    pub fn new(app: &App) -> Self {
        let mut by_source: HashMap<Source, Vec<usize>> = HashMap::new();
        for (i, t) in app.triggers.iter().enumerate() {
            by_source.entry(t.source.clone()).or_default().push(i);
        }
        Self {
            triggers: app.triggers.clone(),
            by_source,
        }
    }

    fn on_source<'a>(&'a self, source: &Source) -> impl Iterator<Item = &'a TriggerSpec> {
        self.by_source
            .get(source)
            .into_iter()
            .flatten()
            .map(|i| &self.triggers[*i])
    }

    /// Every enabled trigger that fires for `event`; none blocks another.
    pub fn matching(&self, event: &Event) -> Vec<&TriggerSpec> {
        let view = EventView::new(event);
        self.on_source(&event.source)
            .filter(|t| t.enabled && t.events.contains(event.kind) && t.filter.matches(&view))
            .collect()
    }

    /// Each trigger on the event's source, with the outcome of each of its clauses.
    pub fn explain(&self, event: &Event) -> Vec<Explanation> {
        let view = EventView::new(event);
        self.on_source(&event.source)
            .map(|t| {
                let mut clauses = vec![
                    Clause {
                        clause: "enabled".into(),
                        passed: t.enabled,
                        detail: format!("enabled: {}", t.enabled),
                    },
                    Clause {
                        clause: format!(
                            "event type one of [{}]",
                            t.events
                                .kinds()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        passed: t.events.contains(event.kind),
                        detail: format!("event type {}", event.kind),
                    },
                ];
                clauses.extend(t.filter.explain(&view));
                Explanation {
                    trigger: t.name.clone(),
                    function: t.function.to_string(),
                    matched: clauses.iter().all(|c| c.passed),
                    clauses,
                }
            })
            .collect()
    }

    pub fn triggers(&self) -> &[TriggerSpec] {
        &self.triggers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{ManifestText, load};
    use eddy_core::{BucketName, EventId, EventKind, Lineage};
    use serde_json::json;

    fn app() -> App {
        let text = "buckets: [{name: photos}, {name: other}]\nfunctions: [{name: a, runtime: in_process}, {name: b, runtime: in_process}]\ntriggers:\n  - {name: jpg, function: a, source: bucket/photos, events: [object:created], filter: {suffix: [.jpg]}}\n  - {name: all, function: b, source: bucket/photos, events: [\"*\"]}\n  - {name: off, function: b, source: bucket/photos, events: [\"*\"], enabled: false}\n  - {name: elsewhere, function: a, source: bucket/other, events: [\"*\"]}\n";
        let dir = std::env::temp_dir();
        let loaded = load(&[ManifestText {
            name: "app.yaml",
            text,
            dir: &dir,
        }]);
        loaded.app.unwrap_or_else(|| panic!("{}", loaded.findings))
    }

    fn put(key: &str) -> Event {
        Event {
            seq: 1,
            id: EventId::generate(),
            source: Source::Bucket(BucketName::new("photos").unwrap()),
            kind: EventKind::ObjectCreatedPut,
            key: key.into(),
            time_ms: 0,
            payload: json!({"size": 1, "etag": "x"}),
            lineage: Lineage::root(),
        }
    }

    #[test]
    fn every_matching_trigger_fires() {
        let index = MatchIndex::new(&app());
        let names = |e: &Event| {
            index
                .matching(e)
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&put("a.jpg")), ["jpg", "all"]);
        assert_eq!(names(&put("a.png")), ["all"]);
    }

    #[test]
    fn explanations_name_the_failed_clause() {
        let index = MatchIndex::new(&app());
        let why = index.explain(&put("a.png"));
        assert_eq!(
            why.len(),
            3,
            "only triggers on the event's source are considered"
        );
        let jpg = &why[0];
        assert!(!jpg.matched);
        let failed: Vec<_> = jpg.clauses.iter().filter(|c| !c.passed).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].clause, "suffix one of [\".jpg\"]");
        assert_eq!(failed[0].detail, "key \"a.png\"");
        assert!(!why[2].matched && !why[2].clauses[0].passed, "disabled");
    }
}
