//! Where file bytes live: one [`BlobStore`] over a local directory
//! (development, single-node installs) and S3-compatible object storage
//! (production, MinIO). The bytes arrive here already sealed under the
//! file's own key (`Privacy::seal_bytes`), so either backend stores them
//! encrypted at rest.

use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use super::FileError;
use crate::config::S3Settings;

/// Where file bytes live. One type over local disk and S3 so handlers and
/// tests do not care which backend the deployment configured.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    backend: &'static str,
}

impl BlobStore {
    /// Stores files under `dir`, creating it if needed. For development,
    /// tests and single-node installs.
    pub fn local(dir: &Path) -> Result<Self, FileError> {
        std::fs::create_dir_all(dir).map_err(|e| FileError::Storage(format!("creating {}: {e}", dir.display())))?;
        // Patients' files (encrypted, still private): the owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| FileError::Storage(format!("restricting {}: {e}", dir.display())))?;
        }
        let store = LocalFileSystem::new_with_prefix(dir).map_err(storage_error)?;
        Ok(BlobStore {
            inner: Arc::new(store),
            backend: "local",
        })
    }

    /// Stores files in an S3 bucket. Requests use path-style URLs
    /// (`endpoint/bucket/key`), which S3-compatible services like MinIO need.
    /// Does not contact the service: a wrong bucket or key shows up on first use.
    pub fn s3(settings: &S3Settings) -> Result<Self, FileError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
            .with_allow_http(settings.allow_http)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        let store = builder.build().map_err(storage_error)?;
        Ok(BlobStore {
            inner: Arc::new(store),
            backend: "s3",
        })
    }

    /// Which backend this is (`local` or `s3`), for startup logs.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Writes `bytes` under `key` (e.g. `patients/<id>/<uuid>.jpg`),
    /// replacing any previous object. Keys are made by the server; one with
    /// empty, `.` or `..` segments is refused as a storage error.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), FileError> {
        let path = object_path(key)?;
        self.inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    /// Reads the object under `key`; `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, FileError> {
        let path = object_path(key)?;
        let result = match self.inner.get(&path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(storage_error(e)),
        };
        let bytes = result.bytes().await.map_err(storage_error)?;
        Ok(Some(bytes.to_vec()))
    }

    /// Removes the object under `key`; removing a missing object succeeds, so
    /// retries and clean-ups are idempotent.
    pub async fn delete(&self, key: &str) -> Result<(), FileError> {
        let path = object_path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }
}

/// Parses a key strictly, refusing traversal (`..`) and empty segments.
fn object_path(key: &str) -> Result<ObjectPath, FileError> {
    ObjectPath::parse(key).map_err(|e| FileError::Storage(format!("invalid key {key:?}: {e}")))
}

fn storage_error(e: object_store::Error) -> FileError {
    FileError::Storage(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_store_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::local(&dir.path().join("blobs")).expect("local store");
        assert_eq!(store.backend(), "local");
        let key = "patients/p1/photo.png";
        assert_eq!(store.get(key).await.expect("get missing"), None);
        store.put(key, b"bytes".to_vec()).await.expect("put");
        assert_eq!(store.get(key).await.expect("get"), Some(b"bytes".to_vec()));
        store.delete(key).await.expect("delete");
        assert_eq!(store.get(key).await.expect("get deleted"), None);
        store.delete(key).await.expect("delete missing is ok");
        assert!(matches!(
            store.put("../escape", vec![1]).await,
            Err(FileError::Storage(_))
        ));
    }

    #[test]
    fn s3_store_builds_for_minio_without_contacting_it() {
        let store = BlobStore::s3(&S3Settings {
            bucket: "carelog".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: None,
            access_key_id: Some("minio".into()),
            secret_access_key: Some(crate::config::Secret::new("minio-secret")),
            allow_http: true,
        })
        .expect("s3 store");
        assert_eq!(store.backend(), "s3");
    }
}
