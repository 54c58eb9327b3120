//! A short, revocable cache of session checks.
//!
//! Every authenticated request checks its session (not revoked, not expired,
//! user active, role) in the read store. The answer changes only through the
//! user's own events (login, logout, password change, status or role change),
//! so it is kept for a few seconds (`CARELOG_SESSION_CACHE_SECS`, default 2;
//! 0 turns the cache off):
//! - **revocable here**: a command on a user that commits through this
//!   instance ([`crate::state::AppState::execute`]) drops that user's entries
//!   once the read models show it, so a logout, a suspension or a password
//!   change is refused at once on this instance;
//! - **bounded elsewhere**: another instance sees it when its entry expires,
//!   at most the cache's lifetime later (the same bound as before the cache
//!   for a read model that lags);
//! - **no stale refill**: a check that started before a drop does not put its
//!   (possibly older) answer back: every drop moves an epoch, and an answer is
//!   kept only if the epoch has not moved while it was read;
//! - only sessions that exist are kept (a session just opened is looked up
//!   again until its row is there), and expiry is judged on every request.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use projections::users::SessionState;

/// At most this many sessions are kept; past it the cache starts afresh.
const MAX_ENTRIES: usize = 100_000;

/// See the module docs.
pub struct SessionCache {
    ttl: Duration,
    epoch: AtomicU64,
    entries: Mutex<HashMap<String, (Instant, SessionState)>>,
}

impl SessionCache {
    /// A cache keeping each answer for `ttl` (zero: no caching).
    pub fn new(ttl: Duration) -> Self {
        SessionCache {
            ttl,
            epoch: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The session `id`'s state: kept, or read with `load` (and kept).
    pub async fn get_or_load<E, F>(&self, id: &str, load: F) -> Result<Option<SessionState>, E>
    where
        F: Future<Output = Result<Option<SessionState>, E>>,
    {
        if self.ttl.is_zero() {
            return load.await;
        }
        if let Some(state) = self.kept(id) {
            return Ok(Some(state));
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded = load.await?;
        if let Some(state) = &loaded {
            let mut entries = self.lock();
            // A drop while it was read: the answer may predate it.
            if self.epoch.load(Ordering::Acquire) == epoch {
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(id.to_string(), (Instant::now() + self.ttl, state.clone()));
            }
        }
        Ok(loaded)
    }

    /// Drops every kept session of `user_id` (after a command on that user).
    pub fn forget_user(&self, user_id: &str) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, (_, s)| s.user_id.to_string() != user_id);
    }

    fn kept(&self, id: &str) -> Option<SessionState> {
        let mut entries = self.lock();
        match entries.get(id) {
            Some((until, state)) if *until > Instant::now() => Some(state.clone()),
            Some(_) => {
                entries.remove(id);
                None
            }
            None => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, SessionState)>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use domain::user::{Role, UserStatus};

    use super::*;

    const U1: &str = "00000000-0000-0000-0000-000000000001";
    const U2: &str = "00000000-0000-0000-0000-000000000002";

    fn session(user: &str, revoked: bool) -> SessionState {
        SessionState {
            user_id: user.parse().expect("a user id"),
            role: Role::Recorder,
            user_status: UserStatus::Active,
            revoked,
            expires_at: "2999-01-01T00:00:00.000000Z".into(),
        }
    }

    async fn check(cache: &SessionCache, id: &str, reads: &AtomicUsize, answer: SessionState) -> SessionState {
        cache
            .get_or_load(id, async {
                reads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(Some(answer))
            })
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_session_is_read_once_within_its_lifetime() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let reads = AtomicUsize::new(0);
        for _ in 0..3 {
            check(&cache, "s1", &reads, session(U1, false)).await;
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_command_on_the_user_drops_their_sessions_only() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let reads = AtomicUsize::new(0);
        check(&cache, "s1", &reads, session(U1, false)).await;
        check(&cache, "s2", &reads, session(U2, false)).await;
        cache.forget_user(U1);
        let again = check(&cache, "s1", &reads, session(U1, true)).await;
        assert!(again.revoked, "read again after the drop");
        check(&cache, "s2", &reads, session(U2, false)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 3, "u2's session still kept");
    }

    #[tokio::test]
    async fn an_answer_read_across_a_drop_is_not_kept() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let stale = cache
            .get_or_load("s1", async {
                // The user is suspended while this read is in flight.
                cache.forget_user(U1);
                Ok::<_, ()>(Some(session(U1, false)))
            })
            .await
            .unwrap();
        assert!(stale.is_some());
        let reads = AtomicUsize::new(0);
        check(&cache, "s1", &reads, session(U1, true)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1, "the stale answer was not kept");
    }

    #[tokio::test]
    async fn unknown_sessions_and_a_zero_lifetime_are_never_kept() {
        let cache = SessionCache::new(Duration::from_secs(60));
        for _ in 0..2 {
            let none = cache.get_or_load("s1", async { Ok::<_, ()>(None) }).await.unwrap();
            assert!(none.is_none());
        }
        let reads = AtomicUsize::new(0);
        check(&cache, "s1", &reads, session(U1, false)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1, "found once it exists");

        let off = SessionCache::new(Duration::ZERO);
        let reads = AtomicUsize::new(0);
        check(&off, "s1", &reads, session(U1, false)).await;
        check(&off, "s1", &reads, session(U1, false)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_expired_entry_is_read_again() {
        let cache = SessionCache::new(Duration::from_millis(1));
        let reads = AtomicUsize::new(0);
        check(&cache, "s1", &reads, session(U1, false)).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        check(&cache, "s1", &reads, session(U1, false)).await;
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }
}
