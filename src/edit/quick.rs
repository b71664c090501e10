//! A fast path for the plain block-style YAML that nearly every kustomization is written in.
//!
//! saphyr-parser scans one character at a time and costs about 2.5 ms for a 164 KB file; an edit parses
//! twice (locate, then verify), so a 1,000-entry kustomization could not be edited within the 2 ms
//! target. This reader handles a deliberately small subset of YAML line by line and builds exactly the
//! [`Document`] that [`super::locate`] builds from saphyr's events. On anything outside the subset it
//! answers `None` and the caller falls back to saphyr, so it never has to be right about hard YAML:
//! only about the easy YAML it accepts. Debug builds compare the two on every parse, and the unit tests
//! compare them on generated files.
//!
//! The subset: block mappings and sequences (also indentless sequences and `- key: value` entries),
//! single-line plain scalars, single-line single-quoted scalars, single-line double-quoted scalars
//! without escapes, comments, blank lines, LF or CRLF line ends, and one leading `---`. Everything else
//! (flow collections, anchors, aliases, tags, block scalars, multi-line scalars, empty values, explicit
//! keys, directives, `...`, tabs, a BOM, non-ASCII text outside comments) is left to saphyr.

use std::borrow::Cow;

use saphyr_parser::ScalarStyle;

use super::locate::{Document, Kind, Node};

/// Reads `text` when it is in the subset; `None` means "ask saphyr".
pub(crate) fn parse(text: &str) -> Option<Document<'_>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        stack: Vec::new(),
        root: None,
        seen_content: false,
        line: 0,
        line_start: 0,
    };
    reader.run()?;
    Some(Document {
        root: reader.root,
        explicit_end: false,
    })
}

/// An open block collection.
struct Frame<'t> {
    /// The column of its keys or dashes.
    indent: usize,
    node: Node<'t>,
    /// Mapping: a key whose value starts on a later line. Sequence: `-` with its item on later lines.
    pending_key: Option<Node<'t>>,
    pending_item: bool,
    /// A sequence at the same column as the keys of the mapping it is a value of.
    indentless: bool,
}

struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    stack: Vec<Frame<'t>>,
    root: Option<Node<'t>>,
    /// A content line or `---` has been seen (a later `---` would start a second document).
    seen_content: bool,
    /// 1-based number of the current line.
    line: usize,
    /// Byte offset of the current line's first byte.
    line_start: usize,
}

/// True for the bytes this reader accepts inside a scalar: printable ASCII.
fn printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

impl<'t> Reader<'t> {
    fn run(&mut self) -> Option<()> {
        let len = self.bytes.len();
        let mut start = 0;
        while start < len {
            let newline = memchr::memchr(b'\n', &self.bytes[start..]).map_or(len, |i| start + i);
            // A CRLF line ends before its `\r`.
            let end = if newline > start && self.bytes[newline - 1] == b'\r' {
                newline - 1
            } else {
                newline
            };
            self.line += 1;
            self.line_start = start;
            self.read_line(end)?;
            start = newline + 1;
        }
        // Closing refuses a pending key or item: an empty value at the end is left to saphyr.
        while !self.stack.is_empty() {
            self.pop()?;
        }
        // `---` with nothing after it is a document holding null: left to saphyr.
        (self.root.is_some() || !self.seen_content).then_some(())
    }

    fn read_line(&mut self, end: usize) -> Option<()> {
        let bytes = self.bytes;
        let mut pos = self.line_start;
        while pos < end && bytes[pos] == b' ' {
            pos += 1;
        }
        if pos == end || bytes[pos] == b'#' {
            return self.comment(pos, end);
        }
        let indent = pos - self.line_start;
        if indent == 0
            && (bytes[pos..end].starts_with(b"---") || bytes[pos..end].starts_with(b"..."))
        {
            let after = pos + 3;
            let marker_only = after == end || bytes[after] == b' ';
            if !marker_only || bytes[pos] == b'.' || self.seen_content {
                return None;
            }
            self.seen_content = true;
            return self.rest_is_comment(after, end);
        }
        self.seen_content = true;
        let dash = is_dash(bytes, pos, end);
        self.close_to(indent, dash)?;
        self.open_for(indent, pos, dash)?;
        self.content(pos, end)
    }

