//! Conditions and computed values in scenario files (`reject_if = "available <= 0"`), compiled
//! once with the `evalexpr` crate and evaluated against a client's variables.
//!
//! This module wraps the crate and names its errors; it must not define its own grammar.

use evalexpr::{Context, EvalexprError, Node};

/// A value a scenario can hold: integer, float, boolean, string or empty (SQL NULL).
pub type Value = evalexpr::Value;

/// A compiled expression with its source text.
#[derive(Debug, Clone)]
pub struct Expr {
    pub source: String,
    node: Node,
}

impl Expr {
    pub fn parse(source: &str) -> Result<Expr, String> {
        let node = evalexpr::build_operator_tree(source)
            .map_err(|e| format!("cannot parse expression `{source}`: {e}"))?;
        // The parser accepts a dangling operator (`a >`); a trial evaluation with every
        // variable set to 0 finds it, while leaving type questions to the real values.
        let mut trial = evalexpr::HashMapContext::<evalexpr::DefaultNumericTypes>::new();
        for name in node.iter_read_variable_identifiers() {
            let _ = evalexpr::ContextWithMutableVariables::set_value(
                &mut trial,
                name.into(),
                Value::Int(0),
            );
        }
        if let Err(
            e @ (EvalexprError::WrongOperatorArgumentAmount { .. }
            | EvalexprError::WrongFunctionArgumentAmount { .. }
            | EvalexprError::FunctionIdentifierNotFound(_)),
        ) = node.eval_with_context(&trial)
        {
            return Err(format!("cannot parse expression `{source}`: {e}"));
        }
        Ok(Expr {
            source: source.to_string(),
            node,
        })
    }

    /// The variables the expression reads.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.node.iter_read_variable_identifiers()
    }

    pub fn eval<C: Context<NumericTypes = evalexpr::DefaultNumericTypes>>(
        &self,
        ctx: &C,
    ) -> Result<Value, String> {
        self.node.eval_with_context(ctx).map_err(|e| self.error(e))
    }

    pub fn eval_bool<C: Context<NumericTypes = evalexpr::DefaultNumericTypes>>(
        &self,
        ctx: &C,
    ) -> Result<bool, String> {
        match self.eval(ctx)? {
            Value::Boolean(b) => Ok(b),
            other => Err(format!(
                "`{}` gave {other:?}, expected true or false",
                self.source
            )),
        }
    }

    fn error(&self, e: EvalexprError) -> String {
        match e {
            EvalexprError::VariableIdentifierNotFound(name) => format!(
                "`{}`: variable `{name}` is not set (not a parameter, draw, built-in, or a column returned by an earlier step)",
                self.source
            ),
            other => format!("`{}`: {other}", self.source),
        }
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        let source = String::deserialize(d)?;
        Expr::parse(&source).map_err(serde::de::Error::custom)
    }
}

/// A value from plain JSON (as [`to_json`] writes it).
pub fn from_json(v: serde_json::Value) -> Result<Value, String> {
    Ok(match v {
        serde_json::Value::Null => Value::Empty,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().ok_or_else(|| format!("{n}: not a number"))?),
        },
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => {
            Value::Tuple(a.into_iter().map(from_json).collect::<Result<_, _>>()?)
        }
        serde_json::Value::Object(_) => return Err("expected a value, not an object".into()),
    })
}

/// A value as plain JSON (for reports).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::String(s) => s.clone().into(),
        Value::Float(f) => (*f).into(),
        Value::Int(i) => (*i).into(),
        Value::Boolean(b) => (*b).into(),
        Value::Tuple(t) => t.iter().map(to_json).collect(),
        Value::Empty => serde_json::Value::Null,
    }
}

/// A value as text, the way it is shown and sent to PostgreSQL.
pub fn to_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Float(f) => Some(f.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Tuple(t) => Some(
            t.iter()
                .map(|v| to_text(v).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Empty => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evalexpr::{ContextWithMutableVariables, HashMapContext};

    #[test]
    fn evaluates_against_variables() {
        let e = Expr::parse("available <= 0 && seats > 1").unwrap();
        let mut ctx = HashMapContext::new();
        ctx.set_value("available".into(), Value::Int(0)).unwrap();
        ctx.set_value("seats".into(), Value::Int(2)).unwrap();
        assert!(e.eval_bool(&ctx).unwrap());
        let mut vars: Vec<_> = e.variables().collect();
        vars.sort();
        assert_eq!(vars, vec!["available", "seats"]);
    }

    #[test]
    fn missing_variable_is_named() {
        let e = Expr::parse("nope > 1").unwrap();
        let err = e.eval_bool(&HashMapContext::new()).unwrap_err();
        assert!(err.contains("variable `nope` is not set"), "{err}");
    }

    #[test]
    fn bad_syntax_is_an_error() {
        assert!(Expr::parse("a >").is_err());
    }
}
