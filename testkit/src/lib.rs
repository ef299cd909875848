//! Test support shared by allot's crates (a dev-dependency only; nothing here ships).
//!
//! - [`TestSeed`]: every randomized test takes its seed from `ALLOT_TEST_SEED` (random when it is
//!   not set), prints it when it fails, and replays exactly with it.
//! - [`lp`]: linear and integer programs on `good_lp`, the independent oracle of the flow and
//!   assignment tests.
//! - [`anchors`]: the reference solvers built by `../shared/anchors/setup.sh`. With
//!   `ALLOT_REQUIRE_ANCHORS=1` (set by `.ci/run`) a missing tool fails the test instead of
//!   skipping it.

pub mod lp;
pub mod postgres;

use std::path::{Path, PathBuf};

use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// The variable a randomized test takes its seed from.
pub const SEED_VAR: &str = "ALLOT_TEST_SEED";

/// A test's seed: from `ALLOT_TEST_SEED`, else random. Dropped while the test panics, it prints
/// the seed and how to replay it.
#[derive(Debug)]
pub struct TestSeed {
    name: String,
    value: u64,
}

impl TestSeed {
    /// The seed of the test `name` (for the replay message).
    pub fn new(name: &str) -> TestSeed {
        let value = match std::env::var(SEED_VAR) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SEED_VAR}={text:?} is not a number")),
            Err(_) => rand::random(),
        };
        TestSeed {
            name: name.to_owned(),
            value,
        }
    }

    pub fn value(&self) -> u64 {
        self.value
    }

    /// A generator seeded from this seed and `stream` (so parts of a test draw independently).
    pub fn rng(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(self.value ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
}

impl Drop for TestSeed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}: seed {} (replay with {SEED_VAR}={} cargo test {})",
                self.name, self.value, self.value, self.name
            );
        }
    }
}

/// The variable that makes a missing reference tool a failure.
pub const REQUIRE_ANCHORS_VAR: &str = "ALLOT_REQUIRE_ANCHORS";

/// Where the reference tools are: the built folder (`$ANCHORS`, default
/// `~/.cache/allot-anchors`, with `lemon_mcf`, `da_ref` and a Python venv) and their sources
/// (`../shared/anchors` beside the workspace).
#[derive(Debug, Clone)]
pub struct Anchors {
    pub built: PathBuf,
    pub sources: PathBuf,
}

impl Anchors {
    /// The reference environment's Python (OR-Tools, `matching`, HiGHS, numpy).
    pub fn python(&self) -> PathBuf {
        self.built.join("venv/bin/python")
    }

    pub fn tool(&self, name: &str) -> PathBuf {
        self.built.join(name)
    }

    pub fn source(&self, name: &str) -> PathBuf {
        self.sources.join(name)
    }
}

/// The reference tools, or `None` after saying the test is skipped. Panics instead when
/// `ALLOT_REQUIRE_ANCHORS=1`: in CI a test never passes by skipping.
pub fn anchors(test: &str) -> Option<Anchors> {
    let found = locate();
    if found.is_none() {
        let why = "the reference tools are not built (bash ../shared/anchors/setup.sh)";
        if std::env::var(REQUIRE_ANCHORS_VAR).is_ok_and(|v| v == "1") {
            panic!("{test}: {REQUIRE_ANCHORS_VAR}=1 but {why}");
        }
        eprintln!("SKIPPED {test}: {why}; set {REQUIRE_ANCHORS_VAR}=1 to make this fail");
    }
    found
}

fn locate() -> Option<Anchors> {
    let built = match std::env::var_os("ANCHORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/allot-anchors"),
    };
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/anchors");
    let complete = ["lemon_mcf", "da_ref", "venv/bin/python"]
        .iter()
        .all(|f| built.join(f).exists())
        && sources.join("fair_oracle.py").exists();
    complete.then_some(Anchors { built, sources })
}

/// A tile's path as c2sp.org/tlog-tiles writes it, written here from the spec apart from the
/// engine's: `tile/<L>/<N>[.p/<W>]` (or `tile/entries/...` for `entries`), `<N>` in three-digit
/// groups, all but the last prefixed with `x`.
pub fn c2sp_tile_path(level: Option<u8>, index: u64, width: u32) -> String {
    let mut n = index;
    let mut groups = vec![format!("{:03}", n % 1000)];
    while n >= 1000 {
        n /= 1000;
        groups.insert(0, format!("x{:03}", n % 1000));
    }
    let partial = match width {
        256 => String::new(),
        w => format!(".p/{w}"),
    };
    let level = level.map_or("entries".to_owned(), |l| l.to_string());
    format!("tile/{level}/{}{partial}", groups.join("/"))
}

/// The Python that validates FHIR resources with `fhir.resources` (a venv at `$ALLOT_FHIR_VENV`,
/// default `~/.cache/allot-fhir/venv`, which `.ci/run` makes), or `None` after saying the test is
/// skipped. Panics instead when `ALLOT_REQUIRE_ANCHORS=1`: in CI a test never passes by skipping.
pub fn fhir_python(test: &str) -> Option<PathBuf> {
    let venv = match std::env::var_os("ALLOT_FHIR_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/allot-fhir/venv"),
    };
    let python = venv.join("bin/python");
    let works = std::process::Command::new(&python)
        .args(["-c", "import fhir.resources.R4B"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        let why = format!(
            "no Python with fhir.resources at {} (.ci/run makes it: python3 -m venv DIR && \
             DIR/bin/pip install 'fhir.resources>=8,<9')",
            venv.display()
        );
        if std::env::var(REQUIRE_ANCHORS_VAR).is_ok_and(|v| v == "1") {
            panic!("{test}: {REQUIRE_ANCHORS_VAR}=1 but {why}");
        }
        eprintln!("SKIPPED {test}: {why}; set {REQUIRE_ANCHORS_VAR}=1 to make this fail");
        return None;
    }
    Some(python)
}
