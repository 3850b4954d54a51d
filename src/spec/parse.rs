//! The isolation tester's spec format, read: top-level `setup { SQL }` blocks (several),
//! an optional `teardown { SQL }`, one or more `session NAME { setup? step NAME { SQL }...
//! teardown? }`, then `permutation STEP...` lines whose steps may carry annotations in
//! parentheses (`s1a(*)`, `s1a(s2b)`, `s1a(s2b notices 1)`). Names are bare identifiers or
//! double-quoted; `#` starts a comment to the end of the line. Errors name the file, the line
//! and what was expected. This module parses; it must not run anything.

use std::path::Path;

/// A parsed spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub setup: Vec<String>,
    pub teardown: Option<String>,
    pub sessions: Vec<SpecSession>,
    pub permutations: Vec<Permutation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecSession {
    pub name: String,
    pub setup: Option<String>,
    pub steps: Vec<SpecStep>,
    pub teardown: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecStep {
    pub name: String,
    pub sql: String,
    pub line: usize,
}

/// A `permutation` line: step names with their annotations (`*`, or other steps' names).
#[derive(Debug, Clone, PartialEq)]
pub struct Permutation {
    pub steps: Vec<(String, Vec<String>)>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Sql(String),
    Punct(char),
    Number(u64),
}

struct Lexer<'a> {
    file: &'a Path,
    toks: Vec<(Tok, usize)>,
    at: usize,
}

fn lex(file: &Path, text: &str) -> Result<Vec<(Tok, usize)>, String> {
    let err = |line: usize, m: String| format!("{}:{line}: {m}", file.display());
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                let start = line;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated quoted name".into())),
                        Some('\n') => {
                            return Err(err(start, "unexpected newline in a quoted name".into()));
                        }
                        Some('"') => break,
                        Some(&c) => s.push(c),
                    }
                    i += 1;
                }
                i += 1;
                out.push((Tok::Quoted(s), start));
            }
            '{' => {
                // Braces nest, so SQL may hold `'{1,2}'`; the first unmatched `}` ends it.
                let start = line;
                let mut depth = 1;
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(err(start, "unterminated SQL block: expected `}`".into()));
                    };
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        '\n' => line += 1,
                        _ => {}
                    }
                    s.push(c);
                    i += 1;
                }
                i += 1;
                out.push((Tok::Sql(s.trim().to_string()), start));
            }
            '(' | ')' | ',' | '*' => {
                out.push((Tok::Punct(c), line));
                i += 1;
            }
            c if c.is_ascii_digit() => {
                let mut n = String::new();
                while i < chars.len() && chars[i].is_ascii_digit() {
                    n.push(chars[i]);
                    i += 1;
                }
                out.push((
                    Tok::Number(
                        n.parse()
                            .map_err(|_| err(line, "number too large".into()))?,
                    ),
                    line,
                ));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut w = String::new();
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    w.push(chars[i]);
                    i += 1;
                }
                out.push((Tok::Word(w), line));
            }
            other => return Err(err(line, format!("unexpected character `{other}`"))),
        }
    }
    Ok(out)
}

impl Lexer<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn line(&self) -> usize {
        self.toks
            .get(self.at)
            .or(self.toks.last())
            .map_or(1, |(_, l)| *l)
    }

    fn fail<T>(&self, expected: &str) -> Result<T, String> {
        let found = match self.peek() {
            None => "the end of the file".to_string(),
            Some(Tok::Word(w)) => format!("`{w}`"),
            Some(Tok::Quoted(q)) => format!("\"{q}\""),
            Some(Tok::Sql(_)) => "an SQL block".to_string(),
            Some(Tok::Punct(c)) => format!("`{c}`"),
            Some(Tok::Number(n)) => format!("`{n}`"),
        };
        Err(format!(
            "{}:{}: expected {expected}, found {found}",
            self.file.display(),
            self.line()
        ))
    }

    fn keyword(&mut self, k: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w == k) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn name(&mut self, what: &str) -> Result<(String, usize), String> {
        let line = self.line();
        match self.peek().cloned() {
            Some(Tok::Word(w)) if !KEYWORDS.contains(&w.as_str()) => {
                self.at += 1;
                Ok((w, line))
            }
            Some(Tok::Quoted(q)) => {
                self.at += 1;
                Ok((q, line))
            }
            _ => self.fail(what),
        }
    }

    fn sql(&mut self, what: &str) -> Result<(String, usize), String> {
        let line = self.line();
        match self.peek().cloned() {
            Some(Tok::Sql(s)) => {
                self.at += 1;
                Ok((s, line))
            }
            _ => self.fail(&format!("`{{` and the SQL of {what}")),
        }
    }

    fn punct(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }
}

