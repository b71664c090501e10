//! The edit engine: a kustomize-compatible, byte-preserving `set image`.
//!
//! [`set_images`] gives the same resulting `images` values as `kustomize edit set image` (research
//! notes docs/research/kustomize.md §1) but changes only the bytes that must change: values are replaced in place
//! with their quote style kept, keys are deleted or inserted line by line, and new entries are
//! appended in the style of the existing ones. Everything is checked twice: the input must be a
//! kustomization kustomize would read, and the output is parsed again and must mean exactly the
//! intended images with every other field unchanged.
//!
//! Deliberate deviations from kustomize (§5.1): entries are never re-sorted (sorting changes what
//! chained entries render), duplicates are an error instead of being collapsed, `apiVersion`/`kind`
//! are never injected, and nothing outside `images` is touched.
//!
//! This module never uses tokio or the network; [`set_images`] and [`images_of`] do no I/O at all.

mod arg;
mod file;
mod kustomization;
mod locate;
mod markers;
mod quick;
mod scalar;
mod splice;
mod target;
mod values;

use std::path::PathBuf;

pub use file::{find_kustomization, read_kustomization, unified_diff, write_atomic};
pub use markers::set_marked;
pub use scalar::Reader;
pub use target::{HelmKeys, Target, ValueTemplate};
pub use values::{
    set_values, values_at, KeyPath, Segment, ValueChange, ValueSetting, ValuesEdited,
};

use kustomization::{Fields, Which};

/// The names kustomize accepts for a kustomization file, in its order of preference.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// What happens to one field of an `images` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldUpdate {
    /// Leave the field as it is (`*` in the argument grammar); a new entry does not get it.
    Keep,
    /// Set the field to this value.
    Set(String),
    /// Remove the field.
    Remove,
}

/// The change to one image: which entry (by `name`) and what happens to each of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSetting {
    /// The entry's `name`, compared verbatim with the file's entries.
    pub name: String,
    /// What happens to `newName`.
    pub new_name: FieldUpdate,
    /// What happens to `newTag`.
    pub new_tag: FieldUpdate,
    /// What happens to `digest`.
    pub digest: FieldUpdate,
    /// What happens to `tagSuffix`: removed by [`ImageSetting::parse_arg`] (kustomize replaces the
    /// whole entry), kept by [`ImageSetting::deploy`].
    pub tag_suffix: FieldUpdate,
}

impl ImageSetting {
    /// Parses one argument of the `kustomize edit set image` grammar: `NAME:TAG`, `NAME@DIGEST`,
    /// `NAME:TAG@DIGEST`, `NAME=NEWNAME[:TAG][@DIGEST]`, where `*` in the new-name, tag or digest
    /// position keeps the entry's field and an empty one clears it. A field the argument does not
    /// mention is cleared, as in kustomize. The name, new name, tag and digest are validated.
    ///
    /// # Errors
    /// [`EditError::InvalidArg`] naming the argument and what is wrong with it.
    pub fn parse_arg(arg: &str) -> Result<ImageSetting, EditError> {
        arg::parse_arg(arg)
    }

    /// Deploy semantics: set the tag and/or digest of image `name`, keeping the entry's `newName`
    /// (and `tagSuffix`) unless `new_name` is given. A tag alone removes a stale digest, a digest
    /// alone removes the tag, both set both.
    ///
    /// # Errors
    /// [`EditError::InvalidSetting`] when a value is invalid, or when there is nothing to set.
    pub fn deploy(
        name: &str,
        tag: Option<&str>,
        digest: Option<&str>,
        new_name: Option<&str>,
    ) -> Result<ImageSetting, EditError> {
        let set = |v: &str| FieldUpdate::Set(v.to_string());
        let (new_tag, new_digest) = match (tag, digest) {
            (Some(t), Some(d)) => (set(t), set(d)),
            (Some(t), None) => (set(t), FieldUpdate::Remove),
            (None, Some(d)) => (FieldUpdate::Remove, set(d)),
            (None, None) if new_name.is_some() => (FieldUpdate::Keep, FieldUpdate::Keep),
            (None, None) => {
                return Err(EditError::InvalidSetting {
                    name: name.to_string(),
                    reason: "no tag, digest or new name to set".into(),
                })
            }
        };
        let setting = ImageSetting {
            name: name.to_string(),
            new_name: new_name.map_or(FieldUpdate::Keep, set),
            new_tag,
            digest: new_digest,
            tag_suffix: FieldUpdate::Keep,
        };
        match setting.problem() {
            None => Ok(setting),
            Some(reason) => Err(EditError::InvalidSetting {
                name: name.to_string(),
                reason,
            }),
        }
    }

