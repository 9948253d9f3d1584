//! `docs/api.md` in sync with the types, and complete: every field of every kind and every condition reason in it.
//! No database or cluster needed.

mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use landlord::crd::{ConditionType, Reason};

const REGENERATE: &str = "run `cargo run -- api-reference > docs/api.md`";

fn api_md() -> String {
    std::fs::read_to_string(support::repo_root().join("docs/api.md"))
        .unwrap_or_else(|e| panic!("docs/api.md: {e}; {REGENERATE}"))
}

#[test]
fn api_reference_matches_the_types() {
    let generated = landlord::docs::reference_markdown().unwrap();
    assert!(
        api_md() == generated,
        "docs/api.md is out of date: {REGENERATE}"
    );
}

/// The section of `markdown` under `## <heading>`, up to the next `## `.
fn section<'a>(markdown: &'a str, heading: &str) -> &'a str {
    let start = markdown
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("docs/api.md has no section `## {heading}`"));
    let rest = &markdown[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |end| end + 3);
    &rest[..end]
}

/// Every field path under `schema`, walked here independently of the renderer: `a.b`, `a[].b` for array items,
/// `a.*.b` for map values.
fn field_paths(schema: &JSONSchemaProps, path: &str, out: &mut Vec<String>) {
    for (name, field) in schema.properties.iter().flatten() {
        let path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        out.push(path.clone());
        field_paths(field, &path, out);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        field_paths(items, &format!("{path}[]"), out);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &schema.additional_properties {
        field_paths(values, &format!("{path}.*"), out);
    }
}

#[test]
fn api_reference_lists_every_field_of_every_kind() {
    let markdown = api_md();
    for crd in landlord::crd::crds() {
        let kind = &crd.spec.names.kind;
        let text = section(&markdown, kind);
        for version in &crd.spec.versions {
            let root = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .unwrap_or_else(|| panic!("{kind} {} has no schema", version.name));
            let mut paths = Vec::new();
            field_paths(root, "", &mut paths);
            assert!(
                paths.iter().any(|p| p.starts_with("spec."))
                    && paths.iter().any(|p| p.starts_with("status.")),
                "{kind}: {paths:?}"
            );
            for path in paths {
                assert!(
                    text.contains(&format!("\n| `{path}` |")),
                    "docs/api.md, section {kind}, has no row for `{path}`; {REGENERATE}"
                );
            }
        }
    }
}

#[test]
fn api_reference_lists_every_condition_type_and_reason() {
    let markdown = api_md();
    let conditions = section(&markdown, "Conditions");
    for reason in Reason::ALL {
        assert!(
            conditions.contains(&format!("\n| `{reason}` |")),
            "docs/api.md lists no reason {reason}; {REGENERATE}"
        );
    }
    for type_ in ConditionType::ALL {
        let type_ = type_.as_str();
        assert!(
            conditions.contains(&format!("\n| `{type_}` |")),
            "docs/api.md lists no condition type {type_}; {REGENERATE}"
        );
    }
}
