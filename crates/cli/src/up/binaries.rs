//! Where `weft up` finds the programs it runs: the weft binaries next to the
//! running `weft`, else in `PATH`; an app's bare program name next to `weft`
//! first (the demo's `weft-demo` is the one just built).

use std::path::{Path, PathBuf};

use anyhow::bail;

/// A weft binary: next to the running `weft`, else in `PATH`.
pub fn locate(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(beside) = beside_weft(name) {
        return Ok(beside);
    }
    if let Some(found) = in_path(name) {
        return Ok(found);
    }
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    bail!(
        "{name} not found next to weft ({}) nor in PATH: build it (cargo build -p {}) or put it in PATH",
        dir.display(),
        match name {
            "weft-controller" => "weft-controller",
            "weft-proxy" => "weft-proxy",
            other => other,
        }
    )
}

/// An app's program: a path as is; a bare name next to `weft` first (the
/// demo's `weft-demo`), else looked up in `PATH` when started.
pub fn resolve_program(program: &str) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    beside_weft(program).unwrap_or_else(|| PathBuf::from(program))
}

fn beside_weft(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join(name);
    path.is_file().then_some(path)
}

fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
