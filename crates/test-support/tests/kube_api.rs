//! The test Kubernetes API server driven by the real `kube` client over
//! HTTP: paginated lists, watchers (initial list, changes, bookmarks, 410
//! Gone → relist), metadata-only watches, CRUD errors as `Status`, reviews.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes as K8sResourceAttributes, SelfSubjectAccessReview,
    SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{reflector, watcher as watch_stream};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use weft_test_support::kube_api::{
    KubeApiServer, ResourceAttributes, TokenReviewAnswer, TokenReviewRequest,
};

/// A client for `api` through its kubeconfig, with an optional read timeout.
async fn client_with(api: &KubeApiServer, read_timeout: Option<Duration>) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&api.kubeconfig_yaml()).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kube config");
    config.read_timeout = read_timeout;
    Client::try_from(config).expect("kube client")
}

async fn client(api: &KubeApiServer) -> Client {
    client_with(api, None).await
}

fn pod(namespace: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    })
}

/// The next item of `stream`, failing after 10 s.
async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on")
}

/// A short description of a watcher event: `Apply(web/a)`.
fn describe<K: kube::Resource>(event: &Event<K>) -> String {
    let key = |object: &K| {
        format!(
            "{}/{}",
            object.meta().namespace.clone().unwrap_or_default(),
            object.meta().name.clone().unwrap_or_default()
        )
    };
    match event {
        Event::Init => "Init".to_string(),
        Event::InitApply(object) => format!("InitApply({})", key(object)),
        Event::InitDone => "InitDone".to_string(),
        Event::Apply(object) => format!("Apply({})", key(object)),
        Event::Delete(object) => format!("Delete({})", key(object)),
    }
}

/// The next watcher event, skipping none; errors fail the test.
async fn next_event<K, S>(stream: &mut S) -> String
where
    K: kube::Resource,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Unpin,
{
    describe(&next(stream).await.expect("a watcher event, not an error"))
}

