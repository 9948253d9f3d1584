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
    /// Configured by the environment (docs/operations.md explains each): LANDLORD_ADMIN_DATABASE_URL,
    /// LANDLORD_DATABASE_URL, LANDLORD_MODULES_DIR, LANDLORD_MIGRATIONS_DIR, LANDLORD_WATCH_NAMESPACE,
    /// LANDLORD_ENVIRONMENT, LANDLORD_MAX_DB_CONNECTIONS, LANDLORD_CONCURRENCY, LANDLORD_LOCK_TIMEOUT,
    /// LANDLORD_STATEMENT_TIMEOUT, LANDLORD_TENANT_TEMPLATE, LANDLORD_DRIFT_INTERVAL,
    /// LANDLORD_DRIFT_SESSIONS_PER_SECOND, LANDLORD_HTTP_ADDR, LANDLORD_LEASE_NAMESPACE,
    /// LANDLORD_LEASE_DURATION_SECONDS, POD_NAME, POD_NAMESPACE, LANDLORD_LOG_FORMAT, RUST_LOG.
    Run,
    /// Print the CustomResourceDefinitions as YAML (what `crds/` holds): `landlord crds | kubectl apply -f -`.
    Crds,
    /// Print the API reference of every kind and field as Markdown, generated from the CRDs (what
    /// docs/api.md holds): `landlord api-reference > docs/api.md`.
    ApiReference,
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
    /// Prove that the catalog's migrations run and that every down migration undoes its up.
    ///
    /// In scratch databases it creates on the server of --database-url (named landlord_test_*, always
    /// dropped), applies the core migrations, then every release of every module (dependencies first)
    /// up, down and up again, comparing the schema after each down with the schema before the up. Prints
    /// every problem as `<file>: <reason>` and exits 1 if there is one; exits 2 when it cannot do its work
    /// (the server, the URL, an extension). Core migrations come from LANDLORD_MIGRATIONS_DIR (else
    /// ./migrations).
    Test {
        /// The modules directory [default: LANDLORD_MODULES_DIR, else ./modules].
        dir: Option<std::path::PathBuf>,
        /// A PostgreSQL server where the URL's role may create databases (CREATEDB); nothing else on it
        /// is touched.
        #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// An extension to create in the scratch tenant databases first, as a Tenant's spec.extensions
        /// would (repeat for more).
        #[arg(long = "extension", value_name = "NAME")]
        extensions: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds => print_crds(),
        Command::ApiReference => print_api_reference(),
        Command::Run => run_operator(),
        Command::Catalog {
            command: CatalogCommand::Check { dir },
        } => return check_catalog(dir),
        Command::Catalog {
            command:
                CatalogCommand::Test {
                    dir,
                    database_url,
                    extensions,
                },
        } => return test_catalog(dir, &database_url, &extensions),
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

fn print_api_reference() -> anyhow::Result<()> {
    print!("{}", landlord::docs::reference_markdown()?);
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

/// Exit 0 when every migration passed, 1 with problems (the catalog's), 2 when the test could not run.
fn test_catalog(
    dir: Option<std::path::PathBuf>,
    database_url: &str,
    extensions: &[String],
) -> ExitCode {
    const CANNOT_RUN: u8 = 2;
    let started = std::time::Instant::now();
    let (modules_dir, migrations_dir) = landlord::catalog::check_dirs(dir);
    let Ok(catalog) = landlord::catalog::Catalog::load(&modules_dir, &migrations_dir) else {
        // Untestable as it stands: the same verdict as `catalog check`.
        print!(
            "{}",
            landlord::catalog::check(&modules_dir, &migrations_dir)
        );
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("landlord: catalog test: cannot start the async runtime: {err}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    let findings = runtime.block_on(landlord::testbed::test_catalog(
        &catalog,
        database_url,
        extensions,
    ));
    match findings {
        Ok(findings) => {
            let modules: Vec<&str> = catalog.modules.keys().map(String::as_str).collect();
            let cwd = std::env::current_dir().ok();
            let report = findings.report(&modules, started.elapsed(), cwd.as_deref());
            print!("{report}");
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        // The messages name their causes already: no chain.
        Err(err) => {
            eprintln!("landlord: catalog test: {err}");
            ExitCode::from(CANNOT_RUN)
        }
    }
}
