//! The SQL that realises a table schema, and what may change between two declarations of one
//! table.

use eddy_bus::sql::Dialect;
use eddy_core::schema::list;
use eddy_core::{Column, ColumnName, ColumnType, TableSchema};

#[cfg(test)]
use eddy_core::TableName;

/// The statement that creates a table for `schema`: a SQLite `STRICT` table, or a PostgreSQL
/// table of typed columns (text keys in byte order, as S3 and SQLite sort).
pub(crate) fn create_sql(schema: &TableSchema, dialect: Dialect) -> String {
    let mut defs: Vec<String> = schema
        .columns()
        .iter()
        .map(|c| column_sql(c, dialect, schema.is_key(c.name.as_str())))
        .collect();
    defs.push(format!(
        "PRIMARY KEY ({})",
        quote_list(schema.primary_key().iter())
    ));
    let strict = if dialect == Dialect::Sqlite {
        " STRICT"
    } else {
        ""
    };
    format!(
        "CREATE TABLE {} ({}){strict}",
        quote(schema.name().as_str()),
        defs.join(", ")
    )
}

pub(crate) fn add_column_sql(schema: &TableSchema, column: &Column, dialect: Dialect) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN {}",
        quote(schema.name().as_str()),
        column_sql(column, dialect, false)
    )
}

/// What changes from `stored` to `next` (declared): the columns to add, or the reasons the
/// change is refused.
pub(crate) fn migration(
    stored: &TableSchema,
    next: &TableSchema,
) -> Result<Vec<Column>, Vec<String>> {
    let mut refused = Vec::new();
    if next.primary_key() != stored.primary_key() {
        refused.push(format!(
            "the primary key changes from ({}) to ({})",
            list(stored.primary_key().iter()),
            list(next.primary_key().iter())
        ));
    }
    for old in stored.columns() {
        match next.column(old.name.as_str()) {
            None => refused.push(format!("column {:?} is removed", old.name.as_str())),
            Some(new) if new.ty != old.ty => refused.push(format!(
                "column {:?} changes type from {} to {}",
                old.name.as_str(),
                old.ty,
                new.ty
            )),
            Some(new) if new.nullable != old.nullable => refused.push(format!(
                "column {:?} changes from {} to {}",
                old.name.as_str(),
                nullability(old.nullable),
                nullability(new.nullable)
            )),
            Some(_) => {}
        }
    }
    let added: Vec<Column> = next
        .columns()
        .iter()
        .filter(|c| stored.column(c.name.as_str()).is_none())
        .cloned()
        .collect();
    for c in added.iter().filter(|c| !c.nullable) {
        refused.push(format!(
                "new column {:?} is not nullable, but existing rows have no value for it; declare it nullable",
                c.name.as_str()
            ));
    }
    if refused.is_empty() {
        Ok(added)
    } else {
        Err(refused)
    }
}

fn nullability(nullable: bool) -> &'static str {
    if nullable { "nullable" } else { "not nullable" }
}

fn column_sql(c: &Column, dialect: Dialect, key: bool) -> String {
    let name = quote(c.name.as_str());
    let (sql_type, check) = match (dialect, c.ty) {
        (Dialect::Sqlite, ColumnType::Text) => ("TEXT", None),
        (Dialect::Sqlite, ColumnType::Integer) => ("INTEGER", None),
        (Dialect::Sqlite, ColumnType::Real) => ("REAL", None),
        (Dialect::Sqlite, ColumnType::Boolean) => {
            ("INTEGER", Some(format!("CHECK ({name} IN (0, 1))")))
        }
        (Dialect::Sqlite, ColumnType::Json) => {
            ("TEXT", Some(format!("CHECK (json_valid({name}))")))
        }
        (Dialect::Postgres, ColumnType::Text) if key => ("TEXT COLLATE \"C\"", None),
        (Dialect::Postgres, ColumnType::Text) => ("TEXT", None),
        (Dialect::Postgres, ColumnType::Integer) => ("BIGINT", None),
        (Dialect::Postgres, ColumnType::Real) => ("DOUBLE PRECISION", None),
        (Dialect::Postgres, ColumnType::Boolean) => {
            ("SMALLINT", Some(format!("CHECK ({name} IN (0, 1))")))
        }
        (Dialect::Postgres, ColumnType::Json) => ("JSONB", None),
    };
    let mut sql = format!("{name} {sql_type}");
    if !c.nullable {
        sql.push_str(" NOT NULL");
    }
    if let Some(check) = check {
        sql.push(' ');
        sql.push_str(&check);
    }
    sql
}

pub(crate) use eddy_bus::sql::quote_identifier as quote;

pub(crate) fn quote_list<'a>(names: impl Iterator<Item = &'a ColumnName>) -> String {
    names
        .map(|n| quote(n.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: ColumnType, nullable: bool) -> Column {
        Column {
            name: ColumnName::new(name).unwrap(),
            ty,
            nullable,
        }
    }

    fn schema(columns: Vec<Column>, key: &[&str]) -> Result<TableSchema, eddy_core::SchemaError> {
        TableSchema::new(
            TableName::new("orders").unwrap(),
            columns,
            key.iter().map(|k| ColumnName::new(*k).unwrap()).collect(),
        )
    }

    #[test]
    fn ddl_quotes_every_identifier_and_uses_strict_tables() {
        let s = schema(
            vec![
                col("id", ColumnType::Integer, false),
                col("done", ColumnType::Boolean, true),
                col("meta", ColumnType::Json, true),
            ],
            &["id"],
        )
        .unwrap();
        assert_eq!(
            create_sql(&s, Dialect::Sqlite),
            "CREATE TABLE \"orders\" (\"id\" INTEGER NOT NULL, \"done\" INTEGER CHECK (\"done\" IN (0, 1)), \
             \"meta\" TEXT CHECK (json_valid(\"meta\")), PRIMARY KEY (\"id\")) STRICT"
        );
    }

    #[test]
    fn only_nullable_additions_migrate() {
        let base = schema(
            vec![
                col("id", ColumnType::Integer, false),
                col("a", ColumnType::Text, true),
            ],
            &["id"],
        )
        .unwrap();
        let added = schema(
            vec![
                col("id", ColumnType::Integer, false),
                col("a", ColumnType::Text, true),
                col("b", ColumnType::Real, true),
            ],
            &["id"],
        )
        .unwrap();
        assert_eq!(
            migration(&base, &added).unwrap(),
            vec![col("b", ColumnType::Real, true)]
        );
        assert_eq!(migration(&base, &base).unwrap(), vec![]);
        let destructive = schema(
            vec![
                col("id", ColumnType::Text, false),
                col("c", ColumnType::Text, false),
            ],
            &["id"],
        )
        .unwrap();
        let reasons = migration(&base, &destructive).unwrap_err();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("changes type from integer to text"));
        assert!(reasons[1].contains("\"a\" is removed"));
        assert!(reasons[2].contains("declare it nullable"));
    }
}