/// Polls `condition` every 20 ms for up to 10 s.
async fn eventually(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn lists_page_through_twelve_hundred_pods() {
    let api = KubeApiServer::start();
    for index in 0..1_200 {
        let namespace = if index % 2 == 0 { "even" } else { "odd" };
        api.apply(pod(
            namespace,
            &format!("pod-{index:04}"),
            json!({"app": "web"}),
        ));
    }
    let pods: Api<Pod> = Api::all(client(&api).await);
    let mut names = BTreeSet::new();
    let mut pages = 0;
    let mut params = ListParams::default().limit(500);
    let mut first_version = None;
    loop {
        let page = pods.list(&params).await.expect("list");
        pages += 1;
        first_version.get_or_insert(page.metadata.resource_version.clone());
        for pod in &page.items {
            assert!(pod.metadata.resource_version.is_some() && pod.metadata.uid.is_some());
            names.insert(format!("{}/{}", pod.namespace().unwrap(), pod.name_any()));
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!((pages, names.len()), (3, 1_200));
    let odd: Api<Pod> = Api::namespaced(client(&api).await, "odd");
    assert_eq!(
        odd.list(&ListParams::default()).await.unwrap().items.len(),
        600
    );
    let lists = api
        .requests()
        .into_iter()
        .filter(|request| request.path == "/api/v1/pods")
        .count();
    assert_eq!(lists, 3);
}

#[tokio::test]
async fn watcher_sees_the_initial_list_then_changes() {
    let api = KubeApiServer::start();
    api.apply(pod("web", "a", json!({})));
    api.apply(pod("other", "x", json!({})));
    let pods: Api<Pod> = Api::namespaced(client(&api).await, "web");
    let mut events = watch_stream(pods, watcher::Config::default()).boxed();
    assert_eq!(next_event(&mut events).await, "Init");
    assert_eq!(next_event(&mut events).await, "InitApply(web/a)");
    assert_eq!(next_event(&mut events).await, "InitDone");

    // Applied before or after the watch opens: the watch resumes from the
    // list's resourceVersion either way.
    api.apply(pod("web", "b", json!({})));
    assert_eq!(next_event(&mut events).await, "Apply(web/b)");
    assert_eq!(api.open_watches(), 1);
    api.apply(pod("other", "y", json!({})));
    let modified = api.apply(pod("web", "a", json!({"version": "2"})));
    let Ok(Event::Apply(seen)) = next(&mut events).await else {
        panic!("an Apply");
    };
    assert_eq!(seen.labels().get("version").map(String::as_str), Some("2"));
    assert_eq!(
        seen.metadata.resource_version.as_deref(),
        modified["metadata"]["resourceVersion"].as_str()
    );
    assert!(api.delete("v1", "Pod", Some("web"), "a"));
    assert!(!api.delete("v1", "Pod", Some("web"), "a"));
    assert_eq!(next_event(&mut events).await, "Delete(web/a)");

    let watch = api
        .requests()
        .into_iter()
        .find(|request| request.query.contains("watch=true"))
        .expect("a watch request");
    assert_eq!(watch.path, "/api/v1/namespaces/web/pods");
    assert!(
        watch.query.contains("allowWatchBookmarks=true"),
        "{watch:?}"
    );
}

#[tokio::test]
async fn watcher_relists_after_410_gone_and_matches_the_server() {
    let api = KubeApiServer::start();
    for index in 0..20 {
        api.apply(pod("web", &format!("pod-{index:02}"), json!({})));
    }
    let (reader, writer) = reflector::store::<Pod>();
    let pods: Api<Pod> = Api::all(client(&api).await);
    // Polled by hand: the watcher reconnects only when this test lets it.
    let mut events =
        reflector::reflector(writer, watch_stream(pods, watcher::Config::default())).boxed();
    loop {
        if matches!(next(&mut events).await, Ok(Event::InitDone)) {
            break;
        }
    }
    assert_eq!(reader.state().len(), 20);
    // The watch is open once a change comes through it.
    api.apply(pod("web", "pod-19", json!({"seen": "live"})));
    assert!(matches!(next(&mut events).await, Ok(Event::Apply(_))));
    assert_eq!(api.open_watches(), 1);

    // The watch ends; while the watcher is away, objects change and the
    // history is compacted.
    api.close_watches();
    for index in 0..5 {
        assert!(api.delete("v1", "Pod", Some("web"), &format!("pod-{index:02}")));
    }
    for index in 5..8 {
        api.apply(pod(
            "web",
            &format!("pod-{index:02}"),
            json!({"changed": "yes"}),
        ));
    }
    for index in 20..25 {
        api.apply(pod("web", &format!("pod-{index:02}"), json!({})));
    }
    api.compact();

    // The watcher re-watches from its last resourceVersion, gets 410 Gone,
    // lists again.
    let mut saw_gone = false;
    loop {
        match next(&mut events).await {
            Err(watcher::Error::WatchError(status)) => {
                assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
                assert!(
                    status.message.starts_with("too old resource version"),
                    "{status:?}"
                );
                saw_gone = true;
            }
            Err(other) => panic!("unexpected watcher error {other}"),
            Ok(Event::InitDone) => break,
            Ok(_) => {}
        }
    }
    assert!(saw_gone, "the re-watch got 410 Gone");
    let versions = |pods: Vec<(String, Option<String>)>| pods.into_iter().collect::<BTreeSet<_>>();
    let in_store = versions(
        reader
            .state()
            .iter()
            .map(|pod| (pod.name_any(), pod.metadata.resource_version.clone()))
            .collect(),
    );
    let on_server = versions(
        api.list("v1", "Pod")
            .iter()
            .map(|pod| {
                let metadata = &pod["metadata"];
                (
                    metadata["name"].as_str().unwrap().to_string(),
                    metadata["resourceVersion"].as_str().map(str::to_string),
                )
            })
            .collect(),
    );
    assert_eq!(in_store.len(), 20);
    assert_eq!(in_store, on_server);
    assert!(
        reader
            .state()
            .iter()
            .all(|pod| pod.name_any().as_str() >= "pod-05")
    );

    // And it follows changes again.
    api.apply(pod("web", "late", json!({})));
    loop {
        if let Ok(Event::Apply(pod)) = next(&mut events).await
            && pod.name_any() == "late"
        {
            break;
        }
    }
}

#[tokio::test]
async fn bookmarks_move_the_watcher_resource_version() {
    let api = KubeApiServer::start();
    api.apply(pod("web", "a", json!({})));
    let pods: Api<Pod> = Api::all(client(&api).await);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut events = watch_stream(pods, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            if sender.send(event.map(|event| describe(&event))).is_err() {
                break;
            }
        }
    });
    for expected in ["Init", "InitApply(web/a)", "InitDone"] {
        assert_eq!(receiver.recv().await.unwrap().unwrap(), expected);
    }
    eventually(|| api.open_watches() == 1).await;
    // Other kinds move the global resourceVersion; a bookmark carries it.
    api.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    api.send_bookmarks();
    api.send_bookmarks();
    api.apply(pod("web", "b", json!({})));
    assert_eq!(receiver.recv().await.unwrap().unwrap(), "Apply(web/b)");
    let bookmarked = api.resource_version();
    api.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}}));
    api.send_bookmarks();
    api.close_watches();
    let wanted = format!("resourceVersion={}", bookmarked + 1);
    eventually(|| {
        api.requests()
            .iter()
            .any(|request| request.query.contains("watch=true") && request.query.contains(&wanted))
    })
    .await;
    api.apply(pod("web", "c", json!({})));
    assert_eq!(receiver.recv().await.unwrap().unwrap(), "Apply(web/c)");
    task.abort();
}

