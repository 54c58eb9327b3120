//! WeChat push: subscribe messages for the notifications that have a template.
//!
//! Two parts, both off unless WeChat is configured (then notifications stay
//! in the app only):
//!
//! - **the queue** (a reactor, `reactor:wechat_push`: a follower of the store,
//!   not replayable, its checkpoint in `reactor_checkpoints`, under its leader
//!   lock). For each event it takes the notices of
//!   `projections::orders::notices` — the same pure function the in-app
//!   notifications come from — and queues a `Push` (id = the notification id,
//!   which names one recipient) for each notice whose kind has a template and
//!   whose recipient has a WeChat account bound. Queuing is idempotent, so a
//!   repeated event changes nothing; events older than six hours are not
//!   pushed (no backlog of stale messages when WeChat is first configured). No HTTP call here: a slow or failing
//!   WeChat never holds the checkpoint, and never a command's caller.
//! - **the sender** (a loop under the `wechat-push-sender` leader lock) reads
//!   the queued pushes, and the failed ones whose retry is due, from the
//!   `wechat_pushes` read model, and sends each: `PushAttempted` is recorded
//!   *before* the HTTP call, `PushSent` / `PushFailed {attempt, error,
//!   retry_at}` / `PushSkipped` after. A failure waits
//!   `CARELOG_WECHAT_PUSH_RETRY_SECS` × 2^(attempt−1) and is given up after
//!   `CARELOG_WECHAT_PUSH_MAX_ATTEMPTS`; a user who refused the subscription
//!   (errcode 43101) is skipped, not retried.
//!
//! **At most once** per notification and recipient: an attempt whose outcome
//! was never recorded (the process died during the call) may have reached the
//! phone, so the `Push` aggregate refuses to attempt it again; it stays
//! `in_flight` in the read model for operators to see.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use domain::ids::UserId;
use domain::push::{Push, PushCommand, PushMessage};
use projections::wechat::DuePush;
use projections::StoredEvent;
use tokio::task::JoinHandle;

use crate::state::{AppState, RequestMeta};
use crate::store::CommandError;
use crate::wechat::{SubscribeMessage, Value, WechatError};

/// How many due pushes the sender takes at a time (sent concurrently).
const BATCH: i64 = 20;
/// How often the sender looks for due pushes when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);
/// WeChat's limit on a `thing` value.
const THING_CHARS: usize = 20;
/// Events older than this are not pushed: when WeChat is first configured on
/// a running system (the reactor starts from the first event) or after long
/// downtime, a phone should not get a backlog of stale messages; the in-app
/// notifications have them all.
const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(6);

/// Starts the queue and the sender when WeChat is configured.
pub fn start(state: AppState) -> Vec<JoinHandle<()>> {
    if state.wechat.is_none() {
        tracing::info!("WeChat is not configured: notifications stay in the app");
        return vec![];
    }
    vec![
        crate::reactors::start(
            state.clone(),
            "wechat_push",
            |aggregate, _| aggregate != "push",
            |state, e| async move { queue(&state, &e).await },
        ),
        start_sender(state),
    ]
}

/// Queues the pushes an event asks for.
async fn queue(state: &AppState, e: &StoredEvent) -> anyhow::Result<()> {
    if Utc::now() - e.recorded_at > MAX_AGE {
        return Ok(());
    }
    let notices = projections::orders::notices(e)?;
    if notices.is_empty() {
        return Ok(());
    }
    let when = e
        .recorded_at
        .with_timezone(&state.settings.field_work.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    for n in notices {
        let Some(template) = state.settings.wechat.template_for(n.kind) else {
            continue;
        };
        let Ok(user_id) = n.user_id.parse::<UserId>() else {
            continue;
        };
        if crate::app::wechat::openid_of(state, &n.user_id).await?.is_none() {
            continue;
        }
        let message = PushMessage {
            user_id,
            kind: n.kind.to_string(),
            template_id: template.to_string(),
            data: BTreeMap::from([
                ("thing1".to_string(), n.title.chars().take(THING_CHARS).collect()),
                ("time2".to_string(), when.clone()),
            ]),
        };
        let ctx = RequestMeta::system("QueuePush");
        state
            .store
            .execute::<Push>(&n.id, PushCommand::Queue(message), &ctx)
            .await?;
    }
    Ok(())
}

fn start_sender(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let _lock = crate::follower::LeaderLock::acquire(&state.store, "wechat-push-sender").await;
        let wake = state.store.appended();
        loop {
            let committed = wake.notified();
            if let Err(e) = send_due(&state).await {
                tracing::error!(error = ?e, "WeChat push sender failed; retrying");
            }
            let _ = tokio::time::timeout(POLL, committed).await;
        }
    })
}

