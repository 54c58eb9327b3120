//! The event-store database: PostgreSQL, or the embedded SQLite file with its
//! one writer connection. Everything that runs SQL on the event-store database
//! (the store, the appender, the key store, the audit and relay checkpoints)
//! matches on [`Backend`]; it has no dependencies inside the crate, so none of
//! those modules import each other for it.

use sqlx::{PgPool, SqlitePool};

#[derive(Clone)]
pub enum Backend {
    Postgres(PgPool),
    Sqlite(SqliteDb),
}

/// The embedded event store file. SQLite lets one writer in at a time, and a
/// writer that finds the lock taken sleeps in SQLite's busy handler (1, 2, 5,
/// 10 … ms): with several writer connections in one process, every command
/// paid those sleeps. So every write (appends, keys, seals, access and login
/// logs, idempotency, claims, checkpoints) goes through the one `write`
/// connection, where writers queue in-process, and reads use `read`.
#[derive(Clone)]
pub struct SqliteDb {
    pub read: SqlitePool,
    pub write: SqlitePool,
}

impl SqliteDb {
    /// One pool for both (one-shot tools that are alone on the file).
    pub fn single(pool: SqlitePool) -> Self {
        Self {
            read: pool.clone(),
            write: pool,
        }
    }
}

/// Runs the same read on whichever backend is configured. The SQL must be
/// valid for both (PostgreSQL and SQLite both accept `$1` placeholders).
macro_rules! on_backend {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Postgres($pool) => $body,
            Backend::Sqlite($crate::backend::SqliteDb { read: $pool, .. }) => $body,
        }
    };
}

/// As [`on_backend!`], for a statement that writes: on SQLite it runs on the
/// one writer connection.
macro_rules! on_writer {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            Backend::Postgres($pool) => $body,
            Backend::Sqlite($crate::backend::SqliteDb { write: $pool, .. }) => $body,
        }
    };
}

pub(crate) use on_backend;
pub(crate) use on_writer;
