//! What a new mutual-TLS connection costs the proxy that accepts it: the
//! `weft-bench tls-handshakes` helper (on the client CPU) opens `count`
//! connections one after another to proxy B's inbound port, each a full
//! TLS 1.3 handshake (no resumption, SNI = B's identity, verified against
//! the trust anchor), then `close_notify` and wait for B to close; the
//! harness reads B's CPU ticks around it. The same with plain TCP
//! (connect, close) gives the baseline to subtract.
//!
//! The helper presents no client certificate (B accepts unauthenticated
//! clients), so B's figure leaves out verifying the client's chain and
//! signature that proxy A's certificate adds; the helper's own CPU per
//! handshake (rustls with ring, as in weft-proxy) approximates what the
//! client side (proxy A) spends, less signing with its key.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};

use crate::process::Placement;
use crate::procfs;
use crate::stats::median;

/// One series of connections.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HandshakeRun {
    /// Proxy B's inbound listener.
    pub addr: SocketAddr,
    /// SNI and expected identity; `None`: plain TCP connect and close.
    pub server_name: Option<String>,
    /// Trust anchor PEM file.
    pub trust_anchors: Option<PathBuf>,
    /// Connections to make.
    pub count: u32,
}

/// What the helper measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HandshakeSeries {
    /// Connections that completed.
    pub ok: u32,
    /// Connections that failed.
    pub errors: u32,
    /// The first error.
    pub error_sample: Option<String>,
    /// Median wall time of one connection (connect, handshake, close), µs.
    pub p50_us: f64,
    /// 99th percentile of the same, µs.
    pub p99_us: f64,
    /// The helper's own CPU per connection, µs (utime + stime).
    pub client_cpu_us: f64,
}

