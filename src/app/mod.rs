//! The application layer: one module per use case family. A use case takes typed input and the
//! acting principal, checks access with [`crate::policy`], runs its commands on the aggregates,
//! and returns a typed result; its reads go through `AppState::read`, which waits until the read
//! models show what the caller wrote (read-your-writes, [`crate::fence`]). HTTP handlers (`api`), the
//! followers and the CLI call these functions; none of them orchestrates commands itself.
//!
//! Several commands on several aggregates (a booking's claim, slot place and booking; a record's
//! stored files and the record; a new user's unique claims and the user) are a [`saga`]: each
//! step registers its undo, written once, and a failing later step undoes the earlier ones.
//!
//! - [`records`]: record vitals (files, visit, alerts), amend, unlock; a recorder's order request.
//! - [`schedule`]: schedule, confirm, reschedule, cancel, complete a home visit.
//! - [`visits`]: check-in and check-out of a visit (visit verification).
//! - [`day`]: the recorder's day, in time or route order.
//! - [`sync`]: offline commands replayed once each (`/sync/push`) and changes since a cursor.
//! - [`orders`]: a doctor issues a medical order; [`notifications`]: marking one read.
//! - [`alerts`]: raising, acknowledging, resolving and escalating abnormal-vitals alerts;
//!   [`doctors`]: which doctor a patient's request goes to.
//! - [`evv`]: visit verification exceptions: raised from the facts, acknowledged, resolved.
//! - [`compliance`]: a recorder's standing (certificate, duty) for new work.
//! - [`catalog`]: the partner hospitals, their departments, doctors and slots (admin);
//!   [`hospitals`]: booking a place at a partner hospital.
//! - [`erasure`]: erasing a patient's personal data (crypto-shredding), resumable.
//! - [`families`]: households and their patients; [`packages`]: service packages; [`subscriptions`]: subscribing a patient.
//! - [`login`]: logging in (password or WeChat) and changing one's password.
//! - [`users`]: creating staff accounts, profiles and passwords; [`wechat`]: WeChat login and binding.
//! - [`files`]: checking, storing and recording uploads.
//! - [`fhir`]: a patient's record as a FHIR R4 bundle.
//! - [`jobs`]: the scheduled jobs, each one period at a time (see [`crate::scheduler`]).
//! - [`input`]: parsing raw input (path ids, required fields) into typed values, naming the field.
//! - [`saga`]: compensation written once; [`refusal`]: the application's own refusals (409).

pub mod alerts;
pub mod audit;
pub mod catalog;
pub mod compliance;
pub mod day;
pub mod doctors;
pub mod erasure;
pub mod error;
pub mod evv;
pub mod families;
pub mod fhir;
pub mod files;
pub mod hospitals;
pub mod input;
pub mod jobs;
pub mod login;
pub mod notifications;
pub mod orders;
pub mod packages;
pub mod records;
pub mod refusal;
pub mod saga;
pub mod schedule;
pub mod subscriptions;
pub mod sync;
pub mod users;
pub mod visits;
pub mod wechat;

/// `{id, version}`: what creating (or changing) an aggregate answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IdVersion {
    /// The aggregate's id.
    pub id: String,
    /// Its version after the command.
    pub version: i64,
}

/// `{id, status, version}`: what a status change answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StatusChanged {
    pub id: String,
    /// The status now.
    pub status: String,
    /// The aggregate's version after the command.
    pub version: i64,
}

/// Runs `command` on aggregate `id` and answers its id and new version (the
/// answer of a create or an update).
pub(crate) async fn id_version<A>(
    state: &crate::state::AppState,
    id: &str,
    command: A::Command,
    ctx: crate::store::CommandContext,
) -> Result<IdVersion, crate::app::error::AppError>
where
    A: cqrs_es::Aggregate<Services = ()>,
    domain::DomainError: From<A::Error>,
    A::Command: Clone,
{
    let committed = state.execute::<A>(id, command, ctx).await?;
    Ok(IdVersion {
        id: id.to_string(),
        version: committed.version,
    })
}
