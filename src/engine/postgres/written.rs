//! SQL run as written on PostgreSQL: the simple query protocol (several statements in one
//! text, every result set, rows as text), with the notices the connection delivered while the
//! statements ran put where they arrived. It reports; it must not decide what runs next.

use futures::TryStreamExt;
use tokio_postgres::SimpleQueryMessage;

use super::Session;
use super::db_error;
use crate::engine::written::{Output, ResultSet, Written, keep_row};

impl Session {
    pub async fn run_written(&mut self, sql: &str) -> Written {
        let mut out = Written::default();
        let mut current: Option<ResultSet> = None;
        self.drain_notices(&mut out.outputs);
        let stream = match self.handle.client().simple_query_raw(sql).await {
            Ok(s) => s,
            Err(e) => {
                self.drain_notices(&mut out.outputs);
                out.error = Some(db_error(&e));
                return out;
            }
        };
        futures::pin_mut!(stream);
        loop {
            let next = stream.try_next().await;
            // A notice read before this message was forwarded before it: keep that order.
            if !matches!(next, Ok(Some(SimpleQueryMessage::Row(_)))) || current.is_none() {
                self.drain_notices(&mut out.outputs);
            }
            match next {
                Ok(Some(SimpleQueryMessage::RowDescription(cols))) => {
                    current = Some(ResultSet {
                        columns: cols.iter().map(|c| c.name().to_string()).collect(),
                        rows: Vec::new(),
                        total: 0,
                    });
                }
                Ok(Some(SimpleQueryMessage::Row(row))) => keep_row(
                    &mut current,
                    || row.columns().iter().map(|c| c.name().to_string()).collect(),
                    (0..row.len()).map(|i| row.get(i).map(str::to_string)),
                ),
                Ok(Some(SimpleQueryMessage::CommandComplete(n))) => match current.take() {
                    Some(set) => out.outputs.push(Output::Rows(set)),
                    None => out.outputs.push(Output::Affected { rows: n }),
                },
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    if let Some(set) = current.take() {
                        out.outputs.push(Output::Rows(set));
                    }
                    // Let the connection forward notices sent just before the error.
                    tokio::task::yield_now().await;
                    self.drain_notices(&mut out.outputs);
                    out.error = Some(db_error(&e));
                    break;
                }
            }
        }
        out
    }

    /// The notices forwarded since the last call.
    pub fn take_notices(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.drain_notices(&mut out);
        out
    }

    fn drain_notices(&mut self, outputs: &mut Vec<Output>) {
        if let Some(rx) = &mut self.notices {
            while let Ok(n) = rx.try_recv() {
                outputs.push(n);
            }
        }
    }
}

/// Drives a connection and forwards its notices (severity and message) to `tx`.
pub(super) async fn drive_with_notices(
    mut conn: super::server::Connection,
    tx: tokio::sync::mpsc::UnboundedSender<Output>,
) {
    loop {
        match futures::future::poll_fn(|cx| conn.poll_message(cx)).await {
            Some(Ok(tokio_postgres::AsyncMessage::Notice(n))) => {
                let _ = tx.send(Output::Notice {
                    severity: n.severity().to_string(),
                    message: n.message().to_string(),
                });
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
}
