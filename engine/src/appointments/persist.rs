//! A durable engine on a data folder: loading a city, reopening it from the decision log, and
//! snapshots of the inventory so a restart replays only the log's tail.
//!
//! ```text
//! DATA/log/                         the decision log (ScheduleLoaded, SlotHeld, SlotBooked, ...)
//! DATA/blobs/..                     the schedule input, by its SHA-256
//! DATA/appointments/schedule        which entry loaded the schedule (a hint; the log is the truth)
//! DATA/appointments/snapshot-N-M.bin  the inventory after entries [0, N); entry M (>= N) is
//!                                     its SnapshotTaken, whose digest the file must match
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::clock::Clock;
use super::engine::{Engine, EngineOptions, Inner};
use super::error::{Error, Result};
use super::ids::HoldKey;
use super::inputs::{AbsenceRow, ScheduleInput};
use super::schedule::Schedule;
use super::state::{Effect, Inventory, patient_shard};
use super::time::LocalTime;
use super::{AppointmentId, HoldId};
use crate::blobs::BlobStore;
use crate::fs::{DataDir, OpenOptions, SyncPoint, create_dirs, write_hint};
use crate::log::decision::{AbsenceMarked, ScheduleLoaded, SnapshotTaken};
use crate::log::{Decision, Digest, Entry, Log, LogOptions, Record};

const SNAPSHOT_MAGIC: &[u8; 16] = b"ALLOT-APPTSNAP1\n";
const POINTER_MAGIC: &str = "allot-appointments v1";

/// What opening found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenReport {
    /// The log entry that loaded the schedule.
    pub schedule_entry: u64,
    /// The snapshot the inventory started from (how many entries it covers), if any.
    pub snapshot: Option<u64>,
    /// Log entries replayed after it.
    pub replayed: u64,
    /// Snapshots that could not be used, and why.
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// A snapshot written by [`Engine::snapshot`].
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotInfo {
    /// The snapshot holds the inventory after the log's first `covers` entries.
    pub covers: u64,
    /// Its `SnapshotTaken` entry.
    pub entry: u64,
    pub digest: Digest,
    pub path: PathBuf,
    pub bytes: u64,
    pub records: u64,
    /// Rebuilding, writing and logging it (operations are not paused meanwhile).
    pub seconds: f64,
}

fn dir(data: &DataDir) -> PathBuf {
    data.join("appointments")
}

fn snapshot_path(data: &DataDir, covers: u64, entry: u64) -> PathBuf {
    dir(data).join(format!("snapshot-{covers:020}-{entry:020}.bin"))
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    let what = what.to_owned();
    move |e| Error::Snapshot {
        path,
        reason: format!("{what}: {e}"),
    }
}

/// Writes a snapshot's file under a temporary name, durably: it is renamed to its final name
/// (and that name made durable) only after its `SnapshotTaken` is logged.
fn write_partial(data: &DataDir, path: &Path, bytes: &[u8]) -> Result<()> {
    let fs = data.fs();
    create_dirs(&**fs, &dir(data)).map_err(|e| io(e.what, &e.path)(e.source))?;
    let file = fs
        .open(path, OpenOptions::replace(0o644))
        .map_err(io("creating", path))?;
    file.write_all_at(bytes, 0).map_err(io("writing", path))?;
    file.sync_all(SyncPoint::SnapshotFile)
        .map_err(io("syncing", path))
}

