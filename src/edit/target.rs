//! What kind of file a deploy edits (the `target` input) and how an image lands in it. Every target
//! takes the same [`ImageSetting`] and reports its changes as [`ImageChange`]s, so publishing, the
//! overwrite check and the rollback treat them alike:
//!
//! - `kustomize`: the `images` entry of a kustomization ([`super::set_images`]);
//! - `helm`: a values file's repository/tag/digest keys (default `image.repository`, `image.tag`,
//!   `image.digest`), one key set per image;
//! - `yaml`: any YAML file, one or more key paths set to a value template (`{ref}` by default);
//! - `manifests`: every container and init container image of plain Kubernetes manifests whose
//!   repository is the image, like `kubectl set image` but in git.

use regex::Regex;

use super::arg::split_reference;
use super::locate::{self, Kind, Node};
use super::scalar::Reader;
use super::values::{self, set_in_documents, values_at, KeyPath, ValueSetting, ValuesFile};
use super::{EditError, Edited, FieldUpdate, ImageChange, ImageSetting, ImageValues};

/// The keys of one image in a Helm values file. A key set without `repository` applies to every
/// deploy; with it, only to the image whose repository the file holds there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmKeys {
    /// Where the repository is (`image.repository`).
    pub repository: Option<KeyPath>,
    /// Where the tag is (`image.tag`).
    pub tag: Option<KeyPath>,
    /// Where the digest is (`image.digest`); a deploy by tag empties it, one by digest sets it.
    pub digest: Option<KeyPath>,
}

impl HelmKeys {
    /// The common chart convention: `image.repository`, `image.tag`, `image.digest`.
    pub fn chart_convention() -> HelmKeys {
        let path = |p: &str| Some(KeyPath::parse(p).expect("a valid built-in key path"));
        HelmKeys {
            repository: path("image.repository"),
            tag: path("image.tag"),
            digest: path("image.digest"),
        }
    }

    /// Parses `repository=PATH,tag=PATH,digest=PATH` (any of them; at least a tag or a digest key).
    ///
    /// # Errors
    /// [`EditError::InvalidKeyPath`] naming the spec and what is wrong.
    pub fn parse(spec: &str) -> Result<HelmKeys, EditError> {
        let invalid = |reason: String| EditError::InvalidKeyPath {
            path: spec.to_owned(),
            reason,
        };
        let mut keys = HelmKeys {
            repository: None,
            tag: None,
            digest: None,
        };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (which, path) = part
                .split_once('=')
                .ok_or_else(|| invalid(format!("{part:?} is not NAME=KEY.PATH")))?;
            let path = Some(KeyPath::parse(path.trim())?);
            match which.trim() {
                "repository" => keys.repository = path,
                "tag" => keys.tag = path,
                "digest" => keys.digest = path,
                other => {
                    return Err(invalid(format!(
                        "unknown key {other:?} (use repository, tag or digest)"
                    )))
                }
            }
        }
        if keys.tag.is_none() && keys.digest.is_none() {
            return Err(invalid("it names neither a tag nor a digest key".into()));
        }
        Ok(keys)
    }
}

/// A value template of the `yaml` target: `{image}`, `{tag}`, `{digest}` and `{ref}` (the whole
/// reference, `image:tag@digest` with what is set); `{{`/`}}` are literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueTemplate {
    text: String,
}

const PLACEHOLDERS: [&str; 4] = ["image", "tag", "digest", "ref"];

impl ValueTemplate {
    /// The default, the whole reference.
    pub fn whole_reference() -> ValueTemplate {
        ValueTemplate {
            text: "{ref}".into(),
        }
    }

    /// Parses a template.
    ///
    /// # Errors
    /// [`EditError::InvalidKeyPath`] for an unknown placeholder or an unclosed brace.
    pub fn parse(text: &str) -> Result<ValueTemplate, EditError> {
        let template = ValueTemplate {
            text: text.to_owned(),
        };
        template.pieces().map(|_| template.clone())
    }

