//! Slots, which cap each function's running invocations. A SQLite database is held by one
//! process (its data directory's lock), so every executor that can claim from it shares one
//! store, and slots are counted in its memory. On PostgreSQL each running invocation holds a
//! row of `_eddy_slots`, taken in a write transaction (writes are serialised by the journal
//! lock, so a count and the rows it allows are one step across every node); a node that dies
//! leaves rows that stop counting when their time runs out (a row handed from batch to batch is
//! held anew each time), and a node that starts again releases its own.

use std::collections::HashMap;
use std::sync::Mutex;

use eddy_bus::sql::{Dialect, Sql, Value, rows_of};
use eddy_bus::{Bus, args};

use crate::ExecError;

pub(super) enum Slots {
    /// Running attempts per function, in this process.
    InProcess(Mutex<HashMap<String, u32>>),
    /// Rows of `_eddy_slots`, this node's marked with its id.
    Shared { bus: Bus, node: String },
}

impl Slots {
    /// The slots of `bus`'s database, as node `node` takes them.
    pub(super) fn new(bus: &Bus, node: &str) -> Self {
        match bus.dialect() {
            Dialect::Sqlite => Self::InProcess(Mutex::default()),
            Dialect::Postgres => Self::Shared {
                bus: bus.clone(),
                node: node.to_string(),
            },
        }
    }

    /// Releases the slots `node` held before it started again (its previous process's
    /// attempts: none runs now), and those of nodes whose time ran out, in the caller's
    /// transaction.
    pub(super) async fn release_node(
        &self,
        tx: &mut dyn Sql,
        node: &str,
        now_ms: i64,
    ) -> Result<(), ExecError> {
        if let Self::Shared { .. } = self {
            tx.execute(
                "DELETE FROM _eddy_slots WHERE node = ? OR until_ms < ?",
                args![node, now_ms],
            )
            .await?;
        }
        Ok(())
    }

    /// Takes up to `want` of `function`'s free slots (of `capacity`); returns how many.
    pub(super) async fn take(
        &self,
        function: &str,
        capacity: u32,
        want: u32,
        until_ms: i64,
    ) -> Result<u32, ExecError> {
        let (bus, node) = match self {
            Self::InProcess(in_use) => {
                let mut in_use = in_use.lock().expect("slot lock");
                let used = in_use.entry(function.to_string()).or_default();
                let granted = capacity.saturating_sub(*used).min(want);
                *used += granted;
                return Ok(granted);
            }
            Self::Shared { bus, node } => (bus, node),
        };
        if want == 0 {
            return Ok(0);
        }
        let input = (function.to_string(), node.clone(), capacity, want, until_ms);
        bus.write(input, |tx, (function, node, capacity, want, until_ms)| {
            Box::pin(async move {
                let now = eddy_bus::now_ms();
                let row = tx
                    .fetch_one(
                        "SELECT count(*) AS n FROM _eddy_slots WHERE function = ? AND until_ms > ?",
                        args![function.as_str(), now],
                    )
                    .await?;
                let used: u32 = row.get("n")?;
                let granted = capacity.saturating_sub(used).min(*want);
                if granted > 0 {
                    let mut values = Vec::new();
                    for _ in 0..granted {
                        values.extend([
                            Value::from(function.as_str()),
                            Value::from(node.as_str()),
                            Value::from(*until_ms),
                        ]);
                    }
                    let sql = format!(
                        "INSERT INTO _eddy_slots (function, node, until_ms) VALUES {}",
                        rows_of(granted as usize, 3)
                    );
                    tx.execute(&sql, &values).await?;
                }
                Ok::<_, ExecError>(granted)
            })
        })
        .await
    }

    /// Holds this node's slots of `function` at least until `until_ms`.
    pub(super) async fn hold(
        &self,
        tx: &mut dyn Sql,
        function: &str,
        until_ms: i64,
    ) -> Result<(), ExecError> {
        match self {
            // Held in this process's memory, for as long as it lives.
            Self::InProcess(_) => Ok(()),
            Self::Shared { node, .. } => {
                tx.execute(
                    "UPDATE _eddy_slots SET until_ms = ?
                     WHERE function = ? AND node = ? AND until_ms < ?",
                    args![until_ms, function, node.as_str(), until_ms],
                )
                .await?;
                Ok(())
            }
        }
    }

    /// Returns `n` slots of `function`.
    pub(super) async fn give_back(&self, function: &str, n: u32) -> Result<(), ExecError> {
        let (bus, node) = match self {
            Self::InProcess(in_use) => {
                let mut in_use = in_use.lock().expect("slot lock");
                if let Some(used) = in_use.get_mut(function) {
                    *used = used.saturating_sub(n);
                }
                return Ok(());
            }
            Self::Shared { bus, node } => (bus, node),
        };
        if n == 0 {
            return Ok(());
        }
        let input = (function.to_string(), node.clone(), n);
        bus.write(input, |tx, (function, node, n)| {
            Box::pin(async move {
                let sql = format!(
                    "DELETE FROM _eddy_slots WHERE id IN (
                         SELECT id FROM _eddy_slots WHERE function = ? AND node = ?
                         ORDER BY until_ms {})",
                    eddy_bus::sql::limit(*n)
                );
                tx.execute(&sql, args![function.as_str(), node.as_str()])
                    .await?;
                Ok::<_, ExecError>(())
            })
        })
        .await
    }
}
