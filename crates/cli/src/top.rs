//! `weft top`: the tap stream aggregated by (source, destination, method,
//! path) — count, best / worst / last latency and success rate, most
//! requested first. On a terminal the screen is redrawn every `--interval`;
//! otherwise a table is printed every `--interval` and once at the end
//! (`--duration`, the stream's end or Ctrl-C). `-o json` prints the final
//! aggregation as one JSON array.
//!
//! A request is counted at its `end` event, with the latency of its `rsp`;
//! it succeeded when the status is below 500, the gRPC status (if any) is OK
//! and the stream was not reset.
//!
//! Each request is counted once. Between two tapped proxies a request shows
//! up twice, leaving the source (`proxy=out`) and arriving at the
//! destination (`proxy=in`): the source's events are counted, and an inbound
//! request is dropped when its source workload is tapped too (in the tapped
//! namespace or the tapped workload, or seen sending through its own proxy).
//! Top asks for `--max-rps 1000` unless told otherwise, shared by the tapped
//! proxies: tap's 100 would sample a busy proxy, and top counts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use crate::api::{TapEvent, TapEventKind, TapPeer};
use crate::global_options::GlobalOptions;
use crate::output::{Align, Format, Table, micros_cell, out, out_line, success_cell};
use crate::resource::Kind;
use crate::tap::{TapFilter, TapScope, go_duration, next_line, open};

/// `weft top` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to tap.
    #[command(flatten)]
    pub filter: TapFilter,
    /// How often the table is drawn.
    #[arg(long, value_parser = go_duration, default_value = "1s")]
    pub interval: Duration,
    /// Leave out the Source column.
    #[arg(long)]
    pub hide_sources: bool,
    /// Output format (`json`: the final aggregation as a JSON array).
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// What requests are grouped by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopKey {
    /// The client workload (else its IP).
    pub source: String,
    /// The server workload (else its address).
    pub destination: String,
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
}

/// One group's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopStats {
    /// Requests ended.
    pub count: u64,
    /// Requests that succeeded.
    pub successes: u64,
    /// Lowest latency (µs).
    pub best_us: Option<u64>,
    /// Highest latency (µs).
    pub worst_us: Option<u64>,
    /// The latest request's latency (µs).
    pub last_us: Option<u64>,
}

/// A request seen (`req`), waiting for its `end`.
#[derive(Debug, Clone)]
struct Pending {
    key: TopKey,
    latency_us: Option<u64>,
    status: Option<u16>,
}

/// Folds tap events into [`TopStats`] per [`TopKey`].
#[derive(Debug, Default)]
pub struct Aggregator {
    pending: HashMap<String, Pending>,
    groups: BTreeMap<TopKey, TopStats>,
    scope: Option<TapScope>,
    /// Workloads seen sending through their own (tapped) proxy.
    tapped_sources: HashSet<(String, String)>,
}

/// `--max-rps` when `weft top` is not given one: top counts requests, so
/// the tapped proxies' shares must cover their traffic.
pub const TOP_MAX_RPS: u32 = 1000;

/// At most this many requests wait for their end (older ones are dropped).
const MAX_PENDING: usize = 10_000;

impl Aggregator {
    /// An empty aggregation.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty aggregation of a tap of `scope`: inbound requests from a
    /// workload the tap covers are left to that workload's outbound side.
    pub fn for_scope(scope: TapScope) -> Self {
        Self {
            scope: Some(scope),
            ..Self::default()
        }
    }

    /// Whether the source of a request is a workload whose own proxy is
    /// tapped too (so its outbound events count this request).
    fn source_is_tapped(&self, source: &TapPeer) -> bool {
        let Some(workload) = &source.workload else {
            return false;
        };
        let key = (source.namespace.clone(), workload.clone());
        if self.tapped_sources.contains(&key) {
            return true;
        }
        self.scope.as_ref().is_some_and(|scope| {
            scope.namespace == source.namespace
                && match (scope.kind, &scope.name) {
                    (Kind::Namespace, _) => true,
                    (Kind::Workload, Some(name)) => name == workload,
                    _ => false,
                }
        })
    }

