//! Lowering the publish options into the publish step's typed [`Config`]: every problem reported at
//! once, before any network or disk access.

use std::time::Duration;

use url::Url;

use super::run::PublishArgs;
use crate::edit::{HelmKeys, ImageSetting, KeyPath, Target, ValueTemplate};
use crate::publish::{
    check_template, describe_new, Change, Config, Identity, RunnerEnv, Transport,
    DEFAULT_AUTHOR_EMAIL, DEFAULT_AUTHOR_NAME, DEFAULT_MESSAGE,
};
use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// Builds the configuration from raw inputs and the runner's environment, collecting every problem.
/// No network or disk access.
///
/// # Errors
/// One message per problem, each naming the input and what is wrong.
pub fn config(args: &PublishArgs, env: &RunnerEnv) -> Result<Config, Vec<String>> {
    let mut problems = Vec::new();
    let given = super::inputs::given_owned;

    // Repository and server.
    let server_arg = given(&args.server_url).or_else(|| env.server_url.clone());
    let repo_arg = given(&args.repository).or_else(|| env.repository.clone());
    let mut server_url = None;
    let mut owner_name = None;
    match repo_arg.as_deref() {
        None => problems.push(
            "repository: required (`owner/name` or a clone URL; defaults to $GITHUB_REPOSITORY)"
                .to_owned(),
        ),
        Some(repo) if repo.contains("://") => match parse_clone_url(repo) {
            Ok((base, owner, name)) => {
                server_url = Some(base);
                owner_name = Some((owner, name));
            }
            Err(why) => problems.push(format!("repository: {why}")),
        },
        Some(repo) => match repo.split_once('/') {
            Some((o, n)) if valid_segment(o) && valid_segment(n.trim_end_matches(".git")) => {
                owner_name = Some((o.to_owned(), n.trim_end_matches(".git").to_owned()));
            }
            _ => problems.push(format!(
                "repository: {repo:?} is neither `owner/name` nor a clone URL"
            )),
        },
    }
    // An explicit server_url wins over the one implied by a clone URL.
    match server_arg.as_deref() {
        Some(s) => match parse_server_url(s) {
            Ok(u) => server_url = Some(u),
            Err(why) => problems.push(format!("server_url: {why}")),
        },
        None if server_url.is_none() && owner_name.is_some() => problems.push(
            "server_url: required when `repository` is `owner/name` (defaults to $GITHUB_SERVER_URL)"
                .to_owned(),
        ),
        None => {}
    }

    // Paths.
    let mut paths = Vec::new();
    for raw in args.path.iter().flat_map(|p| p.split(['\n', ','])) {
        let p = raw.trim();
        if p.is_empty() {
            continue;
        }
        match normalize_path(p) {
            Ok(n) if !paths.contains(&n) => paths.push(n),
            Ok(_) => {}
            Err(why) => problems.push(format!("path: {p:?} {why}")),
        }
    }
    if paths.is_empty() && problems.iter().all(|p| !p.starts_with("path:")) {
        problems.push(
            "path: required (one or more kustomization directories, newline- or comma-separated)"
                .to_owned(),
        );
    }

    let target = target_of(args, &mut problems);

    // The image edit.
    let image = given(&args.image);
    let tag = given(&args.tag);
    let digest = given(&args.digest);
    let new_name = given(&args.new_name);
    let mut setting = None;
    match image.as_deref() {
        None => {
            problems.push("image: required (the image name as written in `images:`)".to_owned())
        }
        Some(_) if tag.is_none() && digest.is_none() && new_name.is_none() => problems.push(
            "tag: give `tag`, `digest` or `new_name` (nothing to change otherwise)".to_owned(),
        ),
        Some(name) => {
            match ImageSetting::deploy(name, tag.as_deref(), digest.as_deref(), new_name.as_deref())
            {
                Ok(s) => setting = Some(s),
                Err(e) => problems.push(format!("image: {}", crate::error::chain(&e))),
            }
        }
    }
    let new_value = describe_new(new_name.as_deref(), tag.as_deref(), digest.as_deref());

    // Transport, message, author, flags.
    let transport = match given(&args.transport).as_deref() {
        None | Some("auto") => Transport::Auto,
        Some("api") => Transport::Api,
        Some("git") => Transport::Git,
        Some(other) => {
            problems.push(format!(
                "transport: {other:?} is not one of `api`, `git`, `auto`"
            ));
            Transport::Auto
        }
    };
    let message_template = args
        .commit_message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MESSAGE.to_owned());
    if let Err(why) = check_template(&message_template) {
        problems.push(format!("commit_message: {why}"));
    }
    let author = Identity {
        name: given(&args.author_name).unwrap_or_else(|| DEFAULT_AUTHOR_NAME.to_owned()),
        email: given(&args.author_email).unwrap_or_else(|| DEFAULT_AUTHOR_EMAIL.to_owned()),
    };
    if author.name.contains(['<', '>', '\n']) {
        problems.push("author_name: must not contain `<`, `>` or a line break".to_owned());
    }
    if !author.email.contains('@') || author.email.contains(['<', '>', '\n', ' ']) {
        problems.push(format!(
            "author_email: {:?} is not an e-mail address",
            author.email
        ));
    }
    let dry_run = match given(&args.dry_run) {
        None => false,
        Some(v) => super::inputs::parse_bool("dry_run", &v).unwrap_or_else(|e| {
            problems.push(e);
            false
        }),
    };
    let token = given(&args.token)
        .or_else(|| env.token.clone())
        .map(Secret::new);
    if token.is_none() && !dry_run {
        problems.push("token: required to publish (a token with write access to the repository; in a runner it defaults to $GITHUB_TOKEN, $GITEA_TOKEN or $FORGEJO_TOKEN; or set dry_run)".to_owned());
    }
    if token
        .as_ref()
        .is_some_and(|t| t.expose().chars().any(|c| c.is_control() || c == ' '))
    {
        problems.push("token: contains spaces or control characters".to_owned());
    }

    let server_ca = given(&args.server_ca).and_then(|ca| {
        crate::tls::ExtraRoots::from_input("server_ca", &ca)
            .map_err(|why| problems.push(why))
            .ok()
    });

    if !problems.is_empty() {
        return Err(problems);
    }
    let (owner, name) = owner_name.expect("checked above");
    Ok(Config {
        server_url: server_url.expect("checked above"),
        owner,
        name,
        branch: given(&args.branch),
        new_branch: None,
        paths,
        target,
        setter: given(&args.setter),
        image: image.expect("checked above"),
        change: Change::Set {
            setting: setting.expect("checked above"),
            shown: new_value,
        },
        token,
        server_ca,
        transport,
        message_template,
        author,
        dry_run,
        source_repo: env.repository.clone(),
        source_sha: env.sha.clone(),
        run_url: env.run_url(),
        run_url_by_number: env.run_url_by_number(),
        retry: RetryPolicy::PUBLISH,
        timeout: Duration::from_secs(300),
        request_timeout: Duration::from_secs(30),
    })
}

