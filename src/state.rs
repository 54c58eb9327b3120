//! What every handler gets: the stores, settings, keys, and the helpers that
//! turn a request into a command context and read the read models once they
//! show the caller's writes (read-your-writes, see `crate::fence`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use domain::DomainError;
use projections::ReadStore;

use crate::app::error::AppError;
use crate::auth::{JwtKeys, Principal};
use crate::config::Settings;
use crate::runner::ProjectionWaiter;
use crate::store::{CommandContext, Committed, EventStore};

#[derive(Clone)]
pub struct AppState {
    pub store: EventStore,
    /// The read models: read them through [`AppState::read`], which waits
    /// for what the request must see, or [`AppState::read_now`].
    pub(crate) read_models: ReadStore,
    pub settings: Arc<Settings>,
    pub jwt: JwtKeys,
    pub waiter: ProjectionWaiter,
    /// Where uploaded file bytes live (local directory or S3).
    pub blobs: crate::files::BlobStore,
    /// The Kafka relay, when `CARELOG_KAFKA_BROKERS` is set.
    pub relay: Option<crate::relay::RelayHandle>,
    /// Records reads of patient data before they are answered.
    pub access: crate::access_log::AccessLog,
    /// Records login attempts and throttles guessing.
    pub logins: crate::logins::LoginAttempts,
    /// The per-IP request limit of this instance.
    pub rate_limiter: crate::front_door::RateLimiter,
    /// Session checks kept a few seconds, dropped by commands on their user.
    pub sessions: Arc<crate::sessions::SessionCache>,
    /// The WeChat API client, when `CARELOG_WECHAT_APP_ID` and `_SECRET` are set.
    pub wechat: Option<Arc<crate::wechat::WechatClient>>,
}

impl AppState {
    pub fn today(&self) -> NaiveDate {
        self.settings.today()
    }

    /// The read models, once they show every event the current request must
    /// see: this process's commits, the position the request names, and on a
    /// shared store the head (`crate::fence`). Every read a user's answer
    /// depends on goes through here.
    pub async fn read(&self) -> &ReadStore {
        crate::fence::before_read(&self.store, &self.waiter).await;
        &self.read_models
    }

    /// The read models as they are: for the followers' own bookkeeping,
    /// health checks, metrics and one-shot CLI commands, which wait for no
    /// one's writes.
    pub fn read_now(&self) -> &ReadStore {
        &self.read_models
    }

    /// Executes a command and returns once its events are committed, with
    /// their position, and the read models are no more than
    /// `CARELOG_PROJECTION_MAX_BEHIND` events behind them. It does not wait
    /// for the read models to show it: the caller's next read does
    /// (`AppState::read`), and its answer names the position
    /// (`X-Carelog-Position`).
    pub async fn execute<A>(&self, id: &str, command: A::Command, ctx: CommandContext) -> Result<Committed, AppError>
    where
        A: Aggregate<Services = ()>,
        DomainError: From<A::Error>,
        A::Command: Clone,
    {
        let result = self.store.execute::<A>(id, command, &ctx).await;
        crate::metrics::command(A::TYPE, result.is_ok());
        let committed = result?;
        crate::fence::committed(committed.position);
        // Flow control: past `CARELOG_PROJECTION_MAX_BEHIND` events behind,
        // the command waits for the read models to come within it.
        let behind = i64::from(self.settings.limits.projection_max_behind);
        if committed.position > behind {
            self.waiter.wait_for(committed.position - behind).await;
        }
        // A logout, suspension, role or password change: their sessions are
        // checked afresh from now on (a session is checked through
        // `AppState::read`, which waits for this commit).
        if A::TYPE == <domain::user::User as Aggregate>::TYPE {
            self.sessions.forget_user(id);
        }
        Ok(committed)
    }
}

/// Request facts recorded in every event's metadata, and `If-Match`.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub ip: String,
    pub user_agent: String,
    pub request_id: String,
    pub correlation_id: String,
    pub if_match: Option<i64>,
    /// `Idempotency-Key`, used to derive the ids of created aggregates.
    pub idempotency_key: Option<String>,
}

impl RequestMeta {
    /// The command context for `command` issued by `actor` (None for the CLI
    /// or unauthenticated commands such as login).
    pub fn context(&self, actor: Option<&Principal>, command: &str) -> CommandContext {
        let mut m = HashMap::new();
        if let Some(p) = actor {
            m.insert("actor_id".into(), p.user_id.to_string());
            m.insert("actor_role".into(), p.role.as_str().to_string());
        }
        m.insert("ip".into(), self.ip.clone());
        m.insert("user_agent".into(), self.user_agent.clone());
        m.insert("request_id".into(), self.request_id.clone());
        m.insert("correlation_id".into(), self.correlation_id.clone());
        m.insert("command".into(), command.to_string());
        m.insert("time".into(), projections::store::instant(chrono::Utc::now()));
        CommandContext {
            metadata: m,
            expected_version: self.if_match,
            fresh: false,
        }
    }

    /// A context for commands issued by the server itself or the CLI.
    pub fn system(command: &str) -> CommandContext {
        RequestMeta {
            ip: String::new(),
            user_agent: "carelog-cli".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            correlation_id: String::new(),
            if_match: None,
            idempotency_key: None,
        }
        .context(None, command)
    }
}