    /// The update for one field.
    fn update(&self, which: Which) -> &FieldUpdate {
        match which {
            Which::Name => &FieldUpdate::Keep,
            Which::NewName => &self.new_name,
            Which::NewTag => &self.new_tag,
            Which::Digest => &self.digest,
            Which::TagSuffix => &self.tag_suffix,
        }
    }
}

/// The values of an `images` entry that decide the rendered image (unset fields are `None`).
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub struct ImageValues {
    /// `newName`.
    pub new_name: Option<String>,
    /// `newTag`.
    pub new_tag: Option<String>,
    /// `digest`.
    pub digest: Option<String>,
}

/// How one entry changed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImageChange {
    /// The entry's `name`.
    pub name: String,
    /// The values before; `None` when the entry was added.
    pub before: Option<ImageValues>,
    /// The values after.
    pub after: ImageValues,
}

/// The result of [`set_images`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edited {
    /// The new file text (equal to the input when nothing changed).
    pub text: String,
    /// The entries whose values changed, in the order of the settings.
    pub changes: Vec<ImageChange>,
    /// Problems kustomize will have with the result that the edit did not cause, e.g. another
    /// entry's plain `newTag: 1.10`, which kustomize cannot read as a string.
    pub warnings: Vec<String>,
    /// True when `text` differs from the input (a value can be re-quoted without changing).
    changed: bool,
}

impl Edited {
    /// The result of a values edit (the helm, yaml and manifests targets).
    pub(crate) fn from_values(old: &str, text: String, changes: Vec<ImageChange>) -> Edited {
        Edited {
            changed: text != old,
            text,
            changes,
            warnings: Vec::new(),
        }
    }

    /// The same result with `warnings`.
    pub(crate) fn with_warnings(mut self, warnings: Vec<String>) -> Edited {
        self.warnings = warnings;
        self
    }

    /// True when the text changed and has to be written.
    pub fn is_changed(&self) -> bool {
        self.changed
    }
}

