//! schemars' OpenAPI 3.0 output → a Kubernetes *structural* schema, the
//! only kind an `apiextensions.k8s.io/v1` CRD accepts:
//!
//! | schemars writes                                  | a CRD gets |
//! |--------------------------------------------------|------------|
//! | `$ref` to a definition                           | the definition, inlined |
//! | a `$ref` back to a definition being inlined      | `{type: object, x-kubernetes-preserve-unknown-fields: true}` (a CRD schema cannot recurse) |
//! | `anyOf`/`oneOf` with a `null` branch (`Option`)  | the other branch, `nullable: true` |
//! | `oneOf` of string constants (unit enums)         | `{type: string, enum: [...]}` |
//! | `anyOf` of an integer and a string (untagged)    | `x-kubernetes-int-or-string` with the `anyOf: [{type: integer}, {type: string}]` pattern, the integer's bounds and the string's length/pattern on the node |
//! | `allOf` (a `$ref` with siblings)                 | the branches merged |
//! | `type: [T, "null"]`                              | `type: T`, `nullable: true` |
//! | `const: v`                                       | `enum: [v]` |
//! | `additionalProperties: false` (deny_unknown_fields) | dropped: the API server prunes unknown fields |
//! | formats Kubernetes does not know (`uint16`, `ip`) | dropped (the bounds stay) |
//! | `default` of an array or object                  | dropped (scalar defaults stay: the parser's own) |
//! | `$schema`, `title`, `examples`, `uniqueItems`, ... | dropped |
//!
//! Any other keyword or union is an error: a new model type that needs a new
//! rule fails the CRD tests instead of shipping a schema the API server refuses.

use serde_json::{Map, Value, json};

/// Why a schema cannot become a structural one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StructuralError {
    /// A `$ref` that is not `#/components/schemas/NAME`, or names no definition.
    #[error("unresolved $ref {0:?}")]
    UnresolvedReference(String),
    /// A keyword with no structural equivalent.
    #[error("unsupported schema keyword {0:?}")]
    UnsupportedKeyword(String),
    /// An `anyOf`/`oneOf` that is not one of the shapes above.
    #[error("unsupported union: {0}")]
    UnsupportedUnion(String),
    /// A `type` list other than `[T]`, `[T, null]` or integer-or-string.
    #[error("unsupported type list {0}")]
    UnsupportedTypeList(String),
    /// Something other than an object or `true` where a schema belongs.
    #[error("not a schema: {0}")]
    NotASchema(String),
}

/// Where schemars' OpenAPI 3.0 settings put definitions.
pub const DEFINITIONS_PREFIX: &str = "#/components/schemas/";

/// Formats a CRD schema may carry (Kubernetes' known formats that weft uses).
const KNOWN_FORMATS: &[&str] = &["int32", "int64", "float", "double", "byte", "date-time"];

/// Keywords copied as they are.
const COPIED_KEYWORDS: &[&str] = &[
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "nullable",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
];

/// Keywords dropped: annotations or JSON Schema features a CRD cannot use.
const DROPPED_KEYWORDS: &[&str] = &[
    "$schema",
    "title",
    "examples",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
    "components",
    "definitions",
    "$defs",
    "uniqueItems",
];

/// Keywords whose values (lists) add up when schemas merge, instead of the
/// later one replacing the earlier.
const ACCUMULATED_KEYWORDS: &[&str] = &["required", "x-kubernetes-validations"];

/// Converts `schema` (a schemars OpenAPI 3.0 schema whose `$ref`s point into
/// `definitions`) into a structural schema.
pub fn structural_schema(
    schema: &Value,
    definitions: &Map<String, Value>,
) -> Result<Value, StructuralError> {
    let mut converter = Converter {
        definitions,
        inlining: Vec::new(),
    };
    converter.convert(schema).map(Value::Object)
}

