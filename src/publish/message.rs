//! The commit message: the template and its placeholders, the `Deploy-Id` trailer, and the markers
//! that keep the commit from starting CI.

use super::*;

/// The default commit message template; see [`PLACEHOLDERS`].
pub const DEFAULT_MESSAGE: &str = "deploy {image} {new} to {paths}\n\n{image}: {old} -> {new}\n\
source: {source_repo}@{source_sha}\nrun: {run_url}\n\n[skip ci]";
/// The trailer that identifies a run's commit; it is appended to every message.
pub const DEPLOY_ID_TRAILER: &str = "Deploy-Id";
/// Placeholders of the commit message template, with what each stands for. `{{` and `}}` are literal
/// braces. `{source_repo}`, `{source_sha}` and `{run_url}` are unavailable outside a runner: a line whose
/// placeholders are all unavailable is left out.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("image", "the image name (the `image` input)"),
    (
        "old",
        "the previous values, e.g. `1.0.0` (`none` when the entry was missing)",
    ),
    (
        "new",
        "the new value, e.g. `1.2.3`, `1.2.3@sha256:…` or `other/name:1.2.3`",
    ),
    ("paths", "the kustomization directories, comma-separated"),
    (
        "source_repo",
        "the repository that ran the pipeline (`$GITHUB_REPOSITORY`)",
    ),
    (
        "source_sha",
        "the commit that ran the pipeline (`$GITHUB_SHA`)",
    ),
    (
        "run_url",
        "the pipeline run (`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`)",
    ),
];

/// Checks a template's placeholders.
pub fn check_template(template: &str) -> Result<(), String> {
    render(template, |name| {
        PLACEHOLDERS
            .iter()
            .any(|(n, _)| *n == name)
            .then(|| Some(String::new()))
    })
    .map(drop)
}

/// Renders a template line by line. `value(name)` is `None` for an unknown placeholder and `Some(None)`
/// for one whose value is unavailable (`{run_url}` outside a runner); a line whose placeholders are all
/// unavailable is left out, so the default message carries no `unknown` filler.
pub(super) fn render(
    template: &str,
    value: impl Fn(&str) -> Option<Option<String>>,
) -> Result<String, String> {
    render_with(template, PLACEHOLDERS, value)
}

/// [`render`] for a template whose placeholders are `known` (named in the error for an unknown one).
pub(crate) fn render_with(
    template: &str,
    known: &[(&str, &str)],
    value: impl Fn(&str) -> Option<Option<String>>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    for line in template.split_inclusive('\n') {
        let (mut used, mut missing) = (0, 0);
        let mut rendered = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(i) = rest.find(['{', '}']) {
            rendered.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(t) = tail.strip_prefix("{{") {
                rendered.push('{');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("}}") {
                rendered.push('}');
                rest = t;
            } else if let Some(t) = tail.strip_prefix('{') {
                let end = t
                    .find('}')
                    .ok_or("unclosed `{` (write `{{` for a literal brace)")?;
                let name = &t[..end];
                let v = value(name).ok_or_else(|| {
                    let known: Vec<String> =
                        known.iter().map(|(n, _)| format!("{{{n}}}")).collect();
                    format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        known.join(" ")
                    )
                })?;
                used += 1;
                match v {
                    Some(v) => rendered.push_str(&v),
                    None => missing += 1,
                }
                rest = &t[end + 1..];
            } else {
                return Err("unmatched `}` (write `}}` for a literal brace)".to_owned());
            }
        }
        rendered.push_str(rest);
        if used == 0 || missing < used {
            out.push_str(&rendered);
        }
    }
    Ok(out)
}

/// Pure: renders the commit message and appends the `Deploy-Id` trailer.
pub(super) fn message(config: &Config, applied: &Applied, deploy_id: &str) -> String {
    let mut old: Vec<String> = Vec::new();
    for f in &applied.files {
        for i in &f.images {
            let v = i.previous.clone().unwrap_or_else(|| "none".to_owned());
            if !old.contains(&v) {
                old.push(v);
            }
        }
    }
    let paths: BTreeSet<&str> = config.paths.iter().map(String::as_str).collect();
    let body = render(&config.message_template, |name| {
        Some(match name {
            "image" => Some(config.image.clone()),
            "old" => Some(if old.is_empty() {
                "none".to_owned()
            } else {
                old.join(", ")
            }),
            "new" => Some(config.change.shown().to_owned()),
            "paths" => Some(paths.iter().copied().collect::<Vec<_>>().join(", ")),
            "source_repo" => config.source_repo.clone(),
            "source_sha" => config.source_sha.clone(),
            "run_url" => config.run_url.clone(),
            _ => return None,
        })
    })
    .expect("template checked by cli::publish::config");
    // On a pull request's branch the commit must start the checks the merge waits for (Gitea and
    // GitHub skip `pull_request` runs whose head commit carries a skip marker): no marker there; the
    // merge commit carries it instead (see the pull-request mode).
    if config.new_branch.is_some() {
        let body = if config.message_template == DEFAULT_MESSAGE {
            body.replace("\n\n[skip ci]", "")
        } else {
            body
        };
        return format!("{}\n\n{DEPLOY_ID_TRAILER}: {deploy_id}\n", body.trim_end());
    }
    // A custom template must not make the deploy trigger its own workflow again (docs/research/field-gitea.md §9):
    // without one of the skip markers runners honour, `[skip ci]` is added.
    let skip = SKIP_MARKERS
        .iter()
        .any(|m| body.to_ascii_lowercase().contains(m));
    let body = body.trim_end();
    if skip {
        format!("{body}\n\n{DEPLOY_ID_TRAILER}: {deploy_id}\n")
    } else {
        format!("{body}\n\n[skip ci]\n\n{DEPLOY_ID_TRAILER}: {deploy_id}\n")
    }
}

/// Commit-message markers that make Gitea, Forgejo and GitHub skip the push's workflows (Gitea
/// `services/actions/notifier_helper.go` `SkipWorkflowStrings`; GitHub's documented list).
pub(super) const SKIP_MARKERS: [&str; 5] = [
    "[skip ci]",
    "[ci skip]",
    "[no ci]",
    "[skip actions]",
    "[actions skip]",
];

/// The new value as shown to people.
pub fn describe_new(new_name: Option<&str>, tag: Option<&str>, digest: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(n) = new_name {
        s.push_str(n);
    }
    if let Some(t) = tag {
        if !s.is_empty() {
            s.push(':');
        }
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d);
    }
    s
}
