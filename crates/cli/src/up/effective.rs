//! Keeping the controller's effective mesh file in step with the user's: the
//! controller watches `<state>/mesh.effective.yaml`, so `weft up` polls the
//! user's file and renders it again (`super::ports::render`, the
//! allocated ports filled in, or with `--transparent` the namespaces'
//! addresses and clusterIPs) whenever its text changes. Edits (routes,
//! splits, workloads) thus still take effect live. Workloads added while
//! running get no allocation (`weft up` does not start them either).

use std::path::PathBuf;
use std::time::Duration;

use super::ports;

/// How often the user's mesh file is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Renders `source` into `effective` with `render` after every change of
/// its text, until the task is aborted.
pub fn watch(
    source: PathBuf,
    effective: PathBuf,
    render: impl Fn(&str) -> String + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = std::fs::read_to_string(&source).ok();
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            // A file being replaced may be missing for a moment: try again.
            let Ok(text) = tokio::fs::read_to_string(&source).await else {
                continue;
            };
            if last.as_deref() == Some(text.as_str()) {
                continue;
            }
            let rendered = render(&text);
            let target = effective.clone();
            let written = tokio::task::spawn_blocking(move || {
                ports::write_replacing(&target, rendered.as_bytes())
            })
            .await;
            if matches!(written, Ok(Ok(()))) {
                last = Some(text);
            }
        }
    })
}
