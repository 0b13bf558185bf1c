//! Django's `django_session` schema: the DDL its migration emits on each database, index names
//! included, and the SQL the store runs against it.

use md5::{Digest, Md5};

use crate::error::DbError;
use crate::model::{ColumnType, ExtraColumn};

/// Django's default table name.
pub const DEFAULT_TABLE: &str = "django_session";

/// The longest session key the table holds (`session_key varchar(40)`).
pub const MAX_KEY_CHARS: usize = 40;

/// Django's three columns, in table order.
pub(crate) const DJANGO_COLUMNS: [&str; 3] = ["session_key", "session_data", "expire_date"];

/// The SQL dialect of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// Quotes an identifier (already validated with [`is_identifier`]: no quote characters can
    /// occur).
    pub fn quote(self, identifier: &str) -> String {
        match self {
            Dialect::MySql => format!("`{identifier}`"),
            Dialect::Postgres | Dialect::Sqlite => format!("\"{identifier}\""),
        }
    }

    /// The placeholder of the `n`th (1-based) parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}"),
            Dialect::MySql | Dialect::Sqlite => "?".to_owned(),
        }
    }

    /// Django's `connection.ops.max_name_length() or 200`.
    fn max_name_length(self) -> usize {
        match self {
            Dialect::Postgres => 63,
            Dialect::MySql => 64,
            Dialect::Sqlite => 200,
        }
    }

    fn expire_date_type(self) -> &'static str {
        match self {
            Dialect::Postgres => "timestamp with time zone",
            Dialect::MySql => "datetime(6)",
            Dialect::Sqlite => "datetime",
        }
    }

    fn text_type(self) -> &'static str {
        match self {
            Dialect::MySql => "longtext",
            Dialect::Postgres | Dialect::Sqlite => "text",
        }
    }

    /// The column type Django's `data_types` gives each field on this database.
    fn column_type(self, ty: ColumnType) -> String {
        match (self, ty) {
            (_, ColumnType::Integer) => "integer".to_owned(),
            (_, ColumnType::BigInteger) => "bigint".to_owned(),
            (Dialect::Postgres, ColumnType::Boolean) => "boolean".to_owned(),
            (Dialect::MySql | Dialect::Sqlite, ColumnType::Boolean) => "bool".to_owned(),
            (Dialect::Sqlite, ColumnType::Float) => "real".to_owned(),
            (Dialect::Postgres | Dialect::MySql, ColumnType::Float) => {
                "double precision".to_owned()
            }
            (_, ColumnType::Text) => self.text_type().to_owned(),
            (_, ColumnType::VarChar(n)) => format!("varchar({n})"),
        }
    }
}

/// Checks a table or column name: letters, digits and underscores, not starting with a digit, at
/// most 63 bytes (PostgreSQL's limit). Names are quoted in SQL, so case is kept.
pub fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 63
}

/// Django's `names_digest(*args, length=8)`: the first 8 hex digits of the MD5 of the
/// concatenated names.
fn names_digest(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part.as_bytes());
    }
    md5.finalize()
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Django's `BaseDatabaseSchemaEditor._create_index_name(table, [column], suffix)`, for one column.
pub fn django_index_name(dialect: Dialect, table: &str, column: &str, suffix: &str) -> String {
    let max_length = dialect.max_name_length();
    let mut hash_suffix = format!("{}{suffix}", names_digest(&[table, column]));
    let name = format!("{table}_{column}_{hash_suffix}");
    if name.len() <= max_length {
        return name;
    }
    // Identifiers are ASCII (checked), so byte slicing is character slicing, as in Python.
    if hash_suffix.len() * 3 > max_length {
        hash_suffix.truncate(max_length / 3);
    }
    let other = (max_length - hash_suffix.len()) / 2 - 1;
    let name = format!(
        "{}_{}_{hash_suffix}",
        &table[..other.min(table.len())],
        &column[..other.min(column.len())]
    );
    if name.starts_with('_') || name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("D{}", &name[..name.len() - 1])
    } else {
        name
    }
}

