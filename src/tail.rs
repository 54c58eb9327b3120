//! The tail: the events this process has just committed, kept in memory so
//! that its followers read them from here instead of from the database.
//!
//! # Why
//! Every commit wakes every follower of the process (the projection pipeline,
//! three reactors, the audit sealer, the relay), and each then read the same
//! new events from the event store: five or six queries per committed batch,
//! on top of the append itself. The appender knows those rows exactly as
//! stored (their positions from the database, `recorded_at` too), so it keeps
//! them here and the followers read them without a round trip.
//!
//! # Why it is safe
//! - **Only whole runs.** The tail holds one run of events with consecutive
//!   positions; positions are gap-free (the counter row moves in the appending
//!   transaction), so the run holds every event between its ends. A read after
//!   `position` is answered only when the run holds `position + 1`, with the
//!   events from there on: exactly a prefix of what the database would return.
//!   Anything else (older events, a gap, an empty run) reads the database.
//! - **Byte for byte.** The rows are the strings the appender wrote (`json`
//!   keeps its text), with the position and `recorded_at` the database
//!   assigned, formatted as the store's own reads format them, so the audit
//!   sealer hashes the same bytes whichever way an event was read.
//! - **No missed wake-up.** A follower asks for its next events after it has
//!   armed its wake-up. Another instance's commit (PostgreSQL) empties the
//!   tail before it wakes the followers ([`Tail::clear`]), so a follower either
//!   reads after the clear (and goes to the database) or is woken again. This
//!   process's own commits are told apart by the payload of their notification
//!   (the writer's id, see `migrations/events/postgres/0015_*`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::store::{event_bytes, within_budget, RawEvent};

/// The most events the tail keeps (the oldest go first). A follower further
/// behind than this reads the database, as before.
const CAPACITY: usize = 4096;

/// The most text (payloads and metadata) the tail keeps, the oldest events
/// going first: 4096 events of a few hundred bytes fit many times over, and a
/// run of large events (a scheduled job's 256 KiB parts) cannot pin a gigabyte.
const CAPACITY_BYTES: usize = 16 * 1024 * 1024;

/// See the module docs.
#[derive(Default)]
pub struct Tail {
    run: Mutex<Run>,
    /// The highest position this process has committed; kept through
    /// [`Tail::clear`] (what a read must wait for, see `crate::fence`).
    last: AtomicI64,
}

/// The run of events held, and the size of their text.
#[derive(Default)]
struct Run {
    events: VecDeque<RawEvent>,
    bytes: usize,
}

impl Tail {
    /// Adds just-committed events, in position order. Events that do not
    /// continue the run (another writer committed in between) start a new one.
    pub fn push(&self, events: impl IntoIterator<Item = RawEvent>) {
        let mut run = self.run.lock().unwrap_or_else(PoisonError::into_inner);
        for e in events {
            self.last.fetch_max(e.position, Ordering::AcqRel);
            if run.events.back().is_some_and(|last| last.position + 1 != e.position) {
                *run = Run::default();
            }
            run.bytes += event_bytes(&e);
            run.events.push_back(e);
        }
        while run.events.len() > CAPACITY || run.bytes > CAPACITY_BYTES {
            let Some(oldest) = run.events.pop_front() else { break };
            run.bytes -= event_bytes(&oldest);
        }
    }

    /// The highest position this process has committed (0: none yet).
    pub fn last_committed(&self) -> i64 {
        self.last.load(Ordering::Acquire)
    }

    /// Forgets everything: another writer may have committed events the tail
    /// has not seen.
    pub fn clear(&self) {
        *self.run.lock().unwrap_or_else(PoisonError::into_inner) = Run::default();
    }

    /// Up to `limit` events after `position`, if the run holds the next one;
    /// `None` means: read the database.
    pub fn after(&self, position: i64, limit: i64) -> Option<Vec<RawEvent>> {
        self.after_within(position, limit, usize::MAX)
    }

