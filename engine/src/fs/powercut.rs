//! A file system in memory that loses power, for tests. It keeps two images of everything: what
//! readers see now, and what a disk is sure to hold (what was synced). A power cut keeps the
//! second and, for what was written but not synced, any mix of the two:
//!
//! - a file's unsynced data is lost in any subset of its 4 KiB pages (a later page can survive
//!   while an earlier one reverts), and its length is the synced one or the current one (so an
//!   extension can come back as zeros followed by data);
//! - each of a folder's unsynced changes (a file created, renamed or removed in it) survives or
//!   vanishes on its own, whatever their order (POSIX promises nothing until the folder is
//!   synced; a journaling file system would keep a prefix, which this includes). A rename
//!   within one folder is atomic: the file ends up under the old name or the new one.
//!
//! This is how RocksDB's `FaultInjectionTestFS` and SQLite's crash-test VFS model a crash. The
//! cut itself comes at the N-th operation that changes something ([`PowerCutFs::cut_after`]):
//! from then on every operation fails, as on a machine that is off, and
//! [`PowerCutFs::restart`] gives the file system the machine finds when power returns.
//!
//! For showing that a test has teeth, the syncs of chosen [`SyncPoint`]s can be made to do
//! nothing ([`PowerCutFs::skip_sync`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{self, ErrorKind};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::{RngExt as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;

use super::{File, FileSystem, Metadata, OpenOptions, SyncPoint};

/// The unit in which unsynced data survives or is lost.
pub const PAGE: u64 = 4096;

/// See the module documentation. Clones share the same file system.
#[derive(Debug, Clone, Default)]
pub struct PowerCutFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    nodes: Vec<Node>,
    /// Operations that changed something (or synced) so far.
    ops: u64,
    cut_at: Option<u64>,
    /// Cut at the n-th sync of a point instead (that sync fails and does nothing).
    cut_at_sync: Option<(SyncPoint, u64)>,
    off: bool,
    skipped: BTreeSet<SyncPoint>,
    /// Syncs done per point (skipped ones included).
    syncs: BTreeMap<SyncPoint, u64>,
}

impl Default for State {
    fn default() -> Self {
        State {
            nodes: vec![Node::Dir(Dir::default())],
            ops: 0,
            cut_at: None,
            cut_at_sync: None,
            off: false,
            skipped: BTreeSet::new(),
            syncs: BTreeMap::new(),
        }
    }
}

const ROOT: usize = 0;

#[derive(Debug, Clone)]
enum Node {
    File(FileNode),
    Dir(Dir),
}

#[derive(Debug, Clone, Default)]
struct FileNode {
    /// What readers see.
    data: Vec<u8>,
    /// What survives for sure.
    durable: Vec<u8>,
    /// Pages where `data` may differ from `durable`.
    dirty: BTreeSet<u64>,
    mode: u32,
    locked: bool,
}

#[derive(Debug, Clone, Default)]
struct Dir {
    entries: BTreeMap<OsString, usize>,
    durable: BTreeMap<OsString, usize>,
    /// Changes since `durable`, in order.
    journal: Vec<DirOp>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(OsString, usize),
    Unlink(OsString),
    /// A rename within the folder: atomic.
    Move(OsString, OsString, usize),
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<OsString, usize>) {
        match self {
            DirOp::Link(name, node) => {
                entries.insert(name.clone(), *node);
            }
            DirOp::Unlink(name) => {
                entries.remove(name);
            }
            DirOp::Move(from, to, node) => {
                entries.remove(from);
                entries.insert(to.clone(), *node);
            }
        }
    }
}

fn off() -> io::Error {
    io::Error::other("the power is off")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        ErrorKind::NotFound,
        format!("{}: not found", path.display()),
    )
}

fn pages(from: u64, to: u64) -> impl Iterator<Item = u64> {
    let last = to.div_ceil(PAGE);
    (from / PAGE)..last
}

impl Dir {
    /// A folder whose entries are all synced.
    fn durable(entries: BTreeMap<OsString, usize>) -> Dir {
        Dir {
            durable: entries.clone(),
            entries,
            journal: Vec::new(),
        }
    }
}

impl FileNode {
    /// A file whose content is all synced.
    fn durable(data: Vec<u8>, mode: u32) -> FileNode {
        FileNode {
            durable: data.clone(),
            data,
            dirty: BTreeSet::new(),
            mode,
            locked: false,
        }
    }

