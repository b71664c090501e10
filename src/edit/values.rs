//! Byte-preserving updates of YAML values at key paths: Helm values files and any other YAML file
//! (the `helm` and `yaml` targets), and the container images of plain Kubernetes manifests (the
//! `manifests` target).
//!
//! The same guarantees as the kustomization edit: only the bytes of the changed values change (the
//! value's quote style is kept, comments, order, anchors elsewhere, CRLF and a BOM stay), a plain
//! value is quoted when its reader would not read it back as the same string, and the result is
//! parsed again and must mean exactly the old document with the intended values set. A key path
//! that does not exist is an error, never a silent no-op.

use std::fmt;

use saphyr_parser::ScalarStyle;

use super::locate::{self, Document, Kind, Node};
use super::scalar::{render_for, Quote, Reader};
use super::splice::{self, Splice};
use super::EditError;

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A mapping key.
    Key(String),
    /// A sequence index (`[2]`).
    Index(usize),
    /// The one sequence item (a mapping) whose `key` is `value` (`[name=web]`).
    Select {
        /// The item's key to compare.
        key: String,
        /// The value it must have.
        value: String,
    },
}

/// A path to a value inside a YAML document: dotted keys, list indexes and `[key=value]` selectors,
/// e.g. `image.tag`, `spec.template.spec.containers[name=web].image`, `servers[0].port`. A key
/// holding a `.`, `[` or `\` escapes it with `\`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPath {
    text: String,
    segments: Vec<Segment>,
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl KeyPath {
    /// Parses a key path.
    ///
    /// # Errors
    /// [`EditError::InvalidKeyPath`] naming the path and what is wrong.
    pub fn parse(text: &str) -> Result<KeyPath, EditError> {
        let invalid = |reason: String| EditError::InvalidKeyPath {
            path: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("it is empty".into()));
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(invalid(format!("it contains the control character {c:?}")));
        }
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        let mut key = String::new();
        // True right after `]`, where only `.`, `[` or the end may follow.
        let mut after_bracket = false;
        let mut expect_key = true;
        while let Some(c) = chars.next() {
            match c {
                '\\' if after_bracket => {
                    return Err(invalid("a `\\` follows a `]`; write `.` first".into()))
                }
                '\\' => match chars.next() {
                    Some(e @ ('.' | '[' | ']' | '\\')) => {
                        key.push(e);
                        expect_key = false;
                    }
                    _ => return Err(invalid("`\\` escapes only `.`, `[`, `]` or `\\`".into())),
                },
                '.' => {
                    if !after_bracket {
                        if key.is_empty() {
                            return Err(invalid("a key between dots is empty".into()));
                        }
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    after_bracket = false;
                    expect_key = true;
                }
                '[' => {
                    if !after_bracket {
                        if key.is_empty() && segments.is_empty() {
                            return Err(invalid(
                                "it starts with `[`; name the list's key first".into(),
                            ));
                        }
                        if !key.is_empty() {
                            segments.push(Segment::Key(std::mem::take(&mut key)));
                        } else if expect_key {
                            return Err(invalid("a `[` follows a `.`; write `list[0]`".into()));
                        }
                    }
                    let mut inner = String::new();
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some(c) => inner.push(c),
                            None => return Err(invalid("a `[` is never closed".into())),
                        }
                    }
                    segments.push(match inner.split_once('=') {
                        Some((k, v)) if !k.trim().is_empty() => Segment::Select {
                            key: k.trim().to_owned(),
                            value: v.trim().to_owned(),
                        },
                        Some(_) => return Err(invalid(format!("[{inner}] selects by an empty key"))),
                        None => Segment::Index(inner.trim().parse().map_err(|_| {
                            invalid(format!(
                                "[{inner}] is neither an index (`[0]`) nor a selector (`[name=web]`)"
                            ))
                        })?),
                    });
                    after_bracket = true;
                    expect_key = false;
                }
                ']' => return Err(invalid("a `]` without its `[`".into())),
                c => {
                    if after_bracket {
                        return Err(invalid(format!("{c:?} follows a `]`; write `.` first")));
                    }
                    key.push(c);
                    expect_key = false;
                }
            }
        }
        if !after_bracket {
            if key.is_empty() {
                return Err(invalid("it ends with `.`".into()));
            }
            segments.push(Segment::Key(key));
        }
        Ok(KeyPath {
            text: text.to_owned(),
            segments,
        })
    }

    /// The steps of the path.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