    /// As [`Tail::after`], cloning no further than the event that brings the
    /// text to `budget` (a follower's batch, see `store::batch_bytes`).
    pub fn after_within(&self, position: i64, limit: i64, budget: usize) -> Option<Vec<RawEvent>> {
        let run = self.run.lock().unwrap_or_else(PoisonError::into_inner);
        let first = run.events.front()?.position;
        let last = run.events.back()?.position;
        if position + 1 < first || position + 1 > last || limit <= 0 {
            return None;
        }
        let next = || {
            run.events
                .iter()
                .skip((position + 1 - first) as usize)
                .take(limit as usize)
        };
        let (kept, _) = within_budget(next(), budget);
        Some(next().take(kept).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: i64) -> RawEvent {
        RawEvent {
            position,
            aggregate_type: "family".into(),
            aggregate_id: format!("f{position}"),
            sequence: 1,
            event_type: "FamilyCreated".into(),
            event_version: "1.0".into(),
            payload: "{}".into(),
            metadata: "{}".into(),
            recorded_at: "2026-12-04T00:00:00.000000Z".into(),
        }
    }

    fn positions(events: Option<Vec<RawEvent>>) -> Option<Vec<i64>> {
        events.map(|v| v.into_iter().map(|e| e.position).collect())
    }

    #[test]
    fn answers_only_from_a_run_that_holds_the_next_position() {
        let tail = Tail::default();
        assert_eq!(positions(tail.after(0, 10)), None, "empty: read the database");
        tail.push((5..=9).map(event));
        assert_eq!(positions(tail.after(4, 10)), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(positions(tail.after(6, 2)), Some(vec![7, 8]), "at most `limit`");
        assert_eq!(positions(tail.after(3, 10)), None, "position 4 is not held");
        assert_eq!(positions(tail.after(9, 10)), None, "nothing after the run");
        assert_eq!(positions(tail.after(4, 0)), None);
    }

    #[test]
    fn a_gap_starts_a_new_run_and_a_clear_forgets_it() {
        let tail = Tail::default();
        tail.push((1..=3).map(event));
        tail.push((4..=5).map(event));
        assert_eq!(positions(tail.after(0, 10)), Some(vec![1, 2, 3, 4, 5]));
        // Another instance wrote 6 and 7: this process's next commit is 8.
        tail.push([event(8)]);
        assert_eq!(positions(tail.after(5, 10)), None, "6 and 7 are in the database only");
        assert_eq!(positions(tail.after(0, 10)), None);
        assert_eq!(positions(tail.after(7, 10)), Some(vec![8]));
        tail.clear();
        assert_eq!(positions(tail.after(7, 10)), None);
    }

    fn sized(position: i64, bytes: usize) -> RawEvent {
        RawEvent {
            payload: "x".repeat(bytes),
            ..event(position)
        }
    }

    #[test]
    fn a_batch_clones_no_further_than_its_budget() {
        let tail = Tail::default();
        tail.push((1..=5).map(|p| sized(p, 100)));
        // Each event is 102 bytes with its metadata: the third reaches 300.
        assert_eq!(positions(tail.after_within(0, 10, 300)), Some(vec![1, 2, 3]));
        assert_eq!(positions(tail.after_within(0, 10, 1)), Some(vec![1]), "at least one");
        assert_eq!(positions(tail.after_within(3, 10, 10_000)), Some(vec![4, 5]));
        assert_eq!(positions(tail.after_within(0, 2, 10_000)), Some(vec![1, 2]));
    }

    #[test]
    fn keeps_no_more_text_than_its_byte_capacity() {
        let tail = Tail::default();
        let big = CAPACITY_BYTES / 4;
        tail.push((1..=6).map(|p| sized(p, big)));
        assert_eq!(positions(tail.after(0, 10)), None, "the oldest went first");
        assert_eq!(positions(tail.after(2, 10)), None);
        assert_eq!(positions(tail.after(3, 10)), Some(vec![4, 5, 6]));
        // A gap starts a new run, whose size starts from nothing.
        tail.push([sized(8, 10)]);
        assert_eq!(positions(tail.after(7, 10)), Some(vec![8]));
        assert_eq!(tail.run.lock().unwrap().bytes, 12);
    }

    #[test]
    fn keeps_the_newest_events_up_to_its_capacity() {
        let tail = Tail::default();
        tail.push((1..=(CAPACITY as i64 + 10)).map(event));
        assert_eq!(positions(tail.after(10, 1)), Some(vec![11]));
        assert_eq!(positions(tail.after(9, 1)), None, "the oldest went first");
    }
}
