//! Where rollout snapshots come from: Argo CD (resource tree + live resources; no cluster
//! credentials needed) or kube-rs with a kubeconfig (one watcher per workload, docs/research/argocd-rollout.md C3).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;

use super::{
    image_matches, image_repository, stuck_pods, Kind, RolloutSnapshot, StuckPod, Workload,
    WorkloadRef,
};
use crate::argocd::models::ApplicationTree;
use crate::argocd::{self, ResourceKey};
use crate::secret::Secret;
use crate::wait::POLL_INTERVAL;

/// Errors of the rollout sources.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be parsed or used.
    #[error("kubeconfig: {what}")]
    Kubeconfig {
        /// What is wrong (never the content).
        what: String,
    },
    /// Reading from Argo CD failed.
    #[error("reading workloads through Argo CD failed")]
    Argo {
        /// The cause.
        #[source]
        source: argocd::Error,
    },
}

/// The Argo CD application whose resources are read.
#[derive(Debug, Clone)]
pub struct ArgoApp {
    /// The client.
    pub client: argocd::Client,
    /// App name.
    pub app: String,
    /// App namespace.
    pub app_namespace: Option<String>,
    /// Project.
    pub project: Option<String>,
}

impl ArgoApp {
    async fn tree(&self) -> Result<ApplicationTree, argocd::Error> {
        self.client
            .apps()
            .resource_tree(&self.app)
            .app_namespace(self.app_namespace.as_deref())
            .project(self.project.as_deref())
            .send()
            .await
    }

    /// The live object; `Ok(None)` while it is not part of the application (or not in the cluster).
    async fn live(&self, r: &WorkloadRef) -> Result<Option<Workload>, SourceError> {
        let key = ResourceKey {
            group: r.kind.group().into(),
            version: r.kind.version().into(),
            kind: r.kind.as_str().into(),
            namespace: r.namespace.clone().unwrap_or_default(),
            name: r.name.clone(),
        };
        match self
            .client
            .apps()
            .resource(&self.app, &key)
            .app_namespace(self.app_namespace.as_deref())
            .project(self.project.as_deref())
            .send()
            .await
        {
            Ok(v) => Workload::from_json(v)
                .map(Some)
                .map_err(|source| SourceError::Decode {
                    workload: r.to_string(),
                    source,
                }),
            Err(e) if e.is_resource_not_found() => Ok(None),
            Err(source) => Err(SourceError::Read {
                workload: r.to_string(),
                source,
            }),
        }
    }

    /// [`ArgoApp::live`], with a `workloadRef` Rollout's template read from its Deployment.
    async fn live_resolved(&self, r: &WorkloadRef) -> Result<Option<Workload>, SourceError> {
        let mut live = self.live(r).await?;
        if let Some(Workload::Rollout(ro)) = &mut live {
            // (Stored with no template, or an empty one: the Deployment's is what runs.)
            if let Some(name) = ro.workload_ref().map(str::to_owned) {
                let dep = WorkloadRef {
                    kind: Kind::Deployment,
                    namespace: r.namespace.clone(),
                    name,
                };
                if let Some(Workload::Deployment(d)) = self.live(&dep).await? {
                    if let Some(spec) = d.spec {
                        ro.resolve_template(spec.template);
                    }
                }
            }
        }
        Ok(live)
    }
}

