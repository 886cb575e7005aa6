//! The Kubernetes source: the API client (`--kubernetes`, `--kubeconfig`,
//! `--kube-context`) and, from it, the watches that feed the catalog the
//! same objects a mesh file would.

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::KubernetesArgs;

/// Why the Kubernetes API client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `--kubeconfig` cannot be read or parsed.
    #[error("--kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// No configuration could be found (not in a cluster, no kubeconfig).
    #[error("no Kubernetes configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The configuration names no usable cluster or context.
    #[error("Kubernetes configuration: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    /// The client could not be built from the configuration.
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// The API client the flags describe: `--kubeconfig` (and `--kube-context`)
/// when given, else the in-cluster ServiceAccount, else `$KUBECONFIG` or
/// `~/.kube/config`.
pub async fn connect(args: &KubernetesArgs) -> Result<kube::Client, ConnectError> {
    let options = KubeConfigOptions {
        context: args.kube_context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| ConnectError::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None if args.kube_context.is_some() => kube::Config::from_kubeconfig(&options).await?,
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}
