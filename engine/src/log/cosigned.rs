//! The log's cosigned checkpoints: the latest one that reached its witnesses' quorum
//! (`DATA/log/cosigned`, replaced atomically) and the history of all of them
//! (`DATA/log/cosigned-history`, one `<size> <base64 root> <POSIX time>` line each, appended and
//! fsynced, never rewritten). A server refuses to start on a tree that disagrees with the newest
//! cosigned checkpoint: re-signing a rewritten log with the log's own key cannot bring back the
//! witnesses' cosignatures.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::error::io;
use super::note::{TrustPolicy, Trusted};
use super::{Error, Log, Result, lock};
use crate::fs::{OpenOptions, SyncPoint, write_atomic};

impl Log {
    fn cosigned_path(&self) -> PathBuf {
        self.dir().join("cosigned")
    }

    fn cosigned_history_path(&self) -> PathBuf {
        self.dir().join("cosigned-history")
    }

    /// The newest cosigned checkpoint kept in the log folder, if any, checked against `policy`
    /// (the log's key and its witnesses' quorum) and against the tree: a tree that lost entries
    /// or disagrees with it at its size is an error that names the evidence.
    pub fn cosigned(&self, policy: &TrustPolicy) -> Result<Option<(String, Trusted)>> {
        let path = self.cosigned_path();
        let fs = self.shared.paths.fs();
        let Some(bytes) = crate::fs::read_optional(fs, &path).map_err(io("reading", &path))? else {
            return Ok(None);
        };
        let note = String::from_utf8(bytes).map_err(|_| Error::BadFile {
            path: path.clone(),
            reason: "not UTF-8".into(),
        })?;
        let trusted = policy.check(&note).map_err(|source| Error::Note {
            path: path.clone(),
            source,
        })?;
        let view = self.shared.view();
        super::tree_agrees(&view, &trusted.checkpoint, path)?;
        drop(view);
        Ok(Some((note, trusted)))
    }

    /// Keeps `note` (which satisfied the caller's policy as `trusted`) as the newest cosigned
    /// checkpoint and appends it to the history, durably. The caller keeps them in order of
    /// size (the server's one gathering task does).
    pub fn keep_cosigned(&self, note: &str, trusted: &Trusted, time: u64) -> Result<()> {
        // Serialised with signing: the kept file only ever grows.
        let _signing = lock(&self.shared.checkpoint);
        let fs = self.shared.paths.fs();
        let size = trusted.checkpoint.size;
        let history = self.cosigned_history_path();
        let mut line = format!("{size} {} {time}\n", B64.encode(trusted.checkpoint.root));
        let existed = crate::fs::exists(fs, &history);
        let file = fs
            .open(&history, OpenOptions::create())
            .map_err(io("opening", &history))?;
        let end = file.len().map_err(io("reading the size of", &history))?;
        // A crash may have torn the last line: the next one starts on a line of its own.
        let mut last = [b'\n'];
        if end > 0 {
            crate::fs::read_up_to(&*file, &mut last, end - 1).map_err(io("reading", &history))?;
        }
        if last[0] != b'\n' {
            line.insert(0, '\n');
        }
        file.write_all_at(line.as_bytes(), end)
            .map_err(io("appending to", &history))?;
        file.sync_all(SyncPoint::LogCosignedHistory)
            .map_err(io("syncing", &history))?;
        if !existed {
            let dir = self.dir();
            fs.sync_dir(dir, SyncPoint::LogCosignedName)
                .map_err(io("syncing", dir))?;
        }
        write_atomic(
            fs,
            &self.cosigned_path(),
            note.as_bytes(),
            0o644,
            SyncPoint::LogCosigned,
            Some(SyncPoint::LogCosignedName),
        )?;
        Ok(())
    }
}