const KEYWORDS: [&str; 5] = ["setup", "teardown", "session", "step", "permutation"];

/// Reads a spec; errors read `FILE:LINE: expected ..., found ...`.
pub fn parse(file: &Path, text: &str) -> Result<Spec, String> {
    let mut p = Lexer {
        file,
        toks: lex(file, text)?,
        at: 0,
    };
    let mut spec = Spec {
        setup: Vec::new(),
        teardown: None,
        sessions: Vec::new(),
        permutations: Vec::new(),
    };
    while p.keyword("setup") {
        spec.setup.push(p.sql("a setup block")?.0);
    }
    if p.keyword("teardown") {
        spec.teardown = Some(p.sql("the teardown block")?.0);
    }
    while p.keyword("session") {
        let (name, line) = p.name("a session name")?;
        if spec.sessions.iter().any(|s| s.name == name) {
            return Err(format!(
                "{}:{line}: a second session named `{name}`",
                file.display()
            ));
        }
        let setup = if p.keyword("setup") {
            Some(p.sql("the session's setup")?.0)
        } else {
            None
        };
        let mut steps = Vec::new();
        while p.keyword("step") {
            let (step, line) = p.name("a step name")?;
            let taken = spec
                .sessions
                .iter()
                .flat_map(|s| &s.steps)
                .chain(&steps)
                .any(|s: &SpecStep| s.name == step);
            if taken {
                return Err(format!(
                    "{}:{line}: a second step named `{step}` (step names are unique in a spec)",
                    file.display()
                ));
            }
            let (sql, _) = p.sql(&format!("step {step}"))?;
            steps.push(SpecStep {
                name: step,
                sql,
                line,
            });
        }
        if steps.is_empty() {
            return p.fail(&format!("`step` (session {name} needs at least one)"));
        }
        let teardown = if p.keyword("teardown") {
            Some(p.sql("the session's teardown")?.0)
        } else {
            None
        };
        spec.sessions.push(SpecSession {
            name,
            setup,
            steps,
            teardown,
        });
    }
    if spec.sessions.is_empty() {
        return p.fail("`setup`, `teardown` or `session`");
    }
    while p.keyword("permutation") {
        let line = p.line();
        let mut steps = Vec::new();
        while matches!(p.peek(), Some(Tok::Quoted(_)))
            || matches!(p.peek(), Some(Tok::Word(w)) if !KEYWORDS.contains(&w.as_str()))
        {
            let (step, at) = p.name("a step name")?;
            if !spec
                .sessions
                .iter()
                .flat_map(|s| &s.steps)
                .any(|s| s.name == step)
            {
                return Err(format!(
                    "{}:{at}: permutation: no step named `{step}`",
                    file.display()
                ));
            }
            let mut marks = Vec::new();
            if p.punct('(') {
                loop {
                    if p.punct('*') {
                        marks.push("*".to_string());
                    } else {
                        let (other, at) = p.name("`*` or a step name")?;
                        if !spec
                            .sessions
                            .iter()
                            .flat_map(|s| &s.steps)
                            .any(|s| s.name == other)
                        {
                            return Err(format!(
                                "{}:{at}: permutation: the annotation names no step `{other}`",
                                file.display()
                            ));
                        }
                        if p.keyword("notices") {
                            match p.peek() {
                                Some(Tok::Number(_)) => p.at += 1,
                                _ => return p.fail("a number of notices"),
                            }
                        }
                        marks.push(other);
                    }
                    if p.punct(')') {
                        break;
                    }
                    if !p.punct(',') {
                        return p.fail("`,` or `)`");
                    }
                }
            }
            steps.push((step, marks));
        }
        if steps.is_empty() {
            return p.fail("a step name after `permutation`");
        }
        spec.permutations.push(Permutation { steps, line });
    }
    if p.peek().is_some() {
        return p.fail(if spec.permutations.is_empty() {
            "`session` or `permutation`"
        } else {
            "`permutation`"
        });
    }
    Ok(spec)
}

