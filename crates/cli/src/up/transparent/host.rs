//! The I/O of `weft up --transparent`: the refusals checked before anything
//! starts, running the planned `ip`/`iptables` steps (and the hosts files),
//! removing everything again, and what a `weft` that was killed left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::{Layout, Names, Step};

/// Where `ip netns exec` finds the files it mounts over `/etc`.
const NETNS_ETC: &str = "/etc/netns";
/// Where `ip netns add` keeps the namespaces.
const NETNS_RUN: &str = "/run/netns";

/// Refuses, before anything starts, unless this is root with `ip`,
/// `iptables` (and its nat table) and `setpriv`.
pub fn preflight() -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("weft up --transparent needs root: network namespaces and iptables");
    }
    let missing: Vec<&str> = ["ip", "iptables", "setpriv"]
        .into_iter()
        .filter(|tool| !in_path(tool))
        .collect();
    if !missing.is_empty() {
        bail!(
            "weft up --transparent needs {} in PATH (iproute2, iptables, util-linux)",
            missing.join(", ")
        );
    }
    let nat = Command::new("iptables").args(["-t", "nat", "-S"]).output();
    match nat {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => bail!(
            "weft up --transparent needs iptables' nat table: iptables -t nat -S says {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => bail!("cannot run iptables: {error}"),
    }
}

fn in_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// The network that is up: removed by [`Network::tear_down`].
#[derive(Debug)]
pub struct Network {
    names: Names,
    namespaces: Vec<String>,
}

/// Creates the network `steps` describe and the hosts files; on a failed
/// step removes what was made and says which step failed and why.
pub fn set_up(layout: &Layout, steps: &[Step]) -> anyhow::Result<Network> {
    let network = Network {
        names: layout.names.clone(),
        namespaces: layout
            .workloads
            .iter()
            .map(|net| net.netns.clone())
            .collect(),
    };
    let result = (|| {
        for net in &layout.workloads {
            let dir = Path::new(NETNS_ETC).join(&net.netns);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let hosts = dir.join("hosts");
            std::fs::write(&hosts, super::hosts_file(layout, &net.mesh_namespace))
                .with_context(|| format!("cannot write {}", hosts.display()))?;
        }
        for step in steps {
            run(step)?;
        }
        anyhow::Ok(())
    })();
    match result {
        Ok(()) => Ok(network),
        Err(error) => {
            network.tear_down();
            Err(error)
        }
    }
}

/// Runs one step; its stderr in the error.
fn run(step: &Step) -> anyhow::Result<()> {
    let output = Command::new(&step.program)
        .args(&step.args)
        .output()
        .with_context(|| format!("cannot run {step}"))?;
    if !output.status.success() {
        bail!(
            "{step} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

impl Network {
    /// The namespaces, by workload.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Removes every namespace (with its veth pair and rules), the bridge,
    /// the FORWARD rule and the hosts files. Run after the children stopped.
    pub fn tear_down(&self) {
        remove(&self.names, &self.namespaces);
    }
}

/// Removes what a `weft up --transparent` with these names left behind (a
/// `weft` that was killed): processes still in its namespaces first.
pub fn remove_stale(names: &Names) {
    let prefix = names.namespace_prefix();
    let namespaces: Vec<String> = std::fs::read_dir(NETNS_RUN)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    for netns in &namespaces {
        kill_everything_in(netns);
    }
    remove(names, &namespaces);
}

/// SIGKILL to every process in a namespace (`ip netns pids`).
fn kill_everything_in(netns: &str) {
    let Ok(output) = Command::new("ip").args(["netns", "pids", netns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        if let Some(pid) = pid
            .parse::<i32>()
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

fn remove(names: &Names, namespaces: &[String]) {
    for step in super::tear_down(names, namespaces) {
        // Gone already is fine; a FORWARD rule inserted twice goes twice.
        while run(&step).is_ok() && step.program == "iptables" {}
    }
    let prefix = names.namespace_prefix();
    let stale: Vec<PathBuf> = std::fs::read_dir(NETNS_ETC)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect();
    for dir in stale {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Waits until process `pid` (in a workload's namespace) sees a listener on
/// every one of `ports` in its namespace; false after `timeout`.
pub async fn wait_listening_in(pid: Option<u32>, ports: &[u16], timeout: Duration) -> bool {
    let started = Instant::now();
    loop {
        if let Some(pid) = pid
            && in_other_namespace(pid)
        {
            let tables: String = ["tcp", "tcp6"]
                .iter()
                .filter_map(|file| std::fs::read_to_string(format!("/proc/{pid}/net/{file}")).ok())
                .collect::<Vec<_>>()
                .join("\n");
            if ports.iter().all(|port| super::listens_on(&tables, *port)) {
                return true;
            }
        }
        if started.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `pid` has left this process's network namespace (`ip netns exec`
/// has switched before it execs the app).
fn in_other_namespace(pid: u32) -> bool {
    let link = |path: String| std::fs::read_link(path).ok();
    match (
        link(format!("/proc/{pid}/ns/net")),
        link("/proc/self/ns/net".to_string()),
    ) {
        (Some(theirs), Some(ours)) => theirs != ours,
        _ => false,
    }
}
