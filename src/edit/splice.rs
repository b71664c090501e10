//! Turning image settings into byte splices of the original text, and applying them.
//!
//! Every change is one of the five splices of docs/research/kustomize.md §5.2: replace a value, delete
//! a key, insert a key after the entry's last kept predecessor (kustomize's field order name, newName,
//! newTag, digest), append an entry after the last one in its style, or append an `images` block at
//! the end of the file. Bytes outside the splices are copied unchanged, so untouched formatting,
//! comments, CRLF and a BOM survive by construction.

use saphyr_parser::ScalarStyle;

use super::kustomization::{Entry, Field, Fields, Images, View, Which};
use super::locate::{Kind, Node};
use super::scalar::{render, Quote};
use super::{EditError, FieldUpdate, ImageSetting};

/// Replace `text[start..end]` by `with`. An insertion has `start == end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Splice {
    /// First byte replaced.
    pub start: usize,
    /// Byte just past the replaced range.
    pub end: usize,
    /// The new bytes.
    pub with: String,
    /// Among insertions at the same offset, the lower goes first.
    pub order: u32,
}

impl Splice {
    pub(crate) fn replace(start: usize, end: usize, with: String) -> Self {
        Splice {
            start,
            end,
            with,
            order: 0,
        }
    }
    pub(crate) fn insert(at: usize, with: String, order: u32) -> Self {
        Splice {
            start: at,
            end: at,
            with,
            order,
        }
    }
    fn delete(start: usize, end: usize) -> Self {
        Self::replace(start, end, String::new())
    }
}

/// Applies `splices` to `text`. Overlapping deletions merge; any other overlap is refused.
pub(crate) fn apply(text: &str, mut splices: Vec<Splice>) -> Result<String, EditError> {
    // Lines inserted after a line whose line ending is deleted together with the file's last line
    // (no final newline) move in front of that line ending, which they take over.
    let deletions: Vec<(usize, usize)> = splices
        .iter()
        .filter(|s| s.with.is_empty() && s.end > s.start)
        .map(|s| (s.start, s.end))
        .collect();
    for s in splices.iter_mut().filter(|s| s.start == s.end) {
        if let Some(&(a, _)) = deletions.iter().find(|(a, b)| *a < s.start && s.start < *b) {
            let eol = &text[a..s.start];
            // The inserted line's own ending may differ from the deleted one (mixed line endings).
            let own = if s.with.ends_with("\r\n") {
                2
            } else {
                usize::from(s.with.ends_with('\n'))
            };
            if (eol == "\n" || eol == "\r\n") && own > 0 {
                s.with = format!("{eol}{}", &s.with[..s.with.len() - own]);
                s.start = a;
                s.end = a;
            }
        }
    }
    splices.sort_by_key(|s| (s.start, s.end, s.order));
    let mut merged: Vec<Splice> = Vec::with_capacity(splices.len());
    for s in splices {
        if let Some(last) = merged.last_mut() {
            let overlaps = s.start < last.end;
            if overlaps && last.with.is_empty() && s.with.is_empty() {
                last.end = last.end.max(s.end);
                continue;
            }
            if overlaps {
                return Err(EditError::Unsupported {
                    reason: format!(
                        "two changes overlap at byte {} (please report this file's layout)",
                        s.start
                    ),
                });
            }
        }
        merged.push(s);
    }
    let extra: usize = merged.iter().map(|s| s.with.len()).sum();
    let mut out = String::with_capacity(text.len() + extra);
    let mut cursor = 0;
    for s in &merged {
        out.push_str(&text[cursor..s.start]);
        out.push_str(&s.with);
        cursor = s.end;
    }
    out.push_str(&text[cursor..]);
    Ok(out)
}

