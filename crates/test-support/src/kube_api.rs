//! A test Kubernetes API server speaking the real wire format over plain
//! HTTP, for tests driving the real `kube` client (through a kubeconfig) with
//! no cluster.
//!
//! ```text
//!  test ── apply / delete / compact / close_watches / send_bookmarks ──┐
//!                                                                      ▼
//!  kube::Client ── HTTP/1.1 ──► KubeApiServer (127.0.0.1:port) ── Store: objects per resource type
//!    list (limit/continue, selectors)          ◄── (BTreeMap (namespace, name) → JSON), one global
//!    watch (NDJSON events, bookmarks, 410)         resourceVersion counter, bounded event history
//!    get / create / replace / patch / delete       per type, open watch subscriptions
//!    TokenReview, (Self)SubjectAccessReview ◄── answers the test sets
//! ```
//!
//! ```text
//! let api = KubeApiServer::start();
//! api.write_kubeconfig(&dir.join("kubeconfig"));      // or Kubeconfig::from_yaml(&api.kubeconfig_yaml())
//! api.apply(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0", "namespace": "web"}, …}));
//! api.set_token_review(|review| TokenReviewAnswer::Authenticated { username: …, audiences: review.audiences.clone() });
//! … the code under test lists and watches through kube …
//! api.delete("v1", "Pod", Some("web"), "web-0");
//! api.compact(); api.close_watches();                 // force 410 Gone → relist
//! ```
//!
//! Modules: `model` (pure: registry of kinds, paths, selectors, continue
//! tokens, patches), `discovery` (the discovery documents), `serve` (HTTP:
//! routing, rendering, watch streams); the store and the public handle here.
//!
//! Objects are `serde_json::Value`s (the server knows no Rust types), keyed by
//! (resource type, namespace, name). Every write takes the next
//! resourceVersion of one etcd-like counter, is stored with
//! `metadata.resourceVersion`, `uid` and `creationTimestamp`, and is appended
//! to its type's event history (the last [`HISTORY_LIMIT`] events), which a
//! watch resuming from an older resourceVersion replays. A resourceVersion
//! older than that history (for example after [`KubeApiServer::compact`])
//! gets the real server's answer: an `ERROR` event carrying a `410 Expired`
//! Status, after which kube's watcher lists again.
//!
//! Built-in kinds (the path of each follows from its apiVersion, plural and
//! scope: `/api/v1/namespaces/{ns}/pods`, `/apis/apps/v1/replicasets`, …):
//! - `v1`: Pod, Service, Namespace (cluster), Secret, ConfigMap,
//!   ServiceAccount, Node (cluster), Endpoints, Event;
//! - `discovery.k8s.io/v1` EndpointSlice; `apps/v1` Deployment, ReplicaSet,
//!   StatefulSet, DaemonSet; `batch/v1` Job, CronJob; `coordination.k8s.io/v1`
//!   Lease; `policy/v1` PodDisruptionBudget;
//! - cluster-scoped: `apiextensions.k8s.io/v1` CustomResourceDefinition,
//!   `rbac.authorization.k8s.io/v1` ClusterRole, ClusterRoleBinding (and the
//!   namespaced Role, RoleBinding), `admissionregistration.k8s.io/v1`
//!   Mutating/ValidatingWebhookConfiguration;
//! - `linkerd.io/v1alpha2` ServiceProfile; `split.smi-spec.io/v1alpha1..4`
//!   TrafficSplit; `policy.linkerd.io` Server (v1beta1..3), HTTPRoute
//!   (v1beta1..3), AuthorizationPolicy, MeshTLSAuthentication,
//!   NetworkAuthentication (v1alpha1); `gateway.networking.k8s.io` HTTPRoute
//!   (v1, v1beta1), GRPCRoute (v1); `weft.dev/v1alpha1` Workload.
//!
//! [`KubeApiServer::register_kind`] adds more, and so does storing a
//! CustomResourceDefinition (its group, names and versions). A kind served at
//! several versions is one resource stored once; each reader gets it with the
//! apiVersion it asked for (a CRD with `conversion: None`).
//!
//! Also served: `GET /version` (v1.33.0), `/api`, `/apis`, `/api/v1` and
//! `/apis/{group}/{version}` discovery, `POST` TokenReviews
//! ([`KubeApiServer::set_token_review`]) and (Self)SubjectAccessReviews
//! ([`KubeApiServer::set_self_subject_access_review`]). Watches honour
//! `resourceVersion` (events after it; absent or `0`: the current objects as
//! ADDED first), `allowWatchBookmarks`, `timeoutSeconds`, `sendInitialEvents`
//! (the `k8s.io/initial-events-end` bookmark), selectors (an object that
//! stops matching is DELETED). `Accept: …;as=PartialObjectMetadataList` /
//! `as=PartialObjectMetadata` answers metadata only (kube's metadata
//! watches).
//!
//! Simplified on purpose:
//! - no authentication or authorization of requests (the kubeconfig has no
//!   credentials; everything is allowed), no admission, validation,
//!   defaulting or namespace existence checks;
//! - no finalizers or graceful deletion: a delete removes at once;
//! - lists ignore `resourceVersion`/`resourceVersionMatch` and read the
//!   latest state; a continued list serves the newest objects after the last
//!   key under the first page's resourceVersion (watch resumption makes up
//!   for the difference, as with a real server); list items carry
//!   `apiVersion` and `kind` (a real server omits them for built-in kinds;
//!   clients accept both);
//! - bookmarks only when the test calls [`KubeApiServer::send_bookmarks`]
//!   (and the streaming-list end bookmark), not every minute;
//! - `PATCH` supports JSON patch, merge, strategic-merge (as a plain merge:
//!   lists are replaced, not merged by key) and apply patches (as a merge
//!   that creates; no field ownership).

