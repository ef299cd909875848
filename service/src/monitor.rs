//! A monitor for a log served in the c2sp.org/tlog-tiles layout (`allot audit monitor`): it
//! fetches the checkpoint, checks the log's signature, rebuilds the tree from the entry bundles
//! since the last checkpoint it verified (from scratch the first time), checks that the new
//! checkpoint's root is the one those entries give on top of the old tree, and then checks the
//! witnesses' quorum. Its state (the last verified checkpoint and the tree's right edge) is one
//! file per log in its state folder, replaced atomically.
//!
//! Two signed checkpoints that cannot both be true (a smaller one after a larger, another root
//! at the same size, or a root the entries do not give) are [`Evidence`]: both notes, kept in
//! the state folder and printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use allot_engine::fs::{DataDir, SyncPoint, write_atomic};
use allot_engine::log::merkle::{Frontier, leaf_hash};
use allot_engine::log::tiles::{TILE_WIDTH, TileId};
use allot_engine::log::{Checkpoint, Hash, TrustPolicy};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::task::JoinSet;

/// Bundles fetched at once.
const IN_FLIGHT: usize = 32;
const STATE_HEADER: &str = "allot-monitor v1";

/// Two signed checkpoints of one log that cannot both be true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub reason: String,
    /// The checkpoint the monitor verified before (note text).
    pub earlier: String,
    /// The one the log serves now.
    pub later: String,
    /// Where the evidence was written.
    pub saved: Option<PathBuf>,
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n\nthe checkpoint verified before:\n{}\nthe checkpoint served now:\n{}",
            self.reason, self.earlier, self.later
        )?;
        if let Some(path) = &self.saved {
            write!(f, "\n(kept in {})", path.display())?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("the log is inconsistent: {0}")]
    Evidence(Box<Evidence>),
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the checkpoint from {url} does not meet the policy: {reason}")]
    Policy { url: String, reason: String },
    #[error("monitor state {}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
}

/// What one pass found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The size verified before this pass (0 the first time).
    pub from: u64,
    pub size: u64,
    pub root: Hash,
    /// The witnesses whose cosignatures verified.
    pub cosigned_by: Vec<String>,
}

/// A monitor of one log.
#[derive(Debug)]
pub struct Monitor {
    url: String,
    policy: TrustPolicy,
    state_path: PathBuf,
    http: reqwest::Client,
}

struct State {
    note: String,
    checkpoint: Checkpoint,
    frontier: Frontier,
}

impl Monitor {
    /// A monitor of the log at `url` (its tiles' prefix) under `policy`, keeping its state in
    /// `state_dir`.
    pub fn new(url: &str, policy: TrustPolicy, state_dir: &Path) -> Result<Monitor, MonitorError> {
        use sha2::Digest as _;
        std::fs::create_dir_all(state_dir).map_err(|e| MonitorError::State {
            path: state_dir.to_owned(),
            reason: e.to_string(),
        })?;
        let name = hex::encode(sha2::Sha256::digest(policy.log.name().as_bytes()));
        let http = crate::witness::http_client(Duration::from_secs(30)).map_err(|reason| {
            MonitorError::Fetch {
                url: url.to_owned(),
                reason,
            }
        })?;
        Ok(Monitor {
            url: url.trim_end_matches('/').to_owned(),
            policy,
            state_path: state_dir.join(name),
            http,
        })
    }