#[tokio::test]
async fn metadata_watcher_sees_replica_sets() {
    let api = KubeApiServer::start();
    let replica_set = |name: &str| {
        json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": "web",
                "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                     "uid": "d-1", "controller": true}],
            },
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": []}}},
        })
    };
    api.apply(replica_set("web-1"));
    let replica_sets: Api<ReplicaSet> = Api::all(client(&api).await);
    let listed = replica_sets
        .list_metadata(&ListParams::default())
        .await
        .expect("list metadata");
    assert_eq!(listed.items.len(), 1);
    // kube 5's metadata watch: an `Api` of `PartialObjectMeta` (what
    // `metadata_watcher` became).
    let metadata: Api<PartialObjectMeta<ReplicaSet>> = Api::all(client(&api).await);
    let mut events = watch_stream(metadata, watcher::Config::default()).boxed();
    assert_eq!(next_event(&mut events).await, "Init");
    let Ok(Event::InitApply(first)) = next(&mut events).await else {
        panic!("an InitApply");
    };
    let owner = &first.metadata.owner_references.as_ref().expect("owners")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(next_event(&mut events).await, "InitDone");
    api.apply(replica_set("web-2"));
    assert_eq!(next_event(&mut events).await, "Apply(web/web-2)");
    let accept_metadata = api.requests().iter().any(|request| {
        request.path == "/apis/apps/v1/replicasets" && request.query.contains("watch=true")
    });
    assert!(accept_metadata);
}

