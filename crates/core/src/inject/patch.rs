//! JSON Patch (RFC 6902) on `serde_json` values: the `add`, `remove` and
//! `replace` operations the injector writes, and JSON Pointer (RFC 6901)
//! escaping of the tokens it builds paths from (`weft.io/inject` →
//! `weft.io~1inject`).

use serde_json::Value;

use super::{PatchError, PatchOperation};

/// `token` escaped for a JSON Pointer: `~` → `~0`, `/` → `~1`.
pub fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `token` unescaped from a JSON Pointer (`~1` → `/`, `~0` → `~`).
fn unescape_pointer_token(token: &str) -> Result<String, String> {
    let mut unescaped = String::with_capacity(token.len());
    let mut characters = token.chars();
    while let Some(character) = characters.next() {
        if character != '~' {
            unescaped.push(character);
            continue;
        }
        match characters.next() {
            Some('0') => unescaped.push('~'),
            Some('1') => unescaped.push('/'),
            Some(other) => return Err(format!("`~{other}` is not a JSON Pointer escape")),
            None => return Err("a JSON Pointer token ends with `~`".to_string()),
        }
    }
    Ok(unescaped)
}

/// The unescaped tokens of `pointer` (none for `""`, the whole document).
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("a JSON Pointer must be empty or start with `/`".to_string());
    };
    rest.split('/').map(unescape_pointer_token).collect()
}

/// An array index token: digits without a leading zero (RFC 6901).
fn array_index(token: &str) -> Result<usize, String> {
    let digits = !token.is_empty() && token.bytes().all(|byte| byte.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return Err(format!("`{token}` is not an array index"));
    }
    token
        .parse()
        .map_err(|_| format!("`{token}` is not an array index"))
}

/// The value `tokens` lead to.
fn resolve_mut<'value>(
    mut value: &'value mut Value,
    tokens: &[String],
) -> Result<&'value mut Value, String> {
    for (depth, token) in tokens.iter().enumerate() {
        let location = || format!("/{}", escaped_path(&tokens[..depth]));
        value = match value {
            Value::Object(members) => members
                .get_mut(token)
                .ok_or_else(|| format!("{} has no member `{token}`", location()))?,
            Value::Array(items) => {
                let length = items.len();
                let index = array_index(token)?;
                items.get_mut(index).ok_or_else(|| {
                    format!(
                        "index {index} is past the end of {} (length {length})",
                        location()
                    )
                })?
            }
            _ => {
                return Err(format!("{} is neither an object nor an array", location()));
            }
        };
    }
    Ok(value)
}

fn escaped_path(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|token| escape_pointer_token(token))
        .collect::<Vec<_>>()
        .join("/")
}

fn add(document: &mut Value, path: &str, value: &Value) -> Result<(), String> {
    let tokens = tokens(path)?;
    let Some((last, parent)) = tokens.split_last() else {
        *document = value.clone();
        return Ok(());
    };
    match resolve_mut(document, parent)? {
        Value::Object(members) => {
            members.insert(last.clone(), value.clone());
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value.clone());
                return Ok(());
            }
            let index = array_index(last)?;
            if index > items.len() {
                return Err(format!(
                    "index {index} is past the end of an array of length {}",
                    items.len()
                ));
            }
            items.insert(index, value.clone());
            Ok(())
        }
        _ => Err("the parent is neither an object nor an array".to_string()),
    }
}

fn remove(document: &mut Value, path: &str) -> Result<(), String> {
    let tokens = tokens(path)?;
    let Some((last, parent)) = tokens.split_last() else {
        return Err("cannot remove the whole document".to_string());
    };
    match resolve_mut(document, parent)? {
        Value::Object(members) => members
            .remove(last)
            .map(drop)
            .ok_or_else(|| format!("no member `{last}` to remove")),
        Value::Array(items) => {
            let index = array_index(last)?;
            if index >= items.len() {
                return Err(format!(
                    "index {index} is past the end of an array of length {}",
                    items.len()
                ));
            }
            items.remove(index);
            Ok(())
        }
        _ => Err("the parent is neither an object nor an array".to_string()),
    }
}

fn replace(document: &mut Value, path: &str, value: &Value) -> Result<(), String> {
    let tokens = tokens(path)?;
    *resolve_mut(document, &tokens)? = value.clone();
    Ok(())
}

