//! Moving scenario values in and out of PostgreSQL.
//!
//! Bind parameters are sent in text format, so PostgreSQL parses them as whatever type it
//! inferred for the placeholder (int, numeric, timestamp, ...). Result columns are decoded from
//! the common types into [`Value`]s. This module converts; it must not run statements.

use std::error::Error;

use bytes::BytesMut;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::engine::decimal_value;
use crate::scenario::Value;
use crate::scenario::expr::to_text;

/// A bind parameter: `None` or `Value::Empty` is SQL NULL, anything else is sent as text.
#[derive(Debug)]
pub struct TextParam<'a>(pub Option<&'a Value>);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        // Integers and strings (nearly every parameter) are written without a temporary String.
        match self.0 {
            Some(Value::Int(i)) => {
                std::fmt::Write::write_fmt(out, format_args!("{i}"))?;
                return Ok(IsNull::No);
            }
            Some(Value::String(s)) => {
                out.extend_from_slice(s.as_bytes());
                return Ok(IsNull::No);
            }
            _ => {}
        }
        match self.0.and_then(to_text) {
            None => Ok(IsNull::Yes),
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A result column decoded into a [`Value`].
struct Decoded(Value);

impl<'a> FromSql<'a> for Decoded {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Decoded(match *ty {
            Type::BOOL => Value::Boolean(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::OID => Value::Int(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
            Type::NUMERIC => decimal_value(Decimal::from_sql(ty, raw)?),
            _ => Value::String(String::from_sql(ty, raw)?),
        }))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Decoded(Value::Empty))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::BOOL
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC
        ) || <String as FromSql>::accepts(ty)
    }
}

/// Whether the lab can read columns of this type.
pub fn readable(ty: &Type) -> bool {
    <Decoded as FromSql>::accepts(ty)
}

/// Column `i` of a row as a value.
pub fn column(row: &Row, i: usize) -> Result<Value, tokio_postgres::Error> {
    row.try_get::<_, Decoded>(i).map(|d| d.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_numerics_are_integers() {
        assert_eq!(decimal_value(Decimal::new(100000, 2)), Value::Int(1000));
        assert_eq!(decimal_value(Decimal::new(35, 1)), Value::Float(3.5));
    }

    #[test]
    fn text_params_encode_values_and_null() {
        let mut buf = BytesMut::new();
        let v = Value::Int(42);
        assert!(matches!(
            TextParam(Some(&v)).to_sql(&Type::INT4, &mut buf).unwrap(),
            IsNull::No
        ));
        assert_eq!(&buf[..], b"42");
        assert!(matches!(
            TextParam(None).to_sql(&Type::INT4, &mut buf).unwrap(),
            IsNull::Yes
        ));
    }
}
