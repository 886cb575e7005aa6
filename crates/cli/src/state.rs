//! The state directory `weft up` keeps (certificates, tokens, logs) and its
//! `up.json`, which says where a running mesh is so the other commands can
//! find the controller without flags.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::global_options::GlobalOptions;

/// The name of the file that describes a running mesh, in the state directory.
pub const UP_FILE: &str = "up.json";
/// The API address used when neither a flag nor `up.json` says.
pub const DEFAULT_API_ADDR: &str = "http://127.0.0.1:8084";

/// Where a running `weft up` put everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpState {
    /// The `weft up` process.
    pub pid: u32,
    /// The mesh file it runs.
    pub mesh_file: PathBuf,
    /// The controller's addresses.
    pub controller: ControllerAddresses,
    /// The file holding the API token (tap needs it).
    pub token_file: PathBuf,
    /// The trust anchors (PEM).
    pub trust_anchors: PathBuf,
    /// The directory holding the issuer certificate and key.
    pub issuer_dir: PathBuf,
    /// Where each process writes its log.
    pub log_dir: PathBuf,
    /// Every workload it runs.
    pub workloads: Vec<UpWorkload>,
}

/// The controller's listeners.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerAddresses {
    /// The HTTP API and dashboard, as a URL (`http://127.0.0.1:8084`).
    pub api: String,
    /// Destination gRPC (`host:port`).
    pub destination: String,
    /// Identity gRPC (`host:port`).
    pub identity: String,
    /// The controller's admin server (`host:port`).
    pub admin: String,
}

/// One workload `weft up` runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpWorkload {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its identity, when identity is on.
    pub identity: Option<String>,
    /// Its proxy's admin address (`host:port`).
    pub admin: String,
    /// Its proxy's outbound (HTTP proxy) address.
    pub outbound: String,
    /// Its proxy's inbound address.
    pub inbound: String,
    /// Its proxy's tap address.
    pub tap: String,
}

/// The state directory: `--state-dir` / `WEFT_STATE_DIR`, else `$HOME/.weft`
/// (else `.weft` in the current directory).
pub fn state_dir(global: &GlobalOptions) -> PathBuf {
    if let Some(dir) = &global.state_dir {
        return dir.clone();
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => Path::new(&home).join(".weft"),
        _ => PathBuf::from(".weft"),
    }
}

/// Reads `up.json` from the state directory, if a mesh wrote one.
pub fn load(state_dir: &Path) -> anyhow::Result<Option<UpState>> {
    let path = state_dir.join(UP_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let state = serde_json::from_slice(&bytes)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
            Ok(Some(state))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(anyhow::anyhow!("{}: {error}", path.display())),
    }
}

/// Writes `up.json` into the state directory (through a temporary file, so a
/// reader never sees half of it).
pub fn save(state_dir: &Path, state: &UpState) -> anyhow::Result<()> {
    let path = state_dir.join(UP_FILE);
    let temporary = state_dir.join(format!("{UP_FILE}.tmp"));
    std::fs::write(&temporary, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&temporary, &path)?;
    Ok(())
}

/// The controller's API URL: `--api-addr`, else `up.json`, else the default.
pub fn api_addr(global: &GlobalOptions) -> String {
    if let Some(addr) = &global.api_addr {
        return normalize_url(addr);
    }
    match load(&state_dir(global)) {
        Ok(Some(state)) if !state.controller.api.is_empty() => state.controller.api,
        _ => DEFAULT_API_ADDR.to_string(),
    }
}

/// `127.0.0.1:8084` → `http://127.0.0.1:8084`; URLs are kept as they are.
fn normalize_url(addr: &str) -> String {
    if addr.contains("://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", addr.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_a_scheme() {
        for (input, expected) in [
            ("127.0.0.1:8084", "http://127.0.0.1:8084"),
            ("http://127.0.0.1:8084/", "http://127.0.0.1:8084"),
            ("https://mesh.example:443", "https://mesh.example:443"),
        ] {
            assert_eq!(normalize_url(input), expected, "{input}");
        }
    }

    #[test]
    fn saves_and_loads() {
        let dir = std::env::temp_dir().join(format!("weft-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(load(&dir).unwrap(), None);
        let state = UpState {
            pid: 7,
            controller: ControllerAddresses {
                api: "http://127.0.0.1:1".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        save(&dir, &state).unwrap();
        assert_eq!(load(&dir).unwrap(), Some(state));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
