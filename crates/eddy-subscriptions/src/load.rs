//! Loading manifests: every file read, the declarations merged, references checked, and the
//! warnings that can be seen statically (overlapping triggers, functions that may trigger
//! themselves, roles that name things nobody declared).

use std::path::{Path, PathBuf};

use eddy_core::{EventKind, Source};

use crate::app::*;
use crate::filter::{EventSet, Filter, ObjectFilter};
use crate::findings::{Findings, Severity, did_you_mean};
use crate::policy::{self, Effect, Statement};
use crate::read::{Declarations, NamedDestination, Reader, TriggerDraft};
use crate::yaml::{self, Pos};

/// A manifest's text and how to name it in messages.
pub struct ManifestText<'a> {
    /// The name used in messages (usually the path as given).
    pub name: &'a str,
    pub text: &'a str,
    /// The folder relative paths in the manifest start from.
    pub dir: &'a Path,
}

/// The result of checking manifests: the app when there were no errors, and every finding.
#[derive(Debug)]
pub struct Loaded {
    pub app: Option<App>,
    pub findings: Findings,
}

/// Reads manifest files from disk and checks them together.
pub fn load_files(paths: &[PathBuf]) -> Loaded {
    let mut unreadable = Findings::default();
    let mut texts = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf();
                texts.push((name, text, dir));
            }
            Err(e) => {
                unreadable.push(
                    Severity::Error,
                    Origin {
                        file: name,
                        pos: Pos::default(),
                    },
                    format!("cannot read the manifest: {e}"),
                );
            }
        }
    }
    let sources: Vec<ManifestText> = texts
        .iter()
        .map(|(name, text, dir)| ManifestText { name, text, dir })
        .collect();
    let mut loaded = load(&sources);
    if unreadable.has_errors() {
        unreadable.extend(loaded.findings);
        loaded = Loaded {
            app: None,
            findings: unreadable,
        };
    }
    loaded
}

/// Checks manifest texts together.
pub fn load(sources: &[ManifestText]) -> Loaded {
    let mut findings = Findings::default();
    let mut all = Declarations::default();
    for source in sources {
        match yaml::parse(source.text) {
            Ok(root) => {
                let found = Reader::new(source.name, source.dir, &mut findings).read(&root);
                all.buckets.extend(found.buckets);
                all.tables.extend(found.tables);
                all.functions.extend(found.functions);
                all.triggers.extend(found.triggers);
                all.schedules.extend(found.schedules);
                all.journal.extend(found.journal);
                all.access_keys.extend(found.access_keys);
                all.declared.extend(found.declared);
                all.destinations.extend(found.destinations);
            }
            Err((pos, message)) => {
                let at = Origin {
                    file: source.name.to_string(),
                    pos,
                };
                findings.push(Severity::Error, at, format!("invalid YAML: {message}"));
            }
        }
    }
    let app = resolve(all, &mut findings);
    findings.sort();
    Loaded {
        app: (!findings.has_errors()).then_some(app),
        findings,
    }
}

fn resolve(all: Declarations, findings: &mut Findings) -> App {
    let mut app = App {
        buckets: all.buckets,
        tables: all.tables,
        functions: all.functions,
        triggers: Vec::new(),
        schedules: Vec::new(),
        access_keys: all.access_keys,
        journal: all.journal.first().map(|(j, _)| *j).unwrap_or_default(),
    };
    unique(
        findings,
        "bucket",
        app.buckets.iter().map(|b| (b.name.to_string(), &b.at)),
    );
    unique(
        findings,
        "table",
        app.tables
            .iter()
            .map(|t| (t.schema.name().to_string(), &t.at)),
    );
    unique(
        findings,
        "function",
        app.functions.iter().map(|f| (f.name.to_string(), &f.at)),
    );
    unique(
        findings,
        "access key",
        app.access_keys.iter().map(|k| (k.id.clone(), &k.at)),
    );
    let named: Vec<(String, Origin)> = all
        .triggers
        .iter()
        .filter_map(|t| Some((t.name.clone()?, t.at.clone())))
        .collect();
    unique(
        findings,
        "trigger",
        named.iter().map(|(n, at)| (n.clone(), at)),
    );
    for draft in all.triggers {
        check_references(&app, &all.declared, &draft, findings);
        app.triggers.extend(draft.spec);
    }
    name_triggers(&mut app.triggers);
    for draft in all.schedules {
        if let Some((function, pos)) = &draft.function
            && !all.declared.contains(&format!("function/{function}"))
        {
            let at = Origin {
                file: draft.at.file.clone(),
                pos: *pos,
            };
            findings
                .push(
                    Severity::Error,
                    at,
                    format!("the schedule runs function `{function}`, which is not declared"),
                )
                .suggest(did_you_mean(
                    function.as_str(),
                    app.functions.iter().map(|f| f.name.as_str()),
                ));
        }
        app.schedules.extend(draft.spec);
    }
    for named in &all.destinations {
        check_destination(&app, &all.declared, named, findings);
    }
    if let [(_, first), (_, again), ..] = &all.journal[..] {
        findings
            .push(
                Severity::Error,
                again.clone(),
                "`journal` is given in two manifests",
            )
            .note(format!("first given at {first}"));
    }
    unique(
        findings,
        "schedule",
        app.schedules.iter().map(|s| (s.name.to_string(), &s.at)),
    );
    warn_overlaps(&app, findings);
    warn_loops(&app, findings);
    warn_role_targets(&app, findings);
    app
}

