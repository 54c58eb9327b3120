//! Integration tests: the real server over HTTP, each test on a fresh database,
//! each one twice (embedded SQLite, and PostgreSQL + MySQL); and
//! [`events_doc`], which generates `docs/events.md` from the code and checks it.

mod helpers;

mod access_log;
mod alerts;
mod amendments;
mod audit;
mod auth;
mod authz_matrix;
mod backup;
mod bulk_rows;
mod concurrency;
mod event_store;
mod events_doc;
mod evv;
mod families;
mod fhir;
mod field_work;
mod hospitals;
mod jobs;
mod kafka;
mod offline_sync;
mod operations;
mod query_plans;
mod rebuild;
mod security;
mod users;
mod validation;
mod wechat;
