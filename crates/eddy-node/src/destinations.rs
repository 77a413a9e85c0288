//! Bucket and table destinations: the executor hands each record over in the transaction
//! that settles what it records, and it becomes an object (`application/json`, kept inline)
//! or a row (`{KEY: its name, record: the record}`) — with its own journal event, so triggers
//! on the bucket or table see it as any other change.

use async_trait::async_trait;
use eddy_bus::WriteTx;
use eddy_core::ObjectKey;
use eddy_executor::{Destination, DestinationWriter, ExecError, Written};
use eddy_objects::{ObjectError, ObjectStore};
use eddy_subscriptions::{Target, destination_table_fits};
use eddy_tables::{TableError, TableStore};
use serde_json::json;

/// The [`DestinationWriter`] of a node's object and table stores.
pub struct StoreDestinations {
    objects: ObjectStore,
    tables: TableStore,
}

impl StoreDestinations {
    pub fn new(objects: ObjectStore, tables: TableStore) -> Self {
        Self { objects, tables }
    }
}

#[async_trait]
impl DestinationWriter for StoreDestinations {
    async fn write(
        &self,
        tx: &mut WriteTx,
        destination: &Destination,
    ) -> Result<Written, ExecError> {
        let lineage = destination.lineage.clone();
        match &destination.to {
            Target::Bucket(bucket) => {
                let key = match ObjectKey::new(&destination.name) {
                    Ok(key) => key,
                    Err(e) => return Ok(Written::Refused(e.to_string())),
                };
                let body = serde_json::to_vec(&destination.record).expect("JSON serializes");
                let put = self
                    .objects
                    .put_in(tx, bucket, &key, &body, "application/json", lineage)
                    .await;
                match put {
                    Ok(Some(meta)) => Ok(Written::Journaled(meta.sequencer)),
                    Ok(None) => Ok(Written::Refused(format!(
                        "bucket `{bucket}` does not exist"
                    ))),
                    Err(ObjectError::Bus(e)) => Err(e.into()),
                    Err(e) => Ok(Written::Refused(e.to_string())),
                }
            }
            Target::Table(table) => {
                let schema = match self.tables.schema(table) {
                    Ok(schema) => schema,
                    Err(e) => return Ok(Written::Refused(e.to_string())),
                };
                if let Err(why) = destination_table_fits(&schema) {
                    return Ok(Written::Refused(format!(
                        "table `{table}` cannot hold destination records: {why}"
                    )));
                }
                let key = &schema.primary_key()[0];
                let row = json!({ key.as_str(): destination.name, "record": destination.record });
                match self.tables.put_in(tx, table, row, lineage).await {
                    Ok(Some(change)) => match change.seq {
                        Some(seq) => Ok(Written::Journaled(seq)),
                        None => Ok(Written::Refused("the same record is there already".into())),
                    },
                    Ok(None) => Ok(Written::Refused(format!("table `{table}` does not exist"))),
                    Err(TableError::Bus(e)) => Err(e.into()),
                    Err(e) => Ok(Written::Refused(e.to_string())),
                }
            }
            Target::Function(_) => Ok(Written::Refused(
                "a function destination is journaled by the executor".into(),
            )),
        }
    }
}