    /// Takes one event into account.
    pub fn record(&mut self, event: &TapEvent) {
        let stream = format!("{}/{}", event.proxy, event.id);
        match event.kind {
            TapEventKind::Request => {
                match (event.proxy.as_str(), &event.src) {
                    (
                        "out",
                        Some(TapPeer {
                            namespace,
                            workload: Some(workload),
                        }),
                    ) => {
                        self.tapped_sources
                            .insert((namespace.clone(), workload.clone()));
                    }
                    ("in", Some(source)) if self.source_is_tapped(source) => return,
                    _ => {}
                }
                if self.pending.len() >= MAX_PENDING {
                    self.pending.clear();
                }
                let key = TopKey {
                    source: peer_name(
                        &event.src,
                        event.source.as_deref().unwrap_or_default(),
                        true,
                    ),
                    destination: peer_name(
                        &event.dst,
                        event.destination.as_deref().unwrap_or_default(),
                        false,
                    ),
                    method: event.method.clone().unwrap_or_default(),
                    path: event.path.clone().unwrap_or_default(),
                };
                self.pending.insert(
                    stream,
                    Pending {
                        key,
                        latency_us: None,
                        status: None,
                    },
                );
            }
            TapEventKind::Response => {
                if let Some(pending) = self.pending.get_mut(&stream) {
                    pending.latency_us = event.latency_us;
                    pending.status = event.status;
                }
            }
            TapEventKind::End => {
                let Some(pending) = self.pending.remove(&stream) else {
                    return;
                };
                let grpc_ok = event.grpc_status.is_none_or(|code| code == 0);
                let succeeded = pending.status.is_some_and(|status| status < 500)
                    && grpc_ok
                    && event.reset_error.is_none();
                let stats = self.groups.entry(pending.key).or_default();
                stats.count += 1;
                stats.successes += u64::from(succeeded);
                if let Some(latency) = pending.latency_us {
                    stats.best_us = Some(stats.best_us.map_or(latency, |best| best.min(latency)));
                    stats.worst_us =
                        Some(stats.worst_us.map_or(latency, |worst| worst.max(latency)));
                    stats.last_us = Some(latency);
                }
            }
        }
    }

