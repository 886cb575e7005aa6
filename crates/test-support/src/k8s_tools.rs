//! The Kubernetes validators `scripts/k8s-tools.sh` installs (a venv at
//! `$WEFT_K8S_TOOLS`, else `<workspace>/target/k8s-tools`), for tests that
//! check manifests against the API server's schemas.
//!
//! ```text
//! k8s_tool("kubernetes-validate") ─► Some(<venv>/bin/kubernetes-validate)
//!                                 └► None: prints "skipped" (panics when `CI` is set)
//! kubernetes_validate_strict(tool, files, ["1.33.0", ...]) ─► passes for each version, no warning
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv `scripts/k8s-tools.sh` makes: `$WEFT_K8S_TOOLS`, else
/// `<workspace>/target/k8s-tools`.
fn k8s_tools_venv() -> PathBuf {
    match std::env::var_os("WEFT_K8S_TOOLS") {
        Some(venv) => PathBuf::from(venv),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/k8s-tools"),
    }
}

/// The venv's `bin/<name>`; when it is missing, `None` after printing
/// "skipped" (the caller returns), and a panic under CI, where the tools
/// must be installed.
pub fn k8s_tool(name: &str) -> Option<PathBuf> {
    let tool = k8s_tools_venv().join("bin").join(name);
    if tool.exists() {
        return Some(tool);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: run scripts/k8s-tools.sh",
        tool.display()
    );
    eprintln!(
        "skipped: run scripts/k8s-tools.sh ({} is missing)",
        tool.display()
    );
    None
}

/// `kubernetes-validate`, or `None` as [`k8s_tool`] says.
pub fn kubernetes_validate() -> Option<PathBuf> {
    k8s_tool("kubernetes-validate")
}

/// Runs `kubernetes-validate --strict` (the `tool`) on `files` for each of
/// `versions` ("1.33.0"); panics with its report unless every document
/// passes and none is warned about (an unknown kind is only a warning).
pub fn kubernetes_validate_strict(tool: &Path, files: &[PathBuf], versions: &[&str]) {
    for version in versions {
        let output = Command::new(tool)
            .args(["--strict", "-k", version])
            .args(files)
            .output()
            .expect("run kubernetes-validate");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kubernetes-validate --strict -k {version}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !stdout.to_lowercase().contains("warn"),
            "kubernetes-validate -k {version}:\n{stdout}"
        );
    }
}
