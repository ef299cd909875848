//! The CLI against a running `allot serve`: minted tokens in a configuration file, and the audit
//! commands printing from the server exactly what they print from the data folder.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use allot_engine::log::{Log, LogOptions};

use super::append;

fn allot(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_allot"));
    command
        .args(args)
        .env_remove("ALLOT_SERVER")
        .env_remove("ALLOT_TOKEN");
    command
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Stops the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, config: &Path) -> (Server, String) {
    let mut child = allot(&["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    (Server(child), url)
}

#[test]
fn token_new_prints_the_token_and_its_configuration_lines() {
    let out = stdout(
        &allot(&["token", "new", "--role", "auditor", "--role", "planner"])
            .output()
            .unwrap(),
    );
    let token = out.lines().next().unwrap().strip_prefix("token: ").unwrap();
    assert!(token.starts_with("allot_"));
    let block = &out[out.find("[[token]]").unwrap()..];
    let config = allot_service::server::ServerConfig::parse(block, Path::new("x.toml")).unwrap();
    let caller = config.tokens.lookup(token).unwrap();
    assert_eq!(caller.name, "planner+auditor");
    assert_eq!(caller.roles.to_string(), "planner, auditor");
    assert!(
        !block.contains(token),
        "the configuration holds only the hash"
    );

    let bad = allot(&["token", "new", "--role", "root"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role \"root\""));
}

#[test]
fn audit_commands_print_the_same_from_a_server() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    {
        let log = Log::open(&data, LogOptions::default()).unwrap();
        append(&log, 64);
        log.close().unwrap();
    }
    let config = dir.path().join("allot.toml");
    let mint = |role: &str| {
        let out = stdout(
            &allot(&[
                "token",
                "new",
                "--role",
                role,
                "--name",
                role,
                "--append-to",
            ])
            .arg(&config)
            .output()
            .unwrap(),
        );
        out.trim().to_owned()
    };
    let auditor = mint("auditor");
    let planner = mint("planner");
    let (_server, url) = serve(&data, &config);

    let local = |args: &[&str]| stdout(&allot(args).arg("--data").arg(&data).output().unwrap());
    let remote = |args: &[&str], token: &str| {
        allot(args)
            .args(["--server", &url])
            .env("ALLOT_TOKEN", token)
            .arg("--data")
            .arg(dir.path().join("elsewhere"))
            .output()
            .unwrap()
    };
    for args in [
        &["audit", "show", "5"][..],
        &["audit", "tail", "-n", "4"],
        &["audit", "tail", "-n", "100"],
        &["audit", "export"],
        &["audit", "export", "--from", "10", "--to", "20"],
        &["audit", "pubkey"],
        &["audit", "prove", "7"],
        &["audit", "prove", "63", "--size", "64"],
        &["audit", "consistency", "3", "64"],
        &["audit", "consistency", "64", "64"],
    ] {
        let expect = local(args);
        assert!(!expect.is_empty(), "{args:?}");
        assert_eq!(stdout(&remote(args, &auditor)), expect, "{args:?}");
    }
    // The server signed the checkpoint the folder holds.
    assert_eq!(
        stdout(&remote(&["audit", "checkpoint"], &auditor)),
        local(&["audit", "checkpoint", "--stored"])
    );
    // A proof fetched remotely verifies offline with the folder's key.
    let proof = dir.path().join("proof.txt");
    let saved = remote(
        &["audit", "prove", "11", "--out", proof.to_str().unwrap()],
        &auditor,
    );
    stdout(&saved);
    let verdict = local(&["audit", "verify-proof", proof.to_str().unwrap()]);
    assert!(
        verdict.starts_with("ok: entry 11 is in the log of size 64"),
        "{verdict}"
    );

    let denied = remote(&["audit", "show", "5"], &planner);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("the server answered PERMISSION_DENIED"),
        "{stderr}"
    );
    let missing = remote(&["audit", "show", "64"], &auditor);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains(
            "OUT_OF_RANGE: request.index: entry 64 does not exist: the log has 64 entries"
        ),
        "{stderr}"
    );
    let verify = remote(&["audit", "verify"], &auditor);
    assert!(!verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stderr).contains("run it where the data is"));
    let unreachable = allot(&["audit", "show", "1", "--server", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("connecting to http://127.0.0.1:1")
    );
}