/// Sends every push due now.
async fn send_due(state: &AppState) -> anyhow::Result<()> {
    let due = state.read().await.wechat().due_pushes(Utc::now(), BATCH).await?;
    futures::future::join_all(due.into_iter().map(|d| async move {
        if let Err(e) = send(state, &d).await {
            tracing::error!(push = %d.id, error = ?e, "WeChat push failed to record");
        }
    }))
    .await;
    Ok(())
}

/// Whether a refusal means another sender (or an earlier, interrupted
/// attempt) has this push: then it is not ours to send.
fn taken(e: &CommandError) -> bool {
    matches!(e, CommandError::Domain(domain::DomainError::Push(_)))
}

async fn send(state: &AppState, due: &DuePush) -> anyhow::Result<()> {
    let Some(wechat) = state.wechat.as_deref() else {
        return Ok(());
    };
    let Some((push, _)) = state.store.load::<Push>(&due.id).await? else {
        return Ok(());
    };
    let Some(message) = push.message else {
        return Ok(());
    };
    let ctx = |command: &str| RequestMeta::system(command);
    let record = |command: PushCommand, name: &'static str| async move {
        match state.store.execute::<Push>(&due.id, command, &ctx(name)).await {
            Err(e) if !taken(&e) => Err(anyhow::anyhow!(e)),
            _ => Ok(()),
        }
    };
    let Some(openid) = crate::app::wechat::openid_of(state, &message.user_id.to_string())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        crate::metrics::push("skipped");
        return record(
            PushCommand::RecordSkipped {
                reason: "not_bound".into(),
            },
            "SkipPush",
        )
        .await;
    };
    let attempt = push.attempts + 1;
    match state
        .store
        .execute::<Push>(&due.id, PushCommand::Attempt { attempt }, &ctx("AttemptPush"))
        .await
    {
        Ok(_) => {}
        Err(e) if taken(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let sms = SubscribeMessage {
        touser: openid,
        template_id: message.template_id,
        page: None,
        data: message
            .data
            .into_iter()
            .map(|(k, value)| (k, Value { value }))
            .collect(),
    };
    let outcome = match wechat.send(&sms).await {
        Ok(()) => {
            crate::metrics::push("sent");
            PushCommand::RecordSent
        }
        Err(WechatError::NotSubscribed) => {
            crate::metrics::push("skipped");
            PushCommand::RecordSkipped {
                reason: "not_subscribed (43101)".into(),
            }
        }
        Err(e) => {
            crate::metrics::push("failed");
            let w = &state.settings.wechat;
            let retry_at = (attempt < w.push_max_attempts).then(|| {
                let wait = w.push_retry_secs.saturating_mul(1 << (attempt - 1).min(20));
                Utc::now() + chrono::Duration::seconds(wait)
            });
            tracing::warn!(push = %due.id, attempt, error = %e, given_up = retry_at.is_none(), "WeChat push failed");
            PushCommand::RecordFailed {
                error: e.to_string().chars().take(500).collect(),
                retry_at,
            }
        }
    };
    record(outcome, "RecordPushOutcome").await
}
