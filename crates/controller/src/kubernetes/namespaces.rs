//! The namespaces' annotations the proxy injector reads (`weft.io/inject`
//! and the `config.*` ones), shared between the Kubernetes source's index,
//! which writes them as Namespaces are watched, and the injector, which
//! reads one namespace per review.
//!
//! Lean: only namespaces with such annotations are held, and each map is
//! the index's own (an `Arc`), not a copy. Without `--kubernetes` (a mesh
//! file holds no Namespaces) the handle stays empty.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

/// Mesh annotations (`config.*`, and `weft.io/inject` for a namespace).
pub type Annotations = BTreeMap<String, String>;

/// Annotated namespaces → their annotations; cheap to clone, every clone
/// sees the same map.
#[derive(Debug, Clone, Default)]
pub struct NamespaceAnnotations(Arc<RwLock<BTreeMap<String, Arc<Annotations>>>>);

impl NamespaceAnnotations {
    /// `namespace`'s annotations; empty when it has none or is unknown.
    pub fn get(&self, namespace: &str) -> Annotations {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(namespace)
            .map(|annotations| Annotations::clone(annotations))
            .unwrap_or_default()
    }

    /// How many namespaces are held (those with annotations).
    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no namespace is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `namespace` now has `annotations` (forgotten when empty).
    pub(crate) fn set(&self, namespace: &str, annotations: Arc<Annotations>) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if annotations.is_empty() {
            map.remove(namespace);
        } else {
            map.insert(namespace.to_string(), annotations);
        }
    }

    /// `namespace` is gone.
    pub(crate) fn remove(&self, namespace: &str) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(namespace);
    }

    /// A relist: exactly the annotated ones of `namespaces`.
    pub(crate) fn replace(&self, namespaces: &BTreeMap<String, Arc<Annotations>>) {
        let fresh = namespaces
            .iter()
            .filter(|(_, annotations)| !annotations.is_empty())
            .map(|(name, annotations)| (name.clone(), Arc::clone(annotations)))
            .collect();
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> Arc<Annotations> {
        Arc::new(
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        )
    }

    #[test]
    fn holds_only_annotated_namespaces() {
        let shared = NamespaceAnnotations::default();
        assert!(shared.get("shop").is_empty());
        shared.set("shop", annotations(&[("weft.io/inject", "enabled")]));
        shared.set("plain", annotations(&[]));
        assert_eq!(shared.len(), 1);
        assert_eq!(shared.get("shop")["weft.io/inject"], "enabled");
        shared.set("shop", annotations(&[]));
        assert!(shared.is_empty());
        let relisted = BTreeMap::from([
            (
                "a".to_string(),
                annotations(&[("config.weft.io/proxy-log-level", "debug")]),
            ),
            ("b".to_string(), annotations(&[])),
        ]);
        shared.replace(&relisted);
        assert_eq!(shared.len(), 1);
        shared.remove("a");
        assert!(shared.get("a").is_empty());
    }
}
