//! The YAML side of `weft inject`: a multi-document stream (`---`) in, one
//! JSON value per document; the values out again as a multi-document
//! stream, in input order; the objects of a document, with a `List`'s items
//! in place of the list.
//!
//! Scalars are read as `kubectl` reads them (YAML 1.1: `0644` is octal,
//! `yes` a boolean) and written so that `kubectl` reads them back the same.
//! Comments and key order do not survive: keys come out sorted, as
//! `kubectl get -o yaml` and `linkerd inject` print them.

use serde_json::Value;

use super::templates;

/// One input: a file's path (or `<stdin>`) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// What error messages call it.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// Why an input could not be read as YAML, or the output not written as YAML.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The input is not YAML (or a document is not a value JSON can hold).
    #[error("{source_name}: document {document}{position}: {message}")]
    Syntax {
        /// The input's name.
        source_name: String,
        /// The document's number in the input, from 1.
        document: usize,
        /// `, line L column C` when the parser knows where.
        position: String,
        /// The parser's message.
        message: String,
    },
    /// A document could not be written as YAML.
    #[error("cannot write {kind} {name:?} as YAML: {reason}")]
    Render {
        /// The object's kind.
        kind: String,
        /// The object's name.
        name: String,
        /// The serializer's message.
        reason: String,
    },
}

