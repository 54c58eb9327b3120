//! Projectors and the step that applies a batch of events to all of them.
//!
//! Each projector's checkpoint lives in the read store and moves in the same
//! transaction as the rows it wrote, with a compare-and-set on the old value;
//! one transaction carries a batch into every read model.
//! A crash at any point therefore loses nothing and applies nothing twice, and
//! two runners racing on one projector cannot both commit the same batch.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;

use crate::store::{instant, ReadStore};

/// One event as read from the store, with its global position.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: HashMap<String, String>,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// Decodes the payload into the aggregate's event enum.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, ProjectionError> {
        // From a borrowed value: no copy of the payload per projector.
        E::deserialize(&self.payload).map_err(|source| ProjectionError::Decode {
            position: self.position,
            source,
        })
    }
    /// The recorded time as stored in read models.
    pub fn at(&self) -> String {
        instant(self.recorded_at)
    }
}

/// The patient whose personal data an event erases (a `PatientErased`):
/// every projector blanks that patient's free text in the tables it owns.
pub fn erased_patient(e: &StoredEvent) -> Option<&str> {
    (e.aggregate_type == "patient" && e.event_type == "PatientErased").then_some(e.aggregate_id.as_str())
}

/// Runs the statements with `patient` bound to their single `?`.
pub async fn erase_rows(conn: &mut AnyConnection, patient: &str, statements: &[&str]) -> Result<(), ProjectionError> {
    for sql in statements {
        sqlx::query(sql).bind(patient).execute(&mut *conn).await?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read store error")]
    Db(#[from] sqlx::Error),
    #[error("event at position {position} cannot be decoded")]
    Decode {
        position: i64,
        #[source]
        source: serde_json::Error,
    },
    #[error("checkpoint of {0} moved under us (another runner applied this batch)")]
    CheckpointMoved(&'static str),
}

#[async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the checkpoint key and the argument of `carelog rebuild`.
    fn name(&self) -> &'static str;
    /// Tables this projector owns, emptied on rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// Secondary indexes of its tables that only queries read, never its own
    /// writes (no update, delete or lookup of `apply` or `load_all` goes
    /// through them): a rebuild's bulk load builds them after its rows (see
    /// `crate::deferred`). An index left out here is kept during the load.
    fn deferred_indexes(&self) -> &'static [&'static str] {
        &[]
    }
    /// Applies one event inside the batch transaction. Events of aggregates the
    /// projector does not follow are ignored.
    async fn apply(&self, conn: &mut AnyConnection, event: &StoredEvent) -> Result<(), ProjectionError>;
    /// Applies a run of events (ascending positions) inside the batch
    /// transaction, leaving the tables as applying them one by one does. A
    /// projector whose common events only add rows overrides this to write
    /// those as multi-row statements ([`crate::bulk::Rows`]), writing its
    /// buffers before any other statement of its own.
    async fn apply_all(&self, conn: &mut AnyConnection, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }
    /// As [`Projector::apply_all`], into a read store being bulk-loaded (a
    /// rebuild's shadow, before anything reads it): a projector may leave out
    /// the rows of a table it derives from its other tables, and write them
    /// in [`Projector::finish_load`].
    async fn load_all(&self, conn: &mut AnyConnection, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
        self.apply_all(conn, events).await
    }
    /// Ends a bulk load (see [`Projector::load_all`]): writes what it left
    /// out, from the tables as they are. Called once, after the last event
    /// applied with `load_all` and before any applied with `apply_all`.
    async fn finish_load(&self, _store: &ReadStore) -> Result<(), ProjectionError> {
        Ok(())
    }
}

impl ReadStore {
    /// Creates missing checkpoint rows (position 0).
    pub async fn init_checkpoints(&self, projectors: &[Arc<dyn Projector>]) -> Result<(), sqlx::Error> {
        let sql = format!(
            "{} INTO projection_checkpoints (name, position) VALUES (?, 0)",
            self.dialect().insert_ignore()
        );
        for p in projectors {
            sqlx::query(&sql).bind(p.name()).execute(self.writer()).await?;
        }
        Ok(())
    }

    pub async fn checkpoint(&self, name: &str) -> Result<i64, sqlx::Error> {
        let pos: Option<i64> = sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(pos.unwrap_or(0))
    }

    /// The lowest checkpoint among the projectors: everything up to it is
    /// visible in every read model.
    pub async fn min_checkpoint(&self) -> Result<i64, sqlx::Error> {
        let pos: Option<i64> = sqlx::query_scalar("SELECT MIN(position) FROM projection_checkpoints")
            .fetch_one(self.pool())
            .await?;
        Ok(pos.unwrap_or(0))
    }

    /// The checkpoints of `projectors`, in their order (0 when missing).
    pub async fn checkpoints(&self, projectors: &[Arc<dyn Projector>]) -> Result<Vec<i64>, sqlx::Error> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, position FROM projection_checkpoints")
            .fetch_all(self.pool())
            .await?;
        Ok(projectors
            .iter()
            .map(|p| {
                rows.iter()
                    .find(|(n, _)| n == p.name())
                    .map(|(_, pos)| *pos)
                    .unwrap_or(0)
            })
            .collect())
    }

    /// The one follower step for every read model: applies `events`
    /// (ascending positions) to each projector whose checkpoint is below an
    /// event, and moves those checkpoints to the batch's last position, all in
    /// one read-store transaction. `expected` are the checkpoints the caller
    /// read (in `projectors` order): if any that this batch moves has moved
    /// meanwhile (a rebuild reset it, or another runner), nothing is written
    /// and the caller re-reads. Returns the new checkpoint of every projector.
    ///
    /// One batch costs one transaction whatever the number of projectors, and
    /// the checkpoints move with the rows they cover: a crash loses nothing
    /// and applies nothing twice. [`ReadStore::claim_batch`] and
    /// [`Claim::apply`] are its two halves, for a caller with something to do
    /// while the checkpoints are claimed.
    pub async fn apply_batch_all(
        &self,
        projectors: &[Arc<dyn Projector>],
        expected: &[i64],
        events: &[StoredEvent],
    ) -> Result<Vec<i64>, ProjectionError> {
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(expected.to_vec());
        };
        self.claim_batch(projectors, expected, last).await?.apply(events).await
    }

    /// The first half of [`ReadStore::apply_batch_all`] for a batch ending at
    /// position `last`: opens its transaction and moves the checkpoints it
    /// will cover, which it needs only the positions for. The follower does
    /// this while it opens the batch's sealed fields (a read of their keys
    /// from the event store): the two round trips overlap.
    ///
    /// The checkpoints are claimed first: `UPDATE … WHERE position = <what
    /// the caller read>` locks exactly the rows this batch moves and checks
    /// them in the same statement (one round trip, where a locking `SELECT`
    /// and a later `UPDATE` took two). A projector the batch does not move
    /// (its checkpoint is at or past the batch) is neither written nor
    /// locked: if it was reset meanwhile, the batch that next moves it finds
    /// out. Dropping the claim unapplied rolls it back.
    pub async fn claim_batch<'a>(
        &'a self,
        projectors: &'a [Arc<dyn Projector>],
        expected: &'a [i64],
        last: i64,
    ) -> Result<Claim<'a>, ProjectionError> {
        let mut tx = self.writer().begin().await?;
        // One statement per distinct old checkpoint (normally one for all).
        let mut olds: Vec<i64> = expected.iter().copied().filter(|c| *c < last).collect();
        olds.sort_unstable();
        olds.dedup();
        for old in olds {
            let names: Vec<&'static str> = projectors
                .iter()
                .zip(expected)
                .filter(|(_, c)| **c == old)
                .map(|(p, _)| p.name())
                .collect();
            let marks = vec!["?"; names.len()].join(", ");
            let sql =
                format!("UPDATE projection_checkpoints SET position = ? WHERE position = ? AND name IN ({marks})");
            let mut q = sqlx::query(&sql).bind(last).bind(old);
            for n in &names {
                q = q.bind(*n);
            }
            if q.execute(&mut *tx).await?.rows_affected() != names.len() as u64 {
                return Err(ProjectionError::CheckpointMoved(names[0]));
            }
        }
        // Holding the write lock now: if a full rebuild replaced the file
        // while this connection waited for it, this is the old file, whose
        // writes would be lost. The caller re-reads, on the new file.
        if self.writer_outdated() {
            return Err(ProjectionError::CheckpointMoved(
                "the read store's file, replaced by a rebuild",
            ));
        }
        Ok(Claim {
            tx,
            loading: self.loading(),
            projectors,
            expected,
            last,
        })
    }

    /// Empties a projector's tables and sets its checkpoint back to 0, in one
    /// transaction; the runner then replays the whole history into it.
    pub async fn reset(&self, projector: &dyn Projector) -> Result<(), sqlx::Error> {
        let mut tx = self.writer().begin().await?;
        for table in projector.tables() {
            sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE name = ?")
            .bind(projector.name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

/// A batch's transaction with its checkpoints claimed
/// ([`ReadStore::claim_batch`]), waiting for the batch's events.
pub struct Claim<'a> {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    loading: bool,
    projectors: &'a [Arc<dyn Projector>],
    expected: &'a [i64],
    last: i64,
}

impl Claim<'_> {
    /// The second half of [`ReadStore::apply_batch_all`]: applies `events`,
    /// the batch claimed (ending at the claimed position), projector by
    /// projector, and commits with the checkpoints. Returns the new
    /// checkpoint of every projector.
    pub async fn apply(mut self, events: &[StoredEvent]) -> Result<Vec<i64>, ProjectionError> {
        if events.last().map(|e| e.position) != Some(self.last) {
            return Err(ProjectionError::CheckpointMoved("a batch other than the one claimed"));
        }
        // Projector by projector: each reads and writes only its own tables,
        // so only the order of events within one projector matters.
        for (p, checkpoint) in self.projectors.iter().zip(self.expected) {
            let due: Vec<&StoredEvent> = events.iter().filter(|e| e.position > *checkpoint).collect();
            if due.is_empty() {
                continue;
            }
            match self.loading {
                true => p.load_all(&mut self.tx, &due).await?,
                false => p.apply_all(&mut self.tx, &due).await?,
            }
        }
        self.tx.commit().await?;
        Ok(self.expected.iter().map(|old| (*old).max(self.last)).collect())
    }
}

impl ReadStore {
    /// Where a reactor has got to (0 if it never ran).
    pub async fn reactor_checkpoint(&self, name: &str) -> Result<i64, sqlx::Error> {
        let pos: Option<i64> = sqlx::query_scalar("SELECT position FROM reactor_checkpoints WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(pos.unwrap_or(0))
    }

    /// Records a reactor's progress (never backwards). Reactors' effects are
    /// idempotent commands, so a crash before this write only repeats them
    /// harmlessly.
    pub async fn set_reactor_checkpoint(&self, name: &str, position: i64) -> Result<(), sqlx::Error> {
        let moved = sqlx::query("UPDATE reactor_checkpoints SET position = ? WHERE name = ? AND position < ?")
            .bind(position)
            .bind(name)
            .bind(position)
            .execute(self.writer())
            .await?;
        if moved.rows_affected() == 0 {
            let insert = format!(
                "{} INTO reactor_checkpoints (name, position) VALUES (?, ?)",
                self.dialect().insert_ignore()
            );
            sqlx::query(&insert)
                .bind(name)
                .bind(position)
                .execute(self.writer())
                .await?;
        }
        Ok(())
    }
}