#[test]
fn the_example_configuration_parses_to_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/serve/allot.toml");
    let config = allot_service::server::ServerConfig::load(&path).unwrap();
    let defaults = allot_service::server::ServerConfig::default();
    assert_eq!(config.listen, defaults.listen);
    assert_eq!(config.limits, defaults.limits);
    assert_eq!(config.checkpoint_interval, defaults.checkpoint_interval);
    assert!(config.tokens.is_empty() && config.tls.is_none());
}

/// `allot serve --dev` on an empty folder: its banner, then the address and token in its first
/// two lines.
fn serve_dev(data: &Path) -> (Server, String, String) {
    let mut child = allot(&[
        "serve",
        "--dev",
        "--dev-scale",
        "0.02",
        "--listen",
        "127.0.0.1:0",
    ])
    .arg("--data")
    .arg(data)
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().unwrap().unwrap();
    let token = lines.next().unwrap().unwrap();
    // Read the rest of the banner (the first calls to try) as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));
    (
        Server(child),
        url.strip_prefix("listening on ").unwrap().to_owned(),
        token
            .strip_prefix("development token (all roles): ")
            .unwrap()
            .to_owned(),
    )
}

fn remote(url: &str, token: &str, args: &[&str]) -> String {
    let output = allot(args)
        .args(["--server", url, "--token", token])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "allot {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_cli_books_and_allocates_on_a_dev_server_which_reopens_from_its_log() {
    let dir = tempfile::TempDir::new().unwrap();
    let (server, url, token) = serve_dev(dir.path());
    let found = remote(
        &url,
        &token,
        &[
            "appointments",
            "find",
            "--specialty",
            "therapist",
            "--home",
            "55.75,37.62",
            "--count",
            "2",
        ],
    );
    // `1. DOCTOR@TIME  CLINIC (DISTRICT) SPECIALTY  score ...`
    let slot = found
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let booked = remote(
        &url,
        &token,
        &["appointments", "book", "--patient", "P1", "--slot", &slot],
    );
    let appointment = booked.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(booked.trim(), format!("booked {slot} as {appointment}"));
    let again = allot(&["appointments", "book", "--patient", "P2", "--slot", &slot])
        .args(["--server", &url, "--token", &token])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("ABORTED"), "{stderr}");
    // Hold the second slot and let it go; the patient then comes to the first one.
    let second = found
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let held = remote(
        &url,
        &token,
        &["appointments", "hold", "--patient", "P3", "--slot", &second],
    );
    let hold = held.split_whitespace().nth(3).unwrap().to_owned();
    assert!(held.starts_with(&format!("held {second} as h")), "{held}");
    let released = remote(&url, &token, &["appointments", "release", &hold]);
    assert_eq!(released.trim(), format!("released {hold}"));
    let rebooked = remote(
        &url,
        &token,
        &["appointments", "book", "--patient", "P3", "--slot", &second],
    );
    let visit = rebooked.trim().rsplit(' ').next().unwrap().to_owned();
    let recorded = remote(
        &url,
        &token,
        &[
            "appointments",
            "attendance",
            &visit,
            "--status",
            "fulfilled",
        ],
    );
    assert_eq!(recorded.trim(), format!("recorded {visit}"));
    let shown = remote(&url, &token, &["appointments", "show", &visit]);
    assert!(shown.contains("(fulfilled)"), "{shown}");
    let status = remote(&url, &token, &["appointments", "status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(status["slots"]["busy"].as_u64().unwrap() >= 2, "{status}");

    let run = remote(
        &url,
        &token,
        &[
            "school",
            "run-window",
            "--window",
            "dev-schools",
            "--beacon",
            "00112233445566778899aabbccddeeff",
        ],
    );
    let run_id = run
        .lines()
        .find_map(|l| l.split("run id ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let verified = remote(&url, &token, &["school", "verify", &run_id]);
    assert!(verified.contains("verifies"), "{verified}");

    // Stop (SIGTERM) and start again: the city is reopened from the log, not generated anew.
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut server = server;
    assert!(server.0.wait().unwrap().success());
    let (_server, url, token) = serve_dev(dir.path());
    let shown = remote(&url, &token, &["appointments", "show", &appointment]);
    assert!(shown.contains("(booked)"), "{shown}");
    assert!(shown.contains(&slot), "{shown}");
    let verified = remote(&url, &token, &["school", "verify", &run_id]);
    assert!(verified.contains("verifies"), "{verified}");
}
