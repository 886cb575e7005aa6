//! The issuer from the Kubernetes API: a `kubernetes.io/tls` Secret
//! (`--identity-issuer-secret`, in `--identity-control-namespace`) and the
//! trust anchors from a ConfigMap (`--identity-trust-anchors-configmap`, key
//! `ca-bundle.crt`), watched; each change is checked
//! ([`CertificateAuthority::load_chain`]) and swapped in through the same
//! [`IssuerRecorder`] as the issuer files, so a bad edit keeps the previous
//! issuer and shows in the log, the failed-reload metric and `/ready`.
//!
//! ```text
//! Secret  tls.crt  issuer certificate (its chain may follow, as cert-manager writes it)
//!         tls.key  its key (PKCS#8, or SEC1 "EC PRIVATE KEY" as cert-manager writes it)
//!         ca.crt   the anchor (cert-manager); used only when the ConfigMap is missing
//! ConfigMap ca-bundle.crt  the trust anchors
//!
//! start:  GET both (5 s each) ─► load ─► must succeed (else start-up fails, exit 64)
//! run:    watch both (fieldSelector metadata.name=…) ─► lean copy of the keys above
//!         ─► changed since the last attempt? ─► load ─► record (good: swap; bad: keep old)
//! ```
//!
//! Only the few keys above are kept from each object; nothing else of the
//! Secret stays in memory.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use time::OffsetDateTime;
use weft_core::cluster::TRUST_ANCHORS_KEY;

use super::authority::{
    CertificateAuthority, CredentialError, CredentialFile, CredentialProblem, IssuerCredentials,
};
use super::issuer::{AuthorityHandle, IssuerMetrics, IssuerRecorder, IssuerStatus};

/// The Secret key holding the issuer certificate (and its chain).
pub const CERTIFICATE_KEY: &str = "tls.crt";
/// The Secret key holding the issuer's private key.
pub const PRIVATE_KEY_KEY: &str = "tls.key";
/// The Secret key cert-manager writes the anchor to.
pub const CA_KEY: &str = "ca.crt";
/// How long each start-up read of the API may take.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Which objects hold the issuer and the anchors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSecretRef {
    /// The control plane's namespace (both objects are in it).
    pub namespace: String,
    /// The `kubernetes.io/tls` Secret's name.
    pub secret: String,
    /// The trust-anchor ConfigMap's name.
    pub trust_anchors_configmap: String,
}

impl IssuerSecretRef {
    /// `Secret <namespace>/<name>`, as errors name it.
    pub fn secret_object(&self) -> String {
        format!("Secret {}/{}", self.namespace, self.secret)
    }

    /// `ConfigMap <namespace>/<name>`, as errors name it.
    pub fn configmap_object(&self) -> String {
        format!(
            "ConfigMap {}/{}",
            self.namespace, self.trust_anchors_configmap
        )
    }
}

/// Why the issuer could not be taken from the Secret and ConfigMap.
#[derive(Debug, thiserror::Error)]
pub enum IssuerSecretError {
    /// The Secret does not exist.
    #[error("{object}: not found")]
    NotFound {
        /// `Secret ns/name`.
        object: String,
    },
    /// A required key is absent.
    #[error("{object}: has no key {key}")]
    MissingKey {
        /// `Secret ns/name` or `ConfigMap ns/name`.
        object: String,
        /// The key.
        key: &'static str,
    },
    /// Neither the ConfigMap nor the Secret's `ca.crt` holds anchors.
    #[error(
        "no trust anchors: {configmap} does not exist and {secret} has no key {CA_KEY} to fall back to"
    )]
    NoTrustAnchors {
        /// `ConfigMap ns/name`.
        configmap: String,
        /// `Secret ns/name`.
        secret: String,
    },
    /// A key's contents are unusable.
    #[error("{object} key {key}: {problem}")]
    Invalid {
        /// `Secret ns/name` or `ConfigMap ns/name`.
        object: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: CredentialProblem,
    },
    /// The API refused or failed the read.
    #[error("{object}: cannot read it from the Kubernetes API: {source}")]
    Api {
        /// The object read.
        object: String,
        /// kube's error.
        source: kube::Error,
    },
    /// The API did not answer in time.
    #[error("{object}: the Kubernetes API did not answer within {timeout:?}")]
    Timeout {
        /// The object read.
        object: String,
        /// How long was waited.
        timeout: Duration,
    },
}