/// One value to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSetting {
    /// Where.
    pub path: KeyPath,
    /// The new string value.
    pub value: String,
}

/// One value that changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValueChange {
    /// The key path (for manifests: `DOC#KIND/NAME:container`).
    pub path: String,
    /// The value before (`None`: it was null).
    pub before: Option<String>,
    /// The value after.
    pub after: String,
}

/// The result of a values edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesEdited {
    /// The new text (equal to the input when nothing changed).
    pub text: String,
    /// What changed, in the order given.
    pub changes: Vec<ValueChange>,
}

impl ValuesEdited {
    /// True when the text changed.
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// The value found at a path.
struct Found<'d> {
    /// The mapping key whose value it is (for inserting after an empty `key:`), if any.
    key: Option<&'d Node<'d>>,
    node: &'d Node<'d>,
}

/// Finds `path` in `root`; the error says how far the path got and why it stops.
fn find<'d>(root: &'d Node<'d>, path: &KeyPath) -> Result<Found<'d>, String> {
    let mut node = root;
    let mut key: Option<&Node> = None;
    let mut walked = String::new();
    for segment in &path.segments {
        let here = if walked.is_empty() {
            "the top level".to_owned()
        } else {
            format!("`{walked}`")
        };
        match segment {
            Segment::Key(k) => {
                let Kind::Map { pairs, .. } = &node.kind else {
                    return Err(format!(
                        "{here} (line {}) is {}, not a mapping with the key `{k}`",
                        node.line,
                        node.kind_name()
                    ));
                };
                let hits: Vec<&(Node, Node)> = pairs
                    .iter()
                    .filter(|(key, _)| key.scalar_value() == Some(k.as_str()))
                    .collect();
                match hits.as_slice() {
                    [] => {
                        return Err(format!(
                            "{here} (line {}) has no key `{k}`",
                            node.line
                        ))
                    }
                    [(k_node, v)] => {
                        key = Some(k_node);
                        node = v;
                    }
                    several => {
                        return Err(format!(
                            "{here} has the key `{k}` {} times (lines {}); readers disagree on which wins",
                            several.len(),
                            several
                                .iter()
                                .map(|(k, _)| k.line.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                }
                if !walked.is_empty() {
                    walked.push('.');
                }
                walked.push_str(k);
            }
            Segment::Index(i) => {
                let Kind::Seq { items, .. } = &node.kind else {
                    return Err(format!(
                        "{here} (line {}) is {}, not a list",
                        node.line,
                        node.kind_name()
                    ));
                };
                node = items.get(*i).ok_or_else(|| {
                    format!(
                        "{here} (line {}) has {} items, no [{i}]",
                        node.line,
                        items.len()
                    )
                })?;
                key = None;
                walked.push_str(&format!("[{i}]"));
            }
            Segment::Select { key: k, value } => {
                let Kind::Seq { items, .. } = &node.kind else {
                    return Err(format!(
                        "{here} (line {}) is {}, not a list",
                        node.line,
                        node.kind_name()
                    ));
                };
                let hits: Vec<&Node> = items
                    .iter()
                    .filter(|item| match &item.kind {
                        Kind::Map { pairs, .. } => pairs.iter().any(|(pk, pv)| {
                            pk.scalar_value() == Some(k.as_str())
                                && pv.scalar_value() == Some(value.as_str())
                        }),
                        _ => false,
                    })
                    .collect();
                node = match hits.as_slice() {
                    [] => {
                        return Err(format!(
                            "{here} (line {}) has no item with {k}={value}",
                            node.line
                        ))
                    }
                    [one] => one,
                    several => {
                        return Err(format!(
                            "{here} has {} items with {k}={value} (lines {})",
                            several.len(),
                            several
                                .iter()
                                .map(|n| n.line.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }
                };
                key = None;
                walked.push_str(&format!("[{k}={value}]"));
            }
        }
    }
    Ok(Found { key, node })
}

/// The string a scalar node means (`None` for null).
fn meaning_of(node: &Node) -> Option<String> {
    if node.is_null() {
        None
    } else {
        node.scalar_value().map(str::to_owned)
    }
}

/// The splice that sets `found` to `value` (`None` when it already holds it, readably), or why it
/// cannot be set without reformatting.
fn set_one(
    text: &str,
    found: &Found<'_>,
    value: &str,
    reader: Reader,
    what: &dyn Fn(&str) -> String,
) -> Result<Option<(Splice, Option<String>)>, EditError> {
    let node = found.node;
    let refuse = |reason: String| EditError::Unsupported {
        reason: what(&reason),
    };
    match &node.kind {
        Kind::Scalar {
            style,
            value: current,
        } => {
            if node.anchored || node.tagged {
                return Err(refuse(format!(
                    "line {}: it is an anchor or a tagged value; changing it would change other values too",
                    node.line
                )));
            }
            if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
                return Err(refuse(format!(
                    "line {}: it is a block scalar (`|` or `>`); write it on one line first",
                    node.line
                )));
            }
            let before = meaning_of(node);
            let readable = *style != ScalarStyle::Plain
                || node.is_null()
                || super::scalar::is_plain_safe_for(current, reader);
            if before.as_deref() == Some(value) && readable {
                return Ok(None);
            }
            let rendered = render_for(value, Quote::of(node), reader);
            // `key:` with nothing after it: the empty scalar's span is not where the value goes.
            if node.start == node.end || (current.is_empty() && *style == ScalarStyle::Plain) {
                let Some(key) = found.key else {
                    return Err(refuse(format!("line {}: an empty list item", node.line)));
                };
                let colon = text[key.end..]
                    .find(':')
                    .map(|i| key.end + i + 1)
                    .filter(|&c| text[key.end..c - 1].trim().is_empty())
                    .ok_or_else(|| refuse(format!("line {}: the key has no `:`", key.line)))?;
                return Ok(Some((
                    Splice::insert(colon, format!(" {rendered}"), 0),
                    before,
                )));
            }
            Ok(Some((
                Splice::replace(node.start, node.end, rendered),
                before,
            )))
        }
        Kind::Alias { .. } => Err(refuse(format!(
            "line {}: it is an alias (`*name`); changing it would change the anchored value",
            node.line
        ))),
        other => Err(refuse(format!(
            "line {}: it is {}, not a single value",
            node.line,
            match other {
                Kind::Map { .. } => "a mapping",
                _ => "a list",
            }
        ))),
    }
}

/// Every scalar leaf of a document with its path, for verification.
fn leaves(node: &Node, path: &mut String, out: &mut Vec<(String, String)>) {
    match &node.kind {
        // An empty collection is a value too (`{}` and `[]` differ from each other and from null).
        Kind::Map { pairs, .. } if pairs.is_empty() => out.push((path.clone(), "{}".into())),
        Kind::Seq { items, .. } if items.is_empty() => out.push((path.clone(), "[]".into())),
        Kind::Map { pairs, .. } => {
            for (k, v) in pairs {
                let len = path.len();
                let mut key = String::new();
                k.meaning(&mut key);
                path.push('.');
                path.push_str(&key);
                leaves(v, path, out);
                path.truncate(len);
            }
        }
        Kind::Seq { items, .. } => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                leaves(item, path, out);
                path.truncate(len);
            }
        }
        Kind::Alias { scalar } => out.push((path.clone(), format!("*{scalar:?}"))),
        Kind::Scalar { .. } => {
            // With its plainness: a plain `yes` is not the string "yes" to a YAML 1.1 reader. The set
            // values are compared apart (their quoting may change).
            let mut meaning = String::new();
            node.meaning(&mut meaning);
            out.push((path.clone(), meaning));
        }
    }
}

/// Sets `settings` in a single-document YAML file (a Helm values file or any YAML). Pure: no I/O.
/// `file` names the file in errors.
///
/// # Errors
/// [`EditError::KeyPath`] when a path does not lead to a value, [`EditError::Unsupported`] when the
/// value cannot be replaced in place, YAML errors, and [`EditError::Verify`] when the result would not
/// mean what was intended (nothing is returned then).
pub fn set_values(
    text: &str,
    settings: &[ValueSetting],
    reader: Reader,
) -> Result<ValuesEdited, EditError> {
    let docs = locate::parse_documents(text)?;
    let doc = single_document(&docs)?;
    if doc.root.is_none() {
        return Err(EditError::NotAMapping {
            reason: "the file has no content".into(),
        });
    }
    let indexed: Vec<(usize, &ValueSetting)> = settings.iter().map(|s| (0, s)).collect();
    edit_documents(text, &docs, &indexed, reader)
}

/// Sets values in the documents of a multi-document file: each setting names its document (0-based)
/// and a path from that document's root. Verified like [`set_values`], document by document.
pub(crate) fn set_in_documents(
    text: &str,
    settings: &[(usize, ValueSetting)],
    reader: Reader,
) -> Result<ValuesEdited, EditError> {
    let docs = locate::parse_documents(text)?;
    let indexed: Vec<(usize, &ValueSetting)> = settings.iter().map(|(d, s)| (*d, s)).collect();
    edit_documents(text, &docs, &indexed, reader)
}

fn edit_documents(
    text: &str,
    docs: &[Document<'_>],
    settings: &[(usize, &ValueSetting)],
    reader: Reader,
) -> Result<ValuesEdited, EditError> {
    let mut splices = Vec::new();
    let mut changes = Vec::new();
    for (i, (doc, setting)) in settings.iter().enumerate() {
        // Characters some YAML readers take as line breaks (`locate::refuse_ambiguous`) cannot be
        // written either.
        if let Some(c) = setting.value.chars().find(|c| {
            c.is_control() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
        }) {
            return Err(EditError::InvalidKeyPath {
                path: setting.path.to_string(),
                reason: if c.is_control() {
                    format!("the value contains the control character {c:?}")
                } else {
                    format!("the value contains {c:?}, which YAML readers take differently")
                },
            });
        }
        // The same path twice: once is enough when the values agree, an error when they do not.
        if let Some((_, earlier)) = settings[..i]
            .iter()
            .find(|(d, s)| d == doc && s.path == setting.path)
        {
            if earlier.value == setting.value {
                continue;
            }
            return Err(EditError::InvalidKeyPath {
                path: setting.path.to_string(),
                reason: format!(
                    "it is set twice, to {:?} and to {:?}",
                    earlier.value, setting.value
                ),
            });
        }
        let root = docs
            .get(*doc)
            .and_then(|d| d.root.as_ref())
            .ok_or_else(|| EditError::KeyPath {
                path: setting.path.to_string(),
                reason: format!("document {} has no content", doc + 1),
            })?;
        let found = find(root, &setting.path).map_err(|reason| EditError::KeyPath {
            path: setting.path.to_string(),
            reason,
        })?;
        let what = |reason: &str| format!("{}: {reason}", setting.path);
        if let Some((splice, before)) = set_one(text, &found, &setting.value, reader, &what)? {
            splices.push(splice);
            changes.push(ValueChange {
                path: setting.path.to_string(),
                before,
                after: setting.value.clone(),
            });
        }
    }
    let new_text = splice::apply(text, splices)?;
    verify_values(text, &new_text, settings, reader)?;
    Ok(ValuesEdited {
        text: new_text,
        changes,
    })
}

/// The current values at `paths` (`None`: null).
///
/// # Errors
/// Like [`set_values`].
pub fn values_at(text: &str, paths: &[KeyPath]) -> Result<Vec<Option<String>>, EditError> {
    let file = ValuesFile::read(text)?;
    paths.iter().map(|p| file.get(p)).collect()
}

/// A single-document YAML file parsed once, to read several paths.
pub(crate) struct ValuesFile<'t> {
    docs: Vec<Document<'t>>,
}

impl<'t> ValuesFile<'t> {
    /// Parses `text`, which must hold one document with content.
    pub(crate) fn read(text: &'t str) -> Result<ValuesFile<'t>, EditError> {
        let docs = locate::parse_documents(text)?;
        if single_document(&docs)?.root.is_none() {
            return Err(EditError::NotAMapping {
                reason: "the file has no content".into(),
            });
        }
        Ok(ValuesFile { docs })
    }

    /// The value at `path` (`None`: null).
    pub(crate) fn get(&self, path: &KeyPath) -> Result<Option<String>, EditError> {
        let root = self.docs[0].root.as_ref().expect("checked by read");
        let found = find(root, path).map_err(|reason| EditError::KeyPath {
            path: path.to_string(),
            reason,
        })?;
        match &found.node.kind {
            Kind::Scalar { .. } | Kind::Alias { .. } => Ok(meaning_of(found.node)),
            _ => Err(EditError::KeyPath {
                path: path.to_string(),
                reason: format!(
                    "line {}: it is {}, not a single value",
                    found.node.line,
                    found.node.kind_name()
                ),
            }),
        }
    }
}

fn single_document<'a, 'd>(docs: &'a [Document<'d>]) -> Result<&'a Document<'d>, EditError> {
    match docs {
        [one] => Ok(one),
        [] => Err(EditError::NotAMapping { reason: "the file has no content".into() }),
        several => Err(EditError::NotAMapping {
            reason: format!(
                "the file holds {} YAML documents; a values file holds one (use the manifests target for multi-document files)",
                several.len()
            ),
        }),
    }
}

/// The new text must parse, hold the intended values at their paths (readable as those strings by
/// `reader`), and mean the same as the old text everywhere else.
fn verify_values(
    old: &str,
    new: &str,
    settings: &[(usize, &ValueSetting)],
    reader: Reader,
) -> Result<(), EditError> {
    let fail = |reason: String| EditError::Verify { reason };
    if old == new {
        return Ok(());
    }
    let old_docs = locate::parse_documents(old)?;
    let new_docs = locate::parse_documents(new)
        .map_err(|e| fail(format!("the result does not parse: {e}")))?;
    if new_docs.len() != old_docs.len() {
        return Err(fail("the number of documents would change".into()));
    }
    for (index, (old_doc, new_doc)) in old_docs.iter().zip(&new_docs).enumerate() {
        let (old_root, new_root) = match (&old_doc.root, &new_doc.root) {
            (Some(o), Some(n)) => (o, n),
            (None, None) => continue,
            _ => return Err(fail(format!("document {} would change", index + 1))),
        };
        let mut set_paths = Vec::new();
        for (_, setting) in settings.iter().filter(|(d, _)| *d == index) {
            let found = find(new_root, &setting.path)
                .map_err(|e| fail(format!("{}: {e}", setting.path)))?;
            if meaning_of(found.node).as_deref() != Some(setting.value.as_str()) {
                return Err(fail(format!(
                    "{} would not be {:?}",
                    setting.path, setting.value
                )));
            }
            if let Kind::Scalar {
                style: ScalarStyle::Plain,
                value,
            } = &found.node.kind
            {
                if !super::scalar::is_plain_safe_for(value, reader) {
                    return Err(fail(format!(
                        "{} would be read as something else than the string {value:?}",
                        setting.path
                    )));
                }
            }
            set_paths.push(
                leaf_path_of(old_root, &setting.path)
                    .ok_or_else(|| fail(format!("{} is not in the old text", setting.path)))?,
            );
        }
        let others = |root: &Node| -> Vec<(String, String)> {
            let mut all = Vec::new();
            leaves(root, &mut String::new(), &mut all);
            all.retain(|(p, _)| !set_paths.contains(p));
            all
        };
        if others(new_root) != others(old_root) {
            return Err(fail(format!(
                "a value other than the ones set would change (document {})",
                index + 1
            )));
        }
    }
    Ok(())
}

/// The [`leaves`] path of the value `path` leads to in `root`.
fn leaf_path_of(root: &Node, path: &KeyPath) -> Option<String> {
    let mut node = root;
    let mut out = String::new();
    for segment in &path.segments {
        match (&node.kind, segment) {
            (Kind::Map { pairs, .. }, Segment::Key(k)) => {
                let (key, value) = pairs
                    .iter()
                    .find(|(key, _)| key.scalar_value() == Some(k.as_str()))?;
                let mut m = String::new();
                key.meaning(&mut m);
                out.push('.');
                out.push_str(&m);
                node = value;
            }
            (Kind::Seq { items, .. }, Segment::Index(i)) => {
                out.push_str(&format!("[{i}]"));
                node = items.get(*i)?;
            }
            (Kind::Seq { items, .. }, Segment::Select { key, value }) => {
                let (i, item) = items
                    .iter()
                    .enumerate()
                    .find(|(_, item)| match &item.kind {
                        Kind::Map { pairs, .. } => pairs.iter().any(|(pk, pv)| {
                            pk.scalar_value() == Some(key.as_str())
                                && pv.scalar_value() == Some(value.as_str())
                        }),
                        _ => false,
                    })?;
                out.push_str(&format!("[{i}]"));
                node = item;
            }
            _ => return None,
        }
    }
    Some(out)
}
