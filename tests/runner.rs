//! The binary as a CI runner runs it: no arguments, only `INPUT_*` and the runner's variables (Gitea's
//! paths), against the sandbox. Checks every output line, the step summary, the workflow commands
//! (masks first, one group per phase, `::error::` naming the phase) and that no secret leaks.
//! tests/image.rs does the same inside the image built from the shipped Dockerfile.

mod support;
use support::runner;

use std::path::Path;

use gitops_sandbox::{demo, Sandbox, SandboxConfig};
use runner::{outputs_of, Deploy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_mode_deploys_with_only_input_env() {
    let (sandbox, source_sha) = runner::world().await;
    let deploy = Deploy::new(&sandbox, "1.1.0", &source_sha);
    let run = deploy.run_binary(Path::new(env!("CARGO_BIN_EXE_gitops-deploy")));
    let log = &run.stderr;
    assert_eq!(run.code, Some(0), "exit code; log:\n{log}");

    // Masks come first, before any other line, for every secret, raw and base64.
    let lines: Vec<&str> = log.lines().collect();
    let first_other = lines
        .iter()
        .position(|l| !l.starts_with("::add-mask::"))
        .unwrap();
    let masks = &lines[..first_other];
    for secret in deploy.secrets() {
        assert!(
            masks.contains(&format!("::add-mask::{secret}").as_str()),
            "no mask for a secret; masks: {}",
            masks.len()
        );
    }
    // Nothing but the mask commands may carry a secret.
    let rest = lines[first_other..].join("\n");
    runner::assert_no_secret(&deploy, &rest);
    runner::assert_no_secret(&deploy, &run.stdout);

    // One group per phase, each closed, in pipeline order.
    let groups: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("::group::gitops-deploy: "))
        .collect();
    assert_eq!(groups, ["publish", "argocd", "rollout", "health"], "{log}");
    let opens = lines.iter().filter(|l| l.starts_with("::group::")).count();
    let closes = lines.iter().filter(|l| **l == "::endgroup::").count();
    assert_eq!(opens, closes, "{log}");
    assert!(!log.contains("::error"), "{log}");

    // Every output, in order.
    let outputs = outputs_of(&deploy.output_file());
    let names: Vec<&str> = outputs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, gitops_deploy::runner::OUTPUT_NAMES);
    let get = |k: &str| outputs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let head = runner::head(&sandbox).await;
    assert_ne!(head, source_sha);
    assert_eq!(get("changed"), "true");
    assert_eq!(get("commit_sha"), head);
    assert_eq!(
        get("commit_url"),
        format!("{}/demo/gitops/commit/{head}", sandbox.gitea_url())
    );
    assert_eq!(get("previous_tag"), "1.0.0");
    assert_eq!(get("synced_revision"), head);
    assert_eq!(get("health"), "Healthy");
    assert_eq!(get("phase"), "health");
    assert_eq!(get("result"), "success");
    let secs: f64 = get("duration_seconds").parse().unwrap();
    assert!(secs > 0.0 && secs < 60.0, "{secs}");

    // The summary: phases with durations, old → new, commit and Argo CD links.
    let summary = std::fs::read_to_string(deploy.summary_file()).unwrap();
    assert!(
        summary.starts_with("### ✅ gitops-deploy: deployed ("),
        "{summary}"
    );
    for phase in ["publish", "argocd", "rollout", "health"] {
        assert!(
            summary.contains(&format!("| {phase} | ✅ passed | ")),
            "{phase}: {summary}"
        );
    }
    assert!(
        summary.contains("| `apps/web/overlays/prod/kustomization.yaml` | `registry.example.com/demo/web` | `1.0.0` → | `1.1.0` |"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "- Commit: [`{}`]({})",
            &head[..7],
            get("commit_url")
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "- Argo CD: [web-prod]({}/applications/web-prod)",
            sandbox.argocd_url()
        )),
        "{summary}"
    );
    runner::assert_no_secret(&deploy, &summary);

    // report_status: the source commit got a status linking to the Argo CD app.
    let statuses = sandbox
        .gitea()
        .statuses(demo::OWNER, demo::REPO, &source_sha);
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0]["status"], "success", "{statuses:?}");
    assert_eq!(statuses[0]["context"], "gitops-deploy");
    assert_eq!(
        statuses[0]["target_url"],
        format!("{}/applications/web-prod", sandbox.argocd_url())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_mode_failure_names_the_phase_and_rolls_back() {
    let (sandbox, source_sha) = runner::world().await;
    let mut deploy = Deploy::new(&sandbox, "broken-1.1.0", &source_sha);
    deploy.set("INPUT_ROLLBACK_ON_FAILURE", "true");
    deploy.set("INPUT_DEGRADED_GRACE", "2s");
    let run = deploy.run_binary(Path::new(env!("CARGO_BIN_EXE_gitops-deploy")));
    let log = &run.stderr;
    assert_eq!(run.code, Some(1), "exit code; log:\n{log}");
    let outputs = outputs_of(&deploy.output_file());
    let get = |k: &str| outputs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let failed_phase = get("phase");
    assert!(
        ["argocd", "rollout"].contains(&failed_phase.as_str()),
        "{failed_phase}"
    );
    assert_eq!(get("result"), "rolled_back", "{log}");
    assert_eq!(get("changed"), "true");
    assert_eq!(get("previous_tag"), "1.0.0");
    assert_eq!(get("commit_sha").len(), 40);
    let error_line = log
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no ::error line:\n{log}"));
    assert!(
        error_line.starts_with(&format!(
            "::error title=gitops-deploy%3A {failed_phase} failed::"
        )),
        "{error_line}"
    );
    assert!(
        !error_line.contains('\n') && !error_line.contains('\r'),
        "{error_line}"
    );
    let groups: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("::group::gitops-deploy: "))
        .collect();
    assert!(groups.contains(&"rollback"), "{log}");
    // The file is back at 1.0.0.
    assert!(runner::kustomization(&sandbox)
        .await
        .contains("newTag: \"1.0.0\""));
    let summary = std::fs::read_to_string(deploy.summary_file()).unwrap();
    assert!(
        summary.starts_with(&format!(
            "### ↩\u{fe0f} gitops-deploy: failed in {failed_phase}, rolled back ("
        )),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| {failed_phase} | ❌ failed | ")),
        "{summary}"
    );
    assert!(
        summary.contains("| `registry.example.com/demo/web` | `1.0.0` → | `broken-1.1.0` |"),
        "{summary}"
    );
    runner::assert_no_secret(&deploy, log.split_once("::group::").unwrap().1);
    let statuses = sandbox
        .gitea()
        .statuses(demo::OWNER, demo::REPO, &source_sha);
    assert_eq!(statuses[0]["status"], "failure", "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_mode_invalid_input_writes_nothing_and_exits_2() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let before = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap();
    let mut deploy = Deploy::new(
        &sandbox,
        "1.1.0",
        "0000000000000000000000000000000000000000",
    );
    deploy.set("INPUT_IMAGE", "");
    deploy.set("INPUT_TIMEOUT", "soon");
    let run = deploy.run_binary(Path::new(env!("CARGO_BIN_EXE_gitops-deploy")));
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let error_line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap();
    assert!(error_line.contains("image"), "{error_line}");
    assert!(error_line.contains("timeout"), "{error_line}");
    let outputs = outputs_of(&deploy.output_file());
    let get = |k: &str| outputs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("result"), "invalid_input");
    assert_eq!(get("phase"), "inputs");
    assert_eq!(get("changed"), "false");
    assert_eq!(get("commit_sha"), "");
    let after = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap();
    assert_eq!(before, after, "nothing written");
}

/// docs/research/field-runner.md ranked #7: on GitHub the commit status goes to `$GITHUB_API_URL` (api.github.com),
/// not to `$GITHUB_SERVER_URL/api/v1`. Here the server URL leads nowhere and the API URL is the
/// sandbox's, which has the same statuses endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_status_on_github_uses_the_api_url() {
    let (sandbox, source_sha) = runner::world().await;
    let mut deploy = Deploy::new(&sandbox, "1.1.0", &source_sha);
    deploy.unset("GITEA_ACTIONS");
    deploy.set("GITHUB_SERVER_URL", "http://github.invalid");
    deploy.set("GITHUB_API_URL", &format!("{}/api/v1", sandbox.gitea_url()));
    let run = deploy.run_binary(Path::new(env!("CARGO_BIN_EXE_gitops-deploy")));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        !run.stderr.contains("warning: report_status"),
        "{}",
        run.stderr
    );
    let statuses = sandbox
        .gitea()
        .statuses(demo::OWNER, demo::REPO, &source_sha);
    assert_eq!(statuses.len(), 1, "{statuses:?}\n{}", run.stderr);
    assert_eq!(statuses[0]["status"], "success");
}
