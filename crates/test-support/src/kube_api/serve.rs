//! The HTTP side of the test API server: routes a request (discovery, a
//! resource collection or object, a review), reads or writes the store, and
//! renders what a real kube-apiserver sends: typed lists with
//! `metadata.resourceVersion`/`continue`, NDJSON watch streams, `v1 Status`
//! errors, PartialObjectMetadata when the `Accept` header asks for it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::discovery;
use super::model::{self, ContinueToken, ResourceId, ResourcePath, Route};
use super::{
    Filter, RecordedRequest, ResourceAttributes, Shared, TokenReviewAnswer, TokenReviewRequest,
    WatchItem, WatchStart, WriteError, WriteMode,
};

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Accepts connections until the server stops (HTTP/1.1 and h2c).
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, request).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One request, in order: record it, read its body, route it.
async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query_text = request.uri().query().unwrap_or_default().to_string();
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query_text.clone(),
        });
    let header = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let accept = header(header::ACCEPT);
    let metadata_only = accept.contains("as=PartialObjectMetadata");
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let content_type = header(header::CONTENT_TYPE);
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return failure(400, &format!("reading the body: {error}")),
    };
    let call = Call {
        method,
        query: model::parse_query(&query_text),
        body,
        content_type,
        metadata_only,
    };
    match model::parse_path(&path) {
        Route::Version => json_response(StatusCode::OK, &discovery::version()),
        Route::Health => text_response(StatusCode::OK, "ok"),
        Route::CoreVersions if aggregated => json_response(
            StatusCode::OK,
            &discovery::aggregated(&shared.store().registry, true),
        ),
        Route::CoreVersions => json_response(StatusCode::OK, &discovery::core_versions()),
        Route::Groups if aggregated => json_response(
            StatusCode::OK,
            &discovery::aggregated(&shared.store().registry, false),
        ),
        Route::Groups => {
            json_response(StatusCode::OK, &discovery::groups(&shared.store().registry))
        }
        Route::Resources { group, version } => {
            let resources = discovery::resources(&shared.store().registry, &group, &version);
            match resources {
                Some(list) => json_response(StatusCode::OK, &list),
                None => not_found_path(),
            }
        }
        Route::Resource(path) => resource(shared, path, call).await,
        Route::Unknown => not_found_path(),
    }
}

/// What a resource request carries besides its path.
struct Call {
    method: Method,
    query: BTreeMap<String, String>,
    body: Bytes,
    content_type: String,
    metadata_only: bool,
}

impl Call {
    /// `dryRun=All` (in the query, or a DeleteOptions body's `dryRun: [All]`):
    /// check and answer, store nothing.
    fn dry_run(&self) -> bool {
        let in_body = || {
            serde_json::from_slice::<Value>(&self.body)
                .ok()
                .and_then(|options| options.get("dryRun")?.as_array().map(|all| !all.is_empty()))
                .unwrap_or(false)
        };
        self.query.contains_key("dryRun") || (self.method == Method::DELETE && in_body())
    }
}

/// A collection or object request.
async fn resource(shared: &Shared, path: ResourcePath, call: Call) -> Response<Body> {
    let review = (path.group.as_str(), path.plural.as_str());
    if call.method == Method::POST && path.name.is_none() {
        match review {
            ("authentication.k8s.io", "tokenreviews") => {
                return token_review(shared, &call.body).await;
            }
            ("authorization.k8s.io", "selfsubjectaccessreviews" | "subjectaccessreviews") => {
                return access_review(shared, &path.plural, &call.body);
            }
            _ => {}
        }
    }
    let (id, kind, namespaced) = {
        let store = shared.store();
        let Some(id) = store
            .registry
            .by_path(&path.group, &path.version, &path.plural)
        else {
            return not_found_path();
        };
        let resource = store.registry.get(id);
        (id, resource.kind.clone(), resource.namespaced)
    };
    if path.namespace.is_some() && !namespaced {
        return not_found_path();
    }
    let render = Render {
        api_version: model::join_api_version(&path.group, &path.version),
        kind,
        metadata_only: call.metadata_only,
    };
    let target = Target { id, path, render };
    let watch = matches!(
        call.query.get("watch").map(String::as_str),
        Some("true" | "1")
    );
    match (&call.method, &target.path.name) {
        (&Method::GET, None) if watch => watch_stream(shared, &target, &call.query),
        (&Method::GET, None) => list(shared, &target, &call.query),
        (&Method::GET, Some(name)) => match shared.store().object(id, target.namespace(), name) {
            Some(object) => target.render.object_response(StatusCode::OK, &object),
            None => target.not_found(name),
        },
        (&Method::POST, None) => write(shared, &target, &call, WriteMode::Create),
        (&Method::PUT, Some(_)) => write(shared, &target, &call, WriteMode::Replace),
        (&Method::PATCH, Some(_)) => patch(shared, &target, &call),
        (&Method::DELETE, Some(name)) => {
            let removed = if call.dry_run() {
                shared.store().object(id, target.namespace(), name)
            } else {
                shared.store().remove(id, target.namespace(), name)
            };
            match removed {
                Some(object) => target.render.object_response(StatusCode::OK, &object),
                None => target.not_found(name),
            }
        }
        (&Method::DELETE, None) => delete_collection(shared, &target, &call),
        _ => failure(
            405,
            "the server does not allow this method on the requested resource",
        ),
    }
}