/// The keys kept of the issuer Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretData {
    /// `tls.crt`.
    pub certificate: Option<Vec<u8>>,
    /// `tls.key`.
    pub key: Option<Vec<u8>>,
    /// `ca.crt`.
    pub ca: Option<Vec<u8>>,
}

impl SecretData {
    /// The three keys of `secret` (`data`, or `stringData` as written).
    pub fn from_secret(secret: &Secret) -> Self {
        let value = |key: &str| {
            secret
                .data
                .as_ref()
                .and_then(|data| data.get(key))
                .map(|bytes| bytes.0.clone())
                .or_else(|| {
                    secret
                        .string_data
                        .as_ref()
                        .and_then(|data| data.get(key))
                        .map(|text| text.clone().into_bytes())
                })
        };
        Self {
            certificate: value(CERTIFICATE_KEY),
            key: value(PRIVATE_KEY_KEY),
            ca: value(CA_KEY),
        }
    }
}

/// The key kept of the trust-anchor ConfigMap: `ca-bundle.crt`, if present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnchorsData {
    /// `ca-bundle.crt` (from `data` or `binaryData`).
    pub bundle: Option<Vec<u8>>,
}

impl AnchorsData {
    /// The bundle key of `configmap`.
    pub fn from_configmap(configmap: &ConfigMap) -> Self {
        let bundle = configmap
            .data
            .as_ref()
            .and_then(|data| data.get(TRUST_ANCHORS_KEY))
            .map(|text| text.clone().into_bytes())
            .or_else(|| {
                configmap
                    .binary_data
                    .as_ref()
                    .and_then(|data| data.get(TRUST_ANCHORS_KEY))
                    .map(|bytes| bytes.0.clone())
            });
        Self { bundle }
    }
}

/// Where the anchors came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorsFrom {
    /// The ConfigMap's `ca-bundle.crt`.
    ConfigMap,
    /// The Secret's `ca.crt` (the ConfigMap does not exist).
    SecretCa,
}

/// Checks the Secret and ConfigMap as they are now and builds the authority
/// (pure but for the clock `now`): the Secret must exist with `tls.crt` and
/// `tls.key`; the anchors are the ConfigMap's, or the Secret's `ca.crt`
/// when there is no ConfigMap.
pub fn load(
    reference: &IssuerSecretRef,
    secret: Option<&SecretData>,
    anchors: Option<&AnchorsData>,
    now: OffsetDateTime,
) -> Result<(CertificateAuthority, AnchorsFrom), IssuerSecretError> {
    let secret_object = reference.secret_object();
    let configmap_object = reference.configmap_object();
    let secret = secret.ok_or_else(|| IssuerSecretError::NotFound {
        object: secret_object.clone(),
    })?;
    let required = |value: &Option<Vec<u8>>, key| {
        value.clone().ok_or_else(|| IssuerSecretError::MissingKey {
            object: secret_object.clone(),
            key,
        })
    };
    let certificate = required(&secret.certificate, CERTIFICATE_KEY)?;
    let key = required(&secret.key, PRIVATE_KEY_KEY)?;
    let (trust_anchors, from) = match anchors {
        Some(AnchorsData {
            bundle: Some(bundle),
        }) => (bundle.clone(), AnchorsFrom::ConfigMap),
        Some(AnchorsData { bundle: None }) => {
            return Err(IssuerSecretError::MissingKey {
                object: configmap_object,
                key: TRUST_ANCHORS_KEY,
            });
        }
        None => match &secret.ca {
            Some(ca) => (ca.clone(), AnchorsFrom::SecretCa),
            None => {
                return Err(IssuerSecretError::NoTrustAnchors {
                    configmap: configmap_object,
                    secret: secret_object,
                });
            }
        },
    };
    let credentials = IssuerCredentials {
        certificate_pem: &certificate,
        key_pem: &key,
        trust_anchors_pem: &trust_anchors,
    };
    let authority = CertificateAuthority::load_chain(&credentials, now).map_err(
        |CredentialError { file, problem }| {
            let (object, key) = match (file, from) {
                (CredentialFile::IssuerCertificate, _) => (secret_object.clone(), CERTIFICATE_KEY),
                (CredentialFile::IssuerKey, _) => (secret_object.clone(), PRIVATE_KEY_KEY),
                (CredentialFile::TrustAnchors, AnchorsFrom::ConfigMap) => {
                    (configmap_object.clone(), TRUST_ANCHORS_KEY)
                }
                (CredentialFile::TrustAnchors, AnchorsFrom::SecretCa) => {
                    (secret_object.clone(), CA_KEY)
                }
            };
            IssuerSecretError::Invalid {
                object,
                key,
                problem,
            }
        },
    )?;
    Ok((authority, from))
}

