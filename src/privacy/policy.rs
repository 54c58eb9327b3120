//! Which fields of which events are personal data, and whose.
//!
//! Matched by field name at any depth of the event, per aggregate type. The
//! relay applies its own, stricter rule on top (src/relay/envelope.rs).

/// Whose key seals an event's personal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectRule {
    /// The aggregate is the data subject (a patient, a family).
    Itself,
    /// The patient the aggregate is about (its events name `patient_id`, or
    /// the first event of the aggregate does).
    PatientOf,
}

/// The personal fields of an aggregate type's events, or `None` if it holds none.
///
/// Left in clear on purpose: ids, gender, birth date and relationship (needed
/// for age-based care and statistics), vital signs and alert codes (clinical
/// measurements the auditor's timeline and analytics use), dates and statuses.
pub fn protected_fields(aggregate_type: &str) -> Option<(SubjectRule, &'static [&'static str])> {
    use SubjectRule::*;
    let fields: (SubjectRule, &'static [&'static str]) = match aggregate_type {
        "family" => (
            Itself,
            &[
                "family_name",
                "primary_address",
                "secondary_address",
                "contact_phone",
                "emergency_contact",
                "emergency_phone",
                "home_lat",
                "home_lng",
            ],
        ),
        "patient" => (
            Itself,
            &[
                "name",
                "id_card",
                "phone",
                "medical_history",
                "allergies",
                "current_medications",
                "service_preferences",
            ],
        ),
        "appointment" => (PatientOf, &["notes", "reason", "location"]),
        // A file's name may name its patient; it is sealed under the file's own
        // key, destroyed with the patient's when the file is attached to their record.
        "file" => (Itself, &["original_name"]),
        "health_record" => (PatientOf, &["symptoms", "notes", "location", "reason"]),
        "order_request" => (PatientOf, &["reason"]),
        // An admin's free-text resolution may name people; codes and measurements stay clear.
        "evv_exception" => (PatientOf, &["resolution"]),
        "medical_order" => (PatientOf, &["content", "notes", "reason"]),
        "hospital_appointment" => (PatientOf, &["notes", "result_notes", "reason"]),
        // A staff member's WeChat openid (bound for WeChat login and messages).
        "user" => (Itself, &["openid"]),
        // The doctor's note on how an alert ended.
        "alert" => (PatientOf, &["note"]),
        _ => return None,
    };
    Some(fields)
}
