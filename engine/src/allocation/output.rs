//! An output folder written atomically: files go into a temporary sibling folder, each fsynced,
//! and the folder is renamed into place at the end. Readers see no folder or the whole folder,
//! never a half-written one; a failed run removes its temporary folder.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Error, Result};
use crate::fs::{DataDir, File, FileSystem, OpenOptions, SyncPoint, create_dirs, parent_of};

/// A folder being written; see the module docs.
#[derive(Debug)]
pub struct OutputDir {
    fs: Arc<dyn FileSystem>,
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl OutputDir {
    /// Fails unless `target` can be created by [`OutputDir::commit`]: it must not exist, or be an
    /// empty folder (results are never overwritten). Called before anything is logged. `target`
    /// is a path on the file system of `on` (a data folder; any one will do outside tests).
    pub fn check_target(on: &DataDir, target: &Path) -> Result<()> {
        match on.fs().metadata(target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("checking the output folder", target)(e)),
            Ok(meta) if meta.is_dir => {
                let entries = on
                    .fs()
                    .list_dir(target)
                    .map_err(Error::io("reading the output folder", target))?;
                if entries.is_empty() {
                    Ok(())
                } else {
                    Err(Error::Request(format!(
                        "the output folder {} already exists and is not empty: results are never \
                         overwritten; choose a new folder",
                        target.display()
                    )))
                }
            }
            Ok(_) => Err(Error::Request(format!(
                "{} exists and is not a folder",
                target.display()
            ))),
        }
    }

    /// Creates the temporary sibling folder (and the target's parents) on the file system of
    /// `on`.
    pub fn create(on: &DataDir, target: &Path) -> Result<OutputDir> {
        Self::check_target(on, target)?;
        let fs = on.fs().clone();
        let name = target
            .file_name()
            .ok_or_else(|| Error::Request(format!("{} does not name a folder", target.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = parent_of(target).to_owned();
        create_dirs(&*fs, &parent).map_err(|e| Error::Io {
            what: e.what,
            path: e.path,
            source: e.source,
        })?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if crate::fs::exists(&*fs, &tmp) {
            fs.remove_dir_all(&tmp)
                .map_err(Error::io("removing a stale folder", &tmp))?;
        }
        fs.create_dir(&tmp)
            .map_err(Error::io("creating folder", &tmp))?;
        Ok(OutputDir {
            fs,
            target: target.to_owned(),
            tmp,
            committed: false,
        })
    }

    /// Writes the file `name` through a buffered writer and fsyncs it.
    pub fn write(
        &mut self,
        name: &str,
        content: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let path = self.tmp.join(name);
        let file = self
            .fs
            .open(&path, OpenOptions::replace(0o644))
            .map_err(Error::io("creating", &path))?;
        let mut w = BufWriter::with_capacity(
            1 << 20,
            Appender {
                file: &*file,
                at: 0,
            },
        );
        content(&mut w).map_err(Error::io("writing", &path))?;
        w.flush().map_err(Error::io("writing", &path))?;
        drop(w);
        file.sync_all(SyncPoint::OutputFile)
            .map_err(Error::io("syncing", &path))?;
        Ok(())
    }

    /// Writes a CSV file: `header`, then the rows `content` writes.
    pub fn write_csv(
        &mut self,
        name: &str,
        header: &[&str],
        content: impl FnOnce(&mut csv::Writer<&mut dyn Write>) -> csv::Result<()>,
    ) -> Result<()> {
        self.write(name, |w| {
            let mut csv = csv::Writer::from_writer(w);
            csv.write_record(header)?;
            content(&mut csv)?;
            csv.flush()?;
            Ok(())
        })
    }

    /// Renames the folder into place (over an empty target folder, if any) and makes the rename
    /// durable. Returns the target.
    pub fn commit(mut self) -> Result<PathBuf> {
        let fs = &*self.fs;
        fs.sync_dir(&self.tmp, SyncPoint::OutputFolder)
            .map_err(Error::io("syncing folder", &self.tmp))?;
        fs.rename(&self.tmp, &self.target)
            .map_err(Error::io("renaming the results into place", &self.target))?;
        self.committed = true;
        let parent = parent_of(&self.tmp);
        fs.sync_dir(parent, SyncPoint::OutputName)
            .map_err(Error::io("syncing folder", parent))?;
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.fs.remove_dir_all(&self.tmp);
        }
    }
}

/// Writes sequentially into a [`File`] (which has only positional writes).
struct Appender<'a> {
    file: &'a dyn File,
    at: u64,
}

impl Write for Appender<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all_at(buf, self.at)?;
        self.at += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
