//! Field validation: input that can never be accepted, named field by field.
//! Every aggregate's error enum wraps [`Invalid`] in its `Validation` variant,
//! and the server's request parsing collects the same errors with a
//! [`Validator`], so a client hears about every bad field the same way (400
//! `validation_failed`, the fields in `details`).
//!
//! The reasons are short Chinese phrases: they reach the client as they are,
//! keyed by field name, which is what a client (and a test) should match on.

use std::collections::BTreeMap;

/// Field name -> reason, for 400 responses that name the offending fields.
pub type FieldErrors = BTreeMap<String, String>;

/// Input refused field by field (400 `validation_failed`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("validation failed: {0:?}")]
pub struct Invalid(pub FieldErrors);

impl Invalid {
    /// One field refused for one reason.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut m = FieldErrors::new();
        m.insert(field.to_string(), reason.into());
        Invalid(m)
    }

    /// Whether `field` is among the refused ones (what tests match on,
    /// rather than the wording of the reason).
    pub fn names(&self, field: &str) -> bool {
        self.0.contains_key(field)
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
    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}
