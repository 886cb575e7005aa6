//! Tokens on a host mesh: with `--identity-token-dir DIR`, every meshed
//! Workload of the mesh file gets `DIR/<namespace>/<workload>.token` (mode
//! 0600), a token for its namespace and service account, valid for
//! `--identity-token-lifetime`, for its proxy to present to Certify (the
//! proxy re-reads the file for every Certify).
//!
//! ```text
//! start-up, each good mesh-file version, every lifetime/10 (1 s … 5 min):
//!   meshed workload ─► file proves its identity, with ≥ half the lifetime left? ─► keep
//!                                                                   otherwise ─► write a new token
//!   a .token file no meshed workload plans ─► removed
//! Certify: HMAC valid ─► not expired ─► some meshed workload of the current
//!          mesh file runs as that (namespace, service account)   (MeshTokenValidator)
//! ```
//!
//! So a token lives at most one lifetime, and a workload removed from the
//! mesh file (or moved to another service account) can obtain no new
//! certificate from that moment, even with a copy of its old token.
//!
//! [`planned_token`] and [`identity_in_mesh`] are the pure decisions;
//! [`TokenFiles`] does the writing, [`MeshTokenValidator`] the checking.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use weft_core::Workload;

use super::token::{HmacTokens, TokenRejection, TokenValidator, unix_now};
use super::{WorkloadIdentity, is_dns_label};

/// The token file's extension.
pub const TOKEN_EXTENSION: &str = "token";

/// Token-file metrics.
#[derive(Debug, Clone, Default)]
pub struct TokenFileMetrics {
    written: Counter,
    removed: Counter,
    failed: Counter,
}

impl TokenFileMetrics {
    /// Registers `identity_token_files_written_total` and
    /// `identity_token_file_errors_total`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "identity_token_files_written",
            "Workload token files written (new workloads, changed service accounts, a new key, renewals)",
            metrics.written.clone(),
        );
        registry.register(
            "identity_token_files_removed",
            "Token files removed because no meshed workload of the mesh file plans them",
            metrics.removed.clone(),
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
    /// The file already proves this identity for long enough.
    Keep(PathBuf),
    /// Write a new token for this identity here.
    Write(PathBuf, WorkloadIdentity),
}

/// When tokens are minted and how long they last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClock {
    /// Now, in Unix seconds.
    pub now: u64,
    /// A new token's lifetime, in seconds (at least 1).
    pub lifetime: u64,
}

impl TokenClock {
    /// Whether a token expiring at `expires_at` is still worth keeping:
    /// at least half a lifetime left, and no more than a whole one (a
    /// shortened `--identity-token-lifetime` takes effect at once).
    pub fn keeps(&self, expires_at: u64) -> bool {
        let left = expires_at.saturating_sub(self.now);
        left * 2 >= self.lifetime && left <= self.lifetime
    }

    /// When a token minted now expires.
    pub fn expiry(&self) -> u64 {
        self.now + self.lifetime
    }
}

/// The plan for `workload` under `dir`, given the file's current contents
/// (`existing`, `None` when absent), the tokens' key and the clock.
pub fn planned_token(
    dir: &Path,
    workload: &Workload,
    existing: impl FnOnce(&Path) -> Option<Vec<u8>>,
    tokens: &HmacTokens,
    clock: TokenClock,
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
        .and_then(|bytes| tokens.check(&bytes, clock.now).ok())
        .is_some_and(|proven| proven.identity == identity && clock.keeps(proven.expires_at));
    if proves {
        TokenPlan::Keep(path)
    } else {
        TokenPlan::Write(path, identity)
    }
}

/// Whether some meshed workload of `workloads` runs as `identity`.
pub fn identity_in_mesh(workloads: &[Workload], identity: &WorkloadIdentity) -> bool {
    workloads.iter().any(|workload| {
        workload.spec.meshed
            && workload.metadata.namespace.as_deref().unwrap_or("default") == identity.namespace
            && workload.service_account() == identity.service_account
    })
}

/// The host mesh's token validator: the controller's own token, unexpired,
/// for an identity the current mesh file still has.
#[derive(Debug)]
pub struct MeshTokenValidator {
    tokens: Arc<HmacTokens>,
    workloads: watch::Receiver<Arc<[Workload]>>,
}

impl MeshTokenValidator {
    /// Checks tokens with `tokens` against the mesh file's `workloads`.
    pub fn new(tokens: Arc<HmacTokens>, workloads: watch::Receiver<Arc<[Workload]>>) -> Self {
        Self { tokens, workloads }
    }
}

