//! gRPC unary load, the one generator no tool provides: a tonic client on
//! one HTTP/2 connection, closed loop (N callers back to back) or open loop
//! (a constant-rate schedule feeding N callers, latency measured from the
//! moment the schedule released the call, as `oha --latency-correction`
//! does), recorded in an HDR histogram.
//!
//! It runs as its own `weft-bench grpc-load` process, pinned like `oha`,
//! and prints one [`LoadResult`] as JSON.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use http::uri::PathAndQuery;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstCodec;

use crate::load::{Latency, LoadPoint, LoadResult};
use crate::proto::{EchoReply, EchoRequest, UNARY_PATH};

/// Payload of every request (the gRPC analogue of the tiny HTTP body).
const PAYLOAD: &[u8] = b"ping";

/// One gRPC load run, as passed to the `grpc-load` subcommand in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrpcRun {
    /// The server the calls name in `:authority` (`ip:port`, or `name:port`
    /// behind a proxy).
    pub authority: String,
    /// Connect here instead of `authority` (an explicit HTTP/2 proxy).
    pub via_proxy: Option<SocketAddr>,
    /// Closed or open loop.
    pub point: LoadPoint,
    /// Callers in flight for an open-loop run.
    pub open_loop_slots: u32,
    /// Run length in milliseconds.
    pub duration_ms: u64,
}

/// Latency and error tally of one caller.
struct Tally {
    histogram: Histogram<u64>,
    ok: u64,
    errors: u64,
    error_sample: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            histogram: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            ok: 0,
            errors: 0,
            error_sample: None,
        }
    }

    fn record(&mut self, outcome: Result<(), tonic::Status>, elapsed: Duration) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                self.histogram.saturating_record(nanos.max(1));
            }
            Err(status) => {
                self.errors += 1;
                if self.error_sample.is_none() {
                    self.error_sample = Some(format!("{}: {}", status.code(), status.message()));
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.histogram.add(&other.histogram).expect("same bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        self.error_sample = self.error_sample.take().or(other.error_sample);
    }
}

/// Performs `run` and returns what it measured.
pub async fn run(run: &GrpcRun) -> anyhow::Result<LoadResult> {
    let channel = connect(run).await?;
    let duration = Duration::from_millis(run.duration_ms);
    let start = Instant::now();
    let deadline = start + duration;
    let tally = match run.point {
        LoadPoint::Closed { concurrency } => closed_loop(&channel, concurrency, deadline).await,
        LoadPoint::Open { rate } => {
            open_loop(&channel, rate, run.open_loop_slots, start, deadline).await
        }
    };
    let seconds = start.elapsed().as_secs_f64().min(duration.as_secs_f64());
    let ms = |q: f64| tally.histogram.value_at_quantile(q) as f64 / 1e6;
    Ok(LoadResult {
        ok: tally.ok,
        errors: tally.errors,
        seconds,
        latency: Latency {
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
        },
        error_sample: tally.error_sample,
    })
}

async fn connect(run: &GrpcRun) -> anyhow::Result<Channel> {
    let origin: http::Uri = format!("http://{}", run.authority).parse()?;
    let connect_to = run
        .via_proxy
        .map_or_else(|| run.authority.clone(), |proxy| proxy.to_string());
    let endpoint = Endpoint::from_shared(format!("http://{connect_to}"))?
        .origin(origin)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(2));
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting gRPC client to {connect_to}"))
}

async fn call(channel: &Channel) -> Result<(), tonic::Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let request = tonic::Request::new(EchoRequest {
        payload: PAYLOAD.to_vec(),
    });
    let codec: ProstCodec<EchoRequest, EchoReply> = ProstCodec::default();
    let path = PathAndQuery::from_static(UNARY_PATH);
    client.unary(request, path, codec).await.map(drop)
}

async fn closed_loop(channel: &Channel, concurrency: u32, deadline: Instant) -> Tally {
    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let outcome = call(&channel).await;
                    tally.record(outcome, sent.elapsed());
                }
                tally
            })
        })
        .collect();
    gather(callers).await
}

async fn open_loop(
    channel: &Channel,
    rate: u32,
    slots: u32,
    start: Instant,
    deadline: Instant,
) -> Tally {
    let (schedule_tx, schedule_rx) = mpsc::unbounded_channel::<Instant>();
    // The schedule: release call i at start + i/rate, stamped with the time
    // it was actually released (what oha's --latency-correction does).
    tokio::spawn(async move {
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        for i in 0u32.. {
            tokio::time::sleep_until((start + period * i).into()).await;
            let now = Instant::now();
            if now > deadline || schedule_tx.send(now).is_err() {
                break;
            }
        }
    });
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(schedule_rx));
    let callers: Vec<_> = (0..slots.max(1))
        .map(|_| {
            let channel = channel.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new();
                loop {
                    let released = queue.lock().await.recv().await;
                    let Some(released) = released else { break };
                    if Instant::now() > deadline {
                        break;
                    }
                    let outcome = call(&channel).await;
                    tally.record(outcome, released.elapsed());
                }
                tally
            })
        })
        .collect();
    gather(callers).await
}

async fn gather(callers: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut total = Tally::new();
    for caller in callers {
        if let Ok(tally) = caller.await {
            total.merge(tally);
        }
    }
    total
}
