//! Command line: `serve` (default), `create-admin`, `rebuild`, `backup`, `restore`, `relay`, `audit verify`,
//! `jobs list`, `jobs run NAME [--at RFC3339]`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use domain::user::{NewUser, Role};
use domain::values::{text, PhoneNumber};

use crate::app::jobs::{Job, RunResult};
use crate::config::Settings;
use crate::runner::{catch_up, LeaderLock, ProjectionWaiter, REBUILD_BATCH};
use crate::startup::{Application, Stores};
use crate::state::{AppState, RequestMeta};

#[derive(Debug, Parser)]
#[command(name = "carelog", version, about = "Home-care recording backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Create an administrator (prompts for what is missing in a terminal).
    CreateAdmin {
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Rebuild read models from the events: all, or the one named.
    Rebuild { projection: Option<String> },
    /// Write the whole event-store database to FILE (safe while servers run).
    Backup { file: std::path::PathBuf },
    /// Load a backup into an empty event store, then rebuild the read models.
    Restore {
        file: std::path::PathBuf,
        /// Embedded store only: replace a store that holds events (kept aside).
        #[arg(long)]
        force: bool,
    },
    /// Audit tools.
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Run the Kafka relay alone (scale-out), or re-publish history from a position.
    Relay {
        /// Publish every event from this global position to the current head,
        /// once, without moving the relay's checkpoint; then exit.
        #[arg(long)]
        from_position: Option<i64>,
    },
    /// Scheduled jobs: list them, or run one period by hand.
    Jobs {
        #[command(subcommand)]
        action: JobsCommand,
    },
    /// Benchmark tools (see docs/performance.md).
    Bench {
        #[command(subcommand)]
        action: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write a realistic history of N patients (households of two,
    /// subscriptions, today's visits, records) through the event store. Read
    /// models follow when a server runs, or with `carelog rebuild`.
    Seed {
        #[arg(long)]
        patients: u64,
        /// Recorders to assign them to (default: one per 200 patients).
        #[arg(long)]
        recorders: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Each job, its schedule (cron, in CARELOG_TIMEZONE) and its last run.
    List,
    /// Runs one job for the period of an instant (default now), as if at that
    /// instant; a period that ran already is reported and left alone.
    Run {
        name: String,
        /// RFC 3339 instant, e.g. 2026-12-03T20:00:00+08:00.
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the events' hash chain: exit 0 when intact, 1 naming the
    /// first broken event's position otherwise.
    Verify,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::CreateAdmin {
            username,
            password,
            name,
            phone,
        } => create_admin(settings, username, password, name, phone).await,
        Command::Rebuild { projection } => rebuild(settings, projection).await,
        Command::Relay { from_position } => relay(settings, from_position).await,
        Command::Bench {
            action: BenchCommand::Seed { patients, recorders },
        } => bench_seed(settings, patients, recorders).await,
        Command::Audit {
            action: AuditCommand::Verify,
        } => audit_verify(settings).await,
        Command::Jobs {
            action: JobsCommand::List,
        } => jobs_list(settings).await,
        Command::Jobs {
            action: JobsCommand::Run { name, at },
        } => jobs_run(settings, &name, at.as_deref()).await,
        Command::Backup { file } => crate::backup::backup(&settings, &file).await,
        Command::Restore { file, force } => crate::backup::restore(&settings, &file, force).await,
    }
}

async fn audit_verify(settings: Settings) -> anyhow::Result<()> {
    let stores = Stores::open(&settings, false).await?;
    let v = crate::audit::verify(&stores.store).await?;
    if let Some((position, why)) = &v.broken {
        // On both streams: scripts read stdout, people read stderr.
        let report = format!(
            "audit verify: BROKEN at position {position}: {why}\naudit verify: {} events before it verified",
            v.verified
        );
        println!("{report}");
        eprintln!("{report}");
        std::process::exit(1);
    }
    println!(
        "audit verify: ok, {} events verified; chain head at position {}: {}",
        v.verified, v.head.0, v.head.1
    );
    if v.unsealed > 0 {
        println!(
            "audit verify: {} newer events are not sealed yet (the sealer runs in `carelog serve`; \
             run verify again once a server has been up, hashes are never removed)",
            v.unsealed
        );
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let embedded = settings.stores.event_store_url.is_none();
    let app = Application::build(settings.clone()).await?;
    let url = format!("http://{}:{}", settings.http.bind.ip(), app.port());
    println!("carelog listening on {url}  (API under {url}/api/v1, docs at {url}/api/docs/)");
    if embedded {
        println!("embedded mode: data in {}", settings.stores.data_dir.display());
        println!(
            "create the first admin with: carelog create-admin --username admin --name 管理员 --phone 13800000000"
        );
    }
    app.run_until_stopped().await?;
    Ok(())
}

fn prompt(label: &str, given: Option<String>, secret: bool) -> anyhow::Result<String> {
    if let Some(v) = given.filter(|v| !v.trim().is_empty()) {
        return Ok(v);
    }
    if !std::io::stdin().is_terminal() {
        bail!("--{label} is required");
    }
    if secret {
        return rpassword::prompt_password(format!("{label}: ")).context("cannot read password");
    }
    print!("{label}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// An `AppState` for one-shot commands: no HTTP, no waiting for projectors.
async fn cli_state(settings: &Settings) -> anyhow::Result<AppState> {
    let stores = Stores::open(settings, false).await?;
    let waiter = ProjectionWaiter::detached(stores.read.clone());
    crate::startup::app_state(stores.store, stores.read, settings, waiter, None)
}

async fn create_admin(
    settings: Settings,
    username: Option<String>,
    password: Option<String>,
    name: Option<String>,
    phone: Option<String>,
) -> anyhow::Result<()> {
    let username = prompt("username", username, false)?;
    let password = prompt("password", password, true)?;
    let name = prompt("name", name, false)?;
    let phone = prompt("phone", phone, false)?;
    let mut v = domain::Validator::new();
    let phone = v.check("phone", PhoneNumber::parse(&phone));
    let name = v.check("name", text(&name, 50));
    let username = v.check("username", text(&username, 64));
    let password = crate::app::users::validate_password(&mut v, Some(&password));
    if let Err(domain::Invalid(fields)) = v.finish() {
        let list: Vec<String> = fields.iter().map(|(k, r)| format!("{k}: {r}")).collect();
        bail!("invalid input: {}", list.join("; "));
    }
    let (Some(phone), Some(name), Some(username), Some(password)) = (phone, name, username, password) else {
        bail!("invalid input");
    };
    let state = cli_state(&settings).await?;
    let user = NewUser {
        username: username.clone(),
        phone,
        password_hash: String::new(),
        role: Role::Admin,
        name,
        avatar: None,
        recorder: None,
        doctor: None,
    };
    let id = crate::app::users::create(&state, user, &password, RequestMeta::system("CreateAdmin"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    project_now(&state).await?;
    println!("admin {username} created with id {id}");
    Ok(())
}

/// Brings the read models up to date when no server is doing it.
async fn project_now(state: &AppState) -> anyhow::Result<()> {
    if let Some(_lock) = LeaderLock::try_acquire(&state.store, "projectors").await? {
        let projectors = projections::all_projectors();
        state.read_now().init_checkpoints(&projectors).await?;
        catch_up(&state.store, state.read_now(), &projectors, REBUILD_BATCH, &|_| async {
        })
        .await?;
    }
    Ok(())
}

async fn jobs_list(settings: Settings) -> anyhow::Result<()> {
    let state = cli_state(&settings).await?;
    project_now(&state).await?;
    let runs = state.read_now().jobs().latest_runs().await?;
    let tz = settings.field_work.timezone;
    println!("{:<20} {:<14} {:<12} last run", "job", "schedule", "period");
    for job in Job::ALL {
        let (period, last) = match runs.iter().find(|r| r.job == job.name()) {
            Some(r) => (r.period.clone(), format!("{} ({})", r.recorded_at, r.summary)),
            None => ("-".into(), "never".into()),
        };
        println!("{:<20} {:<14} {:<12} {last}", job.name(), job.schedule(), period);
    }
    println!("schedules are in {tz}");
    Ok(())
}

async fn jobs_run(settings: Settings, name: &str, at: Option<&str>) -> anyhow::Result<()> {
    let job: Job = name.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let at = match at {
        Some(raw) => chrono::DateTime::parse_from_rfc3339(raw)
            .with_context(|| format!("--at {raw:?} is not an RFC 3339 instant"))?
            .to_utc(),
        None => chrono::Utc::now(),
    };
    let state = cli_state(&settings).await?;
    // The jobs read the read models: bring them up to date first when no
    // server does it, and again after, so the run's effects show.
    project_now(&state).await?;
    let result = crate::app::jobs::run(&state, job, at).await?;
    project_now(&state).await?;
    match result {
        RunResult::Ran { period, summary } => println!("{job} ran for {period}: {summary}"),
        RunResult::AlreadyRan { period } => println!("{job} already ran for {period}; nothing done"),
    }
    Ok(())
}

async fn rebuild(settings: Settings, name: Option<String>) -> anyhow::Result<()> {
    let state = cli_state(&settings).await?;
    let all = projections::all_projectors();
    let chosen: Vec<_> = match &name {
        None => all.clone(),
        Some(n) => all.iter().filter(|p| p.name() == n).cloned().collect(),
    };
    if chosen.is_empty() {
        let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
        bail!(
            "unknown projection {:?}; known: {}",
            name.unwrap_or_default(),
            names.join(", ")
        );
    }
    state.read_now().init_checkpoints(&all).await?;
    // Built beside the live read models and switched in atomically: a
    // running server keeps answering (and following) throughout.
    let done = crate::runner::rebuild_beside(&state.store, state.read_now(), &chosen).await?;
    let secs = done.elapsed.as_secs_f64();
    for p in &chosen {
        println!("rebuilt {} up to position {}", p.name(), done.position);
    }
    println!(
        "{} events replayed into {} read models in {secs:.1} s ({:.0} events/s), switched in without downtime",
        done.events,
        chosen.len(),
        done.events as f64 / secs.max(1e-9)
    );
    Ok(())
}

async fn bench_seed(settings: Settings, patients: u64, recorders: Option<u64>) -> anyhow::Result<()> {
    let state = cli_state(&settings).await?;
    let done = crate::seed::seed(&state, crate::seed::SeedOptions { patients, recorders }).await?;
    let secs = done.elapsed.as_secs_f64();
    println!(
        "seeded {} patients in {} households with {} recorders: {} events in {secs:.1} s ({:.0} events/s)",
        done.patients,
        done.families,
        done.recorders,
        done.events,
        done.events as f64 / secs.max(1e-9)
    );
    println!(
        "recorders sign in as {} … with password {}; read models follow a running server, or run `carelog rebuild`",
        done.first_recorder,
        crate::seed::SEED_PASSWORD
    );
    Ok(())
}

async fn relay(settings: Settings, from: Option<i64>) -> anyhow::Result<()> {
    let Some(config) = settings.relay_config()? else {
        bail!("CARELOG_KAFKA_BROKERS is not set");
    };
    let stores = Stores::open(&settings, false).await?;
    match from {
        Some(position) => {
            let n = crate::relay::republish(&stores.store, &config, position).await?;
            println!("re-published {n} events from position {position}");
            Ok(())
        }
        None => {
            let (_handle, task) = crate::relay::start(stores.store, config)?;
            println!("relay running; stop with Ctrl-C");
            tokio::select! {
                _ = task => Ok(()),
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
    }
}