    /// Closes every frame that cannot take a line starting at column `indent`.
    fn close_to(&mut self, indent: usize, dash: bool) -> Option<()> {
        loop {
            let Some(top) = self.stack.last() else {
                return Some(());
            };
            let is_seq = matches!(top.node.kind, Kind::Seq { .. });
            if top.pending_key.is_some() {
                // The pending key's value starts here: a nested collection, else an empty value.
                return (indent > top.indent || (indent == top.indent && dash)).then_some(());
            }
            if top.pending_item {
                return (indent > top.indent).then_some(());
            }
            if indent == top.indent && (dash == is_seq) {
                return Some(());
            }
            if indent < top.indent || (indent == top.indent && is_seq && top.indentless) {
                self.pop()?;
                continue;
            }
            // More indented after a complete value (a continuation line), or a dash among keys.
            return None;
        }
    }

    /// Opens the collection a line at `indent` starts, when it starts one.
    fn open_for(&mut self, indent: usize, pos: usize, dash: bool) -> Option<()> {
        let opens = match self.stack.last() {
            None => {
                if self.root.is_some() {
                    return None;
                }
                true
            }
            Some(top) => top.pending_key.is_some() || top.pending_item,
        };
        if opens {
            let indentless = self
                .stack
                .last()
                .is_some_and(|top| top.pending_key.is_some() && top.indent == indent);
            self.push(pos, dash, indentless);
        }
        Some(())
    }

    fn push(&mut self, pos: usize, seq: bool, indentless: bool) {
        let kind = if seq {
            Kind::Seq {
                flow: false,
                items: Vec::new(),
            }
        } else {
            Kind::Map {
                flow: false,
                pairs: Vec::new(),
            }
        };
        let indent = pos - self.line_start;
        self.stack.push(Frame {
            indent,
            node: self.node(kind, pos, pos),
            pending_key: None,
            pending_item: false,
            indentless,
        });
    }

    /// Closes the top frame and hands its node to its parent (or makes it the root).
    fn pop(&mut self) -> Option<()> {
        let frame = self.stack.pop()?;
        if frame.pending_key.is_some() || frame.pending_item {
            return None;
        }
        let mut node = frame.node;
        node.end = match &node.kind {
            Kind::Seq { items, .. } => items.last().map(|n| n.end),
            Kind::Map { pairs, .. } => pairs.last().map(|(k, v)| v.end.max(k.end)),
            _ => None,
        }
        .unwrap_or(node.start);
        self.attach(node)
    }