/// Finds the workloads to check through Argo CD: the explicit targets (their namespace filled from
/// the tree when not given), or else every Deployment/StatefulSet/DaemonSet/Rollout of the app whose
/// pod template uses one of our images' repositories (every one of them when `images` is empty).
///
/// # Errors
/// [`Error::Argo`] when the tree cannot be read.
pub async fn discover_via_argo(
    argo: &ArgoApp,
    explicit: &[WorkloadRef],
    images: &[String],
) -> Result<Vec<WorkloadRef>, Error> {
    let tree = argo.tree().await.map_err(|source| Error::Argo { source })?;
    let workloads: Vec<WorkloadRef> = tree
        .nodes
        .iter()
        .filter(|n| n.parent_refs.is_empty())
        .filter_map(|n| {
            let kind = Kind::parse(n.kind.as_deref()?)?;
            (n.group.as_deref() == Some(kind.group())).then_some(())?;
            Some(WorkloadRef {
                kind,
                namespace: n.namespace.clone(),
                name: n.name.clone()?,
            })
        })
        .collect();
    if !explicit.is_empty() {
        return Ok(explicit
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.namespace.is_none() {
                    r.namespace = workloads
                        .iter()
                        .find(|w| w.kind == r.kind && w.name == r.name)
                        .and_then(|w| w.namespace.clone());
                }
                r
            })
            .collect());
    }
    let mut out = Vec::new();
    for r in workloads {
        let Ok(Some(w)) = argo.live_resolved(&r).await else {
            continue;
        };
        // A workloadRef Rollout whose Deployment could not be read may run ours: kept, so it is
        // waited for (and named) rather than skipped.
        let unknown = matches!(&w, Workload::Rollout(ro)
            if ro.workload_ref().is_some() && w.template_images().is_empty());
        let uses_ours = images.is_empty()
            || unknown
            || w.template_images().iter().any(|live| {
                images.iter().any(|want| {
                    image_repository(live) == image_repository(want) || image_matches(live, want)
                })
            });
        if uses_ours {
            out.push(r);
        }
    }
    Ok(out)
}

/// Polls the live objects and the tree through Argo CD every 2 s.
pub fn argo_snapshots(
    argo: ArgoApp,
    targets: Vec<WorkloadRef>,
    images: Vec<String>,
) -> BoxStream<'static, Result<RolloutSnapshot, SourceError>> {
    crate::wait::poll(POLL_INTERVAL, move || {
        let argo = argo.clone();
        let targets = targets.clone();
        let images = images.clone();
        async move {
            let mut workloads = Vec::new();
            for r in &targets {
                let live = argo.live_resolved(r).await?;
                workloads.push((r.clone(), live));
            }
            let stuck = match argo.tree().await {
                Ok(tree) => stuck_from_tree(&tree, &images),
                Err(_) => Vec::new(),
            };
            Ok(RolloutSnapshot { workloads, stuck })
        }
    })
    .boxed()
}

/// Pods of our image that Argo CD marks `Degraded` (it does so for CrashLoopBackOff, ImagePullBackOff
/// and friends); the reason comes from the node's `Status Reason` info item when present.
pub fn stuck_from_tree(tree: &ApplicationTree, images: &[String]) -> Vec<StuckPod> {
    tree.nodes
        .iter()
        .filter(|n| n.kind.as_deref() == Some("Pod"))
        .filter(|n| {
            images.is_empty()
                || n.images
                    .iter()
                    .any(|l| images.iter().any(|w| image_matches(l, w)))
        })
        .filter(|n| {
            n.health
                .as_ref()
                .is_some_and(|h| h.status.as_deref() == Some("Degraded"))
        })
        .map(|n| StuckPod {
            pod: format!(
                "{}/{}",
                n.namespace.as_deref().unwrap_or(""),
                n.name.as_deref().unwrap_or("")
            ),
            reason: n
                .info
                .iter()
                .find(|i| i.name.as_deref() == Some("Status Reason"))
                .and_then(|i| i.value.clone())
                .unwrap_or_else(|| "Degraded".into()),
            message: n
                .health
                .as_ref()
                .and_then(|h| h.message.clone())
                .unwrap_or_default(),
        })
        .collect()
}

/// A kube client from kubeconfig text, and the context's default namespace.
///
/// # Errors
/// [`Error::Kubeconfig`]; the message never contains the kubeconfig itself.
pub async fn kube_client(kubeconfig: &Secret) -> Result<(kube::Client, String), Error> {
    let kc = kube::config::Kubeconfig::from_yaml(kubeconfig.expose()).map_err(|_| {
        Error::Kubeconfig {
            what: "not a valid kubeconfig document".into(),
        }
    })?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Kubeconfig {
            what: format!("cannot use it: {}", kube_error_kind(&e)),
        })?;
    let ns = cfg.default_namespace.clone();
    let client = kube::Client::try_from(cfg).map_err(|_| Error::Kubeconfig {
        what: "cannot build a client from it".into(),
    })?;
    Ok((client, ns))
}

