//! The tap registry and recordings without sockets: claims up to `limit`,
//! the three events per request, the stream's end, dropped events; the
//! authorization and request validation tables.

use super::matching::{Match, StringMatch};
use super::service::{Observe, ObserveError, TapClient, authorize};
use super::*;
use crate::metrics::labels::TargetLabels;
use futures::StreamExt;
use linkerd2_proxy_api::tap::tap_event::http::Event as HttpEvent;
use linkerd2_proxy_api::tap::{ObserveRequest, eos, observe_request, tap_event};

struct Fixture {
    target: Arc<TargetLabels>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Fixture {
    fn new(path: &str) -> Fixture {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "web.shop:8080".parse().unwrap());
        Fixture {
            target: TargetLabels::new(
                "10.0.0.9:8080".parse().unwrap(),
                TlsStatus::FromClient(Some(
                    "api.shop.serviceaccount.identity.weft.cluster.local".into(),
                )),
            ),
            method: Method::GET,
            uri: path.parse().unwrap(),
            headers,
        }
    }

    fn request(&self) -> TapRequest<'_> {
        TapRequest {
            direction: Direction::Inbound,
            source: "10.0.0.2:40000".parse().unwrap(),
            destination: "127.0.0.1:8080".parse().unwrap(),
            target: &self.target,
            route: None,
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            version: Version::HTTP_11,
        }
    }
}

fn taps() -> Arc<Taps> {
    Arc::new(Taps::new(&mut Registry::default()))
}

fn books() -> Match {
    Match::Path(StringMatch::Prefix("/books".to_string()))
}

fn http_event(event: &TapEvent) -> &HttpEvent {
    match &event.event {
        Some(tap_event::Event::Http(tap_event::Http { event: Some(event) })) => event,
        other => panic!("not an HTTP event: {other:?}"),
    }
}

/// Runs one request through a recording: head, `bytes` of body, trailers.
fn complete(taps: &Taps, fixture: &Fixture, bytes: usize, trailers: Option<HeaderMap>) -> bool {
    let Some(mut recording) = taps.begin(&fixture.request()) else {
        return false;
    };
    recording.response_init(200, &HeaderMap::new());
    recording.data(bytes);
    if let Some(trailers) = trailers {
        recording.trailers(&trailers);
    }
    recording.end(false);
    true
}

#[tokio::test]
async fn without_taps_nothing_is_recorded() {
    let taps = taps();
    assert!(!taps.is_active());
    assert!(taps.begin(&Fixture::new("/books").request()).is_none());
}

#[tokio::test]
async fn a_tap_reports_limit_requests_then_ends() {
    let taps = taps();
    let mut stream = taps.observe(books(), 2, false);
    assert!(taps.is_active());
    let other = Fixture::new("/authors");
    let book = Fixture::new("/books/1");
    assert!(
        !complete(&taps, &other, 5, None),
        "a request that does not match"
    );
    assert!(complete(&taps, &book, 10, None));
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "5".parse().unwrap());
    assert!(complete(&taps, &book, 20, Some(trailers)));
    assert!(!taps.is_active(), "the limit was claimed: no tap left");
    assert!(!complete(&taps, &book, 30, None));

    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    assert_eq!(events.len(), 6, "{events:#?}");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(
            event.proxy_direction,
            tap_event::ProxyDirection::Inbound as i32
        );
        let source_labels = &event.source_meta.as_ref().unwrap().labels;
        assert_eq!(source_labels["tls"], "true");
        assert_eq!(
            source_labels["client_id"],
            "api.shop.serviceaccount.identity.weft.cluster.local"
        );
        assert_eq!(
            event.destination_meta.as_ref().unwrap().labels["tls"],
            "loopback"
        );
        let stream_number = (index / 3) as u64;
        match (index % 3, http_event(event)) {
            (0, HttpEvent::RequestInit(init)) => {
                assert_eq!(init.id.as_ref().unwrap().stream, stream_number);
                assert_eq!(init.path, "/books/1");
                assert_eq!(init.authority, "web.shop:8080");
                assert!(init.headers.is_none());
            }
            (1, HttpEvent::ResponseInit(init)) => {
                assert_eq!(init.id.as_ref().unwrap().stream, stream_number);
                assert_eq!(init.http_status, 200);
            }
            (2, HttpEvent::ResponseEnd(end)) => {
                assert_eq!(end.id.as_ref().unwrap().stream, stream_number);
                assert_eq!(end.response_bytes, 10 * (stream_number + 1));
                assert!(end.since_response_init.is_some());
                let expected = (stream_number == 1).then_some(eos::End::GrpcStatusCode(5));
                assert_eq!(end.eos.as_ref().and_then(|eos| eos.end.clone()), expected);
            }
            (position, event) => panic!("event {index} (position {position}): {event:?}"),
        }
    }
}