/// The statements Django's migration runs to create the session table of a model with these
/// extra columns (`CREATE TABLE`, then the indexes in field order), without trailing semicolons.
pub fn create_table_sql(dialect: Dialect, table: &str, extra: &[ExtraColumn]) -> Vec<String> {
    let q = |name: &str| dialect.quote(name);
    let mut columns = vec![
        format!("{} varchar(40) NOT NULL PRIMARY KEY", q("session_key")),
        format!("{} {} NOT NULL", q("session_data"), dialect.text_type()),
        format!(
            "{} {} NOT NULL",
            q("expire_date"),
            dialect.expire_date_type()
        ),
    ];
    for column in extra {
        columns.push(format!(
            "{} {} {}",
            q(column.name()),
            dialect.column_type(column.column_type()),
            if column.is_nullable() {
                "NULL"
            } else {
                "NOT NULL"
            }
        ));
    }
    let mut statements = vec![format!(
        "CREATE TABLE {} ({})",
        q(table),
        columns.join(", ")
    )];
    let index = |column: &str, suffix: &str, opclass: Option<&str>| {
        format!(
            "CREATE INDEX {} ON {} ({}{})",
            q(&django_index_name(dialect, table, column, suffix)),
            q(table),
            q(column),
            opclass.map(|o| format!(" {o}")).unwrap_or_default()
        )
    };
    // PostgreSQL: varchar/text columns that are indexed or unique (the primary key) get a second,
    // pattern-ops index for LIKE queries.
    let like_opclass = |ty: ColumnType| match ty {
        ColumnType::VarChar(_) => Some("varchar_pattern_ops"),
        ColumnType::Text => Some("text_pattern_ops"),
        _ => None,
    };
    if dialect == Dialect::Postgres {
        statements.push(index("session_key", "_like", Some("varchar_pattern_ops")));
    }
    statements.push(index("expire_date", "", None));
    for column in extra.iter().filter(|c| c.is_indexed()) {
        statements.push(index(column.name(), "", None));
        if dialect == Dialect::Postgres
            && let Some(opclass) = like_opclass(column.column_type())
        {
            statements.push(index(column.name(), "_like", Some(opclass)));
        }
    }
    statements
}

/// Validates the table name and the model's columns.
pub(crate) fn validate(table: &str, extra: &[ExtraColumn]) -> Result<(), DbError> {
    if !is_identifier(table) {
        return Err(DbError::InvalidTableName {
            name: table.to_owned(),
        });
    }
    let mut seen: Vec<&str> = DJANGO_COLUMNS.to_vec();
    for column in extra {
        if !is_identifier(column.name()) {
            return Err(DbError::InvalidColumnName {
                name: column.name().to_owned(),
            });
        }
        if seen.iter().any(|s| s.eq_ignore_ascii_case(column.name())) {
            return Err(DbError::DuplicateColumn {
                name: column.name().to_owned(),
            });
        }
        seen.push(column.name());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_match_djangos_digests() {
        // Values printed by Django 5.2's schema editor (spec §3.1).
        assert_eq!(
            django_index_name(Dialect::Sqlite, "django_session", "expire_date", ""),
            "django_session_expire_date_a5c62663"
        );
        assert_eq!(
            django_index_name(Dialect::Postgres, "django_session", "session_key", "_like"),
            "django_session_session_key_c0390e0f_like"
        );
    }

    #[test]
    fn long_index_names_are_shortened_like_djangos() {
        let table = "t".repeat(60);
        let name = django_index_name(Dialect::Postgres, &table, "expire_date", "");
        assert!(name.len() <= 63, "{name}");
        // (63 - 8) / 2 - 1 = 26 characters of each part.
        assert!(name.starts_with(&format!("{}_expire_date_", "t".repeat(26))));
    }

    #[test]
    fn identifiers_are_restricted() {
        assert!(is_identifier("django_session"));
        assert!(is_identifier("_x9"));
        for bad in ["", "9a", "a-b", "a\"b", "a`b", "a b", "sessions;drop", "é"] {
            assert!(!is_identifier(bad), "{bad:?}");
        }
        assert!(!is_identifier(&"a".repeat(64)));
    }

    #[test]
    fn model_columns_must_not_shadow_djangos() {
        let dup = [ExtraColumn::new("Expire_Date", ColumnType::Integer)];
        assert!(matches!(
            validate("t", &dup),
            Err(DbError::DuplicateColumn { .. })
        ));
    }
}