/// The documents of `source`, as JSON values; empty documents are dropped.
pub fn parse(source: &Source) -> Result<Vec<Value>, DocumentError> {
    let options = serde_saphyr::options! {
        legacy_octal_numbers: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(&source.text, options)
        .map_err(|error| {
            let location = error.location();
            let line = location.map(|location| location.line());
            let position = match location {
                Some(location) if location.line() > 0 => {
                    format!(", line {} column {}", location.line(), location.column())
                }
                _ => String::new(),
            };
            DocumentError::Syntax {
                source_name: source.name.clone(),
                document: document_number(&source.text, line.unwrap_or(0)),
                position,
                message: error_message(&error),
            }
        })
}

/// The parser's message without the position it appends (reported apart).
fn error_message(error: &serde_saphyr::Error) -> String {
    let message = error.to_string();
    match message.find(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message,
    }
}

/// The number (from 1) of the document holding `line` (from 1; 0: unknown,
/// the first document): one more than the document markers (`---`) up to
/// that line, not counting a marker that opens the stream.
pub fn document_number(text: &str, line: u64) -> usize {
    let mut markers = 0;
    let mut content_seen = false;
    for (index, text_line) in text.lines().enumerate() {
        if index as u64 >= line {
            break;
        }
        if is_document_marker(text_line) {
            if content_seen {
                markers += 1;
            }
            content_seen = true;
            continue;
        }
        let trimmed = text_line.trim_start();
        let is_content =
            !(trimmed.is_empty() || trimmed.starts_with('#') || text_line.starts_with('%'));
        content_seen |= is_content;
    }
    markers + 1
}

/// `---` at the start of a line, alone or followed by white space.
fn is_document_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// The documents as one multi-document YAML stream, each after `---`.
pub fn render(documents: &[Value]) -> Result<String, DocumentError> {
    let mut stream = String::new();
    for document in documents {
        let text = serde_saphyr::to_string(document).map_err(|error| DocumentError::Render {
            kind: text_at(document, "/kind"),
            name: text_at(document, "/metadata/name"),
            reason: error.to_string(),
        })?;
        stream.push_str("---\n");
        stream.push_str(&text);
        if !text.ends_with('\n') {
            stream.push('\n');
        }
    }
    Ok(stream)
}

/// The string at `pointer`, or `""`.
pub fn text_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Calls `visit` on every object of `document`: a list's items (nested lists
/// too), or the document itself; stops at the first error.
pub fn for_each_object<E>(
    document: &mut Value,
    visit: &mut impl FnMut(&mut Value) -> Result<(), E>,
) -> Result<(), E> {
    let kind = text_at(document, "/kind");
    if templates::is_list(&kind)
        && let Some(items) = document.get_mut("items").and_then(Value::as_array_mut)
    {
        for item in items {
            for_each_object(item, visit)?;
        }
        return Ok(());
    }
    visit(document)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn source(text: &str) -> Source {
        Source {
            name: "app.yaml".to_string(),
            text: text.to_string(),
        }
    }

    #[test]
    fn document_number_table() {
        let text = "# leading comment\n---\na: 1\n---\nb: 2\n\n---\nc: [\n";
        let cases = [
            (0, 1),
            (1, 1),
            (3, 1),
            (4, 2),
            (5, 2),
            (7, 3),
            (8, 3),
            (100, 3),
        ];
        for (line, expected) in cases {
            assert_eq!(document_number(text, line), expected, "line {line}");
        }
        // Without a leading marker, the first `---` starts document 2.
        assert_eq!(document_number("a: 1\n---\nb: 2\n", 3), 2);
        assert_eq!(document_number("a: 1\n--- \nb: 2\n", 3), 2);
        // `----` or `---x` is no marker.
        assert_eq!(document_number("a: |\n  x\n---x: 1\n", 3), 1);
    }

    #[test]
    fn parses_every_document_in_order() {
        let documents = parse(&source("---\na: 1\n---\n---\nb: [x, z]\n...\n")).unwrap();
        assert_eq!(documents, vec![json!({"a": 1}), json!({"b": ["x", "z"]})]);
    }

    #[test]
    fn reads_scalars_as_kubectl_does() {
        let documents = parse(&source(
            "mode: 0644\nflag: yes\nquoted: \"0644\"\nport: 8080\nratio: 0.5\n",
        ))
        .unwrap();
        assert_eq!(
            documents[0],
            json!({"mode": 420, "flag": true, "quoted": "0644", "port": 8080, "ratio": 0.5})
        );
    }

    #[test]
    fn syntax_errors_name_the_source_document_and_line() {
        let error = parse(&source("a: 1\n---\nb: 2\n---\nc: [1, 2\nd: 3\n"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("app.yaml: document 3, line "), "{error}");
    }

    #[test]
    fn strings_that_look_like_other_scalars_stay_strings() {
        let strings = [
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "true",
            "True",
            "null",
            "~",
            "",
            "0644",
            "1_000",
            "1e3",
            ".5",
            "0x1F",
            "8080",
            "-1",
            ".inf",
            "2026-12-04",
            "a: b",
            "- x",
            "#x",
            "*x",
            "&x",
            "!x",
            "@x",
            "`x",
            "x #y",
            "{x}",
            "[x]",
            "'x'",
            "\"x\"",
            "%x",
            " x",
            "x ",
            "multi\nline\n",
            "a,b",
        ];
        let document = json!({ "strings": strings.to_vec() });
        let text = render(std::slice::from_ref(&document)).unwrap();
        let back = parse(&source(&text)).unwrap();
        assert_eq!(back, vec![document], "{text}");
    }

    #[test]
    fn render_round_trips_and_separates_documents() {
        let documents = vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"pem": "-----BEGIN X-----\nabc\n-----END X-----\n"}}),
            json!({"kind": "Empty", "spec": {}, "list": []}),
        ];
        let text = render(&documents).unwrap();
        assert!(text.starts_with("---\napiVersion: v1\n"), "{text}");
        assert_eq!(
            text.lines().filter(|line| *line == "---").count(),
            2,
            "{text}"
        );
        assert_eq!(parse(&source(&text)).unwrap(), documents);
    }

    #[test]
    fn lists_are_visited_item_by_item() {
        let mut document = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {"kind": "Service", "metadata": {"name": "a"}},
                {"kind": "DeploymentList", "items": [{"kind": "Deployment", "metadata": {"name": "b"}}]},
            ],
        });
        let mut names = Vec::new();
        for_each_object(&mut document, &mut |object| {
            names.push(text_at(object, "/metadata/name"));
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(names, ["a", "b"]);
        let mut plain = json!({"kind": "Service", "metadata": {"name": "c"}});
        let mut count = 0;
        for_each_object(&mut plain, &mut |_| {
            count += 1;
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(count, 1);
    }
}
