//! The mesh-file source: a multi-document YAML file of Kubernetes-shaped
//! objects (v1 `Service`, weft.dev/v1alpha1 `Workload`, linkerd.io/v1alpha2
//! `ServiceProfile`, split.smi-spec.io/v1alpha1 `TrafficSplit`, the
//! policy.linkerd.io policy kinds, HTTPRoute and GRPCRoute), so a host mesh
//! is described the way a cluster is.
//!
//! ```text
//! stat ─► over --mesh-file-max-bytes: refused unread
//! read file ─► split into documents (over --mesh-file-max-objects: refused unparsed)
//!           ─► per document: apiVersion/kind → typed parse → key (YAML budget:
//!              50,000 nodes, 1,000 aliases, 64 levels of nesting per document)
//!           └─ every problem collected as (file, document, line, reason)
//!           └─ documents whose text is unchanged since the last good version: not parsed again
//! all good ─► Catalog::reset(objects) on the first load,
//!             Catalog::update(changed objects, deleted keys) after it
//! any problem ─► catalog untouched, error reported
//! ```
//!
//! [`parse_mesh`] and [`parse_changes`] are pure; [`MeshFileSource`] reads the
//! file and updates the catalog, parsing only the documents whose text changed
//! since the last good version (a [`DocumentIndex`] of text fingerprints), so
//! an edit of one object in a big file reloads in milliseconds.
//! [`MeshFileSource::run`] watches it (inotify through `notify`, plus a poll
//! every second) so an edit takes effect within a second and a bad edit
//! leaves the last good version serving (see [`MeshFileStatus`]).

mod watch;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use weft_core::endpoint_slice::EndpointSlice;
use weft_core::object::{Kind, MeshObject, ObjectKey};
use weft_core::policy::{
    AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication, Server,
};
use weft_core::{GrpcRoute, HttpRoute, Service, ServiceProfile, TrafficSplit, Workload};

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
    /// The file is bigger than `--mesh-file-max-bytes`; it was not parsed.
    #[error(
        "{path}: the file is {size} bytes, over the limit of {limit} bytes (--mesh-file-max-bytes)"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least; it may have grown while read).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file holds more documents than `--mesh-file-max-objects`; none
    /// was parsed.
    #[error(
        "{path}: the file holds {count} documents, over the limit of {limit} objects (--mesh-file-max-objects)"
    )]
    TooManyObjects {
        /// The file.
        path: PathBuf,
        /// Its documents with content.
        count: usize,
        /// The limit.
        limit: usize,
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
            MeshFileError::Read { .. }
            | MeshFileError::TooLarge { .. }
            | MeshFileError::TooManyObjects { .. }
            | MeshFileError::Rejected { .. } => &[],
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

/// One document's text (a slice of the file, from its `---` line when it
/// has one) and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Document<'text> {
    number: usize,
    /// The file line `text` starts at.
    first_line: u64,
    /// The file line of its first content (not blank, not a comment): where
    /// problems with the whole document are reported.
    content_line: u64,
    text: &'text str,
}

/// Splits a YAML stream at `---` / `...` lines, without copying; documents
/// with nothing but comments and blank lines are skipped and not numbered.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    // The open document: its first line and byte range.
    let mut current: Option<(u64, std::ops::Range<usize>)> = None;
    let mut finish = |current: Option<(u64, std::ops::Range<usize>)>| {
        let Some((first_line, range)) = current else {
            return;
        };
        let text = &text[range];
        let first_content = text.lines().enumerate().position(|(index, line)| {
            // The `---` line holds content only after the marker.
            let line = match line.strip_prefix("---") {
                Some(rest) if index == 0 => rest,
                _ => line,
            };
            let trimmed = line.trim();
            !trimmed.is_empty() && !trimmed.starts_with('#')
        });
        if let Some(offset) = first_content {
            documents.push(Document {
                number: documents.len() + 1,
                first_line,
                content_line: first_line + offset as u64,
                text,
            });
        }
    };
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let line_number = index as u64 + 1;
        let start = offset;
        offset += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let is_start = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        let is_end = line == "..." || line.starts_with("... ");
        if is_start || is_end {
            finish(current.take());
            if is_start {
                // The marker line stays in the document: content may follow it.
                current = Some((line_number, start..offset));
            }
            continue;
        }
        let (_, range) = current.get_or_insert((line_number, start..start));
        range.end = offset;
    }
    finish(current);
    documents
}

