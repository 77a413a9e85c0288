//! Who may call eddy, and what each may do: the root, the app's access keys (each limited by
//! its policy) and the functions' own credentials (each limited by its function's role as it
//! is now). Function credentials are stored, so every node accepts those any node issued.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use eddy_bus::Bus;
use eddy_sigv4::Credentials;
use eddy_subscriptions::{App, Effect, Statement, policy};

use crate::NodeError;
use crate::credentials::{CredentialStore, IssuedCredential};

/// The development credentials eddy uses when none are configured. Documented, so accepted
/// only when eddy listens on a loopback address.
pub const DEV_ACCESS_KEY_ID: &str = "eddy-dev";
pub const DEV_SECRET_ACCESS_KEY: &str = "eddy-dev-secret";

pub fn development_credentials() -> Credentials {
    Credentials {
        access_key_id: DEV_ACCESS_KEY_ID.into(),
        secret_access_key: DEV_SECRET_ACCESS_KEY.into(),
    }
}

/// How long a function's credentials are accepted after they were issued. They are issued
/// anew at every apply and every rotation, which comes well before.
pub const FUNCTION_CREDENTIALS_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(2 * 3600);

/// Function access key ids: this prefix and 20 uppercase hex digits.
const FUNCTION_KEY_PREFIX: &str = "EDDYFN";
const FUNCTION_KEY_LEN: usize = FUNCTION_KEY_PREFIX.len() + 20;

/// Who signed a request, and so what it may do.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The root credentials: everything.
    Root,
    /// A client's access key from the manifest, limited by its policy.
    Key {
        name: String,
        policy: Arc<[Statement]>,
    },
    /// A function's own credentials, limited by its role.
    Function {
        name: String,
        role: Arc<[Statement]>,
    },
}

impl Principal {
    /// Whether this principal may do `action` on `resource`: deny wins over allow, and nothing
    /// allowed is denied.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        match self {
            Principal::Root => true,
            Principal::Key { policy: s, .. } | Principal::Function { role: s, .. } => {
                eddy_subscriptions::role_allows(s, action, resource)
            }
        }
    }

    /// The statements that limit this principal; `None` for the root.
    fn statements(&self) -> Option<&[Statement]> {
        match self {
            Principal::Root => None,
            Principal::Key { policy: s, .. } | Principal::Function { role: s, .. } => Some(s),
        }
    }

    /// Whether any allow statement names something inside `bucket` (so it may see the bucket
    /// in ListBuckets).
    pub fn reaches_bucket(&self, bucket: &str) -> bool {
        let Some(statements) = self.statements() else {
            return true;
        };
        let (whole, inside) = (format!("bucket/{bucket}"), format!("bucket/{bucket}/"));
        statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.resources.iter().any(|r| {
                    eddy_subscriptions::resource_matches(r, &whole)
                        || policy::may_match_under(r, &inside)
                })
        })
    }

    /// Whether a listing of `bucket` may show `key`: a listing leaves out the keys the
    /// principal may not list (a deny on a prefix holds whatever prefix the listing asked for).
    pub fn lists_key(&self, bucket: &str, key: &str) -> bool {
        self.allows("objects:list", &format!("bucket/{bucket}/{key}"))
    }

    /// Whether a listing of `bucket` may show the common prefix `prefix`: not when a deny
    /// covers every key under it.
    pub fn lists_prefix(&self, bucket: &str, prefix: &str) -> bool {
        self.statements().is_none_or(|s| {
            !policy::denies_everything_under(
                s,
                "objects:list",
                &format!("bucket/{bucket}/{prefix}"),
            )
        })
    }

    /// Leaves out of a page what this principal may not list.
    pub fn filter_listing(&self, bucket: &str, page: &mut eddy_objects::ListPage) {
        if self.statements().is_none() {
            return;
        }
        page.objects
            .retain(|o| self.lists_key(bucket, o.key.as_str()));
        page.common_prefixes
            .retain(|p| self.lists_prefix(bucket, p));
    }

    /// The principal as logs and errors name it (never with a secret).
    pub fn describe(&self) -> String {
        match self {
            Principal::Root => "root".into(),
            Principal::Key { name, .. } => format!("access key `{name}`"),
            Principal::Function { name, .. } => format!("function `{name}`"),
        }
    }
}

/// An access key of the app's, with its secret as read when the app was applied.
struct AccessKey {
    secret: String,
    principal: Principal,
}

/// Function credentials this node has seen (issued, or found in the store).
struct FunctionKey {
    secret: String,
    function: String,
    expires_ms: i64,
}

