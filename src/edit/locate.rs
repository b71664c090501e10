//! Locating nodes: a small tree with exact byte spans, built from saphyr-parser's events.
//!
//! saphyr-parser is only a locator here; nothing is ever re-serialised from this tree. Its quirks
//! (docs/research/kustomize.md §6) are corrected in this module and nowhere else:
//! - markers count characters, not bytes, so every index goes through [`Offsets`];
//! - a quoted scalar's span runs on over trailing blanks and comments, so its end is found by scanning
//!   for the closing quote;
//! - a block collection's end event sits at the next token (after comments), so a block node ends
//!   where its last child ends.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::EditError;

/// A node of the document with its byte span `[start, end)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node<'t> {
    /// What the node is.
    pub kind: Kind<'t>,
    /// Byte offset of the node's first byte (for a scalar with an anchor or tag: the property's).
    pub start: usize,
    /// Byte offset just past the node's last byte (excluding trailing blanks and comments).
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// 0-based column of `start`, in characters.
    pub col: usize,
    /// True when the node carries an anchor (`&a`); changing it would change its aliases too.
    pub anchored: bool,
    /// True when the node carries a tag (`!!str`).
    pub tagged: bool,
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind<'t> {
    /// A scalar: its value after unquoting, and its style.
    Scalar {
        value: Cow<'t, str>,
        style: ScalarStyle,
    },
    /// A sequence; `flow` for `[…]`.
    Seq { flow: bool, items: Vec<Node<'t>> },
    /// A mapping; `flow` for `{…}`.
    Map {
        flow: bool,
        pairs: Vec<(Node<'t>, Node<'t>)>,
    },
    /// An alias (`*a`), with the value of the anchored scalar when the anchor is on a scalar.
    Alias { scalar: Option<Cow<'t, str>> },
}

impl Node<'_> {
    /// The scalar's value, or an aliased scalar's value.
    pub fn scalar_value(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            Kind::Alias { scalar } => scalar.as_deref(),
            _ => None,
        }
    }

    /// True for a plain scalar that YAML reads as null (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: ScalarStyle::Plain }
            if matches!(&**value, "" | "~" | "null" | "Null" | "NULL"))
    }

    /// A short word for the node's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq { .. } => "a sequence",
            Kind::Map { .. } => "a mapping",
            Kind::Alias { .. } => "an alias",
        }
    }

    /// A canonical rendering of the node's meaning (values, not formatting), for verification.
    pub fn meaning(&self, out: &mut String) {
        match &self.kind {
            Kind::Scalar { value, style } => {
                let null = self.is_null();
                out.push_str(if null { "~" } else { "s" });
                if !null {
                    out.push_str(&format!("{:?}{}", value, *style == ScalarStyle::Plain));
                }
            }
            Kind::Alias { scalar } => out.push_str(&format!("*{scalar:?}")),
            Kind::Seq { items, .. } => {
                out.push('[');
                for item in items {
                    item.meaning(out);
                    out.push(',');
                }
                out.push(']');
            }
            Kind::Map { pairs, .. } => {
                out.push('{');
                for (k, v) in pairs {
                    k.meaning(out);
                    out.push(':');
                    v.meaning(out);
                    out.push(',');
                }
                out.push('}');
            }
        }
    }
}

/// A parsed single-document file.
#[derive(Debug, PartialEq)]
pub(crate) struct Document<'t> {
    /// The root node; `None` for a file with no content (empty, or only comments).
    pub root: Option<Node<'t>>,
    /// True when the document ends with an explicit `...` marker.
    pub explicit_end: bool,
}

/// Converts saphyr's character indices to byte offsets.
struct Offsets {
    /// Byte offset of each character, plus one entry for the end; empty when the text is ASCII.
    bytes: Vec<usize>,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let bytes = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .collect()
        };
        Offsets { bytes }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.bytes.is_empty() {
            char_index
        } else {
            self.bytes[char_index.min(self.bytes.len() - 1)]
        }
    }
}

/// A collection being built.
struct Open<'t> {
    node: Node<'t>,
    /// A mapping key waiting for its value.
    pending_key: Option<Node<'t>>,
    /// The anchor id, to record aliases of scalars only.
    _anchor: usize,
}

/// Parses `text` into a [`Document`]. More than one document is an error: kustomize reads one.
///
/// Plain block-style files take [`super::quick`]'s fast path; everything else goes through saphyr.
pub(crate) fn parse(text: &str) -> Result<Document<'_>, EditError> {
    refuse_ambiguous(text)?;
    if let Some(doc) = super::quick::parse(text) {
        debug_assert_eq!(
            Ok(&doc),
            parse_with_saphyr(text)
                .as_ref()
                .map_err(ToString::to_string),
            "the fast path and saphyr disagree on {text:?}"
        );
        return Ok(doc);
    }
    parse_with_saphyr(text)
}