    fn mark(&mut self, from: u64, to: u64) {
        self.dirty.extend(pages(from, to));
    }

    fn sync(&mut self) {
        let len = self.data.len();
        self.durable.resize(len, 0);
        for page in std::mem::take(&mut self.dirty) {
            let start = (page * PAGE) as usize;
            if start >= len {
                continue;
            }
            let end = (start + PAGE as usize).min(len);
            self.durable[start..end].copy_from_slice(&self.data[start..end]);
        }
    }

    /// What a power cut leaves of this file.
    fn after_cut(&self, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let len = if self.data.len() != self.durable.len() && rng.random::<bool>() {
            self.data.len()
        } else {
            self.durable.len()
        };
        let mut out = self.durable.clone();
        out.resize(len, 0);
        for &page in &self.dirty {
            let start = (page * PAGE) as usize;
            if start >= len || !rng.random::<bool>() {
                continue;
            }
            let end = (start + PAGE as usize).min(len);
            for (i, byte) in out[start..end].iter_mut().enumerate() {
                *byte = self.data.get(start + i).copied().unwrap_or(0);
            }
        }
        out
    }
}

impl State {
    /// Counts an operation that changes something; fails once the power is off.
    fn step(&mut self) -> io::Result<()> {
        if self.off {
            return Err(off());
        }
        self.ops += 1;
        if self.cut_at.is_some_and(|at| self.ops >= at) {
            self.off = true;
            return Err(off());
        }
        Ok(())
    }

    /// Counts a sync of `point` (an operation); fails if the power is off or goes off now.
    fn sync_step(&mut self, point: SyncPoint) -> io::Result<()> {
        self.step()?;
        let count = self.syncs.entry(point).or_default();
        *count += 1;
        if self.cut_at_sync == Some((point, *count)) {
            self.off = true;
            return Err(off());
        }
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.off { Err(off()) } else { Ok(()) }
    }

    fn dir(&self, node: usize) -> Option<&Dir> {
        match &self.nodes[node] {
            Node::Dir(d) => Some(d),
            Node::File(_) => None,
        }
    }

    fn dir_mut(&mut self, node: usize) -> &mut Dir {
        match &mut self.nodes[node] {
            Node::Dir(d) => d,
            Node::File(_) => unreachable!("checked to be a folder"),
        }
    }

    fn file_mut(&mut self, node: usize) -> io::Result<&mut FileNode> {
        match &mut self.nodes[node] {
            Node::File(f) => Ok(f),
            Node::Dir(_) => Err(io::Error::new(ErrorKind::IsADirectory, "a folder")),
        }
    }

    /// The node at `path`.
    fn lookup(&self, path: &Path) -> io::Result<usize> {
        let mut stack = vec![ROOT];
        for part in path.components() {
            match part {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                Component::ParentDir => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                }
                Component::Normal(name) => {
                    let here = *stack.last().unwrap_or(&ROOT);
                    let dir = self.dir(here).ok_or_else(|| not_found(path))?;
                    let next = *dir.entries.get(name).ok_or_else(|| not_found(path))?;
                    stack.push(next);
                }
            }
        }
        Ok(*stack.last().unwrap_or(&ROOT))
    }

    /// The folder holding `path` and the name in it.
    fn parent(&self, path: &Path) -> io::Result<(usize, OsString)> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no file name"))?
            .to_owned();
        let parent = self.lookup(super::parent_of(path))?;
        if self.dir(parent).is_none() {
            return Err(io::Error::new(ErrorKind::NotADirectory, "not a folder"));
        }
        Ok((parent, name))
    }

    fn link(&mut self, dir: usize, name: OsString, node: usize) {
        let d = self.dir_mut(dir);
        d.entries.insert(name.clone(), node);
        d.journal.push(DirOp::Link(name, node));
    }

    fn unlink(&mut self, dir: usize, name: &OsString) {
        let d = self.dir_mut(dir);
        d.entries.remove(name);
        d.journal.push(DirOp::Unlink(name.clone()));
    }
}

