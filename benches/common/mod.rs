//! What the benches share: their knobs from the environment and a fresh, migrated
//! database on the throwaway cluster their script started.

use sqlx::{Connection, PgPool};

/// A numeric knob from the environment, or `default`.
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A new database `bench_<bench>_<pid>` on `DATABASE_URL`'s server, migrated, with a
/// pool of `connections`.
pub async fn fresh_database(bench: &str, connections: u32) -> PgPool {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| panic!("DATABASE_URL: run through scripts/bench-{bench}"));
    let name = format!("bench_{bench}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    let (server, _) = base.rsplit_once('/').expect("url");
    // The service's own pool options (its ping rule), as the real processes use.
    let pool = tenantry_store::pool::options(connections)
        .connect(&format!("{server}/{name}"))
        .await
        .expect("pool");
    tenantry_store::migrate(&pool).await.expect("migrate");
    pool
}