/// How many documents with content `text` holds (what [`parse_mesh`] would
/// parse), counted without parsing any.
pub fn count_documents(text: &str) -> usize {
    split_documents(text).len()
}

/// What a mesh file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshFileLimits {
    /// Its size in bytes (`--mesh-file-max-bytes`).
    pub max_bytes: u64,
    /// Its documents (`--mesh-file-max-objects`).
    pub max_objects: usize,
}

impl Default for MeshFileLimits {
    fn default() -> Self {
        Self {
            max_bytes: 8 * 1024 * 1024,
            max_objects: 20_000,
        }
    }
}

/// Reads `path` as UTF-8 text, refusing (unread) a file over `max_bytes`,
/// and one that grows past it while being read.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<String, MeshFileError> {
    use std::io::Read as _;
    let read_error = |source| MeshFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| MeshFileError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: max_bytes,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let read = bytes.len() as u64;
    if read > max_bytes {
        return Err(too_large(read));
    }
    String::from_utf8(bytes).map_err(|error| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {}", error.utf8_error()),
        ))
    })
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
    parse_changes(text, &DocumentIndex::default()).map(|changes| changes.applied)
}

/// A document's text, fingerprinted: its length and a 64-bit hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    length: usize,
    hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `text`.
    pub fn of(text: &str) -> Self {
        use std::hash::Hash;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        Self {
            length: text.len(),
            hash: hasher.finish(),
        }
    }
}

/// A map with a cheap hasher, for the reload's per-document maps: their
/// keys are fingerprints (already hashes) and object keys from the
/// operator's own file, so hash flooding is not a concern and the default
/// SipHash would be most of a reload's time.
type QuickMap<K, V> = HashMap<K, V, BuildHasherDefault<QuickHasher>>;

/// A word-at-a-time multiplicative hasher (the Fx hash used by rustc).
#[derive(Debug, Default, Clone, Copy)]
struct QuickHasher(u64);

