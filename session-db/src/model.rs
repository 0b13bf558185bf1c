//! Custom session models: extra columns filled from the session data.
//!
//! Django lets a project subclass `AbstractBaseSession`, add columns (say an indexed `account_id`),
//! and fill them in `create_model_instance(data)` on every save. [`SessionModel`] is that hook: it
//! declares the extra columns and computes their values from the session data on every insert and
//! every update, so queries such as "all sessions of account 42" work on both sides.

use std::fmt;

use session_core::Dict;

/// The SQL type of an extra column, named after the Django field that creates it.
///
/// Each maps to the column type Django's migration emits on each database (for example
/// [`ColumnType::Integer`] is `integer` everywhere; [`ColumnType::Text`] is `text` on PostgreSQL and
/// SQLite and `longtext` on MySQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// `IntegerField`: a 32-bit signed integer.
    Integer,
    /// `BigIntegerField`: a 64-bit signed integer.
    BigInteger,
    /// `BooleanField`.
    Boolean,
    /// `FloatField`: a double-precision float.
    Float,
    /// `TextField`: unbounded text (not indexable on MySQL).
    Text,
    /// `CharField(max_length=n)`: `varchar(n)`, at most `n` characters.
    VarChar(u32),
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Integer => f.write_str("integer"),
            ColumnType::BigInteger => f.write_str("big integer"),
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Text => f.write_str("text"),
            ColumnType::VarChar(n) => write!(f, "varchar({n})"),
        }
    }
}

/// One extra column of a custom session model.
///
/// ```
/// use session_db::{ColumnType, ExtraColumn};
///
/// // Django: account_id = models.IntegerField(null=True, db_index=True)
/// const ACCOUNT_ID: ExtraColumn = ExtraColumn::new("account_id", ColumnType::Integer)
///     .nullable()
///     .indexed();
/// assert!(ACCOUNT_ID.is_nullable() && ACCOUNT_ID.is_indexed());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtraColumn {
    name: &'static str,
    column_type: ColumnType,
    nullable: bool,
    indexed: bool,
}

impl ExtraColumn {
    /// A `NOT NULL`, unindexed column.
    pub const fn new(name: &'static str, column_type: ColumnType) -> Self {
        ExtraColumn {
            name,
            column_type,
            nullable: false,
            indexed: false,
        }
    }

    /// Allows `NULL` (Django's `null=True`).
    pub const fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }

    /// Adds an index, named as Django names it (Django's `db_index=True`).
    pub const fn indexed(mut self) -> Self {
        self.indexed = true;
        self
    }

    /// The column name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The column type.
    pub const fn column_type(&self) -> ColumnType {
        self.column_type
    }

    /// Whether `NULL` is allowed.
    pub const fn is_nullable(&self) -> bool {
        self.nullable
    }

    /// Whether the column is indexed.
    pub const fn is_indexed(&self) -> bool {
        self.indexed
    }

    /// Checks that `value` fits this column, so a bad value is refused before anything is written.
    pub(crate) fn check(&self, value: &ColumnValue) -> Result<(), String> {
        match (self.column_type, value) {
            (_, ColumnValue::Null) if self.nullable => Ok(()),
            (_, ColumnValue::Null) => Err("NULL in a NOT NULL column: return a value, or declare \
                 the column with .nullable()"
                .to_owned()),
            (ColumnType::Integer, ColumnValue::Integer(i)) => {
                i32::try_from(*i).map(drop).map_err(|_| {
                    format!("{i} does not fit a 32-bit integer column: use ColumnType::BigInteger")
                })
            }
            (ColumnType::BigInteger, ColumnValue::Integer(_))
            | (ColumnType::Boolean, ColumnValue::Boolean(_))
            | (ColumnType::Float, ColumnValue::Float(_))
            | (ColumnType::Text, ColumnValue::Text(_)) => Ok(()),
            (ColumnType::VarChar(n), ColumnValue::Text(s)) => {
                let chars = s.chars().count();
                if chars <= n as usize {
                    Ok(())
                } else {
                    Err(format!("{chars} characters do not fit varchar({n})"))
                }
            }
            (ty, other) => Err(format!(
                "a {} value does not fit a {ty} column",
                other.kind()
            )),
        }
    }
}

/// A value for an extra column.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValue {
    /// SQL `NULL` (Python's `None`).
    Null,
    /// An integer (for [`ColumnType::Integer`] it must fit 32 bits).
    Integer(i64),
    /// A boolean.
    Boolean(bool),
    /// A float.
    Float(f64),
    /// Text.
    Text(String),
}

