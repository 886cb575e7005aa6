//! Owner resolution: which Deployment a ReplicaSet belongs to, which
//! CronJob a Job belongs to — learned from metadata-only watches of
//! ReplicaSets and Jobs, kept as two small maps of names.
//!
//! ```text
//! pod ─owner ReplicaSet web-5d4f─► Owners ─► Deployment web     (ReplicaSet known, owned)
//!                                        └─► ReplicaSet web-5d4f (unknown yet, or not owned)
//! ```
//!
//! A ReplicaSet (or Job) that arrives after its pods changes their answer:
//! [`Owners::set`] says so, and the source rebuilds those pods.

use std::collections::{BTreeMap, BTreeSet};

use weft_core::workload::WorkloadOwner;

/// A pod's controller owner reference, as written (before resolution).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerReference {
    /// `ReplicaSet`, `Job`, `StatefulSet`, `DaemonSet`, ...
    pub kind: String,
    /// Its name (same namespace as the pod).
    pub name: String,
}

/// The resolved owner of a workload: the owner reference's kind and name
/// unless the [`Owners`] index knows better.
pub fn owner_of(reference: &OwnerReference) -> WorkloadOwner {
    WorkloadOwner {
        kind: reference.kind.clone(),
        name: reference.name.clone(),
    }
}

/// The two kinds whose owner is looked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OwnedKind {
    /// apps/v1 ReplicaSet → Deployment.
    ReplicaSet,
    /// batch/v1 Job → CronJob.
    Job,
}

impl OwnedKind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnedKind::ReplicaSet => "ReplicaSet",
            OwnedKind::Job => "Job",
        }
    }

    /// The owner kind looked for.
    pub fn owner_kind(self) -> &'static str {
        match self {
            OwnedKind::ReplicaSet => "Deployment",
            OwnedKind::Job => "CronJob",
        }
    }

    fn of(kind: &str) -> Option<Self> {
        match kind {
            "ReplicaSet" => Some(OwnedKind::ReplicaSet),
            "Job" => Some(OwnedKind::Job),
            _ => None,
        }
    }
}

/// (namespace, name) of a ReplicaSet or Job.
type Key = (String, String);

/// ReplicaSets and Jobs, each with its controller owner's name when it is
/// of the kind looked for (`None`: known, not owned).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owners {
    maps: BTreeMap<OwnedKind, BTreeMap<Key, Option<String>>>,
}

impl Owners {
    /// The owner a pod's reference resolves to.
    pub fn resolve(&self, namespace: &str, reference: &OwnerReference) -> WorkloadOwner {
        let Some(kind) = OwnedKind::of(&reference.kind) else {
            return owner_of(reference);
        };
        let known = self
            .maps
            .get(&kind)
            .and_then(|map| map.get(&(namespace.to_string(), reference.name.clone())));
        match known {
            Some(Some(owner)) => WorkloadOwner {
                kind: kind.owner_kind().to_string(),
                name: owner.clone(),
            },
            _ => owner_of(reference),
        }
    }

    /// Records `namespace/name` of `kind` with its owner; returns whether
    /// pods it owns resolve differently now.
    pub fn set(
        &mut self,
        kind: OwnedKind,
        namespace: &str,
        name: &str,
        owner: Option<String>,
    ) -> bool {
        let map = self.maps.entry(kind).or_default();
        let key = (namespace.to_string(), name.to_string());
        let before = map.insert(key, owner.clone());
        // Unknown and known-but-unowned resolve alike.
        before.flatten() != owner
    }

    /// Forgets `namespace/name` of `kind`. Its pods keep their answer (they
    /// go away with it).
    pub fn remove(&mut self, kind: OwnedKind, namespace: &str, name: &str) {
        if let Some(map) = self.maps.get_mut(&kind) {
            map.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// Replaces every entry of `kind` (a relist); returns the entries whose
    /// answer changed.
    pub fn replace(
        &mut self,
        kind: OwnedKind,
        listed: BTreeMap<Key, Option<String>>,
    ) -> BTreeSet<Key> {
        let old = self.maps.insert(kind, listed).unwrap_or_default();
        let new = &self.maps[&kind];
        new.iter()
            .filter(|(key, owner)| old.get(*key).cloned().flatten() != **owner)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// How many entries of `kind` are known.
    pub fn len(&self, kind: OwnedKind) -> usize {
        self.maps.get(&kind).map_or(0, BTreeMap::len)
    }
}

/// The owner name of a ReplicaSet or Job from its owner references: the
/// controller reference of the kind looked for.
pub fn controller_owner(
    kind: OwnedKind,
    references: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
) -> Option<String> {
    references?
        .iter()
        .find(|reference| reference.controller == Some(true) && reference.kind == kind.owner_kind())
        .map(|reference| reference.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(kind: &str, name: &str) -> OwnerReference {
        OwnerReference {
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }

    #[test]
    fn resolves_through_known_replica_sets_and_jobs() {
        let mut owners = Owners::default();
        assert!(owners.set(
            OwnedKind::ReplicaSet,
            "shop",
            "web-5d4f",
            Some("web".into())
        ));
        assert!(!owners.set(OwnedKind::ReplicaSet, "shop", "lone-1", None));
        assert!(owners.set(OwnedKind::Job, "shop", "report-29", Some("report".into())));
        let table = [
            ("shop", "ReplicaSet", "web-5d4f", "Deployment", "web"),
            ("other", "ReplicaSet", "web-5d4f", "ReplicaSet", "web-5d4f"),
            ("shop", "ReplicaSet", "lone-1", "ReplicaSet", "lone-1"),
            ("shop", "ReplicaSet", "unknown", "ReplicaSet", "unknown"),
            ("shop", "Job", "report-29", "CronJob", "report"),
            ("shop", "Job", "once", "Job", "once"),
            ("shop", "StatefulSet", "db", "StatefulSet", "db"),
            ("shop", "DaemonSet", "agent", "DaemonSet", "agent"),
        ];
        for (namespace, kind, name, owner_kind, owner_name) in table {
            let owner = owners.resolve(namespace, &reference(kind, name));
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str()),
                (owner_kind, owner_name),
                "{namespace} {kind} {name}"
            );
        }
    }

    #[test]
    fn a_relist_reports_changed_answers_only() {
        let mut owners = Owners::default();
        owners.set(OwnedKind::ReplicaSet, "shop", "a", Some("x".into()));
        owners.set(OwnedKind::ReplicaSet, "shop", "b", Some("y".into()));
        let listed = BTreeMap::from([
            (("shop".to_string(), "a".to_string()), Some("x".to_string())),
            (("shop".to_string(), "b".to_string()), Some("z".to_string())),
            (("shop".to_string(), "c".to_string()), Some("w".to_string())),
            (("shop".to_string(), "d".to_string()), None),
        ]);
        let changed = owners.replace(OwnedKind::ReplicaSet, listed);
        let names: Vec<&str> = changed.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(owners.len(OwnedKind::ReplicaSet), 4);
    }
}
