//! Which Argo CD applications deploy what we edit: the pure match of an application's sources
//! against our repository, branch and paths, used to find the apps (`argocd_app: auto`, a label
//! selector) and to check named ones before anything is published.
//!
//! Argo CD compares repository URLs after `git.NormalizeGitURL` (argo-cd `util/git/git.go`: lower
//! case, no `.git`, no trailing `/`, `ssh://git@host/p` and `git@host:p` alike); a source's
//! `targetRevision` empty or `HEAD` follows the repository's default branch, `refs/heads/X` is the
//! branch `X` (argo-cd `util/git/client.go` `LsRemote`); a source deploys what is under its `path`
//! (`.` or empty: the whole repository). Because Argo CD often reaches the forge by another address
//! than CI (an in-cluster service), a source with the same owner/name path on another host counts as
//! our repository too. [`resolve`] reads the apps and applies it.

use super::models::{Application, ApplicationSource};
use super::{Client, Error};

/// What the deploy edits, as the apps must match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited<'a> {
    /// The GitOps repository's clone URL.
    pub repo_url: &'a str,
    /// The branch written to (`None`: the repository's default branch, name unknown).
    pub branch: Option<&'a str>,
    /// The default branch's name, when known.
    pub default_branch: Option<&'a str>,
    /// The edited paths (kustomization directories, or files), from the repository root.
    pub paths: &'a [String],
}

/// Why one source of an application does not deploy what we edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// No source of the app is our repository.
    OtherRepository {
        /// The repositories its sources follow.
        repos: Vec<String>,
    },
    /// Our repository, another revision.
    OtherRevision {
        /// The source's `targetRevision` (`HEAD` when empty).
        target_revision: String,
        /// Our branch.
        branch: String,
    },
    /// Our repository and branch, another directory.
    OtherPath {
        /// The source's path.
        path: String,
        /// Our paths.
        paths: Vec<String>,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::OtherRepository { repos } if repos.is_empty() => {
                f.write_str("it has no git source")
            }
            Mismatch::OtherRepository { repos } => {
                write!(f, "it follows {}, not our repository", repos.join(", "))
            }
            Mismatch::OtherRevision {
                target_revision,
                branch,
            } => write!(
                f,
                "its source tracks revision {target_revision:?}, not the branch {branch:?} we write to"
            ),
            Mismatch::OtherPath { path, paths } => write!(
                f,
                "its source path {path:?} contains none of {}",
                paths.join(", ")
            ),
        }
    }
}

