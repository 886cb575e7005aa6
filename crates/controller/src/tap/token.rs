//! The API token that tap needs (`--api-token-file`): read from the file, or
//! created there (mode 0600, 32 random bytes, base64url) when absent; and
//! the pure check of a caller's `Authorization: Bearer …`. The token is
//! never taken from the URL, where access logs and browser history keep it
//! (the dashboard reads it from the page's `#token=` fragment, which is not
//! sent, and sends it as the header).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom as _, SystemRandom};

/// Random bytes in a new token.
const TOKEN_BYTES: usize = 32;

/// Why the token file could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// Reading, creating or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file exists but holds no token.
    #[error("{path}: the file is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The system random source failed.
    #[error("cannot make a random token")]
    Random,
}

/// The API token; compared in constant time, never logged.
#[derive(Clone)]
pub struct ApiToken(String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ApiToken(…)")
    }
}

impl ApiToken {
    /// A token with this text (tests, and what the file holds).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Reads the token from `path` (surrounding white space ignored), or
    /// creates the file with a new random token, mode 0600. The flag says
    /// whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), TokenFileError> {
        let io_error = |source| TokenFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = text.trim();
                if text.is_empty() {
                    return Err(TokenFileError::Empty {
                        path: path.to_path_buf(),
                    });
                }
                return Ok((Self(text.to_string()), false));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(error)),
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenFileError::Random)?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        if let Some(parent) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error)?;
        file.write_all(format!("{token}\n").as_bytes())
            .map_err(io_error)?;
        Ok((Self(token), true))
    }

    /// The token's text (what `weft dashboard` puts in the URL).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether a caller presented this token in `authorization`, the
    /// `Authorization` header (`Bearer <token>`).
    pub fn authorizes(&self, authorization: Option<&str>) -> bool {
        let bearer = authorization.and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        bearer.is_some_and(|presented| self.equals(presented))
    }

    fn equals(&self, presented: &str) -> bool {
        // Constant time in the length of the token.
        #[allow(deprecated)]
        let equal =
            ring::constant_time::verify_slices_are_equal(self.0.as_bytes(), presented.as_bytes())
                .is_ok();
        equal
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn authorization_table() {
        let token = ApiToken::new("s3cret");
        let cases = [
            (Some("Bearer s3cret"), true),
            (Some("bearer s3cret"), true),
            (Some("Bearer  s3cret "), true),
            (Some("Bearer wrong"), false),
            (Some("Bearer s3cre"), false),
            (Some("Bearer "), false),
            (Some("Basic s3cret"), false),
            (Some("s3cret"), false),
            (None, false),
        ];
        for (header, expected) in cases {
            assert_eq!(token.authorizes(header), expected, "{header:?}");
        }
    }

    #[test]
    fn created_once_with_mode_0600_then_read() {
        let dir = std::env::temp_dir().join(format!("weft-api-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("state").join("api-token");
        let (first, created) = ApiToken::load_or_create(&path).unwrap();
        assert!(created);
        assert!(first.expose().len() >= 40, "{}", first.expose());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, created) = ApiToken::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.expose(), second.expose());
        std::fs::write(&path, "  \n").unwrap();
        assert!(matches!(
            ApiToken::load_or_create(&path),
            Err(TokenFileError::Empty { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
