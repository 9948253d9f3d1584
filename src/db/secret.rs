//! Tenant passwords. They never appear in errors, Debug output or logs, and never reach the server either:
//! CREATE/ALTER ROLE receive a SCRAM-SHA-256 verifier computed here (as `psql \password` does, SASLprep
//! included, by the rust-postgres project's `postgres-protocol`), so a failed statement echoed into the
//! server log (`log_min_error_statement`) shows no password.

use std::fmt;

use crate::db::Error;

/// Bytes of OS randomness in a generated password (hex-encoded: 48 characters).
pub const PASSWORD_BYTES: usize = 24;

/// A role password. Debug and Display print `***`; read it with `expose` where it must go (the tenant's
/// Secret, a connection).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// 24 random bytes from the OS, hex-encoded.
    pub fn generate() -> Result<Password, Error> {
        let mut bytes = [0u8; PASSWORD_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| Error::Randomness(e.to_string()))?;
        Ok(Password(hex::encode(bytes)))
    }

    /// A password from elsewhere (an existing Secret): any UTF-8 text without control characters (which
    /// no connection string or libpq prompt carries well); PostgreSQL normalises it with SASLprep, and so
    /// does the verifier.
    pub fn new(password: impl Into<String>) -> Result<Password, Error> {
        let password = password.into();
        if password.is_empty() || password.len() > 256 {
            return Err(Error::InvalidPassword("must be 1 to 256 bytes long"));
        }
        if password.chars().any(char::is_control) {
            return Err(Error::InvalidPassword("must not hold control characters"));
        }
        Ok(Password(password))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, the form PostgreSQL stores.
    pub(crate) fn scram_verifier(&self) -> String {
        postgres_protocol::password::scram_sha_256(self.0.as_bytes())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_random_hex() {
        let a = Password::generate().unwrap();
        let b = Password::generate().unwrap();
        assert_eq!(a.expose().len(), PASSWORD_BYTES * 2);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn debug_and_display_hide_the_password() {
        let p = Password::new("hunter2").unwrap();
        assert_eq!(format!("{p:?} {p}"), "*** ***");
        assert_eq!(format!("{:?}", Some(p)), "Some(***)");
    }

    #[test]
    fn takes_utf8_and_refuses_control_characters_and_empty() {
        assert!(Password::new("pässwörd ☃").is_ok());
        assert!(Password::new("a\nb").is_err());
        assert!(Password::new("").is_err());
        assert!(Password::new("x".repeat(257)).is_err());
    }

    #[test]
    fn verifiers_have_postgresqls_form_and_a_fresh_salt_each() {
        let p = Password::new("pencil").unwrap();
        let (a, b) = (p.scram_verifier(), p.scram_verifier());
        assert!(a.starts_with("SCRAM-SHA-256$4096:"), "{a}");
        assert_eq!(a.matches('$').count(), 2);
        assert_ne!(a, b, "a salt of its own each time");
    }
}