/// One watched object's latest state, through the watcher's relists: an
/// object seen during a relist replaces the current one only when the relist
/// is done (one not seen is gone).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched<T> {
    current: Option<T>,
    relisting: Option<Option<T>>,
}

impl<T> Default for Watched<T> {
    fn default() -> Self {
        Self {
            current: None,
            relisting: None,
        }
    }
}

impl<T> Watched<T> {
    /// Applies one event (`name` filters out any other object); true when
    /// `current` is settled anew and worth a reload.
    fn apply<K: kube::Resource>(
        &mut self,
        event: Event<K>,
        name: &str,
        convert: impl Fn(&K) -> T,
    ) -> bool {
        let ours = |object: &K| object.meta().name.as_deref() == Some(name);
        match event {
            Event::Apply(object) if ours(&object) => {
                self.current = Some(convert(&object));
                true
            }
            Event::Delete(object) if ours(&object) => {
                self.current = None;
                true
            }
            Event::Init => {
                self.relisting = Some(None);
                false
            }
            Event::InitApply(object) if ours(&object) => {
                self.relisting = Some(Some(convert(&object)));
                false
            }
            Event::InitDone => match self.relisting.take() {
                Some(seen) => {
                    self.current = seen;
                    true
                }
                None => false,
            },
            Event::Apply(_) | Event::Delete(_) | Event::InitApply(_) => false,
        }
    }
}

/// The issuer Secret and anchor ConfigMap feeding an [`AuthorityHandle`].
pub struct SecretIssuerSource {
    reference: IssuerSecretRef,
    secrets: Api<Secret>,
    configmaps: Api<ConfigMap>,
    issuer: IssuerRecorder,
    secret: Watched<SecretData>,
    anchors: Watched<AnchorsData>,
    /// What was last loaded, so an unchanged pair is neither reloaded nor re-reported.
    last_attempt: Option<(Option<SecretData>, Option<AnchorsData>)>,
    /// Where the anchors came from at the last good load.
    anchors_from: Option<AnchorsFrom>,
}

impl std::fmt::Debug for SecretIssuerSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SecretIssuerSource")
            .field("reference", &self.reference)
            .field("anchors_from", &self.anchors_from)
            .finish_non_exhaustive()
    }
}

impl SecretIssuerSource {
    /// A source reading `reference` through `client`; nothing is read until
    /// [`load_initial`](Self::load_initial).
    pub fn new(client: kube::Client, reference: IssuerSecretRef, metrics: IssuerMetrics) -> Self {
        Self {
            secrets: Api::namespaced(client.clone(), &reference.namespace),
            configmaps: Api::namespaced(client, &reference.namespace),
            issuer: IssuerRecorder::new(reference.secret_object(), metrics),
            reference,
            secret: Watched::default(),
            anchors: Watched::default(),
            last_attempt: None,
            anchors_from: None,
        }
    }

    /// The handle the Identity service signs with.
    pub fn authority(&self) -> AuthorityHandle {
        self.issuer.authority()
    }

    /// The live status, for the admin server.
    pub fn status_handle(&self) -> Arc<Mutex<IssuerStatus>> {
        self.issuer.status_handle()
    }

