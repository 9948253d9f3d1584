//! The one place where names and literals become SQL text. Identifiers (databases, roles, extensions,
//! schemas) are validated against a strict pattern and always double-quoted; values go through bind
//! parameters. The only literal we format is a role's password verifier, which we generate ourselves.

use std::fmt;

use sqlx::{AssertSqlSafe, SqlStr};

use crate::catalog::{MAX_NAME_BYTES, name_problem};
use crate::db::Error;

/// PostgreSQL truncates longer identifiers silently (NAMEDATALEN - 1), so two long names could collide.
pub const MAX_IDENT_BYTES: usize = MAX_NAME_BYTES;

/// A validated identifier: `^[a-z][a-z0-9_]*$`, at most 63 bytes. Lower case only, so the quoted and the
/// unquoted spelling name the same object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident(String);

impl Ident {
    pub fn new(name: &str) -> Result<Ident, Error> {
        match check(name) {
            Ok(()) => Ok(Ident(name.to_string())),
            Err(reason) => Err(Error::InvalidIdent {
                name: printable(name),
                reason,
            }),
        }
    }

    /// Validates every name, stopping at the first rejected one.
    pub fn all<S: AsRef<str>>(names: &[S]) -> Result<Vec<Ident>, Error> {
        names.iter().map(|n| Ident::new(n.as_ref())).collect()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `"name"`: safe to format into SQL because validation admits no quote or other special character.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The names of a tenant's database objects: database and role are both `tenant_<slug>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantNames {
    slug: Ident,
    database: Ident,
}

impl TenantNames {
    /// Validates the slug and the database name it makes (at most 63 bytes).
    pub fn new(slug: &str) -> Result<TenantNames, Error> {
        let slug = Ident::new(slug)?;
        let database = Ident::new(&format!("tenant_{slug}"))?;
        Ok(TenantNames { slug, database })
    }

    pub fn slug(&self) -> &str {
        self.slug.as_str()
    }

    pub fn database(&self) -> &Ident {
        &self.database
    }

    /// The tenant's own role: owner of its database, the user in its Secret.
    pub fn role(&self) -> &Ident {
        &self.database
    }
}

fn check(name: &str) -> Result<(), &'static str> {
    name_problem(name).map_or(Ok(()), Err)
}

/// Rejected input goes into error messages: escape it and keep it short.
fn printable(name: &str) -> String {
    let mut shown: String = name.chars().take(80).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// A single-quoted SQL literal, for the one place a value cannot be bound (`PASSWORD` in CREATE/ALTER
/// ROLE). Refuses NUL and control characters; doubles quotes; switches to `E''` when a backslash appears
/// so the result is right whatever `standard_conforming_strings` says.
pub(crate) fn quote_literal(value: &str) -> Result<String, Error> {
    if value.chars().any(char::is_control) {
        return Err(Error::InvalidLiteral("contains control characters"));
    }
    let escaped = value.replace('\'', "''");
    if escaped.contains('\\') {
        Ok(format!("E'{}'", escaped.replace('\\', "\\\\")))
    } else {
        Ok(format!("'{escaped}'"))
    }
}

/// SQL assembled in this layer from constant text, `Ident::quoted` and `quote_literal`, or a migration
/// script from the catalog (the operator's own trusted input). The one spot where we vouch for it to sqlx.
pub(crate) fn sql(text: String) -> SqlStr {
    use sqlx::SqlSafeStr;
    AssertSqlSafe(text).into_sql_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for name in ["acme", "tenant_acme", "a", "ltree", "btree_gin", "t0_1"] {
            assert_eq!(Ident::new(name).unwrap().quoted(), format!("\"{name}\""));
        }
        let longest = format!("tenant_{}", "a".repeat(MAX_IDENT_BYTES - 7));
        assert!(Ident::new(&longest).is_ok());
    }

    #[test]
    fn rejects_injection_attempts() {
        let attempts = [
            "",
            "acme;drop",
            "a\"b",
            "x; DROP DATABASE landlord",
            "x\"; DROP DATABASE landlord; --",
            "a'b",
            "a b",
            "a-b",
            "a\\b",
            "a\0b",
            "a\nb",
            "Acme",
            "ACME",
            "_acme",
            "1acme",
            "acmé",
            "ａcme",
            "tenant_ß",
            "a/*x*/",
            "a$1",
            "a.b",
        ];
        for name in attempts {
            let err = Ident::new(name).unwrap_err();
            assert!(matches!(err, Error::InvalidIdent { .. }), "{name:?}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn rejects_names_postgres_would_truncate() {
        let name = "a".repeat(MAX_IDENT_BYTES + 1);
        let err = Ident::new(&name).unwrap_err();
        assert!(err.to_string().contains("63 bytes"), "{err}");
    }

    #[test]
    fn error_shows_the_rejected_name_escaped() {
        let err = Ident::new("a\"b\n").unwrap_err();
        assert!(err.to_string().contains(r#""a\"b\n""#), "{err}");
    }

    #[test]
    fn tenant_names_keep_the_database_name_within_63_bytes() {
        let names = TenantNames::new("acme").unwrap();
        assert_eq!(names.database().quoted(), "\"tenant_acme\"");
        assert_eq!(names.role().as_str(), "tenant_acme");
        assert!(TenantNames::new(&"a".repeat(MAX_IDENT_BYTES - 7)).is_ok());
        let err = TenantNames::new(&"a".repeat(MAX_IDENT_BYTES - 6)).unwrap_err();
        assert!(err.to_string().contains("tenant_aaa"), "{err}");
        for slug in [
            "acme;drop",
            "a\"b",
            "x; DROP DATABASE landlord",
            "Acme",
            "acmé",
        ] {
            assert!(TenantNames::new(slug).is_err(), "{slug:?}");
        }
    }

    #[test]
    fn all_stops_at_the_first_bad_name() {
        assert_eq!(Ident::all(&["ltree", "btree_gin"]).unwrap().len(), 2);
        assert!(Ident::all(&["ltree", "x; DROP DATABASE landlord"]).is_err());
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(quote_literal("abc123").unwrap(), "'abc123'");
        assert_eq!(quote_literal("it's").unwrap(), "'it''s'");
        assert_eq!(
            quote_literal("'; DROP ROLE x; --").unwrap(),
            "'''; DROP ROLE x; --'"
        );
        assert_eq!(quote_literal(r"a\'b").unwrap(), r"E'a\\''b'");
        assert!(quote_literal("a\0b").is_err());
        assert!(quote_literal("a\nb").is_err());
    }
}
