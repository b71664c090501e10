//! The pull-request options and their lowering into [`crate::pull_request::Config`].

use std::time::Duration;

use clap::Args;

use super::inputs::{given, parse_bool, parse_duration, split_list};
use crate::forge::gitea::MergeStyle;
use crate::pull_request::{check_template, Config, ForgeKind, MergePolicy};
use crate::runner::RunnerEnv;

/// How the change reaches the branch.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Pull request")]
pub struct PullRequestArgs {
    /// `push` (commit on `branch`) or `pull_request` (commit on a branch of its own and open a pull
    /// request into `branch`, for protected branches) [default: push].
    #[arg(long, env = "INPUT_MODE", value_name = "push|pull_request")]
    pub mode: Option<String>,
    /// Pull-request mode: the forge's API, `gitea` (Gitea, Forgejo), `github` (GitHub, GitHub
    /// Enterprise Server; the branch is written over git) or `auto` (`github` for github.com and in
    /// GitHub's runners) [default: auto].
    #[arg(long, env = "INPUT_FORGE", value_name = "auto|gitea|github")]
    pub forge: Option<String>,
    /// Pull-request mode, GitHub: the REST API root [default: $GITHUB_API_URL in GitHub's runners;
    /// https://api.github.com for github.com; else {server_url}/api/v3].
    #[arg(long, env = "INPUT_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// Pull-request mode: `none` (open it and stop), `auto` (the forge merges it when the required
    /// checks succeed; wait for that) or `now` (merge it at once; fail, saying why, when the forge
    /// does not allow it yet) [default: auto].
    #[arg(long, env = "INPUT_MERGE", value_name = "none|auto|now")]
    pub merge: Option<String>,
    /// Pull-request mode: `merge`, `squash`, `rebase`, `rebase-merge` or `fast-forward-only`
    /// [default: merge].
    #[arg(long, env = "INPUT_MERGE_STYLE", value_name = "STYLE")]
    pub merge_style: Option<String>,
    /// Pull-request mode: time allowed for the merge [default: the overall timeout].
    #[arg(long, env = "INPUT_MERGE_TIMEOUT", value_name = "DURATION")]
    pub merge_timeout: Option<String>,
    /// Pull-request mode: how often the wait for the merge looks [default: 5s].
    #[arg(long, env = "INPUT_MERGE_POLL_INTERVAL", value_name = "DURATION")]
    pub merge_poll_interval: Option<String>,
    /// Pull-request mode: branch name template; the commit message's placeholders plus
    /// {image_slug} {new_slug} {key} {base} [default: gitops-deploy/{image_slug}-{new_slug}-{key}].
    #[arg(long, env = "INPUT_PR_BRANCH", value_name = "TEMPLATE")]
    pub pr_branch: Option<String>,
    /// Pull-request mode: title template [default: deploy {image} {new}].
    #[arg(long, env = "INPUT_PR_TITLE", value_name = "TEMPLATE")]
    pub pr_title: Option<String>,
    /// Pull-request mode: body template; {changes} is the old → new table [default: the image, the
    /// table, the source commit and the run].
    #[arg(long, env = "INPUT_PR_BODY", value_name = "TEMPLATE")]
    pub pr_body: Option<String>,
    /// Pull-request mode: label names (they must exist), newline- or comma-separated.
    #[arg(long, env = "INPUT_PR_LABELS", value_name = "NAMES")]
    pub pr_labels: Vec<String>,
    /// Pull-request mode: assignees (logins), newline- or comma-separated.
    #[arg(long, env = "INPUT_PR_ASSIGNEES", value_name = "LOGINS")]
    pub pr_assignees: Vec<String>,
    /// Pull-request mode: requested reviewers (logins), newline- or comma-separated.
    #[arg(long, env = "INPUT_PR_REVIEWERS", value_name = "LOGINS")]
    pub pr_reviewers: Vec<String>,
    /// Pull-request mode: close this tool's older open pull requests for the same image and paths,
    /// linking the new one. Accepts true/false [default: false].
    #[arg(long, env = "INPUT_SUPERSEDE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub supersede: Option<String>,
}

