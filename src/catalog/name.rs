//! The one rule for a name that becomes a PostgreSQL identifier or stands beside one: a module, a role of a
//! module, a tenant's slug, an extension. `db::Ident` checks it before any SQL is written, the catalog
//! before a module loads, and the CRDs' patterns say the same (a test in `crd` ties them to `NAME_PATTERN`).

/// Lowercase letters, digits and `_`, starting with a letter.
pub const NAME_PATTERN: &str = r"^[a-z][a-z0-9_]*$";

/// PostgreSQL truncates longer identifiers silently (NAMEDATALEN - 1), so two long names could collide.
pub const MAX_NAME_BYTES: usize = 63;

/// What is wrong with `name` under the rule, as the end of a sentence ("it …"); None when it is fine.
pub fn name_problem(name: &str) -> Option<&'static str> {
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Some("must not be empty"),
        Some(b'a'..=b'z') => {}
        Some(_) => return Some("must start with a lower-case letter a-z"),
    }
    if !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_')) {
        return Some("may only contain lower-case letters a-z, digits and `_`");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("is longer than 63 bytes (PostgreSQL would truncate it)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        for ok in [
            "a",
            "tasks",
            "digital_card",
            "m2",
            &"a".repeat(MAX_NAME_BYTES),
        ] {
            assert_eq!(name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "Tasks",
            "1a",
            "_a",
            "a-b",
            "a.b",
            "ä",
            &"a".repeat(MAX_NAME_BYTES + 1),
        ] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
    }
}