/// A destination names something declared; a table destination can hold its records; a bucket
/// or table destination is one the function's role may write to (the records carry what the
/// function returned), as a Lambda function's execution role must allow its destinations.
fn check_destination(
    app: &App,
    declared: &[String],
    named: &NamedDestination,
    findings: &mut Findings,
) {
    let target = &named.target;
    let at = named.at.clone();
    let (what, candidates): (&str, Vec<&str>) = match target {
        Target::Function(_) => (
            "function",
            app.functions.iter().map(|f| f.name.as_str()).collect(),
        ),
        Target::Bucket(_) => (
            "bucket",
            app.buckets.iter().map(|b| b.name.as_str()).collect(),
        ),
        Target::Table(_) => (
            "table",
            app.tables
                .iter()
                .map(|t| t.schema.name().as_str())
                .collect(),
        ),
    };
    let name = target.to_string();
    let name = &name[what.len() + 1..];
    if !declared.contains(&target.to_string()) {
        findings
            .push(
                Severity::Error,
                at,
                format!("the destination is {what} `{name}`, which is not declared"),
            )
            .suggest(did_you_mean(name, candidates).map(|s| format!("{what}/{s}")));
        return;
    }
    if let Target::Table(table) = target
        && let Some(spec) = app.table(table.as_str())
        && let Err(why) = destination_table_fits(&spec.schema)
    {
        findings
            .push(
                Severity::Error,
                at.clone(),
                format!("table `{table}` cannot hold destination records: {why}"),
            )
            .note(DESTINATION_TABLE_SHAPE);
    }
    // A bucket or table destination is written with the function's role: refused without it.
    // A function destination is invoked on the app's behalf (as before roles were checked
    // here): only warned of, so that apps that validated keep validating.
    let (action, resource, severity) = match target {
        Target::Function(f) => (
            "functions:invoke",
            format!("function/{f}"),
            Severity::Warning,
        ),
        Target::Bucket(b) => (
            "objects:write",
            format!("bucket/{b}/aws/lambda/*"),
            Severity::Error,
        ),
        Target::Table(t) => ("tables:write", format!("table/{t}"), Severity::Error),
    };
    let role = named
        .from
        .as_ref()
        .and_then(|from| app.functions.iter().find(|f| &f.name == from));
    if let Some(function) = role
        && !policy::role_allows(&function.role, action, &resource)
    {
        let consequence = match severity {
            Severity::Warning => {
                "Lambda would refuse this destination; eddy invokes it on the app's behalf"
            }
            _ => {
                "a destination writes with its function's role, as a Lambda function's execution role must allow its destinations"
            }
        };
        findings
            .push(
                severity,
                at,
                format!(
                    "function `{}`'s role does not allow `{action}` on {target}, where its records would go",
                    function.name
                ),
            )
            .note(format!(
                "{consequence}; add `{{allow: [{action}], resources: [{target}]}}` to the role"
            ));
    }
}