/// Why an edit was refused. Nothing is written when any of these happens.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// An argument of the `set image` grammar is malformed or holds an invalid value.
    #[error("invalid image argument {arg:?}: {reason}")]
    InvalidArg {
        /// The argument as given.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// A setting built in code holds an invalid value.
    #[error("invalid image setting for {name:?}: {reason}")]
    InvalidSetting {
        /// The image name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The file is not valid YAML.
    #[error("not valid YAML: line {line} column {col}: {info}")]
    Yaml {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// The parser's message.
        info: String,
    },
    /// The file is YAML but not a kustomization as kustomize reads it.
    #[error("not a kustomization: {reason}")]
    NotKustomization {
        /// What is wrong.
        reason: String,
    },
    /// The text holds a character YAML readers disagree on (a line break to some, text to others);
    /// nothing is edited.
    #[error("line {line}: {reason}")]
    Ambiguous {
        /// 1-based line.
        line: usize,
        /// What was found and what to do.
        reason: &'static str,
    },
    /// A key path is malformed.
    #[error("invalid key path {path:?}: {reason}")]
    InvalidKeyPath {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A key path does not lead to a value in the file.
    #[error("key path {path}: {reason}")]
    KeyPath {
        /// The path.
        path: String,
        /// How far it got and why it stops.
        reason: String,
    },
    /// The file is not a single YAML mapping document.
    #[error("not a YAML values file: {reason}")]
    NotAMapping {
        /// What is wrong.
        reason: String,
    },
    /// The change cannot be made without reformatting the file.
    #[error("cannot edit without reformatting: {reason}")]
    Unsupported {
        /// The shape that cannot be edited.
        reason: String,
    },
    /// The targeted name has several entries; kustomize would silently keep only the first.
    #[error(
        "images has {count} entries named {name:?} (lines {lines}); kustomize applies them all at \
         build time but `edit set image` keeps only the first, so remove the duplicates first"
    )]
    DuplicateEntry {
        /// The image name.
        name: String,
        /// How many entries have it.
        count: usize,
        /// Their lines.
        lines: String,
    },
    /// The targeted name is also under the deprecated `imageTags`, which would override the edit.
    #[error(
        "{name:?} is also listed under imageTags, which kustomize applies after images; move it \
         to images first"
    )]
    InImageTags {
        /// The image name.
        name: String,
    },
    /// A value to change is shared through an anchor or alias (or has an explicit tag).
    #[error(
        "line {line}: {field} of image {name:?} is an anchor, alias or tagged value; changing it \
         would change other values too"
    )]
    Aliased {
        /// The image name.
        name: String,
        /// The field.
        field: &'static str,
        /// Its line.
        line: usize,
    },
    /// The edited text did not mean what was intended (a bug; nothing was written).
    #[error("the edited file would not mean the intended images: {reason}")]
    Verify {
        /// The difference.
        reason: String,
    },
    /// No kustomization file in the directory.
    #[error(
        "{}: no kustomization file (kustomization.yaml, kustomization.yml or Kustomization)",
        dir.display()
    )]
    NoKustomization {
        /// The directory searched.
        dir: PathBuf,
    },
    /// More than one kustomization file in the directory.
    #[error("{}: found several kustomization files ({found}); keep exactly one", dir.display())]
    SeveralKustomizations {
        /// The directory searched.
        dir: PathBuf,
        /// The names found.
        found: String,
    },
    /// The directory does not exist.
    #[error("{}: no such directory", path.display())]
    NoSuchDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The `--path` is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The kustomization "file" is a directory or something else.
    #[error("{}: should be a file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is not UTF-8.
    #[error("{}: not UTF-8 text", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl EditError {
    /// True when the user's input (arguments or file content) is at fault: exit code 2. False for
    /// I/O failures and for a failed self-check.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, EditError::Io { .. } | EditError::Verify { .. })
    }
}

/// The current `images` entries of a kustomization file's text, in file order (an entry without a
/// name has an empty one).
///
/// # Errors
/// When the text is not valid YAML or not a kustomization.
pub fn images_of(text: &str) -> Result<Vec<(String, ImageValues)>, EditError> {
    let doc = locate::parse(text)?;
    let view = kustomization::view(&doc)?;
    Ok(view
        .images
        .iter()
        .flat_map(|i| i.entries.iter())
        .map(|e| (e.name(), e.fields_meaning().values))
        .collect())
}

/// Applies `settings` to a kustomization file's text. Pure: no I/O.
///
/// The file is checked first (valid YAML, one document, kustomization `apiVersion`/`kind`, known
/// top-level fields); a later setting for the same name replaces an earlier one, as in kustomize.
/// The result is parsed again and must mean exactly the intended images, with every other
/// top-level field unchanged.
///
/// # Errors
/// Any [`EditError`] except `Io`; on error there is no new text.
pub fn set_images(text: &str, settings: &[ImageSetting]) -> Result<Edited, EditError> {
    set_images_parsing_with(text, settings, locate::parse)
}

/// [`set_images`] with saphyr-parser alone, without the fast path for plain block YAML: the
/// baseline of the edit benchmark. Not for other uses.
#[doc(hidden)]
pub fn set_images_saphyr_only(text: &str, settings: &[ImageSetting]) -> Result<Edited, EditError> {
    set_images_parsing_with(text, settings, locate::parse_with_saphyr)
}

/// How a text becomes a [`locate::Document`].
type Parse = for<'t> fn(&'t str) -> Result<locate::Document<'t>, EditError>;

