//! Roles and policies: statements that allow or deny actions on resources, and how a request
//! is judged against them. Deny wins over allow; nothing allowed is denied.
//!
//! A `*` in an action or a resource matches any run of characters (slashes included), wherever
//! it stands: `bucket/logs/*/private/*` covers `bucket/logs/2026/private/a`. A resource naming a
//! bucket alone (`bucket/NAME`) also covers every object in it.

/// One statement of a role: allow or deny these actions on these resources.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Statement {
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
}

/// The actions a role can name; `*` matches any run of characters.
pub const ACTIONS: [&str; 10] = [
    "objects:read",
    "objects:write",
    "objects:delete",
    "objects:list",
    "tables:read",
    "tables:write",
    "functions:invoke",
    "admin:read",
    "admin:write",
    "admin:*",
];

impl Statement {
    /// Whether this statement names `action` on `resource`.
    pub fn covers(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|a| glob(a, action))
            && self.resources.iter().any(|r| resource_matches(r, resource))
    }
}

/// Whether the statement resource `pattern` covers `resource`: a glob match, or a bare
/// `bucket/NAME` covering the objects `bucket/NAME/…`. Names are compared as they are (bucket,
/// table and function names are lowercase by their rules; keys keep their case).
pub fn resource_matches(pattern: &str, resource: &str) -> bool {
    if glob(pattern, resource) {
        return true;
    }
    whole_bucket(pattern).is_some_and(|bucket| {
        resource
            .strip_prefix(bucket)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// `bucket/NAME` with no wildcard and no key: it covers the bucket's objects too.
fn whole_bucket(pattern: &str) -> Option<&str> {
    (pattern.starts_with("bucket/") && !pattern.contains('*') && pattern.matches('/').count() == 1)
        .then_some(pattern)
}

/// Deny wins over allow; nothing allowed means denied.
pub fn role_allows(role: &[Statement], action: &str, resource: &str) -> bool {
    let named = |effect| {
        role.iter()
            .any(|s| s.effect == effect && s.covers(action, resource))
    };
    named(Effect::Allow) && !named(Effect::Deny)
}

/// Whether a deny statement for `action` covers every resource that starts with `prefix`
/// (so a listing may leave out a whole common prefix).
pub fn denies_everything_under(role: &[Statement], action: &str, prefix: &str) -> bool {
    role.iter()
        .filter(|s| s.effect == Effect::Deny && s.actions.iter().any(|a| glob(a, action)))
        .flat_map(|s| &s.resources)
        .any(|r| {
            Glob::new(r).matches_all_after(prefix)
                || whole_bucket(r)
                    .is_some_and(|b| prefix.starts_with(b) && prefix[b.len()..].starts_with('/'))
        })
}

/// Whether some string that starts with `prefix` matches `pattern` (a statement may reach
/// something under it).
pub fn may_match_under(pattern: &str, prefix: &str) -> bool {
    Glob::new(pattern).may_match_after(prefix)
        || whole_bucket(pattern).is_some_and(|b| prefix.starts_with(&format!("{b}/")))
}

/// `pattern` against `value`, a `*` matching any run of characters.
pub fn glob(pattern: &str, value: &str) -> bool {
    Glob::new(pattern).matches(value)
}

/// A glob run as a set of positions in the pattern (an NFA): each position is where matching
/// could stand after the text read so far. Linear in the text, never backtracking.
struct Glob<'a> {
    pattern: &'a [u8],
}

impl<'a> Glob<'a> {
    fn new(pattern: &'a str) -> Self {
        Self {
            pattern: pattern.as_bytes(),
        }
    }

    /// The positions after reading `text` from the start.
    fn after(&self, text: &str) -> Vec<bool> {
        let mut states = vec![false; self.pattern.len() + 1];
        states[0] = true;
        self.close(&mut states);
        for byte in text.bytes() {
            let mut next = vec![false; states.len()];
            for (i, on) in states.iter().enumerate() {
                if !on || i == self.pattern.len() {
                    continue;
                }
                match self.pattern[i] {
                    b'*' => next[i] = true,
                    literal if literal == byte => next[i + 1] = true,
                    _ => {}
                }
            }
            self.close(&mut next);
            if !next.contains(&true) {
                return next;
            }
            states = next;
        }
        states
    }

    /// A `*` may match nothing: standing before one is standing after it too.
    fn close(&self, states: &mut [bool]) {
        for i in 0..self.pattern.len() {
            if states[i] && self.pattern[i] == b'*' {
                states[i + 1] = true;
            }
        }
    }

    fn matches(&self, text: &str) -> bool {
        self.after(text)[self.pattern.len()]
    }

    fn may_match_after(&self, prefix: &str) -> bool {
        self.after(prefix).contains(&true)
    }

    /// Whether every string starting with `prefix` matches: after the prefix, a position from
    /// which only stars remain (at least one).
    fn matches_all_after(&self, prefix: &str) -> bool {
        let states = self.after(prefix);
        (0..self.pattern.len()).any(|i| states[i] && self.pattern[i..].iter().all(|b| *b == b'*'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(effect: Effect, actions: &[&str], resources: &[&str]) -> Statement {
        Statement {
            effect,
            actions: actions.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The model: the textbook recursive definition of a `*`-glob.
    fn model(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|i| model(rest, &text[i..])),
            Some((c, rest)) => text.first() == Some(c) && model(rest, &text[1..]),
        }
    }

    #[test]
    fn deny_wins_and_nothing_allowed_is_denied() {
        let role = vec![
            statement(Effect::Allow, &["objects:*"], &["bucket/photos/*"]),
            statement(Effect::Deny, &["objects:delete"], &["*"]),
        ];
        assert!(role_allows(&role, "objects:read", "bucket/photos/a.jpg"));
        assert!(!role_allows(&role, "objects:delete", "bucket/photos/a.jpg"));
        assert!(!role_allows(&role, "objects:read", "bucket/other/a.jpg"));
        assert!(!role_allows(&role, "tables:read", "table/orders"));
        assert!(!role_allows(&[], "objects:read", "bucket/photos/a"));
    }

    #[test]
    fn a_bucket_covers_its_objects_and_no_other_bucket() {
        assert!(resource_matches("bucket/photos", "bucket/photos"));
        assert!(resource_matches("bucket/photos", "bucket/photos/a/b.jpg"));
        assert!(!resource_matches("bucket/photos", "bucket/photos2/a.jpg"));
        assert!(!resource_matches("bucket/photos", "bucket/photo"));
        assert!(resource_matches(
            "bucket/uploads/incoming/*",
            "bucket/uploads/incoming/x"
        ));
        assert!(!resource_matches(
            "bucket/uploads/incoming/*",
            "bucket/uploads/other/x"
        ));
        assert!(!resource_matches(
            "bucket/uploads/incoming/*",
            "bucket/uploads"
        ));
        assert!(!resource_matches(
            "bucket/uploads/a.txt",
            "bucket/uploads/a.txt/b"
        ));
        assert!(!resource_matches("table/orders", "table/orders/x"));
        assert!(resource_matches("*", "function/f"));
        assert!(
            !resource_matches("bucket/b/Key*", "bucket/b/key"),
            "case is never folded"
        );
    }

    /// A star in the middle matches as it reads: a deny written with one takes effect.
    #[test]
    fn a_star_matches_anywhere_in_a_resource() {
        assert!(glob(
            "bucket/logs/*/private/*",
            "bucket/logs/2026/11/private/x"
        ));
        assert!(!glob(
            "bucket/logs/*/private/*",
            "bucket/logs/2026/public/x"
        ));
        assert!(glob("bucket/*.jpg", "bucket/photos/cat.jpg"));
        assert!(glob("objects:*", "objects:list") && glob("*:read", "tables:read"));
        let role = vec![
            statement(Effect::Allow, &["objects:*"], &["bucket/logs"]),
            statement(
                Effect::Deny,
                &["objects:read"],
                &["bucket/logs/*/private/*"],
            ),
        ];
        assert!(!role_allows(
            &role,
            "objects:read",
            "bucket/logs/a/private/b"
        ));
        assert!(role_allows(&role, "objects:read", "bucket/logs/a/public/b"));
    }

    #[test]
    fn a_deny_may_cover_a_whole_prefix() {
        let role = vec![
            statement(Effect::Allow, &["objects:*"], &["bucket/b"]),
            statement(Effect::Deny, &["objects:list"], &["bucket/b/private/*"]),
        ];
        assert!(denies_everything_under(
            &role,
            "objects:list",
            "bucket/b/private/"
        ));
        assert!(denies_everything_under(
            &role,
            "objects:list",
            "bucket/b/private/x/"
        ));
        assert!(!denies_everything_under(
            &role,
            "objects:list",
            "bucket/b/priv"
        ));
        assert!(!denies_everything_under(
            &role,
            "objects:list",
            "bucket/b/public/"
        ));
        assert!(!denies_everything_under(
            &role,
            "objects:read",
            "bucket/b/private/"
        ));
        let whole = vec![statement(Effect::Deny, &["*"], &["bucket/b"])];
        assert!(denies_everything_under(
            &whole,
            "objects:list",
            "bucket/b/any/"
        ));
        assert!(may_match_under("bucket/b/*/x", "bucket/b/a"));
        assert!(!may_match_under("bucket/b/x*", "bucket/b/y"));
        assert!(may_match_under("bucket/b", "bucket/"));
        assert!(
            may_match_under("bucket/b", "bucket/b/"),
            "a bucket reaches its keys"
        );
        assert!(!may_match_under("bucket/b", "bucket/c/"));
    }

    proptest::proptest! {
        /// The matcher against the model, over an alphabet small enough to collide often.
        #[test]
        fn globs_match_as_the_model_says(pattern in "[ab/*]{0,7}", text in "[ab/]{0,9}") {
            proptest::prop_assert_eq!(glob(&pattern, &text), model(pattern.as_bytes(), text.as_bytes()));
        }

        /// "Everything under a prefix" is sound and complete: when it says so, any extension
        /// matches; when it does not, an extension of characters the pattern never names fails.
        #[test]
        fn everything_under_means_every_extension(pattern in "[ab/*]{0,6}", prefix in "[ab/]{0,5}", rest in "[ab/]{0,5}") {
            let all = Glob::new(&pattern).matches_all_after(&prefix);
            if all {
                let extended = format!("{prefix}{rest}");
                proptest::prop_assert!(glob(&pattern, &extended));
            } else {
                let fresh = format!("{prefix}zq");
                proptest::prop_assert!(!glob(&pattern, &fresh));
            }
        }

        /// The matcher against its model for resources: a bare bucket covers its objects, and
        /// otherwise only the glob decides (case included: names mix cases).
        #[test]
        fn the_matcher_follows_its_model(
            kind in proptest::sample::select(vec!["bucket", "table", "function"]),
            name in "[a-cA-C]{1,3}",
            rest in proptest::option::of("[a-cA-C/*]{0,4}"),
            star in proptest::bool::ANY,
            other in "[a-cA-C/]{0,8}",
        ) {
            let mut pattern = format!("{kind}/{name}");
            if let Some(rest) = &rest { pattern.push('/'); pattern.push_str(rest); }
            if star { pattern.push('*'); }
            let resource = format!("{kind}/{other}");
            let bare_bucket = kind == "bucket" && rest.is_none() && !star;
            let expected = model(pattern.as_bytes(), resource.as_bytes())
                || (bare_bucket && resource.starts_with(&format!("{pattern}/")));
            proptest::prop_assert_eq!(resource_matches(&pattern, &resource), expected);
        }

        /// Deny wins: adding a deny that covers a request never turns it into an allow, and
        /// removing every allow denies.
        #[test]
        fn deny_always_wins(allow_all in proptest::bool::ANY, action in "objects:(read|write|delete|list)", key in "[a-z/]{1,6}") {
            let resource = format!("bucket/b/{key}");
            let allow = statement(Effect::Allow, &[if allow_all { "*" } else { "objects:*" }], &["bucket/b"]);
            let deny = statement(Effect::Deny, &[action.as_str()], &[resource.as_str()]);
            proptest::prop_assert!(role_allows(std::slice::from_ref(&allow), &action, &resource));
            proptest::prop_assert!(!role_allows(&[allow.clone(), deny.clone()], &action, &resource));
            proptest::prop_assert!(!role_allows(&[deny], &action, &resource));
        }
    }
}
