//! `GET /api/version` and `GET /api/mesh`: the controller's version and
//! metrics source, and the mesh file's last load (or the Kubernetes
//! watches' state).

use std::sync::{Arc, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use weft_api::{MeshStatus, Version};

use super::{VERSION, WebState};
use crate::kubernetes::status::lock_status;

/// `GET /api/version`.
pub(super) async fn version(State(state): State<Arc<WebState>>) -> Json<Version> {
    Json(Version {
        version: VERSION.to_string(),
        metrics_source: state.metrics.source.as_str().to_string(),
    })
}

fn unix_seconds(time: Option<SystemTime>) -> Option<f64> {
    time.and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs_f64())
}

/// `GET /api/mesh`: the mesh file and its last load; with `--kubernetes`,
/// the Kubernetes API (`path` "kubernetes"): valid once every watch listed
/// and none is failing, the error naming the first failing resource.
pub(super) async fn mesh(State(state): State<Arc<WebState>>) -> Json<MeshStatus> {
    if let Some(kubernetes) = &state.kubernetes {
        let status = lock_status(kubernetes);
        let error = status.resources.iter().find_map(|(resource, watch)| {
            watch
                .last_error
                .as_ref()
                .map(|error| format!("{resource}: {error}"))
        });
        return Json(MeshStatus {
            path: "kubernetes".to_string(),
            valid: status.is_ready() && error.is_none(),
            error,
            last_load_unix: None,
        });
    }
    let status = state
        .mesh_file_status
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Json(MeshStatus {
        path: state.mesh_file_path.display().to_string(),
        valid: status.is_current(),
        error: status.last_error.clone(),
        last_load_unix: unix_seconds(status.last_good_load),
    })
}