    /// Gives a finished node to the top frame.
    fn attach(&mut self, node: Node<'t>) -> Option<()> {
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(node);
            return Some(());
        };
        match &mut top.node.kind {
            Kind::Map { pairs, .. } => {
                let key = top.pending_key.take()?;
                pairs.push((key, node));
            }
            Kind::Seq { items, .. } => {
                top.pending_item = false;
                if items.is_empty() && top.indentless {
                    // saphyr places an indentless sequence where its first item starts.
                    (top.node.start, top.node.line, top.node.col) =
                        (node.start, node.line, node.col);
                }
                items.push(node);
            }
            _ => return None,
        }
        Some(())
    }

    /// The rest of a line from `pos`, inside the frame on top: `- item` or `key: value`.
    fn content(&mut self, pos: usize, end: usize) -> Option<()> {
        let bytes = self.bytes;
        let is_seq = matches!(self.stack.last()?.node.kind, Kind::Seq { .. });
        if !is_seq {
            return self.key_value(pos, end);
        }
        // `-` then blanks; the item is the rest of the line or, when that is empty, later lines.
        let mut item = pos + 1;
        while item < end && bytes[item] == b' ' {
            item += 1;
        }
        if item == end || bytes[item] == b'#' {
            self.rest_is_comment(item, end)?;
            let top = self.stack.last_mut()?;
            // saphyr places such a sequence at an odd spot (just past the dash): left to it.
            if top.indentless
                && matches!(&top.node.kind, Kind::Seq { items, .. } if items.is_empty())
            {
                return None;
            }
            top.pending_item = true;
            return Some(());
        }
        if is_dash(bytes, item, end) {
            return None;
        }
        if self.key_end(item, end).is_some() {
            // `- key: value`: a mapping whose keys sit at the item's column.
            self.stack.last_mut()?.pending_item = true;
            self.push(item, false, false);
            return self.key_value(item, end);
        }
        let (scalar, after) = self.scalar(item, end)?;
        self.rest_is_comment(after, end)?;
        self.attach(scalar)
    }

    /// `key: value` or `key:` (value on later lines) in the mapping on top.
    fn key_value(&mut self, pos: usize, end: usize) -> Option<()> {
        let bytes = self.bytes;
        let colon = self.key_end(pos, end)?;
        let (key, after) = self.scalar_until(pos, colon)?;
        if after != colon {
            return None;
        }
        let mut value = colon + 1;
        while value < end && bytes[value] == b' ' {
            value += 1;
        }
        let top = self.stack.last_mut()?;
        top.pending_key = Some(key);
        if value == end || bytes[value] == b'#' {
            return self.rest_is_comment(value, end);
        }
        if is_dash(bytes, value, end) {
            return None;
        }
        let (scalar, after) = self.scalar(value, end)?;
        self.rest_is_comment(after, end)?;
        self.attach(scalar)
    }

    /// Where the key of a `key: value` line starting at `pos` ends (its `:`), if the line is one.
    fn key_end(&self, pos: usize, end: usize) -> Option<usize> {
        let bytes = self.bytes;
        let mut i = pos;
        if matches!(bytes[pos], b'"' | b'\'') {
            i = self.closing_quote(pos, end)? + 1;
            return (i < end && bytes[i] == b':' && (i + 1 == end || bytes[i + 1] == b' '))
                .then_some(i);
        }
        while i < end {
            match bytes[i] {
                b':' if i + 1 == end || bytes[i + 1] == b' ' => return Some(i),
                b'#' if i > pos && bytes[i - 1] == b' ' => return None,
                b if !printable(b) => return None,
                _ => i += 1,
            }
        }
        None
    }

    /// A scalar value running to the end of the line (or to a comment).
    fn scalar(&self, pos: usize, end: usize) -> Option<(Node<'t>, usize)> {
        if matches!(self.bytes[pos], b'"' | b'\'') {
            return self.scalar_until(pos, end);
        }
        // One pass: the value runs to a comment or the end of the line; `: ` would make it a key.
        let bytes = self.bytes;
        let mut stop = pos;
        while stop < end {
            match bytes[stop] {
                b'#' if stop > pos && bytes[stop - 1] == b' ' => break,
                b':' if stop + 1 == end || bytes[stop + 1] == b' ' => return None,
                b if !printable(b) => return None,
                _ => stop += 1,
            }
        }
        self.scalar_until(pos, stop)
    }

    /// The scalar starting at `pos` whose text ends by `limit`, and where it ends.
    fn scalar_until(&self, pos: usize, limit: usize) -> Option<(Node<'t>, usize)> {
        let bytes = self.bytes;
        match bytes[pos] {
            quote @ (b'"' | b'\'') => {
                let close = self.closing_quote(pos, limit)?;
                let inner: &'t str = &self.text[pos + 1..close];
                if inner.len() > 1000 {
                    return None;
                }
                let (value, style) = if quote == b'"' {
                    (Cow::Borrowed(inner), ScalarStyle::DoubleQuoted)
                } else if inner.contains('\'') {
                    (
                        Cow::Owned(inner.replace("''", "'")),
                        ScalarStyle::SingleQuoted,
                    )
                } else {
                    (Cow::Borrowed(inner), ScalarStyle::SingleQuoted)
                };
                let kind = Kind::Scalar { value, style };
                Some((self.node(kind, pos, close + 1), close + 1))
            }
            first => {
                let mut end = limit;
                while end > pos && bytes[end - 1] == b' ' {
                    end -= 1;
                }
                let plain_start = first.is_ascii_alphanumeric()
                    || matches!(
                        first,
                        b'.' | b'/' | b'_' | b'~' | b'$' | b'=' | b'+' | b'(' | b'^'
                    )
                    || (first == b'-' && end > pos + 1 && bytes[pos + 1].is_ascii_alphanumeric());
                // A plain key must stay short: YAML limits implicit keys to 1,024 characters. The
                // callers have checked that every byte is printable ASCII.
                if !plain_start || end - pos > 1000 {
                    return None;
                }
                let value = Cow::Borrowed(&self.text[pos..end]);
                let kind = Kind::Scalar {
                    value,
                    style: ScalarStyle::Plain,
                };
                Some((self.node(kind, pos, end), end))
            }
        }
    }

    /// The closing quote of the quoted scalar opening at `pos`, on this line; `None` for escapes
    /// and anything but printable ASCII inside.
    fn closing_quote(&self, pos: usize, end: usize) -> Option<usize> {
        let bytes = self.bytes;
        let quote = bytes[pos];
        let mut i = pos + 1;
        while i < end {
            match bytes[i] {
                b'\\' if quote == b'"' => return None,
                b'\'' if quote == b'\'' && i + 1 < end && bytes[i + 1] == b'\'' => i += 2,
                b if b == quote => return Some(i),
                b if printable(b) => i += 1,
                _ => return None,
            }
        }
        None
    }

    /// Only blanks and a comment may follow from `pos`.
    fn rest_is_comment(&self, pos: usize, end: usize) -> Option<()> {
        let bytes = self.bytes;
        let mut i = pos;
        while i < end && bytes[i] == b' ' {
            i += 1;
        }
        if i == end {
            return Some(());
        }
        // A comment needs a blank before it (or the start of the line).
        (bytes[i] == b'#' && (i == self.line_start || bytes[i - 1] == b' ')).then_some(())?;
        self.comment(i, end)
    }

    /// A comment from `pos` to `end` (or an empty rest of line): anything but control characters
    /// and the characters some YAML readers take as line breaks.
    fn comment(&self, pos: usize, end: usize) -> Option<()> {
        let text = &self.bytes[pos..end];
        if text.iter().all(|&b| printable(b)) {
            return Some(());
        }
        let text = &self.text[pos..end];
        text.chars()
            .all(|c| {
                !c.is_control() && !matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
            })
            .then_some(())
    }

    fn node(&self, kind: Kind<'t>, start: usize, end: usize) -> Node<'t> {
        Node {
            kind,
            start,
            end,
            line: self.line,
            // Everything before a node on its line is ASCII (only comments may hold other text).
            col: start - self.line_start,
            anchored: false,
            tagged: false,
        }
    }
}

