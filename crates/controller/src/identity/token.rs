//! Who may ask for which identity: a [`TokenValidator`] turns the token in a
//! Certify request into the (namespace, service account) it proves, or a
//! typed [`TokenRejection`]. Kubernetes TokenReview can plug in behind the
//! same trait; on a host mesh the controller mints its own tokens.
//!
//! ```text
//! token   = "weft1." base64url(payload) "." base64url(HMAC-SHA256(key, "weft1." base64url(payload)))
//! payload = {"ns":"shop","sa":"web","iat":1764000000,"exp":1764086400}
//!           (JSON; iat = issued, exp = expires, Unix seconds)
//! key     = 32 random bytes in the state directory (mode 0600), see [`TokenKey`]
//! ```
//!
//! A token binds one namespace and service account: the Identity service
//! compares the identity it proves with the one requested, so a token for
//! `shop/web` can never obtain `shop/db`'s certificate. A token is refused
//! from its `exp` on (`--identity-token-lifetime`, 24 h by default; the
//! token files are rewritten well before that, see
//! [`super::token_files`]). Rotating the key (a new `token.key`) revokes
//! every token at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{WorkloadIdentity, is_dns_label};

/// The prefix (and version) of the controller's tokens.
pub const TOKEN_PREFIX: &str = "weft1";
/// The token key's length in bytes.
pub const TOKEN_KEY_LENGTH: usize = 32;

/// Why a token was refused; the Identity service maps each to a gRPC code
/// (Linkerd's TokenReview outcomes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a token of the expected shape (`InvalidArgument`).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Well-formed but not signed by this controller (`FailedPrecondition`).
    #[error("authentication token could not be authenticated")]
    NotAuthenticated,
    /// Authentic, but names no valid namespace/service account (`InvalidArgument`).
    #[error("token names an invalid identity: {0}")]
    InvalidIdentity(String),
    /// Authentic, but past its expiry (`FailedPrecondition`).
    #[error(
        "the token expired {ago}s ago (at {expired_at}, Unix seconds); its proxy must read a fresh one"
    )]
    Expired {
        /// When it expired.
        expired_at: u64,
        /// How long ago, in seconds.
        ago: u64,
    },
    /// Authentic and unexpired, but its identity is no longer in the mesh
    /// (`PermissionDenied`).
    #[error("token revoked: {0}")]
    Revoked(String),
    /// The validator itself failed (an API error; `Internal`).
    #[error("cannot validate the token: {0}")]
    Unavailable(String),
}

/// Checks a token and says which workload identity it proves.
#[tonic::async_trait]
pub trait TokenValidator: Send + Sync + 'static {
    /// The (namespace, service account) `token` proves, or why it proves nothing.
    async fn validate(&self, token: &[u8]) -> Result<WorkloadIdentity, TokenRejection>;
}

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    ns: String,
    sa: String,
    iat: u64,
    exp: u64,
}

/// What a checked token proves, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenToken {
    /// The identity it proves.
    pub identity: WorkloadIdentity,
    /// When it was issued (Unix seconds).
    pub issued_at: u64,
    /// When it stops being accepted (Unix seconds).
    pub expires_at: u64,
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The secret the controller signs its tokens with.
#[derive(Clone)]
pub struct TokenKey([u8; TOKEN_KEY_LENGTH]);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TokenKey(..)")
    }
}

/// Why the token key could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    /// Reading or writing the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not hold exactly [`TOKEN_KEY_LENGTH`] bytes.
    #[error("{path}: a token key must be {TOKEN_KEY_LENGTH} bytes, found {found}")]
    WrongLength {
        /// The key file.
        path: PathBuf,
        /// Its length.
        found: usize,
    },
    /// The system's random source failed.
    #[error("no randomness for a token key")]
    NoRandomness,
}

