//! The application layer: one module per use case family. A use case takes typed input and the
//! acting principal, checks access with [`crate::policy`], runs its commands on the aggregates,
//! waits for read-your-writes once, and returns a typed result. HTTP handlers (`api`), the
//! followers and the CLI call these functions; none of them orchestrates commands itself.
//!
//! - [`visits`]: check-in and check-out of a visit (visit verification).
//! - [`compliance`]: a recorder's standing (certificate, duty) for new work.
//! - [`users`]: profiles and passwords.
//! - [`jobs`]: the scheduled jobs, each one period at a time (see [`crate::scheduler`]).
//! - [`evv`]: visit verification exceptions: raised from the facts, acknowledged, resolved.
//! - [`input`]: parsing raw input (path ids, required fields) into typed values, naming the field.
//! - [`wechat`]: WeChat login (code → bound user) and binding.

pub mod alerts;
pub mod compliance;
pub mod day;
pub mod doctors;
pub mod erasure;
pub mod evv;
pub mod fhir;
pub mod files;
pub mod hospitals;
pub mod input;
pub mod jobs;
pub mod notifications;
pub mod orders;
pub mod records;
pub mod saga;
pub mod schedule;
pub mod sync;
pub mod users;
pub mod visits;
pub mod wechat;
