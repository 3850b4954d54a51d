//! SQL run as written on MariaDB/MySQL: the text protocol (several statements in one text,
//! every result set, values as text) through sqlx's raw SQL. sqlx describes a result set's
//! columns only with its rows, so one without rows reads as a statement that affected none,
//! and MariaDB's warnings are not fetched. It reports; it must not decide what runs next.

use futures::TryStreamExt;
use sqlx::{AssertSqlSafe, Column as _, Either, Row as _, ValueRef as _};

use super::Session;
use super::db_error;
use crate::engine::written::{Output, ResultSet, Written, keep_row};

impl Session {
    pub async fn run_written(&mut self, sql: &str) -> Written {
        let mut out = Written::default();
        let mut current: Option<ResultSet> = None;
        let conn = self.handle.conn();
        let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).fetch_many(conn);
        loop {
            match stream.try_next().await {
                Ok(Some(Either::Right(row))) => keep_row(
                    &mut current,
                    || row.columns().iter().map(|c| c.name().to_string()).collect(),
                    (0..row.len()).map(|i| {
                        let raw = row.try_get_raw(i).ok()?;
                        if raw.is_null() {
                            return None;
                        }
                        row.try_get_unchecked::<String, _>(i).ok()
                    }),
                ),
                Ok(Some(Either::Left(done))) => match current.take() {
                    Some(set) => out.outputs.push(Output::Rows(set)),
                    None => out.outputs.push(Output::Affected {
                        rows: done.rows_affected(),
                    }),
                },
                Ok(None) => break,
                Err(e) => {
                    if let Some(set) = current.take() {
                        out.outputs.push(Output::Rows(set));
                    }
                    out.error = Some(db_error(&e));
                    break;
                }
            }
        }
        out
    }
}