/// The file's line ending: CRLF when its first line ends with one.
pub(crate) fn line_ending(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if i > 0 && text.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// The offset where the line holding byte `at` begins.
fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The offset just past the newline that ends the line holding byte `at`, or `None` on the last line
/// when the file has no final newline.
fn next_line_start(text: &str, at: usize) -> Option<usize> {
    text[at..].find('\n').map(|i| at + i + 1)
}

/// True when the list item starting at byte `item` is on the line of its `-` (`- name: a`).
fn on_dash_line(text: &str, item: usize) -> bool {
    text[line_start(text, item)..item].trim_end().ends_with('-')
}

/// Where a list item ending at byte `end` really ends: comment lines indented deeper than its `-`
/// (at column `dash`) belong to it. Returns a byte on the item's last such line.
fn with_comments_below(text: &str, end: usize, dash: usize) -> usize {
    let mut last = end;
    while let Some(next) = next_line_start(text, last).filter(|&n| n < text.len()) {
        let line = &text[next..next_line_start(text, next).unwrap_or(text.len())];
        let indent = line.len() - line.trim_start_matches(' ').len();
        if !(line.trim_start().starts_with('#') && indent > dash) {
            break;
        }
        last = next;
    }
    last
}

/// Inserts whole `lines` after the line holding byte `at`. Each line is given without a line ending;
/// a file without a final newline keeps having none.
fn insert_lines_after(text: &str, at: usize, lines: &[String], eol: &str, order: u32) -> Splice {
    match next_line_start(text, at) {
        Some(pos) => {
            let mut with = String::new();
            for line in lines {
                with.push_str(line);
                with.push_str(eol);
            }
            Splice::insert(pos, with, order)
        }
        None => {
            let mut with = String::new();
            for line in lines {
                with.push_str(eol);
                with.push_str(line);
            }
            Splice::insert(text.len(), with, order)
        }
    }
}

/// The column (in characters) of the `-` that introduces the block sequence item starting at byte
/// `item`: on the item's line, or on an earlier line when the item starts below its dash. saphyr's
/// sequence start event does not give it reliably (it sits at the first item for `- ` lists that are
/// not indented).
fn dash_col(text: &str, item: usize) -> Option<usize> {
    let mut end = item;
    loop {
        let start = line_start(text, end);
        let content = &text[start..end];
        // Only a whole-line comment or blank text may stand between the dash and the item.
        let content = if end == item {
            content
        } else {
            content.split(" #").next().unwrap_or("")
        };
        let trimmed = content.trim_end();
        if trimmed.ends_with('-') {
            return Some(text[start..start + trimmed.len() - 1].chars().count());
        }
        let is_skippable = end != item
            && (trimmed.trim_start().is_empty() || trimmed.trim_start().starts_with('#'));
        if start == 0 || !(is_skippable || end == item && trimmed.trim().is_empty()) {
            return None;
        }
        end = start - 1;
        if end > 0 && text.as_bytes()[end - 1] == b'\r' {
            end -= 1;
        }
    }
}

/// True when the value is written plain but does not read back as a string in YAML 1.1 (`1.10`).
fn is_broken_plain(value: &Node) -> bool {
    match &value.kind {
        Kind::Scalar {
            value: v,
            style: ScalarStyle::Plain,
        } => !value.is_null() && !super::scalar::is_plain_safe(v),
        _ => false,
    }
}

/// What one setting resolves to for one field, given the entry's current value.
fn resolve(update: &FieldUpdate, current: Option<&String>) -> Option<String> {
    match update {
        FieldUpdate::Keep => current.cloned(),
        FieldUpdate::Remove => None,
        FieldUpdate::Set(v) => Some(v.clone()),
    }
}

/// The final values of an entry after `setting` (`current` is `None` for a new entry).
pub(crate) fn resolved_fields(setting: &ImageSetting, current: Option<&Fields>) -> Fields {
    let mut out = Fields::default();
    for which in &Which::ALL[1..] {
        let value = resolve(setting.update(*which), current.and_then(|c| c.get(*which)));
        out.set(*which, value);
    }
    out
}

/// The byte range of field `index` to delete in a block mapping entry, where the fields at `removed`
/// are all deleted.
fn delete_block_field(text: &str, entry: &Entry<'_>, index: usize, removed: &[usize]) -> Splice {
    let field = &entry.fields[index];
    let start_of_line = line_start(text, field.key.start);
    let before_key = &text[start_of_line..field.key.start];
    let on_dash_line = before_key.contains('-') && before_key.chars().all(|c| c == ' ' || c == '-');
    if on_dash_line {
        // The first key shares the `- ` line: pull the next key up onto it (docs/research/kustomize.md §4.1 L4).
        // The next key that stays (deleted keys between are covered by their own ranges).
        let next = (index + 1..entry.fields.len())
            .find(|i| !removed.contains(i))
            .map(|i| &entry.fields[i]);
        if let Some(next) = next {
            let line_end = next_line_start(text, field.value.end).unwrap_or(text.len());
            if !text[line_end.min(next.key.start)..next.key.start].contains('#') {
                return Splice::delete(field.key.start, next.key.start);
            }
            // Comment lines before the next key stay where they are; the item then starts below
            // its dash (`-` alone on its line), which YAML reads the same way.
            let dash_end = start_of_line + before_key.trim_end().len();
            let eol_start = text[..line_end].trim_end_matches(['\n', '\r']).len();
            return Splice::delete(dash_end, eol_start);
        }
    }
    match next_line_start(text, field.value.end) {
        Some(end) => Splice::delete(start_of_line, end),
        // The last line of a file without a final newline: take the line ending before it instead,
        // so the file still has no final newline (see `apply` for an insertion at that line).
        None => {
            let start = text[..start_of_line]
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t).len())
                .unwrap_or(start_of_line);
            Splice::delete(start, text.len())
        }
    }
}

