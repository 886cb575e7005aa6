//! `weft tap`: live requests through the tapped proxies, one line per event
//! in Linkerd's format (`req`, `rsp`, `end`), from the NDJSON stream of
//! `GET /api/tap`. Tap needs the API token: `--token-file`, else `up.json`'s
//! token file, else `<state dir>/api-token`, sent as `Authorization: Bearer`.
//!
//! The stream runs until Ctrl-C, `--limit` events or `--duration`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::api::{self, ApiClient, ApiError, Lines, TapEvent, TapEventKind, TapPeer, query};
use crate::global_options::GlobalOptions;
use crate::output::{Format, out_line};
use crate::resource::{Kind, Target, parse_selection, resolve_namespace};

/// What to tap and how much (shared by `weft tap` and `weft top`).
#[derive(Debug, Clone, clap::Args)]
pub struct TapFilter {
    /// `TYPE/NAME` or `TYPE NAME`: workload (wl, deploy), service (svc) or namespace (ns).
    #[arg(required = true, value_name = "RESOURCE")]
    pub resource: Vec<String>,
    /// The resource's namespace (default: the only one it is in).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Only requests to this resource (`svc/web`, `wl/shop/books`).
    #[arg(long)]
    pub to: Option<String>,
    /// The namespace of --to (default: -n, else found).
    #[arg(long)]
    pub to_namespace: Option<String>,
    /// Only requests with this method.
    #[arg(long)]
    pub method: Option<String>,
    /// Only requests to this authority (exact).
    #[arg(long)]
    pub authority: Option<String>,
    /// Only requests whose path starts with this.
    #[arg(long)]
    pub path: Option<String>,
    /// At most this many requests a second, across the tapped proxies
    /// (default: 100 for tap; 1000 for top, which counts every request).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rps: Option<u32>,
    /// Stop after this long (`30s`, `2m`; default: until Ctrl-C).
    #[arg(long, value_parser = go_duration)]
    pub duration: Option<Duration>,
    /// The file holding the API token (default: from `up.json`, else `<state dir>/api-token`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// `weft tap` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to tap.
    #[command(flatten)]
    pub filter: TapFilter,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Output format: lines (`table`), lines with workload labels (`wide`), or one JSON object per event.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Format,
}

/// Parses a Go duration flag (`10s`, `1m30s`).
pub fn go_duration(text: &str) -> Result<Duration, String> {
    weft_core::duration::parse_duration(text).map_err(|error| error.to_string())
}

