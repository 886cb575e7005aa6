//! The table of every `WEFT_PROXY_*` variable: name, default and meaning.
//! One table drives parsing defaults, `weft-proxy --help` and `/config`.

/// Ports that are opaque by default: protocols where the server speaks first
/// (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached), so
/// waiting for the client's first bytes would stall the connection.
pub const DEFAULT_OPAQUE_PORTS: &str = "25,587,3306,4444,5432,6379,9300,11211";

/// The controller's identity: the service account `weft-controller` in the
/// control namespace `weft`, trust domain `cluster.local`.
pub const DEFAULT_CONTROLLER_NAME: &str =
    "weft-controller.weft.serviceaccount.identity.weft.cluster.local";

/// One documented variable: its name, its default and what it means.
pub struct Variable {
    /// The environment variable's name.
    pub name: &'static str,
    /// The value used when the variable is unset, as it would be written.
    pub default: &'static str,
    /// What the variable controls.
    pub meaning: &'static str,
}

/// Every variable the proxy reads, in the order `--help` shows them.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "WEFT_PROXY_INBOUND_LISTEN_ADDR",
        default: "0.0.0.0:4143",
        meaning: "where peers' connections arrive (the iptables REDIRECT target in transparent mode)",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
        default: "127.0.0.1:4140",
        meaning: "where the app's outbound connections arrive: redirected by iptables, or explicit HTTP proxy requests and CONNECT; up to two addresses, comma-separated (e.g. 127.0.0.1:4140,[::1]:4140 for IPv4 and IPv6)",
    },
    Variable {
        name: "WEFT_PROXY_ADMIN_LISTEN_ADDR",
        default: "127.0.0.1:4191",
        meaning: "admin server: /metrics /ready /live /config POST /shutdown",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_FORWARD_ADDR",
        default: "",
        meaning: "explicit inbound mode: send every inbound connection to this address (the app); unset = transparent, use the original destination",
    },
    Variable {
        name: "WEFT_PROXY_OPAQUE_PORTS",
        default: DEFAULT_OPAQUE_PORTS,
        meaning: "target ports forwarded as opaque TCP without protocol detection (list of ports and LOW-HIGH ranges)",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_PORTS",
        default: "",
        meaning: "the workload's app ports (list of ports and LOW-HIGH ranges): the only ports a peer's transport header may name. Unset: the port of WEFT_PROXY_INBOUND_FORWARD_ADDR in explicit mode; in transparent mode any port but the proxy's own, 4140,4143,4190,4191,8084,8086,8090,9990,9995-9997 and WEFT_PROXY_INBOUND_DENY_PORTS. Transport headers also need a verified client certificate",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_DENY_PORTS",
        default: "",
        meaning: "transparent mode without WEFT_PROXY_INBOUND_PORTS: more ports a peer's transport header may not name (e.g. 8080 when the controller's identity service runs beside the proxy)",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_DETECT_TIMEOUT_ACTION",
        default: "",
        meaning: "an inbound connection with no protocol detected within WEFT_PROXY_DETECT_TIMEOUT: forward (relayed as opaque TCP) or close. Unset: close with identity (a plaintext client could otherwise pass l5d-* headers to the app unchecked), forward without. Declare server-speaks-first ports in WEFT_PROXY_OPAQUE_PORTS",
    },
    Variable {
        name: "WEFT_PROXY_DETECT_TIMEOUT",
        default: "10s",
        meaning: "how long to wait for a client's first bytes before forwarding the connection as opaque TCP",
    },
    Variable {
        name: "WEFT_PROXY_SERVER_FIRST_DELAY",
        default: "200ms",
        meaning: "while waiting for a client's first bytes on a port not in WEFT_PROXY_OPAQUE_PORTS: after this long with none, connect to the target (when it is known without them, and inbound only for a client the port's policy admits) so that a server that speaks first (a MySQL-like banner) is relayed as opaque TCP at once; the connection is closed if the client speaks first. Off or 0 = wait for the client (up to WEFT_PROXY_DETECT_TIMEOUT)",
    },
    Variable {
        name: "WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT",
        default: "10s",
        meaning: "HTTP/1: how long a request head may take from its first byte to its end (slow clients are closed); HTTP/2: how long the client's preface and first SETTINGS may take",
    },
    Variable {
        name: "WEFT_PROXY_HTTP_IDLE_TIMEOUT",
        default: "2m",
        meaning: "HTTP/1 keep-alive and HTTP/2 connections with no request open for this long are closed (HTTP/2 with GOAWAY); longer than common client pool idle timeouts, so clients usually close first",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_MAX_CONNECTIONS",
        default: "10000",
        meaning: "accepted inbound connections open at once; more are closed at once and counted in tcp_connections_refused_total{direction=\"inbound\",reason=\"limit\"} (lowered at start-up to fit the open-file limit)",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_MAX_CONNECTIONS",
        default: "10000",
        meaning: "accepted outbound connections open at once (all outbound listeners together); more are closed at once and counted (lowered at start-up to fit the open-file limit)",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_CONNECT_TIMEOUT",
        default: "300ms",
        meaning: "connect timeout to the local app",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_CONNECT_TIMEOUT",
        default: "1s",
        meaning: "connect timeout to remote targets",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_SVC_ADDR",
        default: "",
        meaning: "the controller's Destination service (host:port); unset = no discovery: every target is forwarded to its original destination",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_SVC_NAME",
        default: DEFAULT_CONTROLLER_NAME,
        meaning: "the identity the Destination service's TLS certificate must carry (used only with identity, when the connection is TLS)",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_CONTEXT",
        default: "",
        meaning: "context token sent with every discovery lookup, e.g. {\"ns\":\"shop\",\"pod\":\"web-1\"}",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES",
        default: "svc.cluster.local.",
        meaning: "names looked up in discovery (comma-separated suffixes; \".\" = every name)",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
        default: "",
        meaning: "IP networks whose addresses are looked up in discovery (comma-separated CIDRs, e.g. 10.0.0.0/8,fd00::/8); empty = none",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_INITIAL_TIMEOUT",
        default: "500ms",
        meaning: "how long a new target waits for its first discovery answer before being forwarded to its original destination",
    },
    Variable {
        name: "WEFT_PROXY_POLICY_WORKLOAD",
        default: "",
        meaning: "the workload whose policy the proxy asks for, {\"ns\":\"<namespace>\",\"pod\":\"<name>\"}; unset = no policy API: every inbound port gets WEFT_PROXY_INBOUND_DEFAULT_POLICY and outbound routes come from ServiceProfiles only",
    },
    Variable {
        name: "WEFT_PROXY_POLICY_SVC_ADDR",
        default: "",
        meaning: "the controller's policy service (host:port); empty = the Destination service's address (weft-controller serves both on one port)",
    },
    Variable {
        name: "WEFT_PROXY_POLICY_SVC_NAME",
        default: "",
        meaning: "the identity the policy service's TLS certificate must carry; empty = WEFT_PROXY_DESTINATION_SVC_NAME",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_DEFAULT_POLICY",
        default: "all-unauthenticated",
        meaning: "who may reach an inbound port the controller has no policy for (and every port before its first answer): all-unauthenticated, all-authenticated, cluster-unauthenticated, cluster-authenticated, deny or audit",
    },
    Variable {
        name: "WEFT_PROXY_POLICY_CLUSTER_NETWORKS",
        default: "",
        meaning: "the cluster's networks for the cluster-* default policies (comma-separated CIDRs); empty = none, so cluster-* admit no one",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_SVC_ADDR",
        default: "",
        meaning: "the controller's identity service (host:port); unset = no identity. When set, the proxy is ready only once it holds a certificate",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_TOKEN_FILE",
        default: "",
        meaning: "file with the token proving the workload's identity (read at every renewal); required with the identity service",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_LOCAL_NAME",
        default: "",
        meaning: "the identity to request, e.g. web.shop.serviceaccount.identity.weft.cluster.local; required with the identity service",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
        default: "",
        meaning: "PEM certificates of the mesh's trust anchors; required with the identity service",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_SVC_NAME",
        default: DEFAULT_CONTROLLER_NAME,
        meaning: "the identity the identity service's TLS certificate must carry (used only when the connection is TLS)",
    },
    Variable {
        name: "WEFT_PROXY_CONTROL_PLANE_TLS",
        default: "auto",
        meaning: "TLS to the controller (with identity): auto = TLS unless the address is a loopback IP or localhost; always; never. Identity: the controller verified, no client certificate; Destination: mutual TLS with the proxy's certificate",
    },
    Variable {
        name: "WEFT_PROXY_TAP_LISTEN_ADDR",
        default: "127.0.0.1:4190",
        meaning: "tap server (gRPC io.linkerd.proxy.tap.Tap/Observe: live request events): plaintext clients on loopback, or TLS clients whose certificate names WEFT_PROXY_TAP_SVC_NAME; off or empty = no tap. At the default, a taken port (several proxies on one host) disables tap with a warning; a set address that cannot be bound fails start-up",
    },
    Variable {
        name: "WEFT_PROXY_TAP_SVC_NAME",
        default: DEFAULT_CONTROLLER_NAME,
        meaning: "the identity a TLS tap client's certificate must carry (TLS on the tap port needs the WEFT_PROXY_IDENTITY_* variables)",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT",
        default: "5s",
        meaning: "discovery lookups unused for this long are dropped",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT",
        default: "3s",
        meaning: "a service with no ready endpoint for this long answers 503 instead of holding requests",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_MAX_PENDING",
        default: "10000",
        meaning: "requests and connections that may wait for endpoints at once; more are refused with 503",
    },
    Variable {
        name: "WEFT_PROXY_HTTP1_POOL_IDLE_TIMEOUT",
        default: "3s",
        meaning: "idle HTTP/1.1 upstream connections are closed after this",
    },
    Variable {
        name: "WEFT_PROXY_HTTP1_POOL_MAX_IDLE",
        default: "100",
        meaning: "idle HTTP/1.1 connections kept per endpoint",
    },
    Variable {
        name: "WEFT_PROXY_MESHED_HTTP1_CONNECTIONS",
        default: "1",
        meaning: "HTTP/1 requests to a meshed proxy that takes HTTP/2 go over up to this many mutual-TLS HTTP/1.1 connections per endpoint while one is free (kept open like the HTTP/2 connection), the rest upgraded on its one HTTP/2 connection; 0 = always upgraded, as Linkerd",
    },
    Variable {
        name: "WEFT_PROXY_METRICS_RETAIN_IDLE",
        default: "10m",
        meaning: "metric label sets not updated for this long are dropped",
    },
    Variable {
        name: "WEFT_PROXY_SHUTDOWN_GRACE_PERIOD",
        default: "30s",
        meaning: "on SIGTERM, SIGINT or POST /shutdown: how long in-flight requests and connections may take to finish",
    },
    Variable {
        name: "WEFT_PROXY_CORES",
        default: "1",
        meaning: "worker threads for the data path (1 = single-threaded runtime)",
    },
    Variable {
        name: "WEFT_PROXY_LOG",
        default: "warn,weft_proxy=info",
        meaning: "log filter (tracing env-filter syntax)",
    },
    Variable {
        name: "WEFT_PROXY_LOG_FORMAT",
        default: "plain",
        meaning: "log format: plain or json",
    },
];
