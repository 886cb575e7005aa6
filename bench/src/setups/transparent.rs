//! The transparent setups, weft-transparent and linkerd: one proxy in
//! front of the backend that learns where a connection goes only from
//! `SO_ORIGINAL_DST`, as in a pod.
//!
//! ```text
//! client ─connect A:P─► iptables nat OUTPUT REDIRECT (not UID 2102) ─► proxy inbound 127.0.0.1:I
//!   proxy (UID 2102): original destination A:P ─► connects to A:P itself ─► backend (also on A:P)
//! weft-transparent  A = 127.0.0.2, weft-proxy without WEFT_PROXY_INBOUND_FORWARD_ADDR
//! linkerd           A = 127.0.0.3, linkerd2-proxy (LINKERD2_PROXY_*), control plane and
//!                   identity from a weft-controller started for it
//! ```
//!
//! Both go through [`start_intercepted`]: the host check (root, iptables),
//! the proxy's listeners, the REDIRECT and the start check are the same;
//! only the process started (and its environment) differs. So running
//! weft-transparent exercises everything the linkerd setup does except
//! linkerd2-proxy's own environment and identity files.
//!
//! The start check sends [`START_REQUESTS`] requests, one per connection,
//! to the intercepted address and requires the proxy's `/metrics` to count
//! exactly that many more `request_total{direction="inbound"}` for it: none
//! means the traffic bypassed the proxy; more means the proxy's own
//! connections were redirected back to itself (a loop). After the smoke
//! test the count must have grown by at least its successful requests.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{
    Lab, MeasuredProxy, PathCheck, START_TIMEOUT, Setup, WeftPorts, WeftSpec, start_controller,
};
use crate::connections;
use crate::discovery::{self, Mesh};
use crate::interception::{self, Access, PROXY_UID, Redirect, RedirectRule};
use crate::linkerd::{self, IdentityFiles, LinkerdConfig};
use crate::load::{Target, Workload};
use crate::others;
use crate::process::{Managed, Placement, SpawnSpec, free_port};

/// The address weft-transparent intercepts.
pub(super) const WEFT_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The address the linkerd setup intercepts.
pub(super) const LINKERD_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Requests of the start check, one per connection.
const START_REQUESTS: u64 = 20;

/// A transparent proxy's listeners, all on 127.0.0.1 (REDIRECT sends
/// locally generated connections to the loopback address).
#[derive(Clone, Copy, Debug)]
struct Listeners {
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
    /// linkerd2-proxy's control (tap) listener.
    control: SocketAddr,
}

impl Listeners {
    fn pick() -> anyhow::Result<Listeners> {
        Ok(Listeners {
            inbound: free_port()?,
            outbound: free_port()?,
            admin: free_port()?,
            control: free_port()?,
        })
    }
}

/// A transparent proxy, ready (its admin `/ready` answered), and what runs
/// for it (the linkerd setup's controller).
struct Started {
    proxy: Managed,
    companions: Vec<Managed>,
}

/// weft-transparent: weft-proxy without a forward address, as UID 2102.
pub(super) fn start_weft(lab: &Lab, name: String) -> anyhow::Result<Setup> {
    start_intercepted(lab, name.clone(), WEFT_ADDRESS, |listeners, _| {
        interception::check_access(PROXY_UID, &lab.proxy_bin, Access::Execute)?;
        let spec = WeftSpec {
            ports: Some(WeftPorts {
                inbound: listeners.inbound,
                outbound: listeners.outbound,
                admin: listeners.admin,
            }),
            user: Some(PROXY_UID),
            ..WeftSpec::default()
        };
        let proxy = super::start_weft(lab, &name, spec)?;
        Ok(Started {
            proxy: proxy.process,
            companions: Vec::new(),
        })
    })
}

