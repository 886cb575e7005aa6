//! Opaque TCP: a real redis-server behind inbound forwarding, its port in
//! `WEFT_PROXY_OPAQUE_PORTS`, driven by redis-cli.

use weft_e2e::{RedisServer, redis_cli};
use weft_test_support::ProxyProcess;

use crate::assert_metric_reaches;

#[test]
fn redis_ping_set_get_inbound_opaque() {
    let redis = RedisServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(redis.addr())
        .env("WEFT_PROXY_OPAQUE_PORTS", redis.addr().port().to_string())
        .spawn();

    const SESSIONS: usize = 3;
    const ROUNDS: usize = 50;
    for session in 0..SESSIONS {
        let mut commands = String::new();
        let mut expected = Vec::new();
        for round in 0..ROUNDS {
            commands.push_str(&format!("PING\nSET key:{session}:{round} value-{session}-{round}\nGET key:{session}:{round}\n"));
            expected.extend([
                "PONG".to_string(),
                "OK".to_string(),
                format!("value-{session}-{round}"),
            ]);
        }
        let output = redis_cli(proxy.inbound_addr(), &commands);
        let replies: Vec<String> = output.lines().map(str::to_string).collect();
        assert_eq!(
            replies, expected,
            "redis-cli session {session} through the proxy"
        );
    }

    let inbound = [("direction", "inbound")];
    assert_metric_reaches(
        &proxy,
        "tcp_detect_total",
        &[("direction", "inbound"), ("result", "opaque_port")],
        SESSIONS as f64,
    );
    assert_metric_reaches(
        &proxy,
        "tcp_open_total",
        &[("direction", "inbound"), ("peer", "src")],
        SESSIONS as f64,
    );
    // Request bytes: each session sends at least its commands; replies at least "+PONG\r\n" per round.
    let min_reply_bytes = (SESSIONS * ROUNDS * "+PONG\r\n".len()) as f64;
    assert_metric_reaches(&proxy, "tcp_read_bytes_total", &inbound, min_reply_bytes);
    assert_metric_reaches(&proxy, "tcp_write_bytes_total", &inbound, min_reply_bytes);
    assert_metric_reaches(
        &proxy,
        "tcp_read_bytes_total",
        &[
            ("direction", "inbound"),
            ("peer", "dst"),
            ("target_addr", &redis.addr().to_string()),
        ],
        min_reply_bytes,
    );
}
