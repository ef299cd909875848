//! PostgreSQL for the tests: `.ci/postgres start` makes a throwaway cluster and exports
//! `ALLOT_TEST_POSTGRES`; [`database`] gives each test a fresh database in it. With
//! `ALLOT_REQUIRE_POSTGRES=1` (set by `.ci/run`) a missing cluster fails the test instead of
//! skipping it.

use std::sync::atomic::{AtomicU32, Ordering};

/// The cluster's connection string (its `postgres` database).
pub const URL_VAR: &str = "ALLOT_TEST_POSTGRES";

/// The cluster's URL, or `None` after saying the test is skipped (a panic with
/// `ALLOT_REQUIRE_POSTGRES=1`).
pub fn cluster() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("ALLOT_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!(
                    "ALLOT_REQUIRE_POSTGRES=1 but {URL_VAR} is not set: start a cluster with \
                     `eval \"$(.ci/postgres start)\"`"
                );
            }
            eprintln!(
                "SKIPPED: no PostgreSQL ({URL_VAR} unset; `eval \"$(.ci/postgres start)\"` makes \
                 one); set ALLOT_REQUIRE_POSTGRES=1 to make this fail"
            );
            None
        }
    }
}

/// A new, empty database named after `test` in the test cluster; its connection string.
pub fn database(test: &str) -> Option<String> {
    Some(database_in(&cluster()?, test))
}

/// A new, empty database named after `test` in the cluster at `url`; its connection string.
pub fn database_in(url: &str, test: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let clean: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    let name = format!(
        "t_{clean}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("connecting to the test cluster {url}: {e}"));
    // One statement each (a multi-statement query is one transaction, which CREATE DATABASE
    // refuses); concurrent creations from template0 do not conflict.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name} TEMPLATE template0"),
    ] {
        admin.batch_execute(&sql).unwrap_or_else(|e| {
            let why = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned());
            panic!("{sql}: {why}")
        });
    }
    with_database(url, &name)
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