/// A resolved resource request.
struct Target {
    id: ResourceId,
    path: ResourcePath,
    render: Render,
}

impl Target {
    fn not_found(&self, name: &str) -> Response<Body> {
        let message = format!("{} \"{name}\" not found", self.qualified_plural());
        status_response(
            404,
            "NotFound",
            &message,
            Some(json!({"name": name, "group": self.path.group, "kind": self.path.plural})),
        )
    }

    /// `pods`, `deployments.apps`.
    fn qualified_plural(&self) -> String {
        if self.path.group.is_empty() {
            self.path.plural.clone()
        } else {
            format!("{}.{}", self.path.plural, self.path.group)
        }
    }

    fn write_error(&self, error: &WriteError) -> Response<Body> {
        let (code, reason, name) = match error {
            WriteError::NotFound { name, .. } => (404, "NotFound", Some(name)),
            WriteError::AlreadyExists { name, .. } => (409, "AlreadyExists", Some(name)),
            WriteError::Conflict { name, .. } => (409, "Conflict", Some(name)),
            WriteError::Invalid(_) => (400, "BadRequest", None),
        };
        let message = error
            .to_string()
            .replacen(&self.path.plural, &self.qualified_plural(), 1);
        let details = name
            .map(|name| json!({"name": name, "group": self.path.group, "kind": self.path.plural}));
        status_response(code, reason, &message, details)
    }

    /// The namespace in the path (none in a cluster-wide path).
    fn namespace(&self) -> Option<&str> {
        self.path.namespace.as_deref()
    }
}

/// The filter of a list or watch: the path's namespace and the selectors.
fn filter(target: &Target, query: &BTreeMap<String, String>) -> Result<Filter, String> {
    let labels =
        model::parse_label_selector(query.get("labelSelector").map_or("", String::as_str))?;
    let fields =
        model::parse_field_selector(query.get("fieldSelector").map_or("", String::as_str))?;
    Ok(Filter {
        namespace: target.path.namespace.clone(),
        labels,
        fields,
    })
}

/// GET on a collection: one page (`limit`, `continue`).
fn list(shared: &Shared, target: &Target, query: &BTreeMap<String, String>) -> Response<Body> {
    let filter = match filter(target, query) {
        Ok(filter) => filter,
        Err(message) => return failure(400, &message),
    };
    let limit = query
        .get("limit")
        .and_then(|limit| limit.parse::<usize>().ok())
        .filter(|limit| *limit > 0);
    let token = match query.get("continue").filter(|token| !token.is_empty()) {
        None => None,
        Some(token) => match ContinueToken::decode(token) {
            Some(token) => Some(token),
            None => return failure(400, "continue key is not valid"),
        },
    };
    let (items, next, remaining, revision) = {
        let store = shared.store();
        if token
            .as_ref()
            .is_some_and(|token| token.revision < store.compacted)
        {
            return status_response(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter.",
                None,
            );
        }
        let start = token
            .as_ref()
            .map(|token| (token.namespace.clone(), token.name.clone()));
        let (items, next, remaining) = store.page(target.id, &filter, start.as_ref(), limit);
        let revision = token
            .as_ref()
            .map_or(store.revision, |token| token.revision);
        (items, next, remaining, revision)
    };
    let continue_token = next.map(|(namespace, name)| {
        ContinueToken {
            revision,
            namespace,
            name,
        }
        .encode()
    });
    let body = target
        .render
        .list(&items, revision, continue_token, remaining);
    bytes_response(StatusCode::OK, Bytes::from(body))
}