mod discovery;
mod model;
mod serve;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::background::BackgroundServer;
use model::{FieldRequirement, LabelRequirement, Registry, ResourceId};

/// Events kept per resource type for watch resumption (like the watch cache
/// window of a real server).
pub const HISTORY_LIMIT: usize = 20_000;

/// What a TokenReview asked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenReviewRequest {
    /// `spec.token`.
    pub token: String,
    /// `spec.audiences`.
    pub audiences: Vec<String>,
}

/// How the server answers a TokenReview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenReviewAnswer {
    /// 201, `status.authenticated: true`, `status.user.username`,
    /// `status.audiences` (groups derived from a service-account username).
    Authenticated {
        /// `system:serviceaccount:<namespace>:<name>` for a service account.
        username: String,
        /// The audiences the token is valid for.
        audiences: Vec<String>,
    },
    /// 201, `status.error` (and `authenticated` omitted, as the real server
    /// omits a false one).
    Unauthenticated {
        /// `status.error`.
        error: String,
    },
    /// This HTTP status with a `v1 Status` body (403 when the caller may not
    /// create TokenReviews, 500, 503, …).
    HttpStatus(u16),
    /// No answer until the server stops (the client's timeout must fire).
    Hang,
}

/// The attributes of a SelfSubjectAccessReview (or SubjectAccessReview).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceAttributes {
    /// `spec.resourceAttributes.namespace`.
    pub namespace: String,
    /// `…verb` (or `spec.nonResourceAttributes.verb`).
    pub verb: String,
    /// `…group`.
    pub group: String,
    /// `…version`.
    pub version: String,
    /// `…resource`.
    pub resource: String,
    /// `…subresource`.
    pub subresource: String,
    /// `…name`.
    pub name: String,
    /// `spec.nonResourceAttributes.path` (empty for a resource request).
    pub path: String,
    /// `spec.user` of a SubjectAccessReview (empty for a SelfSubjectAccessReview).
    pub user: String,
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// `/api/v1/namespaces/default/pods`.
    pub path: String,
    /// The raw query string (`watch=true&resourceVersion=12…`), maybe empty.
    pub query: String,
}

type TokenReviewFunction = dyn Fn(&TokenReviewRequest) -> TokenReviewAnswer + Send + Sync;
type AccessReviewFunction = dyn Fn(&ResourceAttributes) -> bool + Send + Sync;

