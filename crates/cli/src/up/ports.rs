//! The proxy ports `weft up` picks itself: every port a workload's
//! `spec.proxy` leaves out (inbound, outbound, admin, tap) is allocated from
//! `--port-base` upwards, skipping the ports the mesh file and the
//! controller name and those already taken on this host. Allocations are
//! kept in `<state>/ports.json`, keyed by `namespace/name`, so a workload
//! keeps its ports across restarts (unless the base changes or the file
//! now names the port for something else).
//!
//! The controller learns the allocated ports from the effective mesh file
//! ([`render`]): the user's file with each run workload's missing ports
//! filled in, every document on the line it has in the user's file.
//!
//! ```text
//! mesh.yaml ─► allocate (ports.json) ─► render ─► <state>/mesh.effective.yaml ─► controller
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use weft_core::Workload;
use weft_core::workload::WorkloadProxy;

/// The file holding the allocations, in the state directory.
pub const PORTS_FILE: &str = "ports.json";
/// The effective mesh file the controller reads, in the state directory.
pub const EFFECTIVE_MESH_FILE: &str = "mesh.effective.yaml";
/// Where allocation starts when `--port-base` is not given.
pub const DEFAULT_PORT_BASE: u16 = 7500;

/// Every allocation, from one base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocations {
    /// The port allocation started from.
    pub base: u16,
    /// By `namespace/name`.
    pub workloads: BTreeMap<String, AllocatedPorts>,
}

/// The ports allocated to one workload's proxy (`None`: the file names it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocatedPorts {
    /// Inbound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<u16>,
    /// Outbound (the app's HTTP proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<u16>,
    /// Admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<u16>,
    /// Tap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<u16>,
}

