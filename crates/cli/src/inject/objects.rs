//! One object through `weft inject` or `weft uninject`: find its pod
//! template ([`templates`]), ask `weft_core::inject` for the patch, apply it
//! to the template, and say what happened ([`Outcome`]).
//!
//! ```text
//! object ─► pod_location ─► none: NotWorkload (unchanged)
//!            └► template ─► weft.io/inject disabled (or unknown): Disabled (unchanged)
//!                 └► force `weft.io/inject: enabled` ─► inject() ─► Injected | Skipped (patched)
//!                                                                 | AlreadyInjected (unchanged)
//! ```
//!
//! Offline there is no namespace, so the template's own `weft.io/inject`
//! decides alone: absent means `enabled` (written onto the template, so the
//! webhook, if any, agrees), `ingress` is kept, `disabled` is respected.
//! `weft uninject` removes what the injector added and the `enabled` that
//! `weft inject` wrote; `ingress` and `disabled` are the user's and stay.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use weft_core::cluster::{INJECT_ANNOTATION, INJECT_SKIPPED_ANNOTATION};
use weft_core::inject::{self, Decision, InjectionConfig, PatchError};

use super::documents::text_at;
use super::templates;

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a workload: passed through unchanged.
    NotWorkload,
    /// The proxy was added.
    Injected,
    /// The template already has a weft or Linkerd proxy: unchanged.
    AlreadyInjected,
    /// The template's `weft.io/inject` says no (the reason): unchanged.
    Disabled(String),
    /// The injector could not inject (the reason, also written into
    /// `weft.io/inject-skipped` on the template).
    Skipped(String),
    /// The injector did not inject, for no reason it gave: unchanged.
    NotInjected,
    /// `weft uninject` removed the proxy.
    Uninjected,
    /// `weft uninject` found no weft proxy: unchanged.
    NoProxy,
}

/// Why an object could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// A workload without a pod template (or a template without `spec`).
    #[error("{kind} {name:?} has no pod template (no object at {pointer}/spec)")]
    NoPodTemplate {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
        /// Where the template was looked for.
        pointer: &'static str,
    },
    /// The patch did not apply to the template.
    #[error("{kind} {name:?}: {source}")]
    Patch {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
        /// What went wrong.
        source: PatchError,
    },
}

/// The value of `weft.io/inject` that `weft inject` writes.
const ENABLED: &str = "enabled";

/// Injects the proxy into `object`'s pod template, in place.
pub fn inject_object(object: &mut Value, config: &InjectionConfig) -> Result<Outcome, ObjectError> {
    let Some((pointer, template)) = pod_template(object)? else {
        return Ok(Outcome::NotWorkload);
    };
    let mut patched = template.clone();
    match annotation(&patched, INJECT_ANNOTATION) {
        None => set_annotation(&mut patched, INJECT_ANNOTATION, ENABLED),
        Some(Value::String(value)) if value == ENABLED || value == "ingress" => {}
        Some(Value::String(value)) if value == "disabled" => {
            return Ok(Outcome::Disabled(format!("{INJECT_ANNOTATION}: disabled")));
        }
        Some(other) => {
            return Ok(Outcome::Disabled(format!(
                "{INJECT_ANNOTATION}: {other} is not enabled, ingress or disabled"
            )));
        }
    }
    let forced = BTreeMap::from([(INJECT_ANNOTATION.to_string(), ENABLED.to_string())]);
    let injection = inject::inject(&patched, &forced, config);
    // The injector writes the same words into `weft.io/inject-skipped`.
    let outcome = match injection.decision {
        Decision::Injected => Outcome::Injected,
        Decision::Skipped(reason) => Outcome::Skipped(reason.to_string()),
        Decision::AlreadyInjected => return Ok(Outcome::AlreadyInjected),
        Decision::NotRequested => return Ok(Outcome::NotInjected),
    };
    inject::apply(&mut patched, &injection.patch).map_err(|source| patch_error(object, source))?;
    replace(object, pointer, patched);
    Ok(outcome)
}

