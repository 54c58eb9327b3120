//! The one error type of the domain. Every variant says which HTTP status the
//! server maps it to; the mapping itself lives in the server's `error` module.

use std::collections::BTreeMap;

/// Field name -> reason, for 400 responses that name the offending fields.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// Input that can never be accepted (400 `validation_failed`).
    #[error("validation failed: {0:?}")]
    Validation(FieldErrors),
    /// The aggregate does not exist (404 `not_found`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A business rule refuses the command in the current state (409 `conflict`).
    #[error("conflict: {0}")]
    Conflict(String),
}

impl DomainError {
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut m = FieldErrors::new();
        m.insert(field.to_string(), reason.into());
        DomainError::Validation(m)
    }
    pub fn conflict(reason: impl Into<String>) -> Self {
        DomainError::Conflict(reason.into())
    }
}

/// Collects field errors while parsing a request so the client hears about all
/// of them at once.
#[derive(Debug, Default)]
pub struct Validator {
    errors: FieldErrors,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.entry(field.to_string()).or_insert_with(|| reason.into());
    }
    /// Keeps the value when it parsed, records the error otherwise.
    pub fn check<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }
    pub fn finish(self) -> Result<(), DomainError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation(self.errors))
        }
    }
}