/// DELETE on a collection: removes what the selectors match, answers the list.
fn delete_collection(shared: &Shared, target: &Target, call: &Call) -> Response<Body> {
    let filter = match filter(target, &call.query) {
        Ok(filter) => filter,
        Err(message) => return failure(400, &message),
    };
    let mut store = shared.store();
    let (items, _, _) = store.page(target.id, &filter, None, None);
    let removed: Vec<_> = if call.dry_run() {
        items
    } else {
        items
            .iter()
            .filter_map(|object| {
                let metadata = &object["metadata"];
                let name = metadata["name"].as_str()?;
                store.remove(target.id, metadata["namespace"].as_str(), name)
            })
            .collect()
    };
    let revision = store.revision;
    drop(store);
    let list = target.render.list(&removed, revision, None, 0);
    bytes_response(StatusCode::OK, Bytes::from(list))
}

/// GET with `watch=true`: an NDJSON event stream.
fn watch_stream(
    shared: &Shared,
    target: &Target,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let filter = match filter(target, query) {
        Ok(filter) => filter,
        Err(message) => return failure(400, &message),
    };
    let start = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => WatchStart::Now,
        Some(text) => match text.parse::<u64>() {
            Ok(revision) => WatchStart::After(revision),
            Err(_) => return failure(400, &format!("resourceVersion: Invalid value: {text:?}")),
        },
    };
    let flag = |name: &str| {
        query
            .get(name)
            .is_some_and(|value| value == "true" || value == "1")
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .map(Duration::from_secs);
    let receiver = shared.store().subscribe(
        target.id,
        filter,
        start,
        flag("allowWatchBookmarks"),
        flag("sendInitialEvents"),
    );
    let stream = WatchStream {
        receiver,
        render: Render {
            api_version: target.render.api_version.clone(),
            kind: target.render.kind.clone(),
            metadata_only: target.render.metadata_only,
        },
        deadline: timeout.map(|timeout| tokio::time::Instant::now() + timeout),
        finished: false,
    };
    let frames = futures::stream::unfold(stream, |mut stream| async move {
        let line = stream.next_line().await?;
        Some((Ok::<_, Infallible>(Frame::data(line)), stream))
    });
    let mut response = Response::new(UnsyncBoxBody::new(StreamBody::new(frames)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The state of one watch response body.
struct WatchStream {
    receiver: mpsc::UnboundedReceiver<WatchItem>,
    render: Render,
    deadline: Option<tokio::time::Instant>,
    finished: bool,
}

impl WatchStream {
    /// The next NDJSON line; `None` ends the stream (closed by the test,
    /// `timeoutSeconds` passed, or after a 410).
    async fn next_line(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        let item = match self.deadline {
            Some(deadline) => tokio::select! {
                item = self.receiver.recv() => item?,
                () = tokio::time::sleep_until(deadline) => return None,
            },
            None => self.receiver.recv().await?,
        };
        if matches!(item, WatchItem::Expired { .. }) {
            self.finished = true;
        }
        Some(Bytes::from(self.render.watch_line(&item)))
    }
}

/// POST (create) or PUT (replace, or `/status`: the status only).
fn write(shared: &Shared, target: &Target, call: &Call, mode: WriteMode) -> Response<Body> {
    let mut object: Value = match serde_json::from_slice(&call.body) {
        Ok(object) => object,
        Err(error) => return failure(400, &format!("the body is not a JSON object: {error}")),
    };
    if let Some(name) = &target.path.name
        && object["metadata"]["name"]
            .as_str()
            .is_some_and(|given| given != name)
    {
        return failure(
            400,
            "the name of the object does not match the name on the URL",
        );
    }
    let mut store = shared.store();
    if let (Some(name), Some("status")) = (&target.path.name, target.path.subresource.as_deref()) {
        let Some(current) = store.object(target.id, target.namespace(), name) else {
            return target.not_found(name);
        };
        let mut updated = Value::clone(&current);
        updated["status"] = object.get("status").cloned().unwrap_or(Value::Null);
        if let Some(version) = object["metadata"].get("resourceVersion") {
            updated["metadata"]["resourceVersion"] = version.clone();
        }
        object = updated;
    }
    let created = mode == WriteMode::Create;
    match store.write(target.id, target.namespace(), object, mode, call.dry_run()) {
        Ok(stored) => {
            drop(store);
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            target.render.object_response(code, &stored)
        }
        Err(error) => target.write_error(&error),
    }
}

/// PATCH: JSON patch, merge, strategic merge (as a merge) or apply (a merge
/// that creates).
fn patch(shared: &Shared, target: &Target, call: &Call) -> Response<Body> {
    let Some(name) = &target.path.name else {
        return failure(405, "PATCH needs an object");
    };
    let kind = PatchKind::of(&call.content_type);
    let Some(kind) = kind else {
        let message = format!(
            "the test API server does not support the patch type {:?}",
            call.content_type
        );
        return status_response(415, "UnsupportedMediaType", &message, None);
    };
    let patch: Value = match serde_json::from_slice(&call.body) {
        Ok(patch) => patch,
        Err(_) => match serde_saphyr::from_slice(&call.body) {
            Ok(patch) => patch,
            Err(error) => return failure(400, &format!("the patch is not JSON or YAML: {error}")),
        },
    };
    let status_only = target.path.subresource.as_deref() == Some("status");
    let mut store = shared.store();
    let (object, mode, code) = match store.object(target.id, target.namespace(), name) {
        Some(current) => {
            let mut object = Value::clone(&current);
            if kind == PatchKind::Json {
                if let Err(message) = model::json_patch(&mut object, &patch) {
                    return status_response(422, "Invalid", &message, None);
                }
            } else {
                model::merge_patch(&mut object, &patch);
            }
            if status_only {
                // Only the status moves on the status subresource.
                let status = object.get("status").cloned().unwrap_or(Value::Null);
                object = Value::clone(&current);
                object["status"] = status;
            }
            (object, WriteMode::Replace, StatusCode::OK)
        }
        None if kind == PatchKind::Apply => {
            let mut object = patch;
            object["metadata"]["name"] = Value::String(name.clone());
            (object, WriteMode::Create, StatusCode::CREATED)
        }
        None => return target.not_found(name),
    };
    match store.write(target.id, target.namespace(), object, mode, call.dry_run()) {
        Ok(stored) => {
            drop(store);
            target.render.object_response(code, &stored)
        }
        Err(error) => target.write_error(&error),
    }
}

/// The patch types the server applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    /// RFC 6902.
    Json,
    /// RFC 7386 (strategic merge patches too, without their list keys).
    Merge,
    /// Server-side apply, as a merge that creates.
    Apply,
}

impl PatchKind {
    fn of(content_type: &str) -> Option<Self> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        match media_type {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                Some(Self::Merge)
            }
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// POST tokenreviews: the answer the test configured.
async fn token_review(shared: &Shared, body: &[u8]) -> Response<Body> {
    let review: Value = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(error) => return failure(400, &format!("the body is not a TokenReview: {error}")),
    };
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let request = TokenReviewRequest {
        token: spec["token"].as_str().unwrap_or_default().to_string(),
        audiences: strings(&spec["audiences"]),
    };
    let answer = shared
        .token_review
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let status = match answer(&request) {
        TokenReviewAnswer::Authenticated {
            username,
            audiences,
        } => {
            let mut groups = Vec::new();
            if let Some(account) = username.strip_prefix("system:serviceaccount:")
                && let Some((namespace, _)) = account.split_once(':')
            {
                groups.push("system:serviceaccounts".to_string());
                groups.push(format!("system:serviceaccounts:{namespace}"));
            }
            groups.push("system:authenticated".to_string());
            json!({
                "authenticated": true,
                "user": {"username": username, "groups": groups},
                "audiences": audiences,
            })
        }
        TokenReviewAnswer::Unauthenticated { error } => json!({"user": {}, "error": error}),
        TokenReviewAnswer::HttpStatus(code) => {
            let message = format!(
                "tokenreviews.authentication.k8s.io is {}",
                model::status_reason(code).to_lowercase()
            );
            return status_response(code, model::status_reason(code), &message, None);
        }
        TokenReviewAnswer::Hang => std::future::pending().await,
    };
    let response = json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    });
    json_response(StatusCode::CREATED, &response)
}