/// The `target` input and its options; a problem for each option given to the wrong target.
fn target_of(args: &PublishArgs, problems: &mut Vec<String>) -> Target {
    use super::inputs::given;
    let key_paths = super::inputs::split_list(&args.key_path);
    let helm_keys = given(&args.helm_keys);
    let template = given(&args.value_template);
    let name = given(&args.target).unwrap_or("kustomize");
    let mut only_for = |input: &str, given: bool, target: &str| {
        if given && name != target {
            problems.push(format!(
                "{input}: only for `target: {target}` (target is {name})"
            ));
        }
    };
    only_for("helm_keys", helm_keys.is_some(), "helm");
    only_for("key_path", !key_paths.is_empty(), "yaml");
    only_for("value_template", template.is_some(), "yaml");
    match name {
        "kustomize" => Target::Kustomize,
        "helm" => {
            let mut sets = Vec::new();
            for spec in helm_keys
                .unwrap_or_default()
                .split(['\n', ';'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                match HelmKeys::parse(spec) {
                    Ok(k) => sets.push(k),
                    Err(e) => problems.push(format!("helm_keys: {e}")),
                }
            }
            if sets.is_empty() {
                sets.push(HelmKeys::chart_convention());
            }
            Target::Helm(sets)
        }
        "yaml" => {
            let mut paths = Vec::new();
            for p in &key_paths {
                match KeyPath::parse(p) {
                    Ok(k) => paths.push(k),
                    Err(e) => problems.push(format!("key_path: {e}")),
                }
            }
            if key_paths.is_empty() {
                problems.push(
                    "key_path: required for `target: yaml` (the key paths to set)".to_owned(),
                );
            }
            let template = match template.map(ValueTemplate::parse) {
                None => ValueTemplate::whole_reference(),
                Some(Ok(t)) => t,
                Some(Err(e)) => {
                    problems.push(format!("value_template: {e}"));
                    ValueTemplate::whole_reference()
                }
            };
            Target::Yaml { paths, template }
        }
        "manifests" => Target::Manifests,
        "markers" => match given(&args.setter) {
            Some(s) => Target::Markers(s.to_owned()),
            None => {
                problems.push(
                    "setter: required for `target: markers` (the NAMESPACE:POLICY of the markers)"
                        .to_owned(),
                );
                Target::Manifests
            }
        },
        other => {
            problems.push(format!(
                "target: {other:?} is not one of `kustomize`, `helm`, `yaml`, `manifests`, `markers`"
            ));
            Target::Kustomize
        }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Splits a clone URL into the server base URL, owner and name.
fn parse_clone_url(raw: &str) -> Result<(Url, String, String), String> {
    let url = Url::parse(raw).map_err(|_| "not a valid URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http(s) clone URLs are supported (got `{}`)",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL: it holds a credential.
        return Err(
            "the clone URL must not contain credentials; pass the token in `token`".to_owned(),
        );
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    if segments.len() < 2 {
        return Err("a clone URL needs `/owner/name` in its path".to_owned());
    }
    let name = segments[segments.len() - 1].trim_end_matches(".git");
    let owner = segments[segments.len() - 2];
    if !valid_segment(owner) || !valid_segment(name) {
        return Err("a clone URL needs `/owner/name` in its path".to_owned());
    }
    let mut base = url.clone();
    base.set_path(&segments[..segments.len() - 2].join("/"));
    base.set_query(None);
    base.set_fragment(None);
    Ok((base, owner.to_owned(), name.to_owned()))
}

fn parse_server_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| format!("{raw:?} is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("{raw:?} is not an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; pass the token in `token`".to_owned());
    }
    Ok(url)
}

/// `./apps/web/` → `apps/web`; `.` stays `.`; absolute paths and `..` are refused.
fn normalize_path(p: &str) -> Result<String, &'static str> {
    if p.starts_with('/') || p.contains('\\') {
        return Err("must be relative to the repository root");
    }
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.contains(&"..") {
        return Err("must not contain `..`");
    }
    if parts.is_empty() {
        return Ok(".".to_owned());
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PublishArgs {
        PublishArgs {
            server_url: Some("http://127.0.0.1:3000".into()),
            repository: Some("demo/gitops".into()),
            path: vec!["apps/web/overlays/prod".into()],
            image: Some("registry.example.com/demo/web".into()),
            tag: Some("1.2.3".into()),
            token: Some("t0ken".into()),
            ..PublishArgs::default()
        }
    }

    #[test]
    fn builds_config_with_defaults() {
        let c = config(&args(), &RunnerEnv::default()).unwrap();
        assert_eq!(c.repository(), "demo/gitops");
        assert_eq!(
            c.clone_url().as_str(),
            "http://127.0.0.1:3000/demo/gitops.git"
        );
        assert_eq!(c.transport, Transport::Auto);
        assert_eq!(c.author.name, DEFAULT_AUTHOR_NAME);
        assert!(!c.dry_run);
        assert_eq!(c.change.shown(), "1.2.3");
    }

    #[test]
    fn collects_every_problem_naming_the_input() {
        let a = PublishArgs {
            server_url: Some("ftp://x".into()),
            repository: Some("no-slash".into()),
            path: vec!["/abs, ../up".into()],
            image: None,
            transport: Some("carrier-pigeon".into()),
            commit_message: Some("{nope}".into()),
            dry_run: Some("maybe".into()),
            author_email: Some("not-an-email".into()),
            ..PublishArgs::default()
        };
        let problems = config(&a, &RunnerEnv::default()).unwrap_err();
        for input in [
            "repository:",
            "server_url:",
            "path: \"/abs\"",
            "path: \"../up\"",
            "image:",
            "transport:",
            "commit_message:",
            "dry_run:",
            "author_email:",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(input)),
                "{input} missing in {problems:#?}"
            );
        }
    }

    #[test]
    fn repository_from_env_and_clone_url() {
        let env = RunnerEnv {
            server_url: Some("https://git.example.com/sub".into()),
            repository: Some("ops/deploy".into()),
            sha: Some("abc".into()),
            run_id: Some("7".into()),
            run_number: Some("3".into()),
            forgejo: false,
            gitea: false,
            github_api_url: None,
            token: None,
        };
        let a = PublishArgs {
            server_url: None,
            repository: None,
            ..args()
        };
        let c = config(&a, &env).unwrap();
        assert_eq!(
            c.clone_url().as_str(),
            "https://git.example.com/sub/ops/deploy.git"
        );
        assert_eq!(
            c.run_url.as_deref(),
            Some("https://git.example.com/sub/ops/deploy/actions/runs/7")
        );

        let a = PublishArgs {
            server_url: None,
            repository: Some("https://h.example/o/r.git".into()),
            ..args()
        };
        let c = config(&a, &RunnerEnv::default()).unwrap();
        assert_eq!(c.server_url.as_str(), "https://h.example/");
        assert_eq!((c.owner.as_str(), c.name.as_str()), ("o", "r"));

        let a = PublishArgs {
            repository: Some("https://user:s3cret@h.example/o/r.git".into()),
            ..args()
        };
        let problems = config(&a, &RunnerEnv::default()).unwrap_err();
        assert!(
            problems.iter().all(|p| !p.contains("s3cret")),
            "{problems:?}"
        );
        assert!(problems[0].contains("must not contain credentials"));
    }

    #[test]
    fn paths_split_on_newlines_and_commas() {
        let a = PublishArgs {
            path: vec!["./a/b/\n c ,a/b".into(), "d".into()],
            ..args()
        };
        let c = config(&a, &RunnerEnv::default()).unwrap();
        assert_eq!(c.paths, ["a/b", "c", "d"]);
    }

    #[test]
    fn token_is_required_unless_dry_run() {
        let a = PublishArgs {
            token: None,
            ..args()
        };
        assert!(config(&a, &RunnerEnv::default()).unwrap_err()[0].starts_with("token:"));
        let a = PublishArgs {
            token: None,
            dry_run: Some("TRUE".into()),
            ..args()
        };
        assert!(config(&a, &RunnerEnv::default()).unwrap().dry_run);
    }

    #[test]
    fn token_falls_back_to_the_runners_token_inside_a_runner_only() {
        let env = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            RunnerEnv::from_lookup(move |k| {
                vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        // (environment, expected fallback)
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let table: [(Vars, Option<&str>); 6] = [
            (&[("GITHUB_TOKEN", "gh")], None),
            (
                &[("GITHUB_ACTIONS", "true"), ("GITHUB_TOKEN", "gh")],
                Some("gh"),
            ),
            (
                &[
                    ("GITEA_ACTIONS", "true"),
                    ("GITHUB_TOKEN", ""),
                    ("GITEA_TOKEN", "gt"),
                ],
                Some("gt"),
            ),
            (
                &[("FORGEJO_ACTIONS", "true"), ("FORGEJO_TOKEN", "fj")],
                Some("fj"),
            ),
            (
                &[
                    ("GITHUB_ACTIONS", "true"),
                    ("GITHUB_TOKEN", "gh"),
                    ("GITEA_TOKEN", "gt"),
                ],
                Some("gh"),
            ),
            (&[("GITHUB_ACTIONS", "false"), ("GITEA_TOKEN", "gt")], None),
        ];
        for (vars, expected) in table {
            let env = env(vars);
            assert_eq!(env.token.as_deref(), expected, "{vars:?}");
            let a = PublishArgs {
                token: None,
                ..args()
            };
            let config = config(&a, &env);
            match expected {
                Some(t) => assert_eq!(config.unwrap().token.unwrap().expose(), t),
                None => assert!(config.unwrap_err()[0].starts_with("token: required")),
            }
        }
        // The input wins over the environment.
        let config = config(
            &args(),
            &env(&[("GITHUB_ACTIONS", "true"), ("GITHUB_TOKEN", "gh")]),
        );
        assert_eq!(config.unwrap().token.unwrap().expose(), "t0ken");
    }
}