struct Converter<'a> {
    definitions: &'a Map<String, Value>,
    /// The definitions being inlined, outermost first (a `$ref` to one of
    /// them is a recursion).
    inlining: Vec<String>,
}

impl Converter<'_> {
    fn convert(&mut self, schema: &Value) -> Result<Map<String, Value>, StructuralError> {
        let fields = match schema {
            Value::Object(fields) => fields,
            Value::Bool(true) => return Ok(free_form()),
            other => return Err(StructuralError::NotASchema(other.to_string())),
        };
        let mut converted = Map::new();
        if let Some(reference) = fields.get("$ref") {
            merge(&mut converted, self.resolve(reference)?);
        }
        if let Some(branches) = fields.get("allOf") {
            for branch in as_list(branches)? {
                let branch = self.convert(branch)?;
                merge(&mut converted, branch);
            }
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(branches) = fields.get(keyword) {
                let union = self.union(keyword, as_list(branches)?)?;
                merge(&mut converted, union);
            }
        }
        let mut own = Map::new();
        for (keyword, value) in fields {
            self.convert_keyword(keyword, value, &mut own)?;
        }
        merge(&mut converted, own);
        Ok(converted)
    }

    /// One keyword of a schema, converted into `own`.
    fn convert_keyword(
        &mut self,
        keyword: &str,
        value: &Value,
        own: &mut Map<String, Value>,
    ) -> Result<(), StructuralError> {
        match keyword {
            "$ref" | "allOf" | "anyOf" | "oneOf" => {}
            "properties" => {
                let mut properties = Map::new();
                for (name, property) in as_map(value)? {
                    properties.insert(name.clone(), Value::Object(self.convert(property)?));
                }
                own.insert(keyword.into(), Value::Object(properties));
            }
            "items" => {
                own.insert(keyword.into(), Value::Object(self.convert(value)?));
            }
            "additionalProperties" => match value {
                // deny_unknown_fields: the API server prunes unknown fields.
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    own.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
                }
                schema => {
                    own.insert(keyword.into(), Value::Object(self.convert(schema)?));
                }
            },
            "type" => merge(own, convert_type(value)?),
            "const" => {
                own.insert("enum".into(), json!([value]));
            }
            "format" => {
                if value
                    .as_str()
                    .is_some_and(|format| KNOWN_FORMATS.contains(&format))
                {
                    own.insert(keyword.into(), value.clone());
                }
            }
            "default" => {
                if !(value.is_array() || value.is_object() || value.is_null()) {
                    own.insert(keyword.into(), value.clone());
                }
            }
            "description" => {
                let text = value.as_str().unwrap_or_default();
                own.insert(keyword.into(), plain_description(text).into());
            }
            "required" | "x-kubernetes-validations" => {
                own.insert(keyword.into(), value.clone());
            }
            keyword if COPIED_KEYWORDS.contains(&keyword) => {
                own.insert(keyword.into(), value.clone());
            }
            keyword if DROPPED_KEYWORDS.contains(&keyword) => {}
            other => return Err(StructuralError::UnsupportedKeyword(other.to_string())),
        }
        Ok(())
    }

    /// A `$ref`, inlined; a recursive one becomes a free-form object.
    fn resolve(&mut self, reference: &Value) -> Result<Map<String, Value>, StructuralError> {
        let text = reference.as_str().unwrap_or_default();
        let name = text
            .strip_prefix(DEFINITIONS_PREFIX)
            .ok_or_else(|| StructuralError::UnresolvedReference(text.to_string()))?;
        if self.inlining.iter().any(|inlined| inlined == name) {
            let mut recursion = free_form();
            recursion.insert("type".into(), "object".into());
            return Ok(recursion);
        }
        let definition = self
            .definitions
            .get(name)
            .ok_or_else(|| StructuralError::UnresolvedReference(text.to_string()))?;
        self.inlining.push(name.to_string());
        let converted = self.convert(definition);
        self.inlining.pop();
        converted
    }

    /// An `anyOf`/`oneOf`, as one schema (see the module's table).
    fn union(
        &mut self,
        keyword: &str,
        branches: &[Value],
    ) -> Result<Map<String, Value>, StructuralError> {
        if branches.iter().all(is_required_only) {
            // Value validation only (Linkerd's `oneOf` of required fields):
            // structural as it is.
            let mut union = Map::new();
            union.insert(keyword.into(), Value::Array(branches.to_vec()));
            return Ok(union);
        }
        let mut nullable = false;
        let mut converted = Vec::new();
        for branch in branches {
            if is_null(branch) {
                nullable = true;
            } else {
                converted.push(self.convert(branch)?);
            }
        }
        let mut union = match converted.len() {
            0 => Map::new(),
            1 => converted.remove(0),
            _ if converted.iter().all(is_string_enum) => string_enum(&converted),
            _ => int_or_string(&converted)?,
        };
        if nullable {
            union.insert("nullable".into(), true.into());
        }
        Ok(union)
    }
}

