//! Moving scenario values in and out of PostgreSQL.
//!
//! Bind parameters are sent in text format, so PostgreSQL parses them as whatever type it
//! inferred for the placeholder (int, numeric, timestamp, ...). Result columns are decoded from
//! the common types into [`Value`]s. This module converts; it must not run statements.

use std::error::Error;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::types;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use crate::engine::{decimal_value, trim_fraction};
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
        Ok(write_text(self.0, out))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// Writes a bind value as text; `None` or `Value::Empty` is SQL NULL, written as nothing.
pub fn write_text(value: Option<&Value>, out: &mut BytesMut) -> IsNull {
    // Integers and strings (nearly every parameter) are written without a temporary String.
    match value {
        Some(Value::Int(i)) => {
            write_int(out, *i);
            return IsNull::No;
        }
        Some(Value::String(s)) => {
            out.extend_from_slice(s.as_bytes());
            return IsNull::No;
        }
        _ => {}
    }
    match value.and_then(to_text) {
        None => IsNull::Yes,
        Some(text) => {
            out.extend_from_slice(text.as_bytes());
            IsNull::No
        }
    }
}

/// Writes `i` in decimal, as `{i}` prints it, without `core::fmt`: nearly every bind value is
/// an integer, and formatting one cost about 240 instructions (callgrind, `tpcb`).
fn write_int(out: &mut BytesMut, i: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
}

/// A result column decoded into a [`Value`]: numbers as numbers, everything else the lab can
/// decode as the text PostgreSQL would print (timestamps in UTC).
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
            Type::MONEY => Value::Float(types::int8_from_sql(raw)? as f64 / 100.0),
            _ => Value::String(text(ty, raw)?),
        }))
    }

    fn from_sql_null(_ty: &Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Decoded(Value::Empty))
    }

    fn accepts(ty: &Type) -> bool {
        readable(ty)
    }
}

/// Whether the lab can read columns of this type: the common scalar types, and arrays, ranges
/// and domains over them, and enums.
pub fn readable(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Array(member) | Kind::Range(member) | Kind::Domain(member) => readable(member),
        Kind::Enum(_) => true,
        _ => {
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
                    | Type::MONEY
                    | Type::TIMESTAMP
                    | Type::TIMESTAMPTZ
                    | Type::DATE
                    | Type::TIME
                    | Type::INTERVAL
                    | Type::UUID
                    | Type::JSON
                    | Type::JSONB
                    | Type::BYTEA
                    | Type::INET
                    | Type::CIDR
                    | Type::POINT
                    | Type::MACADDR
            ) || <String as FromSql>::accepts(ty)
        }
    }
}

/// A value of a readable type as PostgreSQL's text output would show it.
fn text(ty: &Type, raw: &[u8]) -> Result<String, Box<dyn Error + Sync + Send>> {
    const MICROS: i64 = 1_000_000;
    let epoch = || {
        chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid date")
    };
    let timestamp = |micros: i64| -> Result<String, Box<dyn Error + Sync + Send>> {
        Ok(match micros {
            i64::MAX => "infinity".into(),
            i64::MIN => "-infinity".into(),
            _ => trim_fraction(
                (epoch() + chrono::Duration::microseconds(micros))
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string(),
            ),
        })
    };
    if let Kind::Domain(base) = ty.kind() {
        return text(base, raw);
    }
    if let Kind::Array(member) = ty.kind() {
        return array(member, raw);
    }
    if let Kind::Range(member) = ty.kind() {
        return range(member, raw);
    }
    Ok(match *ty {
        Type::BOOL
        | Type::INT2
        | Type::INT4
        | Type::INT8
        | Type::OID
        | Type::FLOAT4
        | Type::FLOAT8
        | Type::NUMERIC
        | Type::MONEY => {
            crate::scenario::expr::to_text(&Decoded::from_sql(ty, raw)?.0).unwrap_or_default()
        }
        Type::TIMESTAMP => timestamp(types::timestamp_from_sql(raw)?)?,
        Type::TIMESTAMPTZ => match types::timestamp_from_sql(raw)? {
            m @ (i64::MAX | i64::MIN) => timestamp(m)?,
            m => format!("{}+00", timestamp(m)?),
        },
        Type::DATE => match types::date_from_sql(raw)? {
            i32::MAX => "infinity".into(),
            i32::MIN => "-infinity".into(),
            days => (epoch().date() + chrono::Duration::days(days.into()))
                .format("%Y-%m-%d")
                .to_string(),
        },
        Type::TIME => trim_fraction(
            (epoch() + chrono::Duration::microseconds(types::time_from_sql(raw)?))
                .format("%H:%M:%S%.6f")
                .to_string(),
        ),
        Type::INTERVAL => {
            let (micros, days, months) = interval(raw)?;
            let mut parts = Vec::new();
            let (years, months) = (months / 12, months % 12);
            for (n, unit) in [(years, "year"), (months, "mon"), (days, "day")] {
                if n != 0 {
                    parts.push(format!("{n} {unit}{}", if n.abs() == 1 { "" } else { "s" }));
                }
            }
            if micros != 0 || parts.is_empty() {
                let sign = if micros < 0 { "-" } else { "" };
                let m = micros.unsigned_abs();
                let (h, rest) = (m / 3_600_000_000, m % 3_600_000_000);
                let (min, rest) = (rest / 60_000_000, rest % 60_000_000);
                let (sec, frac) = (rest / MICROS as u64, rest % MICROS as u64);
                let frac = if frac == 0 {
                    String::new()
                } else {
                    format!(".{frac:06}").trim_end_matches('0').to_string()
                };
                parts.push(format!("{sign}{h:02}:{min:02}:{sec:02}{frac}"));
            }
            parts.join(" ")
        }
        Type::UUID => {
            let b = types::uuid_from_sql(raw)?;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )
        }
        Type::JSON => types::text_from_sql(raw)?.to_string(),
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => types::text_from_sql(rest)?.to_string(),
            _ => return Err("unsupported jsonb encoding version".into()),
        },
        Type::BYTEA => {
            let hex: String = types::bytea_from_sql(raw)
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect();
            format!("\\x{hex}")
        }
        Type::INET | Type::CIDR => {
            let inet = types::inet_from_sql(raw)?;
            let full = if inet.addr().is_ipv4() { 32 } else { 128 };
            if *ty == Type::INET && inet.netmask() == full {
                inet.addr().to_string()
            } else {
                format!("{}/{}", inet.addr(), inet.netmask())
            }
        }
        Type::POINT => {
            let p = types::point_from_sql(raw)?;
            format!("({},{})", p.x(), p.y())
        }
        Type::MACADDR => types::macaddr_from_sql(raw)?
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        // Text types and enums: their binary form is their text.
        _ => types::text_from_sql(raw)?.to_string(),
    })
}