    /// Reads the Secret and the ConfigMap once and loads them: start-up
    /// fails unless this succeeds.
    pub async fn load_initial(&mut self) -> Result<(), IssuerSecretError> {
        let secret = read(
            &self.secrets,
            &self.reference.secret,
            self.reference.secret_object(),
        )
        .await?;
        let configmap = read(
            &self.configmaps,
            &self.reference.trust_anchors_configmap,
            self.reference.configmap_object(),
        )
        .await?;
        self.secret.current = secret.as_ref().map(SecretData::from_secret);
        self.anchors.current = configmap.as_ref().map(AnchorsData::from_configmap);
        self.reload().map(|_| ())
    }

    /// Loads the current Secret and ConfigMap when they changed since the
    /// last attempt. `Ok(true)`: a new issuer is signing; `Ok(false)`:
    /// nothing changed; `Err`: unusable (recorded, logged, counted), the
    /// previous issuer keeps signing.
    fn reload(&mut self) -> Result<bool, IssuerSecretError> {
        let attempt = (self.secret.current.clone(), self.anchors.current.clone());
        if self.last_attempt.as_ref() == Some(&attempt) {
            return Ok(false);
        }
        let loaded = load(
            &self.reference,
            attempt.0.as_ref(),
            attempt.1.as_ref(),
            OffsetDateTime::now_utc(),
        );
        self.last_attempt = Some(attempt);
        let authority = match loaded {
            Ok((authority, from)) => {
                if from == AnchorsFrom::SecretCa && self.anchors_from != Some(from) {
                    tracing::warn!(
                        configmap = %self.reference.configmap_object(),
                        secret = %self.reference.secret_object(),
                        "the trust-anchor ConfigMap does not exist; using the Secret's {CA_KEY}"
                    );
                }
                self.anchors_from = Some(from);
                Ok(authority)
            }
            Err(error) => Err(error),
        };
        self.issuer.record(authority)
    }

    /// Watches the Secret and the ConfigMap until `shutdown` completes,
    /// reloading on each settled change (watch errors are retried with
    /// kube's default backoff).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let by_name =
            |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
        let secrets =
            watcher(self.secrets.clone(), by_name(&self.reference.secret)).default_backoff();
        let configmaps = watcher(
            self.configmaps.clone(),
            by_name(&self.reference.trust_anchors_configmap),
        )
        .default_backoff();
        tokio::pin!(secrets, configmaps, shutdown);
        loop {
            let settled = tokio::select! {
                () = &mut shutdown => return,
                event = secrets.next() => match event {
                    Some(Ok(event)) => {
                        let name = self.reference.secret.clone();
                        self.secret.apply(event, &name, SecretData::from_secret)
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, object = %self.reference.secret_object(), "watch failed; retrying");
                        false
                    }
                    None => return,
                },
                event = configmaps.next() => match event {
                    Some(Ok(event)) => {
                        let name = self.reference.trust_anchors_configmap.clone();
                        self.anchors.apply(event, &name, AnchorsData::from_configmap)
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, object = %self.reference.configmap_object(), "watch failed; retrying");
                        false
                    }
                    None => return,
                },
            };
            if settled {
                // Errors are recorded in the status and logged by reload.
                let _ = self.reload();
            }
        }
    }
}