/// Runs the series (in the helper process).
pub fn run(spec: &HandshakeRun) -> anyhow::Result<HandshakeSeries> {
    let config = match (&spec.server_name, &spec.trust_anchors) {
        (Some(name), Some(anchors)) => Some((
            client_config(anchors)?,
            ServerName::try_from(name.clone()).context("server name")?,
        )),
        (None, _) => None,
        (Some(_), None) => bail!("a TLS series needs the trust anchors"),
    };
    let cpu_before = own_cpu_ticks();
    let mut times = Vec::with_capacity(spec.count as usize);
    let mut series = HandshakeSeries::default();
    for _ in 0..spec.count {
        let started = Instant::now();
        let outcome = match &config {
            Some((config, name)) => tls_connection(spec.addr, config, name),
            None => plain_connection(spec.addr),
        };
        match outcome {
            Ok(()) => {
                series.ok += 1;
                times.push(started.elapsed().as_secs_f64() * 1e6);
            }
            Err(error) => {
                series.errors += 1;
                series.error_sample.get_or_insert(format!("{error:#}"));
            }
        }
    }
    let ticks = own_cpu_ticks().saturating_sub(cpu_before);
    series.p50_us = median(&mut times);
    series.p99_us = times
        .get((times.len() * 99 / 100).min(times.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN);
    series.client_cpu_us = per_connection_us(ticks, u64::from(series.ok)).unwrap_or(f64::NAN);
    Ok(series)
}

fn own_cpu_ticks() -> u64 {
    procfs::cpu_ticks(std::process::id()).unwrap_or(0)
}

/// µs of CPU per connection from clock ticks.
pub fn per_connection_us(ticks: u64, connections: u64) -> Option<f64> {
    (connections > 0)
        .then(|| ticks as f64 * 1e6 / procfs::TICKS_PER_SECOND as f64 / connections as f64)
}

fn client_config(anchors: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(anchors).with_context(|| format!("reading {}", anchors.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.context("trust anchor PEM")?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection a full handshake.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}

/// Handshake, `close_notify`, then read until B closes (so B has done all
/// its work for this connection before the next one starts).
fn tls_connection(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    name: &ServerName<'static>,
) -> anyhow::Result<()> {
    let mut socket = connect(addr)?;
    let mut tls = rustls::ClientConnection::new(config.clone(), name.clone())?;
    while tls.is_handshaking() {
        tls.complete_io(&mut socket).context("handshake")?;
    }
    tls.send_close_notify();
    while tls.wants_write() {
        tls.write_tls(&mut socket)?;
    }
    socket.flush()?;
    socket.shutdown(Shutdown::Write)?;
    drain(&mut socket);
    Ok(())
}

fn plain_connection(addr: SocketAddr) -> anyhow::Result<()> {
    let mut socket = connect(addr)?;
    socket.shutdown(Shutdown::Write)?;
    drain(&mut socket);
    Ok(())
}

fn drain(socket: &mut TcpStream) {
    let mut buffer = [0u8; 4096];
    while matches!(socket.read(&mut buffer), Ok(n) if n > 0) {}
}

/// The handshake measurement against proxy B: plain TCP first, then TLS,
/// each with B's CPU read around it.
#[derive(Clone, Debug, Serialize)]
pub struct HandshakeCost {
    /// Connections per series.
    pub count: u32,
    /// Plain TCP connect + close: what the helper saw.
    pub plain: HandshakeSeries,
    /// Proxy B's CPU per plain connection, µs.
    pub plain_server_cpu_us: Option<f64>,
    /// TLS 1.3 connections: what the helper saw.
    pub tls: HandshakeSeries,
    /// Proxy B's CPU per TLS connection, µs.
    pub tls_server_cpu_us: Option<f64>,
}

impl HandshakeCost {
    /// Proxy B's CPU for the handshake alone (TLS − plain), µs.
    pub fn server_handshake_us(&self) -> Option<f64> {
        Some(self.tls_server_cpu_us? - self.plain_server_cpu_us?)
    }
}

/// Runs both series through the helper process (placed like the load
/// generators) and reads B's (`server_pid`) CPU around each.
pub fn measure(
    me: &Path,
    placement: &Placement,
    server_pid: u32,
    run: &HandshakeRun,
) -> anyhow::Result<HandshakeCost> {
    let series = |spec: &HandshakeRun| -> anyhow::Result<(HandshakeSeries, Option<f64>)> {
        let before = procfs::tree_cpu_ticks(&procfs::process_tree(server_pid));
        let output = placement
            .command(me)
            .args(["tls-handshakes", "--spec", &serde_json::to_string(spec)?])
            .output()
            .context("running tls-handshakes")?;
        let after = procfs::tree_cpu_ticks(&procfs::process_tree(server_pid));
        if !output.status.success() {
            bail!(
                "tls-handshakes failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let result: HandshakeSeries =
            serde_json::from_slice(&output.stdout).context("parsing tls-handshakes output")?;
        let server = per_connection_us(after.saturating_sub(before), u64::from(result.ok));
        Ok((result, server))
    };
    let plain_spec = HandshakeRun {
        server_name: None,
        ..run.clone()
    };
    let (plain, plain_server_cpu_us) = series(&plain_spec)?;
    let (tls, tls_server_cpu_us) = series(run)?;
    if tls.ok == 0 {
        bail!(
            "no TLS handshake with proxy B succeeded: {}",
            tls.error_sample.unwrap_or_default()
        );
    }
    Ok(HandshakeCost {
        count: run.count,
        plain,
        plain_server_cpu_us,
        tls,
        tls_server_cpu_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_connection_from_ticks() {
        // 50 ticks = 0.5 s over 1,000 connections.
        assert_eq!(per_connection_us(50, 1_000), Some(500.0));
        assert_eq!(per_connection_us(50, 0), None);
    }

    #[test]
    fn server_handshake_cost_is_tls_minus_plain() {
        let cost = HandshakeCost {
            count: 10,
            plain: HandshakeSeries::default(),
            plain_server_cpu_us: Some(20.0),
            tls: HandshakeSeries::default(),
            tls_server_cpu_us: Some(320.0),
        };
        assert_eq!(cost.server_handshake_us(), Some(300.0));
    }
}
