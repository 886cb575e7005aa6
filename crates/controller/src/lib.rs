//! weft-controller: the control plane.
//!
//! ```text
//! mesh file ──mesh_file (source)──► catalog (index) ──► destination (gRPC, protobuf only here)
//!           └─ meshed Workloads ──► identity token files
//! issuer files ──identity (CA, tokens)──► Identity/Certify (gRPC)
//!                                                   app: wiring; admin: /metrics /ready /live
//! ```
//!
//! | module        | what it is |
//! |---------------|------------|
//! | [`catalog`]   | the mesh model: a synchronous in-memory index with subscriptions |
//! | [`mesh_file`] | the mesh-file source: parse, validate, reset the catalog, watch for edits |
//! | [`kubernetes`] | the Kubernetes source: the API client, watches feeding the catalog |
//! | [`destination`] | the Destination gRPC service: path parsing, translation, streams |
//! | [`policy`]    | the InboundServerPolicies gRPC service: workload ports → effective policy |
//! | [`identity`]  | the Identity gRPC service: issuer files, CSR checks, tokens, signing |
//! | [`memory`]    | freed memory handed back after a big mesh-file version |
//! | [`file_watch`] | inotify + poll watching shared by the file sources |
//! | [`incoming`]  | accepted gRPC connections: TLS or plaintext on one port, `TCP_NODELAY` |
//! | [`injector`]  | the proxy injector: the admission webhook adding proxies to pods (`--injector-addr`) |
//! | [`tap`]       | `/api/tap`: the API token, fan-out of Observe to the proxies, NDJSON events |
//! | [`dashboard`] | the dashboard page and assets at `/`, the Host check |
//! | [`config`]    | flags and the `identity` subcommands |
//! | [`api`]       | the HTTP API (`--web-addr`, types in `weft-api`): one file per endpoint group |
//! | [`proxy_address`] | where a meshed workload's proxy listens (admin, tap, inbound): one answer for all |
//! | [`metrics_api`] | golden metrics: scraping the proxies into a bounded window and querying it, or asking Prometheus |
//! | [`admin`]     | the admin server's handlers: `/metrics`, `/ready`, `/live` |
//! | [`app`]       | `weft-controller`'s wiring in start-up order, shutdown |

pub mod admin;
pub mod api;
pub mod app;
pub mod catalog;
pub mod config;
pub mod dashboard;
pub mod destination;
pub mod file_watch;
pub mod fuzz_entry;
pub mod identity;
pub mod incoming;
pub mod injector;
pub mod kubernetes;
pub mod memory;
pub mod mesh_file;
pub mod metrics_api;
pub mod policy;
pub mod proxy_address;
pub mod tap;
