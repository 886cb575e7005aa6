//! One Kubernetes object rendered as a YAML document, with the identity
//! (`apiVersion`, `kind`, name, namespace) that names its file under
//! `--output DIR` and its entry in `weft uninstall`.
//!
//! Objects are k8s-openapi's typed structs serialized as they are: fields in
//! the struct's (stable) order, maps sorted, `None` omitted (no `null`s), so
//! the same input renders byte for byte the same.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// Why an object could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render {kind} {name} as YAML: {reason}")]
pub struct RenderError {
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The serializer's message.
    pub reason: String,
}

/// A rendered object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (none for cluster-scoped objects).
    pub namespace: Option<String>,
    /// The YAML document, without the `---` separator.
    pub document: String,
}

impl Manifest {
    /// Renders a typed object.
    pub fn new<T>(object: &T) -> Result<Self, RenderError>
    where
        T: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + Serialize,
    {
        let metadata = object.metadata();
        let name = metadata.name.clone().unwrap_or_default();
        let document = render(object, T::KIND, &name)?;
        Ok(Self {
            api_version: T::API_VERSION.to_string(),
            kind: T::KIND.to_string(),
            name,
            namespace: metadata.namespace.clone(),
            document,
        })
    }

    /// The object's reference alone (`apiVersion`, `kind`, name, namespace):
    /// what `kubectl delete -f` needs.
    pub fn reference(&self) -> Result<Self, RenderError> {
        let reference = ObjectReference {
            api_version: &self.api_version,
            kind: &self.kind,
            metadata: ReferenceMetadata {
                name: &self.name,
                namespace: self.namespace.as_deref(),
            },
        };
        Ok(Self {
            document: render(&reference, &self.kind, &self.name)?,
            ..self.clone()
        })
    }

    /// The file `--output DIR` writes it to: `<index>-<kind>-<name>.yaml`,
    /// the index zero-padded to `width` digits, the kind lower-cased.
    pub fn file_name(&self, index: usize, width: usize) -> String {
        format!(
            "{index:0width$}-{}-{}.yaml",
            self.kind.to_ascii_lowercase(),
            self.name
        )
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectReference<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: ReferenceMetadata<'a>,
}

#[derive(Serialize)]
struct ReferenceMetadata<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

fn render<T: Serialize>(object: &T, kind: &str, name: &str) -> Result<String, RenderError> {
    let mut document = serde_saphyr::to_string(object).map_err(|error| RenderError {
        kind: kind.to_string(),
        name: name.to_string(),
        reason: error.to_string(),
    })?;
    if !document.ends_with('\n') {
        document.push('\n');
    }
    Ok(document)
}

/// The documents as one multi-document YAML stream, each after `---`.
pub fn stream(manifests: &[Manifest]) -> String {
    let mut text = String::new();
    for manifest in manifests {
        text.push_str("---\n");
        text.push_str(&manifest.document);
    }
    text
}

/// The digits of the file-name index for `count` files (at least two).
pub fn index_width(count: usize) -> usize {
    count.saturating_sub(1).to_string().len().max(2)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

    use super::*;

    fn metadata(name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn renders_typed_objects_without_nulls() {
        let map = ConfigMap {
            metadata: metadata("roots", Some("weft")),
            data: Some([("a".to_string(), "one\ntwo\n".to_string())].into()),
            ..ConfigMap::default()
        };
        let manifest = Manifest::new(&map).unwrap();
        assert_eq!(manifest.api_version, "v1");
        assert_eq!(manifest.kind, "ConfigMap");
        assert_eq!(manifest.namespace.as_deref(), Some("weft"));
        assert!(!manifest.document.contains("null"), "{}", manifest.document);
        let back: ConfigMap = serde_saphyr::from_str(&manifest.document).unwrap();
        assert_eq!(back, map);
    }

    #[test]
    fn references_keep_only_the_identity() {
        let namespace = Namespace {
            metadata: metadata("weft", None),
            ..Namespace::default()
        };
        let reference = Manifest::new(&namespace).unwrap().reference().unwrap();
        assert_eq!(
            reference.document,
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: weft\n"
        );
    }

    #[test]
    fn file_names_table() {
        let cases = [
            (
                0,
                2,
                "ClusterRole",
                "weft-controller",
                "00-clusterrole-weft-controller.yaml",
            ),
            (
                7,
                2,
                "Secret",
                "weft-api-token",
                "07-secret-weft-api-token.yaml",
            ),
            (12, 3, "Service", "weft-dst", "012-service-weft-dst.yaml"),
        ];
        for (index, width, kind, name, expected) in cases {
            let manifest = Manifest {
                api_version: "v1".to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
                namespace: None,
                document: String::new(),
            };
            assert_eq!(manifest.file_name(index, width), expected);
        }
    }

    #[test]
    fn index_width_table() {
        for (count, width) in [(0, 2), (1, 2), (100, 2), (101, 3), (1001, 4)] {
            assert_eq!(index_width(count), width, "{count}");
        }
    }
}
