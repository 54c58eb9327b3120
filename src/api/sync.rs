//! Offline sync for recorders' phones: `POST /sync/push` replays the commands
//! captured offline, `GET /sync/pull` brings the phone up to date (see `app::sync`).

use actix_web::web;
use domain::user::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access_log::ReadOrigin;
use crate::api::error::{ok, ApiResult};
use crate::api::Body;
use crate::app::error::AppError;
use crate::app::sync::{self, ClientCommand, CommandResult, Pulled};
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

/// Most commands one push may carry; a longer day goes in several pushes.
const MAX_COMMANDS: usize = 500;

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/sync/push", push).get("/sync/pull", pull);
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PushInput {
    /// The phone's own id (1 to 100 characters), kept with each command applied.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub device_id: Option<String>,
    /// Applied in this order, at most 500.
    #[schema(required = true, max_items = 500)]
    pub commands: Option<Vec<ClientCommand>>,
}

/// Each command's result, in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushResults {
    pub results: Vec<CommandResult>,
}

#[utoipa::path(post, path = "/api/v1/sync/push", tag = "sync", request_body = PushInput, security(("bearer" = [])),
    responses((status = 200, description = "each command applied, a duplicate of one applied before (its first result), or rejected with a stable code; 200 even when some are rejected", body = crate::api::Envelope<PushResults>),
        (status = 400, description = "device_id or commands missing or malformed, or more than 500 commands", body = crate::api::ErrorBody),
        (status = 403, description = "not a recorder", body = crate::api::ErrorBody)))]
pub async fn push(state: web::Data<AppState>, p: Principal, meta: RequestMeta, body: Body<PushInput>) -> ApiResult {
    p.require(&[Role::Recorder])?;
    let device_id = body
        .0
        .device_id
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty() && d.chars().count() <= 100)
        .ok_or_else(|| AppError::field("device_id", "必填，1到100个字符"))?
        .to_string();
    let commands = body.0.commands.ok_or_else(|| AppError::field("commands", "必填"))?;
    if commands.len() > MAX_COMMANDS {
        return Err(AppError::field("commands", "一次最多500条命令").into());
    }
    let results = sync::push(&state, &p, &meta, &device_id, commands).await?;
    Ok(ok(PushResults { results }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PullQuery {
    /// The `cursor` of the previous pull; absent: a full snapshot.
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sync/pull", tag = "sync", params(PullQuery), security(("bearer" = [])),
    responses((status = 200, description = "the recorder's data changed after the cursor (all of it without one), what to delete, and the next cursor", body = crate::api::Envelope<Pulled>),
        (status = 400, description = "cursor is not one this server gave", body = crate::api::ErrorBody),
        (status = 403, description = "not a recorder", body = crate::api::ErrorBody)))]
pub async fn pull(state: web::Data<AppState>, p: Principal, origin: ReadOrigin, q: web::Query<PullQuery>) -> ApiResult {
    p.require(&[Role::Recorder])?;
    let cursor = match q.cursor.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|c| *c >= 0)
                .ok_or_else(|| AppError::field("cursor", "应为上次同步返回的cursor"))?,
        ),
    };
    let pulled = sync::pull(&state, &p, cursor).await?;
    state.access.patients(&p, &origin, pulled.patients()).await?;
    Ok(ok(pulled))
}