/// A repository URL as Argo CD compares them (`NormalizeGitURL`): lower case, without scheme, user,
/// `.git` and trailing `/`; `git@host:path` as `host/path`.
pub fn normalize_repo_url(url: &str) -> String {
    let u = url.trim().to_ascii_lowercase();
    let rest = match u.split_once("://") {
        Some((_, rest)) => rest.to_owned(),
        // scp-like `git@host:owner/repo`.
        None => match u.split_once(':') {
            Some((host, path)) if !path.starts_with('/') => format!("{host}/{path}"),
            _ => u.clone(),
        },
    };
    let rest = match rest.split_once('@') {
        Some((user, after)) if !user.contains('/') => after.to_owned(),
        _ => rest,
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    // Default ports say nothing.
    let host = host
        .strip_suffix(":443")
        .or_else(|| host.strip_suffix(":80"))
        .or_else(|| host.strip_suffix(":22"))
        .unwrap_or(host);
    let path = path.trim_end_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    format!("{host}/{path}")
}

/// `url` as it may be shown: without `user:password@`.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.cannot_be_a_base() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// True when `target_revision` follows our branch.
fn follows(target_revision: Option<&str>, e: &Edited<'_>) -> bool {
    let rev = target_revision.map(str::trim).unwrap_or_default();
    let rev = rev.strip_prefix("refs/heads/").unwrap_or(rev);
    let default = rev.is_empty() || rev == "HEAD";
    match (e.branch, default) {
        // We write the default branch and the app follows it.
        (None, true) => true,
        (None, false) => e.default_branch == Some(rev),
        // The default branch unknown: `HEAD` may be ours; the wait tells.
        (Some(b), true) => e.default_branch.is_none_or(|d| d == b),
        (Some(b), false) => b == rev,
    }
}

/// True when the source at `path` deploys something we edit: an edited path inside it (or the
/// source is the whole repository).
fn contains(path: Option<&str>, e: &Edited<'_>) -> bool {
    let p = path.unwrap_or_default().trim_matches('/');
    let p = p.strip_prefix("./").unwrap_or(p);
    if p.is_empty() || p == "." {
        return true;
    }
    e.paths.iter().any(|edited| {
        let edited = edited.trim_matches('/');
        edited == p || edited.starts_with(&format!("{p}/"))
    })
}

/// The index of the app's first source that deploys what we edit, or every reason none does (one per
/// source of our repository; or that no source is ours).
pub fn deploys(app: &Application, e: &Edited<'_>) -> Result<usize, Vec<Mismatch>> {
    let sources: Vec<&ApplicationSource> = if app.spec.sources.is_empty() {
        app.spec.source.iter().collect()
    } else {
        app.spec.sources.iter().collect()
    };
    let ours = normalize_repo_url(e.repo_url);
    // Argo CD often reaches the forge by another address than CI does (an in-cluster service, an
    // internal host name): the same owner/name path counts as our repository.
    let path_of = |n: &str| {
        n.split_once('/')
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default()
    };
    let our_path = path_of(&ours);
    let mut why = Vec::new();
    let mut others = Vec::new();
    // `ref` sources of ours on our branch: another source's `$ref/file` values are ours.
    let mut refs: Vec<(usize, &str)> = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let Some(url) = s.repo_url.as_deref() else {
            continue;
        };
        let theirs = normalize_repo_url(url);
        if theirs != ours && (our_path.is_empty() || path_of(&theirs) != our_path) {
            others.push(without_credentials(url));
            continue;
        }
        if !follows(s.target_revision.as_deref(), e) {
            why.push(Mismatch::OtherRevision {
                target_revision: s
                    .target_revision
                    .clone()
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "HEAD".into()),
                branch: e
                    .branch
                    .or(e.default_branch)
                    .unwrap_or("(the default branch)")
                    .to_owned(),
            });
            continue;
        }
        // A `ref`-only source (values for another source) deploys nothing itself.
        if let (None, Some(r)) = (&s.path, &s.ref_name) {
            refs.push((i, r.as_str()));
            continue;
        }
        if !contains(s.path.as_deref(), e) {
            why.push(Mismatch::OtherPath {
                path: s.path.clone().unwrap_or_default(),
                paths: e.paths.to_vec(),
            });
            continue;
        }
        return Ok(i);
    }
    // A chart (of any repository) whose values files are ours: `$values/envs/prod/values.yaml`.
    for (i, r) in &refs {
        let prefix = format!("${r}/");
        let ours = sources
            .iter()
            .filter_map(|s| s.helm.as_ref())
            .flat_map(|h| &h.value_files)
            .filter_map(|f| f.strip_prefix(&prefix))
            .any(|file| {
                e.paths.iter().any(|p| {
                    let p = p.trim_matches('/');
                    file == p || file.starts_with(&format!("{p}/"))
                })
            });
        if ours {
            return Ok(*i);
        }
    }
    if why.is_empty() {
        why.push(Mismatch::OtherRepository { repos: others });
    }
    Err(why)
}

/// Reads a file of our repository at the branch we write to (`None`: no such file, or it cannot be
/// read), so that kustomizations can be followed.
pub type ReadFile<'a> =
    &'a (dyn Fn(String) -> futures::future::BoxFuture<'static, Option<String>> + Sync);

/// The directories and files a kustomization's `resources`, `components` and `bases` name (remote
/// URLs left out), as written.
pub fn kustomization_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["resources", "components", "bases"] {
        for i in 0..500 {
            let Ok(path) = crate::edit::KeyPath::parse(&format!("{field}[{i}]")) else {
                break;
            };
            match crate::edit::values_at(text, &[path]) {
                Ok(v) => match v.into_iter().next().flatten() {
                    Some(entry) if !entry.contains("://") && !entry.starts_with("git@") => {
                        out.push(entry)
                    }
                    Some(_) => {}
                    None => break,
                },
                Err(_) => break,
            }
        }
    }
    out
}

