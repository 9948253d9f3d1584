//! The API reference's conditions section: every condition type and reason, what kstatus reads from it and
//! what it means.

use super::markdown::{code, table};
use crate::crd::{ConditionType, Reason};

pub(super) fn conditions_section() -> String {
    let mut out = String::from(
        "## Conditions\n\n\
         Every kind reports `status.conditions` in the standard `metav1.Condition` shape. `Ready` is the summary \
         and is True only for the current `metadata.generation`; `lastTransitionTime` moves only when `status` \
         changes. While `Ready` is not True, `Reconciling` (work under way) or `Stalled` (a person must act) \
         says which, with the same reason and message, as kstatus (Flux) and Argo CD read them.\n\n\
         ### Condition types\n\n",
    );
    let types = ConditionType::ALL
        .iter()
        .map(|type_| {
            let (kinds, meaning) = condition_type(*type_);
            vec![code(type_.as_str()), kinds.into(), meaning.into()]
        })
        .collect();
    out.push_str(&table(&["Type", "Reported by", "Meaning"], types));
    out.push_str("\n### Reasons\n\n");
    let reasons = Reason::ALL
        .iter()
        .map(|reason| {
            let kstatus = match reason.kstatus() {
                Some(type_) => format!("{} True", code(type_.as_str())),
                None => "neither".into(),
            };
            vec![
                code(reason.as_str()),
                kstatus,
                reason_meaning(*reason).into(),
            ]
        })
        .collect();
    let header = ["Reason", "While `Ready` is not True", "Meaning"];
    out.push_str(&table(&header, reasons));
    out
}

fn condition_type(type_: ConditionType) -> (&'static str, &'static str) {
    const EVERY_KIND: &str = "every kind";
    match type_ {
        ConditionType::Ready => (
            EVERY_KIND,
            "The summary: True when the resource is as its spec asks, for the current generation.",
        ),
        ConditionType::DatabaseReady => (
            "Tenant",
            "The slug is claimed and role, database, extensions and credentials Secret exist for this Tenant.",
        ),
        ConditionType::Migrated => ("Tenant", "The core tenant migrations are applied."),
        ConditionType::DependenciesSatisfied => (
            "ModuleInstallation",
            "The Tenant is ready, and module and release exist, and every module this one depends on is installed.",
        ),
        ConditionType::LandlordMigrated => (
            "ModuleInstallation",
            "The module's landlord-scope migrations (shared landlord database) are at the release.",
        ),
        ConditionType::TenantMigrated => (
            "ModuleInstallation",
            "The module's tenant-scope migrations (the tenant's database) are at the release.",
        ),
        ConditionType::Moved => (
            "Tenant",
            "The move the annotation `tenancy.landlord.dev/move-to` asked for: True once the Tenant serves from \
             the server it names, False while it is under way (`Moving`), refused (`InvalidSpec`, \
             `DestructiveActionBlocked`) or failed (`MoveFailed`). Absent when no move was asked.",
        ),
        ConditionType::Reconciling => (
            EVERY_KIND,
            "kstatus: True while work is under way and will go on by itself; absent otherwise.",
        ),
        ConditionType::Stalled => (
            EVERY_KIND,
            "kstatus: True while a refusal waits for a person to act; absent otherwise.",
        ),
    }
}

fn reason_meaning(reason: Reason) -> &'static str {
    match reason {
        Reason::InvalidSpec => {
            "The spec cannot be carried out as written (e.g. an extension the server lacks or does not trust, a \
             second installation of a module on a Tenant); change the spec."
        }
        Reason::SlugConflict => {
            "Another Tenant holds this slug (the first resource wins); this one touches nothing."
        }
        Reason::TenantNotFound => {
            "`spec.tenant` names no Tenant in the namespace; the installation waits for it."
        }
        Reason::TenantNotReady => {
            "The Tenant's database is not provisioned yet (as the landlord database records it); the \
             installation waits."
        }
        Reason::ModuleNotFound => "`spec.module` is not in the catalog.",
        Reason::VersionNotFound => "`spec.version` is not a release of the module in the catalog.",
        Reason::DependencyMissing => {
            "A module this one depends on (`dependsOn` in its `module.yaml`) is not installed on the Tenant at a \
             matching release; the installation waits."
        }
        Reason::MigrationFailed => {
            "A migration failed; the message names the file and PostgreSQL's error."
        }
        Reason::ChecksumMismatch => {
            "An applied migration no longer matches its file (or the catalog lacks one that was applied); \
             nothing runs until that is resolved."
        }
        Reason::DatabaseUnavailable => {
            "PostgreSQL cannot be reached or refused a connection; retried with backoff (2 s … 60 s)."
        }
        Reason::IrreversibleMigration => {
            "Going down would need a migration that has no down file; refused before anything runs."
        }
        Reason::UninstallBlocked => {
            "A deletion waits: a Tenant for its ModuleInstallations, an installation for the installed modules \
             that depend on it."
        }
        Reason::DestructiveActionBlocked => {
            "`LANDLORD_ENVIRONMENT=production` refuses a step down (dropping a database, a rollback, a \
             downgrade, a reinstall) before anything runs."
        }
        Reason::Paused => "`spec.paused` is set: nothing is started or changed.",
        Reason::Reconciled => "Done: the resource is as its spec asks.",
        Reason::AdoptionRefused => {
            "A role, database or Secret of the tenant's name exists that Landlord did not make for this Tenant; \
             it is left untouched."
        }
        Reason::DatabaseMissing => {
            "Landlord made the tenant database, the server answers, and the database is not there (dropped or \
             lost outside Landlord). It is never made again empty on its own: restore it, or ask for a new one \
             with the annotation `tenancy.landlord.dev/recreate-database`. Deleting the Tenant or an installation \
             of it completes."
        }
        Reason::Progressing => "Work is under way or waits on an earlier step.",
        Reason::DryRun => {
            "`spec.dryRun` is set: the plan is in `status.plan`, nothing was applied."
        }
        Reason::FailureBudgetExceeded => {
            "A ModuleRollout halted: more installations failed than `spec.strategy.maxFailures` allows; it \
             resumes by itself when they recover."
        }
        Reason::NoServerAvailable => {
            "No server may take the Tenant now: the one `spec.server` names, or every one `spec.serverSelector` \
             leaves, is full (`maxTenants`), cordoned or not Ready. It is placed as soon as a DatabaseServer \
             changes (a raised cap, an uncordon, a new server)."
        }
        Reason::ServerInUse => {
            "A DatabaseServer is being deleted while Landlord's records still place tenants on it (the message \
             says how many); its deletion waits until none is left."
        }
        Reason::Moving => {
            "The Tenant is being moved to another server (the message gives the phase, the sessions left, the \
             bytes copied and the time taken), or its move waits for a ModuleInstallation in flight. New \
             sessions are refused until it serves from the target."
        }
        Reason::MoveFailed => {
            "A move failed before the switch (the copy, or a difference found when verifying it): the target was \
             dropped and the source serves again. Remove the annotation, or name another server, to try again."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_and_condition_type_is_explained() {
        let markdown = conditions_section();
        for reason in Reason::ALL {
            assert!(!reason_meaning(*reason).is_empty());
            assert!(markdown.contains(&format!("| `{reason}` |")), "{reason}");
        }
        for type_ in ConditionType::ALL {
            assert!(markdown.contains(&format!("| `{}` |", type_.as_str())));
        }
    }
}
