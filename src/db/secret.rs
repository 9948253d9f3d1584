//! Tenant passwords. They never appear in errors, Debug output or logs, and never reach the server either:
//! CREATE/ALTER ROLE receive a SCRAM-SHA-256 verifier computed here (as `psql \password` does), so a failed
//! statement echoed into the server log (`log_min_error_statement`) shows no password.

use std::fmt;

use sha2::{Digest, Sha256};

use super::Error;

/// Bytes of OS randomness in a generated password (hex-encoded: 48 characters).
pub const PASSWORD_BYTES: usize = 24;
const SCRAM_ITERATIONS: u32 = 4096;
const SCRAM_SALT_BYTES: usize = 16;

/// A role password. Debug and Display print `***`; read it with `expose` where it must go (the tenant's
/// Secret, a connection).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// 24 random bytes from the OS, hex-encoded.
    pub fn generate() -> Result<Password, Error> {
        Ok(Password(hex(&random_bytes::<PASSWORD_BYTES>()?)))
    }

    /// A password from elsewhere (an existing Secret). Printable ASCII only: PostgreSQL normalises other
    /// text with SASLprep, which the verifier below does not implement.
    pub fn new(password: impl Into<String>) -> Result<Password, Error> {
        let password = password.into();
        if password.is_empty() || password.len() > 256 {
            return Err(Error::InvalidPassword("must be 1 to 256 characters long"));
        }
        if !password.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Error::InvalidPassword("must be printable ASCII"));
        }
        Ok(Password(password))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, the form PostgreSQL stores.
    pub(crate) fn scram_verifier(&self) -> Result<String, Error> {
        let salt = random_bytes::<SCRAM_SALT_BYTES>()?;
        Ok(scram_verifier(self.0.as_bytes(), &salt, SCRAM_ITERATIONS))
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

fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Randomness(e.to_string()))?;
    Ok(bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

// RFC 5802 section 3, with the parameters PostgreSQL uses.
fn scram_verifier(password: &[u8], salt: &[u8], iterations: u32) -> String {
    let salted = pbkdf2_sha256(password, salt, iterations);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let server_key = hmac_sha256(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        base64(salt),
        base64(&stored_key),
        base64(&server_key)
    )
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

// One output block is all SCRAM-SHA-256 needs (32 bytes).
fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac_sha256(password, &first);
    let mut result = u;
    for _ in 1..iterations {
        u = hmac_sha256(password, &u);
        result.iter_mut().zip(u).for_each(|(r, x)| *r ^= x);
    }
    result
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    fn rejects_passwords_scram_would_normalise() {
        assert!(Password::new("pässword").is_err());
        assert!(Password::new("a\nb").is_err());
        assert!(Password::new("").is_err());
    }

    #[test]
    fn hmac_matches_a_reference_with_a_long_key() {
        // Python: hmac.new(b'k'*100, b'msg', 'sha256').hexdigest()
        assert_eq!(
            hex(&hmac_sha256(&[b'k'; 100], b"msg")),
            "bd56a1782c2830e8abc6ed866a57a1230661e650b84c62f7ee3accc5fa5af491"
        );
    }

    #[test]
    fn verifier_matches_a_reference() {
        // Python: hashlib.pbkdf2_hmac + hmac, as PostgreSQL's scram_build_secret does.
        assert_eq!(
            scram_verifier(b"pencil", b"0123456789abcdef", 4096),
            "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$nQpbZ77WudtqufPwikHXGRt6g2QJ4zns8bZLw273DRM=:\
             jn2amWP1q1h+jgjy0YTO14S6/F02SV7taipOeB7ef20="
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
