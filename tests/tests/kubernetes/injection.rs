//! Proxy injection end to end: the real `weft-controller --kubernetes` with
//! identity and `--injector-addr` answers an AdmissionReview for a pod of a
//! namespace annotated `weft.io/inject: enabled` (the pod itself says
//! nothing) over real TLS, verified as the API server verifies it (the trust
//! anchors as the only CA, `caBundle`, and the Service's name). The patch is
//! applied as the API server applies it, the pod stored, and the injected
//! `weft-proxy` container's environment resolved as the kubelet does
//! (`weft_test_support::kubelet`); the real `weft-proxy` runs with exactly
//! that environment, but for what a cluster would provide and a test cannot:
//!
//! - no cluster DNS here: the Service addresses (`weft-dst.weft.svc.cluster.local.:8086`
//!   and friends) become the controller's 127.0.0.1 ports;
//! - the listen ports become free ports (the hosts kept);
//! - the projected token path becomes a file holding a token the test's
//!   TokenReview accepts for the pod's ServiceAccount.
//!
//! ```text
//! test ──AdmissionReview (TLS, anchors only)──► weft-controller --injector-addr ──► patch
//!   patch ─► pod ─► KubeApiServer ◄──watch── weft-controller
//!   pod's weft-proxy env (kubelet rules) ─► weft-proxy ──Certify(token)──► weft-controller ──TokenReview──► KubeApiServer
//!   GET http://web.shop.svc.cluster.local/ ─► weft-proxy outbound ──discovered──► app (EndpointSlice)
//! ```

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_test_support::kubelet::container_env;
use weft_test_support::tls_client::{self, TlsStream, client_config};
use weft_test_support::{HttpTestServer, ProxyProcess, free_addr, free_port, load};

use crate::cluster::{
    KubeController, NAMESPACE, PATIENCE, Scratch, cluster_api, identity_flags, identity_of,
};

/// The name the API server dials for the webhook.
const INJECTOR_NAME: &str = "weft-proxy-injector.weft.svc";
const URL: &str = "http://web.shop.svc.cluster.local/";

/// The shop, its namespace asking for injection: Service `web` (port 80 →
/// `http`), pod web-a on 127.0.0.1 at `app_port` and its EndpointSlice.
fn shop_yaml(app_port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}, annotations: {{weft.io/inject: enabled}}}}\n\
         ---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {NAMESPACE}}}\n\
         spec:\n  selector: {{app: web}}\n  clusterIP: 10.96.0.10\n  ports: [{{name: http, port: 80, targetPort: http}}]\n\
         ---\napiVersion: v1\nkind: Pod\nmetadata: {{name: web-a, namespace: {NAMESPACE}, labels: {{app: web}}}}\n\
         spec:\n  containers: [{{name: app, ports: [{{name: http, containerPort: {app_port}}}]}}]\n\
         status: {{phase: Running, podIP: 127.0.0.1, podIPs: [{{ip: 127.0.0.1}}]}}\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-a, namespace: {NAMESPACE}, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {app_port}, protocol: TCP}}]\n\
         endpoints:\n- addresses: [127.0.0.1]\n  conditions: {{ready: true, serving: true, terminating: false}}\n  \
         targetRef: {{kind: Pod, name: web-a, namespace: {NAMESPACE}}}\n"
    )
}

/// A Deployment's pod as the ReplicaSet controller creates it: no name yet,
/// ServiceAccount `client`, no annotation of its own.
fn client_pod(app_port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "client-6c9d8b7f4-",
            "namespace": NAMESPACE,
            "labels": {"app": "client", "pod-template-hash": "6c9d8b7f4"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "client-6c9d8b7f4", "uid": "5b0e4c1d-2f3a-4b5c-8d9e-0a1b2c3d4e5f",
                "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "serviceAccountName": "client",
            "restartPolicy": "Always",
            "containers": [{"name": "app", "image": "ghcr.io/example/client:1.0",
                "ports": [{"name": "http", "containerPort": app_port, "protocol": "TCP"}]}],
        },
    })
}

