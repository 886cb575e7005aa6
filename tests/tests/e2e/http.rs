//! curl through both listeners, HTTP/1.1 and HTTP/2 prior knowledge: the
//! app sees the Host / `:authority` unchanged and no hop-by-hop headers.

use weft_e2e::InProcessProxy;
use weft_e2e::curl;
use weft_test_support::{HeadersEcho, HttpTestServer, RunningProxy};

use crate::{proxy_arg, url};

/// Request headers that a proxy must not forward (plus one that it must).
const HOP_BY_HOP_ARGS: [&str; 12] = [
    "-H",
    "Connection: keep-alive, X-Hop-Secret",
    "-H",
    "X-Hop-Secret: must-not-reach-the-app",
    "-H",
    "Keep-Alive: timeout=5, max=100",
    "-H",
    "Proxy-Connection: keep-alive",
    "-H",
    "TE: gzip",
    "-H",
    "X-End-To-End: kept",
];

fn assert_hop_by_hop_stripped(echo: &HeadersEcho) {
    for name in ["x-hop-secret", "keep-alive", "proxy-connection", "te"] {
        assert_eq!(
            echo.header(name),
            None,
            "hop-by-hop header `{name}` reached the app: {echo:#?}"
        );
    }
    for value in echo.header_values("connection") {
        assert!(
            !value.to_ascii_lowercase().contains("x-hop-secret"),
            "the client's Connection header reached the app: {echo:#?}"
        );
    }
    assert_eq!(
        echo.header("x-end-to-end"),
        Some("kept"),
        "end-to-end header lost: {echo:#?}"
    );
}

fn headers_echo(out: &weft_e2e::CurlOutput) -> HeadersEcho {
    assert_eq!(
        (out.exit_code, out.http_code),
        (0, 200),
        "curl failed: {}",
        out.stderr
    );
    HeadersEcho::from_json(&out.body_text()).expect("JSON from /headers")
}

#[test]
fn http1_explicit_proxy_keeps_host_and_strips_hop_by_hop() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder().start();
    let proxy_url = proxy_arg(&proxy);
    let target = url(app.addr(), "/headers");
    let mut args = vec!["-x", proxy_url.as_str(), target.as_str()];
    args.extend(HOP_BY_HOP_ARGS);
    let echo = headers_echo(&curl(&args));
    assert_eq!(echo.version, "HTTP/1.1");
    assert_eq!(
        echo.host(),
        Some(app.addr().to_string().as_str()),
        "{echo:#?}"
    );
    assert_eq!(echo.method, "GET");
    assert_hop_by_hop_stripped(&echo);

    let out = curl(&["-x", &proxy_arg(&proxy), &url(app.addr(), "/")]);
    assert_eq!((out.exit_code, out.http_code), (0, 200), "{}", out.stderr);
    assert_eq!(out.body_text(), "hello from weft test server\n");
}

#[test]
fn http2_prior_knowledge_through_connect_tunnel() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder().start();
    let proxy_url = proxy_arg(&proxy);
    let target = url(app.addr(), "/headers");
    let echo = headers_echo(&curl(&[
        "-x",
        &proxy_url,
        "--proxytunnel",
        "--http2-prior-knowledge",
        &target,
        "-H",
        "X-End-To-End: kept",
    ]));
    assert_eq!(echo.version, "HTTP/2.0", "{echo:#?}");
    assert_eq!(
        echo.authority.as_deref(),
        Some(app.addr().to_string().as_str()),
        "{echo:#?}"
    );
    assert_eq!(echo.header("x-end-to-end"), Some("kept"));

    let out = curl(&[
        "-x",
        &proxy_url,
        "--proxytunnel",
        "--http2-prior-knowledge",
        "--data-binary",
        "echo through the tunnel",
        &url(app.addr(), "/echo"),
    ]);
    assert_eq!((out.exit_code, out.http_code), (0, 200), "{}", out.stderr);
    assert_eq!(out.body_text(), "echo through the tunnel");
}

