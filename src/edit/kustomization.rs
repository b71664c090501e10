//! Reading a parsed file as kustomize reads it: the top-level fields, the `images` entries and their
//! values, and the checks that make a file "not a kustomization" (docs/research/kustomize.md §1.4).
//!
//! This module only reads; it never decides what to change.

use super::locate::{Document, Kind, Node};
use super::{EditError, ImageValues};

/// The top-level fields of kustomize's `Kustomization` type (`api/types/kustomization.go`). kustomize
/// decodes with unknown fields disallowed, so anything else is an error there and here.
pub(crate) const KNOWN_FIELDS: [&str; 34] = [
    "apiVersion",
    "kind",
    "metadata",
    "sortOptions",
    "resources",
    "bases",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "crds",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "configMapGenerator",
    "secretGenerator",
    "helmCharts",
    "helmChartInflationGenerator",
    "helmGlobals",
    "generatorOptions",
    "vars",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "components",
    "openapi",
    "buildMetadata",
];

/// The group every kustomization `apiVersion` belongs to.
const KUSTOMIZE_GROUP: &str = "kustomize.config.k8s.io/";

/// The fields of an `images` entry (kustomize `types.Image`), in kustomize's field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Which {
    /// `name`
    Name,
    /// `newName`
    NewName,
    /// `newTag`
    NewTag,
    /// `digest`
    Digest,
    /// `tagSuffix`
    TagSuffix,
}

impl Which {
    /// Every field, in kustomize's order.
    pub const ALL: [Which; 5] = [
        Which::Name,
        Which::NewName,
        Which::NewTag,
        Which::Digest,
        Which::TagSuffix,
    ];

    /// The key as written in the file.
    pub fn key(self) -> &'static str {
        match self {
            Which::Name => "name",
            Which::NewName => "newName",
            Which::NewTag => "newTag",
            Which::Digest => "digest",
            Which::TagSuffix => "tagSuffix",
        }
    }
}

/// Everything an `images` entry means, `tagSuffix` included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    /// `newName`, `newTag` and `digest`.
    pub values: ImageValues,
    /// `tagSuffix`.
    pub tag_suffix: Option<String>,
}

impl Fields {
    /// The value of one field (never `name`).
    pub fn get(&self, which: Which) -> Option<&String> {
        match which {
            Which::Name => None,
            Which::NewName => self.values.new_name.as_ref(),
            Which::NewTag => self.values.new_tag.as_ref(),
            Which::Digest => self.values.digest.as_ref(),
            Which::TagSuffix => self.tag_suffix.as_ref(),
        }
    }

    /// Sets one field (never `name`).
    pub fn set(&mut self, which: Which, value: Option<String>) {
        match which {
            Which::Name => {}
            Which::NewName => self.values.new_name = value,
            Which::NewTag => self.values.new_tag = value,
            Which::Digest => self.values.digest = value,
            Which::TagSuffix => self.tag_suffix = value,
        }
    }
}

/// One `key: value` of an entry.
#[derive(Debug)]
pub(crate) struct Field<'d> {
    /// Which field.
    pub which: Which,
    /// The key node.
    pub key: &'d Node<'d>,
    /// The value node.
    pub value: &'d Node<'d>,
}

impl Field<'_> {
    /// The field's value as kustomize reads it: null and empty mean "not set".
    pub fn meaning(&self) -> Option<String> {
        if self.value.is_null() {
            return None;
        }
        self.value
            .scalar_value()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// One entry of `images`.
#[derive(Debug)]
pub(crate) struct Entry<'d> {
    /// The entry's mapping node.
    pub node: &'d Node<'d>,
    /// True for a flow mapping (`{name: a, newTag: b}`).
    pub flow: bool,
    /// Its fields in file order.
    pub fields: Vec<Field<'d>>,
}

impl<'d> Entry<'d> {
    /// The field `which`, if present.
    pub fn field(&self, which: Which) -> Option<&Field<'d>> {
        self.fields.iter().find(|f| f.which == which)
    }

    /// The `name` value (empty when missing, as kustomize allows).
    pub fn name(&self) -> String {
        self.field(Which::Name)
            .and_then(Field::meaning)
            .unwrap_or_default()
    }

    /// Everything the entry means.
    pub fn fields_meaning(&self) -> Fields {
        let mut out = Fields::default();
        for f in &self.fields {
            out.set(f.which, f.meaning());
        }
        out
    }
}

/// The `images` field.
#[derive(Debug)]
pub(crate) struct Images<'d> {
    /// The `images` key.
    pub key: &'d Node<'d>,
    /// Its value: a sequence, or null.
    pub value: &'d Node<'d>,
    /// The entries (none when the value is null).
    pub entries: Vec<Entry<'d>>,
}

/// A file read as a kustomization.
#[derive(Debug)]
pub(crate) struct View<'d> {
    /// The root mapping; `None` when the file has no content.
    pub root: Option<&'d Node<'d>>,
    /// True when the document ends with `...`.
    pub explicit_end: bool,
    /// `images`, when present.
    pub images: Option<Images<'d>>,
    /// The names under the deprecated `imageTags`, which kustomize applies after `images`.
    pub image_tag_names: Vec<String>,
}

fn not_kustomization(reason: String) -> EditError {
    EditError::NotKustomization { reason }
}