#[tokio::test]
async fn token_reviews_answer_as_configured() {
    let api = KubeApiServer::start();
    let asked: Arc<Mutex<Vec<TokenReviewRequest>>> = Arc::default();
    let recorded = asked.clone();
    api.set_token_review(move |request| {
        recorded.lock().unwrap().push(request.clone());
        match request.token.as_str() {
            "good" => TokenReviewAnswer::Authenticated {
                username: "system:serviceaccount:web:web".to_string(),
                audiences: request.audiences.clone(),
            },
            "bad" => TokenReviewAnswer::Unauthenticated {
                error: "invalid bearer token".to_string(),
            },
            "forbidden" => TokenReviewAnswer::HttpStatus(403),
            _ => TokenReviewAnswer::Hang,
        }
    });
    let review = |token: &str| TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: Some(vec!["identity.weft.io".to_string()]),
        },
        ..TokenReview::default()
    };
    let reviews: Api<TokenReview> = Api::all(client(&api).await);
    let good = reviews
        .create(&PostParams::default(), &review("good"))
        .await
        .expect("review");
    let status = good.status.expect("status");
    assert_eq!(status.authenticated, Some(true));
    let user = status.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:web:web")
    );
    assert!(
        user.groups
            .unwrap()
            .contains(&"system:serviceaccounts:web".to_string())
    );
    assert_eq!(status.audiences, Some(vec!["identity.weft.io".to_string()]));

    let bad = reviews
        .create(&PostParams::default(), &review("bad"))
        .await
        .expect("review");
    let status = bad.status.expect("status");
    assert_ne!(status.authenticated, Some(true));
    assert_eq!(status.error.as_deref(), Some("invalid bearer token"));

    match reviews
        .create(&PostParams::default(), &review("forbidden"))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"))
        }
        other => panic!("expected a 403 Status, got {other:?}"),
    }

    let impatient: Api<TokenReview> =
        Api::all(client_with(&api, Some(Duration::from_millis(300))).await);
    let hung = impatient
        .create(&PostParams::default(), &review("hang"))
        .await;
    assert!(hung.is_err(), "a hung review times out: {hung:?}");

    let asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 4);
    assert_eq!(asked[0].audiences, ["identity.weft.io"]);
}

#[tokio::test]
async fn token_reviews_default_to_unauthenticated() {
    let api = KubeApiServer::start();
    let reviews: Api<TokenReview> = Api::all(client(&api).await);
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some("anything".to_string()),
            audiences: None,
        },
        ..TokenReview::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review)
        .await
        .expect("review");
    let status = answer.status.expect("status");
    assert_ne!(status.authenticated, Some(true));
    assert!(status.error.is_some());
}

#[tokio::test]
async fn self_subject_access_reviews_answer_from_the_function() {
    let api = KubeApiServer::start();
    api.set_self_subject_access_review(|attributes: &ResourceAttributes| {
        attributes.resource == "pods" && attributes.verb == "watch" && attributes.namespace == "web"
    });
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client(&api).await);
    let ask = |verb: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(K8sResourceAttributes {
                namespace: Some("web".to_string()),
                verb: Some(verb.to_string()),
                resource: Some("pods".to_string()),
                ..K8sResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let allowed = reviews
        .create(&PostParams::default(), &ask("watch"))
        .await
        .unwrap();
    assert!(allowed.status.unwrap().allowed);
    let denied = reviews
        .create(&PostParams::default(), &ask("delete"))
        .await
        .unwrap();
    assert!(!denied.status.unwrap().allowed);
}

#[tokio::test]
async fn unknown_resources_and_objects_are_status_errors() {
    let api = KubeApiServer::start();
    let client = client(&api).await;
    let widget = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &widget);
    match widgets.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"))
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
    api.register_kind("example.com/v1", "Widget", "widgets", false);
    assert!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let pods: Api<Pod> = Api::namespaced(client, "web");
    match pods.get("missing").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
            assert_eq!(status.message, "pods \"missing\" not found");
        }
        other => panic!("expected a 404 Status, got {other:?}"),
    }
    assert!(pods.get_opt("missing").await.unwrap().is_none());
    let new_pod: Pod = serde_json::from_value(pod("web", "a", json!({}))).unwrap();
    let created = pods
        .create(&PostParams::default(), &new_pod)
        .await
        .expect("create");
    assert_eq!(created.metadata.namespace.as_deref(), Some("web"));
    match pods.create(&PostParams::default(), &new_pod).await {
        Err(kube::Error::Api(status)) => assert_eq!(
            (status.code, status.reason.as_str()),
            (409, "AlreadyExists")
        ),
        other => panic!("expected a 409 Status, got {other:?}"),
    }
}

