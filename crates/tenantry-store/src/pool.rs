//! How the service's connection pools check their connections.
//!
//! sqlx pings a connection (a `Sync` round trip) every time it is taken from the pool,
//! and again every time it goes back. Under load that is two extra round trips per
//! query. The release ping stays (sqlx has no switch for it; it proves the connection
//! alive when it is put back), so a connection taken within [`TRUST_IDLE_FOR`] of its
//! release is not pinged again; one that sat idle longer is, so a server that went away
//! (or a socket dropped) while it sat is found before a request uses it. At worst a
//! request that takes a connection in the first moments after the server died gets the
//! same 503 as the requests in flight at that moment. Figures: docs/scaling.md.

use std::time::Duration;

use sqlx::Connection;
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgPoolOptions, Postgres};

/// How long a connection proven alive when it was returned is trusted without a ping:
/// long enough that a saturated pool never pings (its connections are idle for
/// microseconds), far shorter than a PostgreSQL restart or fail-over takes.
pub const TRUST_IDLE_FOR: Duration = Duration::from_millis(20);

/// Pool options for `max_connections` connections with the ping rule above.
pub fn options(max_connections: u32) -> PoolOptions<Postgres> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for > TRUST_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}