/// `{a,b,NULL}` (one dimension per level of braces, as PostgreSQL prints arrays).
fn array(member: &Type, raw: &[u8]) -> Result<String, Box<dyn Error + Sync + Send>> {
    let a = types::array_from_sql(raw)?;
    let dims: Vec<usize> = a
        .dimensions()
        .map(|d| Ok(usize::try_from(d.len).unwrap_or(0)))
        .collect()?;
    let values: Vec<String> = a
        .values()
        .map(|v| {
            Ok(match v {
                None => "NULL".to_string(),
                Some(b) => quote_element(&text(member, b)?),
            })
        })
        .collect()?;
    fn nest(dims: &[usize], values: &mut std::slice::Iter<'_, String>) -> String {
        let Some((&n, rest)) = dims.split_first() else {
            return values.next().cloned().unwrap_or_default();
        };
        let inner: Vec<String> = (0..n).map(|_| nest(rest, values)).collect();
        format!("{{{}}}", inner.join(","))
    }
    if dims.is_empty() {
        return Ok("{}".into());
    }
    Ok(nest(&dims, &mut values.iter()))
}

/// An array element as PostgreSQL quotes it: in double quotes when it is empty, `NULL`, or holds
/// a delimiter, brace, quote, backslash or space.
fn quote_element(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.eq_ignore_ascii_case("null")
        && !s.contains([',', '{', '}', '"', '\\', ' ']);
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// `[lower,upper)`, `(,upper]`, `empty`.
fn range(member: &Type, raw: &[u8]) -> Result<String, Box<dyn Error + Sync + Send>> {
    use types::{Range, RangeBound};
    let bound = |b: &RangeBound<Option<&[u8]>>| -> Result<String, Box<dyn Error + Sync + Send>> {
        Ok(match b {
            RangeBound::Inclusive(Some(v)) | RangeBound::Exclusive(Some(v)) => {
                let t = text(member, v)?;
                if t.contains([',', '(', ')', '[', ']', '"', ' ']) {
                    format!("\"{t}\"")
                } else {
                    t
                }
            }
            _ => String::new(),
        })
    };
    Ok(match types::range_from_sql(raw)? {
        Range::Empty => "empty".into(),
        Range::Nonempty(lo, hi) => format!(
            "{}{},{}{}",
            if matches!(lo, RangeBound::Inclusive(_)) {
                '['
            } else {
                '('
            },
            bound(&lo)?,
            bound(&hi)?,
            if matches!(hi, RangeBound::Inclusive(_)) {
                ']'
            } else {
                ')'
            },
        ),
    })
}

/// An interval's binary form: microseconds, days, months.
fn interval(mut raw: &[u8]) -> Result<(i64, i32, i32), Box<dyn Error + Sync + Send>> {
    let mut take = |n: usize| -> Result<&[u8], Box<dyn Error + Sync + Send>> {
        let (head, tail) = raw.split_at_checked(n).ok_or("invalid interval")?;
        raw = tail;
        Ok(head)
    };
    let micros = i64::from_be_bytes(take(8)?.try_into()?);
    let days = i32::from_be_bytes(take(4)?.try_into()?);
    let months = i32::from_be_bytes(take(4)?.try_into()?);
    Ok((micros, days, months))
}

/// Column `i` of a row as a value.
pub fn column(row: &Row, i: usize) -> Result<Value, tokio_postgres::Error> {
    row.try_get::<_, Decoded>(i).map(|d| d.0)
}

/// A column's value as the server sent it in binary (`None`: NULL), decoded as [`column`]
/// decodes a row's.
pub fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<Value, Box<dyn Error + Sync + Send>> {
    if !readable(ty) {
        return Err(format!("the lab cannot read values of type {ty}").into());
    }
    match raw {
        None => Ok(Value::Empty),
        Some(raw) => Decoded::from_sql(ty, raw).map(|d| d.0),
    }
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
    fn integers_are_written_as_display_writes_them() {
        for i in [0, 7, -7, 10, -5000, 100_000, i64::MAX, i64::MIN] {
            let mut buf = BytesMut::new();
            write_int(&mut buf, i);
            assert_eq!(&buf[..], i.to_string().as_bytes(), "{i}");
        }
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
