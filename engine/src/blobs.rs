//! Content-addressed, durable storage for what decisions refer to by digest: the canonical input
//! of an allocation run, a loaded schedule. The log holds the digest; the bytes live here, so an
//! auditor can re-run a decision from its inputs and check the digest first.
//!
//! Layout: `DATA/blobs/<first 2 hex digits>/<64 hex digits>`. A blob is written atomically and
//! fsynced (with its folder) before `put` returns, so a decision logged after `put` never refers
//! to bytes that a crash could lose. With a log store besides the folder (PostgreSQL), a blob is
//! stored there too before `put` returns, and a replica missing one fetches it from there.

use std::path::PathBuf;
use std::sync::Arc;

use crate::fs::{DataDir, FileSystem, SyncPoint, create_dirs, read_optional, write_atomic};
use crate::log::backend::Backend;
use crate::log::{Digest, Error, Log, Result};

/// The blob folder of one data folder.
#[derive(Debug, Clone)]
pub struct BlobStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    backend: Option<Arc<dyn Backend>>,
}

impl BlobStore {
    /// The store in `data_dir/blobs` (created on the first `put`).
    pub fn new(data_dir: impl Into<DataDir>) -> Self {
        let data_dir = data_dir.into();
        BlobStore {
            fs: data_dir.fs().clone(),
            dir: data_dir.join("blobs"),
            backend: None,
        }
    }

    /// The blobs of `log`'s data folder, and of its store when it has one.
    pub fn of_log(log: &Log) -> Self {
        BlobStore {
            backend: log.backend().cloned(),
            ..BlobStore::new(log.data_dir())
        }
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        let hex = hex::encode(digest.0);
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Stores `bytes` durably and returns their SHA-256. Storing the same bytes twice is cheap
    /// (an existing blob with the right content is kept).
    pub fn put(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of(bytes);
        self.put_local(&digest, bytes)?;
        // Always: a blob the folder had already may be missing from the store.
        if let Some(backend) = &self.backend {
            backend.put_blob(&digest.to_string(), bytes)?;
        }
        Ok(digest)
    }

    /// Writes `bytes` (whose digest is `digest`) to the folder, unless they are there.
    fn put_local(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.path(digest);
        let fs = &*self.fs;
        if let Ok(Some(existing)) = read_optional(fs, &path)
            && Digest::of(&existing) == *digest
        {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            create_dirs(fs, parent)?;
        }
        write_atomic(
            fs,
            &path,
            bytes,
            0o644,
            SyncPoint::Blob,
            Some(SyncPoint::BlobName),
        )?;
        Ok(())
    }

    /// The digests of the blobs in the folder (names that are not a digest are left out).
    pub fn digests(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        let Ok(prefixes) = self.fs.list_dir(&self.dir) else {
            return Ok(out);
        };
        for prefix in prefixes {
            let Ok(names) = self.fs.list_dir(&self.dir.join(&prefix)) else {
                continue;
            };
            // Only files where `put` writes them: `<first 2 hex digits>/<64 hex digits>`.
            let prefix = prefix.to_string_lossy();
            out.extend(
                (names.iter())
                    .filter(|n| n.to_string_lossy().starts_with(&*prefix))
                    .filter_map(|n| Digest::parse_hex(&n.to_string_lossy())),
            );
        }
        out.sort_unstable_by_key(|d| d.0);
        Ok(out)
    }

    /// The bytes stored under `digest`, checked against it.
    pub fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        let mut local = read_optional(&*self.fs, &path).map_err(|source| Error::Io {
            what: "reading",
            path: path.clone(),
            source,
        })?;
        if local.as_ref().is_none_or(|b| Digest::of(b) != *digest)
            && let Some(backend) = &self.backend
            && let Some(stored) = backend.get_blob(&digest.to_string())?
            && Digest::of(&stored) == *digest
        {
            // Kept in the folder too, as the cache of the store.
            let _ = self.put_local(digest, &stored);
            local = Some(stored);
        }
        let bytes = local.ok_or_else(|| Error::BadFile {
            path: path.clone(),
            reason: format!("blob {digest} is missing from the data folder"),
        })?;
        let found = Digest::of(&bytes);
        if found != *digest {
            return Err(Error::BadFile {
                path,
                reason: format!("blob content hashes to {found}, not to its name {digest}"),
            });
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_reads_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path());
        let digest = store.put(b"applications").unwrap();
        assert_eq!(digest, Digest::of(b"applications"));
        assert_eq!(store.get(&digest).unwrap(), b"applications");
        assert_eq!(store.put(b"applications").unwrap(), digest);

        let missing = Digest::of(b"other");
        assert!(
            store
                .get(&missing)
                .unwrap_err()
                .to_string()
                .contains("missing")
        );

        std::fs::write(store.path(&digest), b"applicationz").unwrap();
        let err = store.get(&digest).unwrap_err().to_string();
        assert!(err.contains("not to its name"), "{err}");
        // A damaged blob is rewritten by the next put of the right bytes.
        store.put(b"applications").unwrap();
        assert_eq!(store.get(&digest).unwrap(), b"applications");
    }
}
