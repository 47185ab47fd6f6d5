//! The command line: `serve`, `worker`, `migrate`, `accounts create NAME`,
//! `accounts rename ID NAME`, `accounts budget ID N`, `accounts keys
//! create|list|revoke`, `openapi`.

use crate::config::{DispatchConfig, GlobalConfig, ServeConfig};
use crate::db::{self, DbUrl};
use crate::{startup, telemetry};
use anyhow::Context;
use clap::{Parser, Subcommand};

/// Bulk Invite: invite many people into an account from a file of addresses.
#[derive(Debug, Parser)]
#[command(name = "bulk-invite", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalConfig,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (migrating the database first).
    Serve(Box<ServeConfig>),
    /// Send queued invitations (the dispatcher alone, without the API).
    Worker(Box<DispatchConfig>),
    /// Run the pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Print the OpenAPI document (the committed `openapi/openapi.json`).
    Openapi,
}

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Create an account and print its API key (shown only this once).
    Create {
        /// The account's name, shown in invitation emails.
        name: String,
    },
    /// Change an account's display name (the next emails show it).
    Rename {
        /// The account's id.
        id: String,
        /// The new name, at most 100 characters.
        name: String,
    },
    /// Set an account's daily invitation budget: a number (0: unlimited),
    /// or `default` for the server's ACCOUNT_DAILY_INVITATIONS.
    Budget {
        /// The account's id.
        id: String,
        /// Invitations per 24 hours, or `default`.
        daily_invitations: String,
    },
    /// Make, list and revoke an account's API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// API key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it (shown only this once).
    Create {
        /// The account's id.
        account: String,
        /// What the key is for.
        #[arg(long, default_value = "default")]
        name: String,
        /// Its scopes, comma-separated: read, write, admin.
        #[arg(long, value_delimiter = ',', default_value = "admin")]
        scopes: Vec<String>,
    },
    /// List the account's keys (never their secrets).
    List {
        /// The account's id.
        account: String,
    },
    /// Revoke a key (not the account's last admin key).
    Revoke {
        /// The account's id.
        account: String,
        /// The key's id (from `list`).
        key: String,
    },
}

/// Runs the command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.global.log_format);
    let url = DbUrl::parse(&cli.global.database_url);
    let settings = pool_settings(&cli.global);
    match cli.command {
        Command::Openapi => {
            println!("{}", crate::api::openapi::json()?);
            Ok(())
        }
        Command::Migrate => {
            open(&url, settings)?;
            tracing::info!("migrations are up to date");
            Ok(())
        }
        Command::Accounts {
            command: AccountsCommand::Create { name },
        } => {
            let name = checked_name(&name)?;
            let pool = open(&url, settings)?;
            let key = db::keys::generate();
            let account = db::accounts::create(&mut *pool.get()?, &name, &key)?;
            println!("Created account {} ({}).", account.name, account.id);
            println!("API key (shown only once): {key}");
            Ok(())
        }
        Command::Accounts {
            command: AccountsCommand::Rename { id, name },
        } => {
            let change = db::accounts::AccountChange {
                name: Some(checked_name(&name)?),
                reply_to: None,
            };
            let pool = open(&url, settings)?;
            match db::accounts::update(&mut *pool.get()?, &id, &change)? {
                Some(account) => {
                    println!("Renamed account {} to {}.", account.id, account.name);
                    Ok(())
                }
                None => anyhow::bail!("no account has the id {id}"),
            }
        }
        Command::Accounts {
            command:
                AccountsCommand::Budget {
                    id,
                    daily_invitations,
                },
        } => {
            let budget = match daily_invitations.as_str() {
                "default" => None,
                n => Some(n.parse::<u32>().map_err(|_| {
                    anyhow::anyhow!(
                        "the budget is a number of invitations (0: unlimited) or `default`"
                    )
                })?),
            };
            let pool = open(&url, settings)?;
            if !db::accounts::set_daily_invitations(&mut *pool.get()?, &id, budget.map(i64::from))?
            {
                anyhow::bail!("no account has the id {id}");
            }
            match budget {
                None => println!("Account {id} now has the server's daily invitation budget."),
                Some(0) => println!("Account {id} may now queue unlimited invitations."),
                Some(n) => println!("Account {id} may now queue {n} invitations per 24 hours."),
            }
            Ok(())
        }
        Command::Accounts {
            command: AccountsCommand::Keys { command },
        } => keys(&open(&url, settings)?, command),
        Command::Worker(config) => {
            let pool = open(&url, settings)?;
            let dispatcher = crate::dispatch::Dispatcher::new(pool.clone(), &config)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let (stop, stopped) = tokio::sync::watch::channel(false);
                tokio::spawn(startup::checkpoint_until_stopped(pool, stopped.clone()));
                let task = tokio::spawn(dispatcher.run(stopped));
                wait_for_signal().await?;
                tracing::info!("stopping: finishing the current batch");
                let _ = stop.send(true);
                task.await?;
                Ok(())
            })
        }
        Command::Serve(config) => {
            let pool = open(&url, settings)?;
            let name = config
                .account_name
                .as_deref()
                .or(config.dispatch.product_name.as_deref())
                .unwrap_or(DEFAULT_ACCOUNT_NAME);
            bootstrap(
                &pool,
                &checked_name(name)?,
                config.bootstrap_api_key.as_deref(),
            )?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let reads = db::connect_reads(&url, settings, startup::read_turns(&pool) as u32)
                    .context("cannot open the database")?;
                let app = startup::Application::build_with_reads(*config, pool, reads).await?;
                tracing::info!(address = %app.address(), "listening");
                app.run_until_stopped().await
            })
        }
    }
}

