//! An output folder written atomically: files go into a temporary sibling folder, each fsynced,
//! and the folder is renamed into place at the end. Readers see no folder or the whole folder,
//! never a half-written one; a failed run removes its temporary folder.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::log::fsutil::{create_dirs, sync_dir};

/// A folder being written; see the module docs.
#[derive(Debug)]
pub struct OutputDir {
    target: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl OutputDir {
    /// Fails unless `target` can be created by [`OutputDir::commit`]: it must not exist, or be an
    /// empty folder (results are never overwritten). Called before anything is logged.
    pub fn check_target(target: &Path) -> Result<()> {
        match fs::symlink_metadata(target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("checking the output folder", target)(e)),
            Ok(meta) if meta.is_dir() => {
                let mut entries =
                    fs::read_dir(target).map_err(Error::io("reading the output folder", target))?;
                if entries.next().is_none() {
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

    /// Creates the temporary sibling folder (and the target's parents).
    pub fn create(target: &Path) -> Result<OutputDir> {
        Self::check_target(target)?;
        let name = target
            .file_name()
            .ok_or_else(|| Error::Request(format!("{} does not name a folder", target.display())))?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        create_dirs(&parent)?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(Error::io("removing a stale folder", &tmp))?;
        }
        fs::create_dir(&tmp).map_err(Error::io("creating folder", &tmp))?;
        Ok(OutputDir {
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
        let file = File::create(&path).map_err(Error::io("creating", &path))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        content(&mut w).map_err(Error::io("writing", &path))?;
        let file = w
            .into_inner()
            .map_err(|e| Error::io("writing", &path)(e.into_error()))?;
        file.sync_all().map_err(Error::io("syncing", &path))?;
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
        sync_dir(&self.tmp)?;
        fs::rename(&self.tmp, &self.target)
            .map_err(Error::io("renaming the results into place", &self.target))?;
        self.committed = true;
        let parent = self.tmp.parent().unwrap_or(Path::new("."));
        sync_dir(parent)?;
        Ok(self.target.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}