#[tokio::test]
async fn objects_replace_patch_and_delete_through_the_client() {
    let api = KubeApiServer::start();
    let config_maps: Api<ConfigMap> = Api::namespaced(client(&api).await, "web");
    let mut config_map = ConfigMap::default();
    config_map.metadata.name = Some("settings".to_string());
    config_map.data = Some([("a".to_string(), "1".to_string())].into());
    let created = config_maps
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();
    let first_version = created.resource_version().unwrap();

    let mut changed = created.clone();
    changed.data = Some([("a".to_string(), "2".to_string())].into());
    let replaced = config_maps
        .replace("settings", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(replaced.resource_version().unwrap(), first_version);
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    // A replace from a stale resourceVersion conflicts.
    match config_maps
        .replace("settings", &PostParams::default(), &changed)
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"))
        }
        other => panic!("expected a 409 Conflict, got {other:?}"),
    }

    let patch = json!({"data": {"b": "3"}});
    let patched = config_maps
        .patch("settings", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let data = patched.data.unwrap();
    assert_eq!((data["a"].as_str(), data["b"].as_str()), ("2", "3"));
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"x": "y"}});
    config_maps
        .patch(
            "applied",
            &PatchParams::apply("weft-test"),
            &Patch::Apply(&applied),
        )
        .await
        .unwrap();
    assert!(api.get("v1", "ConfigMap", Some("web"), "applied").is_some());

    let deleted = config_maps
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_left());
    assert!(
        api.get("v1", "ConfigMap", Some("web"), "settings")
            .is_none()
    );
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists_and_watches() {
    let api = KubeApiServer::start();
    api.apply(pod("web", "a", json!({"app": "web", "tier": "front"})));
    api.apply(pod("web", "b", json!({"app": "web"})));
    api.apply(pod("web", "c", json!({"app": "db"})));
    api.apply(pod("db", "d", json!({})));
    let pods: Api<Pod> = Api::all(client(&api).await);
    let names = |list: kube::core::ObjectList<Pod>| {
        list.items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>()
            .join(",")
    };
    let cases = [
        ("app=web", "", "a,b"),
        ("app!=web", "", "d,c"),
        ("tier", "", "a"),
        ("!tier", "", "d,b,c"),
        ("app=web,!tier", "", "b"),
        ("app in (web,db)", "", "a,b,c"),
        ("", "metadata.name=c", "c"),
        ("", "metadata.namespace=db", "d"),
        ("app", "metadata.namespace=web,metadata.name!=a", "b,c"),
    ];
    for (labels, fields, expected) in cases {
        let params = ListParams::default().labels(labels).fields(fields);
        assert_eq!(
            names(pods.list(&params).await.unwrap()),
            expected,
            "{labels} / {fields}"
        );
    }
    // A watch with a selector sees an object that stops matching as deleted.
    let config = watcher::Config::default().labels("app=web");
    let mut events = watch_stream(pods, config).boxed();
    for expected in ["Init", "InitApply(web/a)", "InitApply(web/b)", "InitDone"] {
        assert_eq!(next_event(&mut events).await, expected);
    }
    api.apply(pod("web", "b", json!({"app": "cache"})));
    assert_eq!(next_event(&mut events).await, "Delete(web/b)");
    api.apply(pod("web", "c", json!({"app": "web"})));
    assert_eq!(next_event(&mut events).await, "Apply(web/c)");
}

