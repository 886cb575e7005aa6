//! weft-controller: the control plane.
//!
//! ```text
//! mesh file ──mesh_file (source)──► catalog (index) ──► (next) destination gRPC server
//! ```
//!
//! | module        | what it is |
//! |---------------|------------|
//! | [`catalog`]   | the mesh model: a synchronous in-memory index with subscriptions |
//! | [`mesh_file`] | the mesh-file source: parse, validate, reset the catalog, watch for edits |

pub mod catalog;
pub mod mesh_file;
