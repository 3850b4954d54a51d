//! Moving scenario values in and out of MariaDB/MySQL.
//!
//! Bind parameters are sent typed (integers as BIGINT, floats as DOUBLE, booleans, strings;
//! NULL for an unset variable): MySQL converts them where a column wants another type. Result
//! columns are decoded from the common types into [`Value`]s. This module converts; it must not
//! run statements.

use rust_decimal::Decimal;
use sqlx::mysql::{MySqlArguments, MySqlRow, MySqlValueRef};
use sqlx::{Arguments, Decode, Row, TypeInfo, ValueRef};

use crate::engine::{decimal_value, trim_fraction};
use crate::scenario::Value;
use crate::scenario::expr::to_text;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Adds one bind parameter.
pub fn bind(args: &mut MySqlArguments, v: Option<&Value>) -> Result<(), BoxError> {
    match v {
        None | Some(Value::Empty) => args.add(None::<i64>),
        Some(Value::Int(i)) => args.add(*i),
        Some(Value::Float(f)) => args.add(*f),
        Some(Value::Boolean(b)) => args.add(*b),
        Some(Value::String(s)) => args.add(s.as_str()),
        Some(other) => args.add(to_text(other)),
    }
}

/// What the lab reads a column of this type as (`None`: it cannot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Signed,
    Unsigned,
    Boolean,
    Decimal,
    Float,
    Double,
    Text,
    Date,
    DateTime,
    Time,
}

fn kind(type_name: &str) -> Option<Kind> {
    Some(match type_name {
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => Kind::Signed,
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
        | "BIGINT UNSIGNED" | "BIT" => Kind::Unsigned,
        "BOOLEAN" => Kind::Boolean,
        "DECIMAL" => Kind::Decimal,
        "FLOAT" => Kind::Float,
        "DOUBLE" => Kind::Double,
        "DATE" => Kind::Date,
        "DATETIME" | "TIMESTAMP" => Kind::DateTime,
        "TIME" => Kind::Time,
        "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET"
        | "JSON" | "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB"
        | "NULL" => Kind::Text,
        _ => return None,
    })
}

/// Whether the lab can read columns of this type.
pub fn readable(type_name: &str) -> bool {
    kind(type_name).is_some()
}

/// Column `i` of a row as a value.
pub fn column(row: &MySqlRow, i: usize) -> Result<Value, BoxError> {
    let raw: MySqlValueRef<'_> = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Empty);
    }
    let type_name = raw.type_info().name().to_string();
    let Some(k) = kind(&type_name) else {
        return Err(format!(
            "column {i} has type {type_name}, which the lab cannot read: cast it (CAST(... AS SIGNED), AS DOUBLE or AS CHAR)"
        )
        .into());
    };
    Ok(match k {
        Kind::Signed => Value::Int(<i64 as Decode<sqlx::MySql>>::decode(raw)?),
        Kind::Unsigned => {
            let u = <u64 as Decode<sqlx::MySql>>::decode(raw)?;
            i64::try_from(u).map_or(Value::Float(u as f64), Value::Int)
        }
        Kind::Boolean => Value::Boolean(<bool as Decode<sqlx::MySql>>::decode(raw)?),
        Kind::Decimal => decimal_value(<Decimal as Decode<sqlx::MySql>>::decode(raw)?),
        Kind::Float => Value::Float(<f32 as Decode<sqlx::MySql>>::decode(raw)?.into()),
        Kind::Double => Value::Float(<f64 as Decode<sqlx::MySql>>::decode(raw)?),
        Kind::Date => Value::String(
            <chrono::NaiveDate as Decode<sqlx::MySql>>::decode(raw)?
                .format("%Y-%m-%d")
                .to_string(),
        ),
        Kind::DateTime => {
            let t = <chrono::NaiveDateTime as Decode<sqlx::MySql>>::decode(raw)?;
            Value::String(trim_fraction(t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()))
        }
        Kind::Time => Value::String(trim_fraction(
            <sqlx::mysql::types::MySqlTime as Decode<sqlx::MySql>>::decode(raw)?.to_string(),
        )),
        Kind::Text => Value::String(
            String::from_utf8_lossy(<&[u8] as Decode<sqlx::MySql>>::decode(raw)?).into_owned(),
        ),
    })
}