#[tokio::test]
async fn kinds_served_at_several_versions_are_stored_once() {
    let api = KubeApiServer::start();
    api.apply_yaml(
        "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata:\n  name: split\n  namespace: web\n\
         spec:\n  service: web\n  backends: [{service: web-v2, weight: 100}]\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n",
    );
    let v1alpha4 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("split.smi-spec.io", "v1alpha4", "TrafficSplit"),
        "trafficsplits",
    );
    let splits: Api<DynamicObject> = Api::namespaced_with(client(&api).await, "web", &v1alpha4);
    let split = splits.get("split").await.expect("get at another version");
    assert_eq!(
        split.types.unwrap().api_version,
        "split.smi-spec.io/v1alpha4"
    );
    assert_eq!(split.data["spec"]["service"], "web");
    let stored = api
        .get(
            "split.smi-spec.io/v1alpha1",
            "TrafficSplit",
            Some("web"),
            "split",
        )
        .unwrap();
    assert_eq!(stored["apiVersion"], "split.smi-spec.io/v1alpha1");
    let namespace = api
        .get("v1", "Namespace", None, "web")
        .expect("cluster-scoped");
    assert!(namespace["metadata"].get("namespace").is_none());
}

#[tokio::test]
async fn kubeconfig_file_and_version_reach_the_server() {
    let api = KubeApiServer::start();
    let path = std::env::temp_dir().join(format!("weft-kube-api-{}.yaml", std::process::id()));
    api.write_kubeconfig(&path);
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let _ = std::fs::remove_file(&path);
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config).unwrap();
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    assert_eq!(version.git_version, "v1.33.0");
    drop(api);
    assert!(
        client.apiserver_version().await.is_err(),
        "a dropped server stops"
    );
}

#[tokio::test]
async fn ten_thousand_pods_apply_and_list() {
    let api = KubeApiServer::start();
    let started = Instant::now();
    for index in 0..10_000 {
        let namespace = format!("ns-{}", index % 50);
        api.apply(pod(
            &namespace,
            &format!("pod-{index:05}"),
            json!({"app": format!("app-{}", index % 100)}),
        ));
    }
    let applied = started.elapsed();
    let pods: Api<Pod> = Api::all(client(&api).await);
    let started = Instant::now();
    let all = pods.list(&ListParams::default()).await.expect("list");
    let listed = started.elapsed();
    assert_eq!(all.items.len(), 10_000);
    let started = Instant::now();
    let mut events = watch_stream(pods, watcher::Config::default()).boxed();
    let mut initial = 0;
    loop {
        match next(&mut events).await.expect("event") {
            Event::InitApply(_) => initial += 1,
            Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, 10_000);
    println!(
        "10,000 pods: apply {applied:?}, one list through kube {listed:?}, watcher initial list (pages of 500) {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn streaming_list_watchers_get_initial_events_then_changes() {
    let api = KubeApiServer::start();
    api.apply(pod("web", "a", json!({})));
    let pods: Api<Pod> = Api::all(client(&api).await);
    let mut events = watch_stream(pods, watcher::Config::default().streaming_lists()).boxed();
    for expected in ["Init", "InitApply(web/a)", "InitDone"] {
        assert_eq!(next_event(&mut events).await, expected);
    }
    api.apply(pod("web", "b", json!({})));
    assert_eq!(next_event(&mut events).await, "Apply(web/b)");
    let first = &api.requests()[0];
    assert!(first.query.contains("sendInitialEvents=true"), "{first:?}");
}

#[tokio::test]
async fn watches_end_after_their_timeout_and_when_closed() {
    let api = KubeApiServer::start();
    let pods: Api<Pod> = Api::all(client(&api).await);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut events = watch_stream(pods, watcher::Config::default().timeout(1)).boxed();
        while let Some(event) = events.next().await {
            if sender.send(event.map(|event| describe(&event))).is_err() {
                break;
            }
        }
    });
    let watches = || {
        api.requests()
            .iter()
            .filter(|request| request.query.contains("watch=true"))
            .count()
    };
    assert!(watches() <= 1);
    eventually(|| watches() >= 3).await;
    let before = watches();
    api.close_watches();
    eventually(|| watches() > before).await;
    api.apply(pod("web", "a", json!({})));
    let mut seen = Vec::new();
    while !seen.contains(&"Apply(web/a)".to_string()) {
        seen.push(receiver.recv().await.unwrap().expect("no watcher error"));
    }
    task.abort();
}