/// Refuses text that YAML readers take differently, before any edit: the engine's parser (saphyr,
/// YAML 1.2) and kustomize's (go-yaml, the libyaml family, YAML 1.1) must see the same lines, or a
/// verified edit could mean something else to kustomize (docs/research/fuzz-edit-engine.md O2, F5,
/// F6, O1).
pub(crate) fn refuse_ambiguous(text: &str) -> Result<(), EditError> {
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    // go-yaml rejects `...` before any content ("did not find expected node content"; checked
    // with kubectl kustomize v5.5.0), saphyr reads it as an empty document.
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if let Some((i, line)) = first {
        if line == "..." || line.starts_with("... ") || line.starts_with("...\t") {
            return Err(EditError::Ambiguous {
                line: i + 1,
                reason: "a document end marker (`...`) before any content, which kustomize \
                         rejects (\"did not find expected node content\"); remove it",
            });
        }
    }
    let bytes = text.as_bytes();
    // One pass over the bytes: only `\r`, 0xC2 (U+0085) and 0xE2/0xEF (U+2028/9, U+FEFF) can start
    // what is looked for.
    for (at, &b) in bytes.iter().enumerate() {
        let refused = match b {
            b'\r' if bytes.get(at + 1) != Some(&b'\n') => Some(
                "a lone carriage return (CR) as a line break: saphyr reads it as one, the \
                 engine's line handling does not; convert the file to LF or CRLF line endings",
            ),
            0xC2 if bytes.get(at + 1) == Some(&0x85) => Some(
                "a NEXT LINE character (U+0085): YAML 1.1 readers such as kustomize's take it as \
                 a line break, YAML 1.2 readers do not; remove it",
            ),
            0xE2 if bytes.get(at + 1) == Some(&0x80)
                && matches!(bytes.get(at + 2), Some(0xA8 | 0xA9)) =>
            {
                Some(
                    "a LINE or PARAGRAPH SEPARATOR (U+2028/U+2029): YAML 1.1 readers such as \
                     kustomize's take it as a line break, YAML 1.2 readers do not, so an edit \
                     could mean something else to kustomize; remove it",
                )
            }
            0xEF if at > 0
                && bytes.get(at + 1) == Some(&0xBB)
                && bytes.get(at + 2) == Some(&0xBF) =>
            {
                Some(
                    "a byte order mark (U+FEFF) after the start of the file: only the first \
                     character may be one; remove it",
                )
            }
            _ => None,
        };
        if let Some(reason) = refused {
            return Err(EditError::Ambiguous {
                line: line_of(at),
                reason,
            });
        }
    }
    Ok(())
}

/// [`parse`] through saphyr-parser's events: any YAML.
pub(crate) fn parse_with_saphyr<'t>(text: &'t str) -> Result<Document<'t>, EditError> {
    let mut docs = parse_documents_up_to(text, 1)?;
    Ok(docs.pop().unwrap_or(Document {
        root: None,
        explicit_end: false,
    }))
}

/// Every document of a multi-document file (`---` separated), through saphyr. Refuses what
/// [`refuse_ambiguous`] refuses.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Document<'_>>, EditError> {
    parse_documents_up_to(text, usize::MAX)
}