/// A name declared twice is an error that names both places.
fn unique<'a>(
    findings: &mut Findings,
    what: &str,
    names: impl Iterator<Item = (String, &'a Origin)>,
) {
    let mut seen: Vec<(String, &Origin)> = Vec::new();
    for (name, at) in names {
        match seen.iter().find(|(n, _)| *n == name) {
            Some((_, first)) => {
                findings
                    .push(
                        Severity::Error,
                        at.clone(),
                        format!("{what} `{name}` is declared twice"),
                    )
                    .note(format!("first declared at {first}"));
            }
            None => seen.push((name, at)),
        }
    }
}

/// Checks what a trigger names. A name whose declaration had errors of its own counts as
/// declared: its errors are reported already.
fn check_references(app: &App, declared: &[String], draft: &TriggerDraft, findings: &mut Findings) {
    let at = |pos| Origin {
        file: draft.at.file.clone(),
        pos,
    };
    if let Some((function, pos)) = &draft.function
        && !declared.contains(&format!("function/{function}"))
    {
        findings
            .push(
                Severity::Error,
                at(*pos),
                format!("the trigger runs function `{function}`, which is not declared"),
            )
            .suggest(did_you_mean(
                function.as_str(),
                app.functions.iter().map(|f| f.name.as_str()),
            ));
    }
    let Some((source, pos)) = &draft.source else {
        return;
    };
    match source {
        Source::Bucket(b) if !declared.contains(&source.to_string()) => {
            findings
                .push(
                    Severity::Error,
                    at(*pos),
                    format!("the trigger's source bucket `{b}` is not declared"),
                )
                .suggest(
                    did_you_mean(b.as_str(), app.buckets.iter().map(|b| b.name.as_str()))
                        .map(|s| format!("bucket/{s}")),
                );
        }
        Source::Table(name) => match app.table(name.as_str()) {
            None if declared.contains(&source.to_string()) => {}
            None => {
                findings
                    .push(
                        Severity::Error,
                        at(*pos),
                        format!("the trigger's source table `{name}` is not declared"),
                    )
                    .suggest(
                        did_you_mean(
                            name.as_str(),
                            app.tables.iter().map(|t| t.schema.name().as_str()),
                        )
                        .map(|s| format!("table/{s}")),
                    );
            }
            Some(table) => {
                for (column, pos) in &draft.columns {
                    if table.schema.column(column).is_none() {
                        let finding = findings
                            .push(
                                Severity::Error,
                                at(*pos),
                                format!("table `{name}` has no column `{column}`"),
                            )
                            .suggest(did_you_mean(
                                column,
                                table.schema.columns().iter().map(|c| c.name.as_str()),
                            ));
                        finding.note(format!("its columns are: {}", table.schema.column_list()));
                    }
                }
            }
        },
        _ => {}
    }
}

