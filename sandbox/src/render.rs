//! A small kustomize: renders a kustomization directory at a git revision of a bare repository.
//!
//! An application directory is read the way Argo CD's repo server chooses (argo-cd
//! `util/app/discovery/discovery.go`, `Discover`/`AppType`): a kustomization file makes it a
//! Kustomize app (it wins over a `Chart.yaml` in the same directory, which the walk visits first), a
//! `Chart.yaml` a Helm app, anything else a plain directory (its `*.yaml`, `*.yml` and `*.json`
//! files, not recursive: Argo CD's `directory.recurse` defaults to false). Helm is rendered by a tiny
//! stand-in: `values.yaml` read as YAML (so a plain `tag: 1.10` is the number 1.1, as Helm's
//! sigs.k8s.io/yaml reads it), and `templates/*.yaml` with `{{ .Values.a.b }}` placeholders only;
//! any other template syntax is an error, so a fixture that needs more fails loudly.
//!
//! It supports what the sandbox's Argo CD needs and nothing more: `resources` (files, and directories
//! that hold a kustomization, recursively), `images` (matching and rewriting exactly as kustomize v5.5,
//! docs/research/kustomize.md §2) and `namespace`. Files are read with `git show REV:path` and
//! `git ls-tree`, so nothing is checked out. Agreement with `kubectl kustomize` is tested in
//! `tests/kube.rs`. It must not grow into a general kustomize: unsupported fields are an error, so a
//! fixture that needs them fails loudly instead of rendering something different.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// File names kustomize accepts for a kustomization, in its search order.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Top-level kustomization fields the renderer understands (others are rejected).
const SUPPORTED_FIELDS: [&str; 5] = ["apiVersion", "kind", "resources", "images", "namespace"];

/// Kinds kustomize treats as cluster-scoped: `namespace:` leaves them alone.
const CLUSTER_SCOPED: [&str; 10] = [
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "APIService",
];

/// Kinds the sandbox's Kubernetes part simulates as workloads.
pub const WORKLOAD_KINDS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

/// Errors of the renderer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `git` could not be run at all.
    #[error("cannot run git for {repo}")]
    Git {
        /// The bare repository.
        repo: PathBuf,
        /// Why spawning failed.
        #[source]
        source: std::io::Error,
    },
    /// A path does not exist at the revision.
    #[error("{path}: not found at revision {rev}")]
    NotFound {
        /// Repository-relative path.
        path: String,
        /// The revision that was read.
        rev: String,
    },
    /// A directory has no kustomization file.
    #[error("{dir}: no kustomization.yaml, kustomization.yml or Kustomization at revision {rev}")]
    NoKustomization {
        /// Repository-relative directory.
        dir: String,
        /// The revision that was read.
        rev: String,
    },
    /// A file is not valid YAML.
    #[error("{path}: not valid YAML")]
    Yaml {
        /// Repository-relative path.
        path: String,
        /// The parser's complaint (boxed: it is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A kustomization uses something this renderer does not implement or is malformed.
    #[error("{path}: {what}")]
    Invalid {
        /// Repository-relative path of the kustomization.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// A resource path escapes the repository.
    #[error("{path}: resource {resource:?} points outside the repository")]
    Escapes {
        /// The kustomization that names the resource.
        path: String,
        /// The entry as written.
        resource: String,
    },
}

/// One `images` entry of a kustomization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRule {
    /// The name pattern (inserted into a regex unescaped, as kustomize does).
    pub name: String,
    /// Replacement repository.
    pub new_name: Option<String>,
    /// Replacement tag.
    pub new_tag: Option<String>,
    /// Replacement digest.
    pub digest: Option<String>,
    /// Suffix appended to the existing tag.
    pub tag_suffix: Option<String>,
}

/// Reads files of one bare repository at one revision.
struct Tree<'a> {
    repo: &'a Path,
    rev: &'a str,
}

/// What a path is at the revision.
enum Entry {
    File,
    Dir,
    Missing,
}

