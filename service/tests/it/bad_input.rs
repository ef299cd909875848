//! The bad-input table: every file format the `allot` binary reads, each kind of malformed input
//! (missing columns, duplicate ids, unknown references, negative and huge numbers, empty files,
//! non-UTF-8, a 10 MB line, deep nesting), through the real binary, against a data folder that
//! already holds decisions. Each case must give exactly one error line naming the place
//! (`file:line: field: ...`, `file:line:column: ...` for TOML, `file: line N: field` for DIMACS),
//! exit non-zero, write no output, and leave the data folder byte-identical (no decision logged;
//! only `log/LOCK`, which holds the pid of the last process to take the writer lock, may change).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

fn allot(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(args)
        .arg("--data")
        .arg(dir.join("data"))
        .current_dir(dir)
        .env_remove("ALLOT_ACTOR")
        .env_remove("ALLOT_CONFIG")
        .env_remove("ALLOT_SERVER")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Pipes are drained on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).ok();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).ok();
        v
    });
    let start = Instant::now();
    let mut timed_out = false;
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            timed_out = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    let stdout = out_reader.join().unwrap();
    let mut stderr = err_reader.join().unwrap();
    if timed_out {
        stderr.extend_from_slice(b"\n(killed: did not finish in 30 s)");
    }
    struct Out {
        status: std::process::ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    }
    let out = Out {
        status,
        stdout,
        stderr,
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir`: its length and SHA-256.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, [u8; 32])> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(
                    path.strip_prefix(dir).unwrap().to_owned(),
                    (bytes.len() as u64, Sha256::digest(&bytes).into()),
                );
            }
        }
    }
    out
}

/// Names of what is in `dir` besides the data folder.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A working folder whose data folder holds a fair run, a school run and a loaded city.
struct Base {
    dir: tempfile::TempDir,
}

const FAIRS: &str = "fair,district,category,stalls\nF1,D1,veg,2\nF1,D1,*,1\nF2,D2,honey,1\n";
const APPLICANTS: &str =
    "applicant,category,tier,lottery,choices\na1,veg,0,5,F1;F2\na2,honey,1,3,F2;F1\n";
const SCHOOLS: &str = "school,capacity\nA,1\nB,2\n";
const STUDENTS: &str = "student,lottery,choices\nx,3,A;B\ny,1,A\nz,2,B;A\n";
const PRIORITIES: &str = "school,student,priority\nA,x,0\n";
const RESERVES: &str = "school,class,seats\nB,0,1\n";
const CLINICS: &str = "clinic,district,lat,lon\nC1,D1,55.75,37.61\nC2,D2,55.80,37.50\n";
const DOCTORS: &str = "doctor,clinic,specialty,minutes,schedule\n\
                       d1,C1,therapist,,mon-fri 08:00-12:00\nd2,C2,ent,20,sat 09:00-13:00\n";
const ABSENCES: &str = "doctor,from,until\nd1,2030-03-05,2030-03-05\n";
const REQUESTS: &str = "request,patient,district,specialty,earliest\n\
                        r1,p1,D1,therapist,2030-03-04\nr2,p2,D2,ent,2030-03-05\n";
const DIMACS: &str = "p min 2 1\nn 1 1\nn 2 -1\na 1 2 0 1 5\n";
const CONFIG: &str = "listen = \"127.0.0.1:0\"\n[limits]\nmax_request_bytes = 4194304\n";

/// The commands, each with the files it reads (by their names in the folder).
const FAIR_RUN: &[&str] = &[
    "fair",
    "run",
    "--fairs",
    "fairs.csv",
    "--applicants",
    "applicants.csv",
    "--out",
    "out",
];
const SCHOOL_RUN: &[&str] = &[
    "school",
    "run",
    "--schools",
    "schools.csv",
    "--students",
    "students.csv",
    "--priorities",
    "priorities.csv",
    "--reserves",
    "reserves.csv",
    "--out",
    "out",
];
const LOAD: &[&str] = &[
    "appointments",
    "load",
    "--clinics",
    "clinics.csv",
    "--doctors",
    "doctors.csv",
    "--absences",
    "absences.csv",
    "--from",
    "2030-03-04",
    "--days",
    "7",
];
const REBALANCE: &[&str] = &[
    "appointments",
    "rebalance",
    "--requests",
    "requests.csv",
    "--out",
    "out",
];
const MCF: &[&str] = &["mcf", "net.min"];
const SERVE: &[&str] = &["serve", "--dev", "--config", "allot.toml"];
const SIMULATE: &[&str] = &["simulate", "scenario.toml", "--runs", "1", "--out", "out"];
const SCENARIO: &str = "[city]\ngenerate = { seed = 3, scale = 0.01 }\n[period]\ndays = 2\n";

/// The valid files every command reads; a case replaces one of them.
const VALID: &[(&str, &str)] = &[
    ("fairs.csv", FAIRS),
    ("applicants.csv", APPLICANTS),
    ("schools.csv", SCHOOLS),
    ("students.csv", STUDENTS),
    ("priorities.csv", PRIORITIES),
    ("reserves.csv", RESERVES),
    ("clinics.csv", CLINICS),
    ("doctors.csv", DOCTORS),
    ("absences.csv", ABSENCES),
    ("requests.csv", REQUESTS),
    ("net.min", DIMACS),
    ("allot.toml", CONFIG),
    ("scenario.toml", SCENARIO),
];

impl Base {
    fn new() -> Base {
        let base = Base {
            dir: tempfile::tempdir().unwrap(),
        };
        base.write_valid();
        for command in [FAIR_RUN, SCHOOL_RUN, LOAD] {
            let (ok, _, err) = allot(base.dir.path(), command);
            assert!(ok, "{command:?}: {err}");
            std::fs::remove_dir_all(base.dir.path().join("out")).ok();
        }
        let (ok, out, err) = allot(base.dir.path(), MCF);
        assert!(ok && out.contains("\"cost\":5"), "{out} {err}");
        base
    }

    fn write_valid(&self) {
        for (name, text) in VALID {
            std::fs::write(self.dir.path().join(name), text).unwrap();
        }
    }
}

/// What a case must print: the start of its one error line (after `error: `).
struct Case {
    command: &'static [&'static str],
    file: &'static str,
    bytes: Vec<u8>,
    expect: String,
}

fn case(
    command: &'static [&'static str],
    file: &'static str,
    bytes: impl Into<Vec<u8>>,
    expect: &str,
) -> Case {
    Case {
        command,
        file,
        bytes: bytes.into(),
        expect: expect.to_owned(),
    }
}

/// Runs one case against the base folder; returns what is wrong with it, if anything.
fn check(base: &Base, case: &Case) -> Result<(), String> {
    let dir = base.dir.path();
    base.write_valid();
    std::fs::write(dir.join(case.file), &case.bytes).unwrap();
    let before = snapshot(&dir.join("data"));
    let files = listing(dir);
    let (ok, _stdout, stderr) = allot(dir, case.command);
    if std::env::var_os("ALLOT_SHOW_ERRORS").is_some() {
        eprintln!("{}", allot_engine::input::clip_to(stderr.trim_end(), 300));
    }
    let mut problems = Vec::new();
    if ok {
        problems.push("exited 0".to_owned());
    }
    let lines: Vec<&str> = stderr.lines().collect();
    match lines.as_slice() {
        [line] if line.starts_with(&format!("error: {}", case.expect)) => {}
        _ => problems.push(format!(
            "stderr is not one line starting with 'error: {}': {:?}",
            case.expect,
            allot_engine::input::clip_to(&stderr, 400)
        )),
    }
    if stderr.len() > 1000 {
        problems.push(format!("the error is {} bytes long", stderr.len()));
    }
    let mut after = snapshot(&dir.join("data"));
    // The writer lock's file holds the pid of the last process that took the lock (for the
    // "locked by pid N" message); taking the lock rewrites it, and it is no data.
    let lock = Path::new("log/LOCK");
    if let (Some(b), Some(a)) = (before.get(lock), after.get_mut(lock)) {
        *a = *b;
    }
    if after != before {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        problems.push(format!("the data folder changed: {changed:?}"));
    }
    if listing(dir) != files {
        problems.push(format!("files were written: {:?}", listing(dir)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn ten_mb() -> String {
    "x".repeat(10 << 20)
}

/// The table. `{big}` cases hold a 10 MB line.
fn cases() -> Vec<Case> {
    let big = ten_mb();
    let not_utf8 = |head: &str| {
        let mut bytes = head.as_bytes().to_vec();
        bytes.extend_from_slice(b"\xff\xfe,\x80\n");
        bytes
    };
    vec![
        // fairs.csv
        case(FAIR_RUN, "fairs.csv", "", "fairs.csv"),
        case(
            FAIR_RUN,
            "fairs.csv",
            "fair,district,category\nF1,D1,veg\n",
            "fairs.csv:1: stalls: missing column",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            "fair,district,category,stalls\nF1,D1,veg,2\nF1,D1,veg,1\n",
            "fairs.csv:3: category: ",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            "fair,district,category,stalls\nF1,D1,veg,-2\n",
            "fairs.csv:2: stalls: ",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            "fair,district,category,stalls\nF1,D1,veg,99999999999999999999\n",
            "fairs.csv:2: stalls: ",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            not_utf8("fair,district,category,stalls\n"),
            "fairs.csv:2",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            format!("fair,district,category,stalls\nF{big},D1,veg,2\n"),
            "fairs.csv:2: fair: ",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            format!("fair,district,category,stalls{big}\n"),
            "fairs.csv:1: stalls: missing column",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            "fair,district,category,stalls\nF1,D1,veg,2,7\n",
            "fairs.csv:2: ",
        ),
        case(
            FAIR_RUN,
            "fairs.csv",
            "fair,district,category,stalls\n\"F1,D1,veg,2\n",
            "fairs.csv:2",
        ),
        // applicants.csv
        case(FAIR_RUN, "applicants.csv", "", "applicants.csv"),
        case(
            FAIR_RUN,
            "applicants.csv",
            "applicant,category,tier,lottery\na1,veg,0,5\n",
            "applicants.csv:1: choices: missing column",
        ),
        case(
            FAIR_RUN,
            "applicants.csv",
            "applicant,category,tier,lottery,choices\na1,veg,0,5,F1\na1,veg,0,6,F2\n",
            "applicants.csv:3: applicant: ",
        ),
        case(
            FAIR_RUN,
            "applicants.csv",
            "applicant,category,tier,lottery,choices\na1,veg,0,5,F9\n",
            "applicants.csv:2: choices: ",
        ),
        case(
            FAIR_RUN,
            "applicants.csv",
            "applicant,category,tier,lottery,choices\na1,veg,-1,5,F1\n",
            "applicants.csv:2: tier: ",
        ),
        case(
            FAIR_RUN,
            "applicants.csv",
            "applicant,category,tier,lottery,choices\na1,veg,0,99999999999999999999,F1\n",
            "applicants.csv:2: lottery: ",
        ),
        case(
            FAIR_RUN,
            "applicants.csv",
            not_utf8("applicant,category,tier,lottery,choices\n"),
            "applicants.csv:2",
        ),
        case(
            FAIR_RUN,
            "applicants.csv",
            format!("applicant,category,tier,lottery,choices\na1,veg,0,5,F1;{big}\n"),
            "applicants.csv:2: choices: ",
        ),
        case(
            FAIR_RUN,
            "applicants.csv",
            format!(
                "applicant,category,tier,lottery,choices\na1,veg,0,5,{}F1\n",
                "F1;".repeat(100_000)
            ),
            "applicants.csv:2: choices: ",
        ),
        // schools.csv, students.csv, priorities.csv, reserves.csv
        case(SCHOOL_RUN, "schools.csv", "", "schools.csv"),
        case(
            SCHOOL_RUN,
            "schools.csv",
            "school\nA\n",
            "schools.csv:1: capacity: missing column",
        ),
        case(
            SCHOOL_RUN,
            "schools.csv",
            "school,capacity\nA,1\nA,2\n",
            "schools.csv:3: school: ",
        ),
        case(
            SCHOOL_RUN,
            "schools.csv",
            "school,capacity\nA,-1\nB,2\n",
            "schools.csv:2: capacity: ",
        ),
        case(
            SCHOOL_RUN,
            "schools.csv",
            "school,capacity\nA,4294967296\nB,2\n",
            "schools.csv:2: capacity: ",
        ),
        case(
            SCHOOL_RUN,
            "schools.csv",
            not_utf8("school,capacity\n"),
            "schools.csv:2",
        ),
        case(
            SCHOOL_RUN,
            "schools.csv",
            format!("school,capacity\nA,1\nB,2{big}\n"),
            "schools.csv:3: capacity: ",
        ),
        case(SCHOOL_RUN, "students.csv", "", "students.csv"),
        case(
            SCHOOL_RUN,
            "students.csv",
            "student,lottery\nx,3\n",
            "students.csv:1: choices: missing column",
        ),
        case(
            SCHOOL_RUN,
            "students.csv",
            "student,lottery,choices\nx,3,A\nx,4,B\n",
            "students.csv:3: student: ",
        ),
        case(
            SCHOOL_RUN,
            "students.csv",
            "student,lottery,choices\nx,3,A;Q\n",
            "students.csv:2: choices: ",
        ),
        case(
            SCHOOL_RUN,
            "students.csv",
            "student,lottery,choices\nx,-3,A\n",
            "students.csv:2: lottery: ",
        ),
        case(
            SCHOOL_RUN,
            "students.csv",
            not_utf8("student,lottery,choices\n"),
            "students.csv:2",
        ),
        case(
            SCHOOL_RUN,
            "students.csv",
            format!("student,lottery,choices\n{big},3,A\n"),
            "students.csv:2: student: ",
        ),
        case(SCHOOL_RUN, "priorities.csv", "", "priorities.csv"),
        case(
            SCHOOL_RUN,
            "priorities.csv",
            "school,student\nA,x\n",
            "priorities.csv:1: priority: missing column",
        ),
        case(
            SCHOOL_RUN,
            "priorities.csv",
            "school,student,priority\nA,x,0\nA,x,1\n",
            "priorities.csv:3: ",
        ),
        case(
            SCHOOL_RUN,
            "priorities.csv",
            "school,student,priority\nA,q,0\n",
            "priorities.csv:2: student: ",
        ),
        case(
            SCHOOL_RUN,
            "priorities.csv",
            "school,student,priority\nQ,x,0\n",
            "priorities.csv:2: school: ",
        ),
        case(
            SCHOOL_RUN,
            "priorities.csv",
            "school,student,priority\nA,x,-1\n",
            "priorities.csv:2: priority: ",
        ),
        case(
            SCHOOL_RUN,
            "priorities.csv",
            "school,student,priority\nA,x,99999999999\n",
            "priorities.csv:2: priority: ",
        ),
        case(
            SCHOOL_RUN,
            "reserves.csv",
            "school,class\nB,0\n",
            "reserves.csv:1: seats: missing column",
        ),
        case(
            SCHOOL_RUN,
            "reserves.csv",
            "school,class,seats\nQ,0,1\n",
            "reserves.csv:2: school: ",
        ),
        case(
            SCHOOL_RUN,
            "reserves.csv",
            "school,class,seats\nB,0,99\n",
            "reserves.csv:2: seats: ",
        ),
        case(
            SCHOOL_RUN,
            "reserves.csv",
            "school,class,seats\nB,0,1\nB,0,1\n",
            "reserves.csv:3: ",
        ),
        // clinics.csv, doctors.csv, absences.csv
        case(LOAD, "clinics.csv", "", "clinics.csv"),
        case(
            LOAD,
            "clinics.csv",
            "clinic,district,lat\nC1,D1,55.75\n",
            "clinics.csv:1: lon: missing column",
        ),
        case(
            LOAD,
            "clinics.csv",
            "clinic,district,lat,lon\nC1,D1,55.75,37.61\nC1,D2,55.80,37.50\n",
            "clinics.csv:3: clinic: ",
        ),
        case(
            LOAD,
            "clinics.csv",
            "clinic,district,lat,lon\nC1,D1,95.75,37.61\nC2,D2,55.80,37.50\n",
            "clinics.csv:2: lat: ",
        ),
        case(
            LOAD,
            "clinics.csv",
            "clinic,district,lat,lon\nC1,D1,55.75,1e400\nC2,D2,55.80,37.50\n",
            "clinics.csv:2: lon: ",
        ),
        case(
            LOAD,
            "clinics.csv",
            "clinic,district,lat,lon\nC1,D1,NaN,37.61\nC2,D2,55.80,37.50\n",
            "clinics.csv:2: lat: ",
        ),
        case(
            LOAD,
            "clinics.csv",
            not_utf8("clinic,district,lat,lon\n"),
            "clinics.csv:2",
        ),
        case(
            LOAD,
            "clinics.csv",
            format!("clinic,district,lat,lon\nC1,D{big},55.75,37.61\n"),
            "clinics.csv:2: district: ",
        ),
        case(LOAD, "doctors.csv", "", "doctors.csv"),
        case(
            LOAD,
            "doctors.csv",
            "doctor,clinic,specialty\nd1,C1,ent\n",
            "doctors.csv:1: schedule: missing column",
        ),
        case(
            LOAD,
            "doctors.csv",
            "doctor,clinic,specialty,minutes,schedule\nd1,C1,ent,20,mon 08:00-09:00\nd1,C2,ent,20,mon 08:00-09:00\n",
            "doctors.csv:3: doctor: ",
        ),
        case(
            LOAD,
            "doctors.csv",
            "doctor,clinic,specialty,minutes,schedule\nd1,C9,ent,20,mon 08:00-09:00\n",
            "doctors.csv:2: clinic: ",
        ),
        case(
            LOAD,
            "doctors.csv",
            "doctor,clinic,specialty,minutes,schedule\nd1,C1,ent,-20,mon 08:00-09:00\n",
            "doctors.csv:2: minutes: ",
        ),
        case(
            LOAD,
            "doctors.csv",
            "doctor,clinic,specialty,minutes,schedule\nd1,C1,ent,99999,mon 08:00-09:00\n",
            "doctors.csv:2: minutes: ",
        ),
        case(
            LOAD,
            "doctors.csv",
            "doctor,clinic,specialty,minutes,schedule\nd1,C1,ent,20,mon 25:00-26:00\n",
            "doctors.csv:2: schedule: ",
        ),
        case(
            LOAD,
            "doctors.csv",
            "doctor,clinic,specialty,minutes,schedule\nd1,C1,ent,20,xyz 08:00-09:00\n",
            "doctors.csv:2: schedule: ",
        ),
        case(
            LOAD,
            "doctors.csv",
            format!(
                "doctor,clinic,specialty,minutes,schedule\nd1,C1,ent,20,mon 08:00-09:00 {big}\n"
            ),
            "doctors.csv:2: schedule: ",
        ),
        case(
            LOAD,
            "doctors.csv",
            format!(
                "doctor,clinic,specialty,minutes,schedule\nd1,C1,ent,20,\"{}\"\n",
                "mon 08:00-09:00;".repeat(200_000)
            ),
            "doctors.csv:2: schedule: ",
        ),
        case(
            LOAD,
            "absences.csv",
            "doctor,from\nd1,2030-03-05\n",
            "absences.csv:1: until: missing column",
        ),
        case(
            LOAD,
            "absences.csv",
            "doctor,from,until\nd9,2030-03-05,2030-03-06\n",
            "absences.csv:2: doctor: ",
        ),
        case(
            LOAD,
            "absences.csv",
            "doctor,from,until\nd1,2030-03-06,2030-03-05\n",
            "absences.csv:2: ",
        ),
        case(
            LOAD,
            "absences.csv",
            "doctor,from,until\nd1,2030-02-31,2030-03-05\n",
            "absences.csv:2: from: ",
        ),
        case(
            LOAD,
            "absences.csv",
            "doctor,from,until\nd1,99999-03-06,2030-03-05\n",
            "absences.csv:2: from: ",
        ),
        // requests.csv (re-balancing against the loaded city)
        case(REBALANCE, "requests.csv", "", "requests.csv"),
        case(
            REBALANCE,
            "requests.csv",
            "request,patient,district,specialty\nr1,p1,D1,ent\n",
            "requests.csv:1: earliest: missing column",
        ),
        case(
            REBALANCE,
            "requests.csv",
            "request,patient,district,specialty,earliest\nr1,p1,D1,ent,2030-03-04\nr1,p2,D1,ent,2030-03-04\n",
            "requests.csv:3: request: ",
        ),
        case(
            REBALANCE,
            "requests.csv",
            "request,patient,district,specialty,earliest\nr1,p1,D9,ent,2030-03-04\n",
            "requests.csv:2: district: ",
        ),
        case(
            REBALANCE,
            "requests.csv",
            "request,patient,district,specialty,earliest\nr1,p1,D1,surgeon,2030-03-04\n",
            "requests.csv:2: specialty: ",
        ),
        case(
            REBALANCE,
            "requests.csv",
            "request,patient,district,specialty,earliest\nr1,p1,D1,ent,-2030-03-04\n",
            "requests.csv:2: earliest: ",
        ),
        case(
            REBALANCE,
            "requests.csv",
            not_utf8("request,patient,district,specialty,earliest\n"),
            "requests.csv:2",
        ),
        case(
            REBALANCE,
            "requests.csv",
            format!("request,patient,district,specialty,earliest\nr1,{big},D1,ent,2030-03-04\n"),
            "requests.csv:2: patient: ",
        ),
        // DIMACS
        case(MCF, "net.min", "", "net.min: line 1: no problem line"),
        case(
            MCF,
            "net.min",
            "p min 2 1\nn 1 1\nn 1 -1\na 1 2 0 1 5\n",
            "net.min: line 3: node 1 is listed twice",
        ),
        case(
            MCF,
            "net.min",
            "p min 2 1\na 1 3 0 1 5\n",
            "net.min: line 2: arc target: node 3 is not in 1..=2",
        ),
        case(
            MCF,
            "net.min",
            "p min 2 1\na 1 2 0 -1 5\n",
            "net.min: line 2: arc capacity: -1 is negative",
        ),
        case(
            MCF,
            "net.min",
            "p min 2 1\na 1 2 3 2 5\n",
            "net.min: line 2: arc lower bound: 3 is above",
        ),
        case(
            MCF,
            "net.min",
            "p min 2 1\na 1 2 0 1 99999999999999999999\n",
            "net.min: line 2: arc cost: out of range",
        ),
        case(
            MCF,
            "net.min",
            "p min 1000000000 0\n",
            "net.min: line 1: problem node count: 1000000000 is more than a file",
        ),
        case(
            MCF,
            "net.min",
            &b"p min 2 1\na 1 2 0 1 5\n\xff\n"[..],
            "net.min: line 3",
        ),
        case(
            MCF,
            "net.min",
            format!("p min 2 1\na 1 2 0 1 5\nc {big}\nx\n"),
            "net.min: line 4: unknown line type",
        ),
        case(
            MCF,
            "net.min",
            format!("p min 2 1\na 1 2 0 1 5{big}\n"),
            "net.min: line 2",
        ),
        case(
            MCF,
            "net.min",
            "p min 2 2\na 1 2 0 1 5\n",
            "net.min: line 1: the problem line declares 2 arcs but the file has 1",
        ),
        // the server's configuration
        case(SERVE, "allot.toml", "listen = [\n", "allot.toml:1:"),
        case(
            SERVE,
            "allot.toml",
            "lisen = \"127.0.0.1:0\"\n",
            "allot.toml:1:1: unknown field `lisen`",
        ),
        case(
            SERVE,
            "allot.toml",
            "[limits]\nmax_request_bytes = -5\n",
            "allot.toml:2:21: invalid value",
        ),
        case(
            SERVE,
            "allot.toml",
            "[limits]\nmax_request_bytes = 99999999999999999999999\n",
            "allot.toml:2:21: ",
        ),
        case(
            SERVE,
            "allot.toml",
            "[limits]\nmax_concurrent_calls = 0\n",
            "allot.toml: limits.max_concurrent_calls: must be at least 1",
        ),
        case(
            SERVE,
            "allot.toml",
            &b"listen = \"\xff\"\n"[..],
            "allot.toml:1: not UTF-8",
        ),
        case(
            SERVE,
            "allot.toml",
            format!("listen = \"{big}\"\n"),
            "allot.toml: listen: ",
        ),
        case(
            SERVE,
            "allot.toml",
            format!("listen = {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
            "allot.toml:1:",
        ),
        case(
            SERVE,
            "allot.toml",
            format!("x = {}1{}\n", "{a = ".repeat(100_000), "}".repeat(100_000)),
            "allot.toml:1:",
        ),
        case(
            SERVE,
            "allot.toml",
            "[[token]]\nname = \"a\"\nroles = [\"root\"]\nsha256 = \"00\"\n",
            "allot.toml: token[0].roles[0]: unknown role",
        ),
        case(
            SERVE,
            "allot.toml",
            "[[token]]\nname = \"a\"\nroles = [\"auditor\"]\n",
            "allot.toml:",
        ),
        // scenario files
        case(
            SIMULATE,
            "scenario.toml",
            "",
            "scenario.toml:1: city: missing field `city`",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            "[city]\ngenerate = { seed = 3, scale = 0.01 }\n[period]\ndays = -2\n",
            "scenario.toml:4: period.days: invalid value",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            "[city]\ngenerate = { seed = 3, scale = 0.01 }\n[period]\ndays = 99999999999999999999\n",
            "scenario.toml:4: period.days: ",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            "[city]\ngenerate = { seed = 3, scale = 1e300 }\n",
            "scenario.toml:2: city.generate.scale: ",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            "[city]\ngenerate = { seed = 3, scale = 0.01 }\n[[variant]]\nname = \"x\"\nclose_clinics = [\"C9999\"]\n",
            "scenario.toml:5: variant[0].close_clinics: no clinic 'C9999'",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            "[city]\ngenerate = { seed = 3, scale = 0.01 }\n[[variant]]\nname = \"x\"\n[[variant]]\nname = \"x\"\n",
            "scenario.toml:6: variant[1].name: ",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            "[city]\ncsv = \"nowhere\"\n",
            "nowhere: no city files",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            "unknown = 1\n[city]\ngenerate = { seed = 3, scale = 0.01 }\n",
            "scenario.toml:1: unknown: unknown field",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            &b"name = \"\xff\"\n[city]\ngenerate = { seed = 3, scale = 0.01 }\n"[..],
            "scenario.toml:1: not UTF-8",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            format!(
                "name = \"{big}\"\n[city]\ngenerate = {{ seed = 3, scale = 0.01 }}\n[period]\ndays = 0\n"
            ),
            "scenario.toml:5: period.days: ",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            format!("seed = \"{big}\"\n[city]\ngenerate = {{ seed = 3, scale = 0.01 }}\n"),
            "scenario.toml:1: seed: invalid type",
        ),
        case(
            SIMULATE,
            "scenario.toml",
            format!(
                "x = {}1{}\n[city]\ngenerate = {{ seed = 3, scale = 0.01 }}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            "scenario.toml:1: ",
        ),
    ]
}

/// Every case of the table; all failures are reported together.
#[test]
fn every_malformed_input_gives_one_clear_error_and_writes_nothing() {
    let base = Base::new();
    let cases = cases();
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, case)| {
            check(&base, case).err().map(|e| {
                format!(
                    "case {i} ({} {}): {e}",
                    case.command[..2].join(" "),
                    case.file
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("bad-input table: {} cases, all green", cases.len());
}
