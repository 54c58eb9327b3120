//! The carelog server: HTTP API, authentication, configuration, the event store
//! and the followers that keep the read models up to date.
//!
//! # Layout
//! - [`config`]: typed settings from `CARELOG_*` variables, one group per concern (tokens, kafka,
//!   files/S3, alerts, limits, …), each owning its defaults, parsing and secrets.
//! - [`data_dir`]: the embedded data dir, its private files and its one lock.
//! - [`startup`]: `Application::build`, used by `main` and the tests.
//! - [`state`]: `AppState`, what every handler and use case shares (stores, settings, waiter), and
//!   `AppState::execute`, the one way to run a command on an aggregate.
//! - [`backend`]: the event-store database (PostgreSQL, or SQLite with its one writer connection).
//! - [`store`]: the event store (postgres-es / sqlite-es) and its additions; [`appender`]: its
//!   one writer, committing the events of many commands in one transaction.
//! - [`follower`]: the one way to follow the event store (leader lock, wake-ups, backoff),
//!   used by the projection pipeline, the reactors, the relay and the sealer.
//! - [`runner`]: projector runner, leader lock, read-your-writes waiting, rebuild beside the live read models.
//! - [`fence`]: read-your-writes at the read: what a request's reads wait for (`AppState::read`).
//! - [`reactors`]: followers that answer events with commands (alerts, erasure).
//! - [`scheduler`]: the scheduled jobs' timed loop, under a leader lock (`app::jobs` runs them).
//! - [`escalation`]: the timed loop, under a leader lock, that escalates alerts nobody acknowledged.
//! - [`relay`]: the Kafka publisher (CloudEvents envelopes, at-least-once).
//! - [`wechat`]: the WeChat API client (code2session, access token, subscribe messages);
//!   [`push`]: the follower that queues WeChat messages for notifications and the sender
//!   that sends them, at most once, with retries.
//! - [`app`]: use cases (typed input + principal → commands → typed result), called by the handlers,
//!   followers and the CLI: scheduling visits (`schedule`), the recorder's day and its route (`day`),
//!   offline sync of recorders' phones (`sync`), users' profiles (`users`).
//! - [`api`]: handlers; [`auth`], [`front_door`] (client IP, rate limit, security headers),
//!   [`idempotency`], [`metrics`], [`telemetry`] are their middleware; [`logins`] records and throttles logins;
//!   [`sessions`] keeps session checks a few seconds, dropped by commands on their user.
//! - errors: use cases fail with one [`app::error::AppError`] (its stable code and Chinese message);
//!   [`api::error`] is the one mapping of it to an HTTP status and the response envelope.
//! - [`fhir`]: FHIR R4 resources and the pure mapping of a patient's read models to them.
//! - [`policy`]: who may see which patient and household (the one access rule).
//! - [`privacy`]: crypto-shredding of personal fields (keys per data subject).
//! - [`access_log`]: the append-only log of who read which patient's data (group-committed).
//! - [`files`]: uploads: content sniffing, bounded thumbnails, local or S3 storage, encrypted at rest.
//! - [`audit`]: the hash chain over the events, its sealer and verifier, point-in-time replay.
//! - [`backup`]: `carelog backup` / `restore` of the whole event-store database.
//! - [`cli`]: `create-admin`, `rebuild`, `relay`, `audit verify`, `bench seed` ([`seed`]).
#![forbid(unsafe_code)]

pub mod access_log;
pub mod api;
pub mod app;
pub mod appender;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod backup;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod escalation;
pub mod fence;
pub mod fhir;
pub mod files;
pub mod follower;
pub mod front_door;
pub mod idempotency;
pub mod logins;
pub mod metrics;
pub mod policy;
pub mod privacy;
pub mod push;
pub mod reactors;
pub mod relay;
pub mod runner;
pub mod scheduler;
pub mod seed;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod tail;
pub mod telemetry;
pub mod wechat;
