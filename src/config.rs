//! Operator configuration from the environment (names fixed by DESIGN.md).

use std::path::PathBuf;

use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Environment {
    Production,
    /// Anything else (development, staging, test): destructive actions are allowed when asked for.
    Other(String),
}

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
            .finish()
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0} is not set; it must hold a PostgreSQL URL")]
    Missing(&'static str),
    #[error("{name} must be a positive integer, got {value:?}")]
    NotANumber { name: &'static str, value: String },
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
        let concurrency = number("LANDLORD_CONCURRENCY", 4)?;
        Ok(Config {
            admin_database_url: required("LANDLORD_ADMIN_DATABASE_URL")?,
            database_url: required("LANDLORD_DATABASE_URL")?,
            modules_dir: lookup("LANDLORD_MODULES_DIR")
                .unwrap_or_else(|| "/modules".into())
                .into(),
            migrations_dir: lookup("LANDLORD_MIGRATIONS_DIR")
                .unwrap_or_else(|| "/migrations".into())
                .into(),
            watch_namespace: lookup("LANDLORD_WATCH_NAMESPACE"),
            environment: match lookup("LANDLORD_ENVIRONMENT") {
                Some(env) if env.eq_ignore_ascii_case("production") => Environment::Production,
                Some(env) => Environment::Other(env),
                None => Environment::Other("development".into()),
            },
            max_db_connections: number("LANDLORD_MAX_DB_CONNECTIONS", 16)?,
            concurrency: u16::try_from(concurrency).unwrap_or(u16::MAX),
        })
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
    }

    #[test]
    fn production_is_recognised() {
        let mut pairs = URLS.to_vec();
        pairs.push(("LANDLORD_ENVIRONMENT", "Production"));
        assert!(config(&pairs).unwrap().is_production());
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
