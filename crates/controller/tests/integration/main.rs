//! weft-controller's integration tests, one test binary (one link): the
//! real `weft-controller` binary driven through its real interfaces.
//!
//! - `destination`, `identity`, `policy_inbound`: the gRPC wire contracts, with
//!   `linkerd2-proxy-api` clients, while the test edits the mesh file.
//! - `metrics_api`: golden metrics from the controller's own scrapes of real
//!   proxies (or from a real Prometheus).
//! - `authz_metrics`: allowed/denied counts in `/api/stat`, from fake proxy
//!   admin endpoints serving the authorization counters.
//! - `tap`: `/api/tap` fan-out, rate sharing, authorization, mutual TLS.
//! - `dashboard`: the web dashboard in headless Chromium.
//! - `api_contract`: every HTTP API answer read strictly into `weft-api`.
//! - `attack`: abuse of each interface, with the outcome asserted.
//! - `injector`: the proxy injector's AdmissionReview answers against
//!   golden files; the patched pods pass `kubernetes-validate --strict`.
//! - `injector_attack`: abuse of the injector's listener (plaintext, huge
//!   and slow requests, other methods, malformed reviews, connection floods).
//! - `policy_latency`: measurements (printed, not asserted) of inbound policy
//!   edits reaching WatchPort streams with 1,000 Servers.
//! - `policy_outbound`: the OutboundPolicies wire contract, with the
//!   `linkerd2-proxy-api` client as linkerd2-proxy asks.
//! - `kubernetes`: `--kubernetes` against the test Kubernetes API server:
//!   endpoints from EndpointSlices, relists after 410, ServiceProfile
//!   resources, pod IPs, readiness after the first lists.
//! - `kubernetes_scale`: 1,000 Services and 10,000 pods from the Kubernetes
//!   source: the controller's memory (asserted) and slice-change latency (printed).
//!
//! Shared helpers: `common` (raw HTTP over TCP), `mesh` (a small meshed demo
//! with real proxies and traffic, the JSON API and tap stream readers).

mod common;
mod mesh;

mod api_contract;
mod attack;
mod authz_metrics;
mod dashboard;
mod destination;
mod identity;
mod identity_kubernetes;
mod injector;
mod injector_attack;
mod kubernetes;
mod kubernetes_scale;
mod metrics_api;
mod policy_inbound;
mod policy_latency;
mod policy_outbound;
mod tap;
