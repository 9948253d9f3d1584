//! The apiserver's rules for the names Landlord makes up from users' names: object names and label values.
//! Checked before anything is created, so that a name the API would refuse stops a reconcile at the start
//! rather than half-way. Pure.

/// A label value holds at most this many characters.
pub const MAX_LABEL_VALUE: usize = 63;
/// An object name (a DNS subdomain) holds at most this many characters.
pub const MAX_OBJECT_NAME: usize = 253;

/// Why `value` cannot be a label value, if it cannot: at most 63 characters, alphanumerics, `-`, `_`, `.`,
/// beginning and ending with an alphanumeric (or empty).
pub fn label_value_problem(value: &str) -> Option<String> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if value.len() > MAX_LABEL_VALUE {
        Some(format!(
            "{value:?} is {} characters long; a label value holds at most {MAX_LABEL_VALUE}",
            value.len()
        ))
    } else if !value.is_empty()
        && (!alnum(value.chars().next())
            || !alnum(value.chars().last())
            || !value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(format!(
            "{value:?} is not a label value (alphanumerics, '-', '_' and '.', beginning and ending with an \
             alphanumeric)"
        ))
    } else {
        None
    }
}

/// Why `name` cannot name an object, if it cannot: a DNS subdomain of at most 253 characters (lowercase
/// alphanumerics, `-` and `.`, beginning and ending with an alphanumeric).
pub fn object_name_problem(name: &str) -> Option<String> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.len() > MAX_OBJECT_NAME {
        Some(format!(
            "{name:?} is {} characters long; an object name holds at most {MAX_OBJECT_NAME}",
            name.len()
        ))
    } else if !alnum(name.chars().next())
        || !alnum(name.chars().last())
        || !name.split('.').all(|part| {
            alnum(part.chars().next())
                && alnum(part.chars().last())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
    {
        Some(format!(
            "{name:?} is not an object name (lowercase alphanumerics, '-' and '.', beginning and ending with \
             an alphanumeric)"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values() {
        assert_eq!(label_value_problem(""), None);
        assert_eq!(label_value_problem("acme-corp.eu_1"), None);
        assert_eq!(label_value_problem(&"a".repeat(63)), None);
        assert!(label_value_problem(&"a".repeat(64)).is_some());
        assert!(label_value_problem("-acme").is_some());
        assert!(label_value_problem("acme/x").is_some());
    }

    #[test]
    fn object_names() {
        assert_eq!(object_name_problem("acme-digital-card"), None);
        assert_eq!(object_name_problem("a.b-c"), None);
        assert_eq!(object_name_problem(&"a".repeat(253)), None);
        assert!(object_name_problem(&"a".repeat(254)).is_some());
        for bad in ["", "acme-tasks-", "Acme", "a_b", "a..b", "-a"] {
            assert!(object_name_problem(bad).is_some(), "{bad}");
        }
    }
}