/// What the app in service grants.
#[derive(Default)]
struct Grants {
    keys: HashMap<String, AccessKey>,
    /// Each declared function's role.
    roles: HashMap<String, Arc<[Statement]>>,
}

/// Grants ready to be put in effect, with the credentials to store first.
pub struct Prepared {
    grants: Grants,
    issued: Vec<IssuedCredential>,
}

impl Prepared {
    pub fn issued(&self) -> &[IssuedCredential] {
        &self.issued
    }
}

/// The principals this node knows.
pub struct Principals {
    root: Credentials,
    grants: RwLock<Grants>,
    functions: RwLock<HashMap<String, FunctionKey>>,
    bus: Bus,
    store: Arc<dyn CredentialStore>,
    node: String,
}

/// New credentials for each function of an app, as environment variables by function name.
pub type FunctionEnv = HashMap<String, Vec<(String, String)>>;

impl Principals {
    pub fn new(root: Credentials, bus: Bus, store: Arc<dyn CredentialStore>, node: &str) -> Self {
        Self {
            root,
            grants: RwLock::default(),
            functions: RwLock::default(),
            bus,
            store,
            node: node.to_string(),
        }
    }

    /// The secret of an access key and its principal, if this node knows the key and it has
    /// not expired. Function credentials another node issued are known once [`find`](Self::find)
    /// has looked them up.
    pub fn lookup(&self, access_key_id: &str) -> Option<(String, Principal)> {
        if access_key_id == self.root.access_key_id {
            return Some((self.root.secret_access_key.clone(), Principal::Root));
        }
        let grants = self.grants.read().expect("grant lock");
        if let Some(key) = grants.keys.get(access_key_id) {
            return Some((key.secret.clone(), key.principal.clone()));
        }
        let functions = self.functions.read().expect("function key lock");
        let key = functions.get(access_key_id)?;
        if eddy_bus::now_ms() > key.expires_ms {
            return None;
        }
        let role = grants.roles.get(&key.function)?;
        let principal = Principal::Function {
            name: key.function.clone(),
            role: role.clone(),
        };
        Some((key.secret.clone(), principal))
    }