/// Checks that `doc` is a kustomization and reads its `images`.
pub(crate) fn view<'d>(doc: &'d Document<'d>) -> Result<View<'d>, EditError> {
    let mut out = View {
        root: None,
        explicit_end: doc.explicit_end,
        images: None,
        image_tag_names: Vec::new(),
    };
    let root = match &doc.root {
        None => return Ok(out),
        // Only comments, or nothing: an empty kustomization.
        Some(root) if root.is_null() && root.start == root.end => return Ok(out),
        Some(root) if root.is_null() => {
            return Err(EditError::Unsupported {
                reason: format!(
                    "line {}: the document is an explicit null (`~` or `null`), which has no \
                     place for images; replace it with a mapping (or empty the file) first",
                    root.line
                ),
            })
        }
        Some(root) => root,
    };
    let Kind::Map { pairs, .. } = &root.kind else {
        return Err(not_kustomization(format!(
            "the top level is {}, not a mapping",
            root.kind_name()
        )));
    };
    out.root = Some(root);
    // apiVersion and kind first: a Flux `Kustomization` object would otherwise only show up as
    // "unknown field spec", which does not say what is wrong.
    for (key, value) in pairs {
        let (field, want): (&str, &dyn Fn(&str) -> bool) = match key.scalar_value() {
            Some("apiVersion") => ("apiVersion", &|v| v.starts_with(KUSTOMIZE_GROUP)),
            Some("kind") => ("kind", &|v| v == "Kustomization" || v == "Component"),
            _ => continue,
        };
        let got = value.scalar_value().unwrap_or_default();
        if !want(got) {
            return Err(not_kustomization(format!(
                "line {}: {field} is {got:?}; a kustomization has apiVersion {KUSTOMIZE_GROUP}… and \
                 kind Kustomization or Component (is this a Flux Kustomization object?)",
                value.line
            )));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        let Some(name) = key
            .scalar_value()
            .filter(|_| matches!(key.kind, Kind::Scalar { .. }))
        else {
            return Err(not_kustomization(format!(
                "line {}: a top-level key is {}, not a field name",
                key.line,
                key.kind_name()
            )));
        };
        if !KNOWN_FIELDS.contains(&name) {
            let hint = KNOWN_FIELDS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(name))
                .map(|k| format!(" (kustomize reads it as {k}; spell it {k} to edit this file)"))
                .unwrap_or_else(|| " (kustomize rejects unknown fields)".into());
            return Err(not_kustomization(format!(
                "line {}: unknown top-level field {name:?}{hint}",
                key.line
            )));
        }
        if seen.contains(&name) {
            return Err(not_kustomization(format!(
                "line {}: the field {name} appears twice",
                key.line
            )));
        }
        seen.push(name);
        match name {
            "images" => {
                out.images = Some(Images {
                    key,
                    value,
                    entries: entries(value, "images")?,
                })
            }
            "imageTags" => {
                out.image_tag_names = entries(value, "imageTags")?
                    .iter()
                    .map(Entry::name)
                    .collect()
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The entries of an `images` (or `imageTags`) value.
fn entries<'d>(value: &'d Node<'d>, field: &str) -> Result<Vec<Entry<'d>>, EditError> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    let Kind::Seq { items, .. } = &value.kind else {
        return Err(not_kustomization(format!(
            "line {}: {field} is {}, not a list",
            value.line,
            value.kind_name()
        )));
    };
    items.iter().map(|item| entry(item, field)).collect()
}

/// One entry: a mapping with known keys and string values.
fn entry<'d>(item: &'d Node<'d>, field: &str) -> Result<Entry<'d>, EditError> {
    let Kind::Map { pairs, flow } = &item.kind else {
        let reason = format!(
            "line {}: an {field} entry is {}, not a mapping",
            item.line,
            item.kind_name()
        );
        return Err(if matches!(item.kind, Kind::Alias { .. }) {
            EditError::Unsupported { reason }
        } else {
            not_kustomization(reason)
        });
    };
    let mut fields: Vec<Field<'d>> = Vec::new();
    for (key, value) in pairs {
        let name = key.scalar_value().unwrap_or_default();
        let Some(which) = Which::ALL.iter().copied().find(|w| w.key() == name) else {
            let hint = Which::ALL
                .iter()
                .find(|w| w.key().eq_ignore_ascii_case(name))
                .map(|w| format!(" (spell it {})", w.key()))
                .unwrap_or_default();
            return Err(not_kustomization(format!(
                "line {}: unknown field {name:?} in an {field} entry{hint}",
                key.line
            )));
        };
        if fields.iter().any(|f| f.which == which) {
            return Err(not_kustomization(format!(
                "line {}: {name} appears twice in one {field} entry",
                key.line
            )));
        }
        let is_string = matches!(
            &value.kind,
            Kind::Scalar { .. } | Kind::Alias { scalar: Some(_) }
        );
        if !is_string {
            return Err(not_kustomization(format!(
                "line {}: {name} is {}, not a string",
                value.line,
                value.kind_name()
            )));
        }
        fields.push(Field { which, key, value });
    }
    Ok(Entry {
        node: item,
        flow: *flow,
        fields,
    })
}

/// The meaning of every top-level field except `images`, in order: what an edit must never change.
pub(crate) fn other_fields_meaning(view: &View<'_>) -> Vec<(String, String)> {
    let Some(Node {
        kind: Kind::Map { pairs, .. },
        ..
    }) = view.root
    else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter(|(k, _)| k.scalar_value() != Some("images"))
        .map(|(k, v)| {
            let mut meaning = String::new();
            v.meaning(&mut meaning);
            (k.scalar_value().unwrap_or_default().to_string(), meaning)
        })
        .collect()
}