    /// Literal text and placeholders, in order.
    fn pieces(&self) -> Result<Vec<Piece>, EditError> {
        let invalid = |reason: String| EditError::InvalidKeyPath {
            path: self.text.clone(),
            reason: format!("value template: {reason}"),
        };
        let mut out = Vec::new();
        let mut literal = String::new();
        let mut chars = self.text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(invalid(format!(
                            "`{{{name}` is never closed (write `{{{{` for a literal brace)"
                        )));
                    }
                    if !PLACEHOLDERS.contains(&name.as_str()) {
                        return Err(invalid(format!(
                            "unknown placeholder {{{name}}} (use {{image}}, {{tag}}, {{digest}} or {{ref}})"
                        )));
                    }
                    out.push(Piece::Literal(std::mem::take(&mut literal)));
                    out.push(Piece::Placeholder(name));
                }
                '}' => return Err(invalid("a `}` without its `{` (write `}}`)".into())),
                c => literal.push(c),
            }
        }
        out.push(Piece::Literal(literal));
        Ok(out)
    }

    /// The value for `image`, `tag`, `digest`.
    fn render(
        &self,
        image: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for piece in self.pieces().map_err(|e| e.to_string())? {
            match piece {
                Piece::Literal(l) => out.push_str(&l),
                Piece::Placeholder(p) => match p.as_str() {
                    "image" => out.push_str(image),
                    "tag" => out
                        .push_str(tag.ok_or("the template needs {tag}, and the deploy sets none")?),
                    "digest" => out.push_str(
                        digest.ok_or("the template needs {digest}, and the deploy sets none")?,
                    ),
                    _ => out.push_str(&reference(image, tag, digest)),
                },
            }
        }
        Ok(out)
    }

    /// The image values a value made by this template holds (`None` when it does not follow it).
    fn parse_value(&self, value: &str) -> Option<ImageValues> {
        let mut pattern = String::from("^");
        let mut named: Vec<String> = Vec::new();
        for piece in self.pieces().ok()? {
            match piece {
                Piece::Literal(l) => pattern.push_str(&regex::escape(&l)),
                Piece::Placeholder(p) => {
                    let body = match p.as_str() {
                        "image" => "[^:@]+(?::[0-9]+/[^:@]+)?",
                        "tag" => "[A-Za-z0-9_][A-Za-z0-9_.-]*",
                        "digest" => "[a-z0-9]+:[a-zA-Z0-9=_-]+",
                        _ => ".+",
                    };
                    // A placeholder used twice captures once (group names are unique).
                    if named.contains(&p) {
                        pattern.push_str(&format!("(?:{body})"));
                    } else {
                        pattern.push_str(&format!("(?P<{p}>{body})"));
                        named.push(p);
                    }
                }
            }
        }
        pattern.push('$');
        let caps = Regex::new(&pattern).ok()?.captures(value)?;
        if let Some(r) = caps.name("ref") {
            return Some(values_of_reference(r.as_str()));
        }
        Some(ImageValues {
            new_name: caps.name("image").map(|m| m.as_str().to_owned()),
            new_tag: caps.name("tag").map(|m| m.as_str().to_owned()),
            digest: caps.name("digest").map(|m| m.as_str().to_owned()),
        })
    }
}

enum Piece {
    Literal(String),
    Placeholder(String),
}

/// `image[:tag][@digest]`.
pub(crate) fn reference(image: &str, tag: Option<&str>, digest: Option<&str>) -> String {
    let mut s = image.to_owned();
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d);
    }
    s
}

/// What kind of file a deploy edits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Target {
    /// A kustomization's `images` (what `kustomize edit set image` does).
    #[default]
    Kustomize,
    /// Helm values files: one key set per image.
    Helm(Vec<HelmKeys>),
    /// Any YAML file: key paths set to a value template.
    Yaml {
        /// The key paths.
        paths: Vec<KeyPath>,
        /// Their value.
        template: ValueTemplate,
    },
    /// Plain Kubernetes manifests: every container image of the repository.
    Manifests,
    /// Any YAML file: every value carrying a setter marker (`# {"$imagepolicy": "NS:POLICY"}`,
    /// `…:tag`, `…:name`) for this setter.
    Markers(String),
}

