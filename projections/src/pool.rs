//! How every database pool of carelog hands out connections.
//!
//! sqlx's default (`test_before_acquire`) pings a pooled connection each time
//! it is handed out: one more round trip per statement run on a pool, a
//! second trip to MySQL or PostgreSQL over the network and, on SQLite, one
//! more hand-off to the connection's worker thread and back. The pools here
//! ping only a connection that has sat idle for a while
//! ([`PING_AFTER_IDLE`]), which is when the server may have dropped it (a
//! restart, `wait_timeout`, a proxy's idle cut); a connection that failed the
//! ping is closed and another handed out, as sqlx does with its own check.
//! Embedded SQLite connections live in this process and are never pinged.

use std::time::Duration;

use sqlx::pool::PoolOptions;
use sqlx::{Connection, Database};

/// A connection idle at least this long is pinged before it is handed out
/// (HikariCP's `aliveBypassWindowMs` is 500 ms; one second keeps a busy
/// server's connections, used every few milliseconds, out of it).
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Pool options for a database reached over the network (PostgreSQL, MySQL).
pub fn networked<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::<DB>::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_AFTER_IDLE {
                    return Ok(true);
                }
                conn.ping().await.map(|()| true)
            })
        })
}

/// Pool options for an embedded SQLite file: nothing to ping.
pub fn embedded<DB: Database>() -> PoolOptions<DB> {
    PoolOptions::<DB>::new().test_before_acquire(false)
}
