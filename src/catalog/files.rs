//! One scope directory of migration files (`<version>_<description>.up.sql` + optional `.down.sql`) read
//! into a `MigrationSet`, reporting every file a module author named or wrote wrongly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::model::{Migration, MigrationScript, MigrationSet};
use super::problem::Problems;
use super::script::{NO_TRANSACTION_MARKER, Rerun, header_problems, rerun};
use super::sql::split_statements;

const NAME_RULE: &str = "expected `<version>_<description>.up.sql` or `.down.sql`, e.g. `20251005030440_create_expenses.up.sql`";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Up,
    Down,
}

#[derive(Debug, PartialEq, Eq)]
struct FileName {
    version: i64,
    description: String,
    side: Side,
}

/// Parses `<version>_<description>.(up|down).sql`; the error is the reason to report.
fn parse_file_name(name: &str) -> Result<FileName, String> {
    let (stem, side) = if let Some(stem) = name.strip_suffix(".up.sql") {
        (stem, Side::Up)
    } else if let Some(stem) = name.strip_suffix(".down.sql") {
        (stem, Side::Down)
    } else {
        return Err(format!("is not a migration file; {NAME_RULE}"));
    };
    let Some((digits, description)) = stem.split_once('_') else {
        return Err(format!(
            "has no `_` between version and description; {NAME_RULE}"
        ));
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "has a version `{digits}` that is not an integer; {NAME_RULE}"
        ));
    }
    let version: i64 = digits.parse().map_err(|_| {
        format!("has a version `{digits}` too large for a 64-bit integer; use a timestamp such as 20251005030440")
    })?;
    if version == 0 {
        return Err(
            "has version 0; versions start at 1 (use a timestamp such as 20251005030440)".into(),
        );
    }
    let valid_description = description
        .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && description
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    if !valid_description {
        let suggestion: String = description
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let side = if side == Side::Up { "up" } else { "down" };
        return Err(format!(
            "has a description `{description}` that is not lowercase letters, digits and underscores; rename it like `{digits}_{suggestion}.{side}.sql`"
        ));
    }
    Ok(FileName {
        version,
        description: description.to_string(),
        side,
    })
}

/// Reads every migration of one scope directory. The directory must exist; problems go to `problems` and
/// the files that are fine still make it into the returned set.
pub(crate) fn load_scope(dir: &Path, problems: &mut Problems) -> MigrationSet {
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(dir, format!("cannot be read: {err}"));
            return MigrationSet::default();
        }
    };

    // Version → up files using it (sorted by name); (version, description) → down file.
    let mut ups: BTreeMap<i64, Vec<(String, PathBuf)>> = BTreeMap::new();
    let mut downs: BTreeMap<(i64, String), PathBuf> = BTreeMap::new();
    for (name, path, is_file) in entries {
        if !is_file {
            problems.push(
                &path,
                "is a directory; a scope directory holds only migration files, not subdirectories",
            );
            continue;
        }
        match parse_file_name(&name) {
            Ok(FileName {
                version,
                description,
                side: Side::Up,
            }) => {
                ups.entry(version).or_default().push((description, path));
            }
            Ok(FileName {
                version,
                description,
                side: Side::Down,
            }) => {
                downs.insert((version, description), path);
            }
            Err(reason) => problems.push(&path, reason),
        }
    }

    for ((version, description), path) in &downs {
        let has_up = ups
            .get(version)
            .is_some_and(|files| files.iter().any(|(d, _)| d == description));
        if !has_up {
            problems.push(path, format!(
                "is a down migration without its up migration; add `{version}_{description}.up.sql` or remove this file"
            ));
        }
    }

    let mut migrations = Vec::new();
    for (version, files) in ups {
        if files.len() > 1 {
            for (_, path) in &files {
                let others: Vec<String> = files
                    .iter()
                    .filter(|(_, other)| other != path)
                    .map(|(_, other)| file_name(other))
                    .collect();
                problems.push(path, format!(
                    "shares version {version} with {} in the same scope; give each migration its own version",
                    others.join(", ")
                ));
            }
        }
        let Some((description, up_path)) = files.into_iter().next() else {
            continue;
        };
        let down_path = downs.remove(&(version, description.clone()));
        let Some((up, bytes)) = read_script(&up_path, problems) else {
            continue;
        };
        let down = down_path
            .and_then(|p| read_script(&p, problems))
            .map(|(s, _)| s);
        migrations.push(Migration {
            version,
            description,
            up,
            down,
            checksum: Sha256::digest(&bytes).into(),
        });
    }
    MigrationSet { migrations }
}

