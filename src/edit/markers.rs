//! Setter markers: a value whose line ends with a Flux image-automation marker for the deploy's
//! setter is set wherever it is, in any file of any target. Flux's markers
//! (fluxcd/image-automation-controller `pkg/update/setters.go`): `# {"$imagepolicy":
//! "NAMESPACE:POLICY"}` marks a whole image reference, `…:tag` its tag, `…:name` its repository;
//! another suffix marks nothing. The project's own marker `# {"$gitops-deploy": "NAME[:tag|:name]"}`
//! works the same way, for files no Flux policy manages.

use super::arg::split_reference;
use super::locate::{self, Kind, Node};
use super::scalar::Reader;
use super::target::{reference, resolved, values_of_reference};
use super::values::{set_in_documents, KeyPath, ValueSetting};
use super::{EditError, FieldUpdate, ImageSetting};

/// Which part of the image a marked value holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Whole,
    Tag,
    Name,
}

/// The part a comment marks for `setter` (`NAMESPACE:POLICY` or a `$gitops-deploy` name), if any.
fn marked(comment: &str, setter: &str) -> Option<Part> {
    let json = comment.trim_start_matches('#').trim();
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let object = value.as_object()?;
    let mark = object
        .get("$imagepolicy")
        .or_else(|| object.get("$gitops-deploy"))?
        .as_str()?;
    let rest = mark.strip_prefix(setter)?;
    match rest {
        "" => Some(Part::Whole),
        ":tag" => Some(Part::Tag),
        ":name" => Some(Part::Name),
        _ => None,
    }
}

/// The comment that ends a node's line (`# …`, without the `#`), if it has one.
fn line_comment<'t>(text: &'t str, node: &Node) -> Option<&'t str> {
    let rest = &text[node.end.min(text.len())..];
    let line = &rest[..rest.find(['\n', '\r']).unwrap_or(rest.len())];
    line.trim_start().strip_prefix('#')
}

/// A key escaped for a [`KeyPath`].
fn escaped(key: &str) -> String {
    key.replace('\\', "\\\\")
        .replace('.', "\\.")
        .replace('[', "\\[")
        .replace(']', "\\]")
}

/// Every scalar of a document whose end-of-line comment carries a marker for `setter`.
fn walk(
    text: &str,
    node: &Node,
    path: &str,
    setter: &str,
    out: &mut Vec<(String, Part, usize, String)>,
) {
    match &node.kind {
        Kind::Map { pairs, .. } => {
            for (k, v) in pairs {
                let Some(key) = k.scalar_value() else {
                    continue;
                };
                let p = if path.is_empty() {
                    escaped(key)
                } else {
                    format!("{path}.{}", escaped(key))
                };
                walk(text, v, &p, setter, out);
            }
        }
        Kind::Seq { items, .. } => {
            for (i, item) in items.iter().enumerate() {
                walk(text, item, &format!("{path}[{i}]"), setter, out);
            }
        }
        Kind::Scalar { value, .. } => {
            if let Some(part) = line_comment(text, node).and_then(|c| marked(c, setter)) {
                out.push((path.to_owned(), part, node.line, value.to_string()));
            }
        }
        Kind::Alias { .. } => {}
    }
}

/// A value marked for a setter.
struct Marked {
    /// Its document (0-based).
    doc: usize,
    /// Its key path in that document.
    path: String,
    /// Which part of the image it holds.
    part: Part,
    /// Its line.
    line: usize,
    /// Its value now.
    value: String,
}

/// Every value marked for `setter`, in file order.
fn marked_in(text: &str, setter: &str) -> Result<Vec<Marked>, EditError> {
    let mut found = Vec::new();
    for (d, doc) in locate::parse_documents(text)?.iter().enumerate() {
        if let Some(root) = &doc.root {
            let mut here = Vec::new();
            walk(text, root, "", setter, &mut here);
            found.extend(here.into_iter().map(|(path, part, line, value)| Marked {
                doc: d,
                path,
                part,
                line,
                value,
            }));
        }
    }
    Ok(found)
}

/// Sets every value marked for `setter` to what `setting` deploys. Returns the new text and how
/// many values were marked (0: no marker for it in this file).
///
/// # Errors
/// [`EditError::InvalidSetting`] for a `:tag` marker on a deploy that sets no tag, and the values
/// engine's errors.
pub fn set_marked(
    text: &str,
    setter: &str,
    setting: &ImageSetting,
) -> Result<(String, usize), EditError> {
    let found = marked_in(text, setter)?;
    if found.is_empty() {
        return Ok((text.to_owned(), 0));
    }
    let mut settings = Vec::new();
    for Marked {
        doc,
        path,
        part,
        line,
        value: current,
    } in &found
    {
        let value = match part {
            // What the deploy keeps (`*`) comes from the marked value itself.
            Part::Whole => {
                let (name, tag, digest) = split_reference(current);
                let name = match &setting.new_name {
                    FieldUpdate::Set(n) => n.clone(),
                    _ => name.to_owned(),
                };
                Some(reference(
                    &name,
                    resolved(&setting.new_tag, tag).as_deref(),
                    resolved(&setting.digest, digest).as_deref(),
                ))
            }
            Part::Name => match &setting.new_name {
                FieldUpdate::Set(n) => Some(n.clone()),
                _ => None,
            },
            Part::Tag => match &setting.new_tag {
                FieldUpdate::Set(t) => Some(t.clone()),
                FieldUpdate::Keep => None,
                FieldUpdate::Remove => {
                    return Err(EditError::InvalidSetting {
                        name: setting.name.clone(),
                        reason: format!(
                            "line {line}: {path} carries a tag marker for {setter}, and the deploy sets no tag"
                        ),
                    })
                }
            },
        };
        if let Some(value) = value {
            settings.push((
                *doc,
                ValueSetting {
                    path: KeyPath::parse(path)?,
                    value,
                },
            ));
        }
    }
    let edited = set_in_documents(text, &settings, Reader::Yaml11)?;
    Ok((edited.text, found.len()))
}

/// The image values the fields marked for `setter` hold (`None`: no marker in the file); the first
/// marker of each part counts.
///
/// # Errors
/// When the file is not YAML.
pub(crate) fn marked_values(
    text: &str,
    setter: &str,
) -> Result<Option<super::ImageValues>, EditError> {
    let found = marked_in(text, setter)?;
    if found.is_empty() {
        return Ok(None);
    }
    let mut values = super::ImageValues::default();
    for Marked { part, value, .. } in found.into_iter().rev() {
        match part {
            Part::Whole => {
                let whole = values_of_reference(&value);
                values.new_name = whole.new_name;
                values.new_tag = whole.new_tag;
                values.digest = whole.digest;
            }
            Part::Tag => values.new_tag = Some(value),
            Part::Name => values.new_name = Some(value),
        }
    }
    Ok(Some(values))
}
