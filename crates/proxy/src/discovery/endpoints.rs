//! Endpoints as discovery describes them (the plain types of `Get`
//! answers): an address with its metric labels, identity and protocol
//! hints, and the updates of an endpoint set.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// One endpoint as discovery describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Metric labels: set-level labels overlaid by the address's own (the
    /// `dst_*` labels).
    pub labels: EndpointLabels,
    /// The identity the endpoint's proxy presents (mutual TLS to it, with
    /// this name as SNI); `None`: not meshed, plaintext.
    pub identity: Option<String>,
    /// Whether its proxy takes HTTP/2 (HTTP/1 requests travel upgraded).
    pub h2: bool,
    /// Its proxy's inbound port for opaque traffic with a transport header.
    pub opaque_transport_port: Option<u16>,
    /// Whether discovery says its proxy is a weft proxy (see
    /// [`super::convert::is_weft_proxy`]).
    pub weft_proxy: bool,
}

/// An endpoint's metric labels, sorted by name; cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct EndpointLabels(Arc<BTreeMap<String, String>>);

impl EndpointLabels {
    /// Labels from a map.
    pub(crate) fn new(labels: BTreeMap<String, String>) -> EndpointLabels {
        EndpointLabels(Arc::new(labels))
    }

    /// The value of label `name`.
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// All labels, sorted by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// One message of a `Get` stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// Endpoints appeared or changed.
    Add(Vec<Endpoint>),
    /// Endpoints went away.
    Remove(Vec<SocketAddr>),
    /// The set is now empty; `exists` says whether the service exists.
    NoEndpoints {
        /// `false` when the controller does not know the service.
        exists: bool,
    },
}
