//! Putting an app into service: its buckets created, its tables declared, then its functions
//! and triggers handed to the executor — at start, on a live reload, and through
//! `POST /_eddy/v1/deploy` (what `eddy deploy` sends).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use eddy_objects::{ObjectError, ObjectStore};
use eddy_subscriptions::{App, ManifestText};
use eddy_tables::{TableError, TableStore};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::{Services, Shared};

/// Why an app could not be put into service. Buckets created before the failure stay.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("creating bucket {bucket}: {source}")]
    Bucket {
        bucket: String,
        #[source]
        source: ObjectError,
    },
    #[error("declaring table {table} ({at}): {source}")]
    Table {
        table: String,
        at: String,
        #[source]
        source: TableError,
    },
    #[error("reading the tables' creation times: {0}")]
    Tables(#[source] TableError),
    #[error("{0}")]
    Secret(String),
}

/// Creates the app's buckets and declares its tables (adding columns where the manifest did).
/// Returns each table's DynamoDB stream label: its creation time without the zone letter, as
/// DynamoDB names a stream.
pub async fn provision(
    app: &App,
    objects: &ObjectStore,
    tables: &TableStore,
) -> Result<HashMap<String, String>, ProvisionError> {
    for bucket in &app.buckets {
        match objects.create_bucket(&bucket.name).await {
            Ok(()) | Err(ObjectError::BucketAlreadyExists(_)) => {}
            Err(source) => {
                return Err(ProvisionError::Bucket {
                    bucket: bucket.name.to_string(),
                    source,
                });
            }
        }
    }
    for table in &app.tables {
        let name = table.schema.name().to_string();
        let outcome = tables
            .declare(table.schema.clone())
            .await
            .map_err(|source| ProvisionError::Table {
                table: name.clone(),
                at: table.at.to_string(),
                source,
            })?;
        tracing::info!(table = name, ?outcome, "table declared");
    }
    let created = tables.created().await.map_err(ProvisionError::Tables)?;
    let labels = created.into_iter().map(|(table, ms)| {
        let label = eddy_events::iso8601_millis(ms);
        (table, label.trim_end_matches('Z').to_string())
    });
    Ok(labels.collect())
}

impl Services {
    /// Gives the app's access keys their policies and every function new credentials (its
    /// workers get them when they start). Called when the app changes, and to rotate the
    /// functions' credentials.
    pub fn grant(&self, app: &App) -> Result<(), ProvisionError> {
        let env = self.principals.grant(app).map_err(ProvisionError::Secret)?;
        self.executor.set_function_env(env);
        Ok(())
    }

    /// Provisions `app` and runs it from now on; on failure the running app stays.
    pub async fn apply(&self, app: App) -> Result<(), ProvisionError> {
        let labels = provision(&app, &self.objects, &self.tables).await?;
        self.grant(&app)?;
        tracing::info!(
            functions = app.functions.len(),
            triggers = app.triggers.len(),
            "app applied"
        );
        self.executor.set_app(app.clone(), labels);
        *self.app.write().expect("app lock") = Arc::new(app);
        Ok(())
    }
}

#[derive(Deserialize)]
pub struct DeployRequest {
    manifests: Vec<DeployedManifest>,
}

/// A manifest as `eddy deploy` sends it: its text, and its path on the machine that sent it,
/// from whose folder relative paths start (so a deploy from the same machine finds the code).
#[derive(Deserialize)]
struct DeployedManifest {
    path: String,
    text: String,
}

/// `POST /_eddy/v1/deploy`: checks the manifests as one app and, when they are valid, applies
/// it. Errors change nothing and come back as the manifest checker reports them.
pub async fn deploy(
    State(s): State<Shared>,
    Json(request): Json<DeployRequest>,
) -> Result<Json<Value>, ApiError> {
    let dirs: Vec<&Path> = request
        .manifests
        .iter()
        .map(|m| Path::new(&m.path).parent().unwrap_or(Path::new(".")))
        .collect();
    let texts: Vec<ManifestText> = request
        .manifests
        .iter()
        .zip(&dirs)
        .map(|(m, dir)| ManifestText {
            name: &m.path,
            text: &m.text,
            dir,
        })
        .collect();
    let loaded = eddy_subscriptions::load(&texts);
    let findings = loaded.findings.to_string();
    let Some(app) = loaded.app else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidManifest",
            findings,
        ));
    };
    let summary = json!({
        "functions": app.functions.len(),
        "triggers": app.triggers.len(),
        "warnings": findings,
    });
    s.apply(app)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "CannotApply", e.to_string()))?;
    Ok(Json(summary))
}
