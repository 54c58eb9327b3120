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

impl Backend {
    /// Placeholders for `rows` rows of `width` values each, for a multi-row
    /// `VALUES` (`($1, $2), ($3, $4)`) or, with `width` 1, an `IN` list
    /// (`$1, $2`). On SQLite they are anonymous `?`: there `$N` is a named
    /// parameter, which sqlx looks up by name for every bind, a cost
    /// quadratic in the number of values (5.8 % of the server's CPU while
    /// the audit sealer caught up on a large history).
    pub fn placeholders(&self, rows: usize, width: usize) -> String {
        let sqlite = matches!(self, Backend::Sqlite(_));
        let mut out = String::with_capacity(rows * width * 5);
        let mut n = 0;
        for row in 0..rows {
            if row > 0 {
                out.push_str(", ");
            }
            if width > 1 {
                out.push('(');
            }
            for col in 0..width {
                if col > 0 {
                    out.push_str(", ");
                }
                n += 1;
                if sqlite {
                    out.push('?');
                } else {
                    out.push('$');
                    out.push_str(&n.to_string());
                }
            }
            if width > 1 {
                out.push(')');
            }
        }
        out
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn placeholders_are_numbered_on_postgres_and_anonymous_on_sqlite() {
        let pg = Backend::Postgres(PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap());
        let sqlite = Backend::Sqlite(SqliteDb::single(SqlitePool::connect_lazy("sqlite::memory:").unwrap()));
        assert_eq!(pg.placeholders(3, 2), "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(pg.placeholders(3, 1), "$1, $2, $3");
        assert_eq!(sqlite.placeholders(2, 2), "(?, ?), (?, ?)");
        assert_eq!(sqlite.placeholders(3, 1), "?, ?, ?");
        assert_eq!(pg.placeholders(0, 2), "");
    }
}
