//! What a migration script says about itself in its leading comment lines, and what running its one
//! statement again after a crash would do. Header lines, in the style of the no-transaction marker:
//!
//! ```sql
//! -- landlord:no-transaction          (exactly the first line)
//! -- landlord:lock-timeout=30s        how long a statement may wait for a lock (default: the operator's)
//! -- landlord:statement-timeout=2h    how long a statement may run (default: the operator's)
//! ```
//! Durations are an integer with `ms`, `s`, `min` or `h`, at most 24 hours.

use std::path::PathBuf;
use std::time::Duration;

use super::model::MigrationScript;
use super::sql::split_statements;

const HEADER: &str = "-- landlord:";
const LOCK_TIMEOUT: &str = "lock-timeout";
const STATEMENT_TIMEOUT: &str = "statement-timeout";
const MAX: Duration = Duration::from_secs(24 * 3600);

impl MigrationScript {
    /// A script as the loader reads it: marker, headers and crash recovery all come from its text; a header
    /// that does not parse is left out here and reported by `problems`.
    pub fn new(sql: String, path: PathBuf) -> MigrationScript {
        let no_transaction = is_no_transaction(&sql);
        let header = |key| {
            headers(&sql)
                .filter(|(k, _)| *k == key)
                .find_map(|(_, value)| value.and_then(|v| parse_duration(v).ok()))
        };
        let concurrent_index = match (no_transaction, split_statements(&sql).as_deref()) {
            (true, Ok([statement])) => match rerun(statement) {
                Rerun::ConcurrentIndex(name) => Some(name),
                _ => None,
            },
            _ => None,
        };
        MigrationScript {
            lock_timeout: header(LOCK_TIMEOUT),
            statement_timeout: header(STATEMENT_TIMEOUT),
            concurrent_index,
            sql,
            no_transaction,
            path,
        }
    }
}

/// `-- landlord:<key>[=<value>]` lines among the leading comment lines (before the first statement).
fn headers(sql: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    sql.trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim_end)
        .take_while(|line| line.is_empty() || line.starts_with("--"))
        .filter_map(|line| line.strip_prefix(HEADER))
        .map(|rest| match rest.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (rest.trim(), None),
        })
}

/// Every header that a module author got wrong, as a reason to report.
pub(crate) fn header_problems(sql: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in headers(sql) {
        match (key, value) {
            ("no-transaction", None) => {}
            (LOCK_TIMEOUT | STATEMENT_TIMEOUT, Some(value)) => {
                if let Err(reason) = parse_duration(value) {
                    problems.push(format!("has `{HEADER}{key}={value}`: {reason}"));
                }
            }
            (LOCK_TIMEOUT | STATEMENT_TIMEOUT, None) => problems.push(format!(
                "has `{HEADER}{key}` without a value; write it like `{HEADER}{key}=30s`"
            )),
            _ => problems.push(format!(
                "has an unknown header `{HEADER}{key}`; known: no-transaction, {LOCK_TIMEOUT}=<duration>, \
                 {STATEMENT_TIMEOUT}=<duration>"
            )),
        }
    }
    problems
}

/// The exact first line that makes a script run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- landlord:no-transaction";

/// The marker counts only as the exact first line (a trailing `\r` from Windows editors is tolerated).
pub fn is_no_transaction(sql: &str) -> bool {
    sql.trim_start_matches('\u{feff}').lines().next() == Some(NO_TRANSACTION_MARKER)
}

/// `500ms`, `30s`, `5min`, `2h`: positive, at most 24 hours.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| {
        format!("`{text}` is not a number with a unit, such as 500ms, 30s, 5min or 2h ({e})")
    })?;
    if duration.is_zero() || duration > MAX {
        return Err(format!("`{text}` must be more than 0 and at most 24h"));
    }
    Ok(duration)
}

/// What running a no-transaction statement again does, should a crash interrupt it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rerun {
    /// `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS <name>`: a crash can leave the index INVALID, which
    /// `IF NOT EXISTS` would then keep; drop it first, then build it again.
    ConcurrentIndex(String),
    /// Safe to run again as it is (`IF EXISTS`, `IF NOT EXISTS`, VACUUM, ANALYZE, REINDEX …).
    Idempotent,
    /// Running it again could fail or do it twice: the reason, for the module author.
    NotIdempotent(&'static str),
}

pub fn rerun(statement: &str) -> Rerun {
    let words = words(statement);
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let starts = |prefix: &[&str]| {
        upper.len() >= prefix.len() && upper.iter().zip(prefix).all(|(w, p)| w == p)
    };
    let has = |phrase: &[&str]| upper.windows(phrase.len()).any(|w| w == phrase);
    let index_at = if starts(&["CREATE", "INDEX", "CONCURRENTLY"]) {
        Some(3)
    } else if starts(&["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"]) {
        Some(4)
    } else {
        None
    };
    if let Some(at) = index_at {
        let rest = &upper[at..];
        if rest.len() < 4 || rest[..3] != ["IF", "NOT", "EXISTS"] {
            return Rerun::NotIdempotent(
                "builds an index CONCURRENTLY without IF NOT EXISTS; write `CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> …`",
            );
        }
        let name = &words[at + 3];
        let plain = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
        return if plain {
            Rerun::ConcurrentIndex(name.clone())
        } else {
            Rerun::NotIdempotent(
                "names its index with something other than a plain lower-case name; Landlord must be able to find and drop an INVALID one",
            )
        };
    }
    let repeatable = ["VACUUM", "ANALYZE", "REINDEX", "CLUSTER"];
    if upper
        .first()
        .is_some_and(|w| repeatable.contains(&w.as_str()))
        || has(&["IF", "NOT", "EXISTS"])
        || has(&["IF", "EXISTS"])
    {
        return Rerun::Idempotent;
    }
    Rerun::NotIdempotent(
        "may not be run again safely after a crash; a no-transaction statement must be idempotent (use IF NOT EXISTS or IF EXISTS)",
    )
}