impl Target {
    /// The input's name for it.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Kustomize => "kustomize",
            Target::Helm(_) => "helm",
            Target::Yaml { .. } => "yaml",
            Target::Manifests => "manifests",
            Target::Markers(_) => "markers",
        }
    }

    /// Applies `setting` to one file's text. Pure.
    ///
    /// # Errors
    /// The engine's [`EditError`]; a file where the image is nowhere to be found is an error for
    /// every target but `kustomize` (which adds an entry).
    pub fn apply(&self, text: &str, setting: &ImageSetting) -> Result<Edited, EditError> {
        match self {
            Target::Kustomize => super::set_images(text, std::slice::from_ref(setting)),
            Target::Helm(keys) => helm(text, keys, setting),
            Target::Yaml { paths, template } => yaml(text, paths, template, setting),
            Target::Manifests => manifests(text, setting),
            Target::Markers(setter) => {
                let before = super::markers::marked_values(text, setter)?;
                let (new_text, marked) = super::markers::set_marked(text, setter, setting)?;
                if marked == 0 {
                    return Err(EditError::KeyPath {
                        path: format!("{{\"$imagepolicy\": \"{setter}\"}}"),
                        reason: format!("no value of the file carries a marker for {setter}"),
                    });
                }
                let after = super::markers::marked_values(&new_text, setter)?;
                let changes = match (before, after) {
                    (before, Some(after)) if new_text != text => vec![ImageChange {
                        name: setting.name.clone(),
                        before,
                        after,
                    }],
                    _ => Vec::new(),
                };
                Ok(Edited::from_values(text, new_text, changes))
            }
        }
    }

    /// [`Target::apply`], then every value marked for `setter` (Flux `$imagepolicy` markers) in the
    /// same file, wherever it is.
    ///
    /// # Errors
    /// Like [`Target::apply`], and the markers' errors.
    pub fn apply_with_setter(
        &self,
        text: &str,
        setting: &ImageSetting,
        setter: Option<&str>,
    ) -> Result<Edited, EditError> {
        let edited = self.apply(text, setting)?;
        match setter {
            Some(setter) if !matches!(self, Target::Markers(_)) => {
                let (marked, _) = super::markers::set_marked(&edited.text, setter, setting)?;
                let mut changes = edited.changes;
                // Only markers changed this file: their values are what a rollback restores.
                if changes.is_empty() && marked != edited.text {
                    if let Some(after) = super::markers::marked_values(&marked, setter)? {
                        changes.push(ImageChange {
                            name: setting.name.clone(),
                            before: super::markers::marked_values(text, setter)?,
                            after,
                        });
                    }
                }
                Ok(Edited::from_values(text, marked, changes).with_warnings(edited.warnings))
            }
            _ => Ok(edited),
        }
    }

    /// The image's current values in a file (`None`: the file does not set it).
    ///
    /// # Errors
    /// When the file cannot be read as this target.
    pub fn current(&self, text: &str, name: &str) -> Result<Option<ImageValues>, EditError> {
        match self {
            Target::Kustomize => Ok(super::images_of(text)?
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)),
            Target::Helm(keys) => {
                for k in keys {
                    if let Some(values) = helm_current(text, k, name)? {
                        return Ok(Some(values));
                    }
                }
                Ok(None)
            }
            Target::Yaml { paths, template } => {
                let current = values_at(text, &paths[..1])?;
                Ok(current[0].as_deref().and_then(|v| template.parse_value(v)))
            }
            Target::Markers(setter) => super::markers::marked_values(text, setter),
            Target::Manifests => Ok(manifest_images(text, name)?
                .into_iter()
                .next()
                .map(|(_, _, value)| values_of_reference(&value))),
        }
    }
}

/// The repositories a setting's image may have in a file: its name, and its new name (a re-run of a
/// deploy that renamed it).
fn names_of(setting: &ImageSetting) -> Vec<&str> {
    let mut names = vec![setting.name.as_str()];
    if let FieldUpdate::Set(n) = &setting.new_name {
        names.push(n.as_str());
    }
    names
}

pub(crate) fn values_of_reference(reference: &str) -> ImageValues {
    let (name, tag, digest) = split_reference(reference);
    ImageValues {
        new_name: Some(name.to_owned()),
        new_tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    }
}

/// What a field becomes: `Some(v)` set, `None` unset; `current` is what is there now.
pub(crate) fn resolved(update: &FieldUpdate, current: Option<&str>) -> Option<String> {
    match update {
        FieldUpdate::Keep => current.map(str::to_owned),
        FieldUpdate::Remove => None,
        FieldUpdate::Set(v) => Some(v.clone()),
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.is_empty())
}

/// The values a Helm key set holds for `name` (`None` when its repository is another image).
fn helm_current(text: &str, keys: &HelmKeys, name: &str) -> Result<Option<ImageValues>, EditError> {
    helm_current_of(&ValuesFile::read(text)?, keys, &[name])
}