/// True when a `-` at `pos` starts a sequence item (followed by a blank or the end of the line).
fn is_dash(bytes: &[u8], pos: usize, end: usize) -> bool {
    bytes[pos] == b'-' && (pos + 1 == end || bytes[pos + 1] == b' ')
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::locate::parse_with_saphyr;
    use super::*;

    /// The fast path either declines or builds exactly what saphyr's events build. Returns whether it
    /// took the text.
    fn agrees(text: &str) -> bool {
        let Some(quick) = parse(text) else {
            return false;
        };
        match parse_with_saphyr(text) {
            Ok(slow) => assert_eq!(quick, slow, "the fast path differs from saphyr on {text:?}"),
            Err(e) => panic!("the fast path took {text:?}, which saphyr rejects: {e}"),
        }
        true
    }

    /// Every input and expected output of the edit vectors, also with CRLF line ends.
    #[test]
    fn agrees_with_saphyr_on_every_vector() {
        let vectors = include_str!("../../tests/fixtures/edit/vectors.txt");
        let mut blocks: Vec<String> = Vec::new();
        let mut current: Option<String> = None;
        for line in vectors.lines() {
            if line.starts_with(">>> ") || line.starts_with("=== ") {
                blocks.extend(current.take());
                if line == ">>> input" || line == ">>> expected" {
                    current = Some(String::new());
                }
            } else if let Some(block) = current.as_mut() {
                block.push_str(line);
                block.push('\n');
            }
        }
        blocks.extend(current);
        let mut taken = 0;
        for block in &blocks {
            for text in [block.clone(), block.replace('\n', "\r\n")] {
                taken += usize::from(agrees(&text));
                taken += usize::from(agrees(text.trim_end()));
            }
        }
        // Most vectors are plain block style: the fast path must really be exercised.
        assert!(blocks.len() > 150, "{} blocks", blocks.len());
        assert!(
            taken * 2 > blocks.len() * 4,
            "{taken} of {} taken",
            blocks.len() * 4
        );
    }

    #[test]
    fn agrees_or_declines_on_awkward_yaml() {
        let taken = [
            "",
            "# only a comment\n",
            "---\nimages:\n- name: a\n",
            "--- # c\na: b\n",
            "a: b\n---\nc: d\n",
            "a: b\n...\n",
            "images:\n- name: a\n  newTag: '1.0'\n",
            "images:\n  - name: \"a\" # x\n    newTag: 'it''s'  \n",
            "images:\n  -   name: a\n      newTag: b\n",
            "images:\n-\n  name: a\n",
            "images:\n  - name: a\nresources:\n- x\n",
            "a:\n  b:\n    c: d\n  e: f\ng: h\n",
            "a: b\n  c\n",
            "a: b\n   # c\n",
            "a: b # c\n# d\n",
            "a: b#c\n",
            "a: b:c\n",
            "a: b: c\n",
            "a:\nb: c\n",
            "a:\n",
            "a: - b\n",
            "- - a\n",
            "- a\nb: c\n",
            "a: b\n- c\n",
            "a: \"b\\\"c\"\n",
            "a: 'b\n  c'\n",
            "a: &x b\nc: *x\n",
            "a: !!str b\n",
            "a: |\n  b\n",
            "a: [b]\n",
            "{a: b}\n",
            "? a\n: b\n",
            "a:\tb\n",
            "\u{feff}a: b\n",
            "a: b # caf\u{e9}\n",
            "a: caf\u{e9}\n",
            "a: b\r\nc: d",
            "a: b\rc: d\n",
            "a:b\n",
            "\"a\": b\n",
            "'a': b\n",
            "\"a\" : b\n",
            "-a: b\n",
            "a: -1\n",
            "a: ~\n",
            "a: b\n c: d\n",
            "a:\n  - b\n  c: d\n",
            "a:\n- b\n - c\n",
            " a: b\nc: d\n",
            "  a: b\n  c: d\n",
            "a: b\n\n\n",
            "a: b   \n",
            "a: \"b\"c\n",
            "a: \"\"\n",
            "a: ''\n",
            "%YAML 1.2\n---\na: b\n",
        ]
        .into_iter()
        .filter(|text| agrees(text))
        .count();
        assert!(taken >= 20, "only {taken} taken");
    }

    /// Lines for generated files: keys, items, values of every style, comments, and some YAML the
    /// fast path must decline.
    const LINES: [&str; 30] = [
        "images:",
        "name: app",
        "newTag: \"1.10\"",
        "newTag: '1.0'",
        "newName: reg.example.com:5000/a/b # mirror",
        "- name: web",
        "- ../base",
        "- \"quoted item\"",
        "-",
        "# a comment",
        "",
        "key: value # with: colon",
        "key: a#b",
        "key:",
        "k: v: w",
        "- k: v",
        "- - x",
        "continued words",
        "'single''s': x",
        "\"double\": \"x y\"",
        "k: &a v",
        "k: *a",
        "k: [a, b]",
        "k: |",
        "k: {a: b}",
        "---",
        "k: 1e3",
        "k: ~",
        "digest: sha256:abc",
        "k: \"esc\\\"aped\"",
    ];

    fn generated() -> impl Strategy<Value = String> {
        proptest::collection::vec((0usize..LINES.len(), 0usize..5, any::<bool>()), 1..25).prop_map(
            |lines| {
                let mut text = String::new();
                for (line, indent, crlf) in lines {
                    text.push_str(&" ".repeat([0, 1, 2, 4, 6][indent]));
                    text.push_str(LINES[line]);
                    text.push_str(if crlf { "\r\n" } else { "\n" });
                }
                text
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn agrees_with_saphyr_on_generated_files(text in generated()) {
            agrees(&text);
        }
    }

    /// A block-style tree: what most kustomizations are.
    #[derive(Debug, Clone)]
    enum Tree {
        Scalar(&'static str),
        Map(Vec<(&'static str, Tree)>),
        Seq(Vec<Tree>),
    }

    const SCALARS: [&str; 14] = [
        "v1",
        "\"1.10\"",
        "'it''s'",
        "a#b",
        "a:b",
        "~",
        "-1",
        "../base",
        "\"\"",
        "''",
        "registry.example.com:5000/team/app",
        "sha256:abc",
        "x y  z",
        "\"caf\u{e9}\"",
    ];
    const KEYS: [&str; 6] = ["name", "newTag", "\"quoted key\"", "'k'", "images", "a-b"];

    fn tree() -> impl Strategy<Value = Tree> {
        let leaf = proptest::sample::select(&SCALARS[..]).prop_map(Tree::Scalar);
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(
                    (proptest::sample::select(&KEYS[..]), inner.clone()),
                    1..5
                )
                .prop_map(Tree::Map),
                proptest::collection::vec(inner, 1..5).prop_map(Tree::Seq),
            ]
        })
    }

    /// Layout choices: indentation step, indentless sequences, comments, blank lines, line ends.
    #[derive(Debug, Clone)]
    struct Layout {
        step: usize,
        indentless: bool,
        comments: Vec<bool>,
        crlf: bool,
    }

    fn render(tree: &Tree, indent: usize, layout: &Layout, n: &mut usize, out: &mut String) {
        let comment = |out: &mut String, n: &mut usize| {
            *n += 1;
            if layout.comments[*n % layout.comments.len()] {
                out.push_str(if *n % 3 == 0 { "  # note" } else { " #c" });
            }
            out.push_str(if layout.crlf { "\r\n" } else { "\n" });
            if *n % 7 == 0 {
                out.push_str("\n# between\n");
            }
        };
        let pad = " ".repeat(indent);
        match tree {
            Tree::Scalar(s) => {
                out.push_str(&pad);
                out.push_str(s);
                comment(out, n);
            }
            Tree::Map(pairs) => {
                for (k, v) in pairs {
                    out.push_str(&pad);
                    out.push_str(k);
                    out.push(':');
                    match v {
                        Tree::Scalar(s) => {
                            out.push(' ');
                            out.push_str(s);
                            comment(out, n);
                        }
                        Tree::Seq(_) if layout.indentless => {
                            comment(out, n);
                            render(v, indent, layout, n, out);
                        }
                        _ => {
                            comment(out, n);
                            render(v, indent + layout.step, layout, n, out);
                        }
                    }
                }
            }
            Tree::Seq(items) => {
                for item in items {
                    out.push_str(&pad);
                    out.push('-');
                    match item {
                        Tree::Scalar(s) => {
                            out.push(' ');
                            out.push_str(s);
                            comment(out, n);
                        }
                        Tree::Map(_) => {
                            // `- key: value`, the rest of the mapping two columns in.
                            let mut inner = String::new();
                            render(item, indent + 2, layout, n, &mut inner);
                            out.push_str(&inner[indent + 1..]);
                        }
                        Tree::Seq(_) => {
                            comment(out, n);
                            render(item, indent + 2, layout, n, out);
                        }
                    }
                }
            }
        }
    }

    fn structured() -> impl Strategy<Value = String> {
        (
            tree(),
            prop_oneof![Just(1usize), Just(2), Just(4)],
            any::<bool>(),
            proptest::collection::vec(any::<bool>(), 1..8),
            any::<bool>(),
            proptest::option::of((0usize..40, 0usize..LINES.len())),
        )
            .prop_map(|(tree, step, indentless, comments, crlf, junk)| {
                let layout = Layout {
                    step,
                    indentless,
                    comments,
                    crlf,
                };
                let mut out = String::new();
                let tree = match tree {
                    Tree::Scalar(_) => Tree::Map(vec![("images", tree)]),
                    other => other,
                };
                render(&tree, 0, &layout, &mut 0, &mut out);
                // Sometimes a line the fast path may have to decline.
                if let Some((at, line)) = junk {
                    let mut lines: Vec<&str> = out.split_inclusive('\n').collect();
                    let extra = format!("{}\n", LINES[line]);
                    lines.insert(at % (lines.len() + 1), &extra);
                    return lines.concat();
                }
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
        #[test]
        fn agrees_with_saphyr_on_structured_files(text in structured()) {
            agrees(&text);
        }
    }

    /// The generators above must produce files the fast path takes, or the properties prove little.
    #[test]
    fn generated_files_exercise_the_fast_path() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let taken = (0..1000)
            .filter(|_| agrees(&structured().new_tree(&mut runner).unwrap().current()))
            .count();
        let soup = (0..1000)
            .filter(|_| agrees(&generated().new_tree(&mut runner).unwrap().current()))
            .count();
        eprintln!("fast path took {taken} of 1,000 structured and {soup} of 1,000 line-soup files");
        assert!(taken > 300 && soup > 10, "structured {taken}, soup {soup}");
    }
}