/// POST (self)subjectaccessreviews: `allowed` from the test's function.
fn access_review(shared: &Shared, plural: &str, body: &[u8]) -> Response<Body> {
    let review: Value = match serde_json::from_slice(body) {
        Ok(review) => review,
        Err(error) => return failure(400, &format!("the body is not an access review: {error}")),
    };
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let resource = &spec["resourceAttributes"];
    let non_resource = &spec["nonResourceAttributes"];
    let attributes = ResourceAttributes {
        namespace: text(&resource["namespace"]),
        verb: text(resource.get("verb").unwrap_or(&non_resource["verb"])),
        group: text(&resource["group"]),
        version: text(&resource["version"]),
        resource: text(&resource["resource"]),
        subresource: text(&resource["subresource"]),
        name: text(&resource["name"]),
        path: text(&non_resource["path"]),
        user: text(&spec["user"]),
    };
    let allowed = shared
        .access_review
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let allowed = allowed(&attributes);
    let kind = if plural == "selfsubjectaccessreviews" {
        "SelfSubjectAccessReview"
    } else {
        "SubjectAccessReview"
    };
    let mut status = json!({"allowed": allowed});
    if !allowed {
        status["reason"] = Value::String("denied by the test API server".to_string());
    }
    let response = json!({
        "kind": kind,
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    });
    json_response(StatusCode::CREATED, &response)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_string))
        .collect()
}