/// A doc comment without rustdoc's link syntax: ``[`Type`]`` and
/// ``[`Type`](path)`` become `` `Type` `` (kubectl explain shows plain text).
fn plain_description(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[`") {
        let after = &rest[start + 1..];
        let Some(end) = after.find("`]") else { break };
        plain.push_str(&rest[..start]);
        plain.push_str(&after[..end + 1]);
        rest = &after[end + 2..];
        if rest.starts_with('(')
            && let Some(close) = rest.find(')')
        {
            rest = &rest[close + 1..];
        }
    }
    plain.push_str(rest);
    plain
}

/// `{x-kubernetes-preserve-unknown-fields: true}`.
fn free_form() -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    schema
}

fn as_list(value: &Value) -> Result<&Vec<Value>, StructuralError> {
    value
        .as_array()
        .ok_or_else(|| StructuralError::NotASchema(value.to_string()))
}

fn as_map(value: &Value) -> Result<&Map<String, Value>, StructuralError> {
    value
        .as_object()
        .ok_or_else(|| StructuralError::NotASchema(value.to_string()))
}

/// Merges `from` into `into`: later keywords win, except lists that add up.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (keyword, value) in from {
        match (into.get_mut(&keyword), value) {
            (Some(Value::Array(existing)), Value::Array(more))
                if ACCUMULATED_KEYWORDS.contains(&keyword.as_str()) =>
            {
                for item in more {
                    if !existing.contains(&item) {
                        existing.push(item);
                    }
                }
            }
            (Some(Value::Object(existing)), Value::Object(more)) if keyword == "properties" => {
                for (name, property) in more {
                    match existing.get_mut(&name) {
                        Some(Value::Object(present)) => {
                            if let Value::Object(property) = property {
                                merge(present, property);
                            }
                        }
                        _ => {
                            existing.insert(name, property);
                        }
                    }
                }
            }
            (_, value) => {
                into.insert(keyword, value);
            }
        }
    }
}

