//! What the API server checks on a field, as the reference states it: patterns, lengths, enums, defaults
//! and CEL rules, values written as a user writes them in a manifest.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool, ValidationRule,
};
use serde_json::Value;

use super::markdown::{code, code_list, text};

/// What the API server checks on this field; for an array or map also on each item or value.
pub(super) fn validation(schema: &JSONSchemaProps) -> Result<Vec<String>, serde_yaml::Error> {
    let mut out = constraints(schema)?;
    let nested = [
        ("each item", items(schema)),
        ("each value", map_values(schema)),
    ];
    for (what, inner) in nested {
        // Object items and values have rows of their own for their fields; only their own checks go here.
        if let Some(inner) = inner {
            out.extend(
                constraints(inner)?
                    .into_iter()
                    .map(|c| format!("{what}: {c}")),
            );
        }
    }
    Ok(out)
}

fn constraints(schema: &JSONSchemaProps) -> Result<Vec<String>, serde_yaml::Error> {
    let mut out = Vec::new();
    if let Some(values) = &schema.enum_ {
        let values = values
            .iter()
            .map(|v| flow_yaml(&v.0).map(|v| code(&v)))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(format!("one of {}", values.join(", ")));
    }
    if let Some(pattern) = &schema.pattern {
        out.push(format!("pattern {}", code(pattern)));
    }
    let bounds = [
        ("minLength", schema.min_length.map(|n| n.to_string())),
        ("maxLength", schema.max_length.map(|n| n.to_string())),
        ("minimum", schema.minimum.map(|n| n.to_string())),
        ("maximum", schema.maximum.map(|n| n.to_string())),
        ("multipleOf", schema.multiple_of.map(|n| n.to_string())),
        ("minItems", schema.min_items.map(|n| n.to_string())),
        ("maxItems", schema.max_items.map(|n| n.to_string())),
        (
            "minProperties",
            schema.min_properties.map(|n| n.to_string()),
        ),
        (
            "maxProperties",
            schema.max_properties.map(|n| n.to_string()),
        ),
    ];
    for (name, bound) in bounds {
        if let Some(bound) = bound {
            out.push(format!("{name}: {bound}"));
        }
    }
    if schema.exclusive_minimum == Some(true) {
        out.push("minimum excluded".into());
    }
    if schema.exclusive_maximum == Some(true) {
        out.push("maximum excluded".into());
    }
    if schema.unique_items == Some(true) {
        out.push("items unique".into());
    }
    if let Some(list_type) = &schema.x_kubernetes_list_type {
        let keys = code_list(schema.x_kubernetes_list_map_keys.as_deref());
        out.push(match list_type.as_str() {
            "set" => "list type `set`: items unique".into(),
            "map" => format!("list type `map`, keyed by {keys}"),
            other => format!("list type {}", code(other)),
        });
    }
    if let Some(map_type) = &schema.x_kubernetes_map_type {
        out.push(format!("map type {}", code(map_type)));
    }
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) {
        out.push("unknown fields kept".into());
    }
    for rule in schema.x_kubernetes_validations.iter().flatten() {
        out.push(validation_rule(rule));
    }
    Ok(out)
}

/// ``rule `self == oldSelf`: spec.slug is immutable``
pub(super) fn validation_rule(rule: &ValidationRule) -> String {
    let mut out = format!("rule {}", code(&rule.rule));
    if let Some(message) = &rule.message {
        out.push_str(&format!(": {}", text(message)));
    } else if let Some(expression) = &rule.message_expression {
        out.push_str(&format!(": message {}", code(expression)));
    }
    if let Some(reason) = &rule.reason {
        out.push_str(&format!(" ({})", code(reason)));
    }
    out
}

/// A value as a user writes it in a manifest: YAML, in flow style so that it fits a table cell.
pub(super) fn flow_yaml(value: &Value) -> Result<String, serde_yaml::Error> {
    Ok(match value {
        Value::Array(items) => {
            let items = items.iter().map(flow_yaml).collect::<Result<Vec<_>, _>>()?;
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields = fields
                .iter()
                .map(|(key, value)| {
                    Ok(format!(
                        "{}: {}",
                        flow_yaml(&Value::String(key.clone()))?,
                        flow_yaml(value)?
                    ))
                })
                .collect::<Result<Vec<_>, serde_yaml::Error>>()?;
            format!("{{{}}}", fields.join(", "))
        }
        scalar => {
            let yaml = serde_yaml::to_string(scalar)?;
            let yaml = yaml.trim_end();
            let flow_safe = !yaml.contains('\n')
                && !yaml.starts_with('|')
                && !yaml.contains([',', '[', ']', '{', '}']);
            if flow_safe {
                yaml.to_string()
            } else {
                // JSON's quoted string is YAML too.
                scalar.to_string()
            }
        }
    })
}

pub(super) fn items(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match schema.items.as_ref()? {
        JSONSchemaPropsOrArray::Schema(items) => Some(items),
        JSONSchemaPropsOrArray::Schemas(_) => None,
    }
}

pub(super) fn map_values(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match schema.additional_properties.as_ref()? {
        JSONSchemaPropsOrBool::Schema(values) => Some(values),
        JSONSchemaPropsOrBool::Bool(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_render_as_flow_yaml() {
        let flow = |value: Value| flow_yaml(&value).unwrap();
        assert_eq!(flow(json!("Retain")), "Retain");
        assert_eq!(flow(json!("1.0")), "'1.0'");
        assert_eq!(flow(json!(10)), "10");
        assert_eq!(
            flow(json!({"maxFailures": 0, "maxParallel": 10})),
            "{maxFailures: 0, maxParallel: 10}"
        );
        assert_eq!(flow(json!(["a,b", true])), r#"["a,b", true]"#);
    }
}
