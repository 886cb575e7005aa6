//! What `weft inject` and `weft uninject` tell the user on stderr, as
//! `linkerd inject` does: a line per object (`deployment "web" injected`,
//! `daemonset "agent" skipped: <reason>`), then a summary of the counts.
//! Pure: outcomes in, text out.

use std::collections::BTreeMap;

use super::objects::Outcome;

/// One object and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The object's kind (`Deployment`).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// What happened.
    pub outcome: Outcome,
}

/// The line for one object: the kind lower-cased, the name quoted.
pub fn line(entry: &Entry) -> String {
    let subject = format!("{} {:?}", entry.kind.to_ascii_lowercase(), entry.name);
    let what = match &entry.outcome {
        Outcome::NotWorkload => "unchanged (not a workload)".to_string(),
        Outcome::Injected => "injected".to_string(),
        Outcome::AlreadyInjected => "already injected".to_string(),
        Outcome::Disabled(reason) | Outcome::Skipped(reason) => format!("skipped: {reason}"),
        Outcome::NotInjected => "not injected".to_string(),
        Outcome::Uninjected => "uninjected".to_string(),
        Outcome::NoProxy => "unchanged (no weft proxy)".to_string(),
    };
    format!("{subject} {what}")
}

/// The summary: each outcome's count, in a fixed order, the zeros left out
/// (`summary: 3 injected, 1 skipped, 2 not workloads`).
pub fn summary(entries: &[Entry]) -> String {
    let mut counts: BTreeMap<usize, (&str, usize)> = BTreeMap::new();
    for entry in entries {
        let (order, label) = match entry.outcome {
            Outcome::Injected => (0, "injected"),
            Outcome::Uninjected => (1, "uninjected"),
            Outcome::AlreadyInjected => (2, "already injected"),
            Outcome::Disabled(_) | Outcome::Skipped(_) => (3, "skipped"),
            Outcome::NotInjected => (4, "not injected"),
            Outcome::NoProxy => (5, "without a weft proxy"),
            Outcome::NotWorkload => (6, "not workloads"),
        };
        counts.entry(order).or_insert((label, 0)).1 += 1;
    }
    if counts.is_empty() {
        return "summary: no objects".to_string();
    }
    let parts: Vec<String> = counts
        .values()
        .map(|(label, count)| format!("{count} {label}"))
        .collect();
    format!("summary: {}", parts.join(", "))
}

/// Every line, then the summary, each ending in a newline.
pub fn render(entries: &[Entry]) -> String {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&line(entry));
        text.push('\n');
    }
    text.push_str(&summary(entries));
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, name: &str, outcome: Outcome) -> Entry {
        Entry {
            kind: kind.to_string(),
            name: name.to_string(),
            outcome,
        }
    }

    #[test]
    fn line_table() {
        let cases = [
            (
                entry("Deployment", "web", Outcome::Injected),
                "deployment \"web\" injected",
            ),
            (
                entry(
                    "CronJob",
                    "backup",
                    Outcome::Disabled("weft.io/inject: disabled".into()),
                ),
                "cronjob \"backup\" skipped: weft.io/inject: disabled",
            ),
            (
                entry(
                    "DaemonSet",
                    "agent",
                    Outcome::Skipped("hostNetwork: true".into()),
                ),
                "daemonset \"agent\" skipped: hostNetwork: true",
            ),
            (
                entry("Service", "web", Outcome::NotWorkload),
                "service \"web\" unchanged (not a workload)",
            ),
            (
                entry("Pod", "p", Outcome::AlreadyInjected),
                "pod \"p\" already injected",
            ),
            (
                entry("StatefulSet", "db", Outcome::Uninjected),
                "statefulset \"db\" uninjected",
            ),
            (
                entry("Job", "j", Outcome::NoProxy),
                "job \"j\" unchanged (no weft proxy)",
            ),
            (
                entry("Job", "j", Outcome::NotInjected),
                "job \"j\" not injected",
            ),
        ];
        for (entry, expected) in cases {
            assert_eq!(line(&entry), expected);
        }
    }

    #[test]
    fn summary_counts_in_a_fixed_order() {
        let entries = [
            entry("Service", "a", Outcome::NotWorkload),
            entry("Deployment", "b", Outcome::Injected),
            entry("DaemonSet", "c", Outcome::Skipped("x".into())),
            entry("Deployment", "d", Outcome::Injected),
            entry("Job", "e", Outcome::Disabled("y".into())),
        ];
        assert_eq!(
            summary(&entries),
            "summary: 2 injected, 2 skipped, 1 not workloads"
        );
        assert_eq!(summary(&[]), "summary: no objects");
        assert_eq!(
            render(&entries[..1]),
            "service \"a\" unchanged (not a workload)\nsummary: 1 not workloads\n"
        );
    }
}