/// Unnamed triggers are called `FUNCTION-on-SOURCE`, numbered when that is taken.
fn name_triggers(triggers: &mut [TriggerSpec]) {
    for i in 0..triggers.len() {
        if !triggers[i].name.is_empty() {
            continue;
        }
        let base = format!("{}-on-{}", triggers[i].function, triggers[i].source.name());
        let mut name = base.clone();
        let mut n = 2;
        while triggers.iter().any(|t| t.name == name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        triggers[i].name = name;
    }
}

/// Two triggers that can run the same function for one event run it twice.
fn warn_overlaps(app: &App, findings: &mut Findings) {
    let enabled: Vec<&TriggerSpec> = app.triggers.iter().filter(|t| t.enabled).collect();
    for (i, b) in enabled.iter().enumerate() {
        for a in &enabled[..i] {
            if a.function == b.function
                && a.source == b.source
                && a.events.intersects(b.events)
                && may_overlap(&a.filter, &b.filter)
            {
                findings
                    .push(Severity::Warning, b.at.clone(), format!("triggers `{}` and `{}` can both run `{}` for the same event", a.name, b.name, b.function))
                    .note(format!("`{}` is declared at {}", a.name, a.at))
                    .note("the function would then run twice; narrow the events or filters so they do not overlap");
            }
        }
    }
}

fn may_overlap(a: &Filter, b: &Filter) -> bool {
    match (a, b) {
        (Filter::Object(a), Filter::Object(b)) => objects_overlap(a, b),
        _ => true,
    }
}

fn objects_overlap(a: &ObjectFilter, b: &ObjectFilter) -> bool {
    let any = |x: &[String], y: &[String], related: fn(&str, &str) -> bool| {
        x.is_empty()
            || y.is_empty()
            || x.iter()
                .any(|p| y.iter().any(|q| related(p, q) || related(q, p)))
    };
    let sizes = a.min_size.unwrap_or(0) <= b.max_size.unwrap_or(u64::MAX)
        && b.min_size.unwrap_or(0) <= a.max_size.unwrap_or(u64::MAX);
    any(&a.prefixes, &b.prefixes, |p, q| p.starts_with(q))
        && any(&a.suffixes, &b.suffixes, |p, q| p.ends_with(q))
        && sizes
}

/// A function whose role lets it write to a source that triggers it can start a loop.
fn warn_loops(app: &App, findings: &mut Findings) {
    for t in app.triggers.iter().filter(|t| t.enabled) {
        let Some(function) = app.function(&t.function) else {
            continue;
        };
        let (actions, sample): (&[(&str, EventSet)], String) = match &t.source {
            Source::Bucket(b) => (
                &[
                    (
                        "objects:write",
                        EventSet::of(&[
                            EventKind::ObjectCreatedPut,
                            EventKind::ObjectCreatedCopy,
                            EventKind::ObjectCreatedCompleteMultipartUpload,
                        ]),
                    ),
                    (
                        "objects:delete",
                        EventSet::of(&[EventKind::ObjectRemovedDelete]),
                    ),
                ],
                format!("bucket/{b}/"),
            ),
            Source::Table(name) => (
                &[("tables:write", EventSet::pattern("row:*").expect("listed"))],
                format!("table/{name}"),
            ),
            Source::Function(_) | Source::Schedule(_) => continue,
        };
        for (action, events) in actions {
            if events.intersects(t.events) && role_reaches(&function.role, action, &sample) {
                findings
                    .push(Severity::Warning, t.at.clone(), format!("function `{}` may trigger itself: its role allows {action} on {}, and trigger `{}` runs it for changes there", function.name, t.source, t.name))
                    .note("eddy stops such a chain after 16 hops and dead-letters the event with RecursionLimit");
            }
        }
    }
}

/// Whether an allow statement covers `action` on something in `scope` (`bucket/NAME/` for
/// any key of a bucket, `table/NAME` for a table). Deny statements are not weighed: a warning
/// may err on the side of caution.
fn role_reaches(role: &[Statement], action: &str, scope: &str) -> bool {
    let overlaps = |pattern: &str| {
        pattern == scope.trim_end_matches('/') || policy::may_match_under(pattern, scope)
    };
    role.iter().filter(|s| s.effect == Effect::Allow).any(|s| {
        s.actions.iter().any(|a| policy::glob(a, action)) && s.resources.iter().any(|r| overlaps(r))
    })
}

/// A role that names a bucket, table or function nobody declared is probably a typo.
/// A role or a key's policy that names something nobody declared is probably a typo.
fn warn_role_targets(app: &App, findings: &mut Findings) {
    let roles = app
        .functions
        .iter()
        .map(|f| (format!("the role of `{}`", f.name), &f.role, &f.at));
    let policies = app.access_keys.iter().map(|k| {
        (
            format!("the policy of access key `{}`", k.name),
            &k.policy,
            &k.at,
        )
    });
    for (whose, statements, at) in roles.chain(policies) {
        for resource in statements.iter().flat_map(|s| &s.resources) {
            let Some((kind, rest)) = resource.split_once('/') else {
                continue;
            };
            let name = rest.split('/').next().unwrap_or("").trim_end_matches('*');
            if name.is_empty() {
                continue;
            }
            let known = match kind {
                "bucket" => {
                    app.bucket(name).is_some()
                        || rest.split('/').next().is_some_and(|b| b.ends_with('*'))
                }
                "table" => app.table(name).is_some() || rest.ends_with('*'),
                "function" => {
                    app.functions.iter().any(|g| g.name.as_str() == name) || rest.ends_with('*')
                }
                _ => true,
            };
            if !known {
                findings.push(
                    Severity::Warning,
                    at.clone(),
                    format!("{whose} names {kind} `{name}`, which is not declared"),
                );
            }
        }
    }
}
