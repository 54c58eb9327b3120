//! A user's notifications: marking one read is the inbox's one command.

use domain::inbox::{Inbox, InboxCommand};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::path_id;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

/// What marking a notification read answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationRead {
    pub id: String,
    /// Always `read`.
    pub status: String,
}

/// Marks the caller's notification `id` read (again: no change).
pub async fn read(state: &AppState, p: &Principal, meta: &RequestMeta, id: &str) -> Result<NotificationRead, AppError> {
    let nid: uuid::Uuid = path_id(id, "notification")?;
    let owner = state.read().await.notifications().owner(nid).await?;
    if owner != Some(p.user_id) {
        return Err(AppError::NotFound("notification"));
    }
    let mut ctx = meta.context(Some(p), "ReadNotification");
    ctx.expected_version = None;
    state
        .execute::<Inbox>(
            &p.user_id.to_string(),
            InboxCommand::MarkRead {
                notification_id: nid.to_string(),
            },
            ctx,
        )
        .await?;
    Ok(NotificationRead {
        id: nid.to_string(),
        status: "read".into(),
    })
}