/// State shared by the test's handle and the server thread.
struct Shared {
    store: Mutex<Store>,
    token_review: Mutex<Arc<TokenReviewFunction>>,
    access_review: Mutex<Arc<AccessReviewFunction>>,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl Shared {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The test API server; stops (ending every watch) when dropped.
pub struct KubeApiServer {
    server: BackgroundServer,
    shared: Arc<Shared>,
}

impl KubeApiServer {
    /// Starts on a fresh `127.0.0.1` port, on its own thread and runtime.
    pub fn start() -> Self {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            token_review: Mutex::new(Arc::new(|_: &TokenReviewRequest| {
                TokenReviewAnswer::Unauthenticated {
                    error: "no token review answer configured".to_string(),
                }
            })),
            access_review: Mutex::new(Arc::new(|_: &ResourceAttributes| true)),
            requests: Mutex::new(Vec::new()),
        });
        let serving = shared.clone();
        let server =
            BackgroundServer::start("kube-api", move |listener| serve::serve(listener, serving));
        Self { server, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// A kubeconfig whose only cluster is this server (no authentication,
    /// context namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n    namespace: default\n\
             current-context: test\nusers:\n- name: test\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) {
        std::fs::write(path, self.kubeconfig_yaml())
            .unwrap_or_else(|error| panic!("write kubeconfig {}: {error}", path.display()));
    }

    /// Creates or replaces the object named by its apiVersion, kind,
    /// namespace (default `default` for namespaced kinds) and name; returns
    /// it as stored (resourceVersion, uid, creationTimestamp set) and emits
    /// ADDED or MODIFIED. Panics on an unknown kind or an object without a name.
    pub fn apply(&self, object: Value) -> Value {
        let mut store = self.shared.store();
        let id = store.resource_of(&object);
        match store.write(id, None, object, WriteMode::Apply, false) {
            Ok(stored) => Value::clone(&stored),
            Err(error) => panic!("apply: {error}"),
        }
    }

    /// Applies every document of a multi-document YAML text (empty documents skipped).
    pub fn apply_yaml(&self, yaml: &str) {
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(yaml).unwrap_or_else(|error| panic!("apply_yaml: {error}"));
        for document in documents.into_iter().filter(|document| !document.is_null()) {
            self.apply(document);
        }
    }

    /// Deletes an object (emitting DELETED); false when there was none.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut store = self.shared.store();
        let id = store.resource_of_kind(api_version, kind);
        store.remove(id, namespace, name).is_some()
    }

    /// The stored object, with the apiVersion asked for.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let store = self.shared.store();
        let id = store.resource_of_kind(api_version, kind);
        let object = store.object(id, namespace, name)?;
        let mut object = Value::clone(&object);
        object["apiVersion"] = Value::String(api_version.to_string());
        Some(object)
    }

    /// Every stored object of a kind (all namespaces), in (namespace, name) order.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let store = self.shared.store();
        let id = store.resource_of_kind(api_version, kind);
        store.resources[id.0]
            .objects
            .values()
            .map(|object| {
                let mut object = Value::clone(object);
                object["apiVersion"] = Value::String(api_version.to_string());
                object
            })
            .collect()
    }

    /// Serves `kind` as `plural` at `api_version` (another version of a
    /// known `(group, plural)` serves the same objects).
    pub fn register_kind(&self, api_version: &str, kind: &str, plural: &str, namespaced: bool) {
        let mut store = self.shared.store();
        store
            .registry
            .register(api_version, kind, plural, namespaced);
        store.grow();
    }

    /// Forgets every event history (like an etcd compaction): a watch or a
    /// continued list from an older resourceVersion gets `410 Expired`.
    pub fn compact(&self) {
        self.shared.store().compact();
    }

    /// Ends every open watch stream (the clients watch again from their last
    /// resourceVersion).
    pub fn close_watches(&self) {
        self.shared.store().subscriptions.clear();
    }

    /// Sends a BOOKMARK (the current resourceVersion) on every open watch that
    /// asked for bookmarks (`allowWatchBookmarks=true`).
    pub fn send_bookmarks(&self) {
        self.shared.store().send_bookmarks();
    }

    /// The latest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().revision
    }

    /// Answers TokenReviews with `answer` (default: Unauthenticated).
    pub fn set_token_review(
        &self,
        answer: impl Fn(&TokenReviewRequest) -> TokenReviewAnswer + Send + Sync + 'static,
    ) {
        *self
            .shared
            .token_review
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(answer);
    }

    /// Answers (Self)SubjectAccessReviews with `allowed(attributes)` (default: allow all).
    pub fn set_self_subject_access_review(
        &self,
        allowed: impl Fn(&ResourceAttributes) -> bool + Send + Sync + 'static,
    ) {
        *self
            .shared
            .access_review
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(allowed);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many TokenReviews were posted so far.
    pub fn token_reviews(&self) -> usize {
        self.requests()
            .iter()
            .filter(|request| {
                request.method == "POST"
                    && request.path == "/apis/authentication.k8s.io/v1/tokenreviews"
            })
            .count()
    }

    /// How many watch streams are open.
    pub fn open_watches(&self) -> usize {
        let mut store = self.shared.store();
        store
            .subscriptions
            .retain(|subscription| !subscription.sender.is_closed());
        store.subscriptions.len()
    }
}

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
type ObjectKey = (String, String);