/// linkerd: a weft-controller with identity (the meshed Workload `web-1`
/// is the backend at the intercepted address, its proxy linkerd2-proxy),
/// linkerd2-proxy's identity directory and token, a Certify request as the
/// proxy would send it, then linkerd2-proxy as UID 2102.
pub(super) fn start_linkerd(lab: &Lab, name: String, binary: &Path) -> anyhow::Result<Setup> {
    others::check_executable(binary).context("the linkerd2-proxy binary")?;
    start_intercepted(
        lab,
        name.clone(),
        LINKERD_ADDRESS,
        |listeners, intercepted| {
            interception::check_access(PROXY_UID, binary, Access::Execute)?;
            let openssl = others::locate("openssl")
                .context("openssl not found (the linkerd setup makes its key and CSR with it)")?;
            let controller = start_controller(
                lab,
                &name,
                Mesh::Meshed {
                    backend: intercepted,
                    inbound_port: listeners.inbound.port(),
                },
                true,
                true,
            )?;
            let identity = controller
                .identity
                .clone()
                .context("the controller was started without identity")?;
            let local_name = discovery::identity_of(discovery::SERVER_WORKLOAD);
            let files = IdentityFiles::in_dir(&lab.workdir.join(&name).join("identity"));
            let token_source = identity
                .token_dir
                .join(discovery::NAMESPACE)
                .join(format!("{}.token", discovery::SERVER_WORKLOAD));
            files.write(&openssl, &local_name, &token_source, PROXY_UID)?;
            for path in [&files.key, &files.csr, &files.token] {
                interception::check_access(PROXY_UID, path, Access::Read)?;
            }
            linkerd::preflight_certify(identity.addr, &local_name, &files)
                .context("the Certify request linkerd2-proxy would send")?;
            let environment = linkerd::environment(&LinkerdConfig {
                inbound: listeners.inbound,
                outbound: listeners.outbound,
                admin: listeners.admin,
                control: listeners.control,
                destination: controller.destination,
                identity: identity.addr,
                identity_dir: files.dir.clone(),
                token_file: files.token.clone(),
                trust_anchors_pem: identity.trust_anchors_pem.clone(),
                local_name,
                policy_workload: linkerd::policy_workload(
                    discovery::NAMESPACE,
                    discovery::SERVER_WORKLOAD,
                ),
                app_port: intercepted.port(),
            });
            let placement = Placement {
                user: Some(PROXY_UID),
                ..lab.proxy_placement.clone()
            };
            let mut proxy = Managed::spawn(SpawnSpec {
                name: &name,
                program: binary,
                args: &[],
                envs: &environment,
                placement: &placement,
                log: &lab.workdir.join(format!("{name}.log")),
            })?;
            // 200 once its identity is certified.
            proxy.wait_http_ok(listeners.admin, "/ready", START_TIMEOUT)?;
            Ok(Started {
                proxy,
                // Dropped after the proxy: the controller stops last.
                companions: vec![controller.process],
            })
        },
    )
}

/// What the transparent setups share: the host check, the listeners, the
/// proxy `start` makes (given its listeners and the intercepted address),
/// the REDIRECT of `address`:backend port into its inbound listener, and
/// the start check. Every workload targets the intercepted address directly.
fn start_intercepted(
    lab: &Lab,
    name: String,
    address: Ipv4Addr,
    start: impl FnOnce(&Listeners, SocketAddr) -> anyhow::Result<Started>,
) -> anyhow::Result<Setup> {
    let iptables = interception::check_host(&name)?;
    let intercepted = SocketAddr::new(address.into(), lab.backend.port());
    let listeners = Listeners::pick()?;
    let started = start(&listeners, intercepted)?;
    let rule = RedirectRule {
        chain: interception::chain_name(std::process::id(), address),
        address,
        port: intercepted.port(),
        to_port: listeners.inbound.port(),
        exempt_uid: PROXY_UID,
    };
    let redirect = Redirect::install(&iptables, &rule)?;
    let counted_at_start = check_start(listeners.admin, intercepted).with_context(|| {
        format!(
            "the start check of {name} (iptables chain {})",
            redirect.chain()
        )
    })?;
    let target = Target::direct(intercepted);
    let mut setup = Setup::new(
        name.clone(),
        Workload::ALL.map(|w| (w, target.clone())).into(),
    );
    setup.path_check = PathCheck::Transparent(TransparentCheck {
        admin: listeners.admin,
        intercepted,
        counted_at_start,
    });
    setup.proxies.push(MeasuredProxy {
        role: name,
        pid: started.proxy.pid(),
    });
    setup.processes.push(started.proxy);
    setup.processes.extend(started.companions);
    setup.redirect = Some(redirect);
    Ok(setup)
}

/// The inbound requests to `intercepted` the proxy at `admin` counted.
fn counted(admin: SocketAddr, intercepted: SocketAddr) -> anyhow::Result<u64> {
    Ok(inbound_requests(&discovery::metrics(admin)?, intercepted))
}

/// `request_total{direction="inbound",target_addr="<intercepted>"}`, summed
/// (weft-proxy and linkerd2-proxy name it alike).
pub fn inbound_requests(metrics: &str, intercepted: SocketAddr) -> u64 {
    let target = format!("target_addr=\"{intercepted}\"");
    discovery::split_sum(metrics, "request_total", "inbound", &[&target]).0
}

