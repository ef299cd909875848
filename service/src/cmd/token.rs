//! `allot token new`: mint a bearer token for a client of `allot serve`.

use std::io::Write as _;
use std::path::PathBuf;

use allot_service::server::access::{Role, Roles};
use allot_service::server::config::{mint_token, token_config_lines};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
#[command(about = "Mint bearer tokens for clients of `allot serve`")]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Mint a random token and print it with the `[[token]]` lines for the server's
    /// configuration file, which store only the token's SHA-256.
    ///
    /// The roles: clinic-system (appointments), fair-admin (fair stalls), school-admin (school
    /// seats), planner (scenarios), auditor (the decision log, outcomes, verification).
    New {
        /// A role the token grants (repeat for several).
        #[arg(long = "role", value_name = "ROLE", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// The client's name, recorded as the actor of the decisions it asks for
        /// (default: the roles joined with `+`).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Append the `[[token]]` lines to this configuration file (created if missing) and print
        /// only the token.
        #[arg(long, value_name = "FILE")]
        append_to: Option<PathBuf>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
        .map_err(|e: allot_service::server::access::UnknownRole| e.to_string())
}

pub fn run(args: TokenArgs) -> Result<()> {
    match args.command {
        TokenCommand::New {
            roles,
            name,
            append_to,
        } => {
            let roles: Roles = roles.into_iter().collect();
            let name =
                name.unwrap_or_else(|| roles.iter().map(Role::name).collect::<Vec<_>>().join("+"));
            if name.is_empty() || name.len() > 128 || name.contains(char::is_control) {
                bail!("--name must be 1 to 128 bytes without control characters");
            }
            let token = mint_token()?;
            let lines = token_config_lines(&token, &name, roles);
            match append_to {
                None => {
                    println!("token: {token}\n");
                    println!(
                        "# Add these lines to the server's configuration file (--config); the \
                         token itself is stored nowhere.\n"
                    );
                    print!("{lines}");
                }
                Some(path) => {
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .with_context(|| format!("opening {}", path.display()))?;
                    file.write_all(format!("\n{lines}").as_bytes())
                        .and_then(|()| file.sync_all())
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("{token}");
                }
            }
            Ok(())
        }
    }
}
