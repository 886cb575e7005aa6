//! Shared by weft-core's integration tests (`crds`, `inject`): the
//! Kubernetes validators of `scripts/k8s-tools.sh` (a venv at
//! `$WEFT_K8S_TOOLS` or `target/k8s-tools`). Without them a test prints
//! "skipped" and returns; under CI (`CI` set) it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace this crate is in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/core is two levels below the workspace")
        .to_path_buf()
}

/// The validators' venv bin directory, or `None` (after saying why) when
/// it is absent outside CI.
pub fn k8s_tools() -> Option<PathBuf> {
    let venv = std::env::var_os("WEFT_K8S_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/k8s-tools"));
    let bin = venv.join("bin");
    if bin.join("kubernetes-validate").is_file() {
        return Some(bin);
    }
    skip(&format!("no kubernetes-validate under {}", venv.display()))
}

/// Panics under CI (the tools must be there); else says the test is skipped.
pub fn skip(reason: &str) -> Option<PathBuf> {
    assert!(
        std::env::var_os("CI").is_none(),
        "{reason}: run scripts/k8s-tools.sh"
    );
    println!("skipped: run scripts/k8s-tools.sh ({reason})");
    None
}

/// Runs `kubernetes-validate --strict --quiet` from `tools` on `files` for
/// each of `versions` ("1.33.0"); panics with its report unless every
/// document passes without a warning.
pub fn kubernetes_validate_strict(tools: &Path, files: &[PathBuf], versions: &[&str]) {
    for version in versions {
        let output = Command::new(tools.join("kubernetes-validate"))
            .args(["--strict", "--quiet", "-k", version])
            .args(files)
            .output()
            .expect("run kubernetes-validate");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "kubernetes {version}:\n{report}");
        assert!(!report.contains("WARN"), "kubernetes {version}:\n{report}");
    }
}