impl TokenKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, TokenKeyError> {
        let mut bytes = [0u8; TOKEN_KEY_LENGTH];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenKeyError::NoRandomness)?;
        Ok(Self(bytes))
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; TOKEN_KEY_LENGTH]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, for writing it to a file.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads the key at `path`; when there is no file, creates one (mode
    /// 0600). The flag says whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), TokenKeyError> {
        let io = |source| TokenKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let found = bytes.len();
                let bytes: [u8; TOKEN_KEY_LENGTH] =
                    bytes.try_into().map_err(|_| TokenKeyError::WrongLength {
                        path: path.to_path_buf(),
                        found,
                    })?;
                Ok((Self(bytes), false))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                let mut file = private_file_options().open(path).map_err(io)?;
                file.write_all(&key.0).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok((key, true))
            }
            Err(error) => Err(io(error)),
        }
    }
}

/// Options creating a new file only its owner can read (0600 on Unix).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// The controller's own tokens: minted for workloads of the mesh file,
/// checked with the same key.
#[derive(Debug)]
pub struct HmacTokens {
    key: hmac::Key,
}

impl HmacTokens {
    /// Tokens signed with `key`.
    pub fn new(key: &TokenKey) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()),
        }
    }

    /// A token proving `identity`, issued at `issued_at` and accepted until
    /// `expires_at` (Unix seconds).
    pub fn mint(&self, identity: &WorkloadIdentity, issued_at: u64, expires_at: u64) -> String {
        let claims = Claims {
            ns: identity.namespace.clone(),
            sa: identity.service_account.clone(),
            iat: issued_at,
            exp: expires_at,
        };
        // Serializing four plain fields cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signed = format!("{TOKEN_PREFIX}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// What `token` proves at `now` (Unix seconds). Surrounding whitespace
    /// (a file's trailing newline) is ignored.
    pub fn check(&self, token: &[u8], now: u64) -> Result<ProvenToken, TokenRejection> {
        let text = std::str::from_utf8(token)
            .map_err(|_| TokenRejection::Malformed("not UTF-8".into()))?
            .trim();
        let (signed, tag) = text
            .rsplit_once('.')
            .ok_or_else(|| TokenRejection::Malformed("expected weft1.<payload>.<mac>".into()))?;
        let payload = match signed.split_once('.') {
            Some((TOKEN_PREFIX, payload)) if !payload.contains('.') => payload,
            _ => {
                return Err(TokenRejection::Malformed(
                    "expected weft1.<payload>.<mac>".into(),
                ));
            }
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenRejection::Malformed("the MAC is not base64url".into()))?;
        hmac::verify(&self.key, signed.as_bytes(), &tag)
            .map_err(|_| TokenRejection::NotAuthenticated)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRejection::Malformed("the payload is not base64url".into()))?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|error| TokenRejection::Malformed(format!("bad payload: {error}")))?;
        for (what, value) in [("namespace", &claims.ns), ("service account", &claims.sa)] {
            if !is_dns_label(value) {
                return Err(TokenRejection::InvalidIdentity(format!(
                    "{what} {value:?} is not a DNS label"
                )));
            }
        }
        if now >= claims.exp {
            return Err(TokenRejection::Expired {
                expired_at: claims.exp,
                ago: now - claims.exp,
            });
        }
        Ok(ProvenToken {
            identity: WorkloadIdentity::new(claims.ns, claims.sa),
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }
}

