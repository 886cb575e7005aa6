//! Where a meshed workload's proxy listens: the one answer the scraper
//! (admin), tap (tap) and the HTTP API (all three) use.
//!
//! The proxy's IP is its `spec.proxy.address`, else the workload's first
//! address; its ports are the workload's `spec.proxy` ports.

use std::net::{IpAddr, SocketAddr};

use weft_core::workload::Workload;

/// A meshed workload's proxy listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyListeners {
    /// Admin (`/metrics`, `/ready`): what is scraped.
    pub admin: SocketAddr,
    /// Tap: what the controller's tap observes.
    pub tap: SocketAddr,
    /// Inbound.
    pub inbound: SocketAddr,
}

/// The listeners of `workload`'s proxy; `None` when it is not meshed or
/// has no address.
pub fn proxy_listeners(workload: &Workload) -> Option<ProxyListeners> {
    let proxy = workload.proxy_settings()?;
    let ip: IpAddr = proxy
        .address
        .or_else(|| workload.spec.addresses.first().copied())?;
    Some(ProxyListeners {
        admin: SocketAddr::new(ip, proxy.admin_port),
        tap: SocketAddr::new(ip, proxy.tap_port),
        inbound: SocketAddr::new(ip, proxy.inbound_port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(yaml_spec: &str) -> Workload {
        serde_saphyr::from_str(&format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: web, namespace: demo}}\nspec:\n{yaml_spec}"
        ))
        .unwrap()
    }

    #[test]
    fn the_proxy_address_else_the_first_workload_address() {
        let own = workload(
            "  addresses: [127.0.0.2, 127.0.0.3]\n  meshed: true\n  proxy: {address: 127.0.0.9, adminPort: 5191, tapPort: 5190, inboundPort: 5143}\n",
        );
        let listeners = proxy_listeners(&own).unwrap();
        assert_eq!(listeners.admin, "127.0.0.9:5191".parse().unwrap());
        assert_eq!(listeners.tap, "127.0.0.9:5190".parse().unwrap());
        assert_eq!(listeners.inbound, "127.0.0.9:5143".parse().unwrap());
        let first = workload("  addresses: [127.0.0.2, 127.0.0.3]\n  meshed: true\n");
        assert_eq!(
            proxy_listeners(&first).unwrap().admin.ip(),
            "127.0.0.2".parse::<IpAddr>().unwrap()
        );
        let nowhere = workload("  addresses: []\n  meshed: true\n");
        assert_eq!(proxy_listeners(&nowhere), None);
        let unmeshed = workload("  addresses: [127.0.0.2]\n  meshed: false\n");
        assert_eq!(proxy_listeners(&unmeshed), None);
    }
}
