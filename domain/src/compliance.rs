//! Compliance of recorders: who may be given new work. A recorder whose
//! certificate expired before today, or who is off duty, gets no new
//! subscription and no new visit; work already given stays theirs.
//!
//! The standing is a fact the caller reads from the recorder's profile and
//! passes with the command (like a record's home and thresholds), so the
//! subscription and visit aggregates decide with it and their tests state it.

use chrono::NaiveDate;

/// A recorder's standing on `today` (the configured timezone's date).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderStanding {
    /// The last day their certificate is valid; `None` when none is on file.
    pub cert_expiry_date: Option<NaiveDate>,
    pub on_duty: bool,
    pub today: NaiveDate,
}

/// Why a recorder may not be given new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotCompliant {
    /// Their certificate was valid until `expired_on`, before today.
    #[error("the recorder's certificate expired on {expired_on}")]
    CertificateExpired { expired_on: NaiveDate },
    /// They are off duty (`is_on_duty: false`).
    #[error("the recorder is off duty")]
    OffDuty,
}

impl RecorderStanding {
    /// A recorder in good standing: on duty, certificate unknown.
    pub fn good(today: NaiveDate) -> Self {
        Self {
            cert_expiry_date: None,
            on_duty: true,
            today,
        }
    }

    /// Whether the recorder may be given new work; the certificate is still
    /// valid on its expiry date.
    pub fn ensure_compliant(&self) -> Result<(), NotCompliant> {
        match self.cert_expiry_date {
            Some(expired_on) if expired_on < self.today => Err(NotCompliant::CertificateExpired { expired_on }),
            _ if !self.on_duty => Err(NotCompliant::OffDuty),
            _ => Ok(()),
        }
    }
}