impl PowerCutFs {
    pub fn new() -> Self {
        PowerCutFs::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cuts the power at the `n`-th operation from now that changes something (that operation
    /// fails and does nothing).
    pub fn cut_after(&self, n: u64) {
        let mut s = self.lock();
        s.cut_at = Some(s.ops + n.max(1));
    }

    /// Cuts the power at the `n`-th sync of `point` from now: the write before it happened, the
    /// sync does not (the moment a torn write is made).
    pub fn cut_at_sync(&self, point: SyncPoint, n: u64) {
        let mut s = self.lock();
        let done = s.syncs.get(&point).copied().unwrap_or(0);
        s.cut_at_sync = Some((point, done + n.max(1)));
    }

    /// Cuts the power now.
    pub fn cut(&self) {
        self.lock().off = true;
    }

    pub fn is_off(&self) -> bool {
        self.lock().off
    }

    /// Operations that changed something so far.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Makes every sync of `point` do nothing (and lose nothing less at a power cut).
    pub fn skip_sync(&self, point: SyncPoint) {
        self.lock().skipped.insert(point);
    }

    /// Syncs done so far at each point.
    pub fn syncs(&self) -> BTreeMap<SyncPoint, u64> {
        self.lock().syncs.clone()
    }

    /// The file system as the machine finds it when power returns after a cut (or now, if the
    /// power is on): synced data, plus for each unsynced change a choice drawn from `seed`
    /// (see the module documentation). Skipped sync points stay skipped.
    pub fn restart(&self, seed: u64) -> PowerCutFs {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        self.image(|node| match node {
            Node::File(f) => Node::File(FileNode::durable(f.after_cut(&mut rng), f.mode)),
            Node::Dir(d) => {
                let mut entries = d.durable.clone();
                for op in &d.journal {
                    if rng.random::<bool>() {
                        op.apply(&mut entries);
                    }
                }
                Node::Dir(Dir::durable(entries))
            }
        })
    }

    /// A separate file system holding what readers see now, all of it durable (to inspect an
    /// image without changing it).
    pub fn copy(&self) -> PowerCutFs {
        self.image(|node| match node {
            Node::File(f) => Node::File(FileNode::durable(f.data.clone(), f.mode)),
            Node::Dir(d) => Node::Dir(Dir::durable(d.entries.clone())),
        })
    }

    /// A new file system whose nodes are `keep` of these, everything synced.
    fn image(&self, mut keep: impl FnMut(&Node) -> Node) -> PowerCutFs {
        let s = self.lock();
        PowerCutFs {
            state: Arc::new(Mutex::new(State {
                nodes: s.nodes.iter().map(&mut keep).collect(),
                skipped: s.skipped.clone(),
                ..State::default()
            })),
        }
    }

    /// Every file under `path` with its content, sorted by path (for comparing images).
    pub fn files(&self, path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut todo = vec![(path.to_path_buf(), s.lookup(path)?)];
        while let Some((at, node)) = todo.pop() {
            match &s.nodes[node] {
                Node::File(f) => out.push((at.display().to_string(), f.data.clone())),
                Node::Dir(d) => {
                    for (name, &child) in &d.entries {
                        todo.push((at.join(name), child));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// An open file of a [`PowerCutFs`].
#[derive(Debug)]
struct Handle {
    fs: PowerCutFs,
    node: usize,
    writable: bool,
    holds_lock: AtomicBool,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.holds_lock.load(Ordering::SeqCst) {
            let mut s = self.fs.lock();
            if let Ok(f) = s.file_mut(self.node) {
                f.locked = false;
            }
        }
    }
}

impl Handle {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                ErrorKind::PermissionDenied,
                "opened read-only",
            ))
        }
    }

    fn sync(&self, point: SyncPoint) -> io::Result<()> {
        let mut s = self.fs.lock();
        s.sync_step(point)?;
        if !s.skipped.contains(&point) {
            s.file_mut(self.node)?.sync();
        }
        Ok(())
    }
}

impl File for Handle {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut s = self.fs.lock();
        s.alive()?;
        let f = s.file_mut(self.node)?;
        let Some(rest) = usize::try_from(offset).ok().and_then(|o| f.data.get(o..)) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut s = self.fs.lock();
        s.step()?;
        let f = s.file_mut(self.node)?;
        let start = offset as usize;
        let end = start + buf.len();
        let old = f.data.len();
        if end > old {
            f.data.resize(end, 0);
            f.mark(old as u64, end as u64);
        }
        f.data[start..end].copy_from_slice(buf);
        f.mark(offset, end as u64);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut s = self.fs.lock();
        s.alive()?;
        Ok(s.file_mut(self.node)?.data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut s = self.fs.lock();
        s.step()?;
        let f = s.file_mut(self.node)?;
        let old = f.data.len() as u64;
        f.data.resize(len as usize, 0);
        f.mark(old.min(len), old.max(len));
        Ok(())
    }

    fn sync_data(&self, point: SyncPoint) -> io::Result<()> {
        self.sync(point)
    }

    fn sync_all(&self, point: SyncPoint) -> io::Result<()> {
        self.sync(point)
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut s = self.fs.lock();
        s.alive()?;
        let f = s.file_mut(self.node)?;
        if f.locked {
            return Ok(self.holds_lock.load(Ordering::SeqCst));
        }
        f.locked = true;
        self.holds_lock.store(true, Ordering::SeqCst);
        Ok(true)
    }
}

impl FileSystem for PowerCutFs {
    fn open(&self, path: &Path, o: OpenOptions) -> io::Result<Arc<dyn File>> {
        let mut s = self.lock();
        let node = match s.lookup(path) {
            Ok(node) => {
                if o.create_new {
                    s.alive()?;
                    return Err(io::Error::new(ErrorKind::AlreadyExists, "exists"));
                }
                if o.truncate {
                    s.step()?;
                    let f = s.file_mut(node)?;
                    let old = f.data.len() as u64;
                    f.data.clear();
                    f.mark(0, old);
                } else {
                    s.alive()?;
                    s.file_mut(node)?;
                }
                node
            }
            Err(e) if e.kind() == ErrorKind::NotFound && o.create => {
                let (parent, name) = s.parent(path)?;
                s.step()?;
                let node = s.nodes.len();
                s.nodes.push(Node::File(FileNode {
                    mode: o.mode.unwrap_or(0o644),
                    ..FileNode::default()
                }));
                s.link(parent, name, node);
                node
            }
            Err(e) => {
                s.alive()?;
                return Err(e);
            }
        };
        Ok(Arc::new(Handle {
            fs: self.clone(),
            node,
            writable: o.write,
            holds_lock: AtomicBool::new(false),
        }))
    }

    fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        let s = self.lock();
        s.alive()?;
        let node = s.lookup(path)?;
        Ok(match &s.nodes[node] {
            Node::File(f) => Metadata {
                is_dir: false,
                len: f.data.len() as u64,
                mode: f.mode,
            },
            Node::Dir(_) => Metadata {
                is_dir: true,
                len: 0,
                mode: 0o755,
            },
        })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let s = self.lock();
        s.alive()?;
        let node = s.lookup(path)?;
        let dir = s
            .dir(node)
            .ok_or_else(|| io::Error::new(ErrorKind::NotADirectory, "not a folder"))?;
        Ok(dir.entries.keys().cloned().collect())
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        if s.lookup(path).is_ok() {
            s.alive()?;
            return Err(io::Error::new(ErrorKind::AlreadyExists, "exists"));
        }
        let (parent, name) = s.parent(path)?;
        s.step()?;
        let node = s.nodes.len();
        s.nodes.push(Node::Dir(Dir::default()));
        s.link(parent, name, node);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let node = s.lookup(from)?;
        let (from_dir, from_name) = s.parent(from)?;
        let (to_dir, to_name) = s.parent(to)?;
        if let Ok(existing) = s.lookup(to) {
            let replaceable = match (&s.nodes[existing], &s.nodes[node]) {
                (Node::File(_), Node::File(_)) => true,
                (Node::Dir(d), Node::Dir(_)) => d.entries.is_empty(),
                _ => false,
            };
            if !replaceable {
                s.alive()?;
                return Err(io::Error::new(
                    ErrorKind::AlreadyExists,
                    "cannot replace it",
                ));
            }
        }
        s.step()?;
        if from_dir == to_dir {
            let d = s.dir_mut(from_dir);
            d.entries.remove(&from_name);
            d.entries.insert(to_name.clone(), node);
            d.journal.push(DirOp::Move(from_name, to_name, node));
        } else {
            // The new name first: a cut between the two folders' commits leaves both names.
            s.link(to_dir, to_name, node);
            s.unlink(from_dir, &from_name);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        let node = s.lookup(path)?;
        if s.dir(node).is_some() {
            s.alive()?;
            return Err(io::Error::new(ErrorKind::IsADirectory, "a folder"));
        }
        let (dir, name) = s.parent(path)?;
        s.step()?;
        s.unlink(dir, &name);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.lookup(path)?;
        let (dir, name) = s.parent(path)?;
        s.step()?;
        s.unlink(dir, &name);
        Ok(())
    }

    fn sync_dir(&self, path: &Path, point: SyncPoint) -> io::Result<()> {
        let mut s = self.lock();
        s.sync_step(point)?;
        let node = s.lookup(path)?;
        if s.dir(node).is_none() {
            return Err(io::Error::new(ErrorKind::NotADirectory, "not a folder"));
        }
        if !s.skipped.contains(&point) {
            let d = s.dir_mut(node);
            d.durable = d.entries.clone();
            d.journal.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{OpenOptions, read_optional, write_atomic};

    fn write(fs: &PowerCutFs, path: &str, bytes: &[u8]) -> Arc<dyn File> {
        let f = fs.open(Path::new(path), OpenOptions::create()).unwrap();
        f.write_all_at(bytes, 0).unwrap();
        f
    }

    /// Every outcome a cut can have, over many seeds.
    fn outcomes(fs: &PowerCutFs, path: &str) -> BTreeSet<Option<Vec<u8>>> {
        (0..200)
            .map(|seed| read_optional(&fs.restart(seed), Path::new(path)).unwrap())
            .collect()
    }

    #[test]
    fn synced_data_survives_and_unsynced_pages_may_not() {
        let fs = PowerCutFs::new();
        fs.create_dir(Path::new("/d")).unwrap();
        fs.sync_dir(Path::new("/"), SyncPoint::NewFolder).unwrap();
        let f = write(&fs, "/d/f", &[1; 3 * PAGE as usize]);
        f.sync_data(SyncPoint::LogGroup).unwrap();
        fs.sync_dir(Path::new("/d"), SyncPoint::NewFolder).unwrap();
        assert_eq!(outcomes(&fs, "/d/f").len(), 1, "synced: one outcome");

        // Two unsynced pages over synced ones: each independently old or new.
        f.write_all_at(&[2; 2 * PAGE as usize], 0).unwrap();
        let seen = outcomes(&fs, "/d/f");
        assert_eq!(seen.len(), 4, "two pages, each kept or lost");
        // An extension: the length is old or new, and a later page can survive an earlier one.
        f.write_all_at(&[3; 2 * PAGE as usize], 3 * PAGE).unwrap();
        let seen = outcomes(&fs, "/d/f");
        let zeros_then_data = seen.iter().flatten().any(|b| {
            b.len() == 5 * PAGE as usize && b[3 * PAGE as usize] == 0 && b[4 * PAGE as usize] == 3
        });
        assert!(
            zeros_then_data,
            "an extension can come back as zeros then data"
        );
    }

    #[test]
    fn unsynced_folder_changes_survive_each_on_its_own() {
        let fs = PowerCutFs::new();
        write_atomic(
            &fs,
            Path::new("/a"),
            b"one",
            0o644,
            SyncPoint::Blob,
            Some(SyncPoint::BlobName),
        )
        .unwrap();
        // Written and synced, but the folder not synced: the name may vanish.
        let f = write(&fs, "/b", b"two");
        f.sync_all(SyncPoint::Blob).unwrap();
        fs.rename(Path::new("/a"), Path::new("/c")).unwrap();
        let seen: BTreeSet<_> = (0..100)
            .map(|seed| {
                let after = fs.restart(seed);
                let names = after.list_dir(Path::new("/")).unwrap();
                names
                    .into_iter()
                    .map(|n| n.into_string().unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        // Any subset of [create b, rename a -> c]; the file named a or c, never both or neither.
        let expect: BTreeSet<String> = ["a", "a,b", "c", "b,c"].map(String::from).into();
        assert_eq!(seen, expect);
    }

    #[test]
    fn a_cut_stops_everything_and_skipped_syncs_keep_nothing() {
        let fs = PowerCutFs::new();
        fs.skip_sync(SyncPoint::Blob);
        let name = Some(SyncPoint::BlobName);
        write_atomic(&fs, Path::new("/a"), b"one", 0o644, SyncPoint::Blob, name).unwrap();
        let lost = (0..50).any(|s| {
            read_optional(&fs.restart(s), Path::new("/a")).unwrap() != Some(b"one".to_vec())
        });
        assert!(lost, "with its syncs skipped, an atomic write may be lost");
        fs.cut_after(1);
        assert!(fs.create_dir(Path::new("/x")).is_err());
        assert!(fs.is_off());
        assert!(fs.read(Path::new("/a")).is_err());
    }
}
