//! Operator configuration from the environment (names fixed by DESIGN.md).

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

use crate::catalog::parse_duration;
use crate::db::Timeouts;
use crate::db::mirror::MovePhase;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    Production,
    /// Anything else (development, staging, test): destructive actions are allowed when asked for.
    Other(String),
}

const DRIFT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
const MOVE_GRACE_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);

/// Everything `landlord run` reads from its environment. Database URLs carry passwords: `Debug` hides them.
#[derive(Clone)]
pub struct Config {
    pub admin_database_url: String,
    pub database_url: String,
    pub modules_dir: PathBuf,
    pub migrations_dir: PathBuf,
    pub watch_namespace: Option<String>,
    pub environment: Environment,
    pub max_db_connections: usize,
    pub concurrency: u16,
    /// `/healthz`, `/readyz`, `/metrics` (LANDLORD_HTTP_ADDR, default 0.0.0.0:8080).
    pub http_addr: SocketAddr,
    /// Where the leader Lease `landlord` lives: LANDLORD_LEASE_NAMESPACE, else POD_NAMESPACE, else the
    /// watched namespace, else `default`.
    pub lease_namespace: String,
    /// This replica's name in the Lease: POD_NAME, else hostname and pid.
    pub identity: String,
    /// How long a Lease stays valid without renewal (LANDLORD_LEASE_DURATION_SECONDS, default 15).
    pub lease_duration_seconds: u64,
    /// What a migration statement may wait for a lock and run unless its file says otherwise
    /// (LANDLORD_LOCK_TIMEOUT, default 5s; LANDLORD_STATEMENT_TIMEOUT, default 30min).
    pub migration_timeouts: Timeouts,
    /// How often every tenant database is visited to look for drift the records cannot see
    /// (LANDLORD_DRIFT_INTERVAL, default 6h; `0` or `off` turns it off).
    pub drift_interval: Option<std::time::Duration>,
    /// Tenant-database sessions per second the drift check may open (LANDLORD_DRIFT_SESSIONS_PER_SECOND,
    /// default 2).
    pub drift_sessions_per_second: f64,
    /// New tenant databases are cloned from Landlord's template of the core tenant schema
    /// (LANDLORD_TENANT_TEMPLATE, default `on`; `off` migrates each one from scratch).
    pub tenant_template: bool,
    /// No new tenant is placed on `default`, the server of LANDLORD_ADMIN_DATABASE_URL
    /// (LANDLORD_DEFAULT_SERVER_CORDONED, default `false`).
    pub default_server_cordoned: bool,
    /// Where the admin Secrets of DatabaseServers are read: POD_NAMESPACE, else the Lease's namespace.
    pub operator_namespace: String,
    /// Only DatabaseServers with these labels are this operator's (LANDLORD_SERVER_SELECTOR, e.g.
    /// `landlord.example.com/fleet=eu`): several Landlord installations can share a cluster. Default: all.
    pub server_selector: Option<String>,
    /// How long a moving tenant's sessions may go on once new ones are refused, before they are ended
    /// (LANDLORD_MOVE_GRACE_PERIOD, default 30s).
    pub move_grace_period: std::time::Duration,
    /// Where pg_dump and pg_restore are (LANDLORD_PG_BIN_DIR; default: found on PATH).
    pub pg_bin_dir: Option<PathBuf>,
    /// Fault drills only: a move stops, unfinished, right after recording this phase
    /// (LANDLORD_MOVE_HALT_AFTER). Never set in production.
    pub move_halt_after: Option<MovePhase>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("admin_database_url", &"***")
            .field("database_url", &"***")
            .field("modules_dir", &self.modules_dir)
            .field("migrations_dir", &self.migrations_dir)
            .field("watch_namespace", &self.watch_namespace)
            .field("environment", &self.environment)
            .field("max_db_connections", &self.max_db_connections)
            .field("concurrency", &self.concurrency)
            .field("http_addr", &self.http_addr)
            .field("lease_namespace", &self.lease_namespace)
            .field("identity", &self.identity)
            .field("lease_duration_seconds", &self.lease_duration_seconds)
            .field("migration_timeouts", &self.migration_timeouts)
            .field("drift_interval", &self.drift_interval)
            .field("drift_sessions_per_second", &self.drift_sessions_per_second)
            .field("tenant_template", &self.tenant_template)
            .field("default_server_cordoned", &self.default_server_cordoned)
            .field("operator_namespace", &self.operator_namespace)
            .field("server_selector", &self.server_selector)
            .field("move_grace_period", &self.move_grace_period)
            .field("pg_bin_dir", &self.pg_bin_dir)
            .field("move_halt_after", &self.move_halt_after)
            .finish()
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is not set; it must hold a PostgreSQL URL")]
    Missing(&'static str),
    #[error("{name} must be a positive integer, got {value:?}")]
    NotANumber { name: &'static str, value: String },
    #[error("LANDLORD_HTTP_ADDR must be an address like 0.0.0.0:8080, got {0:?}")]
    NotAnAddress(String),
    #[error("{name}: {reason}")]
    NotADuration { name: &'static str, reason: String },
    /// A switch spelled with `words` (its true and false), given something else.
    #[error("{name} must be `{}` or `{}`, not `{value}`", words.0, words.1)]
    NotASwitch {
        name: &'static str,
        words: (&'static str, &'static str),
        value: String,
    },
    #[error("LANDLORD_MOVE_HALT_AFTER must name a phase of a move ({phases}), not {0:?}", phases = phases())]
    NotAPhase(String),
    #[error(
        "LANDLORD_MOVE_HALT_AFTER stops moves half-way for fault drills and is refused in production"
    )]
    DrillInProduction,
}

fn phases() -> String {
    let names: Vec<&str> = MovePhase::ALL.iter().map(|p| p.as_str()).collect();
    names.join(", ")
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads through `lookup` so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| lookup(name).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str, default: usize| -> Result<usize, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(value) => match value.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(ConfigError::NotANumber { name, value }),
                },
            }
        };
        let duration = |name: &'static str, default: std::time::Duration| match lookup(name) {
            None => Ok(default),
            Some(value) => parse_duration(value.trim())
                .map_err(|reason| ConfigError::NotADuration { name, reason }),
        };
        let defaults = Timeouts::default();
        let migration_timeouts = Timeouts {
            lock: duration("LANDLORD_LOCK_TIMEOUT", defaults.lock)?,
            statement: duration("LANDLORD_STATEMENT_TIMEOUT", defaults.statement)?,
        };
        let drift_interval = match lookup("LANDLORD_DRIFT_INTERVAL").as_deref().map(str::trim) {
            Some("0" | "off") => None,
            _ => Some(duration("LANDLORD_DRIFT_INTERVAL", DRIFT_INTERVAL)?),
        };
        let drift_sessions_per_second = match lookup("LANDLORD_DRIFT_SESSIONS_PER_SECOND") {
            None => 2.0,
            Some(value) => match value.trim().parse::<f64>() {
                Ok(n) if n > 0.0 && n.is_finite() => n,
                _ => {
                    return Err(ConfigError::NotANumber {
                        name: "LANDLORD_DRIFT_SESSIONS_PER_SECOND",
                        value,
                    });
                }
            },
        };
        // A switch: unset is `default`; `words` spell true and false.
        let switch =
            |name: &'static str, words: (&'static str, &'static str), default: bool| match lookup(
                name,
            )
            .as_deref()
            .map(str::trim)
            {
                None => Ok(default),
                Some(value) if value == words.0 => Ok(true),
                Some(value) if value == words.1 => Ok(false),
                Some(value) => Err(ConfigError::NotASwitch {
                    name,
                    words,
                    value: value.to_string(),
                }),
            };
        let tenant_template = switch("LANDLORD_TENANT_TEMPLATE", ("on", "off"), true)?;
        let default_server_cordoned =
            switch("LANDLORD_DEFAULT_SERVER_CORDONED", ("true", "false"), false)?;
        let concurrency = number("LANDLORD_CONCURRENCY", 4)?;
        let watch_namespace = lookup("LANDLORD_WATCH_NAMESPACE");
        let http_addr = lookup("LANDLORD_HTTP_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
        let http_addr = http_addr
            .parse()
            .map_err(|_| ConfigError::NotAnAddress(http_addr))?;
        let lease_namespace = lookup("LANDLORD_LEASE_NAMESPACE")
            .or_else(|| lookup("POD_NAMESPACE"))
            .or_else(|| watch_namespace.clone())
            .unwrap_or_else(|| "default".into());
        let operator_namespace = lookup("POD_NAMESPACE").unwrap_or_else(|| lease_namespace.clone());
        let identity = lookup("POD_NAME").unwrap_or_else(|| {
            let host = lookup("HOSTNAME").unwrap_or_else(|| "landlord".into());
            format!("{host}-{}", std::process::id())
        });
        let config = Config {
            admin_database_url: required("LANDLORD_ADMIN_DATABASE_URL")?,
            database_url: required("LANDLORD_DATABASE_URL")?,
            modules_dir: lookup("LANDLORD_MODULES_DIR")
                .unwrap_or_else(|| "/modules".into())
                .into(),
            migrations_dir: lookup("LANDLORD_MIGRATIONS_DIR")
                .unwrap_or_else(|| "/migrations".into())
                .into(),
            watch_namespace,
            environment: match lookup("LANDLORD_ENVIRONMENT") {
                Some(env) if env.eq_ignore_ascii_case("production") => Environment::Production,
                Some(env) => Environment::Other(env),
                None => Environment::Other("development".into()),
            },
            max_db_connections: number("LANDLORD_MAX_DB_CONNECTIONS", 16)?,
            concurrency: u16::try_from(concurrency).unwrap_or(u16::MAX),
            http_addr,
            lease_namespace,
            identity,
            lease_duration_seconds: number("LANDLORD_LEASE_DURATION_SECONDS", 15)? as u64,
            migration_timeouts,
            drift_interval,
            drift_sessions_per_second,
            tenant_template,
            default_server_cordoned,
            operator_namespace,
            server_selector: lookup("LANDLORD_SERVER_SELECTOR").map(|s| s.trim().to_string()),
            move_grace_period: duration("LANDLORD_MOVE_GRACE_PERIOD", MOVE_GRACE_PERIOD)?,
            pg_bin_dir: lookup("LANDLORD_PG_BIN_DIR").map(PathBuf::from),
            move_halt_after: match lookup("LANDLORD_MOVE_HALT_AFTER") {
                None => None,
                Some(phase) => {
                    Some(MovePhase::parse(phase.trim()).ok_or(ConfigError::NotAPhase(phase))?)
                }
            },
        };
        if config.is_production() && config.move_halt_after.is_some() {
            return Err(ConfigError::DrillInProduction);
        }
        Ok(config)
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    const URLS: [(&str, &str); 2] = [
        (
            "LANDLORD_ADMIN_DATABASE_URL",
            "postgres://admin:secret@db/postgres",
        ),
        (
            "LANDLORD_DATABASE_URL",
            "postgres://landlord:secret@db/landlord",
        ),
    ];

    #[test]
    fn defaults() {
        let config = config(&URLS).unwrap();
        assert_eq!(config.modules_dir, PathBuf::from("/modules"));
        assert_eq!(config.migrations_dir, PathBuf::from("/migrations"));
        assert_eq!(config.watch_namespace, None);
        assert!(!config.is_production());
        assert_eq!(config.max_db_connections, 16);
        assert_eq!(config.concurrency, 4);
        assert_eq!(config.http_addr.port(), 8080);
        assert_eq!(config.lease_namespace, "default");
        assert_eq!(config.lease_duration_seconds, 15);
        assert_eq!(config.migration_timeouts, Timeouts::default());
        assert_eq!(config.drift_interval, Some(DRIFT_INTERVAL));
        assert_eq!(config.drift_sessions_per_second, 2.0);
        assert!(config.tenant_template);
        assert!(!config.default_server_cordoned);
        assert_eq!(config.operator_namespace, "default");
    }

    #[test]
    fn the_default_server_can_be_cordoned() {
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_DEFAULT_SERVER_CORDONED", "true"));
        pairs.push(("POD_NAMESPACE", "landlord-system"));
        let cordoned = config(&pairs).unwrap();
        assert!(cordoned.default_server_cordoned);
        assert_eq!(cordoned.operator_namespace, "landlord-system");
        let mut bad = URLS.to_vec();
        bad.push(("LANDLORD_DEFAULT_SERVER_CORDONED", "yes"));
        assert!(matches!(config(&bad), Err(ConfigError::NotASwitch { .. })));
    }

    #[test]
    fn moves_have_a_grace_period_tools_and_a_drill() {
        let defaults = config(&URLS).unwrap();
        assert_eq!(defaults.move_grace_period, MOVE_GRACE_PERIOD);
        assert_eq!(defaults.pg_bin_dir, None);
        assert_eq!(defaults.move_halt_after, None);
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_MOVE_GRACE_PERIOD", "5s"));
        pairs.push(("LANDLORD_PG_BIN_DIR", "/usr/lib/postgresql/15/bin"));
        pairs.push(("LANDLORD_MOVE_HALT_AFTER", "Copying"));
        let set = config(&pairs).unwrap();
        assert_eq!(set.move_grace_period, std::time::Duration::from_secs(5));
        assert_eq!(
            set.pg_bin_dir,
            Some(PathBuf::from("/usr/lib/postgresql/15/bin"))
        );
        assert_eq!(set.move_halt_after, Some(MovePhase::Copying));
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_MOVE_HALT_AFTER", "copy"));
        let err = config(&pairs).unwrap_err();
        assert!(err.to_string().contains("Quiescing, Copying"), "{err}");
    }

    #[test]
    fn drift_checks_can_be_paced_or_turned_off() {
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_DRIFT_INTERVAL", "30min"));
        pairs.push(("LANDLORD_DRIFT_SESSIONS_PER_SECOND", "0.5"));
        let paced = config(&pairs).unwrap();
        assert_eq!(
            paced.drift_interval,
            Some(std::time::Duration::from_secs(1800))
        );
        assert_eq!(paced.drift_sessions_per_second, 0.5);
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_DRIFT_INTERVAL", "off"));
        assert_eq!(config(&pairs).unwrap().drift_interval, None);
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_DRIFT_SESSIONS_PER_SECOND", "0"));
        assert!(config(&pairs).is_err());
    }

    #[test]
    fn migration_timeouts_are_durations() {
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_LOCK_TIMEOUT", "2s"));
        pairs.push(("LANDLORD_STATEMENT_TIMEOUT", "1h"));
        let timeouts = config(&pairs).unwrap().migration_timeouts;
        assert_eq!(timeouts.lock, std::time::Duration::from_secs(2));
        assert_eq!(timeouts.statement, std::time::Duration::from_secs(3600));
        let mut bad = URLS.to_vec();
        bad.push(("LANDLORD_LOCK_TIMEOUT", "forever"));
        assert!(matches!(
            config(&bad),
            Err(ConfigError::NotADuration {
                name: "LANDLORD_LOCK_TIMEOUT",
                ..
            })
        ));
    }

    #[test]
    fn lease_namespace_follows_the_pod_then_the_watched_namespace() {
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_WATCH_NAMESPACE", "team-a"));
        assert_eq!(config(&pairs).unwrap().lease_namespace, "team-a");
        pairs.push(("POD_NAMESPACE", "landlord-system"));
        assert_eq!(config(&pairs).unwrap().lease_namespace, "landlord-system");
        pairs.push(("LANDLORD_LEASE_NAMESPACE", "leases"));
        assert_eq!(config(&pairs).unwrap().lease_namespace, "leases");
    }

    #[test]
    fn production_is_recognised() {
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_ENVIRONMENT", "Production"));
        assert!(config(&pairs).unwrap().is_production());
        // A fault drill never runs there.
        pairs.push(("LANDLORD_MOVE_HALT_AFTER", "Copying"));
        let err = config(&pairs).err().unwrap();
        assert!(matches!(err, ConfigError::DrillInProduction), "{err}");
    }

    #[test]
    fn missing_url_and_bad_numbers_are_named() {
        let err = config(&URLS[..1]).err().unwrap();
        assert!(err.to_string().contains("LANDLORD_DATABASE_URL"));
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_MAX_DB_CONNECTIONS", "0"));
        assert!(matches!(
            config(&pairs),
            Err(ConfigError::NotANumber {
                name: "LANDLORD_MAX_DB_CONNECTIONS",
                ..
            })
        ));
    }

    #[test]
    fn debug_hides_urls() {
        let shown = format!("{:?}", config(&URLS).unwrap());
        assert!(!shown.contains("secret"), "{shown}");
    }
}
