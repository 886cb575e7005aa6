//! Creating identity credentials, like `step certificate create` does for
//! Linkerd: `weft-controller identity init --dir STATE_DIR` writes
//!
//! ```text
//! STATE_DIR/trust-anchor.pem       root CA  root.<control-ns>.<trust-domain>   (1 year)
//! STATE_DIR/trust-anchor.key.pem   its key                                     0600
//! STATE_DIR/issuer/crt.pem         issuer CA identity.<control-ns>.<trust-domain>, signed by the root (1 year)
//! STATE_DIR/issuer/key.pem         its key                                     0600
//! STATE_DIR/token.key              32 random bytes for the controller's tokens 0600
//! ```
//!
//! and refuses to replace any existing file unless `--force`.
//! `identity rotate-issuer --dir STATE_DIR` signs a new issuer with the
//! existing root and replaces `issuer/` in place (each file renamed over the
//! old one), so a running controller picks it up.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM. [`generate_root`] and
//! [`generate_issuer`] are pure apart from key generation (tests use them);
//! the certificates are weft-core's [`pki`](weft_core::pki) CAs, as
//! `weft install` generates them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;
pub use weft_core::pki::GeneratedCa;

use super::IdentityDomain;
use super::token::{TokenKey, TokenKeyError, private_file_options};

/// The default lifetime of a trust anchor and of an issuer.
pub const DEFAULT_CA_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// The trust anchor's file in the state directory.
pub const TRUST_ANCHOR_FILE: &str = "trust-anchor.pem";
/// The trust anchor's key file.
pub const TRUST_ANCHOR_KEY_FILE: &str = "trust-anchor.key.pem";
/// The issuer directory (holding `crt.pem` and `key.pem`).
pub const ISSUER_DIR: &str = "issuer";
/// The issuer certificate's file in the issuer directory.
pub const ISSUER_CERTIFICATE_FILE: &str = "crt.pem";
/// The issuer key's file in the issuer directory.
pub const ISSUER_KEY_FILE: &str = "key.pem";
/// The token key's file in the state directory.
pub const TOKEN_KEY_FILE: &str = "token.key";

/// Why credentials could not be created.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A file is already there and `--force` was not given.
    #[error("{0} already exists (use --force to replace it)")]
    Exists(PathBuf),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The existing trust anchor could not be used (rotate-issuer).
    #[error("{path}: {reason}")]
    BadTrustAnchor {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Generating keys or certificates failed.
    #[error("cannot create certificates: {0}")]
    Generate(String),
    /// Generating the token key failed.
    #[error(transparent)]
    TokenKey(#[from] TokenKeyError),
}

/// What `identity init` creates.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The state directory.
    pub dir: PathBuf,
    /// The names' suffix.
    pub domain: IdentityDomain,
    /// The trust anchor's lifetime.
    pub trust_anchor_lifetime: Duration,
    /// The issuer's lifetime.
    pub issuer_lifetime: Duration,
    /// Replace existing files.
    pub force: bool,
}

/// A self-signed root CA named `root.<control-ns>.<trust-domain>`, valid from
/// `now` for `lifetime`.
pub fn generate_root(
    domain: &IdentityDomain,
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<GeneratedCa, InitError> {
    weft_core::pki::generate_root(&domain.root_name(), now, lifetime).map_err(generate_error)
}

/// An issuer CA named `identity.<control-ns>.<trust-domain>` (path length 0),
/// signed by `root`, valid from `now` for `lifetime`.
pub fn generate_issuer(
    root: &GeneratedCa,
    domain: &IdentityDomain,
    now: OffsetDateTime,
    lifetime: Duration,
) -> Result<GeneratedCa, InitError> {
    weft_core::pki::generate_issuer(root, &domain.issuer_name(), now, lifetime)
        .map_err(generate_error)
}

fn generate_error(error: rcgen::Error) -> InitError {
    InitError::Generate(error.to_string())
}

/// `identity init`: creates the root, the issuer and the token key under
/// `options.dir`. Returns the files written.
pub fn init(options: &InitOptions) -> Result<Vec<PathBuf>, InitError> {
    let dir = &options.dir;
    let files = [
        dir.join(TRUST_ANCHOR_FILE),
        dir.join(TRUST_ANCHOR_KEY_FILE),
        dir.join(ISSUER_DIR).join(ISSUER_CERTIFICATE_FILE),
        dir.join(ISSUER_DIR).join(ISSUER_KEY_FILE),
        dir.join(TOKEN_KEY_FILE),
    ];
    if !options.force
        && let Some(existing) = files.iter().find(|file| file.exists())
    {
        return Err(InitError::Exists(existing.clone()));
    }
    create_dir(&dir.join(ISSUER_DIR))?;

    let now = OffsetDateTime::now_utc();
    let root = generate_root(&options.domain, now, options.trust_anchor_lifetime)?;
    let issuer = generate_issuer(&root, &options.domain, now, options.issuer_lifetime)?;
    let token_key = TokenKey::generate()?;
    let [
        anchor,
        anchor_key,
        issuer_certificate,
        issuer_key,
        token_key_file,
    ] = &files;
    replace_file(anchor, root.certificate_pem.as_bytes(), false)?;
    replace_file(anchor_key, root.key_pem.as_bytes(), true)?;
    // The key first: a watching controller then sees a mismatched pair at
    // worst for one poll, never a new certificate with no key yet.
    replace_file(issuer_key, issuer.key_pem.as_bytes(), true)?;
    replace_file(issuer_certificate, issuer.certificate_pem.as_bytes(), false)?;
    replace_file(token_key_file, token_key.as_bytes(), true)?;
    Ok(files.to_vec())
}

/// `identity rotate-issuer`: a new issuer signed by the existing root,
/// replacing `issuer/crt.pem` and `issuer/key.pem`. Returns the files written.
pub fn rotate_issuer(
    dir: &Path,
    domain: &IdentityDomain,
    issuer_lifetime: Duration,
) -> Result<Vec<PathBuf>, InitError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| InitError::Io { path, source })
    };
    let root = GeneratedCa {
        certificate_pem: read(TRUST_ANCHOR_FILE)?,
        key_pem: read(TRUST_ANCHOR_KEY_FILE)?,
    };
    let issuer = generate_issuer(&root, domain, OffsetDateTime::now_utc(), issuer_lifetime)
        .map_err(|error| InitError::BadTrustAnchor {
            path: dir.join(TRUST_ANCHOR_FILE),
            reason: error.to_string(),
        })?;
    let issuer_dir = dir.join(ISSUER_DIR);
    create_dir(&issuer_dir)?;
    let certificate = issuer_dir.join(ISSUER_CERTIFICATE_FILE);
    let key = issuer_dir.join(ISSUER_KEY_FILE);
    replace_file(&key, issuer.key_pem.as_bytes(), true)?;
    replace_file(&certificate, issuer.certificate_pem.as_bytes(), false)?;
    Ok(vec![certificate, key])
}

fn create_dir(path: &Path) -> Result<(), InitError> {
    std::fs::create_dir_all(path).map_err(|source| InitError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `contents` to a new file beside `path` (0600 when `private`), then
/// renames it over `path`, so readers see the old file or the new one.
pub fn replace_file(path: &Path, contents: &[u8], private: bool) -> Result<(), InitError> {
    let io = |source| InitError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let options = if private {
        private_file_options()
    } else {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        options
    };
    let written = options.open(&staging).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&staging);
        return Err(io(error));
    }
    std::fs::rename(&staging, path).map_err(io)
}