/// How objects are written back for one request: the apiVersion it asked
/// for, and full objects or PartialObjectMetadata.
struct Render {
    api_version: String,
    kind: String,
    metadata_only: bool,
}

impl Render {
    /// Appends one object's JSON.
    fn write_object(&self, object: &Value, out: &mut Vec<u8>) {
        if self.metadata_only {
            out.extend_from_slice(
                br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#,
            );
            write_json(out, &object["metadata"]);
            out.push(b'}');
        } else if object["apiVersion"].as_str() == Some(self.api_version.as_str()) {
            write_json(out, object);
        } else {
            let mut converted = object.clone();
            converted["apiVersion"] = Value::String(self.api_version.clone());
            write_json(out, &converted);
        }
    }

    fn object_response(&self, code: StatusCode, object: &Value) -> Response<Body> {
        let mut out = Vec::new();
        self.write_object(object, &mut out);
        bytes_response(code, Bytes::from(out))
    }

    /// A `…List` (or `PartialObjectMetadataList`).
    fn list(
        &self,
        items: &[Arc<Value>],
        revision: u64,
        continue_token: Option<String>,
        remaining: usize,
    ) -> Vec<u8> {
        let (api_version, kind) = if self.metadata_only {
            (
                "meta.k8s.io/v1".to_string(),
                "PartialObjectMetadataList".to_string(),
            )
        } else {
            (self.api_version.clone(), format!("{}List", self.kind))
        };
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if let Some(token) = continue_token {
            metadata["continue"] = Value::String(token);
            metadata["remainingItemCount"] = Value::from(remaining);
        }
        let mut out = Vec::with_capacity(256 + items.len() * 1024);
        out.extend_from_slice(b"{\"apiVersion\":");
        write_json(&mut out, &Value::String(api_version));
        out.extend_from_slice(b",\"kind\":");
        write_json(&mut out, &Value::String(kind));
        out.extend_from_slice(b",\"metadata\":");
        write_json(&mut out, &metadata);
        out.extend_from_slice(b",\"items\":[");
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            self.write_object(item, &mut out);
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// `{"type":…,"object":…}\n`.
    fn watch_line(&self, item: &WatchItem) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        match item {
            WatchItem::Event { kind, object } => {
                out.extend_from_slice(b"{\"type\":\"");
                out.extend_from_slice(kind.as_bytes());
                out.extend_from_slice(b"\",\"object\":");
                self.write_object(object, &mut out);
                out.push(b'}');
            }
            WatchItem::Bookmark {
                revision,
                initial_events_end,
            } => {
                let mut metadata =
                    json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
                if *initial_events_end {
                    metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                let (api_version, kind) = if self.metadata_only {
                    ("meta.k8s.io/v1", "PartialObjectMetadata")
                } else {
                    (self.api_version.as_str(), self.kind.as_str())
                };
                let event = json!({
                    "type": "BOOKMARK",
                    "object": {"kind": kind, "apiVersion": api_version, "metadata": metadata},
                });
                write_json(&mut out, &event);
            }
            WatchItem::Expired { requested, oldest } => {
                let message = format!("too old resource version: {requested} ({oldest})");
                let event = json!({
                    "type": "ERROR",
                    "object": model::status_body(410, "Expired", &message, None),
                });
                write_json(&mut out, &event);
            }
        }
        out.push(b'\n');
        out
    }
}

/// Serializes a JSON value (which cannot fail into a `Vec`).
fn write_json(out: &mut Vec<u8>, value: &Value) {
    // Invariant: a `Value` has string keys only, and writing to a Vec never fails.
    serde_json::to_writer(out, value).expect("a JSON value serializes");
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let mut out = Vec::new();
    write_json(&mut out, value);
    bytes_response(code, Bytes::from(out))
}

fn text_response(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(UnsyncBoxBody::new(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn bytes_response(code: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(UnsyncBoxBody::new(Full::new(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn status_response(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Response<Body> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &model::status_body(code, reason, message, details))
}

fn failure(code: u16, message: &str) -> Response<Body> {
    status_response(code, model::status_reason(code), message, None)
}

/// A path serving nothing (an unknown group, version or resource).
fn not_found_path() -> Response<Body> {
    failure(404, "the server could not find the requested resource")
}
