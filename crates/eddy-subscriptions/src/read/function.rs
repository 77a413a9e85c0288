//! Reading a function: its runtime and code, limits, warm workers, environment, role and
//! destinations.

use super::*;

const FUNCTION: [&str; 15] = [
    "name",
    "runtime",
    "handler",
    "code",
    "command",
    "url",
    "secret_env",
    "private_hosts",
    "memory_mb",
    "timeout",
    "concurrency",
    "warm",
    "environment",
    "role",
    "destinations",
];
const RUNTIMES: [&str; 6] = [
    "nodejs",
    "python",
    "provided",
    "exec",
    "webhook",
    "in_process",
];
const STATEMENT: [&str; 3] = ["allow", "deny", "resources"];
/// Environment names Lambda reserves for itself.
const RESERVED_ENV: [&str; 8] = [
    "_HANDLER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

impl Reader<'_> {
    pub(super) fn function(&mut self, node: &Node) -> Option<FunctionSpec> {
        let what = label(node, "function");
        let f = self.fields(node, &what, &FUNCTION, &["name", "runtime"])?;
        let name = self.name(f.get("name")?, "name", FunctionName::new);
        self.declared
            .extend(name.as_ref().map(|n| format!("function/{n}")));
        let runtime = self.runtime(&f, &what);
        let memory_mb = match f.get("memory_mb") {
            Some(n) => self
                .uint(
                    n,
                    "memory_mb",
                    (u64::from(MEMORY_MB.0), u64::from(MEMORY_MB.1)),
                )
                .map(|m| m as u32),
            None => Some(FunctionSpec::DEFAULT_MEMORY_MB),
        };
        let timeout = match f.get("timeout") {
            Some(n) => self.duration(n, "timeout").and_then(|t| {
                if t.is_zero() || t > MAX_TIMEOUT {
                    self.error(n.pos, "`timeout` is out of range")
                        .note("expected: more than 0 and at most 15m (900s), as on Lambda");
                    None
                } else {
                    Some(t)
                }
            }),
            None => Some(FunctionSpec::DEFAULT_TIMEOUT),
        };
        let concurrency = match f.get("concurrency") {
            Some(n) => self.uint(n, "concurrency", (1, 1000)).map(|c| c as u32),
            None => Some(FunctionSpec::DEFAULT_CONCURRENCY),
        };
        let warm = match f.get("warm") {
            Some(n) => self.warm(n, runtime.as_ref(), concurrency).map(Some),
            None => Some(None),
        };
        let environment = match f.get("environment") {
            Some(n) => self.environment(n),
            None => Some(BTreeMap::new()),
        };
        let role = match f.get("role") {
            Some(n) => self.role(n),
            None => Some(Vec::new()),
        };
        let destinations = match f.get("destinations") {
            Some(n) => self.destinations(n, name.as_ref()),
            None => Some(Destinations::default()),
        };
        Some(FunctionSpec {
            name: name?,
            runtime: runtime?,
            memory_mb: memory_mb?,
            timeout: timeout?,
            concurrency: concurrency?,
            warm: warm?,
            environment: environment?,
            role: role?,
            destinations: destinations?,
            at: self.origin(f.pos),
        })
    }

    /// `warm: N`: workers kept ready, for the runtimes that run in workers, at most the
    /// function's concurrency.
    fn warm(
        &mut self,
        node: &Node,
        runtime: Option<&Runtime>,
        concurrency: Option<u32>,
    ) -> Option<u32> {
        let count = self.uint(node, "warm", (0, 1000))? as u32;
        if let Some(
            runtime @ (Runtime::Exec { .. } | Runtime::Webhook { .. } | Runtime::InProcess),
        ) = runtime
        {
            self.error(node.pos, format!("`warm` does not apply to {} functions", runtime.name()))
                .note("workers are kept warm for nodejs, python and provided functions; the others start nothing ahead of an invocation");
            return None;
        }
        if let Some(limit) = concurrency.filter(|c| count > *c) {
            self.error(node.pos, "`warm` is more than the function's `concurrency`")
                .note(format!(
                    "found: {count}; expected: 0 to {limit}, as more could never all be busy"
                ));
            return None;
        }
        Some(count)
    }

    fn runtime(&mut self, f: &Fields, what: &str) -> Option<Runtime> {
        let node = f.get("runtime")?;
        let name = self.string(node, "runtime")?;
        // The fields each runtime uses; any other runtime-specific field is a mistake.
        let (uses, required): (&[&str], &[&str]) = match name.as_str() {
            "exec" | "provided" => (&["command", "code"], &["command"]),
            "nodejs" | "python" => (&["handler", "code"], &["handler", "code"]),
            "webhook" => (&["url", "secret_env", "private_hosts"], &["url"]),
            "in_process" => (&[], &[]),
            other => {
                let finding = self
                    .error(node.pos, format!("unknown runtime `{other}`"))
                    .suggest(did_you_mean(other, RUNTIMES));
                finding.note(format!("expected one of: {}", RUNTIMES.join(", ")));
                return None;
            }
        };
        let mut ok = true;
        for field in [
            "handler",
            "code",
            "command",
            "url",
            "secret_env",
            "private_hosts",
        ] {
            if let Some(n) = f.get(field).filter(|_| !uses.contains(&field)) {
                self.error(
                    n.pos,
                    format!("`{field}` is not used by the {name} runtime"),
                )
                .note(format!(
                    "the {name} runtime uses: {}",
                    if uses.is_empty() {
                        "none of handler, code, command, url".to_string()
                    } else {
                        uses.join(", ")
                    }
                ));
                ok = false;
            }
        }
        for field in required {
            if f.get(field).is_none() {
                self.error(
                    f.pos,
                    format!("{what} is missing `{field}`, which the {name} runtime needs"),
                );
                ok = false;
            }
        }
        let code = match f.get("code") {
            Some(n) => Some(self.path(n, "code")?),
            None => None,
        };
        let command = match f.get("command") {
            Some(n) => Some(self.command(n)?),
            None => None,
        };
        if !ok {
            return None;
        }
        let dir = code
            .clone()
            .unwrap_or_else(|| absolute(self.dir.to_path_buf()));
        Some(match name.as_str() {
            "exec" => Runtime::Exec {
                command: command?,
                dir,
            },
            "provided" => Runtime::Provided {
                command: command?,
                dir,
            },
            "nodejs" => Runtime::Nodejs {
                handler: self.string(f.get("handler")?, "handler")?,
                code: code?,
            },
            "python" => Runtime::Python {
                handler: self.string(f.get("handler")?, "handler")?,
                code: code?,
            },
            "webhook" => Runtime::Webhook {
                url: self.string(f.get("url")?, "url")?,
                secret_env: match f.get("secret_env") {
                    Some(n) => Some(self.string(n, "secret_env")?),
                    None => None,
                },
                private_hosts: match f.get("private_hosts") {
                    Some(n) => self.strings(n, "private_hosts")?,
                    None => Vec::new(),
                },
            },
            _ => Runtime::InProcess,
        })
    }

    fn command(&mut self, node: &Node) -> Option<Vec<String>> {
        // A program without arguments may be written alone; with arguments it must be a list
        // (eddy does not split a command line as a shell would).
        if let Value::Str(program) = &node.value {
            let words: Vec<&str> = program.split_whitespace().collect();
            if words.len() == 1 && words[0] == program {
                return Some(vec![program.clone()]);
            }
            self.error(
                node.pos,
                format!(
                    "`command` {program:?} is one string; eddy does not split it into arguments"
                ),
            )
            .note(format!(
                "write the program and its arguments as a list: [{}]",
                words.join(", ")
            ));
            return None;
        }
        let Value::Seq(_) = node.value else {
            self.wrong(
                node,
                "command",
                "a list of arguments, like [python3, handler.py]",
            );
            return None;
        };
        let args = self.strings(node, "command")?;
        if args.is_empty() {
            self.error(node.pos, "`command` is empty")
                .note("expected: the program and its arguments, like [python3, handler.py]");
            return None;
        }
        Some(args)
    }

    fn environment(&mut self, node: &Node) -> Option<BTreeMap<String, String>> {
        let Value::Map(entries) = &node.value else {
            self.wrong(node, "environment", "a mapping of variable names to values");
            return None;
        };
        let mut env = BTreeMap::new();
        let mut ok = true;
        for (k, v) in entries {
            let valid = k
                .name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.error(
                    k.pos,
                    format!("`{}` is not a valid environment variable name", k.name),
                )
                .note("expected: letters, digits and `_`, not starting with a digit");
                ok = false;
            } else if RESERVED_ENV.contains(&k.name.as_str()) || k.name.starts_with("AWS_LAMBDA_") {
                self.error(
                    k.pos,
                    format!("`{}` is reserved: eddy sets it for every function", k.name),
                );
                ok = false;
            } else if let Some(value) = self.scalar_text(v, &k.name) {
                env.insert(k.name.clone(), value);
            } else {
                ok = false;
            }
        }
        ok.then_some(env)
    }

    pub(super) fn role(&mut self, node: &Node) -> Option<Vec<Statement>> {
        let Value::Seq(items) = &node.value else {
            self.wrong(
                node,
                "role",
                "a list of statements, like - {allow: [objects:read], resources: [bucket/photos]}",
            );
            return None;
        };
        let mut statements = Vec::new();
        let mut ok = true;
        for item in items {
            match self.statement(item) {
                Some(s) => statements.push(s),
                None => ok = false,
            }
        }
        ok.then_some(statements)
    }

    fn statement(&mut self, node: &Node) -> Option<Statement> {
        let f = self.fields(node, "a role statement", &STATEMENT, &["resources"])?;
        let (effect, actions_node) = match (f.get("allow"), f.get("deny")) {
            (Some(a), None) => (Effect::Allow, a),
            (None, Some(d)) => (Effect::Deny, d),
            _ => {
                self.error(
                    f.pos,
                    "a role statement has exactly one of `allow` or `deny`",
                );
                return None;
            }
        };
        let actions = self.strings_at(actions_node, "actions")?;
        let mut ok = true;
        for (action, pos) in &actions {
            if !valid_action(action) {
                let finding = self
                    .error(*pos, format!("unknown action `{action}`"))
                    .suggest(did_you_mean(action, ACTIONS));
                finding.note(format!(
                    "expected one of: {}, or a pattern such as objects:* or * (a * matches any run of characters)",
                    ACTIONS.join(", ")
                ));
                ok = false;
            }
        }
        let resources_node = f.get("resources")?;
        let resources = self.strings_at(resources_node, "resources")?;
        for (resource, pos) in &resources {
            if let Err(reason) = check_resource(resource) {
                self.error(*pos, format!("invalid resource `{resource}`"))
                    .note(reason)
                    .note("expected: *, bucket/NAME, bucket/NAME/KEY (a * matches any run of characters, e.g. bucket/NAME/logs/*/private/*), table/NAME or function/NAME");
                ok = false;
            }
        }
        let names = |list: Vec<(String, Pos)>| list.into_iter().map(|(s, _)| s).collect();
        ok.then(|| Statement {
            effect,
            actions: names(actions),
            resources: names(resources),
        })
    }
}