/// The byte ranges to delete for the fields at `removed` of a flow mapping entry, with their commas.
/// Consecutive fields go in one range, so the commas between them cannot be left behind.
fn delete_flow_fields(entry: &Entry<'_>, mut removed: Vec<usize>) -> Vec<Splice> {
    removed.sort_unstable();
    let mut splices = Vec::new();
    let mut i = 0;
    while i < removed.len() {
        let first = removed[i];
        let mut last = first;
        while i + 1 < removed.len() && removed[i + 1] == last + 1 {
            i += 1;
            last = removed[i];
        }
        i += 1;
        let fields = &entry.fields;
        splices.push(match first.checked_sub(1) {
            // After a kept field: from the end of its value, taking the comma before each removed one.
            Some(prev) => Splice::delete(fields[prev].value.end, fields[last].value.end),
            // At the start: up to the next kept key (`name` is always kept).
            None => match fields.get(last + 1) {
                Some(next) => Splice::delete(fields[first].key.start, next.key.start),
                None => Splice::delete(fields[first].key.start, fields[last].value.end),
            },
        });
    }
    splices
}

/// An error for changing a value that is shared through an anchor or alias.
fn aliased(name: &str, field: &Field<'_>) -> EditError {
    EditError::Aliased {
        name: name.to_string(),
        field: field.which.key(),
        line: field.value.line,
    }
}

/// The deletion that removes a whole block-list entry: its lines from the one holding its `-` to the
/// one ending it, with the comment lines indented under it. An entry of a flow list (`[{…}]`), or
/// one whose first key is not on its `-` line, is refused rather than reformatted.
pub(crate) fn remove_entry(
    text: &str,
    images: &Images<'_>,
    entry: &Entry<'_>,
) -> Result<Splice, EditError> {
    let refuse = |why: &str| EditError::Unsupported {
        reason: format!("line {}: {why}; remove the entry by hand", entry.node.line),
    };
    if matches!(images.value.kind, Kind::Seq { flow: true, .. }) {
        return Err(refuse("the images list is in flow style ([…])"));
    }
    // An anchor defined in the entry may be used elsewhere: removing it would break the alias.
    if let Some(field) = entry
        .fields
        .iter()
        .find(|f| f.key.anchored || f.value.anchored)
    {
        return Err(aliased(&entry.name(), field));
    }
    let start = line_start(text, entry.node.start);
    if !on_dash_line(text, entry.node.start) {
        return Err(refuse("the entry's first key is not on its `-` line"));
    }
    let dash =
        dash_col(text, entry.node.start).ok_or_else(|| refuse("cannot find the entry's `-`"))?;
    let last_line = with_comments_below(text, entry.node.end, dash);
    let end = match next_line_start(text, last_line) {
        Some(end) => end,
        // The last line of a file without a final newline: take the line ending before the entry.
        None => return Ok(Splice::delete(start.saturating_sub(1), text.len())),
    };
    Ok(Splice::delete(start, end))
}

