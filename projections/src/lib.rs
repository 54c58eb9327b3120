//! Read models: projectors that turn stored events into tables, and the queries
//! the HTTP endpoints serve from those tables.
//!
//! # Layout
//! - [`store`]: the read store (MySQL, or SQLite when embedded) behind one sqlx
//!   `Any` pool, its migrations, and row helpers ([`store::RowExt`]: typed ids
//!   and statuses are parsed at the row, a bad value is a decode error).
//! - [`page`]: paging, and the one way a list is queried ([`ReadStore::page`]:
//!   a count and a page over one filter).
//! - [`projector`]: the [`Projector`] trait, [`StoredEvent`], and the batch
//!   step that applies events and advances the checkpoint in one transaction.
//! - [`bulk`]: multi-row inserts, for projectors that apply a run of events at once.
//! - [`registry`]: every projector, in the order a rebuild runs them.
//! - one module per read model: [`alerts`] (abnormal-record alerts and their escalation), [`users`],
//!   [`families`], [`packages`], [`subscriptions`],
//!   [`visits`], [`records`] (health records and files), [`orders`] (requests, orders, notifications),
//!   [`hospitals`] (catalog, slots, bookings), [`evv`] (visit verification exceptions),
//!   [`wechat`] (openid bindings by keyed hash, the push queue).
//!   [`jobs`] (scheduled job runs, and the queries of the jobs and the weekly report).
//! - [`rebuild`]: a shadow read store to replay into, and the atomic switch
//!   that puts its tables in place of the live ones.
//!
//! # Queries
//! Each read model has one query type, reached from the store by its name:
//! `read.records().get(id)`, `read.orders().of_patient(patient, page)`,
//! `read.users().list(role, page)`, `read.families().get(family, today, recorder)`,
//! `read.patients().get(patient, today)`, `read.visits().list(&filter, page)`,
//! `read.subscriptions().assigned(recorder, patient, today)`. Queries take the
//! domain's typed ids (`domain::ids`); views hold typed ids and the domain's
//! status enums, which serialize as before (UUID strings, lowercase statuses).
//!
//! Every projector is replayable: it reads only the event (its payload, its
//! metadata and its recorded time), never the clock, and calls nothing outside
//! the read store, so a rebuild produces exactly the live tables. It reads and
//! writes only its own tables, so a batch is applied projector by projector.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod bulk;
pub mod deferred;
pub mod erasure;
pub mod evv;
pub mod families;
mod gram_counts;
mod gram_load;
pub mod hospitals;
pub mod jobs;
mod live_file;
pub mod numbers;
pub mod orders;
pub mod packages;
pub mod page;
pub mod pool;
pub mod projector;
pub mod rebuild;
pub mod records;
pub mod registry;
pub mod store;
pub mod subscriptions;
pub mod users;
pub mod visits;
pub mod wechat;

pub use page::{Page, PageParams};
pub use projector::{Claim, ProjectionError, Projector, StoredEvent};
pub use registry::all_projectors;
pub use store::{Dialect, ReadStore};
