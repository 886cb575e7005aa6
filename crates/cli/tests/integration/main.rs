//! The `weft` CLI's integration tests, one test binary (one link): the real
//! `weft` binary as a user runs it.
//!
//! - `fake_api`: the observe commands against an in-process fake of the
//!   controller's API built from the `weft-api` types.
//! - `authz`: `weft authz` and `weft stat`'s denials against the same fake.
//! - `observe`: the same commands against a real controller and real proxies.
//! - `install`: `weft install`/`uninstall`'s Kubernetes manifests (golden files,
//!   kubernetes-validate, credentials, RBAC).
//! - `up`: `weft up` and `weft demo` running whole meshes on this host.
//! - `check_cluster`: `weft check --kubernetes` against the test Kubernetes
//!   API server holding an installation as objects.

mod authz;
mod check_cluster;
mod fake_api;
mod install;
mod observe;
mod up;
