//! Function credentials as stored: issued by one node to its function's workers, accepted by
//! every node that shares the store, until they expire or their function is no longer declared.

use async_trait::async_trait;
use eddy_bus::sql::Sql;

use crate::NodeError;

/// Credentials issued to a function.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCredential {
    pub access_key_id: String,
    pub secret: String,
    pub function: String,
    /// The node that issued them.
    pub node: String,
    /// Milliseconds since the epoch after which they are refused.
    pub expires_ms: i64,
}

impl std::fmt::Debug for IssuedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredential")
            .field("access_key_id", &self.access_key_id)
            .field("function", &self.function)
            .field("node", &self.node)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// Where issued credentials are kept.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// Stores newly issued credentials (in the caller's transaction) and forgets every one that
    /// expired before `now_ms`.
    async fn issue(
        &self,
        tx: &mut dyn Sql,
        issued: &[IssuedCredential],
        now_ms: i64,
    ) -> Result<(), NodeError>;

    /// The credentials with this access key id, unless they expired before `now_ms`.
    async fn find(
        &self,
        db: &mut dyn Sql,
        access_key_id: &str,
        now_ms: i64,
    ) -> Result<Option<IssuedCredential>, NodeError>;
}
