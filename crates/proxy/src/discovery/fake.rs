//! An in-process fake Destination server for the discovery tests: each
//! path answers with a scripted status or a stream the test feeds, and the
//! fake counts calls and open streams.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::destination::destination_server::{Destination, DestinationServer};
use linkerd2_proxy_api::destination::update::Update as ProtoUpdate;
use linkerd2_proxy_api::net::TcpAddress;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Code, Request, Response, Status};

/// How the fake answers one path.
#[derive(Clone, Debug)]
pub(crate) enum Reply<T> {
    /// Accept and send these messages first (none: accept and stay silent).
    Stream(Vec<T>),
    /// Fail the call with this code.
    Status(Code),
}

type Sender<T> = mpsc::Sender<Result<T, Status>>;

#[derive(Debug)]
struct Streams<T> {
    replies: HashMap<String, Reply<T>>,
    open: Vec<(String, Sender<T>)>,
    calls: HashMap<String, usize>,
}

impl<T> Default for Streams<T> {
    fn default() -> Self {
        Streams {
            replies: HashMap::new(),
            open: Vec::new(),
            calls: HashMap::new(),
        }
    }
}

impl<T: Clone + Send + 'static> Streams<T> {
    fn call(&mut self, path: String) -> Result<ReceiverStream<Result<T, Status>>, Status> {
        *self.calls.entry(path.clone()).or_default() += 1;
        match self.replies.get(&path).cloned() {
            None => Err(Status::unavailable(format!("no script for {path}"))),
            Some(Reply::Status(code)) => Err(Status::new(code, format!("scripted for {path}"))),
            Some(Reply::Stream(messages)) => {
                let (sender, receiver) = mpsc::channel(64);
                for message in messages {
                    sender
                        .try_send(Ok(message))
                        .expect("room for the first messages");
                }
                self.open.push((path, sender));
                Ok(ReceiverStream::new(receiver))
            }
        }
    }

    fn push(&mut self, path: &str, message: T) {
        self.open.retain(|(_, sender)| !sender.is_closed());
        for (open_path, sender) in &self.open {
            if open_path == path {
                sender
                    .try_send(Ok(message.clone()))
                    .expect("room in the stream");
            }
        }
    }

    fn open_streams(&mut self, path: &str) -> usize {
        self.open.retain(|(_, sender)| !sender.is_closed());
        self.open.iter().filter(|(open, _)| open == path).count()
    }

    /// Fails every open stream, as a controller going away does.
    fn fail_all(&mut self) {
        for (_, sender) in self.open.drain(..) {
            let _ = sender.try_send(Err(Status::unavailable("controller going away")));
        }
    }
}

/// The fake's state, shared by every server started from it.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeDestination {
    profiles: Arc<Mutex<Streams<proto::DestinationProfile>>>,
    endpoints: Arc<Mutex<Streams<proto::Update>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeDestination {
    /// How `GetProfile(path)` answers from now on.
    pub(crate) fn reply_profile(&self, path: &str, reply: Reply<proto::DestinationProfile>) {
        lock(&self.profiles).replies.insert(path.to_string(), reply);
    }

    /// How `Get(path)` answers from now on.
    pub(crate) fn reply_endpoints(&self, path: &str, reply: Reply<proto::Update>) {
        lock(&self.endpoints)
            .replies
            .insert(path.to_string(), reply);
    }

    /// Sends `update` on every open `Get(path)` stream.
    pub(crate) fn push_update(&self, path: &str, update: proto::Update) {
        lock(&self.endpoints).push(path, update);
    }

    /// How many `Get(path)` calls arrived.
    pub(crate) fn get_calls(&self, path: &str) -> usize {
        lock(&self.endpoints).calls.get(path).copied().unwrap_or(0)
    }

    /// How many `GetProfile(path)` calls arrived.
    pub(crate) fn profile_calls(&self, path: &str) -> usize {
        lock(&self.profiles).calls.get(path).copied().unwrap_or(0)
    }

    /// How many `Get(path)` streams the client still holds open.
    pub(crate) fn open_get_streams(&self, path: &str) -> usize {
        lock(&self.endpoints).open_streams(path)
    }

    /// Serves on `address` (`127.0.0.1:0` for any port).
    pub(crate) async fn serve(&self, address: SocketAddr) -> RunningServer {
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(DestinationServer::new(self.clone()))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = signal.await;
            });
        let task = tokio::spawn(async move {
            server.await.unwrap();
        });
        RunningServer {
            address,
            fake: self.clone(),
            shutdown,
            task,
        }
    }
}

#[tonic::async_trait]
impl Destination for FakeDestination {
    type GetStream = ReceiverStream<Result<proto::Update, Status>>;
    type GetProfileStream = ReceiverStream<Result<proto::DestinationProfile, Status>>;

    async fn get(
        &self,
        request: Request<proto::GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let path = request.into_inner().path;
        lock(&self.endpoints).call(path).map(Response::new)
    }

    async fn get_profile(
        &self,
        request: Request<proto::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        let path = request.into_inner().path;
        lock(&self.profiles).call(path).map(Response::new)
    }
}

/// A running fake server.
#[derive(Debug)]
pub(crate) struct RunningServer {
    /// Where it listens.
    pub address: SocketAddr,
    fake: FakeDestination,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningServer {
    /// Fails every open stream, stops accepting and closes the connections.
    pub(crate) async fn stop(self) {
        lock(&self.fake.endpoints).fail_all();
        lock(&self.fake.profiles).fail_all();
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("the fake server stops")
            .unwrap();
    }
}

/// An `Add` of `addresses`, each labelled `pod=pod-<address>`, in a set
/// labelled `service=web`.
pub(crate) fn add(addresses: &[&str]) -> proto::Update {
    let addrs = addresses
        .iter()
        .map(|address| proto::WeightedAddr {
            addr: Some(TcpAddress::from(address.parse::<SocketAddr>().unwrap())),
            weight: 10000,
            metric_labels: HashMap::from([("pod".to_string(), format!("pod-{address}"))]),
            ..Default::default()
        })
        .collect();
    proto::Update {
        update: Some(ProtoUpdate::Add(proto::WeightedAddrSet {
            addrs,
            metric_labels: HashMap::from([("service".to_string(), "web".to_string())]),
        })),
    }
}