/// One resource type's objects and recent events.
#[derive(Default)]
struct ResourceStore {
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    /// Every event after this resourceVersion is in `history`.
    history_start: u64,
}

/// One stored event.
struct Change {
    revision: u64,
    kind: ChangeKind,
    /// The object after the change (for a deletion: its last state, with the
    /// deletion's resourceVersion).
    object: Arc<Value>,
    /// The object before the change.
    previous: Option<Arc<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// Which objects a list or watch sees.
#[derive(Debug, Clone, Default)]
struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelRequirement>,
    fields: Vec<FieldRequirement>,
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        let metadata = object.get("metadata");
        if let Some(namespace) = &self.namespace {
            let object_namespace = metadata
                .and_then(|metadata| metadata.get("namespace"))
                .and_then(Value::as_str);
            if object_namespace != Some(namespace.as_str()) {
                return false;
            }
        }
        model::labels_match(
            &self.labels,
            metadata.and_then(|metadata| metadata.get("labels")),
        ) && model::fields_match(&self.fields, object)
    }

    /// The watch event a change is for this filter: an object that starts
    /// matching is ADDED, one that stops matching is DELETED.
    fn event(&self, change: &Change) -> Option<WatchItem> {
        let now = self.matches(&change.object);
        let before = change
            .previous
            .as_deref()
            .is_some_and(|previous| self.matches(previous));
        let kind = match (change.kind, before, now) {
            (ChangeKind::Deleted, _, true) => "DELETED",
            (ChangeKind::Added, _, true) => "ADDED",
            (ChangeKind::Modified, true, true) => "MODIFIED",
            (ChangeKind::Modified, false, true) => "ADDED",
            (ChangeKind::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some(WatchItem::Event {
            kind,
            object: change.object.clone(),
        })
    }
}

/// What a watch stream sends next.
enum WatchItem {
    Event {
        kind: &'static str,
        object: Arc<Value>,
    },
    Bookmark {
        revision: u64,
        initial_events_end: bool,
    },
    /// A 410 Expired Status (then the stream ends).
    Expired { requested: u64, oldest: u64 },
}

/// An open watch.
struct Subscription {
    resource: ResourceId,
    filter: Filter,
    bookmarks: bool,
    sender: mpsc::UnboundedSender<WatchItem>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchStart {
    /// `resourceVersion` absent or `0`: the current objects as ADDED first.
    Now,
    /// Events after this resourceVersion.
    After(u64),
}

/// How a write treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    /// POST: fails when it exists.
    Create,
    /// PUT: fails when it does not exist or the resourceVersion given is stale.
    Replace,
    /// Test `apply`, server-side apply: create or replace.
    Apply,
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// 404 NotFound.
    #[error("{plural} \"{name}\" not found")]
    NotFound { plural: String, name: String },
    /// 409 AlreadyExists.
    #[error("{plural} \"{name}\" already exists")]
    AlreadyExists { plural: String, name: String },
    /// 409 Conflict (stale resourceVersion).
    #[error(
        "Operation cannot be fulfilled on {plural} \"{name}\": the object has been modified; \
         please apply your changes to the latest version and try again"
    )]
    Conflict { plural: String, name: String },
    /// 400 BadRequest: no metadata, no name, namespace mismatch.
    #[error("{0}")]
    Invalid(String),
}

