//! Uploaded files. The bytes live in blob storage; the event records what was
//! stored, where, by whom, and its digest.

use chrono::{DateTime, TimeDelta, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileInfo {
    /// audio | image | document
    pub kind: String,
    pub original_name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub storage_key: String,
    pub thumbnail_key: Option<String>,
    pub uploaded_by: UserId,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileCommand {
    Register(FileInfo),
    /// The clean-up of uploads never attached: `uploaded_at` and `attached`
    /// as the read models know them, `now` the run's instant.
    Discard {
        uploaded_at: DateTime<Utc>,
        attached: bool,
        now: DateTime<Utc>,
    },
}

/// How long an upload may wait to be attached to a record before the clean-up discards it.
pub const UNATTACHED_GRACE_HOURS: i64 = 24;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FileEvent {
    FileUploaded(FileInfo),
    /// Never attached to a record: its bytes are deleted from storage after this commits.
    FileDiscarded {
        storage_key: String,
        thumbnail_key: Option<String>,
    },
}

impl DomainEvent for FileEvent {
    fn event_type(&self) -> String {
        match self {
            Self::FileUploaded(_) => "FileUploaded",
            Self::FileDiscarded { .. } => "FileDiscarded",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StoredFile {
    pub info: Option<FileInfo>,
    pub discarded: bool,
}

/// Every way a file refuses a command. The server's error module gives each
/// its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FileError {
    /// A file is registered once: its id names one stored blob (409).
    #[error("the file is already registered")]
    AlreadyExists,
    /// No file was registered under this id (404).
    #[error("no such file")]
    NotFound,
    /// A file attached to a record is never discarded (409).
    #[error("the file is attached to a record")]
    Attached,
    /// An upload is kept for a day before it counts as abandoned (409).
    #[error("the upload is too recent to discard")]
    TooRecent,
}

impl Aggregate for StoredFile {
    const TYPE: &'static str = "file";
    type Command = FileCommand;
    type Event = FileEvent;
    type Error = FileError;
    type Services = ();

    async fn handle(&mut self, command: FileCommand, _: &(), sink: &EventSink<Self>) -> Result<(), FileError> {
        match command {
            FileCommand::Register(_) if self.info.is_some() => Err(FileError::AlreadyExists),
            FileCommand::Register(info) => {
                sink.write(FileEvent::FileUploaded(info), self).await;
                Ok(())
            }
            FileCommand::Discard {
                uploaded_at,
                attached,
                now,
            } => {
                let Some(info) = &self.info else {
                    return Err(FileError::NotFound);
                };
                if self.discarded {
                    return Ok(());
                }
                if attached {
                    return Err(FileError::Attached);
                }
                if now - uploaded_at < TimeDelta::hours(UNATTACHED_GRACE_HOURS) {
                    return Err(FileError::TooRecent);
                }
                let event = FileEvent::FileDiscarded {
                    storage_key: info.storage_key.clone(),
                    thumbnail_key: info.thumbnail_key.clone(),
                };
                sink.write(event, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: FileEvent) {
        match event {
            FileEvent::FileUploaded(info) => self.info = Some(info),
            FileEvent::FileDiscarded { .. } => self.discarded = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<StoredFile>;

    fn info() -> FileInfo {
        FileInfo {
            kind: "image".into(),
            original_name: "血压计.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 2048,
            sha256: "ab".repeat(32),
            storage_key: "files/ab/abab".into(),
            thumbnail_key: Some("thumbs/ab/abab".into()),
            uploaded_by: UserId::default(),
        }
    }

    #[test]
    fn it_should_register_an_uploaded_file() {
        T::with(())
            .given_no_previous_events()
            .when(FileCommand::Register(info()))
            .then_expect_events(vec![FileEvent::FileUploaded(info())]);
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }
    fn discard(attached: bool, now: &str) -> FileCommand {
        FileCommand::Discard {
            uploaded_at: at("2026-12-01T10:00:00Z"),
            attached,
            now: at(now),
        }
    }
    fn discarded() -> FileEvent {
        FileEvent::FileDiscarded {
            storage_key: "files/ab/abab".into(),
            thumbnail_key: Some("thumbs/ab/abab".into()),
        }
    }

    #[test]
    fn it_should_discard_an_upload_left_unattached_for_a_day() {
        T::with(())
            .given(vec![FileEvent::FileUploaded(info())])
            .when(discard(false, "2026-12-02T10:00:00Z"))
            .then_expect_events(vec![discarded()]);
    }

    #[test]
    fn it_should_never_discard_an_attached_file() {
        T::with(())
            .given(vec![FileEvent::FileUploaded(info())])
            .when(discard(true, "2026-12-09T10:00:00Z"))
            .then_expect_error(FileError::Attached);
    }

    #[test]
    fn it_should_keep_an_upload_younger_than_a_day() {
        T::with(())
            .given(vec![FileEvent::FileUploaded(info())])
            .when(discard(false, "2026-12-02T09:59:59Z"))
            .then_expect_error(FileError::TooRecent);
    }

    #[test]
    fn it_should_record_nothing_when_discarding_a_discarded_file() {
        T::with(())
            .given(vec![FileEvent::FileUploaded(info()), discarded()])
            .when(discard(false, "2026-12-03T10:00:00Z"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn it_should_not_register_a_file_twice() {
        T::with(())
            .given(vec![FileEvent::FileUploaded(info())])
            .when(FileCommand::Register(info()))
            .then_expect_error(FileError::AlreadyExists);
    }
}