impl ColumnValue {
    fn kind(&self) -> &'static str {
        match self {
            ColumnValue::Null => "NULL",
            ColumnValue::Integer(_) => "integer",
            ColumnValue::Boolean(_) => "boolean",
            ColumnValue::Float(_) => "float",
            ColumnValue::Text(_) => "text",
        }
    }

    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ColumnValue::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

impl From<i64> for ColumnValue {
    fn from(value: i64) -> Self {
        ColumnValue::Integer(value)
    }
}

impl From<i32> for ColumnValue {
    fn from(value: i32) -> Self {
        ColumnValue::Integer(value.into())
    }
}

impl From<bool> for ColumnValue {
    fn from(value: bool) -> Self {
        ColumnValue::Boolean(value)
    }
}

impl From<f64> for ColumnValue {
    fn from(value: f64) -> Self {
        ColumnValue::Float(value)
    }
}

impl From<String> for ColumnValue {
    fn from(value: String) -> Self {
        ColumnValue::Text(value)
    }
}

impl From<&str> for ColumnValue {
    fn from(value: &str) -> Self {
        ColumnValue::Text(value.to_owned())
    }
}

impl<T: Into<ColumnValue>> From<Option<T>> for ColumnValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(ColumnValue::Null, Into::into)
    }
}

/// A session model: Django's three columns plus any extra ones, filled from the session data.
///
/// The store calls [`values`](Self::values) on every insert and every update (Django's
/// `create_model_instance`), and creates the columns in [`ensure_schema`](crate::DbStore::ensure_schema).
/// This is Django's `CustomSession` from its test suite:
///
/// ```
/// use session_core::{Dict, Value};
/// use session_db::{ColumnType, ColumnValue, ExtraColumn, SessionModel};
///
/// /// `account_id = IntegerField(null=True, db_index=True)`, filled with
/// /// `int(data.get("_auth_user_id"))`, or NULL when that fails.
/// #[derive(Debug)]
/// struct CustomSession;
///
/// impl SessionModel for CustomSession {
///     fn extra_columns(&self) -> &[ExtraColumn] {
///         const COLUMNS: &[ExtraColumn] =
///             &[ExtraColumn::new("account_id", ColumnType::Integer).nullable().indexed()];
///         COLUMNS
///     }
///
///     fn values(&self, data: &Dict) -> Vec<ColumnValue> {
///         let account = match data.get("_auth_user_id") {
///             Some(Value::Int(i)) => i.as_i64(),
///             Some(Value::Str(s)) => s.trim().parse().ok(),
///             _ => None,
///         };
///         vec![account.into()]
///     }
/// }
///
/// let mut data = Dict::new();
/// data.insert("_auth_user_id", Value::from("42"));
/// assert_eq!(CustomSession.values(&data), vec![ColumnValue::Integer(42)]);
/// ```
pub trait SessionModel: Send + Sync + fmt::Debug + 'static {
    /// The extra columns, in table order (after `expire_date`).
    fn extra_columns(&self) -> &[ExtraColumn];

    /// One value per extra column, in the same order, computed from the session data being saved.
    fn values(&self, data: &Dict) -> Vec<ColumnValue>;
}

/// Django's own `Session` model: no extra columns. The default model of every store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DjangoSession;

impl SessionModel for DjangoSession {
    fn extra_columns(&self) -> &[ExtraColumn] {
        &[]
    }

    fn values(&self, _data: &Dict) -> Vec<ColumnValue> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_the_declared_type() {
        let int = ExtraColumn::new("n", ColumnType::Integer);
        assert!(
            int.check(&ColumnValue::Integer(i64::from(i32::MAX)))
                .is_ok()
        );
        assert!(
            int.check(&ColumnValue::Integer(i64::from(i32::MAX) + 1))
                .is_err()
        );
        assert!(int.check(&ColumnValue::Null).is_err());
        assert!(int.nullable().check(&ColumnValue::Null).is_ok());
        assert!(int.check(&ColumnValue::Text("1".into())).is_err());
        let name = ExtraColumn::new("name", ColumnType::VarChar(3));
        assert!(name.check(&"abc".into()).is_ok());
        assert!(
            name.check(&"äöü".into()).is_ok(),
            "varchar counts characters"
        );
        assert!(name.check(&"abcd".into()).is_err());
        let big = ExtraColumn::new("b", ColumnType::BigInteger);
        assert!(big.check(&ColumnValue::Integer(i64::MIN)).is_ok());
    }

    #[test]
    fn options_convert_to_null() {
        assert_eq!(ColumnValue::from(None::<i64>), ColumnValue::Null);
        assert_eq!(ColumnValue::from(Some(5i64)), ColumnValue::Integer(5));
    }
}