/// Every interleaving of the sessions' steps, each session's in order (the permutations
/// when a spec lists none); at most `limit`.
pub fn all_permutations(spec: &Spec, limit: usize) -> Result<Vec<Permutation>, String> {
    let lens: Vec<usize> = spec.sessions.iter().map(|s| s.steps.len()).collect();
    let mut out = Vec::new();
    let mut pos = vec![0; lens.len()];
    let mut current = Vec::new();
    fn walk(
        spec: &Spec,
        lens: &[usize],
        pos: &mut Vec<usize>,
        current: &mut Vec<(String, Vec<String>)>,
        out: &mut Vec<Permutation>,
        limit: usize,
    ) -> Result<(), String> {
        if pos.iter().zip(lens).all(|(p, l)| p == l) {
            if out.len() == limit {
                return Err(format!(
                    "more than {limit} permutations of the sessions' steps: list the ones to run with `permutation` lines"
                ));
            }
            out.push(Permutation {
                steps: current.clone(),
                line: 0,
            });
            return Ok(());
        }
        for s in 0..lens.len() {
            if pos[s] < lens[s] {
                current.push((spec.sessions[s].steps[pos[s]].name.clone(), Vec::new()));
                pos[s] += 1;
                walk(spec, lens, pos, current, out, limit)?;
                pos[s] -= 1;
                current.pop();
            }
        }
        Ok(())
    }
    walk(spec, &lens, &mut pos, &mut current, &mut out, limit)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
# a comment
setup { CREATE TABLE t (id int, v int); }
setup { INSERT INTO t VALUES (1, 10); }
teardown { DROP TABLE t; }
session "s1"
setup { BEGIN ISOLATION LEVEL REPEATABLE READ; }
step "r1" { SELECT v FROM t WHERE id = 1; }
step w1 {
  UPDATE t SET v = v + 1 WHERE id = 1;
}
step "c1" { COMMIT; }
session s2
step "w2" { UPDATE t SET v = v + 2; }
permutation "r1" "w2" w1(*) "c1"
permutation w2 r1(w2) w1 c1
"#;

    #[test]
    fn reads_sessions_steps_and_annotated_permutations() {
        let s = parse(Path::new("x.spec"), SPEC).unwrap();
        assert_eq!(s.setup.len(), 2);
        assert_eq!(s.teardown.as_deref(), Some("DROP TABLE t;"));
        assert_eq!(s.sessions[0].name, "s1");
        assert_eq!(
            s.sessions[0].setup.as_deref(),
            Some("BEGIN ISOLATION LEVEL REPEATABLE READ;")
        );
        assert_eq!(
            s.sessions[0].steps[1].sql,
            "UPDATE t SET v = v + 1 WHERE id = 1;"
        );
        assert_eq!(s.sessions[0].steps[1].line, 9);
        assert_eq!(s.permutations[0].steps[2], ("w1".into(), vec!["*".into()]));
        assert_eq!(s.permutations[1].steps[1], ("r1".into(), vec!["w2".into()]));
        assert_eq!(s.permutations[1].line, 16);
    }

    #[test]
    fn errors_name_the_file_line_and_what_was_expected() {
        let e = parse(
            Path::new("x.spec"),
            "session s1\nstep a { SELECT 1; }\npermutation a b\n",
        )
        .unwrap_err();
        assert_eq!(e, "x.spec:3: permutation: no step named `b`");
        let e = parse(Path::new("x.spec"), "session s1\n\nstep { SELECT 1; }").unwrap_err();
        assert_eq!(e, "x.spec:3: expected a step name, found an SQL block");
        let e = parse(Path::new("x.spec"), "setup { SELECT 1;\n").unwrap_err();
        assert!(e.starts_with("x.spec:1: unterminated SQL block"), "{e}");
    }

    #[test]
    fn without_permutations_every_interleaving_in_session_order() {
        let s = parse(
            Path::new("x.spec"),
            "session a step a1 {SELECT 1;} step a2 {SELECT 2;} session b step b1 {SELECT 3;}",
        )
        .unwrap();
        let all = all_permutations(&s, 100).unwrap();
        let names: Vec<String> = all
            .iter()
            .map(|p| {
                p.steps
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(names, ["a1 a2 b1", "a1 b1 a2", "b1 a1 a2"]);
        assert!(all_permutations(&s, 2).is_err());
    }
}