    /// One pass: fetch, verify, advance. `progress` hears (entries rebuilt, entries to rebuild).
    pub async fn check(
        &self,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Checked, MonitorError> {
        let note = String::from_utf8_lossy(&self.get("checkpoint").await?).into_owned();
        let fetch_url = format!("{}/checkpoint", self.url);
        let policy_error = |reason: String| MonitorError::Policy {
            url: fetch_url.clone(),
            reason,
        };
        let text = self
            .policy
            .log
            .open(&note)
            .map_err(|e| policy_error(e.to_string()))?;
        let checkpoint = Checkpoint::parse_body(text).map_err(|e| policy_error(e.to_string()))?;
        if checkpoint.origin != self.policy.log.name() {
            return Err(policy_error(format!(
                "origin {:?} is not the log's {:?}",
                checkpoint.origin,
                self.policy.log.name()
            )));
        }
        let state = self.load()?;
        let (from, mut frontier) = match &state {
            Some(s) => (s.checkpoint.size, s.frontier.clone()),
            None => (0, Frontier::new()),
        };
        if let Some(earlier) = &state {
            let old = &earlier.checkpoint;
            let contradiction = if checkpoint.size < old.size {
                Some(format!(
                    "the log went back from size {} to {}: a log only grows",
                    old.size, checkpoint.size
                ))
            } else if checkpoint.size == old.size && checkpoint.root != old.root {
                Some(format!("two different roots for size {}", old.size))
            } else {
                None
            };
            if let Some(reason) = contradiction {
                return Err(self.evidence(reason, &earlier.note, &note));
            }
        }
        self.rebuild(&mut frontier, checkpoint.size, progress)
            .await?;
        if frontier.root() != checkpoint.root {
            let reason = format!(
                "the entries the log serves give root {} at size {}, but its checkpoint says {}: \
                 its tree of size {from} is not a prefix of the one it signs now",
                B64.encode(frontier.root()),
                checkpoint.size,
                B64.encode(checkpoint.root)
            );
            let earlier = state
                .as_ref()
                .map_or("(none: the first pass)\n", |s| &s.note);
            return Err(self.evidence(reason, earlier, &note));
        }
        let trusted = self
            .policy
            .check(&note)
            .map_err(|e| policy_error(e.to_string()))?;
        self.save(&note, &frontier)?;
        Ok(Checked {
            from,
            size: checkpoint.size,
            root: checkpoint.root,
            cosigned_by: trusted.cosigned_by.into_iter().map(|(n, _)| n).collect(),
        })
    }

    /// Pushes the leaves `frontier.size()..size` from the log's entry bundles.
    async fn rebuild(
        &self,
        frontier: &mut Frontier,
        size: u64,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<(), MonitorError> {
        let start = frontier.size();
        if size <= start {
            return Ok(());
        }
        let width = u64::from(TILE_WIDTH);
        let (first, last) = (start / width, (size - 1) / width);
        let mut fetching = JoinSet::new();
        let mut next = first;
        let mut ready = std::collections::BTreeMap::new();
        let mut expected = first;
        while expected <= last {
            while next <= last && fetching.len() < IN_FLIGHT {
                let bundle_width = if next == last && !size.is_multiple_of(width) {
                    (size % width) as u32
                } else {
                    TILE_WIDTH
                };
                let tile = TileId {
                    level: 0,
                    index: next,
                    width: bundle_width,
                };
                let (http, url) = (
                    self.http.clone(),
                    format!("{}/{}", self.url, tile.entries_path()),
                );
                fetching.spawn(async move { (tile, fetch(&http, &url).await) });
                next += 1;
            }
            let Some(done) = fetching.join_next().await else {
                break;
            };
            let (tile, bytes) = done.map_err(|e| MonitorError::Fetch {
                url: self.url.clone(),
                reason: e.to_string(),
            })?;
            ready.insert(tile.index, (tile, bytes?));
            while let Some((tile, bytes)) = ready.remove(&expected) {
                let url = format!("{}/{}", self.url, tile.entries_path());
                let leaves = tokio::task::spawn_blocking(move || bundle_leaves(&bytes, tile.width))
                    .await
                    .map_err(|e| MonitorError::Fetch {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?
                    .map_err(|reason| MonitorError::Fetch { url, reason })?;
                let skip = (frontier.size() - tile.index * width) as usize;
                for leaf in &leaves[skip.min(leaves.len())..] {
                    frontier.push(*leaf, |_| {});
                }
                progress(frontier.size() - start, size - start);
                expected += 1;
            }
        }
        Ok(())
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, MonitorError> {
        fetch(&self.http, &format!("{}/{path}", self.url)).await
    }

    fn evidence(&self, reason: String, earlier: &str, later: &str) -> MonitorError {
        let mut evidence = Evidence {
            reason,
            earlier: earlier.to_owned(),
            later: later.to_owned(),
            saved: None,
        };
        let stamp = allot_engine::log::Timestamp::now().unix_seconds();
        let path = self.state_path.with_extension(format!("evidence-{stamp}"));
        if std::fs::write(&path, evidence.to_string()).is_ok() {
            evidence.saved = Some(path);
        }
        MonitorError::Evidence(Box::new(evidence))
    }

    fn load(&self) -> Result<Option<State>, MonitorError> {
        let path = &self.state_path;
        let bad = |reason: String| MonitorError::State {
            path: path.clone(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line after the tree's edge".into()))?;
        let mut lines = head.lines();
        if lines.next() != Some(STATE_HEADER) {
            return Err(bad(format!("does not start with {STATE_HEADER:?}")));
        }
        let size: u64 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| bad("line 2 is not the size".into()))?;
        let nodes = lines
            .map(|l| B64.decode(l).ok().and_then(|h| Hash::try_from(h).ok()))
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| bad("a node is not a base64 hash".into()))?;
        let frontier = Frontier::from_parts(size, nodes)
            .ok_or_else(|| bad("the tree's edge does not fit its size".into()))?;
        let text = self.policy.log.open(note).map_err(|e| bad(e.to_string()))?;
        let checkpoint = Checkpoint::parse_body(text).map_err(|e| bad(e.to_string()))?;
        if checkpoint.size != size || frontier.root() != checkpoint.root {
            return Err(bad(
                "the tree's edge does not give the checkpoint's root".into()
            ));
        }
        Ok(Some(State {
            note: note.to_owned(),
            checkpoint,
            frontier,
        }))
    }

    fn save(&self, note: &str, frontier: &Frontier) -> Result<(), MonitorError> {
        let mut text = format!("{STATE_HEADER}\n{}\n", frontier.size());
        for node in frontier.nodes() {
            text.push_str(&B64.encode(node));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(note);
        let dir = DataDir::new(self.state_path.parent().unwrap_or(Path::new(".")));
        write_atomic(
            &**dir.fs(),
            &self.state_path,
            text.as_bytes(),
            0o644,
            SyncPoint::MonitorState,
            Some(SyncPoint::MonitorState),
        )
        .map_err(|e| MonitorError::State {
            path: self.state_path.clone(),
            reason: e.to_string(),
        })
    }
}

/// `allot audit monitor`: checks once, or every `every` seconds for ever, printing each new
/// size on stdout and progress on stderr. Evidence of a rewrite or split view exits with 3.
pub fn run(
    url: &str,
    policy: TrustPolicy,
    state_dir: &Path,
    every: Option<f64>,
) -> Result<(), MonitorError> {
    let monitor = Monitor::new(url, policy, state_dir)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| MonitorError::Fetch {
        url: url.to_owned(),
        reason: format!("starting the async runtime: {e}"),
    })?;
    let every = every.map(|s| Duration::from_secs_f64(s.max(0.05)));
    let mut last = None;
    loop {
        // A first pass over millions of entries takes a while; the bar is gone once it is done.
        let progress = crate::progress::Progress::counting("entries rebuilt");
        let report = |done: u64, total: u64| progress.set(done, total, String::new());
        let checked = runtime.block_on(monitor.check(&report));
        drop(progress);
        match checked {
            Ok(checked) => {
                if last != Some(checked.size) {
                    println!(
                        "ok: size {} root {} (from {}), cosigned by {}",
                        checked.size,
                        B64.encode(checked.root),
                        checked.from,
                        match checked.cosigned_by.is_empty() {
                            true => "no witness".to_owned(),
                            false => checked.cosigned_by.join(", "),
                        }
                    );
                    last = Some(checked.size);
                }
            }
            Err(MonitorError::Evidence(evidence)) => {
                eprintln!("EVIDENCE: the log {url} is inconsistent: {evidence}");
                std::process::exit(3);
            }
            Err(e) if every.is_some() => eprintln!("warning: {e}"),
            Err(e) => return Err(e),
        }
        match every {
            Some(every) => std::thread::sleep(every),
            None => return Ok(()),
        }
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, MonitorError> {
    let failed = |reason: String| MonitorError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| failed(e.to_string()))?;
    if !status.is_success() {
        let body = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        return Err(failed(format!("{status}: {}", body.trim_end())));
    }
    Ok(bytes.to_vec())
}

/// The leaf hashes of an entry bundle (c2sp.org/tlog-tiles: each entry a big-endian u16 length
/// and its bytes) that must hold `width` entries.
fn bundle_leaves(bytes: &[u8], width: u32) -> Result<Vec<Hash>, String> {
    let mut leaves = Vec::with_capacity(width as usize);
    let mut rest = bytes;
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        let entry = tail
            .get(..len)
            .ok_or_else(|| format!("entry {} is cut short", leaves.len()))?;
        leaves.push(leaf_hash(entry));
        rest = &tail[len..];
    }
    if !rest.is_empty() || leaves.len() != width as usize {
        return Err(format!(
            "the bundle holds {} entries (and {} stray bytes), not {width}",
            leaves.len(),
            rest.len()
        ));
    }
    Ok(leaves)
}