/// The pull-request config (`None` in push mode), collecting every problem.
///
/// # Errors
/// One message per problem, each naming its input.
pub fn config(
    args: &PullRequestArgs,
    overall: Duration,
    server_url: Option<&url::Url>,
    env: &RunnerEnv,
) -> Result<Option<Config>, Vec<String>> {
    let mut problems = Vec::new();
    // A runner passes every declared input with action.yml's default: only a value other than
    // the default says the user meant a pull request.
    let set_to_other = |v: &Option<String>, default: &str| {
        given(v).is_some_and(|x| !x.eq_ignore_ascii_case(default))
    };
    let stray: Vec<&str> = [
        ("merge", set_to_other(&args.merge, "auto")),
        ("merge_style", set_to_other(&args.merge_style, "merge")),
        ("forge", set_to_other(&args.forge, "auto")),
        ("supersede", set_to_other(&args.supersede, "false")),
        (
            "merge_poll_interval",
            set_to_other(&args.merge_poll_interval, "5s"),
        ),
        ("merge_timeout", given(&args.merge_timeout).is_some()),
        ("api_url", given(&args.api_url).is_some()),
        ("pr_branch", given(&args.pr_branch).is_some()),
        ("pr_title", given(&args.pr_title).is_some()),
        ("pr_body", given(&args.pr_body).is_some()),
        ("pr_labels", !split_list(&args.pr_labels).is_empty()),
        ("pr_assignees", !split_list(&args.pr_assignees).is_empty()),
        ("pr_reviewers", !split_list(&args.pr_reviewers).is_empty()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let pr_inputs_given = !stray.is_empty();
    match given(&args.mode) {
        None | Some("push") => {
            if pr_inputs_given {
                problems.push(format!(
                    "mode: pull-request inputs ({}) are given but mode is `push`; set mode: \
                     pull_request",
                    stray.join(", ")
                ));
            }
            return if problems.is_empty() {
                Ok(None)
            } else {
                Err(problems)
            };
        }
        Some("pull_request" | "pull-request" | "pr") => {}
        Some(other) => {
            return Err(vec![format!(
                "mode: {other:?} is not one of `push`, `pull_request`"
            )])
        }
    }
    let mut c = Config {
        timeout: overall,
        ..Config::default()
    };
    let on_github = server_url.is_some_and(|u| u.host_str() == Some("github.com"));
    // In GitHub's runners the forge is GitHub only for a repository on the runner's own server.
    let runner_host = env
        .server_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    let same_server = server_url.is_some_and(|u| u.host_str() == runner_host.as_deref());
    let github = match given(&args.forge) {
        None | Some("auto") => on_github || (env.github_api_url.is_some() && same_server),
        Some("gitea" | "forgejo") => false,
        Some("github") => true,
        Some(other) => {
            problems.push(format!(
                "forge: {other:?} is not one of `auto`, `gitea`, `github`"
            ));
            false
        }
    };
    if github {
        let api_url = given(&args.api_url)
            .map(str::to_owned)
            .or_else(|| env.github_api_url.clone())
            .or_else(|| on_github.then(|| "https://api.github.com".to_owned()))
            .or_else(|| server_url.map(|u| format!("{}/api/v3", u.as_str().trim_end_matches('/'))));
        match api_url {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                c.forge = ForgeKind::Github { api_url: u }
            }
            Some(u) => problems.push(format!("api_url: {u:?} is not an http(s) URL")),
            None => problems.push("api_url: required for forge: github".to_owned()),
        }
    }
    match given(&args.merge) {
        None | Some("auto") => c.merge = MergePolicy::Auto,
        Some("none") => c.merge = MergePolicy::None,
        Some("now") => c.merge = MergePolicy::Now,
        Some(other) => problems.push(format!(
            "merge: {other:?} is not one of `none`, `auto`, `now`"
        )),
    }
    match given(&args.merge_style) {
        None | Some("merge") => c.style = MergeStyle::Merge,
        Some("squash") => c.style = MergeStyle::Squash,
        Some("rebase") => c.style = MergeStyle::Rebase,
        Some("rebase-merge") => c.style = MergeStyle::RebaseMerge,
        Some("fast-forward-only") => c.style = MergeStyle::FastForwardOnly,
        Some(other) => problems.push(format!(
            "merge_style: {other:?} is not one of `merge`, `squash`, `rebase`, `rebase-merge`, \
             `fast-forward-only`"
        )),
    }
    if github && crate::forge::github::github_method(c.style).is_none() {
        problems.push(format!(
            "merge_style: GitHub has no `{}` merge (use merge, squash or rebase)",
            c.style.as_str()
        ));
    }
    if let Some(t) = given(&args.merge_timeout) {
        match parse_duration("merge_timeout", t) {
            Ok(d) => c.timeout = d.min(overall),
            Err(e) => problems.push(e),
        }
    }
    if let Some(t) = given(&args.merge_poll_interval) {
        match parse_duration("merge_poll_interval", t) {
            Ok(d) if !d.is_zero() => c.poll_interval = d,
            Ok(_) => problems.push("merge_poll_interval: must be more than 0".to_owned()),
            Err(e) => problems.push(e),
        }
    }
    for (input, value, target) in [
        ("pr_branch", &args.pr_branch, &mut c.branch_template),
        ("pr_title", &args.pr_title, &mut c.title_template),
        ("pr_body", &args.pr_body, &mut c.body_template),
    ] {
        if let Some(v) = given(value) {
            *target = v.to_owned();
        }
        if let Err(why) = check_template(target) {
            problems.push(format!("{input}: {why}"));
        }
    }
    if c.branch_template
        .contains(['\n', ' ', '~', '^', ':', '?', '*', '[', '\\'])
        || c.branch_template.contains("..")
    {
        problems.push(format!(
            "pr_branch: {:?} cannot be a git branch name (no spaces, `~ ^ : ? * [ \\`, `..` or line breaks)",
            c.branch_template
        ));
    }
    c.labels = split_list(&args.pr_labels);
    c.assignees = split_list(&args.pr_assignees);
    c.reviewers = split_list(&args.pr_reviewers);
    if let Some(v) = given(&args.supersede) {
        match parse_bool("supersede", v) {
            Ok(b) => c.supersede = b,
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(Some(c))
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> PullRequestArgs {
        let mut a = PullRequestArgs::default();
        for (k, v) in pairs {
            let owned = (*v).to_owned();
            let v = Some(owned.clone());
            match *k {
                "mode" => a.mode = v,
                "merge" => a.merge = v,
                "merge_style" => a.merge_style = v,
                "merge_timeout" => a.merge_timeout = v,
                "pr_branch" => a.pr_branch = v,
                "pr_title" => a.pr_title = v,
                "pr_labels" => a.pr_labels = vec![owned],
                "supersede" => a.supersede = v,
                _ => unreachable!("{k}"),
            }
        }
        a
    }

    #[test]
    fn the_forge_is_github_on_github_and_in_its_runners() {
        let overall = Duration::from_secs(600);
        let pr = PullRequestArgs {
            mode: Some("pull_request".into()),
            ..PullRequestArgs::default()
        };
        let url = |u: &str| url::Url::parse(u).unwrap();
        let forge = |server: &str, env: &RunnerEnv, a: &PullRequestArgs| {
            config(a, overall, Some(&url(server)), env).map(|c| c.unwrap().forge)
        };
        let none = RunnerEnv::default();
        assert_eq!(
            forge("https://gitea.example.com", &none, &pr),
            Ok(ForgeKind::Gitea)
        );
        assert_eq!(
            forge("https://github.com", &none, &pr),
            Ok(ForgeKind::Github {
                api_url: "https://api.github.com".into()
            })
        );
        let ghes = RunnerEnv {
            github_api_url: Some("https://ghe.example.com/api/v3".into()),
            server_url: Some("https://ghe.example.com".into()),
            ..RunnerEnv::default()
        };
        // A GitHub runner deploying to a Gitea elsewhere: Gitea's API.
        assert_eq!(
            forge("https://gitea.example.com", &ghes, &pr),
            Ok(ForgeKind::Gitea)
        );
        assert_eq!(
            forge("https://ghe.example.com", &ghes, &pr),
            Ok(ForgeKind::Github {
                api_url: "https://ghe.example.com/api/v3".into()
            })
        );
        let explicit = PullRequestArgs {
            forge: Some("github".into()),
            ..pr.clone()
        };
        assert_eq!(
            forge("https://git.example.com/", &none, &explicit),
            Ok(ForgeKind::Github {
                api_url: "https://git.example.com/api/v3".into()
            })
        );
        let ff = PullRequestArgs {
            merge_style: Some("fast-forward-only".into()),
            ..explicit
        };
        let e = forge("https://github.com", &none, &ff).unwrap_err();
        assert!(
            e[0].contains("GitHub has no `fast-forward-only` merge"),
            "{e:?}"
        );
    }

    #[test]
    fn push_mode_is_the_default_and_refuses_pull_request_inputs() {
        let overall = Duration::from_secs(600);
        assert!(config(&args(&[]), overall, None, &RunnerEnv::default())
            .unwrap()
            .is_none());
        assert!(
            config(&args(&[("mode", "")]), overall, None, &RunnerEnv::default())
                .unwrap()
                .is_none()
        );
        let e = config(
            &args(&[("merge", "now")]),
            overall,
            None,
            &RunnerEnv::default(),
        )
        .unwrap_err();
        assert!(e[0].contains("set mode: pull_request"), "{e:?}");
    }

    #[test]
    fn pull_request_inputs_are_typed_and_every_problem_named() {
        let overall = Duration::from_secs(600);
        let c = config(
            &args(&[
                ("mode", "pull_request"),
                ("merge", "now"),
                ("merge_style", "squash"),
                ("merge_timeout", "2m"),
                ("pr_labels", "deploy, prod"),
                ("supersede", "yes"),
            ]),
            overall,
            None,
            &RunnerEnv::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.merge, c.style, c.timeout, c.supersede),
            (
                MergePolicy::Now,
                MergeStyle::Squash,
                Duration::from_secs(120),
                true
            )
        );
        assert_eq!(c.labels, ["deploy", "prod"]);
        let defaults = config(
            &args(&[("mode", "pull_request")]),
            overall,
            None,
            &RunnerEnv::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (defaults.merge, defaults.style, defaults.timeout),
            (MergePolicy::Auto, MergeStyle::Merge, overall)
        );
        let e = config(
            &args(&[
                ("mode", "pull_request"),
                ("merge", "later"),
                ("merge_style", "octopus"),
                ("pr_branch", "deploy/{nope}"),
                ("pr_title", "x {"),
                ("supersede", "maybe"),
            ]),
            overall,
            None,
            &RunnerEnv::default(),
        )
        .unwrap_err();
        let all = e.join("\n");
        for needle in [
            "merge: \"later\"",
            "merge_style: \"octopus\"",
            "pr_branch: unknown placeholder {nope}",
            "pr_title: unclosed",
            "supersede: \"maybe\"",
        ] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
        assert!(config(
            &args(&[("mode", "fork")]),
            overall,
            None,
            &RunnerEnv::default()
        )
        .unwrap_err()[0]
            .contains("mode:"));
        let e = config(
            &args(&[("mode", "pull_request"), ("pr_branch", "a b")]),
            overall,
            None,
            &RunnerEnv::default(),
        )
        .unwrap_err();
        assert!(e[0].contains("cannot be a git branch name"), "{e:?}");
    }
}