fn set_images_parsing_with(
    text: &str,
    settings: &[ImageSetting],
    parse: Parse,
) -> Result<Edited, EditError> {
    for s in settings {
        if let Some(reason) = s.problem() {
            return Err(EditError::InvalidSetting {
                name: s.name.clone(),
                reason,
            });
        }
    }
    // A later setting for the same name replaces an earlier one, at the earlier one's position.
    let mut effective: Vec<&ImageSetting> = Vec::new();
    for s in settings {
        match effective.iter_mut().find(|e| e.name == s.name) {
            Some(slot) => *slot = s,
            None => effective.push(s),
        }
    }
    let doc = parse(text)?;
    let view = kustomization::view(&doc)?;
    let eol = splice::line_ending(text);
    let entries = view.images.as_ref().map_or(&[][..], |i| &i.entries[..]);

    let mut expected: Vec<(String, Fields)> = entries
        .iter()
        .map(|e| (e.name(), e.fields_meaning()))
        .collect();
    let mut splices = Vec::new();
    let mut changes = Vec::new();
    let mut appended: Vec<(String, Fields)> = Vec::new();
    let mut marker_warnings: Vec<String> = Vec::new();
    for setting in effective {
        if view.image_tag_names.contains(&setting.name) {
            return Err(EditError::InImageTags {
                name: setting.name.clone(),
            });
        }
        let targets: Vec<usize> = (0..entries.len())
            .filter(|&i| expected[i].0 == setting.name)
            .collect();
        match targets.as_slice() {
            [] => {
                // A new entry is written: its name must be a real image reference.
                if let Some(problem) = arg::name_problem(&setting.name) {
                    return Err(EditError::InvalidSetting {
                        name: setting.name.clone(),
                        reason: format!(
                            "{problem}; no entry has this name to match, and a new entry's name \
                             must be a valid image reference"
                        ),
                    });
                }
                let after = splice::resolved_fields(setting, None);
                changes.push(ImageChange {
                    name: setting.name.clone(),
                    before: None,
                    after: after.values.clone(),
                });
                appended.push((setting.name.clone(), after));
            }
            [i] => {
                marker_warnings.extend(removed_markers(text, &entries[*i], setting));
                let before = expected[*i].1.clone();
                let after = splice::resolved_fields(setting, Some(&before));
                splices.extend(splice::edit_entry(
                    text,
                    &entries[*i],
                    entries,
                    setting,
                    eol,
                )?);
                if after != before {
                    changes.push(ImageChange {
                        name: setting.name.clone(),
                        before: Some(before.values),
                        after: after.values.clone(),
                    });
                }
                expected[*i].1 = after;
            }
            several => {
                return Err(EditError::DuplicateEntry {
                    name: setting.name.clone(),
                    count: several.len(),
                    lines: several
                        .iter()
                        .map(|&i| entries[i].node.line.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    if !appended.is_empty() {
        splices.extend(splice::append_entries(text, &view, &appended, eol)?);
    }
    let new_text = keep_missing_final_newline(text, splice::apply(text, splices)?);
    expected.extend(appended);
    let mut warnings = verify(text, &view, &new_text, &expected, parse)?;
    warnings.extend(marker_warnings);
    Ok(Edited {
        changed: new_text != text,
        text: new_text,
        changes,
        warnings,
    })
}

/// Warnings for Flux setter markers (`# {"$imagepolicy": "ns:policy:digest"}`) on the lines of fields
/// the setting removes: kustomize's rules remove the field, and with it the marker, so Flux stops
/// managing that field (docs/research/realworld-kustomizations.md C3). `*` keeps a field.
fn removed_markers(
    text: &str,
    entry: &kustomization::Entry<'_>,
    setting: &ImageSetting,
) -> Vec<String> {
    entry
        .fields
        .iter()
        .filter(|f| *setting.update(f.which) == FieldUpdate::Remove && f.meaning().is_some())
        .filter_map(|f| {
            let rest = &text[f.value.end.min(text.len())..];
            let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
            let comment = line.trim_start().strip_prefix('#')?.trim();
            comment.contains("\"$imagepolicy\"").then(|| {
                format!(
                    "line {}: removing {} of image {:?} removes its Flux marker too ({comment}); \
                     keep the field with `*` (e.g. `{}=*:TAG@*`) if Flux should go on managing it",
                    f.key.line,
                    f.which.key(),
                    setting.name,
                    setting.name
                )
            })
        })
        .collect()
}

/// A file without a final newline keeps it missing, whatever was appended or replaced at its end
/// (docs/research/realworld-kustomizations.md C1, C2).
fn keep_missing_final_newline(old: &str, mut new: String) -> String {
    if !old.is_empty() && !old.ends_with('\n') && new.ends_with('\n') {
        new.pop();
        if new.ends_with('\r') {
            new.pop();
        }
    }
    new
}

/// Removes the `images` entry named `name` (block lists only). Nothing changes when there is none.
/// The result is verified like [`set_images`]' (the other entries and fields mean the same). The
/// change reports the removed values as `before` and empty values as `after`: an entry without
/// values and no entry render the same.
///
/// # Errors
/// Like [`set_images`]; [`EditError::Unsupported`] for an entry of a flow list.
pub fn remove_image(text: &str, name: &str) -> Result<Edited, EditError> {
    let doc = locate::parse(text)?;
    let view = kustomization::view(&doc)?;
    let nothing = || Edited {
        text: text.to_owned(),
        changes: Vec::new(),
        warnings: Vec::new(),
        changed: false,
    };
    let Some(images) = view.images.as_ref() else {
        return Ok(nothing());
    };
    let mut expected: Vec<(String, Fields)> = images
        .entries
        .iter()
        .map(|e| (e.name(), e.fields_meaning()))
        .collect();
    let targets: Vec<usize> = (0..expected.len())
        .filter(|&i| expected[i].0 == name)
        .collect();
    let i = match targets.as_slice() {
        [] => return Ok(nothing()),
        [i] => *i,
        several => {
            return Err(EditError::DuplicateEntry {
                name: name.to_owned(),
                count: several.len(),
                lines: several
                    .iter()
                    .map(|&i| images.entries[i].node.line.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    };
    let deletion = splice::remove_entry(text, images, &images.entries[i])?;
    let new_text = splice::apply(text, vec![deletion])?;
    let (_, before) = expected.remove(i);
    let warnings = verify(text, &view, &new_text, &expected, locate::parse)?;
    Ok(Edited {
        changed: new_text != text,
        text: new_text,
        changes: vec![ImageChange {
            name: name.to_owned(),
            before: Some(before.values),
            after: ImageValues::default(),
        }],
        warnings,
    })
}

/// Parses the new text again and checks it means `expected` images and the same other fields.
/// Returns warnings about values kustomize cannot read that were there before the edit.
fn verify(
    old_text: &str,
    old: &kustomization::View<'_>,
    new_text: &str,
    expected: &[(String, Fields)],
    parse: Parse,
) -> Result<Vec<String>, EditError> {
    let fail = |reason: String| EditError::Verify { reason };
    let warn = |broken: Vec<(String, Which, String)>| {
        broken
            .into_iter()
            .map(|(name, which, value)| {
                format!(
                    "{} of image {name:?} is the plain {value}, which kustomize reads as a number or \
                     boolean and rejects; write it \"{value}\"",
                    which.key()
                )
            })
            .collect::<Vec<_>>()
    };
    if new_text == old_text {
        return Ok(warn(broken_plain_values(old)));
    }
    let doc = parse(new_text).map_err(|e| fail(format!("the result does not parse: {e}")))?;
    let new = kustomization::view(&doc)
        .map_err(|e| fail(format!("the result is not a kustomization: {e}")))?;
    let got: Vec<(String, Fields)> = new
        .images
        .iter()
        .flat_map(|i| i.entries.iter())
        .map(|e| (e.name(), e.fields_meaning()))
        .collect();
    if got != expected {
        return Err(fail(format!(
            "images would be {got:?} instead of {expected:?}"
        )));
    }
    if kustomization::other_fields_meaning(&new) != kustomization::other_fields_meaning(old) {
        return Err(fail("a field other than images would change".into()));
    }
    // A value kustomize cannot read as a string (`newTag: 1.10`) may only be one that was already there.
    let broken_before = broken_plain_values(old);
    let broken_after = broken_plain_values(&new);
    if let Some((name, which, value)) = broken_after.iter().find(|b| !broken_before.contains(b)) {
        return Err(fail(format!(
            "{} of {name:?} would be the plain {value:?}, which kustomize does not read as a string",
            which.key()
        )));
    }
    Ok(warn(broken_after))
}

/// Every plain `images` value that YAML 1.1 does not read as a string: (entry name, field, value).
fn broken_plain_values(view: &kustomization::View<'_>) -> Vec<(String, Which, String)> {
    let mut out = Vec::new();
    for entry in view.images.iter().flat_map(|i| i.entries.iter()) {
        for field in &entry.fields {
            if let locate::Kind::Scalar {
                value,
                style: saphyr_parser::ScalarStyle::Plain,
            } = &field.value.kind
            {
                if !field.value.is_null() && !scalar::is_plain_safe(value) {
                    out.push((entry.name(), field.which, value.to_string()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn file(entry: &str) -> String {
        format!("resources:\n- ../base\nimages:\n{entry}")
    }

    #[test]
    fn deploy_a_tag_keeps_new_name_and_drops_a_stale_digest() {
        let text = file(&format!(
            "- name: web\n  newName: reg/web\n  newTag: v1\n  digest: {D}\n  tagSuffix: -x\n"
        ));
        let setting = ImageSetting::deploy("web", Some("v2"), None, None).unwrap();
        let edited = set_images(&text, &[setting]).unwrap();
        assert_eq!(
            edited.text,
            file("- name: web\n  newName: reg/web\n  newTag: v2\n  tagSuffix: -x\n")
        );
        assert_eq!(
            edited.changes,
            vec![ImageChange {
                name: "web".into(),
                before: Some(ImageValues {
                    new_name: Some("reg/web".into()),
                    new_tag: Some("v1".into()),
                    digest: Some(D.into()),
                }),
                after: ImageValues {
                    new_name: Some("reg/web".into()),
                    new_tag: Some("v2".into()),
                    digest: None,
                },
            }]
        );
    }

    #[test]
    fn deploy_a_digest_drops_the_tag_and_both_set_both() {
        let text = file("- name: web\n  newName: reg/web\n  newTag: v1\n");
        let digest_only = ImageSetting::deploy("web", None, Some(D), None).unwrap();
        let edited = set_images(&text, &[digest_only]).unwrap();
        assert_eq!(
            edited.text,
            file(&format!("- name: web\n  newName: reg/web\n  digest: {D}\n"))
        );
        let both = ImageSetting::deploy("web", Some("1.10"), Some(D), Some("reg/web2")).unwrap();
        let edited = set_images(&text, &[both]).unwrap();
        assert_eq!(
            edited.text,
            file(&format!(
                "- name: web\n  newName: reg/web2\n  newTag: \"1.10\"\n  digest: {D}\n"
            ))
        );
    }

    #[test]
    fn deploy_a_new_image_appends_an_entry() {
        let text = file("- name: web\n  newTag: v1\n");
        let setting = ImageSetting::deploy("api", Some("v3"), None, None).unwrap();
        let edited = set_images(&text, &[setting]).unwrap();
        assert_eq!(
            edited.text,
            file("- name: web\n  newTag: v1\n- name: api\n  newTag: v3\n")
        );
        assert_eq!(edited.changes[0].before, None);
    }

    #[test]
    fn deploy_validates_its_values() {
        for (tag, digest, new_name) in [
            (Some("bad tag"), None, None),
            (None, Some("sha256:abc"), None),
            (Some("v1"), None, Some("Upper/Case")),
            (None, None, None),
        ] {
            let err = ImageSetting::deploy("web", tag, digest, new_name).unwrap_err();
            assert!(err.is_invalid_input(), "{err}");
            assert!(
                err.to_string()
                    .starts_with("invalid image setting for \"web\""),
                "{err}"
            );
        }
        // A name is a match key: any name kustomize matches with is accepted; a new entry's
        // name must be a valid reference (docs/research/realworld-kustomizations.md D1).
        let placeholder =
            ImageSetting::deploy("IMAGE_PLACEHOLDER", Some("v1"), None, None).unwrap();
        let edited = set_images(
            "images:\n- name: IMAGE_PLACEHOLDER\n  newName: registry/app\n  newTag: v0\n",
            std::slice::from_ref(&placeholder),
        )
        .unwrap();
        assert_eq!(
            edited.text,
            "images:\n- name: IMAGE_PLACEHOLDER\n  newName: registry/app\n  newTag: v1\n"
        );
        let err = set_images("images: []\n", &[placeholder]).unwrap_err();
        assert!(err.is_invalid_input(), "{err}");
        assert!(
            err.to_string()
                .contains("no entry has this name to match, and a new entry's name must be a valid image reference"),
            "{err}"
        );
        assert!(ImageSetting::deploy("g++", Some("v1"), None, None).is_err());
    }

    #[test]
    fn removing_a_field_with_a_flux_marker_warns() {
        let text = "images:\n- name: app # {\"$imagepolicy\": \"flux:app:name\"}\n  newTag: v1 # {\"$imagepolicy\": \"flux:app:tag\"}\n  digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa # {\"$imagepolicy\": \"flux:app:digest\"}\n";
        let edited = set_images(text, &[ImageSetting::parse_arg("app:v2").unwrap()]).unwrap();
        assert_eq!(
            edited.text,
            "images:\n- name: app # {\"$imagepolicy\": \"flux:app:name\"}\n  newTag: v2 # {\"$imagepolicy\": \"flux:app:tag\"}\n"
        );
        assert_eq!(edited.warnings.len(), 1, "{:?}", edited.warnings);
        assert!(
            edited.warnings[0].starts_with(
                "line 4: removing digest of image \"app\" removes its Flux marker too ({\"$imagepolicy\": \"flux:app:digest\"})"
            ),
            "{:?}",
            edited.warnings
        );
        // `*` keeps the digest, and no warning.
        let kept = set_images(text, &[ImageSetting::parse_arg("app=*:v2@*").unwrap()]).unwrap();
        assert!(kept.warnings.is_empty(), "{:?}", kept.warnings);
        assert!(kept.text.contains("flux:app:digest"));
    }

    #[test]
    fn a_setting_built_by_hand_is_validated_too() {
        let setting = ImageSetting {
            name: "web".into(),
            new_name: FieldUpdate::Keep,
            new_tag: FieldUpdate::Set("v1\nimages: []".into()),
            digest: FieldUpdate::Keep,
            tag_suffix: FieldUpdate::Keep,
        };
        let err = set_images("images: []\n", &[setting]).unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
    }

    #[test]
    fn values_kustomize_cannot_read_are_reported() {
        let text = file("- name: web\n  newTag: 1.10\n- name: api\n  newTag: v1\n");
        let setting = ImageSetting::deploy("api", Some("v2"), None, None).unwrap();
        let edited = set_images(&text, &[setting]).unwrap();
        assert_eq!(
            edited.warnings,
            vec![
                "newTag of image \"web\" is the plain 1.10, which kustomize reads as a number or \
                 boolean and rejects; write it \"1.10\""
            ]
        );
        let repair = ImageSetting::deploy("web", Some("1.10"), None, None).unwrap();
        let edited = set_images(&text, &[repair]).unwrap();
        assert!(edited.warnings.is_empty(), "{:?}", edited.warnings);
        assert!(edited.text.contains("newTag: \"1.10\""));
        assert!(edited.is_changed() && edited.changes.is_empty());
    }

    #[test]
    fn nothing_to_change_is_not_a_change() {
        let text = file("- name: web\n  newTag: \"v1\" # pinned\n");
        let setting = ImageSetting::deploy("web", Some("v1"), None, None).unwrap();
        let edited = set_images(&text, &[setting]).unwrap();
        assert!(!edited.is_changed());
        assert!(edited.changes.is_empty());
        assert_eq!(edited.text, text);
    }

    #[test]
    fn images_of_reads_every_entry_in_file_order() {
        let text = file(&format!(
            "- name: b\n  newTag: ~\n- {{name: a, newName: x, digest: '{D}'}}\n"
        ));
        assert_eq!(
            images_of(&text).unwrap(),
            vec![
                ("b".to_string(), ImageValues::default()),
                (
                    "a".to_string(),
                    ImageValues {
                        new_name: Some("x".into()),
                        new_tag: None,
                        digest: Some(D.into()),
                    }
                ),
            ]
        );
    }

    #[test]
    fn io_errors_and_failed_self_checks_are_not_invalid_input() {
        let io = EditError::Io {
            action: "read",
            path: "k.yaml".into(),
            source: std::io::Error::other("disk on fire"),
        };
        assert!(!io.is_invalid_input());
        assert_eq!(io.to_string(), "cannot read k.yaml");
        assert!(!EditError::Verify { reason: "x".into() }.is_invalid_input());
        assert!(EditError::NotKustomization { reason: "x".into() }.is_invalid_input());
    }
}
