//! `docs/operations.md` keeps up with the code, and the documentation's links lead somewhere. Pure file checks, no
//! database or cluster:
//!
//! - every condition reason (`Reason::ALL`, kept complete by a test beside it) has a row in the reason table, and
//!   that row's GitOps column says what `Reason::kstatus` makes of it: `Reconciling`, `Stalled` or neither;
//! - every `LANDLORD_*` variable `src/config.rs` and `src/telemetry.rs` read is named;
//! - every metric the operator exports (the `# TYPE` lines of a `Metrics` that has recorded something of each
//!   kind, named as `tests/monitoring.rs` names them: a counter by its `_total` sample, the rest by family; every
//!   family `src/metrics/mod.rs` registers must be among them) is in the Metrics section;
//! - every relative link in `README.md` and `docs/*.md` points to a file that exists, and links between
//!   `docs/operations.md` and `docs/security.md` point to headings that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use landlord::crd::{ConditionType, Reason};
use landlord::metrics::{Metrics, ReasonLabel, ServerView};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn operations() -> String {
    read(&root().join("docs/operations.md"))
}

/// `name` occurs in `text` as a whole word (letters, digits and `_` on neither side).
fn mentions(text: &str, name: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    text.match_indices(name).any(|(at, _)| {
        !word(text[..at].chars().next_back()) && !word(text[at + name.len()..].chars().next())
    })
}

/// The text of the section that starts with the heading line `heading`, up to the next heading of the same or a
/// higher level.
fn section<'t>(text: &'t str, heading: &str) -> &'t str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = text
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| line.trim_end() == heading)
        .map(|(at, line)| at + line.len())
        .unwrap_or_else(|| panic!("docs/operations.md has no heading {heading:?}"));
    let rest = &text[start..];
    let end = rest
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| {
            let hashes = line.chars().take_while(|c| *c == '#').count();
            hashes > 0 && hashes <= level && line[hashes..].starts_with(' ')
        })
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

/// The cells of a Markdown table row, trimmed (None for a line that is not a row).
fn cells(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let inner = line.strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(|c| c.trim().to_string()).collect())
}

// ------------------------------------------------------------------------------------------ condition reasons