#[tokio::test]
async fn failed_and_abandoned_requests_end_their_streams() {
    let taps = taps();
    let mut stream = taps.observe(books(), 2, true);
    let book = Fixture::new("/books");
    taps.begin(&book.request()).unwrap().fail();
    let mut abandoned = taps.begin(&book.request()).unwrap();
    abandoned.response_init(200, &HeaderMap::new());
    abandoned.data(3);
    drop(abandoned);
    let events: Vec<TapEvent> = stream.by_ref().map(Result::unwrap).collect().await;
    let kinds: Vec<&HttpEvent> = events.iter().map(http_event).collect();
    assert_eq!(kinds.len(), 5, "{kinds:#?}");
    let HttpEvent::RequestInit(init) = kinds[0] else {
        panic!()
    };
    assert!(
        init.headers
            .as_ref()
            .unwrap()
            .headers
            .iter()
            .any(|header| header.name == "host")
    );
    let HttpEvent::ResponseEnd(failed) = kinds[1] else {
        panic!("{:?}", kinds[1])
    };
    assert!(failed.since_response_init.is_none());
    assert_eq!(failed.response_bytes, 0);
    let HttpEvent::ResponseEnd(abandoned) = kinds[4] else {
        panic!("{:?}", kinds[4])
    };
    assert_eq!(abandoned.response_bytes, 3);
    assert_eq!(
        abandoned.eos.as_ref().and_then(|eos| eos.end.clone()),
        Some(eos::End::ResetErrorCode(RESET_CANCEL))
    );
}

#[tokio::test]
async fn a_full_queue_drops_events_and_a_gone_client_removes_its_tap() {
    let taps = taps();
    let stream = taps.observe(books(), u32::MAX, false);
    let book = Fixture::new("/books");
    for _ in 0..EVENT_CAPACITY {
        complete(&taps, &book, 1, None);
    }
    // 3 events per request: the queue filled after EVENT_CAPACITY events.
    assert_eq!(taps.dropped.get(), 2 * EVENT_CAPACITY as u64);
    drop(stream);
    assert!(!taps.is_active());
}

#[test]
fn authorization() {
    const TAP: &str = "weft-controller.weft.serviceaccount.identity.weft.cluster.local";
    let cases: Vec<(TapClient, bool)> = vec![
        (
            TapClient::Plaintext("127.0.0.1:5000".parse().unwrap()),
            true,
        ),
        (
            TapClient::Plaintext("127.8.0.1:5000".parse().unwrap()),
            true,
        ),
        (TapClient::Plaintext("[::1]:5000".parse().unwrap()), true),
        (
            TapClient::Plaintext("[::ffff:127.0.0.1]:5000".parse().unwrap()),
            true,
        ),
        (
            TapClient::Plaintext("10.0.0.3:5000".parse().unwrap()),
            false,
        ),
        (TapClient::Tls(Some(TAP.into())), true),
        (
            TapClient::Tls(Some(
                "web.shop.serviceaccount.identity.weft.cluster.local".into(),
            )),
            false,
        ),
        (TapClient::Tls(None), false),
    ];
    for (client, allowed) in cases {
        let result = authorize(&client, TAP);
        assert_eq!(result.is_ok(), allowed, "{client:?}: {result:?}");
        if let Err(reason) = result {
            assert!(reason.starts_with("unauthorized client"), "{reason}");
        }
    }
}

#[test]
fn observe_requests_are_validated() {
    let any = || observe_request::Match {
        r#match: Some(observe_request::r#match::Match::All(
            observe_request::r#match::Seq { matches: vec![] },
        )),
    };
    let headers = observe_request::Extract {
        extract: Some(observe_request::extract::Extract::Http(
            observe_request::extract::Http {
                extract: Some(observe_request::extract::http::Extract::Headers(
                    observe_request::extract::http::Headers {},
                )),
            },
        )),
    };
    let cases = vec![
        (
            ObserveRequest {
                limit: 0,
                r#match: Some(any()),
                extract: None,
            },
            Err(ObserveError::ZeroLimit),
        ),
        (
            ObserveRequest {
                limit: 3,
                r#match: None,
                extract: None,
            },
            Err(ObserveError::MissingMatch),
        ),
        (
            ObserveRequest {
                limit: 3,
                r#match: Some(observe_request::Match { r#match: None }),
                extract: None,
            },
            Err(ObserveError::InvalidMatch(matching::MatchError::Missing(
                "match",
            ))),
        ),
        (
            ObserveRequest {
                limit: 3,
                r#match: Some(any()),
                extract: None,
            },
            Ok(Observe {
                limit: 3,
                matcher: Match::All(vec![]),
                extract_headers: false,
            }),
        ),
        (
            ObserveRequest {
                limit: 1,
                r#match: Some(any()),
                extract: Some(headers),
            },
            Ok(Observe {
                limit: 1,
                matcher: Match::All(vec![]),
                extract_headers: true,
            }),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(Observe::try_from(request), expected);
    }
}
