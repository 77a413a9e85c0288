//! Putting an app's storage in place: its buckets created and its tables declared (adding
//! columns where the manifest did).

use std::collections::HashMap;

use eddy_objects::{ObjectError, ObjectStore};
use eddy_subscriptions::App;
use eddy_tables::TableStore;

use crate::NodeError;

/// Creates the app's buckets and declares its tables. Returns each table's DynamoDB stream
/// label: its creation time without the zone letter, as DynamoDB names a stream. Buckets
/// created before a failure stay.
pub async fn provision(
    app: &App,
    objects: &ObjectStore,
    tables: &TableStore,
) -> Result<HashMap<String, String>, NodeError> {
    for bucket in &app.buckets {
        match objects.create_bucket(&bucket.name).await {
            Ok(()) | Err(ObjectError::BucketAlreadyExists(_)) => {}
            Err(source) => {
                return Err(NodeError::Bucket {
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
            .map_err(|source| NodeError::Table {
                table: name.clone(),
                at: table.at.to_string(),
                source,
            })?;
        tracing::info!(table = name, ?outcome, "table declared");
    }
    let created = tables.created().await.map_err(NodeError::Tables)?;
    let labels = created.into_iter().map(|(table, ms)| {
        let label = eddy_events::iso8601_millis(ms);
        (table, label.trim_end_matches('Z').to_string())
    });
    Ok(labels.collect())
}
