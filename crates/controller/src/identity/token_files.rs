//! Token files for a host mesh: with `--identity-token-dir DIR`, every meshed
//! Workload of the mesh file gets `DIR/<namespace>/<workload>.token` (mode
//! 0600), a token for its namespace and service account, for its proxy to
//! present to Certify. Written at start-up and again whenever a good mesh-file
//! version arrives; a file that already proves the right identity with the
//! current key is left alone, so tokens stay stable across edits.
//!
//! [`planned_token`] is the pure decision (which file, and whether it must be
//! written); [`TokenFiles`] does the writing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use weft_core::Workload;

use super::token::HmacTokens;
use super::{WorkloadIdentity, is_dns_label};

/// The token file's extension.
pub const TOKEN_EXTENSION: &str = "token";

/// Token-file metrics.
#[derive(Debug, Clone, Default)]
pub struct TokenFileMetrics {
    written: Counter,
    failed: Counter,
}

impl TokenFileMetrics {
    /// Registers `identity_token_files_written_total` and
    /// `identity_token_file_errors_total`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_token_files_written",
            "Workload token files written (new workloads, changed service accounts, a new key)",
            metrics.written.clone(),
        );
        registry.register(
            "identity_token_file_errors",
            "Workload token files that could not be written",
            metrics.failed.clone(),
        );
        metrics
    }
}

/// What to do for one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPlan {
    /// Not meshed: no token.
    Skip,
    /// Its names cannot be a path or an identity (reported, no token).
    Unsafe(String),
    /// The file already proves this identity.
    Keep(PathBuf),
    /// Write a new token for this identity here.
    Write(PathBuf, WorkloadIdentity),
}

/// The plan for `workload` under `dir`, given the file's current contents
/// (`existing`, `None` when absent) and the tokens' key.
pub fn planned_token(
    dir: &Path,
    workload: &Workload,
    existing: impl FnOnce(&Path) -> Option<Vec<u8>>,
    tokens: &HmacTokens,
) -> TokenPlan {
    if !workload.spec.meshed {
        return TokenPlan::Skip;
    }
    let namespace = workload.metadata.namespace.as_deref().unwrap_or("default");
    let name = workload.metadata.name.as_deref().unwrap_or_default();
    let service_account = workload.service_account();
    if !is_dns_label(namespace) || !is_dns_label(service_account) || !is_file_name(name) {
        return TokenPlan::Unsafe(format!(
            "workload {namespace}/{name} (service account {service_account:?}): names must be DNS labels"
        ));
    }
    let identity = WorkloadIdentity::new(namespace, service_account);
    let path = dir
        .join(namespace)
        .join(format!("{name}.{TOKEN_EXTENSION}"));
    let proves = existing(&path)
        .and_then(|bytes| tokens.check(&bytes).ok())
        .is_some_and(|(proven, _)| proven == identity);
    if proves {
        TokenPlan::Keep(path)
    } else {
        TokenPlan::Write(path, identity)
    }
}

/// A workload name usable as a file name: DNS-subdomain characters, no
/// leading dot.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-.".contains(&byte))
}

/// Writes the token files.
#[derive(Debug)]
pub struct TokenFiles {
    dir: PathBuf,
    tokens: Arc<HmacTokens>,
    metrics: TokenFileMetrics,
}

/// Why the token directory is unusable.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot create the token directory: {source}")]
pub struct TokenDirError {
    /// The directory.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

impl TokenFiles {
    /// Token files under `dir` (created now, so a bad flag fails start-up).
    pub fn new(
        dir: PathBuf,
        tokens: Arc<HmacTokens>,
        metrics: TokenFileMetrics,
    ) -> Result<Self, TokenDirError> {
        std::fs::create_dir_all(&dir).map_err(|source| TokenDirError {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            tokens,
            metrics,
        })
    }

