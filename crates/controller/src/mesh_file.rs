//! The mesh-file source: a multi-document YAML file of Kubernetes-shaped
//! objects (v1 `Service`, weft.dev/v1alpha1 `Workload`, linkerd.io/v1alpha2
//! `ServiceProfile`, split.smi-spec.io/v1alpha1 `TrafficSplit`), so a host mesh
//! is described the way a cluster is.
//!
//! ```text
//! read file ─► split into documents ─► per document: apiVersion/kind → typed parse → key
//!           └─ every problem collected as (file, document, line, reason)
//! all good ─► Catalog::reset(objects)        any problem ─► catalog untouched, error reported
//! ```
//!
//! [`parse_mesh`] is pure; [`MeshFileSource`] reads the file and resets the
//! catalog; [`MeshFileSource::run`] watches it (inotify through `notify`, plus a
//! poll every second) so an edit takes effect within a second and a bad edit
//! leaves the last good version serving (see [`MeshFileStatus`]).

mod watch;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use weft_core::object::{Kind, MeshObject, ObjectKey};
use weft_core::{Service, ServiceProfile, TrafficSplit, Workload};

use crate::catalog::CatalogError;

pub use crate::file_watch::POLL_INTERVAL;
pub use watch::{MeshFileSource, MeshFileStatus};

/// What went wrong loading a mesh file.
#[derive(Debug, thiserror::Error)]
pub enum MeshFileError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// One or more documents are invalid; nothing was loaded.
    #[error("{}", format_problems(path, problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<DocumentProblem>,
    },
    /// The catalog refused the file's objects (parsing checks names and
    /// duplicates first, so this points at a bug in those checks).
    #[error("{path}: rejected by the catalog: {source}")]
    Rejected {
        /// The file.
        path: PathBuf,
        /// The catalog's reason.
        source: CatalogError,
    },
}

impl MeshFileError {
    /// The problems found (empty for a read error).
    pub fn problems(&self) -> &[DocumentProblem] {
        match self {
            MeshFileError::Read { .. } | MeshFileError::Rejected { .. } => &[],
            MeshFileError::Invalid { problems, .. } => problems,
        }
    }
}

fn format_problems(path: &Path, problems: &[DocumentProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| format!("{}: {problem}", path.display()))
        .collect();
    lines.join("\n")
}

/// One problem in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentProblem {
    /// 1-based document number (documents with content only).
    pub document: usize,
    /// 1-based line in the file.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for DocumentProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "document {}, line {}: {}",
            self.document, self.line, self.reason
        )
    }
}

/// One document's text and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Document {
    number: usize,
    /// The file line `text` starts at.
    first_line: u64,
    /// The file line of its first content (not blank, not a comment): where
    /// problems with the whole document are reported.
    content_line: u64,
    text: String,
}

/// Splits a YAML stream at `---` / `...` lines; documents with nothing but
/// comments and blank lines are skipped and not numbered.
fn split_documents(text: &str) -> Vec<Document> {
    let mut documents = Vec::new();
    let mut current: Option<(u64, String)> = None;
    let finish = |current: &mut Option<(u64, String)>, documents: &mut Vec<Document>| {
        if let Some((first_line, text)) = current.take() {
            let first_content = text.lines().position(|line| {
                let trimmed = line.trim();
                !trimmed.is_empty() && !trimmed.starts_with('#')
            });
            if let Some(offset) = first_content {
                let content_line = first_line + offset as u64;
                documents.push(Document {
                    number: documents.len() + 1,
                    first_line,
                    content_line,
                    text,
                });
            }
        }
    };
    for (index, line) in text.lines().enumerate() {
        let line_number = index as u64 + 1;
        let is_start = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        let is_end = line == "..." || line.starts_with("... ");
        if is_start || is_end {
            finish(&mut current, &mut documents);
            if is_start {
                // Content after `--- ` belongs to the new document; keep columns aligned.
                current = Some((line_number, format!("   {}\n", &line[3..])));
            }
            continue;
        }
        let (_, body) = current.get_or_insert_with(|| (line_number, String::new()));
        body.push_str(line);
        body.push('\n');
    }
    finish(&mut current, &mut documents);
    documents
}

/// The fields every document must carry to be dispatched.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// Parses a mesh file's text: every object, or every problem found.
pub fn parse_mesh(text: &str) -> Result<Vec<MeshObject>, Vec<DocumentProblem>> {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    let mut first_seen: HashMap<ObjectKey, usize> = HashMap::new();
    for document in split_documents(text) {
        let problem = |line: u64, reason: String| DocumentProblem {
            document: document.number,
            line,
            reason,
        };
        let object = match parse_document(&document) {
            Ok(object) => object,
            Err(found) => {
                problems.push(found);
                continue;
            }
        };
        match object.key() {
            Err(error) => problems.push(problem(
                document.content_line,
                format!("{}: {error}", object.kind()),
            )),
            Ok(key) => match first_seen.get(&key) {
                Some(first) => problems.push(problem(
                    document.content_line,
                    format!("duplicate {key} (first defined in document {first})"),
                )),
                None => {
                    first_seen.insert(key, document.number);
                    objects.push(object);
                }
            },
        }
    }
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(problems)
    }
}

fn parse_document(document: &Document) -> Result<MeshObject, DocumentProblem> {
    let type_meta: TypeMeta = parse_as(document)?;
    let (Some(api_version), Some(kind)) = (type_meta.api_version, type_meta.kind) else {
        return Err(DocumentProblem {
            document: document.number,
            line: document.content_line,
            reason: "apiVersion and kind are required".to_string(),
        });
    };
    let kind = Kind::from_type(&api_version, &kind).map_err(|error| DocumentProblem {
        document: document.number,
        line: document.content_line,
        reason: error.to_string(),
    })?;
    Ok(match kind {
        Kind::Service => parse_as::<Service>(document)?.into(),
        Kind::Workload => parse_as::<Workload>(document)?.into(),
        Kind::ServiceProfile => parse_as::<ServiceProfile>(document)?.into(),
        Kind::TrafficSplit => parse_as::<TrafficSplit>(document)?.into(),
    })
}

fn parse_as<T: DeserializeOwned>(document: &Document) -> Result<T, DocumentProblem> {
    serde_saphyr::from_str::<T>(&document.text).map_err(|error| {
        let line_in_document = error
            .location()
            .map(|location| location.line())
            .unwrap_or(1)
            .max(1);
        DocumentProblem {
            document: document.number,
            line: document.first_line + line_in_document - 1,
            reason: plain_reason(&error),
        }
    })
}

/// The error's message without the location and snippet the library adds.
fn plain_reason(error: &serde_saphyr::Error) -> String {
    let rendered = error.without_snippet().to_string();
    let first_line = rendered.lines().next().unwrap_or_default();
    first_line
        .split(" at line ")
        .next()
        .unwrap_or(first_line)
        .trim()
        .to_string()
}

/// Reads and parses a mesh file.
pub fn read_mesh_file(path: &Path) -> Result<Vec<MeshObject>, MeshFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| MeshFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_mesh(&text).map_err(|problems| MeshFileError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

#[cfg(test)]
mod tests;