/// `dir/entry` with `.` and `..` resolved, from the repository root; `None` when it leaves it.
pub fn join_relative(dir: &str, entry: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for p in entry.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// True when the kustomization at `start` includes (through `resources`, `components` and
/// `bases`, followed down to 10 levels) an edited path.
async fn includes(start: &str, edited: &[String], read: ReadFile<'_>) -> bool {
    let hit = |target: &str| {
        edited.iter().any(|e| {
            let e = e.trim_matches('/');
            e == target || e.starts_with(&format!("{target}/"))
        })
    };
    let mut queue = vec![(start.trim_matches('/').to_owned(), 0)];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((dir, depth)) = queue.pop() {
        if depth > 10 || !seen.insert(dir.clone()) || seen.len() > 100 {
            continue;
        }
        for name in crate::edit::KUSTOMIZATION_FILE_NAMES {
            let file = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            let Some(text) = read(file).await else {
                continue;
            };
            for entry in kustomization_refs(&text) {
                let Some(target) = join_relative(&dir, &entry) else {
                    continue;
                };
                if hit(&target) {
                    return true;
                }
                queue.push((target, depth + 1));
            }
            break;
        }
    }
    false
}

/// [`deploys`], and when a source of ours only differs by its path, whether its kustomization
/// includes an edited path (with `read`).
async fn deploys_or_includes(
    app: &Application,
    e: &Edited<'_>,
    read: Option<ReadFile<'_>>,
) -> Result<usize, Vec<Mismatch>> {
    let why = match deploys(app, e) {
        Ok(i) => return Ok(i),
        Err(why) => why,
    };
    if let Some(read) = read {
        for m in &why {
            if let Mismatch::OtherPath { path, .. } = m {
                if includes(path, e.paths, read).await {
                    return Ok(0);
                }
            }
        }
    }
    Err(why)
}

/// Which apps the deploy waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These apps; each must deploy what we edit (checked before publishing).
    Named(Vec<String>),
    /// The apps whose labels match this selector and that deploy what we edit.
    Selector(String),
    /// Every app that deploys what we edit (`argocd_app: auto`).
    Auto,
}

/// Why the apps to wait for could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Reading an app or the list failed.
    #[error("cannot read {what} from Argo CD")]
    Read {
        /// What was read.
        what: String,
        /// Why.
        #[source]
        source: Error,
    },
    /// Named apps that do not deploy what we edit.
    #[error(
        "{} (checked before publishing; if Argo CD reads this repository under another name, \
         such as a mirror, set argocd_preflight: false)",
        describe_mismatches(apps)
    )]
    NotDeploying {
        /// Each app and why.
        apps: Vec<(String, Vec<Mismatch>)>,
    },
    /// No app deploys what we edit.
    #[error(
        "no Argo CD application {how} deploys {paths} of {repo} at {branch} (looked at {looked}{}); \
         name the apps with argocd_app",
        if closest.is_empty() { String::new() } else { format!(": {}", describe_mismatches(closest)) }
    )]
    NoneFound {
        /// How they were looked for.
        how: String,
        /// Our paths.
        paths: String,
        /// Our repository.
        repo: String,
        /// Our branch.
        branch: String,
        /// Apps looked at.
        looked: usize,
        /// The first few apps and why they do not match.
        closest: Vec<(String, Vec<Mismatch>)>,
    },
}

impl ResolveError {
    /// True when the failure is the user's input (the apps do not match): exit code 2.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, ResolveError::Read { .. })
    }
}