impl Engine {
    /// Loads a city into `data_dir`: checks the schedule and absences (nothing is written if
    /// anything is wrong), stores the schedule input in the blob store, and logs
    /// `ScheduleLoaded` and one `AbsenceMarked` per absence as one batch.
    pub fn create(
        data_dir: impl Into<DataDir>,
        input: &ScheduleInput,
        absences: &[u8],
        actor: &str,
        options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine> {
        let schedule = Arc::new(input.build()?);
        let table = crate::input::Table::from_bytes("absences.csv", absences.to_vec())?;
        let absences = super::inputs::read_absences(&table, &schedule)?;
        let log = Arc::new(Log::open(data_dir, LogOptions::default())?);
        Engine::create_checked(log, input, schedule, &absences, actor, options, clock)
    }

    /// [`Engine::create`] on a log the caller opened (a server shares one log between its
    /// domains); snapshots and blobs go to the log's data folder.
    pub fn create_with_log(
        log: Arc<Log>,
        input: &ScheduleInput,
        absences: &[u8],
        actor: &str,
        options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine> {
        let schedule = Arc::new(input.build()?);
        let table = crate::input::Table::from_bytes("absences.csv", absences.to_vec())?;
        let absences = super::inputs::read_absences(&table, &schedule)?;
        Engine::create_checked(log, input, schedule, &absences, actor, options, clock)
    }

    /// [`Engine::create`] with an absences file named as the user gave it.
    pub fn create_from_files(
        data_dir: impl Into<DataDir>,
        input: &ScheduleInput,
        absences: Option<&Path>,
        actor: &str,
        options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine> {
        let schedule = Arc::new(input.build()?);
        let absences = match absences {
            Some(p) => super::inputs::read_absences_file(p, &schedule)?,
            None => Vec::new(),
        };
        let log = Arc::new(Log::open(data_dir, LogOptions::default())?);
        Engine::create_checked(log, input, schedule, &absences, actor, options, clock)
    }

    fn create_checked(
        log: Arc<Log>,
        input: &ScheduleInput,
        schedule: Arc<Schedule>,
        absences: &[AbsenceRow],
        actor: &str,
        options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Engine> {
        crate::input::check_id(actor).map_err(|p| Error::bad("actor", p))?;
        let data_dir = &log.data_dir();
        if let Some((_, loaded)) = find_schedule(&log, data_dir)? {
            return Err(Error::AlreadyLoaded {
                dir: data_dir.path().to_owned(),
                digest: loaded.input_digest.to_string(),
            });
        }
        let blob = input.to_blob();
        let digest = BlobStore::of_log(&log).put(&blob)?;
        let now = clock.now();
        let mut records = vec![Record::new(
            now,
            actor,
            "appointments",
            ScheduleLoaded {
                input_digest: digest,
                first_day: schedule.first_day.to_string(),
                days: schedule.days,
                clinics: schedule.clinics.len() as u32,
                doctors: schedule.doctors.len() as u32,
                slots: u64::from(schedule.slot_count()),
            },
        )];
        let inner = Inner::new(
            schedule.clone(),
            digest,
            log.clone(),
            clock,
            options,
            Some(data_dir.clone()),
        );
        {
            let mut shard = inner.inv.patient_shard(0);
            for a in absences {
                let effect = Effect::Absence {
                    doctor: a.doctor,
                    from: a.from,
                    until: a.until,
                };
                inner
                    .inv
                    .apply(&mut shard, &effect)
                    .map_err(Error::Internal)?;
                records.push(Record::new(
                    now,
                    actor,
                    &*schedule.doctors[a.doctor.index()].id,
                    AbsenceMarked {
                        from: a.from.to_timestamp(&schedule.zone),
                        until: a.until.to_timestamp(&schedule.zone),
                        freed_slots: 0,
                    },
                ));
            }
        }
        let range = log.append_batch(&records)?;
        write_pointer(data_dir, range.start, &digest)?;
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }

    /// Reopens the engine of `data_dir`: the schedule from the entry that loaded it, the
    /// inventory from the newest usable snapshot and the log entries after it. With
    /// `options.snapshot_after` or more entries replayed, a new snapshot is written.
    pub fn open(
        data_dir: impl Into<DataDir>,
        options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<(Engine, OpenReport)> {
        let log = Arc::new(Log::open(data_dir, LogOptions::default())?);
        Engine::open_with_log(log, options, clock)
    }

    /// [`Engine::open`] on a log the caller opened (a server shares one log between its
    /// domains); snapshots and blobs are in the log's data folder.
    pub fn open_with_log(
        log: Arc<Log>,
        options: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<(Engine, OpenReport)> {
        let started = Instant::now();
        let data_dir = &log.data_dir();
        let (schedule_entry, loaded) = find_schedule(&log, data_dir)?
            .ok_or_else(|| Error::NotLoaded(data_dir.path().to_owned()))?;
        let replay_error = |reason: String| Error::Replay {
            index: schedule_entry,
            reason,
        };
        let blob = BlobStore::of_log(&log).get(&loaded.input_digest)?;
        let input = ScheduleInput::from_blob(&blob).map_err(replay_error)?;
        let schedule = Arc::new(
            input
                .build()
                .map_err(|e| replay_error(format!("the stored schedule: {e}")))?,
        );
        if u64::from(schedule.slot_count()) != loaded.slots {
            return Err(replay_error(format!(
                "the stored schedule has {} slots, the entry says {}",
                schedule.slot_count(),
                loaded.slots
            )));
        }
        let snapshot_after = options.snapshot_after;
        let inner = Inner::new(
            schedule,
            loaded.input_digest,
            log.clone(),
            clock,
            options,
            Some(data_dir.clone()),
        );
        let mut report = OpenReport {
            schedule_entry,
            ..OpenReport::default()
        };
        let (snapshot, replayed) = rebuild(
            &inner.inv,
            inner.schedule_digest,
            &log,
            data_dir,
            schedule_entry,
            log.size(),
            &mut report.warnings,
        )?;
        report.snapshot = snapshot;
        report.replayed = replayed;
        inner.reset_expiry();
        inner
            .followed
            .store(log.size(), std::sync::atomic::Ordering::SeqCst);
        let engine = Engine {
            inner: Arc::new(inner),
        };
        engine
            .inner
            .since_snapshot
            .store(report.replayed, std::sync::atomic::Ordering::SeqCst);
        // A follower replica writes nothing: its leader snapshots (see `snapshot_if_due`).
        let writable = log.backend().is_none_or(|b| b.check_writer().is_ok());
        if writable && snapshot_after.is_some_and(|n| report.replayed >= n) {
            engine.snapshot()?;
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok((engine, report))
    }

    /// Takes a snapshot if at least `options.snapshot_after` entries were applied since the last
    /// one (a replica that has just become the leader: followers take none); whether it did.
    pub fn snapshot_if_due(&self) -> Result<bool> {
        let since = self
            .inner
            .since_snapshot
            .load(std::sync::atomic::Ordering::SeqCst);
        if self.inner.options.snapshot_after.is_none_or(|n| since < n) {
            return Ok(false);
        }
        self.snapshot().map(|_| true)
    }

    /// Why the engine stopped making decisions, once it has (after a log failure).
    pub fn failure(&self) -> Option<String> {
        self.inner.check().err().map(|e| e.to_string())
    }

    /// Makes this engine a follower's (`true`: it applies the log's new entries with
    /// [`Engine::follow`] and decides nothing, not even expiries) or a leader's again.
    pub fn set_following(&self, following: bool) {
        use std::sync::atomic::Ordering;
        if following && let Some(log) = self.inner.sink.log() {
            // Everything logged so far was applied by this engine itself.
            self.inner.followed.store(log.size(), Ordering::SeqCst);
        }
        self.inner.following.store(following, Ordering::SeqCst);
        if !following {
            self.inner.reset_expiry();
        }
    }

    /// Applies the log's entries since the last call (or the open) to the inventory, under the
    /// locks operations take, so reads go on meanwhile; returns how many entries it read.
    pub fn follow(&self) -> Result<u64> {
        use std::sync::atomic::Ordering;
        let e = &self.inner;
        e.check()?;
        let log = e.sink.log().ok_or(Error::NotDurable)?;
        let _one = super::state::lock(&e.follow_lock);
        let from = e.followed.load(Ordering::SeqCst);
        let to = log.size();
        replay_with(&e.inv, log, from..to, |index, effect| {
            // The entries before `index` are all applied.
            e.followed.store(index, Ordering::SeqCst);
            e.apply_locked(effect)
        })?;
        e.followed.store(to, Ordering::SeqCst);
        e.since_snapshot.fetch_add(to - from, Ordering::SeqCst);
        Ok(to - from)
    }

    /// The decision log, for a durable engine.
    pub fn log(&self) -> Option<&Log> {
        self.inner.sink.log()
    }

    /// Saves the inventory as of the log's current size to a snapshot file, so the next start
    /// replays only what follows. The snapshot is rebuilt from the log (the previous snapshot and
    /// the entries since) on a scratch inventory, so operations go on meanwhile; the file is
    /// written, then `SnapshotTaken` logged with its digest, then the file is named after both
    /// (`snapshot-COVERS-ENTRY.bin`) and older snapshots are removed.
    pub fn snapshot(&self) -> Result<SnapshotInfo> {
        let e = &self.inner;
        e.check()?;
        let log = e.sink.log().ok_or(Error::NotDurable)?;
        let data = e.data_dir.as_ref().ok_or(Error::NotDurable)?;
        let fs = data.fs();
        let _one = super::state::lock(&e.snapshot_lock);
        let started = Instant::now();
        let covers = log.size();
        let (schedule_entry, _) =
            find_schedule(log, data)?.ok_or_else(|| Error::NotLoaded(data.path().to_owned()))?;
        let scratch = Inventory::new(e.schedule.clone());
        let mut warnings = Vec::new();
        rebuild(
            &scratch,
            e.schedule_digest,
            log,
            data,
            schedule_entry,
            covers,
            &mut warnings,
        )?;
        let (body, records) = {
            let locks = scratch.lock_all();
            scratch.encode(&locks)
        };
        drop(scratch);
        let digest = Digest::of(&body);
        let mut file = Vec::with_capacity(body.len() + 96);
        file.extend_from_slice(SNAPSHOT_MAGIC);
        file.extend_from_slice(&covers.to_be_bytes());
        file.extend_from_slice(&e.schedule_digest.0);
        file.extend_from_slice(&digest.0);
        file.extend_from_slice(&body);
        let partial = dir(data).join(format!("snapshot-{covers:020}.partial"));
        write_partial(data, &partial, &file)?;
        if let Some(backend) = log.backend() {
            // In the store before the entry that names it: any replica can start from it.
            backend
                .put_blob(&digest.to_string(), &body)
                .map_err(|e| Error::Log(Box::new(e.into())))?;
        }
        let record = Record::new(
            e.clock.now(),
            e.options.system_actor.as_str(),
            "appointments",
            SnapshotTaken {
                covers,
                digest,
                schedule: e.schedule_digest,
                slots: u64::from(e.inv.slot_count()),
                records,
            },
        );
        let entry = log.append(&record)?;
        let path = snapshot_path(data, covers, entry);
        fs.rename(&partial, &path)
            .map_err(io("renaming into place", &path))?;
        fs.sync_dir(&dir(data), SyncPoint::SnapshotName)
            .map_err(io("syncing the folder of", &path))?;
        if let Ok(list) = fs.list_dir(&dir(data)) {
            for name in list {
                let p = dir(data).join(name);
                // Older snapshots, and files of snapshots a crash interrupted.
                let partial = p.extension().is_some_and(|x| x == "partial");
                if p != path && (snapshot_name(&p).is_some() || partial) {
                    let _ = fs.remove_file(&p);
                }
            }
        }
        e.since_snapshot
            .store(log.size() - covers, std::sync::atomic::Ordering::SeqCst);
        Ok(SnapshotInfo {
            covers,
            entry,
            digest,
            path,
            bytes: file.len() as u64,
            records,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// The pointer is a hint (checked when read, re-made by a scan of the log): nothing is synced.
fn write_pointer(data: &DataDir, entry: u64, digest: &Digest) -> Result<()> {
    let text = format!("{POINTER_MAGIC}\nentry {entry}\ndigest {digest}\n");
    let path = dir(data).join("schedule");
    create_dirs(&**data.fs(), &dir(data))
        .and_then(|()| write_hint(&**data.fs(), &path, text.as_bytes()))
        .map_err(|e| io(e.what, &e.path)(e.source))
}

/// The entry that loaded the schedule: from the pointer file when it is right, else by
/// scanning the log.
fn find_schedule(log: &Log, data: &DataDir) -> Result<Option<(u64, ScheduleLoaded)>> {
    let hint = data
        .fs()
        .read(&dir(data).join("schedule"))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| {
            let mut lines = t.lines();
            (lines.next()? == POINTER_MAGIC).then_some(())?;
            lines.next()?.strip_prefix("entry ")?.parse::<u64>().ok()
        });
    if let Some(index) = hint.filter(|&i| i < log.size())
        && let Ok(entry) = log.entry(index)
        && let Decision::ScheduleLoaded(loaded) = entry.record.decision
    {
        return Ok(Some((index, loaded)));
    }
    for raw in log.entries(0..log.size())? {
        let raw = raw?;
        let index = raw.index;
        let entry = raw.decode()?;
        if let Decision::ScheduleLoaded(loaded) = entry.record.decision {
            let _ = write_pointer(data, index, &loaded.input_digest);
            return Ok(Some((index, loaded)));
        }
    }
    Ok(None)
}

/// `(covers, entry)` from a snapshot's file name.
fn snapshot_name(path: &Path) -> Option<(u64, u64)> {
    let name = path.file_name()?.to_str()?;
    let (covers, entry) = name
        .strip_prefix("snapshot-")?
        .strip_suffix(".bin")?
        .split_once('-')?;
    Some((covers.parse().ok()?, entry.parse().ok()?))
}

/// Fills a fresh inventory with the state after the log's first `upto` entries: from the newest
/// usable snapshot at or below `upto`, then replaying the entries after it. Returns the
/// snapshot used (what it covers) and how many entries were replayed.
fn rebuild(
    inv: &Inventory,
    schedule_digest: Digest,
    log: &Log,
    data: &DataDir,
    schedule_entry: u64,
    upto: u64,
    warnings: &mut Vec<String>,
) -> Result<(Option<u64>, u64)> {
    let mut start = schedule_entry + 1;
    let snapshot = load_snapshot(inv, schedule_digest, log, data, upto, warnings)?;
    if let Some(covers) = snapshot {
        start = covers.max(start);
    }
    replay(inv, log, start..upto)?;
    Ok((snapshot, upto.saturating_sub(start)))
}

/// Loads the newest usable snapshot covering at most `upto` entries into the (fresh) inventory;
/// returns what it covers. A snapshot that does not match its `SnapshotTaken` entry is skipped
/// (with a warning) for an older one or a full replay; one that matches but does not load is
/// an error (the inventory is half-loaded).
fn load_snapshot(
    inv: &Inventory,
    schedule_digest: Digest,
    log: &Log,
    data: &DataDir,
    upto: u64,
    warnings: &mut Vec<String>,
) -> Result<Option<u64>> {
    let Ok(list) = data.fs().list_dir(&dir(data)) else {
        return Ok(None);
    };
    let mut found: Vec<(u64, u64, PathBuf)> = list
        .into_iter()
        .map(|name| dir(data).join(name))
        .filter_map(|p| snapshot_name(&p).map(|(c, i)| (c, i, p)))
        .filter(|&(c, _, _)| c <= upto)
        .collect();
    found.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
    for (covers, entry, path) in found {
        match check_snapshot(data, schedule_digest, log, covers, entry, &path) {
            Ok(body) => {
                inv.decode(&body)
                    .map_err(|reason| Error::Snapshot { path, reason })?;
                return Ok(Some(covers));
            }
            Err(why) => warnings.push(format!("snapshot {} not used: {why}", path.display())),
        }
    }
    from_store(inv, schedule_digest, log, upto, warnings)
}

/// The newest snapshot the log names, from its store (a replica's empty or older folder): its
/// body is checked against the `SnapshotTaken` entry's digest before it is used.
fn from_store(
    inv: &Inventory,
    schedule_digest: Digest,
    log: &Log,
    upto: u64,
    warnings: &mut Vec<String>,
) -> Result<Option<u64>> {
    let Some(backend) = log.backend() else {
        return Ok(None);
    };
    let mut newest = None;
    for raw in log.entries(0..log.size())? {
        let raw = raw?;
        if raw.kind() != Some(crate::log::DecisionKind::SNAPSHOT_TAKEN) {
            continue;
        }
        if let Decision::SnapshotTaken(s) = raw.decode()?.record.decision
            && s.covers <= upto
            && s.schedule == schedule_digest
        {
            newest = Some(s);
        }
    }
    let Some(taken) = newest else {
        return Ok(None);
    };
    let body = match backend.get_blob(&taken.digest.to_string()) {
        Ok(Some(body)) if Digest::of(&body) == taken.digest => body,
        Ok(_) => {
            warnings.push(format!(
                "the store has no snapshot {} (covering {} entries)",
                taken.digest, taken.covers
            ));
            return Ok(None);
        }
        Err(e) => {
            warnings.push(format!("the store's snapshot {}: {e}", taken.digest));
            return Ok(None);
        }
    };
    inv.decode(&body).map_err(|reason| Error::Snapshot {
        path: format!("{} in the store", taken.digest).into(),
        reason,
    })?;
    Ok(Some(taken.covers))
}

/// The snapshot's state bytes, once its file matches its SnapshotTaken entry.
fn check_snapshot(
    data: &DataDir,
    schedule_digest: Digest,
    log: &Log,
    covers: u64,
    entry: u64,
    path: &Path,
) -> std::result::Result<Vec<u8>, String> {
    if entry >= log.size() || entry < covers {
        return Err(format!(
            "its entry {entry} is not in the log ({} entries) after what it covers ({covers})",
            log.size()
        ));
    }
    let logged = match log.entry(entry).map_err(|e| e.to_string())?.record.decision {
        Decision::SnapshotTaken(s) if s.covers == covers => s,
        other => {
            return Err(format!(
                "entry {entry} is a {}, not its SnapshotTaken",
                other.name()
            ));
        }
    };
    let mut bytes = data.fs().read(path).map_err(|e| e.to_string())?;
    let header = SNAPSHOT_MAGIC.len() + 8 + 32 + 32;
    if bytes.len() < header || &bytes[..16] != SNAPSHOT_MAGIC {
        return Err("not a snapshot file".into());
    }
    let file_covers = u64::from_be_bytes(bytes[16..24].try_into().map_err(|_| "short")?);
    if file_covers != covers || bytes[24..56] != schedule_digest.0 {
        return Err("it belongs to another log position or schedule".into());
    }
    let digest = Digest::of(&bytes[header..]);
    if digest.0 != bytes[56..88] || digest != logged.digest {
        return Err(format!(
            "its content hashes to {digest}, the log's SnapshotTaken says {}",
            logged.digest
        ));
    }
    bytes.drain(..header);
    Ok(bytes)
}

/// Applies the appointment decisions of `range` to the inventory, in order.
fn replay(inv: &Inventory, log: &Log, range: std::ops::Range<u64>) -> Result<()> {
    replay_with(inv, log, range, |_, effect| {
        let mut shard = inv.patient_shard(effect.shard());
        inv.apply(&mut shard, effect).map(|_| ())
    })
}

/// Applies the effects of the log's entries in `range` with `apply` (given the entry's index),
/// in order.
fn replay_with(
    inv: &Inventory,
    log: &Log,
    range: std::ops::Range<u64>,
    mut apply: impl FnMut(u64, &Effect) -> std::result::Result<(), String>,
) -> Result<()> {
    for raw in log.entries(range)? {
        let raw = raw?;
        let index = raw.index;
        let entry = Entry::decode(&raw.bytes)
            .map_err(|source| crate::log::Error::Decode { index, source })?;
        let fail = |reason: String| Error::Replay { index, reason };
        for effect in effects(inv, &entry.record).map_err(fail)? {
            apply(index, &effect).map_err(fail)?;
        }
    }
    Ok(())
}

/// The inventory changes a logged decision stands for (none for other domains').
fn effects(inv: &Inventory, record: &Record) -> std::result::Result<Vec<Effect>, String> {
    let s = &inv.schedule;
    let slot = |id: &str| {
        s.parse_slot(id)
            .map(|x| x.0)
            .ok_or_else(|| format!("unknown slot '{id}'"))
    };
    let hold = |id: &str| {
        id.parse::<HoldId>()
            .map(|h| h.0)
            .map_err(|()| format!("bad hold id '{id}'"))
    };
    let appt = |id: &str| {
        id.parse::<AppointmentId>()
            .map(|a| a.0)
            .map_err(|()| format!("bad appointment id '{id}'"))
    };
    let patient = || {
        let name = record.subject.as_str();
        let shard = patient_shard(name);
        inv.patient_shard(shard).intern(shard, name)
    };
    let local = |t| LocalTime::from_timestamp(t, &s.zone);
    Ok(match &record.decision {
        Decision::SlotHeld(d) => vec![Effect::Hold {
            patient: patient(),
            slot: slot(&d.slot)?,
            hold: hold(&d.hold)?,
            expires: d.expires.unix_micros(),
        }],
        Decision::HoldReleased(d) => {
            let key = match d.hold.parse::<AppointmentId>() {
                Ok(a) => HoldKey::offer(a.0),
                Err(()) => HoldKey::hold(hold(&d.hold)?),
            };
            slot(&d.slot)?;
            vec![Effect::Release { key }]
        }
        Decision::SlotBooked(d) => vec![Effect::Book {
            patient: patient(),
            slot: slot(&d.slot)?,
            appt: appt(&d.appointment)?,
            hold: d.hold.as_deref().map(hold).transpose()?,
        }],
        Decision::AppointmentCancelled(d) => vec![Effect::Cancel {
            appt: appt(&d.appointment)?,
        }],
        Decision::Rescheduled(d) => vec![Effect::Reschedule {
            appt: appt(&d.appointment)?,
            to: slot(&d.to_slot)?,
        }],
        Decision::AbsenceMarked(d) => {
            let doctor = s
                .doctor(&record.subject)
                .ok_or_else(|| format!("unknown doctor '{}'", record.subject))?;
            vec![Effect::Absence {
                doctor,
                from: local(d.from),
                until: local(d.until),
            }]
        }
        Decision::ReOffered(d) => vec![Effect::Offer {
            appt: appt(&d.appointment)?,
            to: slot(&d.offered_slot)?,
            expires: d.expires.unix_micros(),
        }],
        Decision::AttendanceRecorded(d) => vec![Effect::Attendance {
            appt: appt(&d.appointment)?,
            status: d.status,
        }],
        Decision::ScheduleLoaded(_) => return Err("a second ScheduleLoaded".into()),
        _ => Vec::new(),
    })
}