/// Checks an object's metadata and settles its namespace (from the path,
/// else the object, else `default`; none for cluster-scoped kinds) and name
/// (given, or from `generateName` unless replacing).
fn object_key(
    resource: &model::ResourceType,
    path_namespace: Option<&str>,
    object: &mut Value,
    mode: WriteMode,
) -> Result<ObjectKey, WriteError> {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(WriteError::Invalid("object has no metadata".to_string()));
    };
    let namespace = if resource.namespaced {
        let object_namespace = metadata.get("namespace").and_then(Value::as_str);
        if let (Some(path), Some(object)) = (path_namespace, object_namespace)
            && path != object
        {
            return Err(WriteError::Invalid(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .to_string(),
            ));
        }
        let namespace = path_namespace
            .or(object_namespace)
            .unwrap_or("default")
            .to_string();
        metadata.insert("namespace".to_string(), Value::String(namespace.clone()));
        namespace
    } else {
        metadata.remove("namespace");
        String::new()
    };
    let name = match metadata.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => match metadata.get("generateName").and_then(Value::as_str) {
            Some(prefix) if mode != WriteMode::Replace => {
                let name = format!("{prefix}{:05x}", crate::random_u32() & 0xfffff);
                metadata.insert("name".to_string(), Value::String(name.clone()));
                name
            }
            _ => {
                return Err(WriteError::Invalid(
                    "name or generateName is required".to_string(),
                ));
            }
        },
    };
    Ok((namespace, name))
}

/// Every object, event history and open watch.
struct Store {
    registry: Registry,
    /// Indexed by [`ResourceId`].
    resources: Vec<ResourceStore>,
    /// The latest resourceVersion handed out.
    revision: u64,
    /// Continue tokens from before this resourceVersion are expired.
    compacted: u64,
    subscriptions: Vec<Subscription>,
    uid_counter: u64,
}

impl Store {
    fn new() -> Self {
        let mut store = Self {
            registry: Registry::built_in(),
            resources: Vec::new(),
            // A real server never lists at resourceVersion 0.
            revision: 1,
            compacted: 0,
            subscriptions: Vec::new(),
            uid_counter: 0,
        };
        store.grow();
        store
    }

    /// One `ResourceStore` per registered type.
    fn grow(&mut self) {
        while self.resources.len() < self.registry.len() {
            self.resources.push(ResourceStore {
                history_start: self.revision,
                ..ResourceStore::default()
            });
        }
    }

    fn resource_of(&self, object: &Value) -> ResourceId {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.resource_of_kind(api_version, kind)
    }

    fn resource_of_kind(&self, api_version: &str, kind: &str) -> ResourceId {
        self.registry.by_kind(api_version, kind).unwrap_or_else(|| {
            panic!("kind {kind} at {api_version:?} is not served: register_kind it first")
        })
    }

    /// The key of an object of `id` named `name` in `namespace` (`default`
    /// when a namespaced kind gets none).
    fn key(&self, id: ResourceId, namespace: Option<&str>, name: &str) -> ObjectKey {
        let namespace = if self.registry.get(id).namespaced {
            namespace.unwrap_or("default").to_string()
        } else {
            String::new()
        };
        (namespace, name.to_string())
    }

    fn object(&self, id: ResourceId, namespace: Option<&str>, name: &str) -> Option<Arc<Value>> {
        self.resources[id.0]
            .objects
            .get(&self.key(id, namespace, name))
            .cloned()
    }