/// A TLS handshake with `address` for `name`, verified against `anchor`
/// (PEM) alone as the API server does with caBundle, offering `alpn`.
fn handshake(
    address: SocketAddr,
    name: &str,
    anchor: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream> {
    let config = client_config(anchor, rustls::DEFAULT_VERSIONS, alpn);
    tls_client::handshake(address, name, config, PATIENCE)
}

/// POSTs `review` to the injector and returns the answer's JSON.
fn post_review(injector: SocketAddr, anchor: &str, review: &Value) -> Value {
    let body = serde_json::to_vec(review).unwrap();
    let mut tls = handshake(injector, INJECTOR_NAME, anchor, &[b"http/1.1"])
        .expect("the injector's certificate");
    let head = format!(
        "POST /inject?timeout=10s HTTP/1.1\r\nHost: {INJECTOR_NAME}:443\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&body).unwrap();
    let mut received = Vec::new();
    match tls.read_to_end(&mut received) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(error) => panic!("reading the injector's answer: {error}"),
    }
    let text = String::from_utf8(received).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{text}");
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"))
}

/// Standard base64, padded (the AdmissionResponse's `patch`).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for character in text.bytes().filter(|character| *character != b'=') {
        let value = ALPHABET
            .iter()
            .position(|known| *known == character)
            .unwrap_or_else(|| panic!("not base64: {character:?}")) as u32;
        buffer = buffer << 6 | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
        }
    }
    bytes
}

/// Applies an RFC 6902 patch (add, remove, replace) as the API server does,
/// independently of weft's own `apply`.
fn apply_json_patch(document: &mut Value, patch: &Value) {
    for operation in patch.as_array().expect("a JSON Patch is an array") {
        let op = operation["op"].as_str().expect("op");
        let path = operation["path"].as_str().expect("path");
        let (parent, last) = path.rsplit_once('/').expect("a JSON Pointer");
        let key = last.replace("~1", "/").replace("~0", "~");
        let value = operation.get("value").cloned();
        let target = document
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("{op} {path}: no parent"));
        match (op, target) {
            ("add", Value::Object(map)) => {
                map.insert(key, value.expect("a value"));
            }
            ("add", Value::Array(items)) => {
                let value = value.expect("a value");
                if key == "-" {
                    items.push(value);
                } else {
                    let index: usize = key.parse().expect("an index");
                    assert!(index <= items.len(), "{path}: out of range");
                    items.insert(index, value);
                }
            }
            ("replace", Value::Object(map)) => {
                assert!(map.contains_key(&key), "{path}: nothing to replace");
                map.insert(key, value.expect("a value"));
            }
            ("replace", Value::Array(items)) => {
                let index: usize = key.parse().expect("an index");
                items[index] = value.expect("a value");
            }
            ("remove", Value::Object(map)) => {
                assert!(map.remove(&key).is_some(), "{path}: nothing to remove");
            }
            ("remove", Value::Array(items)) => {
                items.remove(key.parse::<usize>().expect("an index"));
            }
            (op, target) => panic!("{op} {path} on {target}"),
        }
    }
}

/// The port of a `host:port` listen address replaced by a free one.
fn free_port_of(address: &str) -> (String, u16) {
    let (host, _) = address.rsplit_once(':').expect("host:port");
    let port = free_port();
    (format!("{host}:{port}"), port)
}

