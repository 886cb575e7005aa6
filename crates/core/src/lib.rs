//! weft-core: the mesh model.
//!
//! Kubernetes-shaped domain types shared by the controller's sources (mesh file,
//! later Kubernetes), its servers and the CLI, plus the pure decisions made on
//! them. Nothing here does I/O or knows protobuf.
//!
//! ```text
//! Service (core/v1, k8s-openapi)  ──selects by labels──►  Workload (weft.dev/v1alpha1)
//!        ▲ named by                                         ports resolve named targetPorts
//! ServiceProfile (linkerd.io/v1alpha2)   routes, response classes, retry budget
//! TrafficSplit (split.smi-spec.io/v1alpha1)  apex service → weighted backends
//! HTTPRoute / GRPCRoute (policy.linkerd.io, gateway.networking.k8s.io)  parentRefs → Service or Server
//! ```
//!
//! | module      | what it holds |
//! |-------------|---------------|
//! | [`object`]  | [`MeshObject`]: one parsed object of any kind, its [`Kind`] and [`ObjectKey`] |
//! | [`service`] | selector matching, named target ports, cluster IPs (pure) |
//! | [`workload`]| the `Workload` kind |
//! | [`endpoint_slice`] | `EndpointSlice` (discovery.k8s.io/v1), lean: a Service's endpoints on a cluster |
//! | [`cluster`] | the names a Kubernetes installation shares (namespace, Services, Secrets, labels) |
//! | [`crds`]    | (feature `crds`) the CustomResourceDefinitions of the kinds above, from these types |
//! | [`profile`] | `ServiceProfile`, route matching, response classification |
//! | [`duration`]| Go duration strings (`250ms`, `1m30s`) |
//! | [`split`]   | `TrafficSplit`, `dst_overrides` |
//! | [`route`]   | `HTTPRoute`, `GRPCRoute` (Gateway API fields) and Linkerd's retry/timeout annotations |
//! | [`weight`]  | quantity weights (`900m`, `1`) and their wire form |
//! | [`names`]   | fully-qualified service names |
//! | [`inject`]  | (feature `inject`) proxy injection: pod + namespace annotations → JSON Patch (webhook and `weft inject`) |
//! | [`pki`]     | (feature `pki`) the mesh's CA certificates: checking an issuer against its trust anchors, generating a root and an issuer |
//! | [`port_list`] | port lists such as `3306,4000-4100` (opaque ports, skipped ports) |
//! | [`policy`]  | Linkerd's authorization policy kinds and a port's effective inbound policy; without `model`, only its CIDR networks and default policies (the proxy's too) |

#[cfg(feature = "model")]
pub mod cluster;
#[cfg(feature = "crds")]
pub mod crds;
pub mod duration;
#[cfg(feature = "model")]
pub mod endpoint_slice;
#[cfg(feature = "inject")]
pub mod inject;
pub mod names;
#[cfg(feature = "model")]
pub mod object;
#[cfg(feature = "pki")]
pub mod pki;
pub mod policy;
pub mod port_list;
#[cfg(feature = "model")]
pub mod profile;
#[cfg(feature = "model")]
pub mod route;
#[cfg(feature = "model")]
pub mod service;
#[cfg(feature = "model")]
pub mod split;
#[cfg(feature = "model")]
pub mod weight;
#[cfg(feature = "model")]
pub mod workload;

#[cfg(feature = "model")]
pub use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
#[cfg(feature = "model")]
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
#[cfg(feature = "model")]
pub use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
#[cfg(feature = "model")]
pub use object::{Kind, MeshObject, ObjectError, ObjectKey};
#[cfg(feature = "model")]
pub use profile::ServiceProfile;
#[cfg(feature = "model")]
pub use route::{GrpcRoute, HttpRoute};
#[cfg(feature = "model")]
pub use split::TrafficSplit;
#[cfg(feature = "model")]
pub use workload::Workload;
