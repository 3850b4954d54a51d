//! The protocol the lab speaks itself on a client's own PostgreSQL connection
//! (`engine::postgres::wire`), against a private server: rows, NULLs, command tags and errors
//! come back as the server sent them, a statement is created on the server once, a failed
//! statement leaves the connection usable, and an exchange abandoned half-way closes its
//! connection instead of leaving it out of step.

use std::time::{Duration, Instant};

use contention::engine::postgres::{Server, Session};
use contention::engine::{EngineKind, ErrorKind, Exchange, Phase, Returned, ServerOptions};
use contention::isolation::Isolation;
use contention::scenario::Value;

fn exchange<'a>(statement: usize, params: &'a [usize], captures: &'a [usize]) -> Exchange<'a> {
    Exchange {
        statement,
        begin: None,
        commit: false,
        params,
        captures,
        keep: false,
    }
}

async fn count(s: &mut Session, sql: &str) -> i64 {
    match s.scalar(sql).await.unwrap() {
        Some(Value::Int(n)) => n,
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn exchanges_on_the_wire_answer_as_the_server_does() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut server = Server::provision(&ServerOptions {
            engine: EngineKind::Postgres,
            url: None,
            from_env: false,
            ephemeral_settings: Vec::new(),
        })
        .await
        .expect("a private PostgreSQL");
        let db = server.create_database("wire").await.unwrap();
        let mut s = db.session(&[]).await.unwrap();

        s.batch("CREATE TABLE t (id int PRIMARY KEY, n numeric, note text)")
            .await
            .unwrap();
        // An error carries its SQLSTATE and position, and the session goes on.
        let e = s.batch("SELECT nope FROM t").await.unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str(), e.position),
            (ErrorKind::ScenarioBug, "42703", Some(8)),
            "{e:?}"
        );

        s.prepare(Some("INSERT INTO t VALUES ($1, $2, $3)"))
            .await
            .unwrap();
        s.prepare(Some("SELECT id, n, note FROM t WHERE id >= $1 ORDER BY id"))
            .await
            .unwrap();
        // Slots 0-2 are bound; 3-5 receive the first row.
        let mut values = vec![
            Some(Value::Int(1)),
            Some(Value::Float(2.5)),
            None,
            None,
            None,
            None,
        ];
        let framed = Exchange {
            begin: Some(Isolation::Rc),
            commit: true,
            ..exchange(0, &[0, 1, 2], &[])
        };
        assert_eq!(
            s.exchange(framed, &mut values).await.unwrap(),
            Returned::Affected(1)
        );
        values[0] = Some(Value::Int(2));
        values[1] = Some(Value::Int(10));
        values[2] = Some(Value::String("x".into()));
        assert_eq!(
            s.exchange(exchange(0, &[0, 1, 2], &[]), &mut values)
                .await
                .unwrap(),
            Returned::Affected(1)
        );

        values[0] = Some(Value::Int(1));
        for _ in 0..2 {
            assert_eq!(
                s.exchange(exchange(1, &[0], &[3, 4, 5]), &mut values)
                    .await
                    .unwrap(),
                Returned::Rows(2)
            );
            assert_eq!(
                &values[3..],
                &[
                    Some(Value::Int(1)),
                    Some(Value::Float(2.5)),
                    Some(Value::Empty)
                ]
            );
        }
        // No row: the captures are emptied.
        values[0] = Some(Value::Int(99));
        assert_eq!(
            s.exchange(exchange(1, &[0], &[3, 4, 5]), &mut values)
                .await
                .unwrap(),
            Returned::Rows(0)
        );
        assert_eq!(&values[3..], &[None, None, None]);
        // Each statement was created on the server once, at its first exchange.
        assert_eq!(
            count(
                &mut s,
                "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'contention%'"
            )
            .await,
            2
        );

        // A failed statement between BEGIN and COMMIT: the COMMIT ends the transaction, and the
        // connection is still in step.
        values[0] = Some(Value::Int(1));
        let failed = s
            .exchange(
                Exchange {
                    begin: Some(Isolation::Rc),
                    commit: true,
                    ..exchange(0, &[0, 1, 2], &[])
                },
                &mut values,
            )
            .await
            .unwrap_err();
        assert_eq!(
            (
                failed.phase,
                failed.error.code.as_str(),
                failed.in_transaction
            ),
            (Phase::Statement, "23505", false),
            "{failed:?}"
        );
        assert_eq!(count(&mut s, "SELECT count(*) FROM t").await, 2);

        // An exchange abandoned while the server still works on it closes the connection.
        let mut holder = db.session(&[]).await.unwrap();
        holder.batch("BEGIN; LOCK TABLE t").await.unwrap();
        let pid = s.server_id().await.unwrap();
        let waited =
            tokio::time::timeout(Duration::from_millis(300), s.batch("BEGIN; LOCK TABLE t")).await;
        assert!(waited.is_err(), "the LOCK did not wait: {waited:?}");
        let after = s.batch("SELECT 1").await.unwrap_err();
        assert_eq!(after.kind, ErrorKind::Connection, "{after:?}");
        holder.batch("COMMIT").await.unwrap();
        let alive = format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}");
        let start = Instant::now();
        while count(&mut holder, &alive).await > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the abandoned connection's backend is still there"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(s);
        drop(holder);
        server.drop_database(&db).await.unwrap();
        server.shutdown();
    });
}
