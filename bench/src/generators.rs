//! The load generators behind one call: `oha` for HTTP/1.1 and HTTP/2, the
//! `weft-bench grpc-load` helper process for gRPC, both placed on the
//! client CPUs.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::grpc_load::GrpcRun;
use crate::load::{LoadResult, LoadSpec, Workload};
use crate::oha;
use crate::process::Placement;

/// Runs load generators.
pub struct Generators {
    /// The `oha` binary.
    pub oha: PathBuf,
    /// This executable (for the `grpc-load` helper).
    pub me: PathBuf,
    /// CPUs and priority of the generators.
    pub placement: Placement,
}

impl Generators {
    /// Performs one run with the generator for its workload.
    pub fn run(&self, spec: &LoadSpec) -> anyhow::Result<LoadResult> {
        match spec.workload {
            Workload::Grpc => self.grpc(spec),
            Workload::Http1 | Workload::Http2 => oha::run(&self.oha, &self.placement, spec),
        }
    }

    /// One line naming the generators and their versions.
    pub fn describe(&self) -> String {
        format!(
            "HTTP/1.1 and HTTP/2: {}; gRPC: weft-bench's tonic client. HTTP/2 and gRPC \
             multiplex all streams on one connection, HTTP/1.1 uses one connection per slot",
            oha::version(&self.oha)
        )
    }

    fn grpc(&self, spec: &LoadSpec) -> anyhow::Result<LoadResult> {
        let run = GrpcRun {
            authority: spec.target.authority.clone(),
            via_proxy: spec.target.via_proxy,
            point: spec.point,
            open_loop_slots: spec.open_loop_slots,
            duration_ms: u64::try_from(spec.duration.as_millis())?,
        };
        let output = self
            .placement
            .command(&self.me)
            .args(["grpc-load", "--spec", &serde_json::to_string(&run)?])
            .output()
            .context("running grpc-load")?;
        if !output.status.success() {
            bail!(
                "grpc-load failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        serde_json::from_slice(&output.stdout).context("parsing grpc-load output")
    }
}
