//! `allot store migrate`: a data folder's log into PostgreSQL, and back.

use std::path::Path;

use allot_engine::log::migrate::{self, Migrated};
use allot_engine::log::postgres::PgStore;
use allot_service::progress::Progress;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
#[command(about = "Move the decision log between a data folder and a PostgreSQL store")]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy the log of the data folder (--data) into the PostgreSQL database TO, with its blobs,
    /// or with --back the database's log into the data folder (which needs the log's signing
    /// key, --signing-key). Every entry is checked against the chain as it is read, the tree
    /// rebuilt from the leaves must give the source's root and signed checkpoint, and the
    /// target's chain is read back. The target must be empty or hold a prefix of the source's
    /// log (an interrupted migration resumes). Prints one JSON line of what was copied.
    Migrate {
        #[arg(value_name = "postgres://USER@HOST:PORT/DB")]
        to: String,
        /// From the database into the data folder.
        #[arg(long)]
        back: bool,
    },
}

pub fn run(args: StoreArgs, data: &Path, remote: &super::api::RemoteArgs) -> Result<()> {
    let StoreCommand::Migrate { to, back } = args.command;
    let store = PgStore::connect(&to).context("connecting to the store")?;
    let bar = Progress::counting("entries");
    let mut progress = |done, total| bar.set(done, total, String::new());
    let migrated: Migrated = if back {
        let Some(path) = remote.signing_key.as_deref() else {
            bail!("--back needs the log's signing key: give --signing-key FILE");
        };
        let key = allot_service::keys::read_signing_key(path)?;
        migrate::store_to_folder(&store, data, key, &mut progress)?
    } else {
        migrate::folder_to_store(data, &store, &mut progress)?
    };
    drop(bar);
    println!("{}", migrated.to_json());
    Ok(())
}
