//! Scenario errors that point at the exact place in the file: path, line, column and key.
//!
//! Every problem found while reading or validating a scenario becomes one [`ScenarioError`].
//! This module only formats locations; it must not decide what is valid (that is `validate`).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one scenario file.
#[derive(Debug, Clone)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub line: Option<(usize, usize)>,
    /// Dotted key path, e.g. `strategy.naive.step[2].reject_if`.
    pub key: Option<String>,
    pub message: String,
}

impl ScenarioError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, text: &str, span: Option<Range<usize>>) -> Self {
        if let Some(span) = span {
            self.line = Some(line_col(text, span.start));
        }
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.line {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 4));
    }

    #[test]
    fn display_names_file_line_and_key() {
        let e = ScenarioError::new(Path::new("x.toml"), "expected a duration")
            .at("a\nb = 1", Some(2..3))
            .key("run.think");
        assert_eq!(
            e.to_string(),
            "x.toml:2:1: key `run.think`: expected a duration"
        );
    }
}