impl QuickHasher {
    fn add(&mut self, word: u64) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The documents of the last version the catalog took: each one's text
/// fingerprint and object key, so the next version parses only the
/// documents whose text changed.
#[derive(Debug, Clone, Default)]
pub struct DocumentIndex {
    keys: QuickMap<Fingerprint, Arc<ObjectKey>>,
}

impl DocumentIndex {
    /// How many documents (objects) it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What a new version of the file changes relative to an indexed one.
#[derive(Debug)]
pub struct MeshChanges {
    /// Objects in documents that are new or whose text changed.
    pub applied: Vec<MeshObject>,
    /// Keys the indexed version held and the new one does not.
    pub deleted: Vec<ObjectKey>,
    /// The new version's index.
    pub index: DocumentIndex,
}

/// Parses the documents of `text` that `previous` does not know (by text
/// fingerprint) and works out which objects are gone; every problem found
/// in the parsed documents, and every duplicate key, is reported.
pub fn parse_changes(
    text: &str,
    previous: &DocumentIndex,
) -> Result<MeshChanges, Vec<DocumentProblem>> {
    let mut applied = Vec::new();
    let mut problems = Vec::new();
    // Sized like the last version: a big file is mostly unchanged.
    let mut index = DocumentIndex {
        keys: QuickMap::with_capacity_and_hasher(previous.len(), Default::default()),
    };
    let mut first_seen: QuickMap<Arc<ObjectKey>, usize> =
        QuickMap::with_capacity_and_hasher(previous.len(), Default::default());
    for document in split_documents(text) {
        let problem = |line: u64, reason: String| DocumentProblem {
            document: document.number,
            line,
            reason,
        };
        let fingerprint = Fingerprint::of(document.text);
        let (key, object) = match previous.keys.get(&fingerprint) {
            Some(key) => (Arc::clone(key), None),
            None => {
                let object = match parse_document(&document) {
                    Ok(object) => object,
                    Err(found) => {
                        problems.push(found);
                        continue;
                    }
                };
                match object.key() {
                    Ok(key) => (Arc::new(key), Some(object)),
                    Err(error) => {
                        problems.push(problem(
                            document.content_line,
                            format!("{}: {error}", object.kind()),
                        ));
                        continue;
                    }
                }
            }
        };
        if let Some(first) = first_seen.get(&key) {
            problems.push(problem(
                document.content_line,
                format!("duplicate {key} (first defined in document {first})"),
            ));
            continue;
        }
        first_seen.insert(Arc::clone(&key), document.number);
        index.keys.insert(fingerprint, key);
        applied.extend(object);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let deleted = previous
        .keys
        .values()
        .filter(|key| !first_seen.contains_key(*key))
        .map(|key| ObjectKey::clone(key))
        .collect();
    Ok(MeshChanges {
        applied,
        deleted,
        index,
    })
}

fn parse_document(document: &Document<'_>) -> Result<MeshObject, DocumentProblem> {
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
    let object: MeshObject = match kind {
        Kind::Service => parse_as::<Service>(document)?.into(),
        Kind::Workload => parse_as::<Workload>(document)?.into(),
        Kind::ServiceProfile => parse_as::<ServiceProfile>(document)?.into(),
        Kind::TrafficSplit => parse_as::<TrafficSplit>(document)?.into(),
        Kind::HttpRoute => parse_as::<HttpRoute>(document)?.into(),
        Kind::GrpcRoute => parse_as::<GrpcRoute>(document)?.into(),
        Kind::Server => parse_as::<Server>(document)?.into(),
        Kind::AuthorizationPolicy => parse_as::<AuthorizationPolicy>(document)?.into(),
        Kind::MeshTLSAuthentication => parse_as::<MeshTLSAuthentication>(document)?.into(),
        Kind::NetworkAuthentication => parse_as::<NetworkAuthentication>(document)?.into(),
        Kind::EndpointSlice => {
            let slice = parse_as::<k8s_openapi::api::discovery::v1::EndpointSlice>(document)?;
            EndpointSlice::from_kubernetes(&slice)
                .map_err(|error| DocumentProblem {
                    document: document.number,
                    line: document.content_line,
                    reason: format!("EndpointSlice: {error}"),
                })?
                .into()
        }
    };
    // The policy kinds' checks beyond their shape; the reason names the field.
    object.validate().map_err(|error| DocumentProblem {
        document: document.number,
        line: field_line(document, &error.field),
        reason: format!("{}: {error}", object.kind()),
    })?;
    Ok(object)
}

/// The file line where `field` (`spec.targetRef.kind`) is written: each
/// key of its path searched for in turn from where the previous one was
/// found (block or flow style); the document's first line when not found.
fn field_line(document: &Document<'_>, field: &str) -> u64 {
    let lines: Vec<&str> = document.text.lines().collect();
    let mut found = None;
    let mut from = 0;
    for segment in field.split('.') {
        let key = segment.split('[').next().unwrap_or(segment);
        let written = |line: &&str| {
            let line = line.trim_start().trim_start_matches("- ");
            line.starts_with(&format!("{key}:"))
                || [" ", "{", ","]
                    .iter()
                    .any(|before| line.contains(&format!("{before}{key}:")))
        };
        match lines.iter().skip(from).position(written) {
            Some(offset) => {
                from += offset;
                found = Some(from);
            }
            None => break,
        }
    }
    found.map_or(document.content_line, |offset| {
        document.first_line + offset as u64
    })
}

/// Nodes (sequences, maps, scalars) one document may hold: a Service or
/// Workload has tens, a ServiceProfile with many routes a few thousand.
const MAX_NODES_PER_DOCUMENT: usize = 50_000;
/// Aliases one document may use (mesh objects need none; anchors are allowed
/// for hand-written files, but not alias bombs).
const MAX_ALIASES_PER_DOCUMENT: usize = 1_000;
/// Events one document's aliases may replay in total.
const MAX_REPLAYED_EVENTS_PER_DOCUMENT: usize = 50_000;

/// The parser's limits for one document: tighter than the library's
/// defaults, so an alias bomb or a flood of nodes is refused early.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_NODES_PER_DOCUMENT;
    budget.max_aliases = MAX_ALIASES_PER_DOCUMENT;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_REPLAYED_EVENTS_PER_DOCUMENT;
    options
}

fn parse_as<T: DeserializeOwned>(document: &Document<'_>) -> Result<T, DocumentProblem> {
    serde_saphyr::from_str_with_options::<T>(document.text, yaml_options()).map_err(|error| {
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
