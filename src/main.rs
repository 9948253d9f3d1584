use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Landlord gives every tenant of a database-per-tenant SaaS its own PostgreSQL database and installs,
/// upgrades and removes feature modules in it, driven by the Tenant, ModuleInstallation and ModuleRollout resources.
#[derive(Parser)]
#[command(name = "landlord", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: watch Tenants, ModuleInstallations and ModuleRollouts and reconcile databases to
    /// match them.
    ///
    /// Configured by the environment: LANDLORD_ADMIN_DATABASE_URL, LANDLORD_DATABASE_URL, LANDLORD_MODULES_DIR,
    /// LANDLORD_MIGRATIONS_DIR, LANDLORD_WATCH_NAMESPACE, LANDLORD_ENVIRONMENT, LANDLORD_MAX_DB_CONNECTIONS,
    /// LANDLORD_CONCURRENCY, LANDLORD_LOCK_TIMEOUT, LANDLORD_STATEMENT_TIMEOUT, RUST_LOG.
    Run,
    /// Print the CustomResourceDefinitions as YAML (what `crds/` holds): `landlord crds | kubectl apply -f -`.
    Crds,
    /// Work with the module catalog.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Validate a modules directory against the core migrations; print every problem with its file and reason.
    ///
    /// Exits non-zero when there is a problem, so it can guard a module author's pull request.
    Check {
        /// The modules directory [default: LANDLORD_MODULES_DIR, else ./modules].
        dir: Option<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds => print_crds(),
        Command::Run => run_operator(),
        Command::Catalog {
            command: CatalogCommand::Check { dir },
        } => return check_catalog(dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("landlord: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_operator() -> anyhow::Result<()> {
    landlord::telemetry::init();
    let config = landlord::config::Config::from_env()?;
    tracing::info!(?config, "starting landlord");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(landlord::controller::run(config))
}

fn print_crds() -> anyhow::Result<()> {
    print!("{}", landlord::crd::crds_yaml()?);
    Ok(())
}

/// Problems are the expected output here, not an error of the command: print them and exit 1.
fn check_catalog(dir: Option<std::path::PathBuf>) -> ExitCode {
    let (modules_dir, migrations_dir) = landlord::catalog::check_dirs(dir);
    let report = landlord::catalog::check(&modules_dir, &migrations_dir);
    print!("{report}");
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