    /// The groups, most requested first (ties by key).
    pub fn rows(&self) -> Vec<(TopKey, TopStats)> {
        let mut rows: Vec<(TopKey, TopStats)> = self
            .groups
            .iter()
            .map(|(key, stats)| (key.clone(), *stats))
            .collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

/// A workload's name, else the address (without port for sources).
fn peer_name(peer: &Option<TapPeer>, address: &str, strip_port: bool) -> String {
    if let Some(TapPeer {
        workload: Some(workload),
        ..
    }) = peer
    {
        return workload.clone();
    }
    match address.rsplit_once(':') {
        Some((host, _)) if strip_port => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        _ => address.to_string(),
    }
}

/// The top table.
pub fn render(rows: &[(TopKey, TopStats)], hide_sources: bool) -> String {
    let mut columns = Vec::new();
    if !hide_sources {
        columns.push(("Source", Align::Left));
    }
    columns.extend([
        ("Destination", Align::Left),
        ("Method", Align::Left),
        ("Path", Align::Left),
        ("Count", Align::Right),
        ("Best", Align::Right),
        ("Worst", Align::Right),
        ("Last", Align::Right),
        ("Success Rate", Align::Right),
    ]);
    let mut table = Table::new(&columns);
    let micros = |value: Option<u64>| value.map_or_else(|| "-".into(), micros_cell);
    for (key, stats) in rows {
        let mut cells = Vec::new();
        if !hide_sources {
            cells.push(key.source.clone());
        }
        cells.extend([
            key.destination.clone(),
            key.method.clone(),
            key.path.clone(),
            stats.count.to_string(),
            micros(stats.best_us),
            micros(stats.worst_us),
            micros(stats.last_us),
            success_cell(success_rate(stats)),
        ]);
        table.row(cells);
    }
    table.render()
}

fn success_rate(stats: &TopStats) -> Option<f64> {
    (stats.count > 0).then(|| stats.successes as f64 / stats.count as f64)
}

/// `-o json`: one object per group.
pub fn json_rows(rows: &[(TopKey, TopStats)]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|(key, stats)| {
            json!({
                "source": key.source,
                "destination": key.destination,
                "method": key.method,
                "path": key.path,
                "count": stats.count,
                "best_us": stats.best_us,
                "worst_us": stats.worst_us,
                "last_us": stats.last_us,
                "success": success_rate(stats),
            })
        })
        .collect();
    serde_json::Value::Array(rows)
}

/// Runs `weft top`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let (mut stream, scope) = open(global, &args.filter, TOP_MAX_RPS).await?;
    let deadline = args
        .filter
        .duration
        .map(|duration| tokio::time::Instant::now() + duration);
    let terminal = std::io::stdout().is_terminal() && args.output != Format::Json;
    let mut aggregator = Aggregator::for_scope(scope);
    let mut ticker = tokio::time::interval(args.interval.max(Duration::from_millis(100)));
    ticker.tick().await;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            line = next_line(&mut stream, deadline) => {
                let Some(line) = line? else { break };
                if let Ok(event) = serde_json::from_str::<TapEvent>(&line) {
                    aggregator.record(&event);
                }
            }
            _ = ticker.tick() => {
                if args.output != Format::Json {
                    draw(&aggregator, args.hide_sources, terminal)?;
                }
            }
            _ = &mut interrupted => break,
        }
    }
    if args.output == Format::Json {
        out_line(&serde_json::to_string_pretty(&json_rows(
            &aggregator.rows(),
        ))?)?;
    } else {
        draw(&aggregator, args.hide_sources, terminal)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Redraws the screen (terminal) or prints the table followed by a blank line.
fn draw(aggregator: &Aggregator, hide_sources: bool, terminal: bool) -> std::io::Result<()> {
    let rows = aggregator.rows();
    let table = if rows.is_empty() {
        "(no requests yet)\n".to_string()
    } else {
        render(&rows, hide_sources)
    };
    if terminal {
        out(&format!("\x1b[2J\x1b[H(press Ctrl-C to quit)\n\n{table}"))
    } else {
        out_line(&table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, id: &str, extra: &str) -> TapEvent {
        serde_json::from_str(&format!(
            r#"{{"type": "{kind}", "id": "{id}", "proxy": "in", "source": "127.0.0.1:5000",
            "destination": "127.0.0.1:7000", "tls": "true",
            "src": {{"namespace": "demo", "workload": "traffic"}}, "dst": {{"namespace": "demo", "workload": "web"}}
            {extra}}}"#
        ))
        .unwrap()
    }

    fn request(
        aggregator: &mut Aggregator,
        id: &str,
        path: &str,
        status: u16,
        latency: u64,
        end: &str,
    ) {
        aggregator.record(&event(
            "req",
            id,
            &format!(r#", "method": "GET", "path": "{path}""#),
        ));
        aggregator.record(&event(
            "rsp",
            id,
            &format!(r#", "status": {status}, "latency_us": {latency}"#),
        ));
        aggregator.record(&event("end", id, end));
    }

    #[test]
    fn aggregates_by_path() {
        let mut aggregator = Aggregator::new();
        request(&mut aggregator, "0:1", "/books", 200, 3_000, "");
        request(&mut aggregator, "0:2", "/books", 500, 9_000, "");
        request(&mut aggregator, "0:3", "/books", 200, 1_000, "");
        request(
            &mut aggregator,
            "0:4",
            "/authors",
            200,
            500,
            r#", "grpc_status": 5"#,
        );
        request(
            &mut aggregator,
            "0:5",
            "/authors",
            200,
            700,
            r#", "reset_error": "CANCEL""#,
        );
        request(
            &mut aggregator,
            "0:6",
            "/authors",
            200,
            800,
            r#", "grpc_status": 0"#,
        );
        // An end without its request is ignored.
        aggregator.record(&event("end", "9:9", ""));
        let rows = aggregator.rows();
        assert_eq!(rows.len(), 2);
        let (key, books) = &rows[0];
        assert_eq!(
            (key.source.as_str(), key.destination.as_str()),
            ("traffic", "web")
        );
        assert_eq!(key.path, "/authors");
        assert_eq!(
            rows[1].1,
            TopStats {
                count: 3,
                successes: 2,
                best_us: Some(1_000),
                worst_us: Some(9_000),
                last_us: Some(1_000),
            }
        );
        assert_eq!((books.count, books.successes), (3, 1));
        assert_eq!(
            render(&rows, false),
            "Source    Destination   Method   Path       Count    Best   Worst    Last   Success Rate\n\
             traffic   web           GET      /authors       3   500µs   800µs   800µs         33.33%\n\
             traffic   web           GET      /books         3     1ms     9ms     1ms         66.67%\n"
        );
        assert!(render(&rows, true).starts_with("Destination   Method"));
        let json = json_rows(&rows);
        assert_eq!(json[1]["count"], 3);
        assert_eq!(json[1]["worst_us"], 9_000);
    }

    /// One request between two tapped proxies, as both report it.
    fn both_sides(aggregator: &mut Aggregator, id: &str, source: &str) {
        for proxy in ["out", "in"] {
            let with = |kind: &str, extra: &str| -> TapEvent {
                let mut event = event(kind, id, extra);
                event.proxy = proxy.into();
                event.id = format!("{proxy}-{id}");
                event.src.as_mut().unwrap().workload = Some(source.into());
                event
            };
            aggregator.record(&with("req", r#", "method": "GET", "path": "/""#));
            aggregator.record(&with("rsp", r#", "status": 200, "latency_us": 10"#));
            aggregator.record(&with("end", ""));
        }
    }

    #[test]
    fn a_request_seen_by_both_proxies_counts_once() {
        let scoped = |kind, name: Option<&str>| TapScope {
            kind,
            namespace: "demo".into(),
            name: name.map(str::to_string),
        };
        // (tap scope, requests counted of 3 sent by traffic to web)
        let cases = [
            (None, 3),
            (Some(scoped(Kind::Namespace, None)), 3),
            (Some(scoped(Kind::Workload, Some("traffic"))), 3),
            (Some(scoped(Kind::Service, Some("web"))), 3),
        ];
        for (scope, expected) in cases {
            let mut aggregator = match scope.clone() {
                Some(scope) => Aggregator::for_scope(scope),
                None => Aggregator::new(),
            };
            for id in ["0:1", "0:2", "0:3"] {
                both_sides(&mut aggregator, id, "traffic");
            }
            let counted: u64 = aggregator.rows().iter().map(|(_, stats)| stats.count).sum();
            assert_eq!(counted, expected, "{scope:?}");
        }
        // Tapping web alone: only its inbound side exists, and counts.
        let mut web_only = Aggregator::for_scope(scoped(Kind::Workload, Some("web")));
        for id in ["0:1", "0:2"] {
            let mut request = event("req", id, r#", "method": "GET", "path": "/""#);
            request.proxy = "in".into();
            web_only.record(&request);
            web_only.record(&event("rsp", id, r#", "status": 200, "latency_us": 10"#));
            web_only.record(&event("end", id, ""));
        }
        assert_eq!(web_only.rows()[0].1.count, 2);
        // A namespace tap drops inbound requests from its own workloads even
        // before their outbound side shows up.
        let mut namespace = Aggregator::for_scope(scoped(Kind::Namespace, None));
        namespace.record(&event("req", "0:1", r#", "method": "GET", "path": "/""#));
        namespace.record(&event("rsp", "0:1", r#", "status": 200, "latency_us": 10"#));
        namespace.record(&event("end", "0:1", ""));
        assert!(namespace.rows().is_empty());
    }

    #[test]
    fn unknown_peers_show_addresses() {
        assert_eq!(peer_name(&None, "10.0.0.1:5000", true), "10.0.0.1");
        assert_eq!(peer_name(&None, "[::1]:5000", true), "::1");
        assert_eq!(peer_name(&None, "10.0.0.2:7000", false), "10.0.0.2:7000");
    }
}