#[test]
fn every_reason_has_a_row_in_the_reason_table_with_its_gitops_reading() {
    let doc = operations();
    let table = section(&doc, "## Condition reasons");
    let mut rows = table.lines().filter_map(cells);
    let header = rows.next().expect("the reason table has a header row");
    assert_eq!(
        header.first().map(String::as_str),
        Some("Reason"),
        "{header:?}"
    );
    let gitops = header
        .iter()
        .position(|c| c.contains("GitOps"))
        .expect("the reason table has a GitOps column");
    let documented: BTreeMap<String, Vec<String>> = rows
        .filter(|row| {
            !row.iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        })
        .map(|row| (row[0].trim_matches('`').to_string(), row))
        .collect();

    let mut problems = Vec::new();
    for reason in Reason::ALL {
        let Some(row) = documented.get(reason.as_str()) else {
            problems.push(format!("{reason}: no row in the reason table"));
            continue;
        };
        if row.len() != header.len() {
            problems.push(format!(
                "{reason}: {} cells, the header has {}",
                row.len(),
                header.len()
            ));
            continue;
        }
        let cell = &row[gitops];
        let says = (cell.contains("Reconciling"), cell.contains("Stalled"));
        let kstatus = reason.kstatus();
        let expected = (
            kstatus == Some(ConditionType::Reconciling),
            kstatus == Some(ConditionType::Stalled),
        );
        if says != expected {
            problems.push(format!(
                "{reason}: GitOps column {cell:?}, but kstatus() gives {kstatus:?}"
            ));
        }
        for (i, cell) in row.iter().enumerate().skip(1) {
            if cell.is_empty() {
                problems.push(format!("{reason}: column {:?} is empty", header[i]));
            }
        }
    }
    for name in documented.keys() {
        if !Reason::ALL.iter().any(|reason| reason.as_str() == name) {
            problems.push(format!(
                "{name}: a row in the reason table, but no such Reason"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------- environment

/// Every `LANDLORD_*` name in `text`.
fn landlord_variables(text: &str) -> BTreeSet<String> {
    text.match_indices("LANDLORD_")
        .filter(|(at, _)| {
            !text[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect::<String>()
                .trim_end_matches('_')
                .to_string()
        })
        .filter(|name| name.len() > "LANDLORD_".len())
        .collect()
}

#[test]
fn every_environment_variable_the_operator_reads_is_documented() {
    let mut names = BTreeSet::new();
    for file in ["src/config.rs", "src/telemetry.rs"] {
        names.extend(landlord_variables(&read(&root().join(file))));
    }
    for expected in [
        "LANDLORD_ADMIN_DATABASE_URL",
        "LANDLORD_DRIFT_INTERVAL",
        "LANDLORD_TENANT_TEMPLATE",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not found in {names:?}"
        );
    }
    let doc = operations();
    let table = section(&doc, "## Configuration: the environment");
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !mentions(table, &format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the environment section of docs/operations.md: {missing:?}"
    );
}

// -------------------------------------------------------------------------------------------------- metrics

/// A label for `Metrics::reconciled`'s failure counter.
struct Failure;

impl ReasonLabel for Failure {
    fn reason_label(&self) -> &'static str {
        "MigrationFailed"
    }
}

/// `Metrics` after one call of each recording method, as a working operator's would be: a family without a
/// sample is not in the exposition at all.
fn working_metrics() -> Metrics {
    let metrics = Metrics::default();
    let now = Instant::now();
    metrics.reconciled("landlord-tenant", now, Err(&Failure));
    metrics.in_place("landlord-tenant");
    metrics.phase("landlord-tenant", "gather", now);
    metrics.database_created(true);
    metrics.drift_visit();
    metrics.migrations_applied("tenant", 1);
    metrics.set_resources("landlord-tenant", [("Reconciled".to_string(), 1)]);
    metrics.set_leader(true);
    metrics.rollout_progress(("tenants", "cards"), 1, 0, 0);
    metrics.set_public_landlord_database(false);
    metrics.set_public_maintenance_database(false);
    metrics.set_server(
        "second",
        ServerView {
            tenants: 1,
            max_tenants: Some(10),
            up: true,
            cordoned: false,
        },
    );
    metrics
}

/// The sample names the exposition's `# TYPE` lines promise, as `tests/monitoring.rs` reads them: a counter by
/// its `_total` sample, every other family by its own name (a histogram's `_bucket`, `_sum` and `_count`
/// follow from it). Keyed by family.
fn exported_metrics(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let mut parts = rest.split_whitespace();
            let (family, type_) = (parts.next().unwrap(), parts.next().unwrap_or_default());
            let name = match type_ {
                "counter" => format!("{family}_total"),
                _ => family.to_string(),
            };
            (family.to_string(), name)
        })
        .collect()
}

/// Every family `src/metrics/mod.rs` registers: the registry's prefix and the first string of each `register(`.
fn registered_families(source: &str) -> BTreeSet<String> {
    let string_after = |text: &str| text.split('"').nth(1).map(str::to_string);
    let prefix = source
        .split_once("Registry::with_prefix(")
        .and_then(|(_, rest)| string_after(rest))
        .expect("src/metrics/mod.rs builds its Registry with a prefix");
    source
        .match_indices(".register(")
        .filter_map(|(at, _)| string_after(&source[at..]))
        .map(|name| format!("{prefix}_{name}"))
        .collect()
}

#[test]
fn every_exported_metric_is_documented() {
    let exported = exported_metrics(&working_metrics().encode());
    let registered = registered_families(&read(&root().join("src/metrics/mod.rs")));
    assert!(
        registered.contains("landlord_reconciles") && registered.contains("landlord_leader"),
        "families parsed from src/metrics/mod.rs: {registered:?}"
    );
    let families: BTreeSet<String> = exported.keys().cloned().collect();
    assert_eq!(
        families, registered,
        "every family src/metrics/mod.rs registers must have a sample here: call its recording method in \
         working_metrics()"
    );
    let doc = operations();
    let table = section(&doc, "## Metrics");
    let missing: Vec<&String> = exported
        .values()
        .filter(|name| !mentions(table, name))
        .collect();
    assert!(
        missing.is_empty(),
        "exported but not in the Metrics section of docs/operations.md: {missing:?}"
    );
}

// ---------------------------------------------------------------------------------------------------- links

/// The targets of the inline links `[text](target)` of a Markdown text, outside code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans hold examples, not links.
        let text: String = line
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, part)| part)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(close) = after.find(')') else {
                break;
            };
            let target = after[..close]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_start_matches('<')
                .trim_end_matches('>');
            targets.push(target.to_string());
            rest = &after[close..];
        }
    }
    targets
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let docs = root().join("docs");
    let mut in_docs: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("read {}: {e}", docs.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    in_docs.sort();
    files.extend(in_docs);
    files
}

#[test]
fn the_link_parser_skips_code_and_external_links() {
    let found = link_targets(
        "See [a](docs/a.md#x) and [b](<b c.md> \"title\"), not `[c](c.md)`.\n```\n[d](d.md)\n```\n[e](https://e.example)",
    );
    assert_eq!(found, ["docs/a.md#x", "b", "https://e.example"]);
}

#[test]
fn relative_links_in_the_readme_and_docs_point_to_files_that_exist() {
    let mut problems = Vec::new();
    for file in markdown_files() {
        let dir = file.parent().expect("a directory");
        for target in link_targets(&read(&file)) {
            if is_external(&target) || target.starts_with('#') || target.is_empty() {
                continue;
            }
            let path = target.split(['#', '?']).next().unwrap_or_default();
            if !dir.join(path).exists() {
                problems.push(format!(
                    "{}: link to {target}: no such file",
                    file.strip_prefix(root()).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn links_between_the_operations_and_security_guides_name_headings_that_exist() {
    assert_eq!(
        anchor("The template database (fast provisioning)"),
        "the-template-database-fast-provisioning"
    );
    assert_eq!(
        anchor("Configuration: the environment"),
        "configuration-the-environment"
    );
    let docs = root().join("docs");
    let ours = ["operations.md", "security.md"];
    let headings: BTreeMap<&str, BTreeSet<String>> = ours
        .iter()
        .map(|name| (*name, anchors(&read(&docs.join(name)))))
        .collect();
    let mut problems = Vec::new();
    for name in ours {
        for target in link_targets(&read(&docs.join(name))) {
            let (file, fragment) = match target.split_once('#') {
                Some(("", fragment)) => (name, fragment),
                Some((file, fragment)) => (file, fragment),
                None => continue,
            };
            if let Some(known) = headings.get(file)
                && !known.contains(fragment)
            {
                problems.push(format!("docs/{name}: link to {target}: no such heading"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