impl Tree<'_> {
    fn git(&self, args: &[&str]) -> Result<std::process::Output, Error> {
        Command::new("git")
            .arg("--git-dir")
            .arg(self.repo)
            .args(args)
            .output()
            .map_err(|source| Error::Git {
                repo: self.repo.to_path_buf(),
                source,
            })
    }

    fn entry(&self, path: &str) -> Result<Entry, Error> {
        if path.is_empty() {
            return Ok(Entry::Dir);
        }
        let spec = format!("{}:{}", self.rev, path);
        let out = self.git(&["cat-file", "-t", &spec])?;
        if !out.status.success() {
            return Ok(Entry::Missing);
        }
        Ok(match String::from_utf8_lossy(&out.stdout).trim() {
            "tree" => Entry::Dir,
            _ => Entry::File,
        })
    }

    /// The names of the files directly in directory `dir`, sorted.
    fn files_in(&self, dir: &str) -> Result<Vec<String>, Error> {
        let spec = if dir.is_empty() {
            format!("{}:", self.rev)
        } else {
            format!("{}:{dir}", self.rev)
        };
        let out = self.git(&["ls-tree", &spec])?;
        if !out.status.success() {
            return Err(Error::NotFound {
                path: dir.to_owned(),
                rev: self.rev.to_owned(),
            });
        }
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (meta, name) = l.split_once('\t')?;
                meta.contains(" blob ").then(|| name.to_owned())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn read(&self, path: &str) -> Result<String, Error> {
        let out = self.git(&["show", &format!("{}:{}", self.rev, path)])?;
        if !out.status.success() {
            return Err(Error::NotFound {
                path: path.to_owned(),
                rev: self.rev.to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Joins a relative path onto a repository directory, resolving `.` and `..`; `None` if it escapes.
fn join(dir: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Renders the kustomization in directory `path` of the bare repository `repo` at revision `rev`.
///
/// Returns every resource in input order (kustomize reorders by kind; compare as sets).
///
/// # Errors
/// A missing path or kustomization, invalid YAML, an unsupported kustomization field, a resource
/// outside the repository, or git not runnable.
pub fn render(repo: &Path, rev: &str, path: &str) -> Result<Vec<Value>, Error> {
    let tree = Tree { repo, rev };
    let dir = join("", path).ok_or_else(|| Error::Escapes {
        path: path.to_owned(),
        resource: path.to_owned(),
    })?;
    let has = |name: &str| -> Result<bool, Error> {
        Ok(matches!(
            tree.entry(&join(&dir, name).unwrap_or_default())?,
            Entry::File
        ))
    };
    let mut kustomized = false;
    for name in KUSTOMIZATION_FILES {
        kustomized |= has(name)?;
    }
    if kustomized {
        render_dir(&tree, &dir, 0)
    } else if has("Chart.yaml")? {
        render_helm(&tree, &dir)
    } else {
        render_directory(&tree, &dir)
    }
}

/// A plain directory app: every `*.yaml`, `*.yml` and `*.json` file directly in `dir`.
fn render_directory(tree: &Tree<'_>, dir: &str) -> Result<Vec<Value>, Error> {
    if !matches!(tree.entry(dir)?, Entry::Dir) {
        return Err(Error::NotFound {
            path: dir.to_owned(),
            rev: tree.rev.to_owned(),
        });
    }
    let mut out = Vec::new();
    for name in tree.files_in(dir)? {
        if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e)) {
            let path = join(dir, &name).unwrap_or_default();
            let text = tree.read(&path)?;
            out.extend(objects_of(&path, &text)?);
        }
    }
    Ok(out)
}

/// The stand-in for `helm template`: `values.yaml` and `{{ .Values.… }}` placeholders in
/// `templates/*.yaml`.
fn render_helm(tree: &Tree<'_>, dir: &str) -> Result<Vec<Value>, Error> {
    let values_path = join(dir, "values.yaml").unwrap_or_default();
    let values: Value = match tree.entry(&values_path)? {
        Entry::File => {
            serde_saphyr::from_str(&tree.read(&values_path)?).map_err(|source| Error::Yaml {
                path: values_path.clone(),
                source: Box::new(source),
            })?
        }
        _ => Value::Null,
    };
    let placeholder = regex::Regex::new(r"\{\{-?\s*\.Values\.([A-Za-z0-9_.-]+)\s*-?\}\}")
        .expect("placeholder regex");
    let templates = join(dir, "templates").unwrap_or_default();
    let mut out = Vec::new();
    for name in tree.files_in(&templates)? {
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let path = join(&templates, &name).unwrap_or_default();
        let text = tree.read(&path)?;
        let rendered = placeholder.replace_all(&text, |caps: &regex::Captures| {
            let mut v = &values;
            for key in caps[1].split('.') {
                v = &v[key];
            }
            // How Go's text/template prints a value: strings as they are, a missing value as
            // `<no value>`, and numbers as the float64 Helm decodes them to (sigs.k8s.io/yaml goes
            // through JSON), printed with `%v`: 1.1 for a plain 1.10, 2.0240101e+07 for 20240101.
            match v {
                Value::String(s) => s.clone(),
                Value::Null => "<no value>".to_owned(),
                Value::Number(n) => go_float(n.as_f64().unwrap_or_default()),
                other => other.to_string(),
            }
        });
        if rendered.contains("{{") {
            return Err(Error::Invalid {
                path,
                what: "template syntax other than {{ .Values.a.b }} is not supported by the \
                       sandbox's Helm stand-in"
                    .into(),
            });
        }
        out.extend(objects_of(&path, &rendered)?);
    }
    Ok(out)
}

/// A float64 as Go's `%v` prints it (`%g` with the shortest precision: strconv/ftoa.go uses the
/// exponent form when the exponent is below -4 or at least 6 for the shortest form), so `1000000`
/// prints `1e+06` (the well-known Helm surprise with large numbers in values).
pub fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{f:e}"); // shortest digits: `2.0240101e7`
    let (mantissa, exp) = sci.split_once('e').expect("an exponent");
    let exp: i32 = exp.parse().expect("a number");
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// The Kubernetes objects of a (multi-document) manifest file.
fn objects_of(path: &str, text: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|source| Error::Yaml {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().filter(|d| !d.is_null()).enumerate() {
        let named = doc["metadata"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        if !doc.is_object() || doc["kind"].as_str().is_none() || !named {
            return Err(Error::Invalid {
                path: path.to_owned(),
                what: format!(
                    "document {} is not a Kubernetes object (kind and metadata.name needed)",
                    i + 1
                ),
            });
        }
        out.push(doc);
    }
    Ok(out)
}

/// Renders and keeps only the workloads the Kubernetes part simulates.
///
/// # Errors
/// As [`render`].
pub fn render_workloads(repo: &Path, rev: &str, path: &str) -> Result<Vec<Value>, Error> {
    Ok(render(repo, rev, path)?
        .into_iter()
        .filter(is_workload)
        .collect())
}

/// Is this object a Deployment, StatefulSet or DaemonSet?
pub fn is_workload(obj: &Value) -> bool {
    obj.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| WORKLOAD_KINDS.contains(&k))
}

fn render_dir(tree: &Tree<'_>, dir: &str, depth: usize) -> Result<Vec<Value>, Error> {
    if depth > 20 {
        return Err(Error::Invalid {
            path: dir.to_owned(),
            what: "kustomizations nest deeper than 20 levels (a cycle?)".into(),
        });
    }
    let mut file = None;
    for name in KUSTOMIZATION_FILES {
        let candidate = join(dir, name).unwrap_or_default();
        if matches!(tree.entry(&candidate)?, Entry::File) {
            file = Some(candidate);
            break;
        }
    }
    let Some(kpath) = file else {
        return Err(Error::NoKustomization {
            dir: dir.to_owned(),
            rev: tree.rev.to_owned(),
        });
    };
    let text = tree.read(&kpath)?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|source| Error::Yaml {
        path: kpath.clone(),
        source: Box::new(source),
    })?;
    let invalid = |what: String| Error::Invalid {
        path: kpath.clone(),
        what,
    };
    let Some(map) = doc.as_object() else {
        return Err(invalid("not a mapping".into()));
    };
    if let Some(k) = map.keys().find(|k| !SUPPORTED_FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "field {k:?} is not supported by the sandbox renderer"
        )));
    }

    let mut out = Vec::new();
    for res in string_list(map.get("resources"), "resources").map_err(invalid)? {
        let rpath = join(dir, &res).ok_or_else(|| Error::Escapes {
            path: kpath.clone(),
            resource: res.clone(),
        })?;
        match tree.entry(&rpath)? {
            Entry::Dir => out.extend(render_dir(tree, &rpath, depth + 1)?),
            Entry::File => {
                let text = tree.read(&rpath)?;
                out.extend(objects_of(&rpath, &text)?);
            }
            Entry::Missing => {
                return Err(Error::NotFound {
                    path: rpath,
                    rev: tree.rev.to_owned(),
                })
            }
        }
    }

    for rule in image_rules(map.get("images")).map_err(invalid)? {
        for obj in &mut out {
            apply_image_rule(obj, &rule);
        }
    }

    if let Some(ns) = map.get("namespace") {
        let ns = ns
            .as_str()
            .ok_or_else(|| invalid("namespace is not a string".into()))?;
        for obj in &mut out {
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
            if kind == "Namespace" {
                // kustomize's namespace transformer renames Namespace objects (checked with kubectl).
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("name".into(), Value::String(ns.to_owned()));
                }
                continue;
            }
            if CLUSTER_SCOPED.contains(&kind) {
                continue;
            }
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("namespace".into(), Value::String(ns.to_owned()));
            }
        }
    }
    Ok(out)
}