#[tonic::async_trait]
impl TokenValidator for MeshTokenValidator {
    async fn validate(&self, token: &[u8]) -> Result<WorkloadIdentity, TokenRejection> {
        let proven = self.tokens.check(token, unix_now())?;
        if identity_in_mesh(&self.workloads.borrow(), &proven.identity) {
            Ok(proven.identity)
        } else {
            Err(TokenRejection::Revoked(format!(
                "no meshed workload of the mesh file runs as service account {:?} in namespace {:?}",
                proven.identity.service_account, proven.identity.namespace
            )))
        }
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
    lifetime: Duration,
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
    /// Token files under `dir` (created now, so a bad flag fails start-up),
    /// each token valid for `lifetime`.
    pub fn new(
        dir: PathBuf,
        tokens: Arc<HmacTokens>,
        lifetime: Duration,
        metrics: TokenFileMetrics,
    ) -> Result<Self, TokenDirError> {
        std::fs::create_dir_all(&dir).map_err(|source| TokenDirError {
            path: dir.clone(),
            source,
        })?;
        Ok(Self {
            dir,
            tokens,
            lifetime,
            metrics,
        })
    }

    /// How often files are checked for renewal: a tenth of the lifetime,
    /// between 1 s and 5 min.
    pub fn refresh_interval(&self) -> Duration {
        (self.lifetime / 10).clamp(Duration::from_secs(1), Duration::from_secs(300))
    }

    /// Brings every meshed workload's file up to date and removes files no
    /// workload plans; returns how many were written.
    pub fn write_all(&self, workloads: &[Workload]) -> usize {
        let clock = TokenClock {
            now: unix_now(),
            lifetime: self.lifetime.as_secs().max(1),
        };
        let mut written = 0;
        let mut planned = BTreeSet::new();
        for workload in workloads {
            let plan = planned_token(
                &self.dir,
                workload,
                |path| std::fs::read(path).ok(),
                &self.tokens,
                clock,
            );
            match plan {
                TokenPlan::Skip => {}
                TokenPlan::Keep(path) => {
                    planned.insert(path);
                }
                TokenPlan::Unsafe(reason) => {
                    self.metrics.failed.inc();
                    tracing::warn!("no identity token: {reason}");
                }
                TokenPlan::Write(path, identity) => {
                    planned.insert(path.clone());
                    let token = self.tokens.mint(&identity, clock.now, clock.expiry());
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
        self.remove_unplanned(&planned);
        written
    }

    /// Removes `DIR/<namespace>/*.token` files that are not in `planned`
    /// (workloads gone from the mesh file or renamed).
    fn remove_unplanned(&self, planned: &BTreeSet<PathBuf>) {
        let Ok(namespaces) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for namespace in namespaces.flatten() {
            let Ok(files) = std::fs::read_dir(namespace.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                let is_token = path
                    .extension()
                    .is_some_and(|extension| extension == TOKEN_EXTENSION);
                if !is_token || planned.contains(&path) {
                    continue;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        self.metrics.removed.inc();
                        tracing::info!(path = %path.display(), "identity token removed: no meshed workload plans it");
                    }
                    Err(error) => {
                        self.metrics.failed.inc();
                        tracing::warn!(path = %path.display(), %error, "cannot remove a stale identity token");
                    }
                }
            }
        }
    }

    /// Rewrites files after each good mesh-file version, and renews them
    /// every [`Self::refresh_interval`], until `shutdown`. The writes run on
    /// the blocking pool, never on an async worker.
    pub async fn run(
        self,
        mut workloads: watch::Receiver<Arc<[Workload]>>,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut refresh = tokio::time::interval(self.refresh_interval());
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        refresh.tick().await;
        let files = Arc::new(self);
        loop {
            let current = tokio::select! {
                () = &mut shutdown => break,
                _ = refresh.tick() => Arc::clone(&workloads.borrow()),
                changed = workloads.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    Arc::clone(&workloads.borrow_and_update())
                }
            };
            let files = Arc::clone(&files);
            let write = tokio::task::spawn_blocking(move || files.write_all(&current));
            if let Err(error) = write.await {
                tracing::error!(%error, "writing identity token files failed");
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
        let clock = TokenClock {
            now: 10_000,
            lifetime: 1_000,
        };
        let expiring_at = |expires_at| tokens.mint(&web, 9_000, expires_at).into_bytes();
        let current = expiring_at(10_900);
        let for_db = tokens
            .mint(&WorkloadIdentity::new("shop", "db"), 9_900, 10_900)
            .into_bytes();
        let old_key = other_key.mint(&web, 9_900, 10_900).into_bytes();
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
                "exactly half the lifetime left",
                workload("shop", "web-1", Some("web"), true),
                Some(expiring_at(10_500)),
                TokenPlan::Keep(path.clone()),
            ),
            (
                "less than half left: renewed",
                workload("shop", "web-1", Some("web"), true),
                Some(expiring_at(10_499)),
                TokenPlan::Write(path.clone(), web.clone()),
            ),
            (
                "expired: renewed",
                workload("shop", "web-1", Some("web"), true),
                Some(expiring_at(9_999)),
                TokenPlan::Write(path.clone(), web.clone()),
            ),
            (
                "outlives a shortened lifetime: replaced",
                workload("shop", "web-1", Some("web"), true),
                Some(expiring_at(11_001)),
                TokenPlan::Write(path.clone(), web.clone()),
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
            let plan = planned_token(dir, &workload, |_| existing, &tokens, clock);
            assert_eq!(plan, expected, "{name}");
        }
        let unsafe_name = workload("shop", "../../etc", Some("web"), true);
        assert!(matches!(
            planned_token(dir, &unsafe_name, |_| None, &tokens, clock),
            TokenPlan::Unsafe(_)
        ));
        let unsafe_account = workload("shop", "web-1", Some("Web/1"), true);
        assert!(matches!(
            planned_token(dir, &unsafe_account, |_| None, &tokens, clock),
            TokenPlan::Unsafe(_)
        ));
    }

    #[test]
    fn identity_in_mesh_table() {
        let mesh = [
            workload("shop", "web-1", Some("web"), true),
            workload("shop", "db-1", Some("db"), false),
            workload("default", "cli", None, true),
        ];
        let cases = [
            ("meshed, same account", "shop", "web", true),
            ("account of an unmeshed workload", "shop", "db", false),
            ("same account, other namespace", "pay", "web", false),
            ("default namespace and account", "default", "default", true),
            ("no such account", "shop", "admin", false),
        ];
        for (name, namespace, account, expected) in cases {
            let identity = WorkloadIdentity::new(namespace, account);
            assert_eq!(identity_in_mesh(&mesh, &identity), expected, "{name}");
        }
    }
}
