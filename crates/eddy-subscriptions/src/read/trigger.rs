//! Reading a trigger: its source, event types, filter, retries, ordering, format, batching
//! and failure destination.

use super::*;

const TRIGGER: [&str; 12] = [
    "name",
    "function",
    "source",
    "events",
    "filter",
    "retry",
    "ordering",
    "format",
    "enabled",
    "on_failure",
    "backfill",
    "batch",
];
const BATCH: [&str; 5] = [
    "size",
    "window",
    "parallel",
    "bisect_on_error",
    "report_failures",
];
const OBJECT_FILTER: [&str; 3] = ["prefix", "suffix", "size"];
const SIZE_RANGE: [&str; 2] = ["min", "max"];
const TEST_KEYS: [&str; 6] = ["anything_but", "exists", "gt", "gte", "lt", "lte"];

impl Reader<'_> {
    pub(super) fn trigger(&mut self, node: &Node) -> Option<TriggerDraft> {
        let f = self.fields(
            node,
            &label(node, "trigger"),
            &TRIGGER,
            &["function", "source", "events"],
        )?;
        let function = f
            .get("function")
            .and_then(|n| Some((self.name(n, "function", FunctionName::new)?, n.pos)));
        let source = f.get("source").and_then(|n| Some((self.source(n)?, n.pos)));
        let events = match (f.get("events"), &source) {
            (Some(n), Some((s, _))) => self.events(n, s),
            _ => None,
        };
        let mut columns = Vec::new();
        let filter = match (f.get("filter"), &source) {
            (None, _) => Some(Filter::None),
            (Some(n), Some((s, _))) => self.filter(n, s, &mut columns),
            (Some(_), None) => None,
        };
        let retry = match f.get("retry") {
            Some(n) => self.retry(n),
            None => Some(RetryPolicy::default()),
        };
        let batch = match (f.get("batch"), &source) {
            (None, _) => Some(None),
            (Some(n), Some((s, _))) => self.batch(n, s).map(Some),
            (Some(_), None) => None,
        };
        let ordering = match f.get("ordering") {
            Some(n) => self.choice(
                n,
                "ordering",
                &[
                    ("per_key", Ordering::PerKey),
                    ("unordered", Ordering::Unordered),
                ],
            ),
            // A batched table trigger is a stream: each key's records in order, and a failing
            // one holds back those after it.
            None => Some(match (&batch, &source) {
                (Some(Some(_)), Some((eddy_core::Source::Table(_), _))) => Ordering::PerKey,
                _ => Ordering::default(),
            }),
        };
        let format = match f.get("format") {
            Some(n) => self.choice(
                n,
                "format",
                &[("aws", Format::Aws), ("plain", Format::Plain)],
            ),
            None => Some(Format::default()),
        };
        let enabled = match f.get("enabled") {
            Some(n) => self.boolean(n, "enabled"),
            None => Some(true),
        };
        let name = match f.get("name") {
            Some(n) => self.trigger_name(n).ok_or(()),
            None => Ok(None),
        };
        let backfill = match f.get("backfill") {
            Some(n) => self.boolean(n, "backfill"),
            None => Some(false),
        };
        let on_failure = match (f.get("on_failure"), &source) {
            (None, _) => Some(None),
            (Some(n), Some((eddy_core::Source::Table(_), _))) => {
                let from = function.as_ref().map(|(f, _)| f);
                self.destination(n, "on_failure", from).map(Some)
            }
            (Some(n), Some(_)) => {
                self.error(n.pos, "`on_failure` is for table triggers")
                    .note("an object trigger's deliveries are asynchronous invocations: their failures go to the function's `destinations: {on_failure: …}`");
                None
            }
            (Some(_), None) => None,
        };
        let at = self.origin(f.pos);
        let spec = (|| {
            Some(TriggerSpec {
                name: name.clone().ok()?.unwrap_or_default(),
                function: function.clone()?.0,
                source: source.clone()?.0,
                events: events?,
                filter: filter?,
                retry: retry?,
                ordering: ordering?,
                format: format?,
                enabled: enabled?,
                on_failure: on_failure.clone()?,
                backfill: backfill?,
                batch: batch?,
                at: at.clone(),
            })
        })();
        Some(TriggerDraft {
            spec,
            name: name.ok().flatten(),
            function,
            source,
            columns,
            at,
        })
    }

    fn trigger_name(&mut self, node: &Node) -> Option<Option<String>> {
        let name = self.string(node, "name")?;
        let ok = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            self.error(node.pos, format!("invalid trigger name {name:?}"))
                .note("expected: 1 to 64 letters, digits, `-`, `_` or `.`");
            return None;
        }
        Some(Some(name))
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        node: &Node,
        what: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let text = self.string(node, what)?;
        if let Some((_, value)) = options.iter().find(|(name, _)| *name == text) {
            return Some(*value);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let finding = self
            .error(node.pos, format!("unknown {what} `{text}`"))
            .suggest(did_you_mean(&text, names.iter().copied()));
        finding.note(format!("expected one of: {}", names.join(", ")));
        None
    }

    fn source(&mut self, node: &Node) -> Option<eddy_core::Source> {
        let text = self.string(node, "source")?;
        let parsed = match text.split_once('/') {
            Some((kind @ ("bucket" | "table"), name)) => {
                eddy_core::Source::from_parts(kind, name).map_err(Some)
            }
            _ => Err(None),
        };
        match parsed {
            Ok(source) => Some(source),
            Err(reason) => {
                let finding = self.error(node.pos, format!("invalid source `{text}`"));
                if let Some(reason) = reason {
                    finding.note(reason);
                }
                finding.note("expected: bucket/NAME or table/NAME");
                None
            }
        }
    }

    fn events(&mut self, node: &Node, source: &eddy_core::Source) -> Option<EventSet> {
        let patterns = self.strings_at(node, "events")?;
        if patterns.is_empty() {
            self.error(node.pos, "`events` is empty")
                .note("expected: at least one event type, like object:created or row:insert");
            return None;
        }
        let (family, all) = match source {
            eddy_core::Source::Table(_) => ("row:", EventSet::pattern("row:*")),
            _ => ("object:", EventSet::pattern("object:*")),
        };
        let mut set = EventSet::default();
        let mut ok = true;
        for (pattern, pos) in patterns {
            let names = EVENT_PATTERNS.iter().map(|(p, _)| *p);
            match EventSet::pattern(&pattern) {
                Some(_) if pattern == "*" => set = set.union(all.expect("listed")),
                Some(kinds) if pattern.starts_with(family) => set = set.union(kinds),
                Some(_) => {
                    self.error(pos, format!("`{pattern}` events never come from {source}"))
                        .note(format!("expected: {family}… events for this source"));
                    ok = false;
                }
                None => {
                    let finding = self
                        .error(pos, format!("unknown event type `{pattern}`"))
                        .suggest(did_you_mean(&pattern, names.clone()));
                    finding.note(format!(
                        "expected one of: {}",
                        names.collect::<Vec<_>>().join(", ")
                    ));
                    ok = false;
                }
            }
        }
        ok.then_some(set)
    }

    fn filter(
        &mut self,
        node: &Node,
        source: &eddy_core::Source,
        columns: &mut Vec<(String, Pos)>,
    ) -> Option<Filter> {
        match source {
            eddy_core::Source::Table(_) => self.row_filter(node, columns).map(Filter::Row),
            _ => self.object_filter(node).map(Filter::Object),
        }
    }

    fn object_filter(&mut self, node: &Node) -> Option<ObjectFilter> {
        let f = self.fields(node, "an object filter", &OBJECT_FILTER, &[])?;
        let mut filter = ObjectFilter::default();
        if let Some(n) = f.get("prefix") {
            filter.prefixes = self.strings(n, "prefix")?;
        }
        if let Some(n) = f.get("suffix") {
            filter.suffixes = self.strings(n, "suffix")?;
        }
        if let Some(n) = f.get("size") {
            let range = self.fields(n, "a size range", &SIZE_RANGE, &[])?;
            if let Some(m) = range.get("min") {
                filter.min_size = Some(self.bytes(m, "min")?);
            }
            if let Some(m) = range.get("max") {
                filter.max_size = Some(self.bytes(m, "max")?);
            }
        }
        Some(filter)
    }

    /// `{new.status: [shipped], old.total: {gt: 10}, changed: [status]}`
    fn row_filter(&mut self, node: &Node, columns: &mut Vec<(String, Pos)>) -> Option<RowFilter> {
        let Value::Map(entries) = &node.value else {
            self.wrong(
                node,
                "filter",
                "a mapping like {new.status: [shipped], changed: [status]}",
            );
            return None;
        };
        let mut filter = RowFilter::default();
        let mut ok = true;
        for (key, value) in entries {
            if key.name == "changed" {
                match self.strings_at(value, "changed") {
                    Some(cols) => {
                        filter.changed = cols.iter().map(|(c, _)| c.clone()).collect();
                        columns.extend(cols);
                    }
                    None => ok = false,
                }
                continue;
            }
            let image = match key.name.split_once('.') {
                Some(("new", column)) => Some((Image::New, column)),
                Some(("old", column)) => Some((Image::Old, column)),
                _ => None,
            };
            let Some((image, column)) = image else {
                self.error(key.pos, format!("unknown filter key `{}`", key.name))
                    .note("expected: new.COLUMN, old.COLUMN or changed");
                ok = false;
                continue;
            };
            columns.push((column.to_string(), key.pos));
            match self.test(value, &key.name) {
                Some(test) => filter.predicates.push(Predicate {
                    image,
                    column: column.to_string(),
                    test,
                }),
                None => ok = false,
            }
        }
        ok.then_some(filter)
    }

    fn test(&mut self, node: &Node, what: &str) -> Option<Test> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(json)
                .collect::<Option<Vec<_>>>()
                .map(Test::OneOf)
                .or_else(|| {
                    self.wrong(node, what, "a list of plain values");
                    None
                }),
            Value::Map(_) => {
                let f = self.fields(node, &format!("the test of `{what}`"), &TEST_KEYS, &[])?;
                if let Some(n) = f.get("anything_but") {
                    let Value::Seq(items) = &n.value else {
                        self.wrong(n, "anything_but", "a list of plain values");
                        return None;
                    };
                    return items
                        .iter()
                        .map(json)
                        .collect::<Option<Vec<_>>>()
                        .map(Test::AnythingBut);
                }
                if let Some(n) = f.get("exists") {
                    return self.boolean(n, "exists").map(Test::Exists);
                }
                let mut bound = |name: &str| -> Option<Option<f64>> {
                    match f.get(name).map(|n| (n, &n.value)) {
                        None => Some(None),
                        Some((_, Value::Int(i))) => Some(Some(*i as f64)),
                        Some((_, Value::Float(x))) => Some(Some(*x)),
                        Some((n, _)) => {
                            self.wrong(n, name, "a number");
                            None
                        }
                    }
                };
                let (gt, gte, lt, lte) = (bound("gt")?, bound("gte")?, bound("lt")?, bound("lte")?);
                if [gt, gte, lt, lte].iter().all(Option::is_none) {
                    self.error(node.pos, format!("the test of `{what}` is empty"))
                        .note("expected one of: anything_but, exists, gt, gte, lt, lte");
                    return None;
                }
                Some(Test::Range { gt, gte, lt, lte })
            }
            _ => json(node).map(|v| Test::OneOf(vec![v])),
        }
    }

    /// `batch: {size, window, parallel, bisect_on_error, report_failures}`, each optional.
    fn batch(&mut self, node: &Node, source: &eddy_core::Source) -> Option<BatchSpec> {
        let f = self.fields(node, "`batch`", &BATCH, &[])?;
        let mut batch = BatchSpec::default();
        let mut ok = true;
        if let Some(n) = f.get("size") {
            match self.uint(n, "size", (1, BatchSpec::MAX_SIZE.into())) {
                Some(size) => batch.size = size as u32,
                None => ok = false,
            }
        }
        if let Some(n) = f.get("parallel") {
            match self.uint(n, "parallel", (1, BatchSpec::MAX_PARALLEL.into())) {
                Some(parallel) => batch.parallel = parallel as u32,
                None => ok = false,
            }
        }
        if let Some(n) = f.get("window") {
            match self.duration(n, "window") {
                Some(window) if window <= BatchSpec::MAX_WINDOW => batch.window = window,
                Some(_) => {
                    self.error(n.pos, "`window` is too long")
                        .note("expected: at most 300s, as on Lambda (0s sends records as soon as there are any)");
                    ok = false;
                }
                None => ok = false,
            }
        }
        if let Some(n) = f.get("bisect_on_error") {
            match self.boolean(n, "bisect_on_error") {
                Some(bisect) => batch.bisect_on_error = bisect,
                None => ok = false,
            }
        }
        if let Some(n) = f.get("report_failures") {
            match self.boolean(n, "report_failures") {
                Some(true) if !matches!(source, eddy_core::Source::Table(_)) => {
                    self.error(n.pos, "`report_failures` is for table triggers")
                        .note("a handler names the records that failed by their `dynamodb.SequenceNumber`; an object trigger's records have none");
                    ok = false;
                }
                Some(report) => batch.report_failures = report,
                None => ok = false,
            }
        }
        ok.then_some(batch)
    }
}
