//! Waiting for the discovery runs a bench queued (the discovery and Exchange benches).

use sqlx::PgPool;

/// Waits until no discovery run is queued or running; returns the time since `started`.
pub async fn wait_for_runs(pool: &PgPool, started: std::time::Instant) -> std::time::Duration {
    loop {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from discovery_run where state in ('queued', 'running')",
        )
        .fetch_one(pool)
        .await
        .expect("count");
        if open == 0 {
            return started.elapsed();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