/// Only the variant's headline: kubeconfig errors can quote file content.
fn kube_error_kind(e: &kube::config::KubeconfigError) -> String {
    let s = e.to_string();
    s.split(':').next().unwrap_or("invalid").to_owned()
}

/// Why a rollout source yielded no snapshot this time (reported once; the source goes on).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading the live object through Argo CD failed.
    #[error("{workload}")]
    Read {
        /// The workload.
        workload: String,
        /// Argo CD's error.
        #[source]
        source: argocd::Error,
    },
    /// The live object is not a workload this phase can judge.
    #[error("{workload}")]
    Decode {
        /// The workload.
        workload: String,
        /// What is wrong with it.
        #[source]
        source: super::DecodeError,
    },
    /// A Kubernetes watch failed; kube-rs's watcher re-lists on its own.
    #[error("watch interrupted; resuming")]
    Watch(#[source] watcher::Error),
}

enum KubeEvent {
    Object(usize, Box<Workload>),
    Error(SourceError),
    Tick,
}

/// Watches each target with a kube-rs `watcher` (field selector on the name, default backoff;
/// errors are yielded and skipped, so a 410 re-lists — docs/research/argocd-rollout.md C3) and lists the pods of the
/// workloads every 2 s for stuck-pod detection.
pub fn kube_snapshots(
    client: kube::Client,
    default_ns: String,
    targets: Vec<WorkloadRef>,
    images: Vec<String>,
) -> BoxStream<'static, Result<RolloutSnapshot, SourceError>> {
    let targets: Vec<WorkloadRef> = targets
        .into_iter()
        .map(|mut r| {
            r.namespace.get_or_insert_with(|| default_ns.clone());
            r
        })
        .collect();
    let mut streams: Vec<BoxStream<'static, KubeEvent>> = Vec::new();
    for (i, r) in targets.iter().enumerate() {
        let ns = r.namespace.clone().unwrap_or_default();
        let cfg = watcher::Config::default().fields(&format!("metadata.name={}", r.name));
        let s: BoxStream<'static, KubeEvent> = match r.kind {
            Kind::Deployment => watch(
                kube::Api::<Deployment>::namespaced(client.clone(), &ns),
                cfg,
                i,
                |o| Ok(Workload::Deployment(o)),
            ),
            Kind::StatefulSet => watch(
                kube::Api::<StatefulSet>::namespaced(client.clone(), &ns),
                cfg,
                i,
                |o| Ok(Workload::StatefulSet(o)),
            ),
            Kind::DaemonSet => watch(
                kube::Api::<DaemonSet>::namespaced(client.clone(), &ns),
                cfg,
                i,
                |o| Ok(Workload::DaemonSet(o)),
            ),
            // A custom resource: read untyped, decoded like the manifests Argo CD serves.
            Kind::Rollout => {
                let gvk = kube::api::GroupVersionKind::gvk(
                    Kind::Rollout.group(),
                    Kind::Rollout.version(),
                    Kind::Rollout.as_str(),
                );
                let resource = kube::api::ApiResource::from_gvk(&gvk);
                watch(
                    kube::Api::<kube::api::DynamicObject>::namespaced_with(
                        client.clone(),
                        &ns,
                        &resource,
                    ),
                    cfg,
                    i,
                    |obj| {
                        let name =
                            format!("rollout/{}", obj.metadata.name.clone().unwrap_or_default());
                        serde_json::to_value(obj)
                            .map_err(|source| super::DecodeError::Invalid {
                                kind: "Rollout".into(),
                                source,
                            })
                            .and_then(Workload::from_json)
                            .map_err(|source| SourceError::Decode {
                                workload: name,
                                source,
                            })
                    },
                )
            }
        };
        streams.push(s);
    }
    let ticks = futures::stream::unfold((), |()| async {
        tokio::time::sleep(POLL_INTERVAL).await;
        Some((KubeEvent::Tick, ()))
    })
    .boxed();
    streams.push(ticks);
    let merged = futures::stream::select_all(streams);
    struct St {
        merged: futures::stream::SelectAll<BoxStream<'static, KubeEvent>>,
        live: BTreeMap<usize, Workload>,
        client: kube::Client,
        targets: Vec<WorkloadRef>,
        images: Vec<String>,
    }
    let st = St {
        merged,
        live: BTreeMap::new(),
        client,
        targets,
        images,
    };
    futures::stream::unfold(st, |mut st| async move {
        let ev = st.merged.next().await?;
        match ev {
            KubeEvent::Error(e) => return Some((Err(e), st)),
            KubeEvent::Object(i, w) => {
                st.live.insert(i, *w);
            }
            KubeEvent::Tick => {}
        }
        // A workloadRef Rollout's template is its Deployment's: read it on every snapshot.
        for (i, w) in st.live.iter_mut() {
            if let Workload::Rollout(ro) = w {
                if let Some(name) = ro.workload_ref().map(str::to_owned) {
                    let ns = st.targets[*i].namespace.clone().unwrap_or_default();
                    let api = kube::Api::<Deployment>::namespaced(st.client.clone(), &ns);
                    if let Ok(Ok(d)) =
                        tokio::time::timeout(Duration::from_secs(5), api.get(&name)).await
                    {
                        if let Some(spec) = d.spec {
                            ro.resolve_template(spec.template);
                        }
                    }
                }
            }
        }
        let mut stuck = Vec::new();
        for (i, w) in &st.live {
            if super::rollout_verdict(w, &st.images).is_ready() {
                continue;
            }
            let ns = st.targets[*i].namespace.clone().unwrap_or_default();
            stuck.extend(pods_of(&st.client, &ns, w, &st.images).await);
        }
        let workloads = st
            .targets
            .iter()
            .enumerate()
            .map(|(i, r)| (r.clone(), st.live.get(&i).cloned()))
            .collect();
        Some((Ok(RolloutSnapshot { workloads, stuck }), st))
    })
    .boxed()
}