fn parse_documents_up_to<'t>(text: &'t str, most: usize) -> Result<Vec<Document<'t>>, EditError> {
    refuse_ambiguous(text)?;
    let offsets = Offsets::new(text);
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, Option<Cow<'_, str>>> = HashMap::new();
    let mut docs: Vec<Document> = Vec::new();
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| EditError::Yaml {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            info: e.info().to_string(),
        })?;
        let start = offsets.byte(span.start.index());
        let node_at = |kind: Kind<'t>, end: usize, anchor: usize, tagged: bool| -> Node<'t> {
            Node {
                kind,
                start,
                end,
                line: span.start.line(),
                col: span.start.col(),
                anchored: anchor != 0,
                tagged,
            }
        };
        let finished: Option<Node> = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => None,
            Event::DocumentStart(_) => {
                docs.push(Document {
                    root: None,
                    explicit_end: false,
                });
                if docs.len() > most {
                    return Err(EditError::NotKustomization {
                        reason: format!(
                            "line {}: a second YAML document; a kustomization file holds exactly one",
                            span.start.line()
                        ),
                    });
                }
                None
            }
            Event::DocumentEnd => {
                if let Some(doc) = docs.last_mut() {
                    doc.explicit_end = span.end.index() > span.start.index();
                }
                None
            }
            Event::Alias(id) => Some(node_at(
                Kind::Alias {
                    scalar: anchors.get(&id).cloned().flatten(),
                },
                offsets.byte(span.end.index()),
                0,
                false,
            )),
            Event::Scalar(value, style, anchor, tag) => {
                let end = scalar_end(text, start, &span, style, &offsets)?;
                if anchor != 0 {
                    anchors.insert(anchor, Some(value.clone()));
                }
                Some(node_at(
                    Kind::Scalar { value, style },
                    end,
                    anchor,
                    tag.is_some(),
                ))
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                if anchor != 0 {
                    anchors.insert(anchor, None);
                }
                let is_flow = span.end.index() > span.start.index();
                let kind = if matches!(event, Event::SequenceStart(..)) {
                    Kind::Seq {
                        flow: is_flow,
                        items: Vec::new(),
                    }
                } else {
                    Kind::Map {
                        flow: is_flow,
                        pairs: Vec::new(),
                    }
                };
                stack.push(Open {
                    node: node_at(kind, start, anchor, tag.is_some()),
                    pending_key: None,
                    _anchor: anchor,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let open = stack.pop().expect("balanced events");
                let mut node = open.node;
                let flow = matches!(
                    node.kind,
                    Kind::Seq { flow: true, .. } | Kind::Map { flow: true, .. }
                );
                node.end = if flow {
                    offsets.byte(span.end.index())
                } else {
                    last_child_end(&node).unwrap_or(node.start)
                };
                Some(node)
            }
        };
        if let Some(node) = finished {
            match stack.last_mut() {
                None => docs.last_mut().expect("a node is inside a document").root = Some(node),
                Some(open) => match &mut open.node.kind {
                    Kind::Seq { items, .. } => items.push(node),
                    Kind::Map { pairs, .. } => match open.pending_key.take() {
                        None => open.pending_key = Some(node),
                        Some(key) => pairs.push((key, node)),
                    },
                    _ => unreachable!("only collections are open"),
                },
            }
        }
    }
    Ok(docs)
}

/// The end of a block collection: the end of its last child.
fn last_child_end(node: &Node) -> Option<usize> {
    match &node.kind {
        Kind::Seq { items, .. } => items.last().map(|n| n.end),
        Kind::Map { pairs, .. } => pairs.last().map(|(k, v)| v.end.max(k.end)),
        _ => None,
    }
}

/// The true end of a scalar. Plain and block scalars: saphyr's end. Quoted ones: just past the closing
/// quote, found by scanning (saphyr's end runs on over blanks and comments).
fn scalar_end(
    text: &str,
    start: usize,
    span: &Span,
    style: ScalarStyle,
    offsets: &Offsets,
) -> Result<usize, EditError> {
    let quote = match style {
        ScalarStyle::SingleQuoted => b'\'',
        ScalarStyle::DoubleQuoted => b'"',
        _ => return Ok(offsets.byte(span.end.index())),
    };
    let bytes = text.as_bytes();
    // Skip an anchor or tag in front of the opening quote.
    let open = start
        + bytes[start..]
            .iter()
            .position(|&b| b == quote)
            .expect("a quoted scalar has an opening quote");
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(EditError::Yaml {
        line: span.start.line(),
        col: span.start.col() + 1,
        info: "unterminated quoted scalar".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice<'a>(text: &'a str, n: &Node) -> &'a str {
        &text[n.start..n.end]
    }

    #[test]
    fn spans_are_bytes_and_exclude_trailing_comments() {
        let text = "\u{feff}# c\r\nimages:\r\n  - name: \"café\" # x\r\n    newTag: 'a''b'  \r\n  - {name: b, newTag: c}\r\n";
        let doc = parse(text).unwrap();
        let Some(Node {
            kind: Kind::Map { pairs, .. },
            ..
        }) = &doc.root
        else {
            panic!()
        };
        let Kind::Seq { items, flow: false } = &pairs[0].1.kind else {
            panic!()
        };
        let Kind::Map { pairs: entry, .. } = &items[0].kind else {
            panic!()
        };
        assert_eq!(slice(text, &entry[0].1), "\"café\"");
        assert_eq!(slice(text, &entry[1].1), "'a''b'");
        assert_eq!(slice(text, &items[1]), "{name: b, newTag: c}");
        assert_eq!(
            slice(text, &pairs[0].1),
            "- name: \"café\" # x\r\n    newTag: 'a''b'  \r\n  - {name: b, newTag: c}"
        );
    }

    #[test]
    fn a_second_document_is_refused() {
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
        assert!(parse("---\na: 1\n").unwrap().root.is_some());
        assert!(parse("# only a comment\n").unwrap().root.is_none());
    }
}
