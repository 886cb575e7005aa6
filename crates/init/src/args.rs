//! weft-init's flags: the injector writes them (`weft_core::inject`), so
//! their names are a contract.

/// How to redirect: ports, the proxy's user, what to leave alone.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "weft-init", version, about)]
pub struct Args {
    /// The proxy's inbound port (PREROUTING redirects here).
    #[arg(long, default_value_t = 4143)]
    pub inbound_proxy_port: u16,
    /// The proxy's outbound port (OUTPUT redirects here).
    #[arg(long, default_value_t = 4140)]
    pub outbound_proxy_port: u16,
    /// The proxy's UID: its own connections are never redirected.
    #[arg(long, default_value_t = 2102)]
    pub proxy_uid: u32,
    /// Inbound ports not redirected (comma-separated ports and LOW-HIGH ranges).
    #[arg(long, default_value = "")]
    pub skip_inbound_ports: String,
    /// Outbound ports not redirected (comma-separated ports and LOW-HIGH ranges).
    #[arg(long, default_value = "")]
    pub skip_outbound_ports: String,
    /// Destination networks not redirected outbound (comma-separated CIDRs).
    #[arg(long, default_value = "")]
    pub skip_subnets: String,
    /// Redirect inbound only (ingress pods reach the proxy explicitly).
    #[arg(long)]
    pub inbound_only: bool,
    /// iptables backend: auto, nft or legacy.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Print the iptables commands instead of running them.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove weft's chains and jumps instead of installing them.
    #[arg(long)]
    pub remove: bool,
}
