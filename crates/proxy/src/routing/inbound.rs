//! Inbound profile lookups: the routes of the service a request to this
//! proxy's workload names, for the route metrics (`direction="inbound"`),
//! as Linkerd's inbound proxy does. Inbound, a profile only labels and
//! classifies: no retries, timeouts or balancing.
//!
//! ```text
//! request ─► logical name: l5d-dst-canonical, else the authority (Host), port 80 by default
//!   └─ a name (not an IP) under PROFILE_SUFFIXES? ──no──► no route metrics
//!        └─ GetProfile(name:port) (the inbound cache: shared per name, at most
//!           MAX_INBOUND_PROFILES names, dropped when idle; first answer
//!           waited for at most the initial timeout, as outbound)
//!             ├─ a fully-qualified name and routes ─► InboundRoutes: route_* metrics
//!             └─ no routes, unresolved, rejected   ─► no route metrics
//! ```
//!
//! Only profiles with routes count: inbound authorities come from clients,
//! and a name nobody wrote a ServiceProfile for gets no label sets.

use std::sync::Arc;

use super::profile::Profile;
use super::{RouteChoice, choose_route, route_labels};
use crate::direction::Direction;
use crate::discovery::{Lookup, ProfileWatch};
use crate::metrics::route::RouteLabels;

/// Most service names looked up for inbound requests at once: names come
/// from clients, so a flood of made-up ones holds at most this many
/// lookups (the rest get no route metrics until some go idle).
pub(crate) const MAX_INBOUND_PROFILES: usize = 1_000;

/// The routes of a service this proxy's workload serves.
pub(crate) struct InboundRoutes {
    /// `name:port`, the `dst` label (in `route_labels`; read by tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) name: Arc<str>,
    profile: Arc<Profile>,
    /// Route labels by route index, then the default route's.
    route_labels: Vec<RouteLabels>,
}

impl InboundRoutes {
    /// The routes of `profile` for requests that named `port`; `None`
    /// when the profile has no name or no routes.
    pub(crate) fn of(profile: &Arc<Profile>, port: u16) -> Option<InboundRoutes> {
        if profile.routes.is_empty() {
            return None;
        }
        let name = profile.fully_qualified_name.as_ref()?;
        let name: Arc<str> = format!("{}:{port}", name.trim_end_matches('.')).into();
        Some(InboundRoutes {
            route_labels: route_labels(profile, &name, Direction::Inbound),
            name,
            profile: profile.clone(),
        })
    }

    /// The route for a request: the first matching profile route, or the
    /// default route.
    pub(crate) fn route(&self, method: &http::Method, path: &str) -> RouteChoice<'_> {
        choose_route(&self.profile.routes, &self.route_labels, method, path)
    }
}

/// One connection's lookup of one service name, and the routes made from
/// its latest profile.
pub(crate) struct InboundDiscovery {
    port: u16,
    watch: ProfileWatch,
    last: Option<(Arc<Profile>, Option<Arc<InboundRoutes>>)>,
}

impl InboundDiscovery {
    pub(super) fn new(watch: ProfileWatch, port: u16) -> InboundDiscovery {
        InboundDiscovery {
            port,
            watch,
            last: None,
        }
    }

    /// The routes of the latest profile, waiting for the first answer at
    /// most the initial timeout. Cheap when the profile has not changed.
    pub(crate) async fn routes(&mut self) -> Option<Arc<InboundRoutes>> {
        let profile = match self.watch.current() {
            Lookup::Resolved(profile) => profile,
            Lookup::Pending => match self.watch.ready().await {
                Lookup::Resolved(profile) => profile,
                _ => return None,
            },
            Lookup::Unresolved | Lookup::NotDiscoverable { .. } => return None,
        };
        if let Some((last_profile, routes)) = &self.last
            && Arc::ptr_eq(last_profile, &profile)
        {
            return routes.clone();
        }
        let routes = InboundRoutes::of(&profile, self.port).map(Arc::new);
        self.last = Some((profile, routes.clone()));
        routes
    }
}
