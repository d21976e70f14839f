//! PostgreSQL's floor for writing inventory rows: what no scan can go below on this
//! machine. The rows a scan wrote are copied into empty twins of their tables (same
//! indexes and storage settings), every table at once on its own connection, with no
//! Graph, no client and no staging; once as stored and once with their JSON parsed from
//! text again, as every writer of Microsoft's answers must. Shared by the discovery and
//! Exchange benches.

// Each bench uses only part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::cpu;

pub struct WriteFloor {
    pub wall: Duration,
    pub rows: u64,
    /// PostgreSQL's CPU seconds for it.
    pub postgres_cpu: f64,
}

/// The rows of one inventory table to write again: all of them, or those matching a
/// `where` condition on the table's own columns.
pub struct Rows<'a> {
    pub table: &'a str,
    pub filter: Option<&'a str>,
}

impl<'a> Rows<'a> {
    pub fn all(table: &'a str) -> Self {
        Self {
            table,
            filter: None,
        }
    }

    pub fn matching(table: &'a str, filter: &'a str) -> Self {
        Self {
            table,
            filter: Some(filter),
        }
    }
}

/// Copies `sources` into empty twins with the same indexes and storage settings, all
/// tables at once on their own connections, and times it: first as stored (`jsonb` copied
/// as parsed), then with the JSON columns parsed from text again. Filtered rows are set
/// aside in a plain table before the clock starts, so the floor pays the writing only.
pub async fn write_floor(pool: &PgPool, sources: &[Rows<'_>]) -> (WriteFloor, WriteFloor) {
    let mut statements = Vec::new();
    let mut warm = Vec::new();
    for Rows { table, filter } in sources {
        let twin = format!("floor_{table}");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create table {twin} (like {table} including all)"
        )))
        .execute(pool)
        .await
        .expect("twin table");
        let source = match filter {
            None => (*table).to_owned(),
            Some(filter) => {
                let source = format!("floor_source_{table}");
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "create table {source} as select * from {table} where {filter}"
                )))
                .execute(pool)
                .await
                .expect("source rows");
                source
            }
        };
        let columns: Vec<(String, String)> = sqlx::query_as(
            "select column_name::text, data_type::text from information_schema.columns
             where table_name = $1 and is_generated = 'NEVER' order by ordinal_position",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .expect("columns");
        let names = columns
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        // JSON columns are parsed again from text, as every writer's must be: Microsoft
        // answers JSON text, and PostgreSQL parses `jsonb` on input in any wire format
        // (the binary one is a version byte and the text). The text is made before the
        // clock starts, so the floor pays the parse, not the printing.
        let cast = |to: &str| {
            columns
                .iter()
                .map(|(name, kind)| match kind.as_str() {
                    "jsonb" => format!("{name}::{to} as {name}"),
                    _ => name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = format!("floor_text_{table}");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "create table {text} as select {} from {source}",
            cast("text")
        )))
        .execute(pool)
        .await
        .expect("text twin");
        statements.push((
            format!("insert into {twin} ({names}) select {names} from {source}"),
            format!(
                "insert into {twin} ({names}) select {} from {text}",
                cast("jsonb")
            ),
        ));
        warm.push((twin, source, text));
    }
    // Warm the source tables so the floor is the writing, not the reading from disk.
    for (_, source, text) in &warm {
        for table in [source, text] {
            sqlx::query(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .execute(pool)
                .await
                .expect("warm");
        }
    }
    let copied = time_writes(pool, statements.iter().map(|(copy, _)| copy.clone())).await;
    for (twin, _, _) in &warm {
        sqlx::query(sqlx::AssertSqlSafe(format!("truncate {twin}")))
            .execute(pool)
            .await
            .expect("empty twin");
    }
    let parsed = time_writes(pool, statements.into_iter().map(|(_, parse)| parse)).await;
    (copied, parsed)
}

/// Runs `statements` at once, each on its own connection; their time, rows and
/// PostgreSQL's CPU.
async fn time_writes(pool: &PgPool, statements: impl Iterator<Item = String>) -> WriteFloor {
    let cpu_before = cpu::postgres();
    let started = Instant::now();
    let mut writes = tokio::task::JoinSet::new();
    for statement in statements {
        let pool = pool.clone();
        writes.spawn(async move {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .expect("copy")
                .rows_affected()
        });
    }
    let rows = writes.join_all().await.into_iter().sum();
    let wall = started.elapsed();
    WriteFloor {
        wall,
        rows,
        postgres_cpu: cpu::postgres() - cpu_before,
    }
}
