//! Releases: named points in a module's history. Each names, per scope, the last migration it includes;
//! a release that omits a scope keeps the previous release's target for it.

use std::path::Path;

use super::model::{MigrationSet, Release, Scope};
use super::problem::Problems;

/// A release as `module.yaml` declares it, its version already parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeclaredRelease {
    pub version: semver::Version,
    pub landlord: Option<i64>,
    pub tenant: Option<i64>,
}

impl DeclaredRelease {
    fn target(&self, scope: Scope) -> Option<i64> {
        match scope {
            Scope::Landlord => self.landlord,
            Scope::Tenant => self.tenant,
        }
    }
}

/// Fills in omitted scopes: the release's own value, else the previous release's, else None.
pub(crate) fn resolve(declared: &[DeclaredRelease]) -> Vec<Release> {
    let mut releases: Vec<Release> = Vec::with_capacity(declared.len());
    for release in declared {
        let previous = releases.last();
        releases.push(Release {
            version: release.version.clone(),
            landlord: release.landlord.or(previous.and_then(|p| p.landlord)),
            tenant: release.tenant.or(previous.and_then(|p| p.tenant)),
        });
    }
    releases
}

/// Checks declared releases against the module's migrations: order, existing targets, no step backwards,
/// and no migration left out of every release. `manifest` is the `module.yaml` the problems point at.
pub(crate) fn check(
    manifest: &Path,
    declared: &[DeclaredRelease],
    landlord: &MigrationSet,
    tenant: &MigrationSet,
    problems: &mut Problems,
) {
    for pair in declared.windows(2) {
        if pair[1].version <= pair[0].version {
            problems.push(manifest, format!(
                "release {} is listed after release {} but is not newer; list releases oldest first with strictly increasing versions",
                pair[1].version, pair[0].version
            ));
        }
    }

    let resolved = resolve(declared);
    for (scope, migrations) in [(Scope::Landlord, landlord), (Scope::Tenant, tenant)] {
        for (i, release) in declared.iter().enumerate() {
            let Some(target) = release.target(scope) else {
                continue;
            };
            if migrations.get(target).is_none() {
                let newest = match migrations.latest() {
                    Some(v) => format!("the newest {scope} migration is {v}"),
                    None => format!("the module has no {scope} migrations"),
                };
                problems.push(manifest, format!(
                    "release {} names {scope} migration {target}, which does not exist in {scope}/ ({newest}); name an existing migration version",
                    release.version
                ));
            }
            let previous = i.checked_sub(1).and_then(|p| resolved[p].target(scope));
            if let Some(previous) = previous.filter(|&p| p > target) {
                problems.push(manifest, format!(
                    "release {} moves the {scope} target back from {previous} to {target}; a release must include every migration of the releases before it",
                    release.version
                ));
            }
        }

        // Unreleased migrations would never be applied; with no release at all the missing release is
        // reported instead. The highest target counts, so a release stepping back is reported only once.
        let Some(newest) = resolved.last() else {
            continue;
        };
        let released_up_to = resolved.iter().filter_map(|r| r.target(scope)).max();
        for migration in &migrations.migrations {
            if released_up_to.is_some_and(|t| migration.version <= t) {
                continue;
            }
            let why = match released_up_to {
                Some(t) => format!(
                    "releases up to {} end the {scope} scope at {t}",
                    newest.version
                ),
                None => format!("no release includes the {scope} scope"),
            };
            problems.push(&migration.up.path, format!(
                "is not part of any release ({why}); add a release naming it in module.yaml or remove the migration"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::problem::Problem;

    fn declared(version: &str, landlord: Option<i64>, tenant: Option<i64>) -> DeclaredRelease {
        DeclaredRelease {
            version: semver::Version::parse(version).expect("test version"),
            landlord,
            tenant,
        }
    }

    fn targets(releases: &[Release]) -> Vec<(String, Option<i64>, Option<i64>)> {
        releases
            .iter()
            .map(|r| (r.version.to_string(), r.landlord, r.tenant))
            .collect()
    }

    #[test]
    fn omitted_scopes_keep_the_previous_target() {
        let releases = resolve(&[
            declared("1.0.0", None, Some(10)),
            declared("1.1.0", Some(5), None),
            declared("1.2.0", None, Some(20)),
            declared("2.0.0", None, None),
        ]);
        assert_eq!(
            targets(&releases),
            vec![
                ("1.0.0".into(), None, Some(10)),
                ("1.1.0".into(), Some(5), Some(10)),
                ("1.2.0".into(), Some(5), Some(20)),
                ("2.0.0".into(), Some(5), Some(20)),
            ]
        );
        assert_eq!(releases[1].target(Scope::Landlord), Some(5));
        assert_eq!(releases[0].target(Scope::Landlord), None);
    }

    #[test]
    fn no_releases_resolve_to_nothing() {
        assert!(resolve(&[]).is_empty());
    }

    fn set(versions: &[i64]) -> MigrationSet {
        use crate::catalog::model::{Migration, MigrationScript};
        MigrationSet {
            migrations: versions
                .iter()
                .map(|&version| Migration {
                    version,
                    description: "m".into(),
                    up: MigrationScript::new(
                        "SELECT 1;".into(),
                        format!("tenant/{version}_m.up.sql").into(),
                    ),
                    down: None,
                    checksum: [0; 32],
                })
                .collect(),
        }
    }

    fn problems_of(declared: &[DeclaredRelease], tenant: &[i64]) -> Vec<Problem> {
        let mut problems = Problems::default();
        check(
            Path::new("module.yaml"),
            declared,
            &set(&[]),
            &set(tenant),
            &mut problems,
        );
        problems.into_errors().problems
    }

    #[test]
    fn accepts_a_consistent_history() {
        let releases = [
            declared("1.0.0", None, Some(1)),
            declared("1.1.0", None, Some(3)),
        ];
        assert_eq!(problems_of(&releases, &[1, 2, 3]), vec![]);
    }

    #[test]
    fn reports_every_release_mistake() {
        let releases = [
            declared("1.1.0", None, Some(3)),
            declared("1.0.0", None, Some(2)),
            declared("1.2.0", None, Some(9)),
            declared("1.3.0", Some(4), None),
        ];
        let problems = problems_of(&releases, &[1, 2, 3, 4, 5]);
        let reasons: Vec<&str> = problems.iter().map(|p| p.reason.as_str()).collect();
        let expect = [
            "release 1.0.0 is listed after release 1.1.0 but is not newer",
            "release 1.0.0 moves the tenant target back from 3 to 2",
            "release 1.2.0 names tenant migration 9, which does not exist",
            "release 1.3.0 names landlord migration 4, which does not exist in landlord/ (the module has no landlord migrations)",
        ];
        for phrase in expect {
            assert!(
                reasons.iter().any(|r| r.contains(phrase)),
                "{phrase} in {reasons:#?}"
            );
        }
        // The newest tenant target (9) lies above every migration, so none is reported as unreleased.
        assert_eq!(problems.len(), expect.len(), "{reasons:#?}");
    }

    #[test]
    fn reports_migrations_no_release_includes() {
        let problems = problems_of(&[declared("1.0.0", None, Some(2))], &[1, 2, 3, 4]);
        let files: Vec<String> = problems
            .iter()
            .map(|p| p.file.display().to_string())
            .collect();
        assert_eq!(files, ["tenant/3_m.up.sql", "tenant/4_m.up.sql"]);
        assert!(
            problems[0]
                .reason
                .contains("releases up to 1.0.0 end the tenant scope at 2")
        );

        let problems = problems_of(&[declared("1.0.0", None, None)], &[1]);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .reason
                .contains("no release includes the tenant scope")
        );
    }
}