/// (file name, path, is a regular file) for every entry that is not hidden, sorted by name.
pub(crate) fn sorted_entries(dir: &Path) -> std::io::Result<Vec<(String, PathBuf, bool)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Editor and OS droppings (`.DS_Store`, `.gitkeep`) are not part of the catalog.
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follow symlinks: a catalog assembled from links is still a catalog.
        let is_file = path.is_file();
        entries.push((name, path, is_file));
    }
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads and checks one script; None when it cannot be read as text at all.
fn read_script(path: &Path, problems: &mut Problems) -> Option<(MigrationScript, Vec<u8>)> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            problems.push(path, format!("cannot be read: {err}"));
            return None;
        }
    };
    let Ok(sql) = String::from_utf8(bytes.clone()) else {
        problems.push(path, "is not valid UTF-8; save the file as UTF-8");
        return None;
    };
    let script = MigrationScript::new(sql, path.to_path_buf());
    check_script(path, &script.sql, script.no_transaction, problems);
    Some((script, bytes))
}

fn check_script(path: &Path, sql: &str, no_transaction: bool, problems: &mut Problems) {
    if !no_transaction && sql.contains("landlord:no-transaction") {
        problems.push(path, format!(
            "mentions landlord:no-transaction but not as its exact first line, so it would run in a transaction; make the first line exactly `{NO_TRANSACTION_MARKER}`"
        ));
    }
    for reason in header_problems(sql) {
        problems.push(path, reason);
    }
    match split_statements(sql).as_deref() {
        Err(err) => problems.push(path, format!("cannot be split into statements: {err}")),
        Ok([]) => problems.push(path, "is empty: it holds no SQL statement; write the migration or remove the file"),
        Ok(statements) if no_transaction && statements.len() > 1 => problems.push(path, format!(
            "is marked `{NO_TRANSACTION_MARKER}` but holds {} statements; such a file must hold exactly one, so split it into several migrations",
            statements.len()
        )),
        // A crash between the statement and its ledger row runs it again.
        Ok([statement]) if no_transaction => {
            if let Rerun::NotIdempotent(reason) = rerun(statement) {
                problems.push(path, format!("is marked `{NO_TRANSACTION_MARKER}` and {reason}"));
            }
        }
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_names() {
        assert_eq!(
            parse_file_name("20251005030440_create_tasks.up.sql"),
            Ok(FileName {
                version: 20251005030440,
                description: "create_tasks".into(),
                side: Side::Up
            })
        );
        assert_eq!(
            parse_file_name("0002_v2_index.down.sql").map(|f| (f.version, f.side)),
            Ok((2, Side::Down))
        );
        let bad = [
            ("create_tasks.up.sql", "not an integer"),
            (
                "20251005_Create.up.sql",
                "rename it like `20251005_create.up.sql`",
            ),
            (
                "20251005_create-tasks.down.sql",
                "rename it like `20251005_create_tasks.down.sql`",
            ),
            ("20251005.up.sql", "no `_`"),
            ("20251005_create.sql", "not a migration file"),
            ("20251005_create.up.SQL", "not a migration file"),
            ("99999999999999999999_big.up.sql", "too large"),
            ("0_zero.up.sql", "version 0"),
            ("2025_.up.sql", "description"),
        ];
        for (name, phrase) in bad {
            let reason = parse_file_name(name).expect_err(name);
            assert!(reason.contains(phrase), "{name}: {reason}");
        }
    }
}