fn string_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{field} entry {i} is not a string"))
            })
            .collect(),
        Some(other) => Err(format!("{field} is not a list: {other}")),
    }
}

/// Parses `images`; like kustomize, a non-string `newTag` (unquoted `1.10`) is an error.
fn image_rules(v: Option<&Value>) -> Result<Vec<ImageRule>, String> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("images is not a list: {other}")),
    };
    let mut rules = Vec::new();
    for item in items {
        let Some(m) = item.as_object() else {
            return Err(format!("images entry {item} is not a mapping"));
        };
        let field = |key: &str| -> Result<Option<String>, String> {
            match m.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!(
                    "images entry field {key} is not a string: {other} (quote it)"
                )),
            }
        };
        for key in m.keys() {
            if !["name", "newName", "newTag", "digest", "tagSuffix"].contains(&key.as_str()) {
                return Err(format!("images entry field {key:?} is not supported"));
            }
        }
        rules.push(ImageRule {
            name: field("name")?.unwrap_or_default(),
            new_name: field("newName")?,
            new_tag: field("newTag")?,
            digest: field("digest")?,
            tag_suffix: field("tagSuffix")?,
        });
    }
    Ok(rules)
}

/// Splits an image reference into (name, tag, digest) as kustomize's `image.Split`.
///
/// `:` and `@` are looked for only after the first `/` (so `host:5000/x` keeps its port).
pub fn split_image(image: &str) -> (String, String, String) {
    let start = match image.find('/') {
        Some(i) if i > 0 => i,
        _ => 0,
    };
    let rest = &image[start..];
    let colon = rest.find(':').map(|i| i + start);
    let at = rest.find('@').map(|i| i + start);
    match (colon, at) {
        (None, None) => (image.to_owned(), String::new(), String::new()),
        (Some(c), Some(a)) if c < a => (
            image[..c].to_owned(),
            image[c + 1..a].to_owned(),
            image[a + 1..].to_owned(),
        ),
        (_, Some(a)) => (
            image[..a].to_owned(),
            String::new(),
            image[a + 1..].to_owned(),
        ),
        (Some(c), None) => (
            image[..c].to_owned(),
            image[c + 1..].to_owned(),
            String::new(),
        ),
    }
}