    /// Brings every meshed workload's file up to date; returns how many were written.
    pub fn write_all(&self, workloads: &[Workload]) -> usize {
        let issued_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let mut written = 0;
        for workload in workloads {
            let plan = planned_token(
                &self.dir,
                workload,
                |path| std::fs::read(path).ok(),
                &self.tokens,
            );
            match plan {
                TokenPlan::Skip | TokenPlan::Keep(_) => {}
                TokenPlan::Unsafe(reason) => {
                    self.metrics.failed.inc();
                    tracing::warn!("no identity token: {reason}");
                }
                TokenPlan::Write(path, identity) => {
                    let token = self.tokens.mint(&identity, issued_at);
                    match write_token(&path, &token) {
                        Ok(()) => {
                            written += 1;
                            self.metrics.written.inc();
                            tracing::info!(path = %path.display(), %identity, "identity token written");
                        }
                        Err(error) => {
                            self.metrics.failed.inc();
                            tracing::warn!(path = %path.display(), %error, "cannot write an identity token");
                        }
                    }
                }
            }
        }
        written
    }

    /// Rewrites files after each good mesh-file version until `shutdown`.
    pub async fn run(
        self,
        mut workloads: watch::Receiver<Arc<[Workload]>>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                changed = workloads.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let current = Arc::clone(&workloads.borrow_and_update());
                    self.write_all(&current);
                }
            }
        }
    }
}

fn write_token(path: &Path, token: &str) -> Result<(), super::init::InitError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| super::init::InitError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    super::init::replace_file(path, token.as_bytes(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::token::{TOKEN_KEY_LENGTH, TokenKey};

    fn workload(
        namespace: &str,
        name: &str,
        service_account: Option<&str>,
        meshed: bool,
    ) -> Workload {
        let yaml = format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name:?}, namespace: {namespace:?}}}\nspec:\n  addresses: [127.0.0.1]\n  meshed: {meshed}\n{}",
            service_account
                .map(|account| format!("  serviceAccount: {account:?}\n"))
                .unwrap_or_default()
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    #[test]
    fn plan_table() {
        let tokens = HmacTokens::new(&TokenKey::from_bytes([3; TOKEN_KEY_LENGTH]));
        let other_key = HmacTokens::new(&TokenKey::from_bytes([4; TOKEN_KEY_LENGTH]));
        let dir = Path::new("/tokens");
        let web = WorkloadIdentity::new("shop", "web");
        let path = PathBuf::from("/tokens/shop/web-1.token");
        let current = tokens.mint(&web, 1).into_bytes();
        let for_db = tokens
            .mint(&WorkloadIdentity::new("shop", "db"), 1)
            .into_bytes();
        let old_key = other_key.mint(&web, 1).into_bytes();
        let cases: Vec<(&str, Workload, Option<Vec<u8>>, TokenPlan)> = vec![
            (
                "new workload",
                workload("shop", "web-1", Some("web"), true),
                None,
                TokenPlan::Write(path.clone(), web.clone()),
            ),
            (
                "up to date",
                workload("shop", "web-1", Some("web"), true),
                Some(current.clone()),
                TokenPlan::Keep(path.clone()),
            ),
            (
                "service account changed",
                workload("shop", "web-1", Some("web"), true),
                Some(for_db),
                TokenPlan::Write(path.clone(), web.clone()),
            ),
            (
                "key rotated",
                workload("shop", "web-1", Some("web"), true),
                Some(old_key),
                TokenPlan::Write(path.clone(), web.clone()),
            ),
            (
                "no service account: default",
                workload("shop", "web-1", None, true),
                None,
                TokenPlan::Write(path.clone(), WorkloadIdentity::new("shop", "default")),
            ),
            (
                "not meshed",
                workload("shop", "db-1", Some("db"), false),
                None,
                TokenPlan::Skip,
            ),
        ];
        for (name, workload, existing, expected) in cases {
            let plan = planned_token(dir, &workload, |_| existing, &tokens);
            assert_eq!(plan, expected, "{name}");
        }
        let unsafe_name = workload("shop", "../../etc", Some("web"), true);
        assert!(matches!(
            planned_token(dir, &unsafe_name, |_| None, &tokens),
            TokenPlan::Unsafe(_)
        ));
        let unsafe_account = workload("shop", "web-1", Some("Web/1"), true);
        assert!(matches!(
            planned_token(dir, &unsafe_account, |_| None, &tokens),
            TokenPlan::Unsafe(_)
        ));
    }
}
