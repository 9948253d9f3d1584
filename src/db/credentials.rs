//! What a tenant's application needs to reach its own database as its own role: the contents of its Secret.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::db::Password;

/// The contents of a tenant's Secret. Debug hides the password; `uri` does not (it goes into the Secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantCredentials {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: Password,
}

impl TenantCredentials {
    /// `postgres://user:password@host:port/database`, with user and password percent-encoded.
    pub fn uri(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{}:{}@{host}:{}/{}",
            percent_encode(&self.username),
            percent_encode(self.password.expose()),
            self.port,
            percent_encode(&self.database)
        )
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in the URI's userinfo and path.
const URI_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, URI_ESCAPED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encodes_the_password_and_debug_hides_it() {
        let credentials = TenantCredentials {
            host: "127.0.0.1".into(),
            port: 5432,
            database: "tenant_acme".into(),
            username: "tenant_acme".into(),
            password: Password::new("p@ss:w/rd").unwrap(),
        };
        assert_eq!(
            credentials.uri(),
            "postgres://tenant_acme:p%40ss%3Aw%2Frd@127.0.0.1:5432/tenant_acme"
        );
        assert!(!format!("{credentials:?}").contains("p@ss"));
    }
}
