//! Named parameters in scenario SQL: `:name` placeholders.
//!
//! In steps, `:name` becomes a bind parameter, `$1`, `$2`, ... one per distinct name for
//! PostgreSQL, `?` per occurrence for MySQL: values are never spliced into statement text. In setup SQL, `:name` is replaced by the parameter's SQL literal
//! (the values come from the scenario's own `[params]`, typed and quoted here).
//! The scanner skips string literals, quoted identifiers, comments, dollar-quoted bodies and
//! `::` casts. This module only rewrites text; it must not look values up or talk to a database.

/// A statement whose `:name` placeholders were turned into bind parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NamedSql {
    /// The original text, as written in the scenario.
    pub source: String,
    /// The text sent to PostgreSQL, with `$1`, `$2`, ...
    #[serde(skip)]
    pub text: String,
    /// `names[i]` is the variable bound to `$(i+1)`.
    #[serde(skip)]
    pub names: Vec<String>,
    /// The text with a `?` for each placeholder (MySQL).
    #[serde(skip)]
    pub positional: String,
    /// `names[order[k]]` is the variable bound to the k-th `?`.
    #[serde(skip)]
    pub order: Vec<usize>,
}

impl NamedSql {
    /// The text to send: with `$n` placeholders (`numbered`) or with `?`.
    pub fn text_for(&self, numbered: bool) -> &str {
        if numbered {
            &self.text
        } else {
            &self.positional
        }
    }
}

/// Read back from its `source` (the rewritten text and names follow from it).
impl<'de> serde::Deserialize<'de> for NamedSql {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<NamedSql, D::Error> {
        #[derive(serde::Deserialize)]
        struct Written {
            source: String,
        }
        Written::deserialize(d).map(|w| parse_named(&w.source))
    }
}

/// Turns `:name` placeholders into `$n` bind parameters, one per distinct name.
pub fn parse_named(sql: &str) -> NamedSql {
    let mut names: Vec<String> = Vec::new();
    let text = rewrite(sql, |name| {
        let index = match names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                names.push(name.to_string());
                names.len() - 1
            }
        };
        Ok::<_, ()>(format!("${}", index + 1))
    })
    .unwrap_or_else(|()| unreachable!());
    let mut order = Vec::new();
    let positional = rewrite(sql, |name| {
        order.push(names.iter().position(|n| n == name).expect("named above"));
        Ok::<_, ()>("?".to_string())
    })
    .unwrap_or_else(|()| unreachable!());
    NamedSql {
        source: sql.to_string(),
        text,
        names,
        positional,
        order,
    }
}

/// Replaces every `:name` by `literal(name)`; fails on the first name `literal` refuses.
pub fn substitute<E>(
    sql: &str,
    literal: impl FnMut(&str) -> Result<String, E>,
) -> Result<String, E> {
    rewrite(sql, literal)
}

/// Quotes a string as a SQL literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The scanner shared by both rewrites.
fn rewrite<E>(sql: &str, mut on_name: impl FnMut(&str) -> Result<String, E>) -> Result<String, E> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                let escapes = i > 0 && (b[i - 1] == b'E' || b[i - 1] == b'e');
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        if i + 1 < b.len() && b[i + 1] == b'\'' {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                // $tag$ ... $tag$ (tag may be empty); `$1` is a positional parameter.
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j < b.len() && b[j] == b'$' && !b[i + 1].is_ascii_digit() {
                    let tag = &sql[i..=j];
                    i = match sql[j + 1..].find(tag) {
                        Some(end) => j + 1 + end + tag.len(),
                        None => b.len(),
                    };
                } else {
                    i = j;
                }
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' if b
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push_str(&sql[copied..i]);
                out.push_str(&on_name(&sql[start..j])?);
                copied = j;
                i = j;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_positional_parameters() {
        let s = parse_named("UPDATE t SET a = :a - 1 WHERE id = :id AND a = :a");
        assert_eq!(s.text, "UPDATE t SET a = $1 - 1 WHERE id = $2 AND a = $1");
        assert_eq!(s.names, vec!["a", "id"]);
    }

    #[test]
    fn casts_strings_comments_and_dollar_quotes_are_left_alone() {
        let sql =
            "SELECT :x::int, ':no', \"a:b\", E'\\':no' -- :no\n/* :no */ $$ :no $$, $t$:no$t$, $1";
        let s = parse_named(sql);
        assert_eq!(s.names, vec!["x"]);
        assert!(s.text.starts_with("SELECT $1::int, ':no'"));
        assert!(s.text.ends_with("$t$:no$t$, $1"));
    }

    #[test]
    fn substitute_inserts_literals() {
        let out = substitute("INSERT INTO t VALUES (:n, :s)", |name| match name {
            "n" => Ok("3".to_string()),
            "s" => Ok(quote_literal("it's")),
            other => Err(other.to_string()),
        })
        .unwrap();
        assert_eq!(out, "INSERT INTO t VALUES (3, 'it''s')");
        assert_eq!(
            substitute("SELECT :zz", |n| Err::<String, _>(n.to_string())),
            Err("zz".to_string())
        );
    }
}
