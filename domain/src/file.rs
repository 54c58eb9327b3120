//! Uploaded files. The bytes live in blob storage; the event records what was
//! stored, where, by whom, and its digest.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
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

impl Aggregate for StoredFile {
    const TYPE: &'static str = "file";
    type Command = FileCommand;
    type Event = FileEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: FileCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        match command {
            FileCommand::Register(_) if self.info.is_some() => Err(DomainError::conflict("文件已存在")),
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
