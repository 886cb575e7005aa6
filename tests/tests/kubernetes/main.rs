//! weft on Kubernetes, process-level: the real `weft-controller
//! --kubernetes` reads the test Kubernetes API server
//! (`weft_test_support::kube_api`: the real wire format over HTTP, the real
//! kube client), real `weft-proxy` processes stand for meshed pods.
//!
//! | module | what |
//! |---|---|
//! | `cluster` | the shared pieces: controller on the API, credentials, token files, meshed pods |
//! | `routing` | a proxy routed to the pods of ready EndpointSlice endpoints |
//! | `identity` | proxies certified from ServiceAccount tokens talk mutual TLS |
//! | `ha` | two controller replicas: each serves discovery, identity, tap and the metrics API |
//! | `injection` | the injector's patch for a pod of an annotated namespace yields a proxy that certifies and routes |
//!
//! Run with: `cargo build -p weft-controller -p weft-proxy --bins && cargo test -p weft-e2e --test kubernetes`.

mod cluster;
mod ha;
mod identity;
mod injection;
mod routing;