/// Removes the proxy from `object`'s pod template, in place.
pub fn uninject_object(object: &mut Value) -> Result<Outcome, ObjectError> {
    let Some((pointer, template)) = pod_template(object)? else {
        return Ok(Outcome::NotWorkload);
    };
    let mut patched = template.clone();
    let patch = inject::uninject(&patched);
    inject::apply(&mut patched, &patch).map_err(|source| patch_error(object, source))?;
    let mut changed = !patch.is_empty();
    if annotation(&patched, INJECT_ANNOTATION).and_then(Value::as_str) == Some(ENABLED) {
        changed |= remove_annotation(&mut patched, INJECT_ANNOTATION);
    }
    changed |= remove_annotation(&mut patched, INJECT_SKIPPED_ANNOTATION);
    if !changed {
        return Ok(Outcome::NoProxy);
    }
    drop_emptied(&mut patched, pointer.is_empty());
    replace(object, pointer, patched);
    Ok(Outcome::Uninjected)
}

/// The pointer and a copy of the pod template; `None` for an object that is
/// not a workload.
fn pod_template(object: &Value) -> Result<Option<(&'static str, Value)>, ObjectError> {
    let api_version = text_at(object, "/apiVersion");
    let kind = text_at(object, "/kind");
    let Some(location) = templates::pod_location(&api_version, &kind) else {
        return Ok(None);
    };
    let template = object
        .pointer(location.pointer)
        .filter(|template| template.get("spec").is_some_and(Value::is_object))
        .ok_or_else(|| ObjectError::NoPodTemplate {
            kind,
            name: object_name(object),
            pointer: location.pointer,
        })?;
    Ok(Some((location.pointer, template.clone())))
}

/// An object's name (its `generateName` if it has none).
pub fn object_name(object: &Value) -> String {
    let name = text_at(object, "/metadata/name");
    if name.is_empty() {
        text_at(object, "/metadata/generateName")
    } else {
        name
    }
}

fn patch_error(object: &Value, source: PatchError) -> ObjectError {
    ObjectError::Patch {
        kind: text_at(object, "/kind"),
        name: object_name(object),
        source,
    }
}

fn replace(object: &mut Value, pointer: &str, template: Value) {
    if let Some(slot) = object.pointer_mut(pointer) {
        *slot = template;
    }
}

fn annotation<'a>(template: &'a Value, name: &str) -> Option<&'a Value> {
    template.get("metadata")?.get("annotations")?.get(name)
}

/// Sets an annotation, making `metadata` and `annotations` if missing (or
/// not maps).
fn set_annotation(template: &mut Value, name: &str, value: &str) {
    let Some(template) = template.as_object_mut() else {
        return;
    };
    let metadata = map_entry(template, "metadata");
    let annotations = map_entry(metadata, "annotations");
    annotations.insert(name.to_string(), Value::String(value.to_string()));
}

fn map_entry<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(inner) => inner,
        _ => unreachable!("made a map just above"),
    }
}

/// Removes an annotation; whether there was one.
fn remove_annotation(template: &mut Value, name: &str) -> bool {
    template
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        .is_some_and(|annotations| annotations.remove(name).is_some())
}