/// A `type` keyword: one type, or a list with `null` and/or integer-or-string.
fn convert_type(value: &Value) -> Result<Map<String, Value>, StructuralError> {
    let mut converted = Map::new();
    let types: Vec<&str> = match value {
        Value::String(single) => vec![single.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        other => return Err(StructuralError::UnsupportedTypeList(other.to_string())),
    };
    let (nulls, types): (Vec<&str>, Vec<&str>) =
        types.into_iter().partition(|name| *name == "null");
    if !nulls.is_empty() {
        converted.insert("nullable".into(), true.into());
    }
    match types.as_slice() {
        [] => {}
        [single] => {
            converted.insert("type".into(), (*single).into());
        }
        [first, second]
            if (*first == "integer" && *second == "string")
                || (*first == "string" && *second == "integer") =>
        {
            converted.extend(int_or_string_pattern());
        }
        _ => return Err(StructuralError::UnsupportedTypeList(value.to_string())),
    }
    Ok(converted)
}

/// The only union a structural schema allows: `x-kubernetes-int-or-string`
/// with `anyOf: [{type: integer}, {type: string}]`.
fn int_or_string_pattern() -> Map<String, Value> {
    let mut pattern = Map::new();
    pattern.insert("x-kubernetes-int-or-string".into(), true.into());
    pattern.insert(
        "anyOf".into(),
        json!([{"type": "integer"}, {"type": "string"}]),
    );
    pattern
}

/// `{const: null}`, `{type: null}`, `{enum: [null]}` or a bare `nullable`.
fn is_null(branch: &Value) -> bool {
    let Some(fields) = branch.as_object() else {
        return false;
    };
    fields.get("const") == Some(&Value::Null)
        || fields.get("type") == Some(&json!("null"))
        || fields.get("enum") == Some(&json!([null]))
        || (fields.get("nullable") == Some(&Value::Bool(true)) && !fields.contains_key("type"))
}

/// `{required: [...]}`: a branch that only requires fields.
fn is_required_only(branch: &Value) -> bool {
    branch
        .as_object()
        .is_some_and(|fields| !fields.is_empty() && fields.keys().all(|key| key == "required"))
}

fn is_string_enum(schema: &Map<String, Value>) -> bool {
    schema.get("type") == Some(&json!("string")) && schema.contains_key("enum")
}

/// Unit enum variants (one constant each, maybe documented) as one enum.
fn string_enum(branches: &[Map<String, Value>]) -> Map<String, Value> {
    let mut values = Vec::new();
    for branch in branches {
        for value in branch
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), "string".into());
    schema.insert("enum".into(), Value::Array(values));
    schema
}