/// Does the rule's name match the image, with kustomize v5.5's unescaped regex?
pub fn image_matches(rule_name: &str, image: &str) -> bool {
    let pattern = format!("^{rule_name}(:[a-zA-Z0-9_.{{}}-]*)?(@sha256:[a-zA-Z0-9_.{{}}-]*)?$");
    // An invalid pattern is "no match", as kustomize HEAD (v5.5 panics instead).
    regex::Regex::new(&pattern).is_ok_and(|re| re.is_match(image))
}

/// Rewrites one matched image string per the rule (docs/research/kustomize.md §2.1).
pub fn rewrite_image(rule: &ImageRule, image: &str) -> String {
    let (mut name, tag, digest) = split_image(image);
    if let Some(n) = &rule.new_name {
        name = n.clone();
    }
    let (tag, digest) = match (&rule.new_tag, &rule.digest, &rule.tag_suffix) {
        (Some(t), Some(d), _) => (t.clone(), d.clone()),
        (Some(t), None, _) => (t.clone(), String::new()),
        (None, Some(d), _) => (String::new(), d.clone()),
        (None, None, Some(s)) => (format!("{tag}{s}"), String::new()),
        (None, None, None) => (tag, digest),
    };
    let mut out = name;
    if !tag.is_empty() {
        out.push(':');
        out.push_str(&tag);
    }
    if !digest.is_empty() {
        out.push('@');
        out.push_str(&digest);
    }
    out
}

fn rewrite_field(v: &mut Value, rule: &ImageRule) {
    if let Some(image) = v.as_str() {
        if image_matches(&rule.name, image) {
            *v = Value::String(rewrite_image(rule, image));
        }
    }
}

fn rewrite_containers(list: &mut Value, rule: &ImageRule) {
    if let Some(items) = list.as_array_mut() {
        for c in items {
            if let Some(img) = c.get_mut("image") {
                rewrite_field(img, rule);
            }
        }
    }
}

/// The legacy filter: every `containers`/`initContainers` list at any depth.
fn legacy_pass(v: &mut Value, rule: &ImageRule) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "containers" || k == "initContainers" {
                    rewrite_containers(child, rule);
                }
                legacy_pass(child, rule);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| legacy_pass(i, rule)),
        _ => {}
    }
}