/// The splices that turn an existing entry into what `setting` says. A value keeps its quotes; an
/// inserted key is quoted like that field in the other `entries` (see [`Quotes`]).
pub(crate) fn edit_entry(
    text: &str,
    entry: &Entry<'_>,
    entries: &[Entry<'_>],
    setting: &ImageSetting,
    eol: &str,
) -> Result<Vec<Splice>, EditError> {
    let name = &setting.name;
    // A key without `:` (`{name: app, newTag}`) is an implicit null whose span (saphyr gives it the
    // next token's) is not beside the key: nothing can be edited or inserted relative to it.
    for field in &entry.fields {
        let between = text.get(field.key.end..).unwrap_or_default();
        let empty = field.value.is_null() && field.value.scalar_value() == Some("");
        if empty && !between.trim_start_matches([' ', '\t']).starts_with(':') {
            return Err(EditError::Unsupported {
                reason: format!(
                    "line {}: the key {} of image {name:?} has no value (no `:`); write `{}: …` or \
                     remove the key",
                    field.key.line,
                    field.which.key(),
                    field.which.key()
                ),
            });
        }
    }
    let mut splices = Vec::new();
    let mut removed: Vec<Which> = Vec::new();
    let mut inserts: Vec<(Which, String)> = Vec::new();
    let mut removed_at: Vec<usize> = Vec::new();
    let quotes = Quotes::like(entries);
    for which in &Which::ALL[1..] {
        let which = *which;
        let existing = entry
            .fields
            .iter()
            .position(|f| f.which == which)
            .map(|i| (i, &entry.fields[i]));
        match (setting.update(which), existing) {
            (FieldUpdate::Keep, _) | (FieldUpdate::Remove, None) => {}
            (FieldUpdate::Remove, Some((i, field))) => {
                if field.meaning().is_none() {
                    continue; // already unset; leave the bytes alone
                }
                if field.value.anchored {
                    return Err(aliased(name, field));
                }
                removed.push(which);
                removed_at.push(i);
            }
            (FieldUpdate::Set(v), Some((_, field))) => {
                if field.meaning().as_deref() == Some(v.as_str()) && !is_broken_plain(field.value) {
                    continue;
                }
                let value = field.value;
                if value.anchored || value.tagged || matches!(value.kind, Kind::Alias { .. }) {
                    return Err(aliased(name, field));
                }
                if let Kind::Scalar {
                    style: ScalarStyle::Literal | ScalarStyle::Folded,
                    ..
                } = value.kind
                {
                    return Err(EditError::Unsupported {
                        reason: format!(
                            "line {}: {} of {name:?} is a block scalar (`|` or `>`)",
                            value.line,
                            which.key()
                        ),
                    });
                }
                let rendered = render(v, Quote::of(value));
                if value.start == value.end {
                    // `newTag:` with nothing after it: the empty value sits before the colon.
                    let colon = value.start
                        + text[value.start..]
                            .find(':')
                            .expect("a mapping value follows a colon");
                    splices.push(Splice::insert(colon + 1, format!(" {rendered}"), 0));
                } else {
                    splices.push(Splice::replace(value.start, value.end, rendered));
                }
            }
            (FieldUpdate::Set(v), None) => inserts.push((which, render(v, quotes.of(which)))),
        }
    }
    if entry.flow {
        splices.extend(delete_flow_fields(entry, removed_at));
    } else {
        for &i in &removed_at {
            splices.push(delete_block_field(text, entry, i, &removed_at));
        }
    }
    if (!splices.is_empty() || !inserts.is_empty()) && entry.node.anchored {
        return Err(EditError::Aliased {
            name: name.clone(),
            field: "the entry",
            line: entry.node.line,
        });
    }
    for (which, rendered) in inserts {
        // After the last kept field that kustomize orders before this one (`name` at least).
        let anchor = entry
            .fields
            .iter()
            .filter(|f| f.which < which && !removed.contains(&f.which))
            .max_by_key(|f| f.value.end)
            .expect("a targeted entry has a name");
        let order = which as u32;
        splices.push(if entry.flow {
            Splice::insert(
                anchor.value.end,
                format!(", {}: {rendered}", which.key()),
                order,
            )
        } else {
            let indent = " ".repeat(entry.node.col);
            insert_lines_after(
                text,
                anchor.value.end,
                &[format!("{indent}{}: {rendered}", which.key())],
                eol,
                order,
            )
        });
    }
    Ok(splices)
}

/// How new entries quote each field: like the last existing entry that has the field (so a file
/// whose tags are all `"…"` gets a `"…"` tag), plain where none has it. Plain still falls back to
/// double quotes for values YAML 1.1 would not read as strings.
#[derive(Debug, Clone, Copy)]
struct Quotes([Quote; 5]);

impl Quotes {
    fn plain() -> Self {
        Quotes([Quote::Plain; 5])
    }

    fn like(entries: &[Entry<'_>]) -> Self {
        let mut quotes = Self::plain();
        for (slot, which) in quotes.0.iter_mut().zip(Which::ALL) {
            if let Some(field) = entries.iter().rev().find_map(|e| e.field(which)) {
                *slot = Quote::of(field.value);
            }
        }
        quotes
    }

    fn of(self, which: Which) -> Quote {
        let index = Which::ALL.iter().position(|w| *w == which).unwrap_or(0);
        self.0[index]
    }
}

/// The `key: value` pairs of a new entry, in kustomize's field order.
fn new_entry_pairs(name: &str, fields: &Fields, quotes: Quotes) -> Vec<String> {
    let mut pairs = vec![format!("name: {}", render(name, quotes.of(Which::Name)))];
    for which in &Which::ALL[1..] {
        if let Some(v) = fields.get(*which) {
            pairs.push(format!("{}: {}", which.key(), render(v, quotes.of(*which))));
        }
    }
    pairs
}

/// The lines of new block entries: `dash` spaces before `-`, keys at column `key_col`.
fn block_entry_lines(
    new: &[(String, Fields)],
    dash: usize,
    key_col: usize,
    key_on_dash_line: bool,
    quotes: Quotes,
) -> Vec<String> {
    let mut lines = Vec::new();
    let key_indent = " ".repeat(key_col);
    for (name, fields) in new {
        let pairs = new_entry_pairs(name, fields, quotes);
        let dash_prefix = format!("{}-", " ".repeat(dash));
        if key_on_dash_line {
            let gap = " ".repeat(key_col.saturating_sub(dash + 1).max(1));
            lines.push(format!("{dash_prefix}{gap}{}", pairs[0]));
            lines.extend(pairs[1..].iter().map(|p| format!("{key_indent}{p}")));
        } else {
            lines.push(dash_prefix);
            lines.extend(pairs.iter().map(|p| format!("{key_indent}{p}")));
        }
    }
    lines
}

/// A new entry in flow style.
fn flow_entry(name: &str, fields: &Fields, quotes: Quotes) -> String {
    format!("{{{}}}", new_entry_pairs(name, fields, quotes).join(", "))
}

/// How far a top-level block sequence indents its `-` under its key (0 or 2, usually), taken from
/// the file's other sequences so a new `images` block looks like them.
fn sequence_indent(text: &str, view: &View<'_>) -> usize {
    let Some(Node {
        kind: Kind::Map { pairs, .. },
        ..
    }) = view.root
    else {
        return 0;
    };
    pairs
        .iter()
        .find_map(|(k, v)| match &v.kind {
            Kind::Seq { flow: false, items } => items
                .first()
                .and_then(|first| dash_col(text, first.start))
                .filter(|dash| *dash >= k.col)
                .map(|dash| dash - k.col),
            _ => None,
        })
        .unwrap_or(0)
}

/// The splices that append `new` entries to `images` (or add `images` at the end of the file).
pub(crate) fn append_entries(
    text: &str,
    view: &View<'_>,
    new: &[(String, Fields)],
    eol: &str,
) -> Result<Vec<Splice>, EditError> {
    let order = 100;
    match &view.images {
        Some(images) => append_to_images(text, view, images, new, eol),
        None => {
            let root_col = match view.root {
                None => 0,
                Some(Node {
                    kind: Kind::Map { flow: false, .. },
                    col,
                    ..
                }) => *col,
                Some(root) => {
                    return Err(EditError::Unsupported {
                        reason: format!(
                        "line {}: the top-level mapping is in flow style ({{…}}); add an images \
                             field by hand first",
                        root.line
                    ),
                    })
                }
            };
            if view.explicit_end {
                return Err(EditError::Unsupported {
                    reason: "the document ends with `...`; add an images field by hand first"
                        .into(),
                });
            }
            let dash = root_col + sequence_indent(text, view);
            let mut lines = vec![format!("{}images:", " ".repeat(root_col))];
            lines.extend(block_entry_lines(
                new,
                dash,
                dash + 2,
                true,
                Quotes::plain(),
            ));
            let mut with = String::new();
            if !text.is_empty() && !text.ends_with('\n') {
                with.push_str(eol);
            }
            for line in lines {
                with.push_str(&line);
                with.push_str(eol);
            }
            Ok(vec![Splice::insert(text.len(), with, order)])
        }
    }
}

/// Appends to an existing `images` value: a block list, a flow list, or null.
fn append_to_images(
    text: &str,
    view: &View<'_>,
    images: &Images<'_>,
    new: &[(String, Fields)],
    eol: &str,
) -> Result<Vec<Splice>, EditError> {
    let order = 100;
    let value = images.value;
    let quotes = Quotes::like(&images.entries);
    if value.tagged {
        return Err(EditError::Unsupported {
            reason: format!(
                "line {}: the images list carries an explicit tag (such as `!!seq`); remove the \
                 tag to let entries be added",
                value.line
            ),
        });
    }
    if value.anchored {
        return Err(EditError::Aliased {
            name: new[0].0.clone(),
            field: "images",
            line: value.line,
        });
    }
    match &value.kind {
        Kind::Seq { flow: true, items } => {
            let entries: Vec<String> = new.iter().map(|(n, f)| flow_entry(n, f, quotes)).collect();
            Ok(vec![match items.last() {
                Some(last) => Splice::insert(last.end, format!(", {}", entries.join(", ")), order),
                None => Splice::insert(value.start + 1, entries.join(", "), order),
            }])
        }
        Kind::Seq { flow: false, items } => {
            let last = items.last().expect("a block sequence has an item");
            let dash = dash_col(text, last.start).ok_or_else(|| EditError::Unsupported {
                reason: format!(
                    "line {}: cannot find the `-` of the last images entry",
                    last.line
                ),
            })?;
            let lines = match &last.kind {
                Kind::Map { flow: true, .. } => new
                    .iter()
                    .map(|(n, f)| format!("{}- {}", " ".repeat(dash), flow_entry(n, f, quotes)))
                    .collect(),
                Kind::Map { flow: false, .. } => {
                    block_entry_lines(new, dash, last.col, on_dash_line(text, last.start), quotes)
                }
                _ => {
                    return Err(EditError::Unsupported {
                        reason: format!(
                            "line {}: the last images entry is {}",
                            last.line,
                            last.kind_name()
                        ),
                    })
                }
            };
            // The new entry goes after the comment lines that belong to the last one.
            let after = with_comments_below(text, last.end, dash);
            Ok(vec![insert_lines_after(text, after, &lines, eol, order)])
        }
        _ if value.is_null() => {
            let mut splices = Vec::new();
            let key = images.key;
            if value.end > value.start {
                // `images: ~` or `images: null`: drop the null, keep any comment after it.
                let colon = key.end + text[key.end..].find(':').expect("a key has a colon");
                splices.push(Splice::delete(colon + 1, value.end));
            }
            let dash = key.col + sequence_indent(text, view);
            let lines = block_entry_lines(new, dash, dash + 2, true, quotes);
            splices.push(insert_lines_after(
                text,
                value.end.max(key.end),
                &lines,
                eol,
                order,
            ));
            Ok(splices)
        }
        _ => Err(EditError::NotKustomization {
            reason: format!(
                "line {}: images is {}, not a list",
                value.line,
                value.kind_name()
            ),
        }),
    }
}