fn watch<K>(
    api: kube::Api<K>,
    cfg: watcher::Config,
    index: usize,
    decode: fn(K) -> Result<Workload, SourceError>,
) -> BoxStream<'static, KubeEvent>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher(api, cfg)
        .default_backoff()
        .applied_objects()
        .map(move |item| match item {
            Ok(obj) => match decode(obj) {
                Ok(w) => KubeEvent::Object(index, Box::new(w)),
                Err(e) => KubeEvent::Error(e),
            },
            // Logged and skipped: the watcher re-lists after a 410 on its own.
            Err(e) => KubeEvent::Error(SourceError::Watch(e)),
        })
        .boxed()
}

/// Stuck pods of a workload, listed by its selector. Listing errors are ignored: pods are only a
/// faster way to fail, the workload status still decides.
async fn pods_of(
    client: &kube::Client,
    ns: &str,
    w: &Workload,
    images: &[String],
) -> Vec<StuckPod> {
    let labels: BTreeMap<String, String> = match w {
        Workload::Deployment(d) => d
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone()),
        Workload::StatefulSet(s) => s
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone()),
        Workload::DaemonSet(d) => d
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone()),
        Workload::Rollout(r) => r.object["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            }),
    }
    .unwrap_or_default();
    if labels.is_empty() {
        return Vec::new();
    }
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let api = kube::Api::<Pod>::namespaced(client.clone(), ns);
    let lp = kube::api::ListParams::default().labels(&selector);
    match tokio::time::timeout(Duration::from_secs(5), api.list(&lp)).await {
        Ok(Ok(list)) => stuck_pods(&list.items, images),
        _ => Vec::new(),
    }
}
