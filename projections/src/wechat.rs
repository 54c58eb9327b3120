//! WeChat: the openid (as its keyed hash) → user lookup of WeChat login, and
//! the push queue the push follower works through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::UserId;
use domain::push::{PushEvent, PushStatus};
use domain::user::UserEvent;
use sqlx::AnyConnection;

use crate::projector::{ProjectionError, Projector, StoredEvent};
use crate::store::{instant, ReadStore, RowExt};

/// Replayable: bindings and pushes come from the users' and the pushes' events only.
pub struct WechatProjector;

#[async_trait]
impl Projector for WechatProjector {
    fn name(&self) -> &'static str {
        "wechat"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["wechat_bindings", "wechat_pushes"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        let id = e.aggregate_id.as_str();
        let at = e.at();
        match e.aggregate_type.as_str() {
            "user" if e.event_type == "WechatBound" || e.event_type == "WechatUnbound" => {
                match e.decode::<UserEvent>()? {
                    UserEvent::WechatBound { openid_hash, .. } => {
                        // The claim made the openid this user's: any older row is stale.
                        sqlx::query("DELETE FROM wechat_bindings WHERE openid_hash = ?")
                            .bind(&openid_hash)
                            .execute(&mut *c)
                            .await?;
                        sqlx::query("INSERT INTO wechat_bindings (openid_hash, user_id, bound_at) VALUES (?, ?, ?)")
                            .bind(&openid_hash)
                            .bind(id)
                            .bind(&at)
                            .execute(&mut *c)
                            .await?;
                    }
                    UserEvent::WechatUnbound { openid_hash } => {
                        sqlx::query("DELETE FROM wechat_bindings WHERE openid_hash = ? AND user_id = ?")
                            .bind(&openid_hash)
                            .bind(id)
                            .execute(&mut *c)
                            .await?;
                    }
                    _ => {}
                }
            }
            "push" => {
                let (status, attempts, retry_at, error) = match e.decode::<PushEvent>()? {
                    PushEvent::PushQueued(m) => {
                        sqlx::query(
                            "INSERT INTO wechat_pushes (id, user_id, kind, status, attempts, created_at, updated_at)
                             VALUES (?, ?, ?, 'queued', 0, ?, ?)",
                        )
                        .bind(id)
                        .bind(m.user_id.to_string())
                        .bind(&m.kind)
                        .bind(&at)
                        .bind(&at)
                        .execute(&mut *c)
                        .await?;
                        return Ok(());
                    }
                    PushEvent::PushAttempted { attempt } => (PushStatus::InFlight, attempt, None, None),
                    PushEvent::PushSent { attempt } => (PushStatus::Sent, attempt, None, None),
                    PushEvent::PushFailed {
                        attempt,
                        error,
                        retry_at,
                    } => (
                        if retry_at.is_some() {
                            PushStatus::Failed
                        } else {
                            PushStatus::GivenUp
                        },
                        attempt,
                        retry_at.map(instant),
                        Some(error),
                    ),
                    PushEvent::PushSkipped { attempt, reason } => (PushStatus::Skipped, attempt, None, Some(reason)),
                };
                sqlx::query(
                    "UPDATE wechat_pushes SET status = ?, attempts = ?, retry_at = ?,
                        last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?",
                )
                .bind(status.as_str())
                .bind(i64::from(attempts))
                .bind(retry_at)
                .bind(error)
                .bind(&at)
                .bind(id)
                .execute(&mut *c)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A push the follower should work on now.
#[derive(Debug, Clone, PartialEq)]
pub struct DuePush {
    pub id: String,
    /// Attempts made so far (the next is this plus one).
    pub attempts: u32,
}

/// A push as tests and operators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PushRow {
    pub id: String,
    pub user_id: UserId,
    pub kind: String,
    pub status: PushStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl ReadStore {
    /// The WeChat read model: openid bindings and the push queue.
    pub fn wechat(&self) -> Wechat<'_> {
        Wechat(self)
    }
}

/// Queries of the WeChat read model.
#[derive(Clone, Copy)]
pub struct Wechat<'a>(&'a ReadStore);

impl Wechat<'_> {
    /// The user an openid hash is bound to.
    pub async fn user(self, openid_hash: &str) -> Result<Option<UserId>, sqlx::Error> {
        let row = sqlx::query("SELECT user_id FROM wechat_bindings WHERE openid_hash = ?")
            .bind(openid_hash)
            .fetch_optional(self.0.pool())
            .await?;
        row.map(|r| r.id("user_id")).transpose()
    }

    /// Queued pushes, and failed ones whose retry is due at `now`, oldest first.
    pub async fn due_pushes(self, now: DateTime<Utc>, limit: i64) -> Result<Vec<DuePush>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, attempts FROM wechat_pushes
             WHERE status = 'queued' OR (status = 'failed' AND retry_at <= ?)
             ORDER BY updated_at, id LIMIT ?",
        )
        .bind(instant(now))
        .bind(limit)
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DuePush {
                    id: r.text("id")?,
                    attempts: u32::try_from(r.int("attempts")?).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// The pushes to one user, oldest first.
    pub async fn pushes_to(self, user_id: UserId) -> Result<Vec<PushRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, user_id, kind, status, attempts, last_error FROM wechat_pushes
             WHERE user_id = ? ORDER BY created_at, id",
        )
        .bind(user_id.to_string())
        .fetch_all(self.0.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PushRow {
                    id: r.text("id")?,
                    user_id: r.id("user_id")?,
                    kind: r.text("kind")?,
                    status: r.status("status")?,
                    attempts: r.int("attempts")?,
                    last_error: r.opt_text("last_error")?,
                })
            })
            .collect()
    }
}