/// Apply `patch` to `value` in order; on error `value` may be partly patched.
pub fn apply(value: &mut Value, patch: &[PatchOperation]) -> Result<(), PatchError> {
    for operation in patch {
        let (path, outcome) = match operation {
            PatchOperation::Add { path, value: added } => (path, add(value, path, added)),
            PatchOperation::Remove { path } => (path, remove(value, path)),
            PatchOperation::Replace {
                path,
                value: replacement,
            } => (path, replace(value, path, replacement)),
        };
        outcome.map_err(|reason| PatchError {
            path: path.clone(),
            reason,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn apply_operations() {
        let add = |path: &str, value: Value| PatchOperation::Add {
            path: path.to_string(),
            value,
        };
        let mut document = json!({"list": [1, 3], "map": {"a/b": 1, "c~d": 2}});
        apply(
            &mut document,
            &[
                add("/list/1", json!(2)),
                add("/list/-", json!(4)),
                add("/list/0", json!(0)),
                add("/map/new", json!("x")),
                add("/map/a~1b", json!(10)),
                PatchOperation::Remove {
                    path: "/map/c~0d".to_string(),
                },
                PatchOperation::Replace {
                    path: "/list/4".to_string(),
                    value: json!(40),
                },
                add("/added", json!({})),
                add("/added/deep", json!([])),
            ],
        )
        .expect("applies");
        assert_eq!(
            document,
            json!({"list": [0, 1, 2, 3, 40], "map": {"a/b": 10, "new": "x"}, "added": {"deep": []}})
        );
        let mut whole = json!(1);
        apply(&mut whole, &[add("", json!({"x": 1}))]).expect("replaces the root");
        assert_eq!(whole, json!({"x": 1}));
    }

    #[test]
    fn apply_errors() {
        let remove = |path: &str| PatchOperation::Remove {
            path: path.to_string(),
        };
        let add = |path: &str| PatchOperation::Add {
            path: path.to_string(),
            value: json!(1),
        };
        let replace = |path: &str| PatchOperation::Replace {
            path: path.to_string(),
            value: json!(1),
        };
        let cases = [
            (add("/missing/x"), "/missing/x", "no member `missing`"),
            (add("/list/3"), "/list/3", "past the end"),
            (add("/list/01"), "/list/01", "not an array index"),
            (add("/list/x"), "/list/x", "not an array index"),
            (
                add("/number/x"),
                "/number/x",
                "neither an object nor an array",
            ),
            (add("no-slash"), "no-slash", "start with `/`"),
            (add("/map/a~2"), "/map/a~2", "`~2`"),
            (add("/map/a~"), "/map/a~", "ends with `~`"),
            (remove("/map/absent"), "/map/absent", "no member `absent`"),
            (remove("/list/2"), "/list/2", "past the end"),
            (remove("/list/-"), "/list/-", "not an array index"),
            (remove(""), "", "whole document"),
            (replace("/map/absent"), "/map/absent", "no member `absent`"),
            (replace("/list/5"), "/list/5", "past the end"),
        ];
        for (operation, path, reason_part) in cases {
            let mut document = json!({"list": [1, 2], "map": {}, "number": 1});
            let error = apply(&mut document, &[operation]).expect_err(path);
            assert_eq!(error.path, path);
            assert!(
                error.reason.contains(reason_part),
                "{path}: {}",
                error.reason
            );
            assert!(error.to_string().contains(path), "{error}");
        }
        // Operations before the failing one stay applied; later ones are not.
        let mut document = json!({"a": 1});
        let error =
            apply(&mut document, &[add("/b"), remove("/missing"), add("/c")]).expect_err("fails");
        assert_eq!(error.path, "/missing");
        assert_eq!(document, json!({"a": 1, "b": 1}));
    }

    #[test]
    fn patch_operations_serialize_as_rfc_6902() {
        let patch = vec![
            PatchOperation::Add {
                path: "/a".to_string(),
                value: json!(1),
            },
            PatchOperation::Remove {
                path: "/b".to_string(),
            },
            PatchOperation::Replace {
                path: "/c".to_string(),
                value: json!("x"),
            },
        ];
        let serialized = serde_json::to_value(&patch).expect("serializes");
        assert_eq!(
            serialized,
            json!([
                {"op": "add", "path": "/a", "value": 1},
                {"op": "remove", "path": "/b"},
                {"op": "replace", "path": "/c", "value": "x"},
            ])
        );
        let parsed: Vec<PatchOperation> = serde_json::from_value(serialized).expect("parses");
        assert_eq!(parsed, patch);
    }

    #[test]
    fn pointer_escaping() {
        let cases = [
            ("weft.io/inject", "weft.io~1inject"),
            ("a~b", "a~0b"),
            ("~/", "~0~1"),
            ("~1", "~01"),
            ("plain", "plain"),
        ];
        for (token, escaped) in cases {
            assert_eq!(escape_pointer_token(token), escaped, "{token}");
            let mut document = json!({});
            apply(
                &mut document,
                &[PatchOperation::Add {
                    path: format!("/{escaped}"),
                    value: json!(true),
                }],
            )
            .expect("applies");
            assert_eq!(document, json!({token: true}), "{token}");
        }
    }
}
