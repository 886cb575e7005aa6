//! Port lists as annotations write them (`3306,5432`, `4000-4100`, `443`):
//! the opaque ports of policy and profiles, a pod's skipped inbound ports.

/// Whether a port list such as `3306,5432`, `4000-4100` or `443` contains `port`.
pub fn lists_port(list: &str, port: u16) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|entry| match entry.split_once('-') {
            Some((low, high)) => match (low.trim().parse::<u16>(), high.trim().parse::<u16>()) {
                (Ok(low), Ok(high)) => (low..=high).contains(&port),
                _ => false,
            },
            None => entry.parse::<u16>() == Ok(port),
        })
}
