//! The source's memory and its catalog writes: watch updates in, catalog
//! batches out. Synchronous and free of I/O, so tests feed it updates.
//!
//! ```text
//! Init      ─► start a relist buffer for the resource
//! Listed    ─► buffer
//! ListDone  ─► one Catalog::update: everything listed applied, whatever the
//!              resource held before and the relist lacks deleted
//! Applied   ─► Catalog::update (apply)
//! Deleted   ─► Catalog::update (delete)
//! ```
//!
//! What it remembers is lean: per resource the keys it put in the catalog
//! (to know what a relist dropped), per pod its mesh annotations and owner
//! reference ([`PodRecord`]), namespaces' mesh annotations, and the owner
//! names of ReplicaSets and Jobs. The objects themselves live in the
//! catalog only — except the rare ones another resource may shadow.
//!
//! Two resources share a catalog kind: pods and weft.dev Workloads
//! (`Workload`), policy.linkerd.io and Gateway API HTTPRoutes (`HttpRoute`).
//! The collision rule: for one namespace and name, the pod (the
//! policy.linkerd.io route) wins; the shadowed Workload (Gateway route) is
//! kept here and takes over when the winner goes away.
//!
//! A pod's workload depends on its namespace's annotations and its owner's
//! owner: a namespace whose mesh annotations change, or a ReplicaSet or Job
//! arriving after its pods, rebuilds those pods' workloads from the
//! catalog's copy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use weft_core::object::{MeshObject, ObjectKey};

use super::namespaces::NamespaceAnnotations;
use super::objects::ConvertError;
use super::owners::{OwnedKind, Owners};
use super::pod::{PodError, PodFacts, PodRecord, rebuild};
use super::status::Resource;
use crate::catalog::{Catalog, SharedCatalog};

/// (namespace, name).
pub type NamespacedName = (String, String);

pub use super::namespaces::Annotations;

/// One watch event, its object already converted.
#[derive(Debug)]
pub enum Update {
    /// A relist starts.
    Init,
    /// An object of the relist.
    Listed(Converted),
    /// The relist is complete.
    ListDone,
    /// An object was added or changed.
    Applied(Converted),
    /// An object was deleted.
    Deleted(NamespacedName),
}

impl Update {
    /// The metric label of its event type.
    pub fn label(&self) -> &'static str {
        match self {
            Update::Init => "init",
            Update::Listed(_) => "init_apply",
            Update::ListDone => "init_done",
            Update::Applied(_) => "apply",
            Update::Deleted(_) => "delete",
        }
    }
}

/// A watched object, converted (the Kubernetes object is gone).
#[derive(Debug)]
pub enum Converted {
    /// A catalog object (or why it is refused).
    Object(NamespacedName, Result<MeshObject, ConvertError>),
    /// A pod.
    Pod(NamespacedName, Result<Box<PodFacts>, PodError>),
    /// A namespace's mesh annotations.
    Namespace(String, Option<Annotations>),
    /// A ReplicaSet or Job and its owner's name (Deployment, CronJob).
    Owned(NamespacedName, Option<String>),
}

/// An object refused, for the log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Namespace and name.
    pub name: NamespacedName,
    /// Why.
    pub reason: String,
}

/// The catalog changes of one update.
#[derive(Debug, Default)]
struct Batch {
    applied: Vec<MeshObject>,
    deleted: Vec<ObjectKey>,
}

/// Which of two resources sharing a catalog kind wins a name.
fn rival(resource: Resource) -> Option<(Resource, bool)> {
    match resource {
        Resource::Pods => Some((Resource::Workloads, true)),
        Resource::Workloads => Some((Resource::Pods, false)),
        Resource::PolicyHttpRoutes => Some((Resource::GatewayHttpRoutes, true)),
        Resource::GatewayHttpRoutes => Some((Resource::PolicyHttpRoutes, false)),
        _ => None,
    }
}

/// The source's memory (see the module docs).
#[derive(Debug)]
pub struct Index {
    catalog: SharedCatalog,
    /// Keys each catalog resource (other than pods and shadowable ones) holds.
    keys: HashMap<Resource, BTreeSet<NamespacedName>>,
    /// The objects of resources another may shadow (Workloads, Gateway HTTPRoutes).
    shadowable: HashMap<Resource, BTreeMap<NamespacedName, MeshObject>>,
    pods: BTreeMap<NamespacedName, PodRecord>,
    /// Every namespace's annotations (shared with [`Self::namespace_handle`]'s holders).
    namespaces: BTreeMap<String, Arc<Annotations>>,
    /// The annotated namespaces, for the proxy injector.
    shared_namespaces: NamespaceAnnotations,
    owners: Owners,
    buffers: HashMap<Resource, Vec<Converted>>,
}