/// After uninjecting: drops the maps and lists the injection emptied
/// (`annotations: {}` means no annotations), and an emptied template
/// `metadata` (a Pod's keeps its name, so never empties).
fn drop_emptied(template: &mut Value, is_pod: bool) {
    let Some(template) = template.as_object_mut() else {
        return;
    };
    let is_empty = |value: &Value| match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    };
    if let Some(Value::Object(metadata)) = template.get_mut("metadata") {
        metadata
            .retain(|key, value| !((key == "annotations" || key == "labels") && is_empty(value)));
    }
    if !is_pod && template.get("metadata").is_some_and(is_empty) {
        template.remove("metadata");
    }
    if let Some(Value::Object(spec)) = template.get_mut("spec") {
        spec.retain(|key, value| {
            !((key == "initContainers" || key == "volumes") && is_empty(value))
        });
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> InjectionConfig {
        InjectionConfig::new("anchors")
    }

    #[test]
    fn objects_without_templates_pass_through() {
        let mut service =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
        let before = service.clone();
        assert_eq!(
            inject_object(&mut service, &config()).unwrap(),
            Outcome::NotWorkload
        );
        assert_eq!(uninject_object(&mut service).unwrap(), Outcome::NotWorkload);
        assert_eq!(service, before);
    }

    #[test]
    fn workloads_without_templates_are_errors() {
        let cases = [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {}}),
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup"},
                   "spec": {"jobTemplate": {"spec": {"template": {"metadata": {}}}}}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
        ];
        for mut object in cases {
            let error = inject_object(&mut object, &config())
                .unwrap_err()
                .to_string();
            assert!(error.contains("has no pod template"), "{error}");
            assert!(
                error.contains(&format!("{:?}", object_name(&object))),
                "{error}"
            );
            assert!(uninject_object(&mut object).is_err());
        }
    }

    #[test]
    fn disabled_and_unknown_inject_values_leave_the_object_alone() {
        let cases = [
            (json!("disabled"), "weft.io/inject: disabled"),
            (json!("maybe"), "\"maybe\" is not enabled"),
            (json!(true), "true is not enabled"),
        ];
        for (value, reason) in cases {
            let mut object = json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"template": {"metadata": {"annotations": {"weft.io/inject": value}},
                                      "spec": {"containers": []}}},
            });
            let before = object.clone();
            match inject_object(&mut object, &config()).unwrap() {
                Outcome::Disabled(text) => assert!(text.contains(reason), "{text}"),
                other => panic!("{other:?}"),
            }
            assert_eq!(object, before);
        }
    }

    #[test]
    fn set_annotation_makes_the_maps_it_needs() {
        let mut template = json!({"spec": {}});
        set_annotation(&mut template, "a", "b");
        assert_eq!(
            template,
            json!({"metadata": {"annotations": {"a": "b"}}, "spec": {}})
        );
        let mut template = json!({"metadata": {"annotations": null}, "spec": {}});
        set_annotation(&mut template, "a", "b");
        assert_eq!(template["metadata"]["annotations"], json!({"a": "b"}));
    }

    #[test]
    fn uninject_removes_the_enabled_it_wrote_and_what_emptied() {
        let mut object = json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
            "spec": {"template": {"metadata": {"annotations": {"weft.io/inject": "enabled",
                                                               "weft.io/inject-skipped": "why"}},
                                  "spec": {"containers": [], "initContainers": []}}},
        });
        assert_eq!(uninject_object(&mut object).unwrap(), Outcome::Uninjected);
        assert_eq!(
            object["spec"]["template"],
            json!({"spec": {"containers": []}})
        );
        // The user's own values stay, and nothing else is touched.
        for value in ["ingress", "disabled"] {
            let mut object = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "annotations": {"weft.io/inject": value}, "labels": {}},
                "spec": {"containers": [], "volumes": []},
            });
            let before = object.clone();
            assert_eq!(uninject_object(&mut object).unwrap(), Outcome::NoProxy);
            assert_eq!(object, before);
        }
    }

    #[test]
    fn ingress_is_kept_and_injected_inbound_only() {
        let mut object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "edge"},
            "spec": {"template": {"metadata": {"annotations": {"weft.io/inject": "ingress"}},
                                  "spec": {"containers": [{"name": "edge", "image": "e"}]}}},
        });
        let before = object.clone();
        assert_eq!(
            inject_object(&mut object, &config()).unwrap(),
            Outcome::Injected
        );
        let template = &object["spec"]["template"];
        assert_eq!(
            template["metadata"]["annotations"]["weft.io/inject"],
            "ingress"
        );
        let init = &template["spec"]["initContainers"][0];
        assert_eq!(init["name"], "weft-init");
        assert!(
            init["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--inbound-only")),
            "{init}"
        );
        assert_eq!(uninject_object(&mut object).unwrap(), Outcome::Uninjected);
        assert_eq!(object, before);
    }
}
