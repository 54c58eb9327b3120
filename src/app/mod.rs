//! The application layer: one module per use case family. A use case takes typed input and the
//! acting principal, checks access with [`crate::policy`], runs its commands on the aggregates,
//! waits for read-your-writes once, and returns a typed result. HTTP handlers (`api`), the
//! followers and the CLI call these functions; none of them orchestrates commands itself.

pub mod fhir;
pub mod users;