/// `accounts keys …`.
fn keys(pool: &db::Pool, command: KeysCommand) -> anyhow::Result<()> {
    use crate::db::keys::{self, Revoked};
    use crate::domain::{Scope, Scopes};
    let mut conn = pool.get()?;
    let known = |account: &str, conn: &mut db::DbConnection| -> anyhow::Result<()> {
        match db::accounts::find(conn, account)? {
            Some(_) => Ok(()),
            None => anyhow::bail!("no account has the id {account}"),
        }
    };
    match command {
        KeysCommand::Create {
            account,
            name,
            scopes,
        } => {
            known(&account, &mut conn)?;
            let name = crate::domain::DisplayName::parse(&name)
                .map_err(|e| anyhow::anyhow!("the key name {e}"))?;
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s.trim())
                        .ok_or_else(|| anyhow::anyhow!("unknown scope {s:?}: read, write or admin"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let scopes = Scopes::new(scopes).context("give at least one scope")?;
            let created = keys::create(&mut conn, &account, name.as_str(), &scopes)?;
            println!(
                "Created key {} ({}, {}).",
                created.key.id, created.key.name, created.key.scopes
            );
            println!("API key (shown only once): {}", created.secret);
        }
        KeysCommand::List { account } => {
            known(&account, &mut conn)?;
            for key in keys::list(&mut conn, &account)? {
                let last_used = key
                    .last_used_at
                    .map_or("never used".to_owned(), |t| format!("last used {t}"));
                println!(
                    "{}  {}…  {}  [{}]  created {}, {last_used}",
                    key.id,
                    key.prefix.as_deref().unwrap_or("(no prefix)"),
                    key.name,
                    key.scopes,
                    key.created_at
                );
            }
        }
        KeysCommand::Revoke { account, key } => match keys::revoke(&mut conn, &account, &key)? {
            Revoked::Done { .. } => {
                println!(
                    "Revoked key {key}; running servers refuse it within {} seconds.",
                    crate::api::auth::KEY_CACHE_SECS
                );
            }
            Revoked::NotFound => anyhow::bail!("account {account} has no key {key}"),
            Revoked::LastAdmin => {
                anyhow::bail!("key {key} is the account's last admin key; create another first")
            }
        },
    }
    Ok(())
}

/// Waits for SIGTERM or SIGINT.
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        result = tokio::signal::ctrl_c() => result?,
    }
    Ok(())
}

/// The pool's size and time limits from the command line.
fn pool_settings(global: &GlobalConfig) -> db::PoolSettings {
    let secs = std::time::Duration::from_secs;
    db::PoolSettings {
        max_size: global.database_pool_size,
        timeout: secs(global.database_pool_timeout_secs.max(1)),
        statement_timeout: match global.database_statement_timeout_secs {
            0 => None,
            n => Some(secs(n)),
        },
        wal_limit_bytes: global.sqlite_wal_limit_mb.saturating_mul(1024 * 1024),
    }
}

/// Connects and migrates.
fn open(url: &DbUrl, settings: db::PoolSettings) -> anyhow::Result<db::Pool> {
    let pool = db::connect_with(url, settings).context("cannot open the database")?;
    db::migrate(&mut *pool.get()?)?;
    Ok(pool)
}

/// The first account's name when neither `BULK_INVITE_ACCOUNT_NAME` nor
/// `PRODUCT_NAME` gives one.
pub const DEFAULT_ACCOUNT_NAME: &str = "Bulk Invite";

/// An account name as stored, or why it cannot be one.
fn checked_name(name: &str) -> anyhow::Result<String> {
    crate::domain::DisplayName::parse(name)
        .map(crate::domain::DisplayName::into_string)
        .map_err(|e| anyhow::anyhow!("the account name {e}"))
}

/// On an empty database, creates the first account, named `name`, and
/// prints its key once.
fn bootstrap(pool: &db::Pool, name: &str, key: Option<&str>) -> anyhow::Result<()> {
    let mut conn = pool.get()?;
    if !db::accounts::is_empty(&mut conn)? {
        return Ok(());
    }
    let generated;
    let key = match key {
        Some(key) => key,
        None => {
            generated = db::keys::generate();
            &generated
        }
    };
    let account = db::accounts::create(&mut conn, name, key)?;
    println!("Created the account {} ({}).", account.name, account.id);
    println!("Its API key (shown only once): {key}");
    Ok(())
}
