//! Names a weft installation on Kubernetes shares between `weft install`
//! (which writes them), the controller (which reads them), `weft check`
//! (which looks for them) and the proxy injector: one place, so they cannot
//! drift apart.

/// The control plane's namespace (also the identity names' control namespace).
pub const CONTROL_PLANE_NAMESPACE: &str = crate::names::DEFAULT_CONTROL_NAMESPACE;
/// The controller's Deployment, ServiceAccount, ClusterRole and ClusterRoleBinding.
pub const CONTROLLER_NAME: &str = "weft-controller";
/// The label every control-plane object carries, valued by its component
/// (`controller`).
pub const CONTROL_PLANE_COMPONENT_LABEL: &str = "weft.io/control-plane-component";
/// The component value of the controller's pods.
pub const CONTROLLER_COMPONENT: &str = "controller";
/// The label naming the control plane's namespace, on every object `weft install` writes.
pub const CONTROL_PLANE_NAMESPACE_LABEL: &str = "weft.io/control-plane-ns";
/// The Service in front of the Destination (and policy) gRPC port.
pub const DESTINATION_SERVICE: &str = "weft-dst";
/// The Destination port (Linkerd's 8086).
pub const DESTINATION_PORT: u16 = 8086;
/// The Service in front of the Identity gRPC port.
pub const IDENTITY_SERVICE: &str = "weft-identity";
/// The Identity port (Linkerd's 8080).
pub const IDENTITY_PORT: u16 = 8080;
/// The Service in front of the policy gRPC port.
pub const POLICY_SERVICE: &str = "weft-policy";
/// The policy port (Linkerd's 8090).
pub const POLICY_PORT: u16 = 8090;
/// The Service in front of the HTTP API and dashboard.
pub const WEB_SERVICE: &str = "weft-web";
/// The web port.
pub const WEB_PORT: u16 = 8084;
/// The controller's admin port (/metrics, /ready, /live).
pub const ADMIN_PORT: u16 = 9990;
/// The Secret holding the identity issuer (`kubernetes.io/tls`: `tls.crt`,
/// `tls.key`, and `ca.crt` as cert-manager writes it).
pub const ISSUER_SECRET: &str = "weft-identity-issuer";
/// The ConfigMap holding the trust anchors (PEM bundle under [`TRUST_ANCHORS_KEY`]).
pub const TRUST_ANCHORS_CONFIGMAP: &str = "weft-identity-trust-roots";
/// The key of the trust-anchor bundle in [`TRUST_ANCHORS_CONFIGMAP`].
pub const TRUST_ANCHORS_KEY: &str = "ca-bundle.crt";
/// The Secret holding the HTTP API's bearer token (tap), shared by every replica.
pub const API_TOKEN_SECRET: &str = "weft-api-token";
/// The audience of the projected ServiceAccount tokens proxies present to
/// the Identity service (Linkerd's is `identity.l5d.io`).
pub const TOKEN_AUDIENCE: &str = "identity.weft.io";
/// The weft proxy's container name in a meshed pod.
pub const PROXY_CONTAINER_NAME: &str = "weft-proxy";
/// linkerd2-proxy's container name: such pods are meshed, by Linkerd's proxy.
pub const LINKERD_PROXY_CONTAINER_NAME: &str = "linkerd-proxy";
/// The init container that installs the iptables rules.
pub const INIT_CONTAINER_NAME: &str = "weft-init";
/// The injection annotation (`enabled`, `disabled`, `ingress`) on a pod or namespace.
pub const INJECT_ANNOTATION: &str = "weft.io/inject";
/// The annotation the injector writes with the injected proxy's version.
pub const PROXY_VERSION_ANNOTATION: &str = "weft.io/proxy-version";
/// The proxy injector's MutatingWebhookConfiguration.
pub const PROXY_INJECTOR_WEBHOOK: &str = "weft-proxy-injector";
/// The proxy's variable holding its trust anchors (PEM), which an injected
/// proxy gets from the trust-anchor ConfigMap.
pub const PROXY_TRUST_ANCHORS_VARIABLE: &str = "WEFT_PROXY_IDENTITY_TRUST_ANCHORS";
/// The annotation the injector writes with the identity mode (`default`: a
/// certificate from the controller for the pod's ServiceAccount).
pub const IDENTITY_MODE_ANNOTATION: &str = "weft.io/identity-mode";
/// The annotation the injector writes on a pod it was asked to inject but
/// did not (host network), saying why.
pub const INJECT_SKIPPED_ANNOTATION: &str = "weft.io/inject-skipped";
/// The label the injector puts on meshed pods, valued by the control plane's namespace.
pub const PROXY_CONTROL_PLANE_LABEL: &str = CONTROL_PLANE_NAMESPACE_LABEL;
/// The proxy injector's Service (in front of the controller's webhook port).
pub const INJECTOR_SERVICE: &str = "weft-proxy-injector";
/// The controller's webhook port (HTTPS; the Service's 443 targets it).
pub const INJECTOR_PORT: u16 = 8443;
/// The path the API server posts pod AdmissionReviews to.
pub const INJECTOR_PATH: &str = "/inject";
/// The user the injected proxy runs as; `weft-init` leaves its traffic alone.
pub const PROXY_UID: i64 = 2102;
/// The injected proxy's inbound port (the PREROUTING redirect's target).
pub const PROXY_INBOUND_PORT: u16 = 4143;
/// The injected proxy's outbound port (the OUTPUT redirect's target).
pub const PROXY_OUTBOUND_PORT: u16 = 4140;
/// The injected proxy's admin port (probes, /metrics).
pub const PROXY_ADMIN_PORT: u16 = 4191;
/// The injected proxy's tap port.
pub const PROXY_TAP_PORT: u16 = 4190;
/// The projected ServiceAccount token volume the injected proxy presents to Identity.
pub const IDENTITY_TOKEN_VOLUME: &str = "weft-identity-token";
/// Where that volume is mounted in the proxy container.
pub const IDENTITY_TOKEN_DIRECTORY: &str = "/var/run/weft/identity";
/// The token's file name in that directory.
pub const IDENTITY_TOKEN_FILE: &str = "token";