/// `namespace/name` of a workload.
pub fn key(workload: &Workload) -> String {
    format!(
        "{}/{}",
        workload.metadata.namespace.as_deref().unwrap_or("default"),
        workload.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Whether `weft up` runs a proxy for it (and so allocates its ports).
fn runs_a_proxy(workload: &Workload) -> bool {
    workload.spec.run.is_some() && workload.spec.meshed
}

/// The four proxy ports as the file gives them.
fn written(workload: &Workload) -> [Option<u16>; 4] {
    let proxy = workload.spec.proxy.clone().unwrap_or_default();
    [
        proxy.inbound_port,
        proxy.outbound_port,
        proxy.admin_port,
        proxy.tap_port,
    ]
}

/// Allocates every missing proxy port of the workloads `weft up` runs.
/// `reserved`: ports named elsewhere (the controller's); `taken(port)`:
/// whether a port is in use on this host now. Pure but for `taken`.
pub fn allocate(
    workloads: &[Workload],
    stored: &Allocations,
    base: u16,
    reserved: &[u16],
    taken: &dyn Fn(u16) -> bool,
) -> Allocations {
    // Ports the file or the controller name: never allocated.
    let mut named: BTreeSet<u16> = reserved.iter().copied().collect();
    for workload in workloads {
        named.extend(workload.spec.ports.iter().map(|port| port.port));
        if workload.spec.meshed {
            named.extend(written(workload).into_iter().flatten());
        }
    }
    let mut result = Allocations {
        base,
        workloads: BTreeMap::new(),
    };
    let previous = if stored.base == base {
        stored.workloads.clone()
    } else {
        BTreeMap::new()
    };
    // Previous allocations of workloads no longer in the file stay reserved.
    let current: BTreeSet<String> = workloads.iter().map(key).collect();
    let mut used: BTreeSet<u16> = BTreeSet::new();
    for (name, ports) in &previous {
        if !current.contains(name) {
            result.workloads.insert(name.clone(), *ports);
            used.extend(ports.as_array().into_iter().flatten());
        }
    }
    // First what each workload keeps, then new ports for the rest, so a kept
    // port is never handed to another workload.
    let running: Vec<&Workload> = workloads
        .iter()
        .filter(|workload| runs_a_proxy(workload))
        .collect();
    let mut planned: Vec<[Option<u16>; 4]> = Vec::with_capacity(running.len());
    for workload in &running {
        let kept = previous
            .get(&key(workload))
            .copied()
            .unwrap_or_default()
            .as_array();
        let mut ports = [None; 4];
        for (slot, given) in written(workload).into_iter().enumerate() {
            if let (None, Some(port)) = (given, kept[slot])
                && !named.contains(&port)
                && used.insert(port)
            {
                ports[slot] = Some(port);
            }
        }
        planned.push(ports);
    }
    let mut next = base;
    for (workload, mut ports) in running.into_iter().zip(planned) {
        for (slot, given) in written(workload).into_iter().enumerate() {
            if given.is_some() || ports[slot].is_some() {
                continue;
            }
            while named.contains(&next) || used.contains(&next) || taken(next) {
                next = next.checked_add(1).unwrap_or(base);
            }
            used.insert(next);
            ports[slot] = Some(next);
        }
        let ports = AllocatedPorts::from_array(ports);
        if ports.any() {
            result.workloads.insert(key(workload), ports);
        }
    }
    result
}

impl AllocatedPorts {
    fn as_array(self) -> [Option<u16>; 4] {
        [self.inbound, self.outbound, self.admin, self.tap]
    }

    fn from_array([inbound, outbound, admin, tap]: [Option<u16>; 4]) -> Self {
        AllocatedPorts {
            inbound,
            outbound,
            admin,
            tap,
        }
    }

    /// Whether any port was allocated.
    pub fn any(&self) -> bool {
        self.as_array().iter().any(Option::is_some)
    }
}

/// Fills each workload's missing proxy ports with its allocation (workloads
/// without one are left as they are).
pub fn fill(workload: &mut Workload, allocations: &Allocations) {
    if !runs_a_proxy(workload) {
        return;
    }
    let Some(ports) = allocations.workloads.get(&key(workload)) else {
        return;
    };
    if !ports.any() {
        return;
    }
    let proxy = workload
        .spec
        .proxy
        .get_or_insert_with(WorkloadProxy::default);
    proxy.inbound_port = proxy.inbound_port.or(ports.inbound);
    proxy.outbound_port = proxy.outbound_port.or(ports.outbound);
    proxy.admin_port = proxy.admin_port.or(ports.admin);
    proxy.tap_port = proxy.tap_port.or(ports.tap);
}

/// The effective mesh file: `text` with the allocated ports filled in. A
/// Workload document that gets ports is written as one line of JSON (YAML's
/// flow form) followed by blank lines, so every document keeps its line
/// numbers and the controller's errors point into the user's file. Other
/// documents are copied as they are; a document that does not parse is
/// copied too (the controller reports it).
pub fn render(text: &str, allocations: &Allocations) -> String {
    let mut out = String::with_capacity(text.len());
    for (separator, document) in documents(text) {
        out.push_str(separator);
        match filled_workload(document, allocations) {
            Some(json) => {
                let lines = document.matches('\n').count();
                out.push_str(&json);
                out.push_str(&"\n".repeat(lines.max(1)));
            }
            _ => out.push_str(document),
        }
    }
    out
}

/// A Workload document with allocated ports, as JSON; `None` to copy it.
fn filled_workload(document: &str, allocations: &Allocations) -> Option<String> {
    #[derive(Deserialize)]
    struct Head {
        kind: Option<String>,
    }
    let head: Head = serde_saphyr::from_str(document).ok()?;
    if head.kind.as_deref() != Some(weft_core::workload::KIND) {
        return None;
    }
    let mut workload: Workload = serde_saphyr::from_str(document).ok()?;
    let before = workload.clone();
    fill(&mut workload, allocations);
    if workload == before {
        return None;
    }
    serde_json::to_string(&workload).ok()
}

/// The documents of a YAML stream with the separator line before each (the
/// first has none).
pub fn documents(text: &str) -> Vec<(&str, &str)> {
    let mut documents = Vec::new();
    let mut separator = "";
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push((separator, &text[start..offset]));
            separator = line;
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push((separator, &text[start..]));
    documents
}

/// The stored allocations (empty when there are none or they do not parse).
pub fn load(state_dir: &Path) -> Allocations {
    std::fs::read(state_dir.join(PORTS_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Stores the allocations.
pub fn save(state_dir: &Path, allocations: &Allocations) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(allocations).map_err(std::io::Error::other)?;
    write_replacing(&state_dir.join(PORTS_FILE), json.as_bytes())
}

/// Writes `path` by renaming a finished copy into place, so a reader (the
/// controller's file watch) never sees half a file.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    std::fs::write(&staged, bytes)?;
    std::fs::rename(&staged, path)
}

#[cfg(test)]
mod tests;