#[test]
fn a_pod_in_an_annotated_namespace_gets_a_working_proxy() {
    let scratch = Scratch::new("kubernetes-injection");
    let (api, anchor) = cluster_api(&scratch);
    let app = HttpTestServer::start();
    api.apply_yaml(&shop_yaml(app.addr().port()));
    let injector = free_addr();
    let policy = free_addr();
    let mut flags = identity_flags();
    flags.extend([
        "--injector-addr".to_string(),
        injector.to_string(),
        "--policy-addr".to_string(),
        policy.to_string(),
    ]);
    // Ready once the first lists are in: the namespace's annotation is known.
    let controller = KubeController::start_with(&scratch, &api, "controller", &flags);

    // 1. The API server's call: a pod CREATE in the annotated namespace.
    let mut pod = client_pod(free_port());
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "e911857d-c318-11e8-bbad-025000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
        },
    });
    let answer = post_review(injector, &anchor, &review);
    let response = &answer["response"];
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(response["uid"], "e911857d-c318-11e8-bbad-025000000001");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch", "{answer}");
    let patch: Value = serde_json::from_slice(&base64_decode(
        response["patch"].as_str().expect("a base64 patch"),
    ))
    .unwrap();

    // 2. The patched pod, named and running, stored as the API server would.
    apply_json_patch(&mut pod, &patch);
    pod["metadata"]["name"] = json!("client-6c9d8b7f4-x2x9q");
    pod["status"] =
        json!({"phase": "Running", "podIP": "127.0.0.2", "podIPs": [{"ip": "127.0.0.2"}]});
    let stored = api.apply(pod);
    assert!(
        stored["metadata"]["annotations"]
            .get("weft.io/inject")
            .is_none(),
        "the namespace asked, not the pod"
    );
    let proxy_container = stored["spec"]["initContainers"]
        .as_array()
        .and_then(|containers| {
            containers
                .iter()
                .find(|container| container["name"] == "weft-proxy")
        })
        .expect("weft-proxy is a native sidecar");
    assert_eq!(proxy_container["restartPolicy"], "Always");

    // 3. The proxy's environment, as the kubelet resolves it.
    let env = container_env(&stored, "weft-proxy").expect("the env resolves");
    let local_name = identity_of("client");
    let value_of = |name: &str| {
        env.iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("{name} is not injected: {env:?}"))
    };
    assert_eq!(value_of("WEFT_PROXY_IDENTITY_LOCAL_NAME"), local_name);
    assert_eq!(
        value_of("WEFT_PROXY_DESTINATION_CONTEXT"),
        format!("{{\"ns\":\"{NAMESPACE}\",\"pod\":\"client-6c9d8b7f4-x2x9q\"}}")
    );
    let mut builder = ProxyProcess::builder();
    let mut outbound = None;
    let mut admin = None;
    let mut inbound = None;
    for (name, value) in &env {
        let value = match name.as_str() {
            // No cluster DNS here: the Services' names become the
            // controller's loopback ports.
            "WEFT_PROXY_DESTINATION_SVC_ADDR" => {
                assert!(
                    value.starts_with("weft-dst.weft.svc.cluster.local.:"),
                    "{value}"
                );
                controller.destination.to_string()
            }
            "WEFT_PROXY_IDENTITY_SVC_ADDR" => {
                assert!(
                    value.starts_with("weft-identity.weft.svc.cluster.local.:"),
                    "{value}"
                );
                controller.identity.to_string()
            }
            "WEFT_PROXY_POLICY_SVC_ADDR" => {
                assert!(
                    value.starts_with("weft-policy.weft.svc.cluster.local.:"),
                    "{value}"
                );
                policy.to_string()
            }
            // The listen ports become free ones; the hosts stay.
            "WEFT_PROXY_INBOUND_LISTEN_ADDR" => {
                let (address, port) = free_port_of(value);
                inbound = Some(SocketAddr::from(([127, 0, 0, 1], port)));
                address
            }
            "WEFT_PROXY_TAP_LISTEN_ADDR" => free_port_of(value).0,
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR" => {
                let (address, port) = free_port_of(value);
                outbound = Some(SocketAddr::from(([127, 0, 0, 1], port)));
                address
            }
            "WEFT_PROXY_ADMIN_LISTEN_ADDR" => {
                let (address, port) = free_port_of(value);
                admin = Some(SocketAddr::from(([127, 0, 0, 1], port)));
                address
            }
            // The projected token: a file the test's TokenReview accepts for
            // the pod's ServiceAccount.
            "WEFT_PROXY_IDENTITY_TOKEN_FILE" => {
                assert_eq!(value, "/var/run/weft/identity/token");
                scratch.path("client.token").display().to_string()
            }
            _ => value.clone(),
        };
        builder = builder.env(name.clone(), value);
    }
    let (Some(outbound), Some(admin)) = (outbound, admin) else {
        panic!("no outbound or admin listener injected: {env:?}");
    };
    // The builder's own picks are overridden by the env above; it talks to
    // the admin and outbound ports on loopback.
    let proxy = builder.outbound_addr(outbound).admin_addr(admin).spawn();

    // 4. Ready means certified: the proxy holds a certificate for the pod's
    //    ServiceAccount, and the controller reviewed that pod's token.
    let reviews = api.token_reviews();
    assert!(reviews >= 1, "no TokenReview: {:?}", api.requests());
    let issued = proxy.metric("identity_cert_expiration_timestamp_seconds", &[]);
    assert!(issued.unwrap_or(0.0) > 0.0, "{}", proxy.metrics_text());
    // The inbound port presents that certificate for the pod's identity,
    // verified against the anchors alone.
    let inbound = inbound.expect("an inbound listener is injected");
    handshake(inbound, &local_name, &anchor, &[]).unwrap_or_else(|error| {
        panic!("no certificate for {local_name} on the inbound port: {error}")
    });

    // 5. Discovery through the injected proxy: the Service is resolved from
    //    the API's objects and the app serves.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let outcome = load::get(proxy.outbound_addr(), URL);
        if outcome.is_success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{URL} never served: {}",
            outcome.summary()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(app.requests_seen() >= 1);
    drop(controller);
}
