//! weft-controller: the control plane.
//!
//! ```text
//! mesh file ──mesh_file (source)──► catalog (index) ──► destination (gRPC, protobuf only here)
//!           └─ meshed Workloads ──► identity token files
//! issuer files ──identity (CA, tokens)──► Identity/Certify (gRPC)
//!                                                   app: wiring, admin server (/metrics /ready /live)
//! ```
//!
//! | module        | what it is |
//! |---------------|------------|
//! | [`catalog`]   | the mesh model: a synchronous in-memory index with subscriptions |
//! | [`mesh_file`] | the mesh-file source: parse, validate, reset the catalog, watch for edits |
//! | [`destination`] | the Destination gRPC service: path parsing, translation, streams |
//! | [`identity`]  | the Identity gRPC service: issuer files, CSR checks, tokens, signing |
//! | [`file_watch`] | inotify + poll watching shared by the file sources |
//! | [`incoming`]  | accepted gRPC connections with `TCP_NODELAY` |
//! | [`config`]    | flags and the `identity` subcommands |
//! | [`app`]       | `weft-controller`'s wiring in start-up order, admin server, shutdown |

pub mod app;
pub mod catalog;
pub mod config;
pub mod destination;
pub mod file_watch;
pub mod identity;
pub mod incoming;
pub mod mesh_file;