#[test]
fn http1_inbound_forwarding_keeps_host_and_strips_hop_by_hop() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(app.addr())
        .start();
    let target = url(proxy.inbound_addr(), "/headers");
    let mut args = vec![target.as_str()];
    args.extend(HOP_BY_HOP_ARGS);
    let echo = headers_echo(&curl(&args));
    assert_eq!(echo.version, "HTTP/1.1");
    assert_eq!(
        echo.host(),
        Some(proxy.inbound_addr().to_string().as_str()),
        "{echo:#?}"
    );
    assert_hop_by_hop_stripped(&echo);

    let out = curl(&[
        "--data-binary",
        "echo me",
        &url(proxy.inbound_addr(), "/echo"),
    ]);
    assert_eq!((out.exit_code, out.http_code), (0, 200), "{}", out.stderr);
    assert_eq!(out.body_text(), "echo me");
}

#[test]
fn http2_prior_knowledge_inbound_forwarding_keeps_authority() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(app.addr())
        .start();
    let echo = headers_echo(&curl(&[
        "--http2-prior-knowledge",
        &url(proxy.inbound_addr(), "/headers"),
        "-H",
        "X-End-To-End: kept",
    ]));
    assert_eq!(echo.version, "HTTP/2.0", "{echo:#?}");
    assert_eq!(
        echo.host(),
        Some(proxy.inbound_addr().to_string().as_str()),
        "{echo:#?}"
    );
    assert_eq!(echo.header("x-end-to-end"), Some("kept"));

    let out = curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        "h2 echo",
        &url(proxy.inbound_addr(), "/echo"),
    ]);
    assert_eq!((out.exit_code, out.http_code), (0, 200), "{}", out.stderr);
    assert_eq!(out.body_text(), "h2 echo");
}

/// `te: trailers` is the one TE value that must survive an HTTP/2 hop (gRPC needs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_inbound_keeps_te_trailers() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(app.addr())
        .start();
    let request = http::Request::builder()
        .version(http::Version::HTTP_2)
        .uri(format!("http://{}/headers", proxy.inbound_addr()))
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = weft_e2e::within(
        "h2 request",
        std::time::Duration::from_secs(30),
        weft_test_support::http_client::send(proxy.inbound_addr(), request),
    )
    .await
    .expect("h2 request through the inbound listener");
    assert_eq!(response.status, 200);
    let echo = HeadersEcho::from_json(&String::from_utf8_lossy(&response.body)).expect("JSON");
    assert_eq!(echo.version, "HTTP/2.0", "{echo:#?}");
    assert_eq!(
        echo.header("te"),
        Some("trailers"),
        "te: trailers was dropped: {echo:#?}"
    );
}

/// `Expect: 100-continue`: the client hears `100 Continue` through the proxy
/// before it sends the body, and the whole body reaches the app.
#[test]
fn expect_100_continue_through_both_listeners() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(app.addr())
        .start();
    let body = "x".repeat(64 * 1024);
    let outbound_upload = url(app.addr(), "/upload");
    let inbound_upload = url(proxy.inbound_addr(), "/upload");
    let outbound_proxy = proxy_arg(&proxy);
    let paths: [Vec<&str>; 2] = [
        vec!["-x", &outbound_proxy, &outbound_upload],
        vec![&inbound_upload],
    ];
    for path in paths {
        let mut command = std::process::Command::new(weft_e2e::require_tool("curl"));
        command
            .args(["-sS", "-v", "--max-time", "60", "--expect100-timeout", "30"])
            .args(["-H", "Expect: 100-continue", "--data-binary", &body])
            .args(&path);
        let output = command.output().expect("run curl");
        let verbose = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "curl {path:?} failed: {verbose}");
        assert!(
            verbose.contains("< HTTP/1.1 100 Continue"),
            "no 100 Continue through {path:?}: {verbose}"
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            body.len().to_string(),
            "the app received a different body through {path:?}"
        );
    }
}
