//! Parsing a use case's raw input: ids from paths, required and optional
//! fields. Every failure names the field (400) or, for a path id, answers
//! not found: a malformed id names nothing that exists.

use domain::Validator;

use crate::app::error::AppError;

/// Parses a path id into its typed form; a malformed id is simply not found.
pub fn path_id<T: std::str::FromStr>(raw: &str, what: &'static str) -> Result<T, AppError> {
    raw.parse().map_err(|_| AppError::NotFound(what))
}

/// A list filter's id from the query string: `Ok(None)` when not given,
/// `Err(NoMatch)` when malformed (no row has it: the list is empty).
pub fn filter_id<T: std::str::FromStr>(raw: Option<&str>) -> Result<Option<T>, NoMatch> {
    raw.map(|s| s.parse().map_err(|_| NoMatch)).transpose()
}

/// A filter value no row can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoMatch;

/// An optional UUID field (empty = absent); a malformed one is recorded.
pub fn uuid_field<T: std::str::FromStr>(v: &mut Validator, field: &str, raw: Option<&String>) -> Option<T> {
    raw.filter(|s| !s.is_empty())
        .and_then(|s| v.check(field, s.trim().parse::<T>().map_err(|_| "应为UUID".to_string())))
}

/// A required field: present, else the validator records it as missing.
pub fn required<'a, T>(v: &mut Validator, field: &str, value: &'a Option<T>) -> Option<&'a T> {
    if value.is_none() {
        v.add(field, "必填");
    }
    value.as_ref()
}

/// A single required field parsed on its own (status-change bodies).
pub fn parse_required<T>(
    field: &str,
    raw: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, AppError> {
    match raw {
        None => Err(AppError::field(field, "必填")),
        Some(s) => parse(s).map_err(|e| AppError::field(field, e)),
    }
}

/// An amount of money (yuan) as a client may send it: a JSON number or a
/// decimal string (the schema only; handlers read a `Decimal`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum MoneyInput {
    Number(f64),
    Text(String),
}