impl Index {
    /// An empty index writing to `catalog`.
    pub fn new(catalog: SharedCatalog) -> Self {
        Self {
            catalog,
            keys: HashMap::new(),
            shadowable: HashMap::new(),
            pods: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            shared_namespaces: NamespaceAnnotations::default(),
            owners: Owners::default(),
            buffers: HashMap::new(),
        }
    }

    /// The annotated namespaces' annotations, kept current by this index
    /// (the proxy injector reads them).
    pub fn namespace_handle(&self) -> NamespaceAnnotations {
        self.shared_namespaces.clone()
    }

    /// `namespace`'s annotations, when it has been seen.
    fn namespace_annotations(&self, namespace: &str) -> Option<&Annotations> {
        self.namespaces
            .get(namespace)
            .map(|annotations| &**annotations)
    }

    /// How many objects `resource` holds.
    pub fn count(&self, resource: Resource) -> usize {
        match resource {
            Resource::Pods => self.pods.len(),
            Resource::Namespaces => self.namespaces.len(),
            Resource::ReplicaSets => self.owners.len(OwnedKind::ReplicaSet),
            Resource::Jobs => self.owners.len(OwnedKind::Job),
            Resource::Workloads | Resource::GatewayHttpRoutes => {
                self.shadowable.get(&resource).map_or(0, BTreeMap::len)
            }
            _ => self.keys.get(&resource).map_or(0, BTreeSet::len),
        }
    }

    /// Takes one update of `resource` into the catalog; returns the objects refused.
    pub fn handle(&mut self, resource: Resource, update: Update) -> Vec<Rejected> {
        let mut rejected = Vec::new();
        let catalog = self.catalog.clone();
        let mut catalog = catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut batch = Batch::default();
        match update {
            Update::Init => {
                self.buffers.insert(resource, Vec::new());
            }
            Update::Listed(converted) => {
                self.buffers.entry(resource).or_default().push(converted);
            }
            Update::ListDone => {
                let listed = self.buffers.remove(&resource).unwrap_or_default();
                self.relist(&catalog, resource, listed, &mut batch, &mut rejected);
            }
            Update::Applied(converted) => {
                self.apply(&catalog, resource, converted, &mut batch, &mut rejected);
            }
            Update::Deleted(name) => self.delete(resource, name, &mut batch),
        }
        if !batch.applied.is_empty() || !batch.deleted.is_empty() {
            // Every object was keyed (named) before it got here.
            if let Err(error) = catalog.update(batch.applied, batch.deleted) {
                tracing::warn!(resource = resource.name(), %error, "the catalog refused a Kubernetes update");
            }
        }
        rejected
    }

    fn apply(
        &mut self,
        catalog: &Catalog,
        resource: Resource,
        converted: Converted,
        batch: &mut Batch,
        rejected: &mut Vec<Rejected>,
    ) {
        match converted {
            Converted::Object(name, Ok(object)) => self.present(resource, name, object, batch),
            Converted::Object(name, Err(error)) => rejected.push(Rejected {
                name,
                reason: error.to_string(),
            }),
            Converted::Pod(name, Ok(facts)) => {
                let record = facts.record();
                let workload = facts.finish(self.namespace_annotations(&name.0), &self.owners);
                self.pods.insert(name.clone(), record);
                self.present(resource, name, MeshObject::from(workload), batch);
            }
            Converted::Pod(name, Err(error)) => rejected.push(Rejected {
                name,
                reason: error.to_string(),
            }),
            Converted::Namespace(namespace, annotations) => {
                let annotations = annotations.unwrap_or_default();
                if self.namespace_annotations(&namespace) != Some(&annotations) {
                    let annotations = Arc::new(annotations);
                    self.shared_namespaces
                        .set(&namespace, Arc::clone(&annotations));
                    self.namespaces.insert(namespace.clone(), annotations);
                    self.rebuild_pods(catalog, &namespace, |_| true, batch);
                }
            }
            Converted::Owned((namespace, name), owner) => {
                let Some(kind) = owned_kind(resource) else {
                    return;
                };
                if self.owners.set(kind, &namespace, &name, owner) {
                    self.rebuild_owned(catalog, kind, &namespace, &name, batch);
                }
            }
        }
    }

