//! What `landlord catalog test` found, rendered like `landlord catalog check`: one `<file>: <reason>`
//! line per problem (in the order found), `<file>: note: <reason>` for what could not be tested, then a
//! summary line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::catalog::{CheckReport, Problem, relative};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub problems: Vec<Problem>,
    /// Not wrong, but not tested either (a migration without a down script).
    pub notes: Vec<Problem>,
    /// Checkpoints taken up, down and up again.
    pub checkpoints: usize,
    /// Migrations run through those checkpoints.
    pub migrations: usize,
}

impl Findings {
    pub(crate) fn problem(&mut self, file: impl Into<PathBuf>, reason: String) {
        self.problems.push(Problem::new(file, reason));
    }

    pub(crate) fn note(&mut self, file: impl Into<PathBuf>, reason: String) {
        self.notes.push(Problem::new(file, reason));
    }

    pub(crate) fn tested(&mut self, migrations: usize) {
        self.checkpoints += 1;
        self.migrations += migrations;
    }

    /// The lines to print, paths relative to `cwd` when they lie under it.
    pub fn report(&self, modules: &[&str], elapsed: Duration, cwd: Option<&Path>) -> CheckReport {
        let mut lines: Vec<String> = self
            .problems
            .iter()
            .map(|p| format!("{}: {}", relative(&p.file, cwd), p.reason))
            .collect();
        lines.extend(
            self.notes
                .iter()
                .map(|p| format!("{}: note: {}", relative(&p.file, cwd), p.reason)),
        );
        let count = self.problems.len();
        lines.push(if count > 0 {
            format!("{count} problem(s) found")
        } else {
            format!(
                "catalog test ok: {} module(s) ({}); {} checkpoint(s), {} migration(s) up, down and up again in {:.1}s",
                modules.len(),
                modules.join(", "),
                self.checkpoints,
                self.migrations,
                elapsed.as_secs_f64()
            )
        });
        CheckReport {
            lines,
            problem_count: count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_then_notes_then_the_count() {
        let mut findings = Findings::default();
        findings.problem("/w/modules/a/tenant/2_b.down.sql", "left over".into());
        findings.note("/w/modules/a/tenant/3_c.up.sql", "no down".into());
        let report = findings.report(&["a"], Duration::from_millis(1500), Some(Path::new("/w")));
        assert_eq!(
            report.to_string(),
            "modules/a/tenant/2_b.down.sql: left over\n\
             modules/a/tenant/3_c.up.sql: note: no down\n\
             1 problem(s) found\n"
        );
        assert!(!report.is_clean());
    }

    #[test]
    fn a_clean_run_is_one_summary_line() {
        let mut findings = Findings::default();
        findings.tested(2);
        findings.tested(3);
        let report = findings.report(&["a", "b"], Duration::from_millis(1234), None);
        assert!(report.is_clean());
        assert_eq!(
            report.to_string(),
            "catalog test ok: 2 module(s) (a, b); 2 checkpoint(s), 5 migration(s) up, down and up again in 1.2s\n"
        );
    }
}
