//! Uploaded files. The bytes live in blob storage; the event records what was
//! stored, where, by whom, and its digest.

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FileEvent {
    FileUploaded(FileInfo),
}

impl DomainEvent for FileEvent {
    fn event_type(&self) -> String {
        "FileUploaded".into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct StoredFile {
    pub info: Option<FileInfo>,
}

/// Every way a file refuses a command. The server's error module gives each
/// its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FileError {
    /// A file is registered once: its id names one stored blob (409).
    #[error("the file is already registered")]
    AlreadyExists,
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
        }
    }

    fn apply(&mut self, event: FileEvent) {
        match event {
            FileEvent::FileUploaded(info) => self.info = Some(info),
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

    #[test]
    fn it_should_not_register_a_file_twice() {
        T::with(())
            .given(vec![FileEvent::FileUploaded(info())])
            .when(FileCommand::Register(info()))
            .then_expect_error(FileError::AlreadyExists);
    }
}
