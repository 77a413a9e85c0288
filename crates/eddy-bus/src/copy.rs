//! Copying a SQLite data directory's database into a PostgreSQL database, table by table, for
//! `eddy migrate`. Rows are read in the order SQLite stored them and written in transactions
//! of a few hundred; each value goes in as text cast to its column's type (so a JSON column
//! gets `jsonb`, a flag `boolean`), bytes as bytes.

use crate::sql::{Dialect, Sql, Value, quote_identifier};
use crate::{Bus, BusError};

/// Rows per write transaction.
const BATCH: usize = 500;

impl Bus {
    /// The platform's own tables here (those whose names start with `_eddy_`), in the order
    /// they were created.
    pub async fn platform_tables(&self) -> Result<Vec<String>, BusError> {
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '\\_eddy\\_%' ESCAPE '\\' ORDER BY rowid"
            }
            Dialect::Postgres => {
                "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE '\\_eddy\\_%' ORDER BY table_name"
            }
        };
        let rows = self.readers().fetch(sql, &[]).await?;
        rows.iter().map(|r| r.get::<String>("name")).collect()
    }

    /// How many rows `table` holds.
    pub async fn count_rows(&self, table: &str) -> Result<u64, BusError> {
        let sql = format!("SELECT count(*) AS n FROM {}", quote_identifier(table));
        self.readers().fetch_one(&sql, &[]).await?.get("n")
    }

    /// Copies every row of `table` from this SQLite database into the same table of `target`,
    /// a PostgreSQL database, keeping their order; then moves the target's sequences past the
    /// copied ids. Returns how many rows were copied.
    pub async fn copy_table_to(&self, target: &Bus, table: &str) -> Result<u64, BusError> {
        if self.dialect() != Dialect::Sqlite || target.dialect() != Dialect::Postgres {
            return Err(BusError::Copy(
                "copies go from a SQLite data directory to PostgreSQL".into(),
            ));
        }
        let types = target.column_types(table).await?;
        let mut copied = 0u64;
        let mut after = i64::MIN;
        loop {
            // Paged by rowid: any table without a key of its own has one.
            let sql = format!(
                "SELECT rowid AS _eddy_rowid, * FROM {} WHERE rowid > ? ORDER BY rowid LIMIT {BATCH}",
                quote_identifier(table)
            );
            let rows = self.readers().fetch(&sql, &[Value::Int(after)]).await?;
            let Some(last) = rows.last() else { break };
            after = last.get("_eddy_rowid")?;
            let columns: Vec<String> = last.columns()[1..].to_vec();
            let mut placeholders = Vec::with_capacity(columns.len());
            for column in &columns {
                let Some(kind) = types.get(column) else {
                    return Err(BusError::Copy(format!(
                        "column {column} of {table} is not in the PostgreSQL schema: is the database from another eddy version?"
                    )));
                };
                placeholders.push(match kind.as_str() {
                    "bytea" => "?".to_string(),
                    kind => format!("CAST(? AS {kind})"),
                });
            }
            let row_sql = format!("({})", placeholders.join(", "));
            let insert = format!(
                "INSERT INTO {} ({}) VALUES {}",
                quote_identifier(table),
                columns
                    .iter()
                    .map(|c| quote_identifier(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                vec![row_sql; rows.len()].join(", ")
            );
            let mut values = Vec::with_capacity(rows.len() * columns.len());
            for row in rows {
                for (column, value) in columns.iter().zip(row.into_values().into_iter().skip(1)) {
                    values.push(as_text(value, &types[column]));
                }
            }
            copied += target
                .write((insert, values), |tx, (insert, values)| {
                    Box::pin(async move { tx.execute(insert, values).await })
                })
                .await?;
        }
        target.restart_sequences(table).await?;
        Ok(copied)
    }

    /// Each column of `table` (PostgreSQL) with its type's name.
    async fn column_types(
        &self,
        table: &str,
    ) -> Result<std::collections::HashMap<String, String>, BusError> {
        let rows = self
            .readers()
            .fetch(
                "SELECT column_name::text AS name, udt_name::text AS kind FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
                &[Value::from(table)],
            )
            .await?;
        if rows.is_empty() {
            return Err(BusError::Copy(format!(
                "the PostgreSQL database has no table {table}"
            )));
        }
        rows.iter()
            .map(|r| Ok((r.get("name")?, r.get("kind")?)))
            .collect()
    }

    /// Moves the sequences behind `table`'s serial columns past their largest value.
    async fn restart_sequences(&self, table: &str) -> Result<(), BusError> {
        let serials = self
            .readers()
            .fetch(
                "SELECT column_name::text AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND column_default LIKE 'nextval(%'",
                &[Value::from(table)],
            )
            .await?;
        for serial in serials {
            let column: String = serial.get("name")?;
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence(?, ?), (SELECT COALESCE(max({}), 0) + 1 FROM {}), false)",
                quote_identifier(&column),
                quote_identifier(table)
            );
            let args = vec![Value::from(table), Value::from(column.as_str())];
            self.write((sql, args), |tx, (sql, args)| {
                Box::pin(async move { tx.fetch(sql, args).await.map(|_| ()) })
            })
            .await?;
        }
        Ok(())
    }
}

/// `value` as the text PostgreSQL casts to a column of type `kind` (bytes stay bytes).
fn as_text(value: Value, kind: &str) -> Value {
    match value {
        Value::Null | Value::Bytes(_) | Value::Text(_) => value,
        // SQLite keeps flags as 0 and 1.
        Value::Int(n) if kind == "bool" => Value::Text((n != 0).to_string()),
        Value::Int(n) => Value::Text(n.to_string()),
        // Shortest text that reads back as the same double.
        Value::Real(x) => Value::Text(format!("{x:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_become_the_text_their_column_type_reads() {
        assert_eq!(as_text(Value::Int(1), "bool"), Value::from("true"));
        assert_eq!(as_text(Value::Int(0), "bool"), Value::from("false"));
        assert_eq!(as_text(Value::Int(-7), "int8"), Value::from("-7"));
        assert_eq!(as_text(Value::Real(0.1), "float8"), Value::from("0.1"));
        assert_eq!(as_text(Value::Real(1e300), "float8"), Value::from("1e300"));
        assert_eq!(as_text(Value::Null, "jsonb"), Value::Null);
    }
}