    /// A version-4-shaped UUID, unique in this server (a counter in its last part).
    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            crate::random_u32(),
            crate::random_u32() & 0xffff,
            crate::random_u32() & 0xfff,
            crate::random_u32() & 0xfff,
            self.uid_counter & 0xffff_ffff_ffff
        )
    }

    /// Stores `object` as an object of `id` (`path_namespace`: the namespace
    /// of the request path, which must agree with the object's); a dry run
    /// checks and answers the same but stores nothing.
    fn write(
        &mut self,
        id: ResourceId,
        path_namespace: Option<&str>,
        mut object: Value,
        mode: WriteMode,
        dry_run: bool,
    ) -> Result<Arc<Value>, WriteError> {
        let resource = self.registry.get(id).clone();
        let key = object_key(&resource, path_namespace, &mut object, mode)?;
        let previous = self.resources[id.0].objects.get(&key).cloned();
        let refused = |error: fn(String, String) -> WriteError| {
            Err(error(resource.plural.clone(), key.1.clone()))
        };
        match (&previous, mode) {
            (Some(_), WriteMode::Create) => {
                return refused(|plural, name| WriteError::AlreadyExists { plural, name });
            }
            (None, WriteMode::Replace) => {
                return refused(|plural, name| WriteError::NotFound { plural, name });
            }
            (Some(previous), WriteMode::Replace) => {
                let given = object["metadata"]["resourceVersion"].as_str();
                let stored = previous["metadata"]["resourceVersion"].as_str();
                if given.is_some_and(|given| !given.is_empty() && Some(given) != stored) {
                    return refused(|plural, name| WriteError::Conflict { plural, name });
                }
            }
            _ => {}
        }
        // What the server owns: resourceVersion, uid, creationTimestamp, generation.
        let revision = self.revision + 1;
        let (uid, created, generation) = match &previous {
            Some(previous) => {
                let previous_metadata = &previous["metadata"];
                let generation = previous_metadata["generation"].as_u64().unwrap_or(1);
                // The generation counts spec changes.
                let spec_changed = previous.get("spec") != object.get("spec");
                (
                    previous_metadata["uid"].clone(),
                    previous_metadata["creationTimestamp"].clone(),
                    generation + u64::from(spec_changed),
                )
            }
            None => {
                let uid = match &object["metadata"]["uid"] {
                    Value::String(uid) if !uid.is_empty() => Value::String(uid.clone()),
                    _ => Value::String(self.next_uid()),
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|elapsed| elapsed.as_secs())
                    .unwrap_or_default();
                (uid, Value::String(model::rfc3339(now)), 1)
            }
        };
        let metadata = &mut object["metadata"];
        metadata["resourceVersion"] = match (dry_run, &previous) {
            (false, _) => Value::String(revision.to_string()),
            (true, Some(previous)) => previous["metadata"]["resourceVersion"].clone(),
            (true, None) => Value::String(String::new()),
        };
        metadata["uid"] = uid;
        metadata["creationTimestamp"] = created;
        metadata["generation"] = Value::from(generation);
        if object["apiVersion"].as_str().is_none_or(str::is_empty) {
            object["apiVersion"] = Value::String(resource.api_version(&resource.versions[0]));
        }
        object["kind"] = Value::String(resource.kind.clone());
        if dry_run {
            return Ok(Arc::new(object));
        }
        self.revision = revision;
        if resource.group == "apiextensions.k8s.io" && resource.kind == "CustomResourceDefinition" {
            self.serve_definition(&object);
        }
        let object = Arc::new(object);
        self.resources[id.0].objects.insert(key, object.clone());
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(
            id,
            Change {
                revision,
                kind,
                object: object.clone(),
                previous,
            },
        );
        Ok(object)
    }

    /// Serves the kinds a CustomResourceDefinition defines.
    fn serve_definition(&mut self, definition: &Value) {
        let spec = &definition["spec"];
        let (Some(group), Some(kind), Some(plural)) = (
            spec["group"].as_str(),
            spec["names"]["kind"].as_str(),
            spec["names"]["plural"].as_str(),
        ) else {
            return;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        for version in spec["versions"].as_array().into_iter().flatten() {
            if let Some(version) = version["name"].as_str() {
                self.registry.register(
                    &model::join_api_version(group, version),
                    kind,
                    plural,
                    namespaced,
                );
            }
        }
        self.grow();
    }

    /// Removes an object, emitting DELETED with the deletion's resourceVersion.
    fn remove(
        &mut self,
        id: ResourceId,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        let key = self.key(id, namespace, name);
        let previous = self.resources[id.0].objects.remove(&key)?;
        self.revision += 1;
        let mut last = Value::clone(&previous);
        last["metadata"]["resourceVersion"] = Value::String(self.revision.to_string());
        let last = Arc::new(last);
        self.record(
            id,
            Change {
                revision: self.revision,
                kind: ChangeKind::Deleted,
                object: last.clone(),
                previous: Some(previous),
            },
        );
        Some(last)
    }

    /// Appends a change to its type's history and sends it to the watches.
    fn record(&mut self, id: ResourceId, change: Change) {
        let change = Arc::new(change);
        let resource = &mut self.resources[id.0];
        resource.history.push_back(change.clone());
        while resource.history.len() > HISTORY_LIMIT {
            if let Some(dropped) = resource.history.pop_front() {
                resource.history_start = dropped.revision;
            }
        }
        self.subscriptions.retain(|subscription| {
            if subscription.resource != id {
                return !subscription.sender.is_closed();
            }
            match subscription.filter.event(&change) {
                Some(item) => subscription.sender.send(item).is_ok(),
                None => !subscription.sender.is_closed(),
            }
        });
    }

    /// The objects of `id` passing `filter` after `start` (exclusive), at most `limit`.
    fn page(
        &self,
        id: ResourceId,
        filter: &Filter,
        start: Option<&ObjectKey>,
        limit: Option<usize>,
    ) -> (Vec<Arc<Value>>, Option<ObjectKey>, usize) {
        use std::ops::Bound;
        let objects = &self.resources[id.0].objects;
        let lower = match (start, &filter.namespace) {
            (Some(start), _) => Bound::Excluded(start.clone()),
            (None, Some(namespace)) if self.registry.get(id).namespaced => {
                Bound::Included((namespace.clone(), String::new()))
            }
            (None, _) => Bound::Unbounded,
        };
        let in_namespace = |key: &ObjectKey| match &filter.namespace {
            Some(namespace) if self.registry.get(id).namespaced => &key.0 == namespace,
            _ => true,
        };
        let mut items = Vec::new();
        let mut last = None;
        let mut remaining = 0;
        for (key, object) in objects
            .range((lower, Bound::Unbounded))
            .take_while(|(key, _)| in_namespace(key))
        {
            if !filter.matches(object) {
                continue;
            }
            if limit.is_some_and(|limit| items.len() >= limit) {
                remaining += 1;
                continue;
            }
            items.push(object.clone());
            last = Some(key.clone());
        }
        let next = (remaining > 0).then_some(last).flatten();
        (items, next, remaining)
    }

    /// Opens a watch: replays what the client missed, then follows.
    fn subscribe(
        &mut self,
        id: ResourceId,
        filter: Filter,
        start: WatchStart,
        bookmarks: bool,
        initial_events: bool,
    ) -> mpsc::UnboundedReceiver<WatchItem> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let resource = &self.resources[id.0];
        let send_initial = initial_events || start == WatchStart::Now;
        if let WatchStart::After(revision) = start
            && revision < resource.history_start
            && !send_initial
        {
            let _ = sender.send(WatchItem::Expired {
                requested: revision,
                oldest: resource.history_start + 1,
            });
            return receiver;
        }
        if send_initial {
            for object in resource
                .objects
                .values()
                .filter(|object| filter.matches(object))
            {
                let _ = sender.send(WatchItem::Event {
                    kind: "ADDED",
                    object: object.clone(),
                });
            }
            if initial_events {
                let _ = sender.send(WatchItem::Bookmark {
                    revision: self.revision,
                    initial_events_end: true,
                });
            }
        } else if let WatchStart::After(revision) = start {
            let first = resource
                .history
                .partition_point(|change| change.revision <= revision);
            for change in resource.history.range(first..) {
                if let Some(item) = filter.event(change) {
                    let _ = sender.send(item);
                }
            }
        }
        self.subscriptions.push(Subscription {
            resource: id,
            filter,
            bookmarks,
            sender,
        });
        receiver
    }

    fn send_bookmarks(&mut self) {
        let revision = self.revision;
        self.subscriptions.retain(|subscription| {
            !subscription.bookmarks
                || subscription
                    .sender
                    .send(WatchItem::Bookmark {
                        revision,
                        initial_events_end: false,
                    })
                    .is_ok()
        });
    }

    fn compact(&mut self) {
        self.compacted = self.revision;
        for resource in &mut self.resources {
            resource.history.clear();
            resource.history_start = self.revision;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labelled(app: &str) -> Arc<Value> {
        Arc::new(json!({"metadata": {"name": "a", "namespace": "web", "labels": {"app": app}}}))
    }

    #[test]
    fn selector_watches_see_objects_enter_and_leave() {
        let filter = Filter {
            labels: model::parse_label_selector("app=web").unwrap(),
            ..Filter::default()
        };
        let cases = [
            (ChangeKind::Added, None, "web", Some("ADDED")),
            (ChangeKind::Added, None, "db", None),
            (ChangeKind::Modified, Some("web"), "web", Some("MODIFIED")),
            (ChangeKind::Modified, Some("db"), "web", Some("ADDED")),
            (ChangeKind::Modified, Some("web"), "db", Some("DELETED")),
            (ChangeKind::Modified, Some("db"), "db", None),
            (ChangeKind::Deleted, Some("web"), "web", Some("DELETED")),
            (ChangeKind::Deleted, Some("db"), "db", None),
        ];
        for (kind, before, after, expected) in cases {
            let change = Change {
                revision: 2,
                kind,
                object: labelled(after),
                previous: before.map(labelled),
            };
            let seen = filter.event(&change).map(|item| match item {
                WatchItem::Event { kind, .. } => kind,
                _ => "other",
            });
            assert_eq!(seen, expected, "{kind:?} {before:?} → {after}");
        }
    }

    #[test]
    fn watches_resume_from_history_until_it_is_compacted() {
        let mut store = Store::new();
        let pods = store.registry.by_kind("v1", "Pod").unwrap();
        let write = |store: &mut Store, name: &str| {
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}});
            store
                .write(pods, None, pod, WriteMode::Apply, false)
                .unwrap();
        };
        write(&mut store, "a");
        let listed = store.revision;
        write(&mut store, "b");
        let kinds = |receiver: &mut mpsc::UnboundedReceiver<WatchItem>| {
            std::iter::from_fn(|| receiver.try_recv().ok())
                .map(|item| match item {
                    WatchItem::Event { kind, object } => {
                        format!("{kind} {}", object["metadata"]["name"].as_str().unwrap())
                    }
                    WatchItem::Bookmark { .. } => "BOOKMARK".to_string(),
                    WatchItem::Expired { .. } => "EXPIRED".to_string(),
                })
                .collect::<Vec<_>>()
        };
        let after = WatchStart::After(listed);
        let mut resumed = store.subscribe(pods, Filter::default(), after, true, false);
        assert_eq!(kinds(&mut resumed), ["ADDED b"]);
        let mut fresh = store.subscribe(pods, Filter::default(), WatchStart::Now, false, false);
        assert_eq!(kinds(&mut fresh), ["ADDED a", "ADDED b"]);
        store.remove(pods, Some("default"), "a");
        store.send_bookmarks();
        assert_eq!(kinds(&mut resumed), ["DELETED a", "BOOKMARK"]);
        assert_eq!(kinds(&mut fresh), ["DELETED a"]);
        store.compact();
        let mut expired = store.subscribe(pods, Filter::default(), after, true, false);
        assert_eq!(kinds(&mut expired), ["EXPIRED"]);
        let now = WatchStart::After(store.revision);
        let mut current = store.subscribe(pods, Filter::default(), now, true, false);
        assert!(kinds(&mut current).is_empty());
    }
}
