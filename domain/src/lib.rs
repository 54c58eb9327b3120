//! carelog's domain: aggregates, their commands and events, and the value types
//! that can only be built valid. Pure logic: no database, HTTP, Kafka or clock.
//!
//! # Layout
//! - [`ids`]: typed UUID identifiers.
//! - [`values`]: validated value types (phone numbers, resident IDs, dates).
//! - [`validation`]: field errors ([`Invalid`]) and their collection ([`Validator`]).
//! - [`error`]: [`DomainError`], any aggregate's refusal as one type; each
//!   aggregate's own error enum sits beside it in the aggregate's module.
//! - [`vitals`]: vital signs with units and ranges, and alert thresholds.
//! - [`evv`]: visit verification exceptions, their rules and the reason-code catalogue.
//! - [`compliance`]: whether a recorder may be given new work (certificate, duty).
//! - [`medication`]: a patient's current medications (free text or structured).
//! - one module per aggregate: [`user`], [`family`], [`patient`], [`package`], [`subscription`],
//! - one module per aggregate: [`alert`] (abnormal records to their end), [`user`], [`family`], [`patient`], [`package`], [`subscription`],
//!   [`visit`], [`health_record`], [`file`], [`order`] (requests and orders), [`inbox`],
//!   [`hospital`] (catalog and slots), [`booking`], [`push`] (a WeChat message, at most once).
//! - [`job`]: a scheduled job's run of one period (once, however many servers try).
//! - [`route`]: the recorder's day as a route (haversine, nearest neighbour, 2-opt within time windows).
#![forbid(unsafe_code)]

pub mod alert;
pub mod booking;
pub mod compliance;
pub mod error;
pub mod evv;
pub mod family;
pub mod file;
pub mod health_record;
pub mod hospital;
pub mod ids;
pub mod inbox;
pub mod job;
pub mod medication;
pub mod order;
pub mod package;
mod patch;
pub mod patient;
pub mod push;
pub mod route;
pub mod subscription;
pub mod user;
pub mod validation;
pub mod values;
pub mod visit;
pub mod vitals;

pub use error::{DomainError, RefusalKind};
pub use validation::{FieldErrors, Invalid, Validator};

/// How a personal field reads once its data subject was erased (the key that
/// encrypted it destroyed). Strings read as this; lists as empty; the rest null.
pub const ERASED: &str = "[已删除]";