fn describe_mismatches(apps: &[(String, Vec<Mismatch>)]) -> String {
    apps.iter()
        .map(|(app, why)| {
            let why: Vec<String> = why.iter().map(ToString::to_string).collect();
            format!(
                "app {app:?} does not deploy what this run edits: {}",
                why.join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Settles the apps to wait for: named ones are read and checked, a selector or `auto` lists the
/// apps (of `project`, in `app_namespace`) and keeps those that deploy what we edit (directly, or,
/// with `read`, through a kustomization that includes an edited path). Without
/// `edited` (waiting for a commit someone else made), named apps are taken as they are and a
/// selector keeps every app it matches.
///
/// # Errors
/// See [`ResolveError`].
pub async fn resolve(
    client: &Client,
    selection: &Selection,
    project: Option<&str>,
    app_namespace: Option<&str>,
    edited: Option<&Edited<'_>>,
    read: Option<ReadFile<'_>>,
) -> Result<Vec<String>, ResolveError> {
    let name_of = |a: &Application| a.metadata.name.clone().unwrap_or_default();
    match selection {
        Selection::Named(names) if edited.is_none() => Ok(names.clone()),
        Selection::Named(names) => {
            let mut wrong = Vec::new();
            for name in names {
                let app = client
                    .apps()
                    .get(name)
                    .app_namespace(app_namespace)
                    .project(project)
                    .send()
                    .await
                    .map_err(|source| ResolveError::Read {
                        what: format!("application {name:?}"),
                        source,
                    })?;
                let verdict = match edited {
                    Some(e) => deploys_or_includes(&app, e, read).await,
                    None => Ok(0),
                };
                if let Err(why) = verdict {
                    wrong.push((name.clone(), why));
                }
            }
            if wrong.is_empty() {
                Ok(names.clone())
            } else {
                Err(ResolveError::NotDeploying { apps: wrong })
            }
        }
        Selection::Selector(_) | Selection::Auto => {
            let selector = match selection {
                Selection::Selector(s) => Some(s.as_str()),
                _ => None,
            };
            let apps = client
                .apps()
                .list()
                .selector(selector)
                .project(project)
                .app_namespace(app_namespace)
                .send()
                .await
                .map_err(|source| ResolveError::Read {
                    what: "the applications".into(),
                    source,
                })?;
            let mut found = Vec::new();
            let mut closest = Vec::new();
            for app in &apps {
                let verdict = match edited {
                    Some(e) => deploys_or_includes(app, e, read).await,
                    None => Ok(0),
                };
                match verdict {
                    Ok(_) => found.push(name_of(app)),
                    Err(why) if closest.len() < 5 => closest.push((name_of(app), why)),
                    Err(_) => {}
                }
            }
            found.sort();
            if found.is_empty() {
                let (paths, repo, branch) = match edited {
                    Some(e) => (
                        e.paths.join(", "),
                        e.repo_url.to_owned(),
                        e.branch
                            .or(e.default_branch)
                            .unwrap_or("(the default branch)")
                            .to_owned(),
                    ),
                    None => (
                        "anything".into(),
                        "any repository".into(),
                        "any branch".into(),
                    ),
                };
                return Err(ResolveError::NoneFound {
                    how: match selector {
                        Some(s) => format!("matching {s:?}"),
                        None => "(auto)".into(),
                    },
                    paths,
                    repo,
                    branch,
                    looked: apps.len(),
                    closest,
                });
            }
            Ok(found)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kustomization_references_are_followed_relative_to_their_directory() {
        let text = "resources:\n- ../../overlays/eu\n- service.yaml\n- https://github.com/x/y//base\ncomponents:\n  - ../components/tls\nbases: [../legacy]\n";
        assert_eq!(
            kustomization_refs(text),
            [
                "../../overlays/eu",
                "service.yaml",
                "../components/tls",
                "../legacy"
            ]
        );
        assert_eq!(
            join_relative("apps/web/wrappers/eu", "../../overlays/eu").as_deref(),
            Some("apps/web/overlays/eu")
        );
        assert_eq!(
            join_relative("apps", "./x/./y").as_deref(),
            Some("apps/x/y")
        );
        assert_eq!(join_relative("apps", "../../x"), None);
    }

    #[test]
    fn repository_urls_compare_as_argo_cd_normalizes_them() {
        for (a, b, same) in [
            (
                "https://git.example.com/ops/gitops.git",
                "https://git.example.com/ops/gitops",
                true,
            ),
            (
                "https://Git.Example.com/Ops/GitOps/",
                "https://git.example.com/ops/gitops.git",
                true,
            ),
            (
                "https://user:t0ken@git.example.com/ops/gitops",
                "https://git.example.com/ops/gitops",
                true,
            ),
            (
                "git@git.example.com:ops/gitops.git",
                "ssh://git@git.example.com/ops/gitops",
                true,
            ),
            (
                "https://git.example.com:443/ops/gitops",
                "https://git.example.com/ops/gitops",
                true,
            ),
            (
                "http://127.0.0.1:3000/ops/gitops.git",
                "http://127.0.0.1:3000/ops/gitops",
                true,
            ),
            (
                "https://git.example.com/ops/gitops",
                "https://git.example.com/ops/other",
                false,
            ),
            (
                "https://git.example.com/ops/gitops",
                "https://other.example.com/ops/gitops",
                false,
            ),
        ] {
            assert_eq!(
                normalize_repo_url(a) == normalize_repo_url(b),
                same,
                "{a} vs {b}"
            );
        }
    }

    fn app(sources: serde_json::Value) -> Application {
        let spec = if sources.is_array() {
            json!({"sources": sources})
        } else {
            json!({"source": sources})
        };
        serde_json::from_value(json!({"metadata": {"name": "a"}, "spec": spec})).unwrap()
    }

    #[test]
    fn apps_deploy_what_we_edit_or_say_why_not() {
        let paths = vec!["apps/web/overlays/prod".to_owned()];
        let ours = "https://git.example.com/ops/gitops.git";
        let e = Edited {
            repo_url: ours,
            branch: Some("main"),
            default_branch: Some("main"),
            paths: &paths,
        };
        let src = |repo: &str, rev: &str, path: &str| json!({"repoURL": repo, "targetRevision": rev, "path": path});
        let ok = |a: &Application| deploys(a, &e);
        assert_eq!(ok(&app(src(ours, "main", "apps/web/overlays/prod"))), Ok(0));
        assert_eq!(
            ok(&app(src(
                "https://git.example.com/ops/gitops",
                "HEAD",
                "apps/web"
            ))),
            Ok(0)
        );
        assert_eq!(ok(&app(src(ours, "", "."))), Ok(0));
        assert_eq!(
            ok(&app(src(
                ours,
                "refs/heads/main",
                "apps/web/overlays/prod/"
            ))),
            Ok(0)
        );
        assert_eq!(
            ok(&app(src(
                "https://git.example.com/ops/other",
                "main",
                "apps/web"
            ))),
            Err(vec![Mismatch::OtherRepository {
                repos: vec!["https://git.example.com/ops/other".into()]
            }])
        );
        assert_eq!(
            ok(&app(src(ours, "release", "apps/web/overlays/prod"))),
            Err(vec![Mismatch::OtherRevision {
                target_revision: "release".into(),
                branch: "main".into()
            }])
        );
        assert_eq!(
            ok(&app(src(ours, "main", "apps/web/overlays/staging"))),
            Err(vec![Mismatch::OtherPath {
                path: "apps/web/overlays/staging".into(),
                paths: paths.clone()
            }])
        );
        // `apps/web/overlays/pro` is not a parent of `…/prod`.
        assert!(ok(&app(src(ours, "main", "apps/web/overlays/pro"))).is_err());
        // Argo CD reaching the forge by an in-cluster address: the same owner/name.
        assert_eq!(
            ok(&app(src(
                "http://gitea-http.gitea.svc:3000/ops/gitops.git",
                "main",
                "apps/web"
            ))),
            Ok(0)
        );
        // Multi-source: a chart from elsewhere, values from us (a `ref` source), our overlay.
        let multi = app(json!([
            {"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"},
            {"repoURL": ours, "targetRevision": "main", "ref": "values"},
            {"repoURL": ours, "targetRevision": "main", "path": "apps/web/overlays/prod"},
        ]));
        assert_eq!(ok(&multi), Ok(2));
        // A chart from elsewhere with values files from our `ref` source: ours when we edit them.
        let values = vec!["envs/prod/values.yaml".to_owned()];
        let helm = Edited {
            paths: &values,
            ..e.clone()
        };
        let chart = app(json!([
            {"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3",
             "helm": {"valueFiles": ["$values/envs/prod/values.yaml"]}},
            {"repoURL": ours, "targetRevision": "main", "ref": "values"},
        ]));
        assert_eq!(deploys(&chart, &helm), Ok(1));
        let staging = vec!["envs/staging/values.yaml".to_owned()];
        assert!(deploys(
            &chart,
            &Edited {
                paths: &staging,
                ..e.clone()
            }
        )
        .is_err());
        // Another source of ours, another path: its reason is named.
        let elsewhere = app(json!([
            {"repoURL": "https://charts.example.com", "targetRevision": "1.2.3"},
            {"repoURL": ours, "targetRevision": "main", "path": "apps/api"},
        ]));
        assert_eq!(
            ok(&elsewhere),
            Err(vec![Mismatch::OtherPath {
                path: "apps/api".into(),
                paths: paths.clone()
            }])
        );
        // The default branch unknown: HEAD follows it only when we write the default branch.
        let unknown = Edited {
            branch: None,
            default_branch: None,
            ..e.clone()
        };
        assert_eq!(deploys(&app(src(ours, "HEAD", "apps")), &unknown), Ok(0));
        assert!(deploys(&app(src(ours, "main", "apps")), &unknown).is_err());
        // A branch given, the default unknown: an app on `HEAD` is not refused.
        let named = Edited {
            default_branch: None,
            ..e.clone()
        };
        assert_eq!(deploys(&app(src(ours, "HEAD", "apps")), &named), Ok(0));
        // Credentials in an app's URL are not repeated in messages.
        let secret = app(src(
            "https://bot:s3cret@other.example.com/x/y.git",
            "main",
            "apps",
        ));
        let why = deploys(&secret, &e).unwrap_err()[0].to_string();
        assert!(
            !why.contains("s3cret") && why.contains("https://other.example.com/x/y.git"),
            "{why}"
        );
        assert_eq!(
            Mismatch::OtherRevision {
                target_revision: "release".into(),
                branch: "main".into()
            }
            .to_string(),
            "its source tracks revision \"release\", not the branch \"main\" we write to"
        );
    }
}
