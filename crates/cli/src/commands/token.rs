//! `tidewatch token`: API tokens for `tidewatch serve`.

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use tidewatch_engine::datadir::DEFAULT_DATA_DIR;
use tidewatch_server::tokens::{create_token, Role, TOKENS_FILE};

#[derive(clap::Subcommand)]
pub enum TokenCmd {
    /// Create a token and print it (the only time it is shown; only its hash is stored).
    Create {
        /// `read` (every GET) or `admin` (also feed changes and ingest).
        #[arg(long)]
        role: String,
        /// The data directory the server uses.
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
}

pub fn run(cmd: TokenCmd) -> Result<ExitCode> {
    match cmd {
        TokenCmd::Create { role, data } => {
            let Some(role) = Role::parse(&role) else {
                bail!("unknown role {role:?}; expected read or admin");
            };
            let (token, entry) = create_token(&data, role)?;
            println!("{token}");
            eprintln!(
                "{} token {} created; its hash is in {} — keep the token now, it is not shown again",
                role.as_str(),
                entry.id,
                data.join(TOKENS_FILE).display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