/// Runs `weft tap`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let (mut stream, _) = open(global, &args.filter, TAP_MAX_RPS).await?;
    let deadline = args
        .filter
        .duration
        .map(|duration| tokio::time::Instant::now() + duration);
    let mut seen = 0u64;
    while args.limit.is_none_or(|limit| seen < limit) {
        let Some(line) = next_line(&mut stream, deadline).await? else {
            break;
        };
        seen += 1;
        if args.output == Format::Json {
            out_line(&line)?;
            continue;
        }
        match serde_json::from_str::<TapEvent>(&line) {
            Ok(event) => out_line(&format_event(&event, args.output == Format::Wide))?,
            Err(error) => {
                eprintln!("weft tap: skipping an event that is not JSON ({error}): {line}")
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The next line of the stream, `None` at its end or at the deadline.
pub async fn next_line(
    stream: &mut Lines,
    deadline: Option<tokio::time::Instant>,
) -> anyhow::Result<Option<String>> {
    match deadline {
        None => Ok(stream.next_line().await?),
        Some(deadline) => match tokio::time::timeout_at(deadline, stream.next_line()).await {
            Ok(line) => Ok(line?),
            Err(_) => Ok(None),
        },
    }
}

/// `--max-rps` when `weft tap` is not given one (Linkerd's default).
pub const TAP_MAX_RPS: u32 = 100;

/// What a tap covers: the resource's kind, namespace and name (none for a
/// namespace). `weft top` reads it to count each request once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapScope {
    /// The resource's kind.
    pub kind: Kind,
    /// Its namespace.
    pub namespace: String,
    /// Its name (`None`: the whole namespace).
    pub name: Option<String>,
}

/// Starts a tap: resolves the resource, reads the token, opens the stream;
/// `default_max_rps` when `--max-rps` is absent.
pub async fn open(
    global: &GlobalOptions,
    filter: &TapFilter,
    default_max_rps: u32,
) -> anyhow::Result<(Lines, TapScope)> {
    let token_path = api::token_path(global, filter.token_file.as_deref());
    let token = api::read_token(&token_path);
    let client = api::client(global).with_token(token.clone());
    let (path, scope) = tap_path(&client, filter, default_max_rps).await?;
    match client.lines(&path).await {
        Ok(lines) => Ok((lines, scope)),
        Err(ApiError::Unauthorized { message }) if token.is_none() => anyhow::bail!(
            "tap is not authorized: {message}; no API token could be read from {} (give it with --token-file)",
            token_path.display()
        ),
        Err(ApiError::Unauthorized { message }) => anyhow::bail!(
            "tap is not authorized: {message}; the token in {} was refused (give the right one with --token-file)",
            token_path.display()
        ),
        Err(error) => Err(error.into()),
    }
}

async fn tap_path(
    client: &ApiClient,
    filter: &TapFilter,
    default_max_rps: u32,
) -> anyhow::Result<(String, TapScope)> {
    let selection = parse_selection(&filter.resource)?;
    let name = match selection.names.as_slice() {
        [] => None,
        [one] => Some(one.as_str()),
        _ => anyhow::bail!("tap takes one resource"),
    };
    if matches!(selection.kind, Kind::Authority | Kind::TrafficSplit) {
        anyhow::bail!("tap takes a workload, a service or a namespace");
    }
    let namespace = match (selection.kind, name) {
        (Kind::Namespace, Some(name)) => name.to_string(),
        (_, Some(name)) => {
            resolve_namespace(client, selection.kind, name, filter.namespace.as_deref()).await?
        }
        (_, None) => filter
            .namespace
            .clone()
            .ok_or_else(|| anyhow::anyhow!("give a resource name or -n NAMESPACE"))?,
    };
    let name = if selection.kind == Kind::Namespace {
        None
    } else {
        name
    };
    let to = match &filter.to {
        Some(text) => {
            let target = Target::parse(text)?;
            let given = filter
                .to_namespace
                .as_deref()
                .or(target.namespace.as_deref())
                .or(filter.namespace.as_deref());
            let resolved = resolve_namespace(client, target.kind, &target.name, given).await?;
            Some(target.api_value(&resolved))
        }
        None => None,
    };
    let max_rps = filter.max_rps.unwrap_or(default_max_rps).to_string();
    let path = format!(
        "/api/tap{}",
        query(&[
            ("kind", Some(selection.kind.api_name())),
            ("namespace", Some(&namespace)),
            ("name", name),
            ("to", to.as_deref()),
            ("method", filter.method.as_deref()),
            ("authority", filter.authority.as_deref()),
            ("path", filter.path.as_deref()),
            ("max_rps", Some(&max_rps)),
        ])
    );
    let scope = TapScope {
        kind: selection.kind,
        namespace,
        name: name.map(str::to_string),
    };
    Ok((path, scope))
}

/// One event as Linkerd's tap prints it; `wide` adds workload labels.
pub fn format_event(event: &TapEvent, wide: bool) -> String {
    let tls = if event.tls.is_empty() {
        "-"
    } else {
        &event.tls
    };
    let mut line = format!(
        "{} id={} proxy={:<3} src={} dst={} tls={}",
        event.kind.as_str(),
        event.id,
        event.proxy,
        event.source.as_deref().unwrap_or_default(),
        event.destination.as_deref().unwrap_or_default(),
        tls
    );
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    match event.kind {
        TapEventKind::Request => {
            line.push_str(&format!(
                " :method={} :authority={} :path={}",
                text(&event.method),
                text(&event.authority),
                text(&event.path)
            ));
        }
        TapEventKind::Response => {
            let status = event.status.map_or_else(|| "-".into(), |s| s.to_string());
            let latency = event.latency_us.unwrap_or(0);
            line.push_str(&format!(" :status={status} latency={latency}µs"));
        }
        TapEventKind::End => {
            if let Some(grpc) = event.grpc_status {
                line.push_str(&format!(" grpc-status={grpc}"));
            }
            if let Some(reset) = &event.reset_error {
                line.push_str(&format!(" reset-error={reset}"));
            }
            line.push_str(&format!(
                " duration={}µs response-length={}B",
                event.duration_us.unwrap_or(0),
                event.response_bytes.unwrap_or(0)
            ));
        }
    }
    if wide {
        for (prefix, peer) in [("src", &event.src), ("dst", &event.dst)] {
            if let Some(TapPeer {
                namespace,
                workload: Some(workload),
            }) = peer
            {
                line.push_str(&format!(" {prefix}_res=wl/{workload}"));
                if !namespace.is_empty() {
                    line.push_str(&format!(" {prefix}_ns={namespace}"));
                }
            }
        }
    }
    if let Some(route) = &event.route {
        line.push_str(&format!(" rt_route={route}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> TapEvent {
        serde_json::from_str(json).unwrap()
    }

    const COMMON: &str = r#""id": "0:1", "source": "10.1.3.76:57152", "destination": "10.1.3.74:7000", "tls": "true",
        "src": {"namespace": "booksapp", "workload": "traffic"}, "dst": {"namespace": "booksapp", "workload": "webapp"}"#;

    #[test]
    fn lines_like_linkerds() {
        let request = event(&format!(
            r#"{{"type": "req", "proxy": "in", {COMMON}, "method": "POST", "scheme": "http",
            "authority": "webapp.default:7000", "path": "/books/2878/edit", "route": "POST /books/{{id}}/edit"}}"#
        ));
        assert_eq!(
            format_event(&request, false),
            "req id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true :method=POST \
             :authority=webapp.default:7000 :path=/books/2878/edit rt_route=POST /books/{id}/edit"
        );
        assert_eq!(
            format_event(&request, true),
            "req id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true :method=POST \
             :authority=webapp.default:7000 :path=/books/2878/edit src_res=wl/traffic src_ns=booksapp \
             dst_res=wl/webapp dst_ns=booksapp rt_route=POST /books/{id}/edit"
        );
        let response = event(&format!(
            r#"{{"type": "rsp", "proxy": "out", {COMMON}, "status": 200, "latency_us": 1234}}"#
        ));
        assert_eq!(
            format_event(&response, false),
            "rsp id=0:1 proxy=out src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true :status=200 latency=1234µs"
        );
        let end = event(&format!(
            r#"{{"type": "end", "proxy": "in", {COMMON}, "duration_us": 456, "response_bytes": 1200}}"#
        ));
        assert_eq!(
            format_event(&end, false),
            "end id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true duration=456µs response-length=1200B"
        );
        let grpc = event(&format!(
            r#"{{"type": "end", "proxy": "in", {COMMON}, "duration_us": 5, "response_bytes": 0, "grpc_status": 5}}"#
        ));
        assert!(
            format_event(&grpc, false).ends_with("grpc-status=5 duration=5µs response-length=0B")
        );
        let reset = event(&format!(
            r#"{{"type": "end", "proxy": "in", {COMMON}, "duration_us": 5, "response_bytes": 0, "reset_error": "CANCEL"}}"#
        ));
        assert!(
            format_event(&reset, false)
                .ends_with("reset-error=CANCEL duration=5µs response-length=0B")
        );
    }

    /// A request the destination's proxy refused (authorization policy):
    /// HTTP 403 (the proxy's `l5d-proxy-error` header is not in tap events,
    /// as in Linkerd), gRPC PERMISSION_DENIED in the end event.
    #[test]
    fn denied_requests_read_as_such() {
        let forbidden = event(&format!(
            r#"{{"type": "rsp", "proxy": "in", {COMMON}, "status": 403, "latency_us": 310}}"#
        ));
        assert_eq!(
            format_event(&forbidden, false),
            "rsp id=0:1 proxy=in  src=10.1.3.76:57152 dst=10.1.3.74:7000 tls=true :status=403 latency=310µs"
        );
        let permission_denied = event(&format!(
            r#"{{"type": "end", "proxy": "in", {COMMON}, "duration_us": 12, "response_bytes": 0, "grpc_status": 7}}"#
        ));
        assert!(
            format_event(&permission_denied, false)
                .ends_with("grpc-status=7 duration=12µs response-length=0B")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(go_duration("soon").is_err());
    }
}