#[tonic::async_trait]
impl TokenValidator for HmacTokens {
    async fn validate(&self, token: &[u8]) -> Result<WorkloadIdentity, TokenRejection> {
        self.check(token, unix_now()).map(|proven| proven.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(seed: u8) -> HmacTokens {
        HmacTokens::new(&TokenKey::from_bytes([seed; TOKEN_KEY_LENGTH]))
    }

    /// Re-signs an arbitrary payload with `tokens`' key (for payload-level cases).
    fn signed_payload(seed: u8, payload: &str) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[seed; TOKEN_KEY_LENGTH]);
        let signed = format!("{TOKEN_PREFIX}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = hmac::sign(&key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    #[test]
    fn validation_table() {
        const ISSUED: u64 = 1_764_000_000;
        const EXPIRES: u64 = ISSUED + 3_600;
        let web = WorkloadIdentity::new("shop", "web");
        let good = tokens(1).mint(&web, ISSUED, EXPIRES);
        let (prefix_and_payload, mac) = good.rsplit_once('.').unwrap();
        let (_, payload) = prefix_and_payload.split_once('.').unwrap();
        let db_payload =
            URL_SAFE_NO_PAD.encode(br#"{"ns":"shop","sa":"db","iat":1764000000,"exp":1764003600}"#);
        let malformed = |reason: &str| Err(TokenRejection::Malformed(reason.into()));
        let now = ISSUED + 10;
        let cases: Vec<(&str, String, u64, Result<WorkloadIdentity, TokenRejection>)> = vec![
            ("good", good.clone(), now, Ok(web.clone())),
            (
                "trailing newline",
                format!("{good}\n"),
                now,
                Ok(web.clone()),
            ),
            ("last second", good.clone(), EXPIRES - 1, Ok(web.clone())),
            (
                "expired",
                good.clone(),
                EXPIRES,
                Err(TokenRejection::Expired {
                    expired_at: EXPIRES,
                    ago: 0,
                }),
            ),
            (
                "expired long ago",
                good.clone(),
                EXPIRES + 90,
                Err(TokenRejection::Expired {
                    expired_at: EXPIRES,
                    ago: 90,
                }),
            ),
            (
                "a token without expiry (older weft)",
                signed_payload(1, r#"{"ns":"shop","sa":"web","iat":1764000000}"#),
                now,
                Err(TokenRejection::Malformed(
                    "bad payload: missing field `exp` at line 1 column 41".into(),
                )),
            ),
            (
                "wrong key",
                tokens(2).mint(&web, ISSUED, EXPIRES),
                now,
                Err(TokenRejection::NotAuthenticated),
            ),
            (
                "payload swapped for another service account",
                format!("{TOKEN_PREFIX}.{db_payload}.{mac}"),
                now,
                Err(TokenRejection::NotAuthenticated),
            ),
            (
                "MAC tampered",
                format!("{prefix_and_payload}.{}", URL_SAFE_NO_PAD.encode([0u8; 32])),
                now,
                Err(TokenRejection::NotAuthenticated),
            ),
            (
                "other version",
                format!("weft2.{payload}.{mac}"),
                now,
                malformed("expected weft1.<payload>.<mac>"),
            ),
            (
                "empty",
                String::new(),
                now,
                malformed("expected weft1.<payload>.<mac>"),
            ),
            (
                "a Kubernetes JWT",
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln".into(),
                now,
                malformed("expected weft1.<payload>.<mac>"),
            ),
            (
                "MAC not base64url",
                format!("{prefix_and_payload}.***"),
                now,
                malformed("the MAC is not base64url"),
            ),
            (
                "signed but not JSON",
                signed_payload(1, "ns=shop"),
                now,
                Err(TokenRejection::Malformed(
                    "bad payload: expected ident at line 1 column 2".into(),
                )),
            ),
            (
                "signed but an invalid service account",
                signed_payload(1, r#"{"ns":"shop","sa":"Web_1","iat":0,"exp":9999999999}"#),
                now,
                Err(TokenRejection::InvalidIdentity(
                    "service account \"Web_1\" is not a DNS label".into(),
                )),
            ),
        ];
        for (name, token, now, expected) in cases {
            let got = tokens(1)
                .check(token.as_bytes(), now)
                .map(|proven| proven.identity);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn mint_then_check_keeps_issued_at_and_expiry() {
        let tokens = tokens(7);
        let identity = WorkloadIdentity::new("payments", "api");
        let token = tokens.mint(&identity, 42, 100);
        assert!(token.starts_with("weft1."));
        assert_eq!(
            tokens.check(token.as_bytes(), 50),
            Ok(ProvenToken {
                identity,
                issued_at: 42,
                expires_at: 100
            })
        );
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let directory = std::env::temp_dir().join(format!(
            "weft-token-key-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("token.key");
        let (first, created) = TokenKey::load_or_create(&path).unwrap();
        assert!(created);
        let (second, created) = TokenKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.as_bytes(), second.as_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            TokenKey::load_or_create(&path),
            Err(TokenKeyError::WrongLength { found: 5, .. })
        ));
        let _ = std::fs::remove_dir_all(&directory);
    }
}