    /// As [`lookup`](Self::lookup), asking the store for function credentials this node has not
    /// seen (those another node issued).
    pub async fn find(
        &self,
        access_key_id: &str,
    ) -> Result<Option<(String, Principal)>, NodeError> {
        if let Some(found) = self.lookup(access_key_id) {
            return Ok(Some(found));
        }
        let plausible = access_key_id.len() == FUNCTION_KEY_LEN
            && access_key_id.starts_with(FUNCTION_KEY_PREFIX)
            && access_key_id[FUNCTION_KEY_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b));
        if !plausible {
            return Ok(None);
        }
        let now = eddy_bus::now_ms();
        let stored = self
            .store
            .find(&mut self.bus.readers(), access_key_id, now)
            .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        self.functions.write().expect("function key lock").insert(
            stored.access_key_id,
            FunctionKey {
                secret: stored.secret,
                function: stored.function,
                expires_ms: stored.expires_ms,
            },
        );
        Ok(self.lookup(access_key_id))
    }

    /// What putting `app` in service grants: its access keys (their secrets read now) and each
    /// function's role, and new credentials for every function. A key whose secret cannot be
    /// read fails the whole change, and nothing changes. Store the credentials
    /// ([`Prepared::issued`]) before [`install`](Self::install)ing them.
    pub fn prepare(&self, app: &App) -> Result<Prepared, NodeError> {
        let mut grants = Grants::default();
        for key in &app.access_keys {
            let secret = key.secret.read().map_err(|e| {
                NodeError::Secret(format!("access key `{}` ({}): {e}", key.name, key.at))
            })?;
            let principal = Principal::Key {
                name: key.name.clone(),
                policy: key.policy.clone().into(),
            };
            grants
                .keys
                .insert(key.id.clone(), AccessKey { secret, principal });
        }
        for function in &app.functions {
            grants
                .roles
                .insert(function.name.to_string(), function.role.clone().into());
        }
        let expires_ms = eddy_bus::now_ms() + FUNCTION_CREDENTIALS_LIFETIME.as_millis() as i64;
        let issued = app
            .functions
            .iter()
            .map(|function| IssuedCredential {
                access_key_id: format!("{FUNCTION_KEY_PREFIX}{}", random_hex(10).to_uppercase()),
                secret: random_hex(20),
                function: function.name.to_string(),
                node: self.node.clone(),
                expires_ms,
            })
            .collect();
        Ok(Prepared { grants, issued })
    }

    /// Puts prepared grants in effect: the app's access keys replace the old ones (a removed
    /// key stops working at once) and function credentials follow their functions' roles as
    /// declared now. Credentials issued before stay valid until they expire while their
    /// function is declared, for workers still running with them. Returns each function's new
    /// credentials as environment variables.
    pub fn install(&self, prepared: Prepared) -> FunctionEnv {
        let now = eddy_bus::now_ms();
        let mut env = FunctionEnv::new();
        {
            let mut functions = self.functions.write().expect("function key lock");
            functions.retain(|_, key| key.expires_ms >= now);
            for credential in prepared.issued {
                env.insert(
                    credential.function.clone(),
                    vec![
                        (
                            "AWS_ACCESS_KEY_ID".to_string(),
                            credential.access_key_id.clone(),
                        ),
                        (
                            "AWS_SECRET_ACCESS_KEY".to_string(),
                            credential.secret.clone(),
                        ),
                    ],
                );
                functions.insert(
                    credential.access_key_id,
                    FunctionKey {
                        secret: credential.secret,
                        function: credential.function,
                        expires_ms: credential.expires_ms,
                    },
                );
            }
        }
        *self.grants.write().expect("grant lock") = prepared.grants;
        env
    }

    /// Whether `token` is the root's secret (`Authorization: Bearer` on the admin API).
    pub fn is_root_secret(&self, token: &str) -> bool {
        let secret = self.root.secret_access_key.as_bytes();
        let token = token.as_bytes();
        // Constant time: a near guess takes as long to refuse as a wild one.
        token.len() == secret.len()
            && token
                .iter()
                .zip(secret)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// `bytes` random bytes from the operating system's generator, as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random generator");
    hex::encode(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqlCredentials;

    fn app(manifest: &str) -> App {
        let loaded = eddy_subscriptions::load(&[eddy_subscriptions::ManifestText {
            name: "app.yaml",
            text: manifest,
            dir: std::path::Path::new("."),
        }]);
        loaded.app.unwrap_or_else(|| panic!("{}", loaded.findings))
    }

    fn role(bucket: &str) -> String {
        format!(
            "buckets: [{{name: {bucket}}}]\nfunctions: [{{name: f, runtime: exec, command: [cat], role: [{{allow: [objects:read], resources: [bucket/{bucket}]}}]}}]\n"
        )
    }

    fn meta(key: &str) -> eddy_objects::ObjectMeta {
        eddy_objects::ObjectMeta {
            bucket: eddy_core::BucketName::new("bbb").unwrap(),
            key: eddy_core::ObjectKey::new(key).unwrap(),
            size: 0,
            etag: String::new(),
            sha256: String::new(),
            content_type: None,
            user_meta: Default::default(),
            headers: Default::default(),
            checksum: None,
            part_sizes: Vec::new(),
            last_modified_ms: 0,
            sequencer: 0,
            inline: false,
        }
    }

    proptest::proptest! {
        /// A listing never shows a key a deny covers, whatever prefix it was asked for, and
        /// leaves out a common prefix only when the deny covers everything under it.
        #[test]
        fn listings_leave_out_what_a_deny_covers(
            deny in "[ab/*]{1,5}",
            keys in proptest::collection::vec("[ab/]{1,6}", 0..12),
            prefixes in proptest::collection::vec("[ab/]{0,4}/", 0..4),
            rest in "[ab/]{0,4}",
        ) {
            let policy = vec![
                Statement { effect: Effect::Allow, actions: vec!["objects:*".into()], resources: vec!["bucket/bbb".into()] },
                Statement { effect: Effect::Deny, actions: vec!["objects:list".into()], resources: vec![format!("bucket/bbb/{deny}")] },
            ];
            let principal = Principal::Key { name: "k".into(), policy: policy.into() };
            let mut page = eddy_objects::ListPage {
                objects: keys.iter().map(|k| meta(k)).collect(),
                common_prefixes: prefixes.clone(),
                next: None,
            };
            principal.filter_listing("bbb", &mut page);
            let pattern = format!("bucket/bbb/{deny}");
            for shown in &page.objects {
                let resource = format!("bucket/bbb/{}", shown.key);
                proptest::prop_assert!(!policy::glob(&pattern, &resource));
            }
            for hidden in prefixes.iter().filter(|p| !page.common_prefixes.contains(p)) {
                let under = format!("bucket/bbb/{hidden}{rest}");
                proptest::prop_assert!(policy::glob(&pattern, &under));
            }
        }
    }

    /// Two nodes' principals over one store.
    async fn two_nodes() -> (tempfile::TempDir, Principals, Principals) {
        let dir = tempfile::tempdir().unwrap();
        let bus = Bus::open(dir.path()).await.unwrap();
        let store: Arc<dyn CredentialStore> = Arc::new(SqlCredentials);
        let a = Principals::new(development_credentials(), bus.clone(), store.clone(), "a");
        let b = Principals::new(development_credentials(), bus, store, "b");
        (dir, a, b)
    }

    /// Grants as a node puts them in effect: prepared, stored, installed.
    async fn grant(principals: &Principals, app: &App) -> FunctionEnv {
        let prepared = principals.prepare(app).unwrap();
        let issued = prepared.issued().to_vec();
        principals
            .bus
            .write((principals.store.clone(), issued), |tx, (store, issued)| {
                Box::pin(async move { store.issue(tx, issued, eddy_bus::now_ms()).await })
            })
            .await
            .unwrap();
        principals.install(prepared)
    }

    async fn allowed(principals: &Principals, key: &str, resource: &str) -> bool {
        principals
            .find(key)
            .await
            .unwrap()
            .is_some_and(|(_, p)| p.allows("objects:read", resource))
    }

    /// Credentials already handed out follow their function's role as it is now, and end with
    /// the function.
    #[tokio::test]
    async fn issued_credentials_follow_the_current_role_and_end_with_the_function() {
        let (_dir, principals, _) = two_nodes().await;
        let first = grant(&principals, &app(&role("aaa"))).await;
        let key = first["f"][0].1.clone();
        assert!(allowed(&principals, &key, "bucket/aaa/x").await);
        let second = grant(&principals, &app(&role("bbb"))).await;
        assert_ne!(second["f"][0].1, key, "new credentials at every grant");
        assert!(allowed(&principals, &key, "bucket/bbb/x").await);
        assert!(!allowed(&principals, &key, "bucket/aaa/x").await);
        grant(&principals, &app("buckets: [{name: bbb}]\n")).await;
        assert!(
            principals.find(&key).await.unwrap().is_none(),
            "a removed function's keys stop at once"
        );
    }

    /// Any node accepts the credentials another issued, with the role its own app gives.
    #[tokio::test]
    async fn a_node_accepts_credentials_another_node_issued() {
        let (_dir, a, b) = two_nodes().await;
        let manifest = app(&role("aaa"));
        grant(&b, &manifest).await;
        let env = grant(&a, &manifest).await;
        let (key, secret) = (&env["f"][0].1, &env["f"][1].1);
        assert!(b.lookup(key).is_none(), "not seen by b yet");
        let (found, principal) = b.find(key).await.unwrap().expect("b finds a's key");
        assert_eq!(&found, secret);
        assert!(principal.allows("objects:read", "bucket/aaa/k"));
        assert!(b.lookup(key).is_some(), "and remembers it");
        for unknown in ["EDDYFN00000000000000000000", "EDDYFNzz", "AKIA", ""] {
            assert!(b.find(unknown).await.unwrap().is_none(), "{unknown}");
        }
    }

    /// An access key whose secret cannot be read fails the whole grant: nothing changes.
    #[tokio::test]
    async fn an_unreadable_access_key_changes_nothing() {
        let (_dir, principals, _) = two_nodes().await;
        let env = grant(&principals, &app(&role("aaa"))).await;
        let broken = app(&format!(
            "{}access_keys: [{{name: ci, id: CIKEY, secret_env: EDDY_TEST_NOT_SET_ANYWHERE, policy: [{{allow: ['*'], resources: ['*']}}]}}]\n",
            role("aaa")
        ));
        let err = principals.prepare(&broken).err().expect("refused");
        assert!(
            err.to_string().contains("EDDY_TEST_NOT_SET_ANYWHERE"),
            "{err}"
        );
        assert!(principals.lookup(&env["f"][0].1).is_some());
        assert!(principals.lookup("CIKEY").is_none());
    }

    #[test]
    fn the_root_secret_is_compared_whole() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bus = rt.block_on(Bus::open(dir.path())).unwrap();
        let principals = Principals::new(
            development_credentials(),
            bus,
            Arc::new(SqlCredentials),
            "a",
        );
        assert!(principals.is_root_secret(DEV_SECRET_ACCESS_KEY));
        for wrong in ["", "eddy-dev-secre", "eddy-dev-secrex", "EDDY-DEV-SECRET"] {
            assert!(!principals.is_root_secret(wrong), "{wrong}");
        }
    }
}