/// Sends [`START_REQUESTS`] requests to `intercepted` (one per connection)
/// and fails unless the proxy counted exactly that many; returns its count.
fn check_start(admin: SocketAddr, intercepted: SocketAddr) -> anyhow::Result<u64> {
    let before = counted(admin, intercepted)?;
    match connections::open_idle(&Target::direct(intercepted), START_REQUESTS as usize) {
        Ok(held) => drop(held),
        Err(error) => {
            let now = counted(admin, intercepted).unwrap_or(before);
            let verdict = judge_start(intercepted, START_REQUESTS, now.saturating_sub(before))
                .err()
                .map(|problem| format!("; {problem}"))
                .unwrap_or_default();
            return Err(error.context(format!("requests to {intercepted}{verdict}")));
        }
    }
    // A request is counted as its response ends: give the last ones a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut after = counted(admin, intercepted)?;
    while after.saturating_sub(before) < START_REQUESTS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        after = counted(admin, intercepted)?;
    }
    // Anything looping would keep adding.
    std::thread::sleep(Duration::from_millis(200));
    after = counted(admin, intercepted)?;
    judge_start(intercepted, START_REQUESTS, after.saturating_sub(before))?;
    Ok(after)
}

/// Whether `counted` inbound requests for `sent` requests to `intercepted`
/// show the path: exactly as many.
pub fn judge_start(intercepted: SocketAddr, sent: u64, counted: u64) -> anyhow::Result<()> {
    if counted == sent {
        return Ok(());
    }
    if counted == 0 {
        anyhow::bail!(
            "the proxy counted none of the {sent} requests sent to {intercepted}: they did not \
             go through it (REDIRECT missing?)"
        );
    }
    if counted < sent {
        anyhow::bail!(
            "the proxy counted {counted} of the {sent} requests sent to {intercepted}: some \
             did not go through it"
        );
    }
    anyhow::bail!(
        "the proxy counted {counted} inbound requests to {intercepted} for {sent} sent: its own \
         connections to {intercepted} were redirected back to it (a loop: is its UID exempt?)"
    )
}

/// The smoke check of a transparent setup.
#[derive(Clone, Debug)]
pub struct TransparentCheck {
    admin: SocketAddr,
    intercepted: SocketAddr,
    /// The proxy's count after the start check.
    counted_at_start: u64,
}

impl TransparentCheck {
    /// Fails unless the proxy counted at least `requests_ok` more inbound
    /// requests to the intercepted address than at start.
    pub fn verify_counted(&self, requests_ok: u64) -> anyhow::Result<()> {
        let now = counted(self.admin, self.intercepted)?;
        let grown = now.saturating_sub(self.counted_at_start);
        if grown < requests_ok {
            anyhow::bail!(
                "requests to {} did not all go through the proxy: {requests_ok} succeeded, the \
                 proxy counted {grown} inbound requests to that address",
                self.intercepted
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_inbound_requests_to_the_intercepted_address() {
        // weft-proxy's and linkerd2-proxy's label sets (linkerd adds srv_*).
        let metrics = "\
request_total{direction=\"inbound\",authority=\"127.0.0.2:41000\",target_addr=\"127.0.0.2:41000\",target_ip=\"127.0.0.2\",target_port=\"41000\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 20
request_total{direction=\"inbound\",target_addr=\"127.0.0.2:41000\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\",srv_kind=\"default\",srv_name=\"all-unauthenticated\"} 5
request_total{direction=\"inbound\",target_addr=\"127.0.0.3:41000\"} 7
request_total{direction=\"outbound\",target_addr=\"127.0.0.2:41000\"} 100
response_total{direction=\"inbound\",target_addr=\"127.0.0.2:41000\"} 25
";
        let intercepted: SocketAddr = "127.0.0.2:41000".parse().unwrap();
        assert_eq!(inbound_requests(metrics, intercepted), 25);
        assert_eq!(inbound_requests("", intercepted), 0);
    }

    #[test]
    fn the_start_check_wants_exactly_the_requests_sent() {
        let intercepted: SocketAddr = "127.0.0.2:41000".parse().unwrap();
        let table = [
            (20, 20, None),
            (20, 0, Some("did not go through it")),
            (20, 12, Some("12 of the 20")),
            (20, 40, Some("a loop")),
        ];
        for (sent, counted, expected) in table {
            let verdict = judge_start(intercepted, sent, counted);
            match expected {
                None => assert!(verdict.is_ok(), "{sent}/{counted}: {verdict:?}"),
                Some(text) => {
                    let message = verdict.unwrap_err().to_string();
                    assert!(message.contains(text), "{sent}/{counted}: {message}");
                }
            }
        }
    }
}