/// `GET` one object, `None` when it does not exist, bounded by [`READ_TIMEOUT`].
async fn read<K>(api: &Api<K>, name: &str, object: String) -> Result<Option<K>, IssuerSecretError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match tokio::time::timeout(READ_TIMEOUT, api.get_opt(name)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(source)) => Err(IssuerSecretError::Api { object, source }),
        Err(_) => Err(IssuerSecretError::Timeout {
            object,
            timeout: READ_TIMEOUT,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::identity::IdentityDomain;
    use crate::identity::init::{GeneratedCa, generate_issuer, generate_root};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn reference() -> IssuerSecretRef {
        IssuerSecretRef {
            namespace: "weft".into(),
            secret: "weft-identity-issuer".into(),
            trust_anchors_configmap: "weft-identity-trust-roots".into(),
        }
    }

    struct Mesh {
        root: GeneratedCa,
        issuer: GeneratedCa,
    }

    fn mesh() -> Mesh {
        let domain = IdentityDomain::default();
        let now = OffsetDateTime::now_utc();
        let root = generate_root(&domain, now, 365 * DAY).unwrap();
        let issuer = generate_issuer(&root, &domain, now, 30 * DAY).unwrap();
        Mesh { root, issuer }
    }

    fn secret_data(certificate: &str, key: &str, ca: Option<&str>) -> SecretData {
        SecretData {
            certificate: Some(certificate.as_bytes().to_vec()),
            key: Some(key.as_bytes().to_vec()),
            ca: ca.map(|text| text.as_bytes().to_vec()),
        }
    }

    fn anchors(bundle: &str) -> AnchorsData {
        AnchorsData {
            bundle: Some(bundle.as_bytes().to_vec()),
        }
    }

    #[test]
    fn load_table() {
        let good = mesh();
        let other = mesh();
        let issuer = &good.issuer;
        let root = good.root.certificate_pem.as_str();
        let cert_manager = secret_data(&issuer.certificate_pem, &issuer.key_pem, Some(root));
        let plain = secret_data(&issuer.certificate_pem, &issuer.key_pem, None);
        /// (name, Secret, ConfigMap, outcome: where the anchors came from, or the error text).
        type Case = (
            &'static str,
            Option<SecretData>,
            Option<AnchorsData>,
            Result<AnchorsFrom, String>,
        );
        let cases: Vec<Case> = vec![
            (
                "Secret and ConfigMap",
                Some(plain.clone()),
                Some(anchors(root)),
                Ok(AnchorsFrom::ConfigMap),
            ),
            (
                "the ConfigMap wins over ca.crt",
                Some(secret_data(
                    &issuer.certificate_pem,
                    &issuer.key_pem,
                    Some(&other.root.certificate_pem),
                )),
                Some(anchors(root)),
                Ok(AnchorsFrom::ConfigMap),
            ),
            (
                "no ConfigMap: ca.crt",
                Some(cert_manager.clone()),
                None,
                Ok(AnchorsFrom::SecretCa),
            ),
            (
                "tls.crt with the root after the issuer",
                Some(secret_data(
                    &format!("{}{root}", issuer.certificate_pem),
                    &issuer.key_pem,
                    None,
                )),
                Some(anchors(root)),
                Ok(AnchorsFrom::ConfigMap),
            ),
            (
                "no Secret",
                None,
                Some(anchors(root)),
                Err("Secret weft/weft-identity-issuer: not found".into()),
            ),
            (
                "no tls.key",
                Some(SecretData {
                    key: None,
                    ..plain.clone()
                }),
                Some(anchors(root)),
                Err("Secret weft/weft-identity-issuer: has no key tls.key".into()),
            ),
            (
                "no tls.crt",
                Some(SecretData {
                    certificate: None,
                    ..plain.clone()
                }),
                Some(anchors(root)),
                Err("Secret weft/weft-identity-issuer: has no key tls.crt".into()),
            ),
            (
                "neither ConfigMap nor ca.crt",
                Some(plain.clone()),
                None,
                Err("no trust anchors: ConfigMap weft/weft-identity-trust-roots does not exist \
                     and Secret weft/weft-identity-issuer has no key ca.crt to fall back to"
                    .into()),
            ),
            (
                "a ConfigMap without the key",
                Some(cert_manager.clone()),
                Some(AnchorsData { bundle: None }),
                Err("ConfigMap weft/weft-identity-trust-roots: has no key ca-bundle.crt".into()),
            ),
            (
                "garbage anchors in the ConfigMap",
                Some(plain.clone()),
                Some(anchors("hello")),
                Err("ConfigMap weft/weft-identity-trust-roots key ca-bundle.crt: holds no CERTIFICATE"
                    .into()),
            ),
            (
                "garbage ca.crt",
                Some(secret_data(&issuer.certificate_pem, &issuer.key_pem, Some("hello"))),
                None,
                Err("Secret weft/weft-identity-issuer key ca.crt: holds no CERTIFICATE".into()),
            ),
            (
                "another mesh's anchors",
                Some(plain.clone()),
                Some(anchors(&other.root.certificate_pem)),
                Err(format!(
                    "Secret weft/weft-identity-issuer key tls.crt: the issuer {} is not signed by any trust anchor",
                    x509_subject(&issuer.certificate_pem)
                )),
            ),
            (
                "another issuer's key",
                Some(secret_data(&issuer.certificate_pem, &other.issuer.key_pem, None)),
                Some(anchors(root)),
                Err("Secret weft/weft-identity-issuer key tls.key: the key does not belong to the issuer certificate".into()),
            ),
        ];
        for (name, secret, configmap, expected) in cases {
            let got = load(
                &reference(),
                secret.as_ref(),
                configmap.as_ref(),
                OffsetDateTime::now_utc(),
            )
            .map(|(_, from)| from)
            .map_err(|error| error.to_string());
            assert_eq!(got, expected, "{name}");
        }
    }

    fn x509_subject(pem: &str) -> String {
        use x509_parser::prelude::FromDer;
        let der = crate::identity::authority::certificates_in(pem.as_bytes())
            .unwrap()
            .remove(0);
        let (_, certificate) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
        certificate.subject().to_string()
    }

    fn k8s_secret(name: &str, keys: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("weft".into()),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(
                keys.iter()
                    .map(|(key, value)| (key.to_string(), ByteString(value.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    #[test]
    fn only_the_three_keys_are_kept() {
        let secret = k8s_secret(
            "weft-identity-issuer",
            &[("tls.crt", "C"), ("tls.key", "K"), ("other", "X")],
        );
        assert_eq!(
            SecretData::from_secret(&secret),
            SecretData {
                certificate: Some(b"C".to_vec()),
                key: Some(b"K".to_vec()),
                ca: None,
            }
        );
        let configmap = ConfigMap {
            data: Some(BTreeMap::from([(
                "ca-bundle.crt".to_string(),
                "A".to_string(),
            )])),
            ..ConfigMap::default()
        };
        assert_eq!(
            AnchorsData::from_configmap(&configmap),
            AnchorsData {
                bundle: Some(b"A".to_vec())
            }
        );
        assert_eq!(
            AnchorsData::from_configmap(&ConfigMap::default()),
            AnchorsData { bundle: None }
        );
    }

    #[test]
    fn watch_events_settle_the_current_object() {
        const NAME: &str = "weft-identity-issuer";
        let ours = |value: &str| k8s_secret(NAME, &[("tls.crt", value)]);
        let data = |value: &str| SecretData {
            certificate: Some(value.as_bytes().to_vec()),
            ..SecretData::default()
        };
        /// (name, events, settled after each, the current certificate at the end).
        type Case = (
            &'static str,
            Vec<Event<Secret>>,
            Vec<bool>,
            Option<SecretData>,
        );
        let cases: Vec<Case> = vec![
            (
                "a relist with the object",
                vec![Event::Init, Event::InitApply(ours("a")), Event::InitDone],
                vec![false, false, true],
                Some(data("a")),
            ),
            (
                "a relist without it: gone",
                vec![Event::Apply(ours("a")), Event::Init, Event::InitDone],
                vec![true, false, true],
                None,
            ),
            (
                "edits and a deletion",
                vec![
                    Event::Apply(ours("a")),
                    Event::Apply(ours("b")),
                    Event::Delete(ours("b")),
                ],
                vec![true, true, true],
                None,
            ),
            (
                "another object is ignored",
                vec![
                    Event::Apply(ours("a")),
                    Event::Apply(k8s_secret("other", &[])),
                    Event::Delete(k8s_secret("other", &[])),
                ],
                vec![true, false, false],
                Some(data("a")),
            ),
            (
                "InitDone without Init settles nothing",
                vec![Event::InitDone],
                vec![false],
                None,
            ),
        ];
        for (name, events, expected_settled, expected) in cases {
            let mut watched = Watched::default();
            let settled: Vec<bool> = events
                .into_iter()
                .map(|event| watched.apply(event, NAME, SecretData::from_secret))
                .collect();
            assert_eq!(settled, expected_settled, "{name}");
            assert_eq!(watched.current, expected, "{name}");
        }
    }
}