    fn delete(&mut self, resource: Resource, name: NamespacedName, batch: &mut Batch) {
        match resource {
            Resource::Namespaces => {
                // Its pods go with it; nothing to rebuild.
                self.namespaces.remove(&name.1);
                self.shared_namespaces.remove(&name.1);
            }
            Resource::ReplicaSets | Resource::Jobs => {
                if let Some(kind) = owned_kind(resource) {
                    self.owners.remove(kind, &name.0, &name.1);
                }
            }
            Resource::Pods => {
                if self.pods.remove(&name).is_some() {
                    self.absent(resource, name, batch);
                }
            }
            _ => {
                let held = match self.shadowable.get_mut(&resource) {
                    Some(objects) => objects.remove(&name).is_some(),
                    None => self
                        .keys
                        .get_mut(&resource)
                        .is_some_and(|keys| keys.remove(&name)),
                };
                let shadowable =
                    matches!(resource, Resource::Workloads | Resource::GatewayHttpRoutes);
                if held || !shadowable {
                    self.absent(resource, name, batch);
                }
            }
        }
    }

    fn relist(
        &mut self,
        catalog: &Catalog,
        resource: Resource,
        listed: Vec<Converted>,
        batch: &mut Batch,
        rejected: &mut Vec<Rejected>,
    ) {
        match resource {
            Resource::Namespaces => {
                let fresh: BTreeMap<String, Arc<Annotations>> = listed
                    .into_iter()
                    .filter_map(|converted| match converted {
                        Converted::Namespace(name, annotations) => {
                            Some((name, Arc::new(annotations.unwrap_or_default())))
                        }
                        _ => None,
                    })
                    .collect();
                let changed: Vec<String> = fresh
                    .iter()
                    .filter(|(name, annotations)| self.namespaces.get(*name) != Some(annotations))
                    .map(|(name, _)| name.clone())
                    .collect();
                self.shared_namespaces.replace(&fresh);
                self.namespaces = fresh;
                for namespace in changed {
                    self.rebuild_pods(catalog, &namespace, |_| true, batch);
                }
            }
            Resource::ReplicaSets | Resource::Jobs => {
                let Some(kind) = owned_kind(resource) else {
                    return;
                };
                let fresh = listed
                    .into_iter()
                    .filter_map(|converted| match converted {
                        Converted::Owned(name, owner) => Some((name, owner)),
                        _ => None,
                    })
                    .collect();
                for (namespace, name) in self.owners.replace(kind, fresh) {
                    self.rebuild_owned(catalog, kind, &namespace, &name, batch);
                }
            }
            Resource::Pods => {
                let mut fresh = BTreeMap::new();
                let mut workloads = Vec::new();
                for converted in listed {
                    match converted {
                        Converted::Pod(name, Ok(facts)) => {
                            fresh.insert(name.clone(), facts.record());
                            let workload =
                                facts.finish(self.namespace_annotations(&name.0), &self.owners);
                            workloads.push((name, workload));
                        }
                        Converted::Pod(name, Err(error)) => rejected.push(Rejected {
                            name,
                            reason: error.to_string(),
                        }),
                        _ => {}
                    }
                }
                let gone: Vec<NamespacedName> = self
                    .pods
                    .keys()
                    .filter(|name| !fresh.contains_key(*name))
                    .cloned()
                    .collect();
                self.pods = fresh;
                for name in gone {
                    self.absent(resource, name, batch);
                }
                for (name, workload) in workloads {
                    self.present(resource, name, MeshObject::from(workload), batch);
                }
            }
            _ => {
                let shadowable =
                    matches!(resource, Resource::Workloads | Resource::GatewayHttpRoutes);
                let before: BTreeSet<NamespacedName> = if shadowable {
                    self.shadowable
                        .get(&resource)
                        .map(|objects| objects.keys().cloned().collect())
                        .unwrap_or_default()
                } else {
                    self.keys.get(&resource).cloned().unwrap_or_default()
                };
                let mut kept = BTreeSet::new();
                let mut objects = Vec::new();
                for converted in listed {
                    match converted {
                        Converted::Object(name, Ok(object)) => {
                            kept.insert(name.clone());
                            objects.push((name, object));
                        }
                        // The last good version keeps serving.
                        Converted::Object(name, Err(error)) => {
                            if before.contains(&name) {
                                kept.insert(name.clone());
                            }
                            rejected.push(Rejected {
                                name,
                                reason: error.to_string(),
                            });
                        }
                        _ => {}
                    }
                }
                for name in before.difference(&kept) {
                    if let Some(objects) = self.shadowable.get_mut(&resource) {
                        objects.remove(name);
                    }
                    if let Some(keys) = self.keys.get_mut(&resource) {
                        keys.remove(name);
                    }
                    self.absent(resource, name.clone(), batch);
                }
                for (name, object) in objects {
                    self.present(resource, name, object, batch);
                }
            }
        }
    }