/// The words of a statement (identifiers, keywords; quoted names whole), without comments or literals.
fn words(statement: &str) -> Vec<String> {
    let b = statement.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = statement[i + 2..]
                    .find("*/")
                    .map_or(b.len(), |p| i + 2 + p + 2);
            }
            b'\'' => {
                i = statement[i + 1..]
                    .find('\'')
                    .map_or(b.len(), |p| i + 1 + p + 1);
            }
            b'"' => {
                let end = statement[i + 1..]
                    .find('"')
                    .map_or(b.len(), |p| i + 1 + p + 1);
                words.push(statement[i..end].to_string());
                i = end;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let end = b[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.'))
                    .map_or(b.len(), |p| i + p);
                words.push(statement[i..end].to_string());
                i = end;
            }
            _ => i += 1,
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_the_exact_first_line() {
        assert!(is_no_transaction(
            "-- landlord:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"
        ));
        assert!(is_no_transaction("-- landlord:no-transaction\r\nSELECT 1;"));
        assert!(!is_no_transaction("--landlord:no-transaction\nSELECT 1;"));
        assert!(!is_no_transaction(
            "-- landlord:no-transaction please\nSELECT 1;"
        ));
        assert!(!is_no_transaction(
            "\n-- landlord:no-transaction\nSELECT 1;"
        ));
    }

    #[test]
    fn headers_set_timeouts() {
        let script = MigrationScript::new(
            "-- landlord:no-transaction\n-- landlord:lock-timeout=30s\n-- landlord:statement-timeout=2h\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);".into(),
            PathBuf::new(),
        );
        assert!(script.no_transaction);
        assert_eq!(script.lock_timeout, Some(Duration::from_secs(30)));
        assert_eq!(script.statement_timeout, Some(Duration::from_secs(7200)));
        assert_eq!(script.concurrent_index.as_deref(), Some("t_a_idx"));
        let plain = MigrationScript::new(
            "CREATE TABLE t ();\n-- landlord:lock-timeout=1s".into(),
            PathBuf::new(),
        );
        assert_eq!(
            plain.lock_timeout, None,
            "headers come before the first statement"
        );
    }

    #[test]
    fn bad_headers_are_problems() {
        let problems = header_problems(
            "-- landlord:lock-timeout=soon\n-- landlord:statement-timeout\n-- landlord:retries=3\n-- landlord:lock-timeout=0s\nSELECT 1;",
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].contains("not a number"));
        assert!(problems[1].contains("without a value"));
        assert!(problems[2].contains("unknown header"));
        assert!(problems[3].contains("more than 0"));
        assert!(
            header_problems(
                "-- landlord:no-transaction\n-- landlord:lock-timeout=500ms\nSELECT 1;"
            )
            .is_empty()
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30min"), Ok(Duration::from_secs(5400)));
        for bad in ["", "5", "s", "-5s", "25h", "0ms", "2d", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn what_a_rerun_does() {
        let cases = [
            (
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON a (x)",
                Rerun::ConcurrentIndex("a_idx".into()),
            ),
            (
                "create unique index concurrently if not exists a_idx on a (x)",
                Rerun::ConcurrentIndex("a_idx".into()),
            ),
            (
                "-- why\nCREATE INDEX CONCURRENTLY /* note */ IF NOT EXISTS a_idx ON a (x) WHERE y IS NULL",
                Rerun::ConcurrentIndex("a_idx".into()),
            ),
            ("DROP INDEX CONCURRENTLY IF EXISTS a_idx", Rerun::Idempotent),
            (
                "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh'",
                Rerun::Idempotent,
            ),
            ("VACUUM ANALYZE a", Rerun::Idempotent),
            ("REINDEX INDEX CONCURRENTLY a_idx", Rerun::Idempotent),
        ];
        for (statement, expected) in cases {
            assert_eq!(rerun(statement), expected, "{statement}");
        }
        for statement in [
            "CREATE INDEX CONCURRENTLY a_idx ON a (x)",
            "DROP INDEX CONCURRENTLY a_idx",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"A idx\" ON a (x)",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS public.a_idx ON a (x)",
            "DO $$ BEGIN PERFORM 1; END $$",
            "SELECT 'IF EXISTS'",
        ] {
            assert!(
                matches!(rerun(statement), Rerun::NotIdempotent(_)),
                "{statement}"
            );
        }
    }
}