/// An untagged integer-or-string enum: the int-or-string pattern, with the
/// integer branch's bounds and the string branch's length and pattern on the
/// node (each keyword applies to its own type only).
fn int_or_string(branches: &[Map<String, Value>]) -> Result<Map<String, Value>, StructuralError> {
    let type_of = |branch: &Map<String, Value>| {
        branch
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (integers, strings): (Vec<_>, Vec<_>) = branches
        .iter()
        .partition(|branch| type_of(branch) == "integer");
    let ([integer], [string]) = (integers.as_slice(), strings.as_slice()) else {
        return Err(StructuralError::UnsupportedUnion(
            Value::Array(branches.iter().cloned().map(Value::Object).collect()).to_string(),
        ));
    };
    if type_of(string) != "string" {
        return Err(StructuralError::UnsupportedUnion(format!(
            "integer or {}",
            type_of(string)
        )));
    }
    let mut schema = int_or_string_pattern();
    for (branch, keywords) in [
        (integer, &["minimum", "maximum"][..]),
        (string, &["minLength", "maxLength", "pattern"][..]),
    ] {
        for keyword in keywords {
            if let Some(value) = branch.get(*keyword) {
                schema.insert((*keyword).into(), value.clone());
            }
        }
    }
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(schema: Value, definitions: Value) -> Result<Value, StructuralError> {
        let definitions = definitions.as_object().cloned().unwrap_or_default();
        structural_schema(&schema, &definitions)
    }

    #[test]
    fn rewrites_schemars_shapes() {
        let cases: Vec<(&str, Value, Value, Value)> = vec![
            (
                "ref inlined, siblings win",
                json!({"allOf": [{"$ref": "#/components/schemas/A"}], "description": "field"}),
                json!({"A": {"type": "object", "description": "type", "properties": {"x": {"type": "string"}}}}),
                json!({"type": "object", "description": "field", "properties": {"x": {"type": "string"}}}),
            ),
            (
                "recursion cut",
                json!({"$ref": "#/components/schemas/M"}),
                json!({"M": {"type": "object", "properties": {"not": {"anyOf": [{"$ref": "#/components/schemas/M"}, {"const": null, "nullable": true}]}}}}),
                json!({"type": "object", "properties": {"not": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "nullable": true}}}),
            ),
            (
                "option of a scalar",
                json!({"type": ["integer", "null"], "format": "uint16", "minimum": 0, "maximum": 65535}),
                json!({}),
                json!({"type": "integer", "nullable": true, "minimum": 0, "maximum": 65535}),
            ),
            (
                "unit enum",
                json!({"oneOf": [{"type": "string", "const": "A", "description": "a"}, {"type": "string", "enum": ["B", "C"]}]}),
                json!({}),
                json!({"type": "string", "enum": ["A", "B", "C"]}),
            ),
            (
                "untagged integer or string",
                json!({"anyOf": [{"type": "integer", "format": "uint32", "minimum": 1}, {"type": "string", "maxLength": 15}]}),
                json!({}),
                json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}], "minimum": 1, "maxLength": 15}),
            ),
            (
                "deny_unknown_fields, defaults, annotations",
                json!({"type": "object", "title": "T", "additionalProperties": false, "properties": {
                    "list": {"type": "array", "items": {"type": "string"}, "default": [], "uniqueItems": true},
                    "flag": {"type": "boolean", "default": false},
                    "map": {"type": "object", "additionalProperties": {"type": "string"}}}}),
                json!({}),
                json!({"type": "object", "properties": {
                    "list": {"type": "array", "items": {"type": "string"}},
                    "flag": {"type": "boolean", "default": false},
                    "map": {"type": "object", "additionalProperties": {"type": "string"}}}}),
            ),
            (
                "a oneOf of required fields stays",
                json!({"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}),
                json!({}),
                json!({"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}),
            ),
            (
                "validations and required add up",
                json!({"allOf": [{"$ref": "#/components/schemas/R"}], "required": ["b"], "x-kubernetes-validations": [{"rule": "2"}]}),
                json!({"R": {"type": "object", "required": ["a"], "x-kubernetes-validations": [{"rule": "1"}]}}),
                json!({"type": "object", "required": ["a", "b"], "x-kubernetes-validations": [{"rule": "1"}, {"rule": "2"}]}),
            ),
        ];
        for (name, schema, definitions, expected) in cases {
            assert_eq!(convert(schema, definitions), Ok(expected), "{name}");
        }
    }

    #[test]
    fn descriptions_lose_rustdoc_links() {
        let cases = [
            ("plain `code`", "plain `code`"),
            (
                "the same ([`grpc::GrpcBackendRef`]).",
                "the same (`grpc::GrpcBackendRef`).",
            ),
            (
                "see [`Kind`](crate::object::Kind) and [`A`]",
                "see `Kind` and `A`",
            ),
            ("a [`dangling", "a [`dangling"),
        ];
        for (text, expected) in cases {
            assert_eq!(plain_description(text), expected, "{text}");
        }
    }

    #[test]
    fn refuses_what_has_no_structural_form() {
        let cases: Vec<(&str, Value, StructuralError)> = vec![
            (
                "dangling ref",
                json!({"$ref": "#/components/schemas/Missing"}),
                StructuralError::UnresolvedReference("#/components/schemas/Missing".into()),
            ),
            (
                "unknown keyword",
                json!({"type": "string", "contentEncoding": "base64"}),
                StructuralError::UnsupportedKeyword("contentEncoding".into()),
            ),
            (
                "type list",
                json!({"type": ["string", "boolean"]}),
                StructuralError::UnsupportedTypeList(json!(["string", "boolean"]).to_string()),
            ),
        ];
        for (name, schema, expected) in cases {
            assert_eq!(convert(schema, json!({})), Err(expected), "{name}");
        }
        let objects = json!({"anyOf": [{"type": "object"}, {"type": "string"}]});
        assert!(
            matches!(
                convert(objects, json!({})),
                Err(StructuralError::UnsupportedUnion(_))
            ),
            "a tagged union of objects has no structural form"
        );
    }
}
