//! Who a tenant's database objects belong to. Landlord marks the role it creates with the owning Tenant
//! (a comment only a CREATEROLE holder can write, so never the tenant itself) and adopts nothing that does
//! not carry the mark of the Tenant asking. Pure: the SQL that reads and writes marks is in `provision`.

use std::fmt;

/// The Tenant resource that owns (or claims) a slug and everything made for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantOwner {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

const MARK_PREFIX: &str = "landlord tenant ";

impl TenantOwner {
    /// The comment Landlord writes on the role it creates: `landlord tenant <namespace>/<name> uid <uid>`.
    pub fn mark(&self) -> String {
        format!(
            "{MARK_PREFIX}{}/{} uid {}",
            self.namespace, self.name, self.uid
        )
    }

    /// Reads a mark back; None for any other comment (or none), which is what a squatter leaves.
    pub fn from_mark(comment: &str) -> Option<TenantOwner> {
        let rest = comment.strip_prefix(MARK_PREFIX)?;
        let (resource, uid) = rest.split_once(" uid ")?;
        let (namespace, name) = resource.split_once('/')?;
        let plain = |s: &str| !s.is_empty() && !s.contains([' ', '/']);
        (plain(namespace) && plain(name) && plain(uid)).then(|| TenantOwner {
            uid: uid.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// Same Tenant, or the same namespace and name: a cluster rebuilt from Git gets its retained data back.
    pub fn same_tenant(&self, other: &TenantOwner) -> bool {
        self.uid == other.uid || (self.namespace == other.namespace && self.name == other.name)
    }
}

impl fmt::Display for TenantOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant {}/{}", self.namespace, self.name)
    }
}

/// What may be done with an object found under a tenant's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Adoption {
    /// Landlord made it for this very resource.
    Ours,
    /// Landlord made it for an earlier Tenant of the same namespace and name: re-adopt, re-mark.
    Readopt,
    /// Anything else: leave it exactly as it is.
    Refused(Found),
}

/// What the mark on a refused object said, for the message a person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Unmarked,
    OwnedBy(TenantOwner),
    /// A database owned by a role that is not the tenant's.
    OwnedByRole(String),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Unmarked => f.write_str("was not created by Landlord"),
            Found::OwnedBy(owner) => write!(f, "was created by Landlord for {owner}"),
            Found::OwnedByRole(role) => write!(f, "is owned by role {role}, not the tenant's"),
        }
    }
}

/// The one adoption rule: an object's mark (its comment, if any) against the Tenant asking for it.
pub fn adoption(comment: Option<&str>, asking: &TenantOwner) -> Adoption {
    match comment.and_then(TenantOwner::from_mark) {
        Some(owner) if owner.uid == asking.uid => Adoption::Ours,
        Some(owner) if owner.same_tenant(asking) => Adoption::Readopt,
        Some(owner) => Adoption::Refused(Found::OwnedBy(owner)),
        None => Adoption::Refused(Found::Unmarked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(uid: &str, namespace: &str, name: &str) -> TenantOwner {
        TenantOwner {
            uid: uid.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn marks_round_trip() {
        let acme = owner("0b6f-11", "team-a", "acme");
        assert_eq!(acme.mark(), "landlord tenant team-a/acme uid 0b6f-11");
        assert_eq!(TenantOwner::from_mark(&acme.mark()), Some(acme));
    }

    #[test]
    fn anything_else_is_no_mark() {
        for comment in [
            "",
            "created by hand",
            "landlord tenant team-a/acme",
            "landlord tenant team-a uid 1",
            "landlord tenant /acme uid 1",
            "landlord tenant team-a/acme uid ",
            "landlord tenant team-a/acme uid 1 2",
            "Landlord tenant team-a/acme uid 1",
        ] {
            assert_eq!(TenantOwner::from_mark(comment), None, "{comment:?}");
        }
    }

    #[test]
    fn adoption_table() {
        let asking = owner("u2", "team-a", "acme");
        let cases = [
            (None, Adoption::Refused(Found::Unmarked)),
            (
                Some("a DBA's note".to_string()),
                Adoption::Refused(Found::Unmarked),
            ),
            (Some(owner("u2", "team-a", "acme").mark()), Adoption::Ours),
            // The Tenant was deleted with Retain and applied again from Git: same namespace and name.
            (
                Some(owner("u1", "team-a", "acme").mark()),
                Adoption::Readopt,
            ),
            (
                Some(owner("u1", "team-b", "acme").mark()),
                Adoption::Refused(Found::OwnedBy(owner("u1", "team-b", "acme"))),
            ),
            (
                Some(owner("u1", "team-a", "globex").mark()),
                Adoption::Refused(Found::OwnedBy(owner("u1", "team-a", "globex"))),
            ),
        ];
        for (comment, expected) in cases {
            assert_eq!(
                adoption(comment.as_deref(), &asking),
                expected,
                "{comment:?}"
            );
        }
    }
}