#[tokio::test]
async fn custom_resource_definitions_serve_their_kinds() {
    let api = KubeApiServer::start();
    api.apply_yaml(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
         metadata: {name: gadgets.example.com}\n\
         spec:\n  group: example.com\n  scope: Namespaced\n\
         \x20 names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}\n\
         \x20 versions:\n  - {name: v1beta1, served: true, storage: false}\n  - {name: v1, served: true, storage: true}\n",
    );
    api.apply(json!({"apiVersion": "example.com/v1beta1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "web"}}));
    let gadget = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Gadget"),
        "gadgets",
    );
    let gadgets: Api<DynamicObject> = Api::all_with(client(&api).await, &gadget);
    let listed = gadgets
        .list(&ListParams::default())
        .await
        .expect("the CRD's kind is served");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(
        listed.items[0].types.as_ref().unwrap().api_version,
        "example.com/v1"
    );
}

#[tokio::test]
async fn dropping_the_server_ends_its_watches() {
    let api = KubeApiServer::start();
    let pods: Api<Pod> = Api::all(client(&api).await);
    let mut events = watch_stream(pods, watcher::Config::default()).boxed();
    assert_eq!(next_event(&mut events).await, "Init");
    assert_eq!(next_event(&mut events).await, "InitDone");
    api.apply(pod("web", "a", json!({})));
    assert_eq!(next_event(&mut events).await, "Apply(web/a)");
    drop(api);
    assert!(
        next(&mut events).await.is_err(),
        "the watcher reports the lost server"
    );
}

#[tokio::test]
async fn discovery_lists_the_served_kinds() {
    let api = KubeApiServer::start();
    let client = client(&api).await;
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    let (replica_sets, capabilities) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "ReplicaSet"))
        .expect("ReplicaSets are discovered");
    assert_eq!(replica_sets.plural, "replicasets");
    assert_eq!(capabilities.scope, kube::discovery::Scope::Namespaced);
    let (_, capabilities) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .expect("Namespaces are discovered");
    assert_eq!(capabilities.scope, kube::discovery::Scope::Cluster);
    let legacy = kube::discovery::Discovery::new(client)
        .run()
        .await
        .expect("discovery");
    assert!(legacy.has_group("policy.linkerd.io"));
    let servers = legacy.get("policy.linkerd.io").unwrap();
    assert_eq!(servers.preferred_version_or_latest(), "v1beta3");
}

#[tokio::test]
async fn dry_runs_answer_without_storing() {
    let api = KubeApiServer::start();
    let pods: Api<Pod> = Api::namespaced(client(&api).await, "web");
    let new_pod: Pod = serde_json::from_value(pod("web", "a", json!({}))).unwrap();
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answered = pods
        .create(&dry_run, &new_pod)
        .await
        .expect("dry-run create");
    assert_eq!(answered.name_any(), "a");
    assert!(api.get("v1", "Pod", Some("web"), "a").is_none());
    let version = api.resource_version();
    api.apply(pod("web", "a", json!({})));
    let delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    pods.delete("a", &delete).await.expect("dry-run delete");
    pods.delete_collection(&delete, &ListParams::default())
        .await
        .expect("dry-run delete collection");
    assert!(api.get("v1", "Pod", Some("web"), "a").is_some());
    assert_eq!(api.resource_version(), version + 1);
}

#[test]
fn the_server_handle_is_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<KubeApiServer>();
    // Usable with no runtime at all.
    let api = KubeApiServer::start();
    api.apply(pod("web", "a", json!({})));
    assert!(api.url().starts_with("http://127.0.0.1:"));
    assert!(api.kubeconfig_yaml().contains(&api.url()));
}