/// [`helm_current`] for a repository that may be any of `names` (the name and a new name).
fn helm_current_of(
    file: &ValuesFile<'_>,
    keys: &HelmKeys,
    names: &[&str],
) -> Result<Option<ImageValues>, EditError> {
    // A digest key the file does not have is simply unset.
    let read = |p: &KeyPath| -> Result<Option<String>, EditError> {
        match file.get(p) {
            Ok(v) => Ok(non_empty(v)),
            Err(EditError::KeyPath { .. }) if Some(p) == keys.digest.as_ref() => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(repo) = &keys.repository {
        // A key set whose repository key the file lacks is another image's.
        let holds = match file.get(repo) {
            Ok(r) => non_empty(r).is_some_and(|r| names.contains(&r.as_str())),
            Err(EditError::KeyPath { .. }) => false,
            Err(e) => return Err(e),
        };
        if !holds {
            return Ok(None);
        }
    }
    Ok(Some(ImageValues {
        new_name: None,
        new_tag: keys.tag.as_ref().map(read).transpose()?.flatten(),
        digest: keys.digest.as_ref().map(read).transpose()?.flatten(),
    }))
}

fn helm(text: &str, key_sets: &[HelmKeys], setting: &ImageSetting) -> Result<Edited, EditError> {
    let mut settings = Vec::new();
    let mut changes = Vec::new();
    let mut seen = Vec::new();
    let names = names_of(setting);
    let file = ValuesFile::read(text)?;
    for keys in key_sets {
        let Some(before) = helm_current_of(&file, keys, &names)? else {
            if let Some(repo) = &keys.repository {
                seen.push(match file.get(repo) {
                    Ok(found) => format!("{repo} is {:?}", found.unwrap_or_default()),
                    Err(_) => format!("there is no {repo}"),
                });
            }
            continue;
        };
        let after = ImageValues {
            new_name: None,
            new_tag: resolved(&setting.new_tag, before.new_tag.as_deref()),
            digest: resolved(&setting.digest, before.digest.as_deref()),
        };
        let mut set =
            |path: &Option<KeyPath>, value: Option<&String>, what: &str| -> Result<(), EditError> {
                match (path, value) {
                    (Some(p), v) => {
                        settings.push(ValueSetting {
                            path: p.clone(),
                            value: v.cloned().unwrap_or_default(),
                        });
                        Ok(())
                    }
                    (None, Some(_)) => Err(EditError::InvalidSetting {
                        name: setting.name.clone(),
                        reason: format!(
                            "the deploy sets a {what}, and the Helm key set has no {what} key"
                        ),
                    }),
                    (None, None) => Ok(()),
                }
            };
        set(&keys.tag, after.new_tag.as_ref(), "tag")?;
        // A digest key only when the file has one, or when a digest is set.
        let has_digest_key = keys.digest.as_ref().is_some_and(|d| file.get(d).is_ok());
        if has_digest_key || after.digest.is_some() {
            set(&keys.digest, after.digest.as_ref(), "digest")?;
        }
        if let (Some(repo), FieldUpdate::Set(new_name)) = (&keys.repository, &setting.new_name) {
            settings.push(ValueSetting {
                path: repo.clone(),
                value: new_name.clone(),
            });
        }
        if after != before {
            changes.push(ImageChange {
                name: setting.name.clone(),
                before: Some(before),
                after,
            });
        }
    }
    if settings.is_empty() {
        return Err(EditError::KeyPath {
            path: key_sets
                .iter()
                .filter_map(|k| k.repository.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            reason: format!(
                "no key set holds the repository {:?} ({}); give the key set of that image",
                setting.name,
                seen.join("; ")
            ),
        });
    }
    // Digest keys the file lacks were filtered above; every other path must exist.
    let edited = values::set_values(text, &settings, Reader::Yaml11)?;
    Ok(Edited::from_values(text, edited.text, changes))
}

fn yaml(
    text: &str,
    paths: &[KeyPath],
    template: &ValueTemplate,
    setting: &ImageSetting,
) -> Result<Edited, EditError> {
    let current = values_at(text, paths)?;
    let before = current[0].as_deref().and_then(|v| template.parse_value(v));
    let image = match &setting.new_name {
        FieldUpdate::Set(n) => n.clone(),
        _ => before
            .as_ref()
            .and_then(|b| b.new_name.clone())
            .unwrap_or_else(|| setting.name.clone()),
    };
    let tag = resolved(
        &setting.new_tag,
        before.as_ref().and_then(|b| b.new_tag.as_deref()),
    );
    let digest = resolved(
        &setting.digest,
        before.as_ref().and_then(|b| b.digest.as_deref()),
    );
    let value = template
        .render(&image, tag.as_deref(), digest.as_deref())
        .map_err(|reason| EditError::InvalidSetting {
            name: setting.name.clone(),
            reason,
        })?;
    let settings: Vec<ValueSetting> = paths
        .iter()
        .map(|p| ValueSetting {
            path: p.clone(),
            value: value.clone(),
        })
        .collect();
    let edited = values::set_values(text, &settings, Reader::Yaml11)?;
    let after = ImageValues {
        new_name: Some(image),
        new_tag: tag,
        digest,
    };
    let changes = if edited.is_changed() {
        vec![ImageChange {
            name: setting.name.clone(),
            before,
            after,
        }]
    } else {
        Vec::new()
    };
    Ok(Edited::from_values(text, edited.text, changes))
}

/// Where a pod spec sits in each workload kind.
fn pod_spec_paths(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &["spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController"
        | "Rollout" => &["spec", "template", "spec"],
        _ => &[],
    }
}

fn map_get<'n>(node: &'n Node<'n>, key: &str) -> Option<&'n Node<'n>> {
    match &node.kind {
        Kind::Map { pairs, .. } => pairs
            .iter()
            .find(|(k, _)| k.scalar_value() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Every container image of the repository `name` in a multi-document manifests file: (document,
/// key path, current value).
fn manifest_images(text: &str, name: &str) -> Result<Vec<(usize, KeyPath, String)>, EditError> {
    manifest_images_of(text, &[name])
}

fn manifest_images_of(
    text: &str,
    names: &[&str],
) -> Result<Vec<(usize, KeyPath, String)>, EditError> {
    let docs = locate::parse_documents(text)?;
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        let Some(root) = &doc.root else { continue };
        let Some(kind) = map_get(root, "kind").and_then(Node::scalar_value) else {
            continue;
        };
        let spec_path = pod_spec_paths(kind);
        if spec_path.is_empty() {
            continue;
        }
        let mut spec = Some(root);
        for k in spec_path {
            spec = spec.and_then(|n| map_get(n, k));
        }
        let Some(spec) = spec else { continue };
        for list in ["initContainers", "containers"] {
            let Some(Node {
                kind: Kind::Seq { items, .. },
                ..
            }) = map_get(spec, list)
            else {
                continue;
            };
            for (i, container) in items.iter().enumerate() {
                let Some(image) = map_get(container, "image").and_then(Node::scalar_value) else {
                    continue;
                };
                if names.contains(&split_reference(image).0) {
                    let path = format!("{}.{list}[{i}].image", spec_path.join("."));
                    out.push((d, KeyPath::parse(&path)?, image.to_owned()));
                }
            }
        }
    }
    Ok(out)
}

fn manifests(text: &str, setting: &ImageSetting) -> Result<Edited, EditError> {
    let found = manifest_images_of(text, &names_of(setting))?;
    if found.is_empty() {
        return Err(EditError::KeyPath {
            path: "containers[].image".into(),
            reason: format!(
                "no container or init container of a workload uses the image {:?}",
                setting.name
            ),
        });
    }
    let mut settings = Vec::new();
    let mut changes = Vec::new();
    for (doc, path, current) in found {
        let before = values_of_reference(&current);
        let image = match &setting.new_name {
            FieldUpdate::Set(n) => n.clone(),
            _ => before
                .new_name
                .clone()
                .unwrap_or_else(|| setting.name.clone()),
        };
        let after = ImageValues {
            new_name: Some(image.clone()),
            new_tag: resolved(&setting.new_tag, before.new_tag.as_deref()),
            digest: resolved(&setting.digest, before.digest.as_deref()),
        };
        let value = reference(&image, after.new_tag.as_deref(), after.digest.as_deref());
        if value != current
            && !changes
                .iter()
                .any(|c: &ImageChange| c.before.as_ref() == Some(&before))
        {
            changes.push(ImageChange {
                name: setting.name.clone(),
                before: Some(before),
                after,
            });
        }
        settings.push((doc, ValueSetting { path, value }));
    }
    let edited = set_in_documents(text, &settings, Reader::Yaml11)?;
    Ok(Edited::from_values(text, edited.text, changes))
}
