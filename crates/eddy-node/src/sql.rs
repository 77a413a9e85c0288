//! Credentials and apps in a SQL database (the storage module of this crate: no SQL elsewhere).

use async_trait::async_trait;
use eddy_bus::args;
use eddy_bus::sql::{Row, Sql};
use eddy_subscriptions::LockedApp;

use crate::NodeError;
use crate::apps::{AppSource, AppStore, HISTORY, StoredApp};
use crate::credentials::{CredentialStore, IssuedCredential};

/// The credentials of the platform database.
pub struct SqlCredentials;

#[async_trait]
impl CredentialStore for SqlCredentials {
    async fn issue(
        &self,
        tx: &mut dyn Sql,
        issued: &[IssuedCredential],
        now_ms: i64,
    ) -> Result<(), NodeError> {
        for c in issued {
            tx.execute(
                "INSERT INTO _eddy_credentials (access_key_id, secret, function, node, expires_ms)
                 VALUES (?, ?, ?, ?, ?)",
                args![
                    &c.access_key_id,
                    &c.secret,
                    &c.function,
                    &c.node,
                    c.expires_ms
                ],
            )
            .await?;
        }
        tx.execute(
            "DELETE FROM _eddy_credentials WHERE expires_ms < ?",
            args![now_ms],
        )
        .await?;
        Ok(())
    }

    async fn find(
        &self,
        db: &mut dyn Sql,
        access_key_id: &str,
        now_ms: i64,
    ) -> Result<Option<IssuedCredential>, NodeError> {
        let row = db
            .fetch_optional(
                "SELECT access_key_id, secret, function, node, expires_ms FROM _eddy_credentials
                 WHERE access_key_id = ? AND expires_ms >= ?",
                args![access_key_id, now_ms],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(IssuedCredential {
            access_key_id: row.get("access_key_id")?,
            secret: row.get("secret")?,
            function: row.get("function")?,
            node: row.get("node")?,
            expires_ms: row.get("expires_ms")?,
        }))
    }
}

/// The apps of the platform database.
pub struct SqlApps;

const APP_COLUMNS: &str = "version, locked, source, manifests_digest, node, applied_ms";

fn stored_app(row: &Row) -> Result<StoredApp, NodeError> {
    let text: String = row.get("locked")?;
    let locked = LockedApp::from_json(&text)?;
    let source: String = row.get("source")?;
    let source = match source.as_str() {
        "deploy" => AppSource::Deploy,
        "manifests" => AppSource::Manifests {
            digest: row
                .get::<Option<String>>("manifests_digest")?
                .unwrap_or_default(),
        },
        other => return Err(NodeError::Corrupt(format!("unknown app source {other:?}"))),
    };
    Ok(StoredApp {
        version: row.get("version")?,
        locked,
        source,
        node: row.get("node")?,
        applied_ms: row.get("applied_ms")?,
    })
}

#[async_trait]
impl AppStore for SqlApps {
    async fn save(&self, tx: &mut dyn Sql, app: &StoredApp) -> Result<u64, NodeError> {
        let (source, digest) = match &app.source {
            AppSource::Manifests { digest } => ("manifests", Some(digest.as_str())),
            AppSource::Deploy => ("deploy", None),
        };
        let row = tx
            .fetch_one(
                "INSERT INTO _eddy_apps (version, locked, source, manifests_digest, node, applied_ms)
                 VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM _eddy_apps), ?, ?, ?, ?, ?)
                 RETURNING version",
                args![
                    app.locked.to_json(),
                    source,
                    digest,
                    &app.node,
                    app.applied_ms
                ],
            )
            .await?;
        let version: u64 = row.get("version")?;
        tx.execute(
            "DELETE FROM _eddy_apps WHERE version <= ? AND version <> COALESCE(
                 (SELECT MAX(version) FROM _eddy_apps WHERE source = 'manifests'), 0)",
            args![version.saturating_sub(HISTORY)],
        )
        .await?;
        Ok(version)
    }

    async fn latest(&self, db: &mut dyn Sql) -> Result<Option<StoredApp>, NodeError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM _eddy_apps ORDER BY version DESC LIMIT 1");
        db.fetch_optional(&sql, &[])
            .await?
            .map(|row| stored_app(&row))
            .transpose()
    }

    async fn latest_version(&self, db: &mut dyn Sql) -> Result<Option<u64>, NodeError> {
        let row = db
            .fetch_one("SELECT MAX(version) AS version FROM _eddy_apps", &[])
            .await?;
        Ok(row.get("version")?)
    }

    async fn latest_from_manifests(
        &self,
        db: &mut dyn Sql,
    ) -> Result<Option<StoredApp>, NodeError> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM _eddy_apps WHERE source = 'manifests'
             ORDER BY version DESC LIMIT 1"
        );
        db.fetch_optional(&sql, &[])
            .await?
            .map(|row| stored_app(&row))
            .transpose()
    }
}
