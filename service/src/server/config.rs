//! The server's configuration file (TOML) and its token table.
//!
//! ```toml
//! # allot serve --config allot.toml
//! listen = "127.0.0.1:50051"          # --listen overrides it
//! # tiles_listen = "127.0.0.1:8080"   # the log over HTTP in the tlog-tiles layout (--tiles-listen)
//! # fhir_listen = "127.0.0.1:8081"    # the FHIR R4 face, same tokens and TLS (--fhir-listen)
//! # web_listen = "127.0.0.1:8082"     # the web console, same tokens and TLS (--web-listen)
//! # publish_tiles = true              # and as static files in DATA/tiles/ (--publish-tiles)
//! checkpoint_interval_seconds = 1.0   # sign a checkpoint this often while the log grows
//!                                     # (default 0.25 when witnesses are configured)
//! # signing_key_file = "/etc/allot/signing.key" # the log's key, kept outside the data folder
//! # signing_key_env = "ALLOT_SIGNING_KEY"       # or its text in this environment variable
//! # store = "postgres://allot@db.example:5432/allot"  # keep the log in PostgreSQL, shared by
//!                                     # several replicas (--store; default: the data folder)
//! # advertise = "http://10.0.0.7:50051"  # what followers tell clients to call for writes
//!                                     # (default: the address served)
//! # lease_seconds = 2.0               # a dead leader is replaced after at most this long
//! # witness_quorum = 2                 # publish a checkpoint once this many witnesses cosigned
//!                                     # it (default: a majority of the witnesses)
//!
//! # [[witness]]                       # one per witness (c2sp.org/tlog-witness)
//! # url = "https://witness.example/w1"   # its submission prefix (`/add-checkpoint` is added)
//! # key = "witness.example/w1+1234abcd+BH..."  # its cosigning verifier key (type 4)
//!
//! [limits]
//! max_request_bytes = 4194304         # largest request message (decoded), 4 MiB
//! max_response_bytes = 33554432       # largest response message, 32 MiB
//! max_concurrent_calls = 512          # calls served at once; more fail with RESOURCE_EXHAUSTED
//! max_streams_per_connection = 256    # HTTP/2 streams one connection may open at once
//! max_connections = 1024              # connections at once; more are closed when accepted
//! handshake_timeout_seconds = 10.0    # a connection silent this long after connecting is closed
//! max_upload_bytes = 268435456        # one SubmitApplications stream, 256 MiB (split larger sets)
//! max_window_items = 5000000          # applications and places one window may hold
//! shutdown_grace_seconds = 10.0       # how long calls in flight may finish after SIGTERM
//! # max_call_seconds = 300.0          # cap on any call's duration (as if every call had that deadline)
//!
//! [tls]                               # optional; without it the server speaks plain HTTP/2
//! cert = "server.pem"                 # PEM certificate chain (paths relative to this file)
//! key = "server.key"                  # PEM private key
//!
//! [[token]]                           # one per client; `allot token new` prints these lines
//! name = "umias"                      # the caller's name: the `actor` of the decisions it makes
//! roles = ["clinic-system"]
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```
//!
//! Tokens are stored only as the SHA-256 of the token text, hex: a leaked configuration file
//! does not let anyone call the server. Looking a presented token up by its hash is not a timing
//! side channel, since the caller cannot steer the hash.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use allot_engine::log::{KeyKind, SigningKey, TrustPolicy, VerifierKey};

use super::access::{Role, Roles};

/// The listen address when neither `--listen` nor the file gives one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// A problem with the configuration, naming the file and the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// `message` starts with the line (and column) when they are known.
    #[error("{}:{message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: {setting}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        setting: String,
        problem: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: Option<String>,
    tiles_listen: Option<String>,
    fhir_listen: Option<String>,
    web_listen: Option<String>,
    #[serde(default)]
    publish_tiles: bool,
    checkpoint_interval_seconds: Option<f64>,
    signing_key_file: Option<PathBuf>,
    signing_key_env: Option<String>,
    store: Option<String>,
    advertise: Option<String>,
    lease_seconds: Option<f64>,
    witness_quorum: Option<usize>,
    #[serde(default, rename = "witness")]
    witnesses: Vec<WitnessFile>,
    #[serde(default)]
    limits: LimitsFile,
    tls: Option<TlsFile>,
    #[serde(default, rename = "token")]
    tokens: Vec<TokenFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_request_bytes: Option<usize>,
    max_response_bytes: Option<usize>,
    max_concurrent_calls: Option<usize>,
    max_streams_per_connection: Option<u32>,
    max_connections: Option<usize>,
    handshake_timeout_seconds: Option<f64>,
    max_upload_bytes: Option<usize>,
    max_window_items: Option<usize>,
    shutdown_grace_seconds: Option<f64>,
    max_call_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessFile {
    url: String,
    key: String,
}

/// A witness the log asks for cosignatures.
#[derive(Debug, Clone)]
pub struct WitnessConfig {
    pub url: String,
    pub key: VerifierKey,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    name: String,
    roles: Vec<String>,
    sha256: String,
}

/// Limits that protect the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    pub max_concurrent_calls: usize,
    pub max_streams_per_connection: u32,
    /// Connections served at once; the ones beyond are closed as soon as they are accepted.
    pub max_connections: usize,
    /// A connection that sends nothing this long after connecting is closed.
    pub handshake_timeout: Duration,
    /// The total size of the messages of one client-streaming upload (`SubmitApplications`).
    pub max_upload_bytes: usize,
    /// The items (applications and places) one application window may hold.
    pub max_window_items: u64,
    pub shutdown_grace: Duration,
    pub max_call: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 4 << 20,
            max_response_bytes: 32 << 20,
            max_concurrent_calls: 512,
            max_streams_per_connection: 256,
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            max_upload_bytes: 256 << 20,
            max_window_items: 5_000_000,
            shutdown_grace: Duration::from_secs(10),
            max_call: None,
        }
    }
}

/// The certificate and key the server presents, PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name; domain services record it as the `actor` of the decisions it asks for.
    pub name: String,
    pub roles: Roles,
}

/// The tokens the server accepts, by the SHA-256 of their text.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    by_hash: HashMap<[u8; 32], Arc<Caller>>,
}

impl TokenTable {
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Adds a token by its hash; false if the hash is already there.
    pub fn insert(&mut self, hash: [u8; 32], caller: Caller) -> bool {
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Arc::new(caller));
                true
            }
        }
    }

    /// Adds a token given as text.
    pub fn insert_token(&mut self, token: &str, caller: Caller) -> bool {
        self.insert(token_hash(token), caller)
    }

    /// Mints a development token with every role (`allot serve --dev`) and adds it.
    pub fn mint_dev_token(&mut self) -> std::io::Result<String> {
        let token = mint_token()?;
        let caller = Caller {
            name: "dev".to_owned(),
            roles: Roles::ALL,
        };
        self.insert_token(&token, caller);
        Ok(token)
    }

    /// The caller a presented token belongs to.
    pub fn lookup(&self, token: &str) -> Option<&Arc<Caller>> {
        self.by_hash.get(&token_hash(token))
    }
}

/// SHA-256 of a token's text: what the configuration stores.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token: `allot_` and 43 base64url characters (256 bits from the OS).
pub fn mint_token() -> std::io::Result<String> {
    use rand::TryRng as _;
    let mut bytes = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("no randomness from the OS: {e}")))?;
    Ok(format!(
        "allot_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The log's signing key from `signing_key_file` (relative to the configuration's folder) or
/// `signing_key_env`; on error, the setting and the problem.
fn signing_key(file: &File, path: &Path) -> Result<Option<SigningKey>, (&'static str, String)> {
    let (setting, text) = match (&file.signing_key_file, &file.signing_key_env) {
        (Some(_), Some(_)) => {
            return Err((
                "signing_key_file",
                "give signing_key_file or signing_key_env, not both".into(),
            ));
        }
        (Some(key), None) => {
            let full = path.parent().unwrap_or(Path::new(".")).join(key);
            let text = std::fs::read_to_string(&full).map_err(|e| {
                (
                    "signing_key_file",
                    format!("reading {}: {e}", full.display()),
                )
            })?;
            ("signing_key_file", text)
        }
        (None, Some(var)) => {
            let text = std::env::var(var).map_err(|e| {
                (
                    "signing_key_env",
                    format!("environment variable {var}: {e}"),
                )
            })?;
            ("signing_key_env", text)
        }
        (None, None) => return Ok(None),
    };
    let key = SigningKey::parse(text.trim()).map_err(|e| (setting, e.to_string()))?;
    Ok(Some(key))
}

/// A file's bytes as UTF-8, or an error naming the line of the first bad byte.
pub fn utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        ConfigError::Syntax {
            path: path.to_owned(),
            message: format!("{line}: not UTF-8 (byte {at})"),
        }
    })
}

/// A TOML error as `file:line:column: message`, on one line and short: the toml crate's own
/// rendering quotes the source line, which may be megabytes long.
pub fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let message = allot_engine::input::clip_to(e.message().trim_end(), 300);
    let message = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = text.get(..start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("{line}:{column}: {message}")
        }
        None => format!(" {message}"),
    };
    ConfigError::Syntax {
        path: path.to_owned(),
        message,
    }
}

/// The `[[token]]` lines for a configuration file.
pub fn token_config_lines(token: &str, name: &str, roles: Roles) -> String {
    let roles: Vec<String> = roles.iter().map(|r| format!("{:?}", r.name())).collect();
    format!(
        "[[token]]\nname = {name:?}\nroles = [{}]\nsha256 = \"{}\"\n",
        roles.join(", "),
        hex::encode(token_hash(token))
    )
}

/// Everything `allot serve` needs from its configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where to serve the log's tiles over HTTP (none: not served).
    pub tiles_listen: Option<SocketAddr>,
    /// Where to serve the FHIR R4 face over HTTP (none: not served).
    pub fhir_listen: Option<SocketAddr>,
    /// Where to serve the web console over HTTP (none: not served).
    pub web_listen: Option<SocketAddr>,
    /// Whether every checkpoint is published with its tiles as static files in `DATA/tiles/`.
    pub publish_tiles: bool,
    pub tokens: TokenTable,
    pub tls: Option<TlsIdentity>,
    pub limits: Limits,
    pub checkpoint_interval: Duration,
    /// The log's signing key when kept outside the data folder.
    pub signing_key: Option<SigningKey>,
    /// The witnesses asked to cosign each checkpoint, and how many must.
    pub witnesses: Vec<WitnessConfig>,
    pub witness_quorum: usize,
    /// The PostgreSQL store of a replica set (`None`: the data folder is the store).
    pub store: Option<String>,
    /// What followers name to clients as the leader's address, when this replica leads.
    pub advertise: Option<String>,
    /// How long a leader's lease lasts without renewal.
    pub lease: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051))),
            tiles_listen: None,
            fhir_listen: None,
            web_listen: None,
            publish_tiles: false,
            tokens: TokenTable::default(),
            tls: None,
            limits: Limits::default(),
            checkpoint_interval: Duration::from_secs(1),
            signing_key: None,
            witnesses: Vec::new(),
            witness_quorum: 0,
            store: None,
            advertise: None,
            lease: Duration::from_secs(2),
        }
    }
}

impl ServerConfig {
    /// Reads a configuration file (TLS files are read relative to its folder).
    pub fn load(path: &Path) -> Result<ServerConfig, ConfigError> {
        let bytes = std::fs::read(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        let text = utf8(&bytes, path)?;
        Self::parse(text, path)
    }

    /// Parses a configuration's text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let invalid = |setting: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            setting: setting.to_owned(),
            problem,
        };
        let mut config = ServerConfig::default();
        if let Some(listen) = &file.listen {
            config.listen = listen.parse().map_err(|e| {
                let listen = allot_engine::input::clip(listen);
                invalid("listen", format!("\"{listen}\" is not an address: {e}"))
            })?;
        }
        config.publish_tiles = file.publish_tiles;
        for (field, text, slot) in [
            ("tiles_listen", &file.tiles_listen, &mut config.tiles_listen),
            ("fhir_listen", &file.fhir_listen, &mut config.fhir_listen),
            ("web_listen", &file.web_listen, &mut config.web_listen),
        ] {
            if let Some(listen) = text {
                *slot = Some(listen.parse().map_err(|e| {
                    let listen = allot_engine::input::clip(listen);
                    invalid(field, format!("\"{listen}\" is not an address: {e}"))
                })?);
            }
        }
        config.signing_key = signing_key(&file, path).map_err(|(s, p)| invalid(s, p))?;
        if let Some(store) = &file.store {
            if !(store.starts_with("postgres://") || store.starts_with("postgresql://")) {
                return Err(invalid(
                    "store",
                    "give a PostgreSQL URL: postgres://USER@HOST:PORT/DATABASE".into(),
                ));
            }
            config.store = Some(store.clone());
        }
        config.advertise = file.advertise.clone();
        if let Some(seconds) = file.lease_seconds {
            if !(0.2..=600.0).contains(&seconds) {
                return Err(invalid(
                    "lease_seconds",
                    format!("{seconds} is outside 0.2 to 600 seconds"),
                ));
            }
            config.lease = Duration::from_secs_f64(seconds);
        }
        for (i, witness) in file.witnesses.iter().enumerate() {
            let at = |field: &str| format!("witness[{i}].{field}");
            let key =
                VerifierKey::parse(&witness.key).map_err(|e| invalid(&at("key"), e.to_string()))?;
            if key.kind() != KeyKind::CosignatureV1 {
                return Err(invalid(
                    &at("key"),
                    "is a log's key (type 1), not a witness's cosigning key (type 4)".into(),
                ));
            }
            if !witness.url.starts_with("http://") && !witness.url.starts_with("https://") {
                return Err(invalid(
                    &at("url"),
                    "must start with http:// or https://".into(),
                ));
            }
            config.witnesses.push(WitnessConfig {
                url: witness.url.clone(),
                key,
            });
        }
        let n = config.witnesses.len();
        config.witness_quorum = match file.witness_quorum {
            Some(k) if k > n || (k == 0 && n > 0) => {
                return Err(invalid(
                    "witness_quorum",
                    format!("must be between 1 and the {n} configured witness(es)"),
                ));
            }
            Some(k) => k,
            None => TrustPolicy::majority(n),
        };
        if n > 0 {
            config.checkpoint_interval = Duration::from_millis(250);
        }
        if let Some(seconds) = file.checkpoint_interval_seconds {
            config.checkpoint_interval = seconds_setting(seconds, 0.01, 86_400.0)
                .map_err(|p| invalid("checkpoint_interval_seconds", p))?;
        }
        let l = &file.limits;
        let limits = &mut config.limits;
        let positive = |v: usize, setting: &str| {
            if v == 0 {
                Err(invalid(setting, "must be at least 1".into()))
            } else {
                Ok(v)
            }
        };
        if let Some(v) = l.max_request_bytes {
            limits.max_request_bytes = positive(v, "limits.max_request_bytes")?;
        }
        if let Some(v) = l.max_response_bytes {
            limits.max_response_bytes = positive(v, "limits.max_response_bytes")?;
        }
        if let Some(v) = l.max_concurrent_calls {
            limits.max_concurrent_calls = positive(v, "limits.max_concurrent_calls")?;
        }
        if let Some(v) = l.max_streams_per_connection {
            limits.max_streams_per_connection =
                positive(v as usize, "limits.max_streams_per_connection")? as u32;
        }
        if let Some(v) = l.max_connections {
            limits.max_connections = positive(v, "limits.max_connections")?;
        }
        if let Some(v) = l.handshake_timeout_seconds {
            limits.handshake_timeout = seconds_setting(v, 0.001, 3600.0)
                .map_err(|p| invalid("limits.handshake_timeout_seconds", p))?;
        }
        if let Some(v) = l.max_upload_bytes {
            limits.max_upload_bytes = positive(v, "limits.max_upload_bytes")?;
        }
        if let Some(v) = l.max_window_items {
            limits.max_window_items = positive(v, "limits.max_window_items")? as u64;
        }
        if let Some(v) = l.shutdown_grace_seconds {
            limits.shutdown_grace = seconds_setting(v, 0.0, 3600.0)
                .map_err(|p| invalid("limits.shutdown_grace_seconds", p))?;
        }
        if let Some(v) = l.max_call_seconds {
            limits.max_call = Some(
                seconds_setting(v, 0.001, 86_400.0)
                    .map_err(|p| invalid("limits.max_call_seconds", p))?,
            );
        }
        if let Some(tls) = &file.tls {
            let base = path.parent().unwrap_or(Path::new("."));
            let read = |file: &Path, setting: &str| {
                let full = base.join(file);
                std::fs::read(&full)
                    .map_err(|e| invalid(setting, format!("reading {}: {e}", full.display())))
            };
            config.tls = Some(TlsIdentity {
                cert_pem: read(&tls.cert, "tls.cert")?,
                key_pem: read(&tls.key, "tls.key")?,
            });
        }
        for (i, token) in file.tokens.iter().enumerate() {
            let at = |field: &str| format!("token[{i}].{field}");
            if token.name.is_empty()
                || token.name.len() > 128
                || token.name.contains(char::is_control)
            {
                return Err(invalid(
                    &at("name"),
                    "must be 1 to 128 bytes without control characters".into(),
                ));
            }
            let mut roles = Roles::NONE;
            for (j, role) in token.roles.iter().enumerate() {
                let role: Role = role.parse().map_err(|e: super::access::UnknownRole| {
                    invalid(&format!("{}[{j}]", at("roles")), e.to_string())
                })?;
                roles = roles.iter().chain([role]).collect();
            }
            if roles == Roles::NONE {
                return Err(invalid(&at("roles"), "lists no role".into()));
            }
            let hash = parse_hash(&token.sha256).map_err(|p| invalid(&at("sha256"), p))?;
            let caller = Caller {
                name: token.name.clone(),
                roles,
            };
            if !config.tokens.insert(hash, caller) {
                return Err(invalid(
                    &at("sha256"),
                    "the same token is listed twice".into(),
                ));
            }
        }
        Ok(config)
    }
}

fn seconds_setting(seconds: f64, min: f64, max: f64) -> Result<Duration, String> {
    if !seconds.is_finite() || seconds < min || seconds > max {
        return Err(format!("{seconds} is outside {min} to {max} seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(text).map_err(|_| {
        format!(
            "\"{}\" is not hex (expected the 64 hex digits of a SHA-256)",
            allot_engine::input::clip(text)
        )
    })?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("is {} bytes; a SHA-256 is 32 (64 hex digits)", b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, String> {
        ServerConfig::parse(text, Path::new("allot.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_file() {
        let token = "allot_test";
        let text = format!(
            "listen = \"0.0.0.0:7000\"\ncheckpoint_interval_seconds = 0.5\n\
             [limits]\nmax_concurrent_calls = 8\nmax_call_seconds = 2.5\n\n{}",
            token_config_lines(
                token,
                "umias",
                Roles::of(&[Role::ClinicSystem, Role::Auditor])
            )
        );
        let config = parse(&text).unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:7000");
        assert_eq!(config.checkpoint_interval, Duration::from_millis(500));
        assert_eq!(config.limits.max_concurrent_calls, 8);
        assert_eq!(config.limits.max_call, Some(Duration::from_millis(2500)));
        assert_eq!(config.limits.max_request_bytes, 4 << 20);
        let caller = config.tokens.lookup(token).unwrap();
        assert_eq!(caller.name, "umias");
        assert_eq!(caller.roles.to_string(), "clinic-system, auditor");
        assert!(config.tokens.lookup("allot_other").is_none());
    }

    #[test]
    fn errors_name_the_file_and_setting() {
        let hash = "ab".repeat(32);
        check(
            &format!("[[token]]\nname = \"a\"\nroles = [\"root\"]\nsha256 = \"{hash}\"\n"),
            "allot.toml: token[0].roles[0]: unknown role \"root\": the roles are clinic-system, \
             fair-admin, school-admin, planner, auditor",
        );
        check(
            "[[token]]\nname = \"a\"\nroles = [\"planner\"]\nsha256 = \"abc\"\n",
            "allot.toml: token[0].sha256: \"abc\" is not hex (expected the 64 hex digits of a SHA-256)",
        );
        check(
            &format!(
                "[[token]]\nname = \"a\"\nroles = [\"planner\"]\nsha256 = \"{hash}\"\n\
                 [[token]]\nname = \"b\"\nroles = [\"auditor\"]\nsha256 = \"{hash}\"\n"
            ),
            "allot.toml: token[1].sha256: the same token is listed twice",
        );
        check(
            &format!("[[token]]\nname = \"a\"\nroles = []\nsha256 = \"{hash}\"\n"),
            "allot.toml: token[0].roles: lists no role",
        );
        check(
            "[limits]\nmax_concurrent_calls = 0\n",
            "allot.toml: limits.max_concurrent_calls: must be at least 1",
        );
        check(
            "listen = \"nowhere\"\n",
            "allot.toml: listen: \"nowhere\" is not an address: invalid socket address syntax",
        );
        let unknown = parse("[limits]\nmax_calls = 3\n").unwrap_err();
        assert!(
            unknown.starts_with("allot.toml:2:1: unknown field `max_calls`")
                && unknown.contains("max_calls"),
            "{unknown}"
        );

        fn check(text: &str, expect: &str) {
            assert_eq!(parse(text).unwrap_err(), expect);
        }
    }

    #[test]
    fn tls_files_are_read_relative_to_the_configuration() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::create_dir(dir.path().join("tls")).unwrap();
        std::fs::write(dir.path().join("tls/server.pem"), "CERT").unwrap();
        std::fs::write(dir.path().join("tls/server.key"), "KEY").unwrap();
        let path = dir.path().join("allot.toml");
        std::fs::write(
            &path,
            "[tls]\ncert = \"tls/server.pem\"\nkey = \"tls/server.key\"\n",
        )
        .unwrap();
        let tls = ServerConfig::load(&path).unwrap().tls.unwrap();
        assert_eq!(
            (&tls.cert_pem[..], &tls.key_pem[..]),
            (&b"CERT"[..], &b"KEY"[..])
        );
        std::fs::write(
            &path,
            "[tls]\ncert = \"tls/server.pem\"\nkey = \"nope.key\"\n",
        )
        .unwrap();
        let err = ServerConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("allot.toml: tls.key: reading ") && err.contains("nope.key"),
            "{err}"
        );
        let missing = ServerConfig::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(missing.to_string().starts_with("reading "), "{missing}");
    }

    #[test]
    fn minted_tokens_are_distinct_and_hash_as_configured() {
        let a = mint_token().unwrap();
        let b = mint_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("allot_") && a.len() == 6 + 43, "{a}");
        let lines = token_config_lines(&a, "x", Roles::of(&[Role::Planner]));
        let config = parse(&lines).unwrap();
        assert_eq!(
            config.tokens.lookup(&a).unwrap().roles,
            Roles::of(&[Role::Planner])
        );
        // The hash is SHA-256 of the token text, as documented.
        let expected = hex::encode(Sha256::digest(a.as_bytes()));
        assert!(lines.contains(&expected));
    }
}