/// Applies one `images` rule to an object: kustomize runs the legacy filter and then the
/// field-spec filter, so the standard pod-spec paths see the rule twice (the tagSuffix quirk).
pub fn apply_image_rule(obj: &mut Value, rule: &ImageRule) {
    if obj.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
        return;
    }
    legacy_pass(obj, rule);
    for spec_path in [&["spec"][..], &["spec", "template", "spec"][..]] {
        let mut cur = Some(&mut *obj);
        for key in spec_path {
            cur = cur.and_then(|c| c.get_mut(*key));
        }
        if let Some(spec) = cur {
            for list in ["containers", "initContainers"] {
                if let Some(l) = spec.get_mut(list) {
                    rewrite_containers(l, rule);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> ImageRule {
        ImageRule {
            name: name.into(),
            ..ImageRule::default()
        }
    }

    #[test]
    fn split_table() {
        for (input, want) in [
            ("nginx", ("nginx", "", "")),
            ("nginx:1.0", ("nginx", "1.0", "")),
            ("nginx@sha256:a", ("nginx", "", "sha256:a")),
            ("nginx:1.0@sha256:a", ("nginx", "1.0", "sha256:a")),
            ("registry:5000/app", ("registry:5000/app", "", "")),
            ("registry:5000/app:tag", ("registry:5000/app", "tag", "")),
            ("localhost:5000", ("localhost", "5000", "")),
        ] {
            let (n, t, d) = split_image(input);
            assert_eq!((n.as_str(), t.as_str(), d.as_str()), want, "{input}");
        }
    }

    #[test]
    fn match_table() {
        for (name, image, want) in [
            ("nginx", "nginx:1.0", true),
            ("nginx", "nginx:1.0@sha256:abc", true),
            ("nginx", "docker.io/library/nginx:1.0", false),
            ("nginx", "nginx-extra:1.0", false),
            ("nginx", "nginx:1.0+build", false),
            ("my.registry/nginx", "myXregistry/nginx:1", true),
            ("*", "anything:at-all", true),
            ("nginx[", "nginx", false),
        ] {
            assert_eq!(image_matches(name, image), want, "{name} vs {image}");
        }
    }

    #[test]
    fn rewrite_table() {
        let r = |tag: Option<&str>, digest: Option<&str>, new_name: Option<&str>| ImageRule {
            name: "nginx".into(),
            new_name: new_name.map(Into::into),
            new_tag: tag.map(Into::into),
            digest: digest.map(Into::into),
            tag_suffix: None,
        };
        assert_eq!(
            rewrite_image(&r(Some("2.0"), None, None), "nginx@sha256:A"),
            "nginx:2.0"
        );
        assert_eq!(
            rewrite_image(&r(None, Some("sha256:B"), None), "nginx:1.0"),
            "nginx@sha256:B"
        );
        assert_eq!(
            rewrite_image(&r(Some("2.0"), Some("sha256:B"), None), "nginx"),
            "nginx:2.0@sha256:B"
        );
        assert_eq!(
            rewrite_image(&r(None, None, Some("other:9.9")), "nginx:1.0@sha256:A"),
            "other:9.9:1.0@sha256:A"
        );
    }

    #[test]
    fn tag_suffix_applies_twice_on_pod_templates() {
        let mut obj = serde_json::json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"name": "a", "image": "nginx:1.0"}]}}}});
        let mut r = rule("nginx");
        r.tag_suffix = Some("-debug".into());
        apply_image_rule(&mut obj, &r);
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.0-debug-debug"
        );
    }

    #[test]
    fn join_resolves_dots_and_refuses_escape() {
        assert_eq!(
            join("apps/web/overlays/prod", "../../base").as_deref(),
            Some("apps/web/base")
        );
        assert_eq!(join("a", "./b.yaml").as_deref(), Some("a/b.yaml"));
        assert_eq!(join("a", "../../x"), None);
    }

    #[test]
    fn unquoted_numeric_tag_is_rejected() {
        let v: Value = serde_saphyr::from_str("- name: nginx\n  newTag: 1.10\n").unwrap();
        let err = image_rules(Some(&v)).unwrap_err();
        assert!(err.contains("newTag is not a string"), "{err}");
    }
}

#[cfg(test)]
mod go_float_tests {
    use super::go_float;

    /// Go's `fmt.Sprint(float64(x))` for these (the printed forms Helm templates show).
    #[test]
    fn prints_like_go_percent_v() {
        for (f, go) in [
            (1.1, "1.1"),
            (3.0, "3"),
            (123456.0, "123456"),
            (1_000_000.0, "1e+06"),
            (20240101.0, "2.0240101e+07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
        ] {
            assert_eq!(go_float(f), go, "{f}");
        }
    }
}