    /// `resource` holds `object` under `name` now.
    fn present(
        &mut self,
        resource: Resource,
        name: NamespacedName,
        object: MeshObject,
        batch: &mut Batch,
    ) {
        match rival(resource) {
            Some((winner, false)) => {
                let shadowed = self.holds(winner, &name);
                self.shadowable
                    .entry(resource)
                    .or_default()
                    .insert(name.clone(), object.clone());
                if shadowed {
                    tracing::debug!(resource = resource.name(), namespace = %name.0, name = %name.1,
                        "shadowed by {} of the same name", winner.name());
                } else {
                    batch.applied.push(object);
                }
            }
            _ => {
                if resource != Resource::Pods {
                    self.keys.entry(resource).or_default().insert(name);
                }
                batch.applied.push(object);
            }
        }
    }

    /// `resource` no longer holds `name` (already forgotten).
    fn absent(&self, resource: Resource, name: NamespacedName, batch: &mut Batch) {
        let Some(kind) = resource.catalog_kind() else {
            return;
        };
        match rival(resource) {
            Some((shadowed, true)) => {
                if let Some(object) = self
                    .shadowable
                    .get(&shadowed)
                    .and_then(|objects| objects.get(&name))
                {
                    batch.applied.push(object.clone());
                    return;
                }
            }
            Some((winner, false)) if self.holds(winner, &name) => return,
            _ => {}
        }
        batch.deleted.push(ObjectKey::new(kind, name.0, name.1));
    }

    /// Whether `resource` holds `name` in the catalog.
    fn holds(&self, resource: Resource, name: &NamespacedName) -> bool {
        match resource {
            Resource::Pods => self.pods.contains_key(name),
            _ => self
                .keys
                .get(&resource)
                .is_some_and(|keys| keys.contains(name)),
        }
    }

    /// Rebuilds the workloads of `namespace`'s pods owned by `kind` `name`.
    fn rebuild_owned(
        &self,
        catalog: &Catalog,
        kind: OwnedKind,
        namespace: &str,
        name: &str,
        batch: &mut Batch,
    ) {
        self.rebuild_pods(
            catalog,
            namespace,
            |record| {
                record
                    .owner
                    .as_ref()
                    .is_some_and(|owner| owner.kind == kind.as_str() && owner.name == name)
            },
            batch,
        );
    }

    /// Rebuilds (annotations, owner) the workloads of `namespace`'s pods
    /// whose record passes `wanted`, from the catalog's copies.
    fn rebuild_pods(
        &self,
        catalog: &Catalog,
        namespace: &str,
        wanted: impl Fn(&PodRecord) -> bool,
        batch: &mut Batch,
    ) {
        let namespace_annotations = self.namespace_annotations(namespace);
        let pods = self
            .pods
            .range((namespace.to_string(), String::new())..)
            .take_while(|((pod_namespace, _), _)| pod_namespace == namespace);
        for ((_, name), record) in pods {
            if !wanted(record) {
                continue;
            }
            let Some(mut workload) = catalog.workload(namespace, name).cloned() else {
                continue;
            };
            if rebuild(&mut workload, record, namespace_annotations, &self.owners) {
                batch.applied.push(MeshObject::from(workload));
            }
        }
    }
}

fn owned_kind(resource: Resource) -> Option<OwnedKind> {
    match resource {
        Resource::ReplicaSets => Some(OwnedKind::ReplicaSet),
        Resource::Jobs => Some(OwnedKind::Job),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
