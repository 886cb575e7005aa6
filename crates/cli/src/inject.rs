//! `weft inject` and `weft uninject`: Kubernetes YAML in (files,
//! directories or stdin), the same YAML out with the proxy injected into (or
//! removed from) every pod template, by the same decision the controller's
//! admission webhook makes (`weft_core::inject`), as `linkerd inject
//! --manual` does:
//!
//! ```text
//! weft inject --identity-trust-anchors-file ca.pem app.yaml | kubectl apply -f -
//! kubectl get deploy web -o yaml | weft uninject | kubectl apply -f -
//! ```
//!
//! Stages, one module each, run in this order for every input before
//! anything is written (an error anywhere writes nothing):
//!
//! - [`config`]: the flags → `InjectionConfig` (trust anchors read and checked);
//! - read: the files, the YAML files of a directory, or stdin (below);
//! - [`documents`]: YAML stream → documents; a `List`'s items; documents → YAML stream;
//! - [`templates`]: kind → where its pod template is;
//! - [`objects`]: one object's template injected or uninjected, and the outcome;
//! - [`report`]: a line per object and a summary, on stderr.

pub mod config;
pub mod documents;
pub mod objects;
pub mod report;
pub mod templates;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::global_options::GlobalOptions;
use documents::{DocumentError, Source};
use objects::{ObjectError, Outcome};
use report::Entry;

/// The name stdin goes by, in arguments and messages.
const STDIN: &str = "-";

/// `weft inject` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files or directories (their .yaml, .yml and .json files) to read;
    /// `-` or none: stdin.
    pub files: Vec<PathBuf>,
    /// Write the result to this file instead of stdout (it may be one of the
    /// inputs: everything is read first).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The proxy's settings.
    #[command(flatten)]
    pub proxy: config::ProxyFlags,
}

/// `weft uninject` flags.
#[derive(Debug, clap::Args)]
pub struct UninjectArgs {
    /// Files or directories (their .yaml, .yml and .json files) to read;
    /// `-` or none: stdin.
    pub files: Vec<PathBuf>,
    /// Write the result to this file instead of stdout (it may be one of the
    /// inputs: everything is read first).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Why `weft inject` or `weft uninject` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// The trust anchors are missing or not CA certificates.
    #[error(transparent)]
    TrustAnchors(#[from] config::TrustAnchorsError),
    /// An input could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file, directory or `<stdin>`.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An input is not valid YAML, or the output could not be rendered.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// An object could not be processed.
    #[error("{source_name}: {source}")]
    Object {
        /// The input holding it.
        source_name: String,
        /// What is wrong with it.
        source: ObjectError,
    },
    /// The output could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file or `<stdout>`.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Run `weft inject`.
pub async fn run(_global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let config = args.proxy.injection_config()?;
    let sources = read_sources(&args.files)?;
    let (output, entries) = transform(&sources, |object| objects::inject_object(object, &config))?;
    finish(&output, args.output.as_deref(), &entries)?;
    Ok(ExitCode::SUCCESS)
}

/// Run `weft uninject`.
pub async fn run_uninject(_global: &GlobalOptions, args: UninjectArgs) -> anyhow::Result<ExitCode> {
    let sources = read_sources(&args.files)?;
    let (output, entries) = transform(&sources, objects::uninject_object)?;
    finish(&output, args.output.as_deref(), &entries)?;
    Ok(ExitCode::SUCCESS)
}

/// Parses every source, passes every object through `step`, renders the
/// result: the output stream and what happened to each object, in input order.
pub fn transform(
    sources: &[Source],
    mut step: impl FnMut(&mut Value) -> Result<Outcome, ObjectError>,
) -> Result<(String, Vec<Entry>), InjectError> {
    let mut parsed = Vec::with_capacity(sources.len());
    for source in sources {
        parsed.push(documents::parse(source)?);
    }
    let mut entries = Vec::new();
    let mut all = Vec::new();
    for (source, mut source_documents) in sources.iter().zip(parsed) {
        for document in &mut source_documents {
            documents::for_each_object(document, &mut |object: &mut Value| {
                let outcome = step(object).map_err(|error| InjectError::Object {
                    source_name: source.name.clone(),
                    source: error,
                })?;
                entries.push(Entry {
                    kind: documents::text_at(object, "/kind"),
                    name: objects::object_name(object),
                    outcome,
                });
                Ok::<(), InjectError>(())
            })?;
        }
        all.extend(source_documents);
    }
    Ok((documents::render(&all)?, entries))
}

/// Writes the output, then the report.
fn finish(output: &str, path: Option<&Path>, entries: &[Entry]) -> Result<(), InjectError> {
    match path {
        Some(path) => std::fs::write(path, output).map_err(|source| InjectError::Write {
            path: path.display().to_string(),
            source,
        })?,
        None => crate::output::out(output).map_err(|source| InjectError::Write {
            path: "<stdout>".to_string(),
            source,
        })?,
    }
    eprint!("{}", report::render(entries));
    Ok(())
}

/// The inputs, in the order given: each file; each directory's YAML and
/// JSON files by name (not its subdirectories); stdin for `-` or no path.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, InjectError> {
    if paths.is_empty() {
        return Ok(vec![read_stdin()?]);
    }
    let mut sources = Vec::new();
    for path in paths {
        if path.as_os_str() == STDIN {
            sources.push(read_stdin()?);
        } else if path.is_dir() {
            for file in directory_files(path)? {
                sources.push(read_file(&file)?);
            }
        } else {
            sources.push(read_file(path)?);
        }
    }
    Ok(sources)
}

fn read_stdin() -> Result<Source, InjectError> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| InjectError::Read {
            path: "<stdin>".to_string(),
            source,
        })?;
    Ok(Source {
        name: "<stdin>".to_string(),
        text,
    })
}

fn read_file(path: &Path) -> Result<Source, InjectError> {
    let text = std::fs::read_to_string(path).map_err(|source| InjectError::Read {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Source {
        name: path.display().to_string(),
        text,
    })
}

/// A directory's `.yaml`, `.yml` and `.json` files, sorted by name.
fn directory_files(directory: &Path) -> Result<Vec<PathBuf>, InjectError> {
    let read_error = |source| InjectError::Read {
        path: directory.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let is_manifest = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| matches!(extension, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
