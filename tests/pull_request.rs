//! Pull-request mode end to end against the sandbox (real git, Gitea's pull-request API, Argo CD,
//! Kubernetes and the app): a protected branch that refuses every push, a pull request opened by
//! the real binary, merged by the forge once its check passes (merge, squash and rebase), then Argo
//! CD, the rollout and the HTTP check verified on the merge commit. Also: `merge: none`, a failing
//! check, missing approvals, idempotent re-runs, superseding, a rollback by pull request, 16
//! concurrent runs, and bad input that writes nothing.

mod support;
use support::world as common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::{error, timing, World};
use gitops_sandbox::demo;
use gitops_sandbox::eventually::eventually;
use gitops_sandbox::gitea::{Protection, PullSummary};
use serde_json::Value;

/// `run` arguments deploying `tag` through a pull request, verified as far as the app's `/version`.
fn pr_args(world: &World, tag: &str, extra: &[&str]) -> Vec<String> {
    let mut more = vec!["--mode", "pull_request", "--merge-poll-interval", "200ms"];
    more.extend_from_slice(extra);
    world.verified_run_args(tag, "api", &more)
}

fn protect(world: &World, rule: Protection) -> Result<()> {
    Ok(world
        .sandbox
        .gitea()
        .protect_branch_with(demo::OWNER, demo::REPO, demo::BRANCH, rule)?)
}

fn checks(contexts: &[&str]) -> Protection {
    Protection {
        enable_status_check: true,
        status_check_contexts: contexts.iter().map(|c| c.to_string()).collect(),
        ..Protection::default()
    }
}

fn pulls(world: &World) -> Vec<PullSummary> {
    world.sandbox.gitea().pulls(demo::OWNER, demo::REPO)
}

/// Waits for an open pull request whose title names `tag`; returns it and its head commit.
async fn open_pull(world: &World, tag: &str) -> Result<(PullSummary, String)> {
    let pull = eventually(
        format!("an open pull request for {tag}"),
        Duration::from_secs(60),
        || async {
            pulls(world)
                .into_iter()
                .find(|p| p.open && p.title.contains(tag))
                .ok_or_else(|| format!("pull requests: {:?}", pulls(world)))
        },
    )
    .await?;
    let head = world
        .sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, &pull.head)
        .await?
        .context("the pull request's branch exists")?;
    Ok((pull, head))
}

/// Waits until pull request `number` has its merge scheduled (auto-merge asked for).
async fn scheduled(world: &World, number: i64) -> Result<()> {
    eventually(
        format!("the merge of #{number} scheduled"),
        Duration::from_secs(30),
        || async {
            pulls(world)
                .into_iter()
                .find(|p| p.number == number && p.auto_merge)
                .map(drop)
                .ok_or_else(|| format!("pull requests: {:?}", pulls(world)))
        },
    )
    .await?;
    Ok(())
}

/// What CI does: posts a commit status on `sha` through the API.
async fn post_status(
    world: &World,
    sha: &str,
    state: &str,
    context: &str,
    description: &str,
) -> Result<()> {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/repos/{}/statuses/{sha}",
            world.sandbox.gitea_url(),
            demo::REPOSITORY
        ))
        .header("Authorization", format!("token {}", world.sandbox.token()))
        .json(&serde_json::json!({"state": state, "context": context, "description": description}))
        .send()
        .await?;
    ensure!(resp.status() == 201, "status: {}", resp.status());
    Ok(())
}

async fn is_ancestor(world: &World, ancestor: &str, descendant: &str) -> Result<bool> {
    let dir = world.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO);
    Ok(
        gitops_sandbox::git::Git::new(&dir, ["merge-base", "--is-ancestor", ancestor, descendant])
            .succeeds()
            .await?,
    )
}

async fn parents(world: &World, sha: &str) -> Result<usize> {
    let dir = world.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO);
    let line = gitops_sandbox::git::Git::new(&dir, ["rev-list", "--parents", "-n", "1", sha])
        .text()
        .await?;
    Ok(line.split_whitespace().count() - 1)
}

fn no_token(world: &World, texts: &[&str]) -> Result<()> {
    let token = world.sandbox.token();
    for t in texts {
        ensure!(!t.contains(token), "the token leaked: {t}");
    }
    for p in pulls(world) {
        ensure!(
            !p.body.contains(token) && !p.title.contains(token),
            "the token leaked into a pull request"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_protected_branch_deploys_through_a_pull_request_merged_once_its_check_passes(
) -> Result<()> {
    let world = World::start(timing()).await?;
    protect(&world, checks(&["ci/*"]))?;
    let before = world.head().await?;

    // A push is refused, as Gitea refuses the job token on a protected branch.
    let (code, report, err) = world
        .run_json(&world.verified_run_args("1.1.0", "api", &[]), &[])
        .await?;
    ensure!(
        code == 1 && report["phase"] == "publish",
        "push: {report}\n{err}"
    );
    ensure!(
        error(&report).contains("protected branch"),
        "push: {report}"
    );
    ensure!(
        world.head().await? == before,
        "the refused push wrote something"
    );

    let ci = async {
        let (pull, head) = open_pull(&world, "1.1.0").await?;
        // Once the merge is scheduled the forge knows to merge; it must not while the required
        // check is pending.
        scheduled(&world, pull.number).await?;
        ensure!(
            pulls(&world)
                .iter()
                .any(|p| p.number == pull.number && p.open && !p.merged),
            "merged before its check passed"
        );
        ensure!(
            world.head().await? == before,
            "the base moved before the check passed"
        );
        post_status(&world, &head, "success", "ci/test", "ok").await?;
        Ok::<_, anyhow::Error>((pull, head))
    };
    let args = pr_args(&world, "1.1.0", &[]);
    let run = world.run_json(&args, &[]);
    let (ran, ci) = tokio::join!(run, ci);
    let (code, report, err) = ran?;
    let (pull, head) = ci?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let merged = world.head().await?;
    ensure!(
        report["pr_number"] == pull.number
            && report["pr_branch"] == pull.head.as_str()
            && report["commit_sha"] == head.as_str()
            && report["merge_commit_sha"] == merged.as_str()
            && report["synced_revision"] == merged.as_str(),
        "{report}"
    );
    ensure!(
        report["pr_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/pulls/{}", pull.number))),
        "{report}"
    );
    // The branch's commit starts the checks (no skip marker); the merge commit on the base does
    // not start the pipeline again.
    let message = |sha: &str| {
        let dir = world.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO);
        let sha = sha.to_owned();
        async move {
            gitops_sandbox::git::Git::new(&dir, ["log", "-1", "--format=%B", &sha])
                .text()
                .await
        }
    };
    let ours = message(&head).await?;
    ensure!(!ours.to_ascii_lowercase().contains("skip"), "{ours}");
    let merge_message = message(&merged).await?;
    ensure!(merge_message.contains("[skip ci]"), "{merge_message}");
    // A merge commit: our commit is in the base's history.
    ensure!(parents(&world, &merged).await? == 2 && is_ancestor(&world, &head, &merged).await?);
    ensure!(
        world.ready_tags() == vec!["1.1.0"; 3],
        "{:?}",
        world.ready_tags()
    );
    let after = pulls(&world);
    ensure!(
        after.len() == 1 && after[0].merged && !after[0].open,
        "{after:?}"
    );
    ensure!(
        after[0].body.contains("| `apps/web/overlays/prod/kustomization.yaml` | `registry.example.com/demo/web` | 1.0.0 | **1.1.0** |"),
        "{}",
        after[0].body
    );
    // The branch was deleted after the merge.
    ensure!(world
        .sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, &pull.head)
        .await?
        .is_none());
    no_token(&world, &[&err, &report.to_string()])
}

/// Squash and rebase merges write new commits: the deploy waits for the merge's commit, which
/// carries our change, and says so.
#[tokio::test]
async fn squash_and_rebase_merges_are_verified_on_the_commit_the_merge_made() -> Result<()> {
    let world = World::start(timing()).await?;
    protect(&world, checks(&["ci/test"]))?;
    for (style, tag) in [("squash", "1.2.0"), ("rebase", "1.3.0")] {
        let ci = async {
            let (_, head) = open_pull(&world, tag).await?;
            // Someone else changes the base meanwhile, so that the rebase replays our commit.
            world
                .commit(
                    &[("release-notes.txt", &format!("before {tag}\n"))],
                    "notes",
                )
                .await?;
            post_status(&world, &head, "success", "ci/test", "ok").await?;
            Ok::<_, anyhow::Error>(head)
        };
        let args = pr_args(&world, tag, &["--merge-style", style]);
        let run = world.run_json(&args, &[]);
        let (ran, ci) = tokio::join!(run, ci);
        let (code, report, err) = ran?;
        let head = ci?;
        ensure!(
            code == 0 && report["result"] == "success",
            "{style}: {report}\n{err}"
        );
        let merged = world.head().await?;
        ensure!(
            report["merge_commit_sha"] == merged.as_str()
                && report["synced_revision"] == merged.as_str(),
            "{style}: {report}"
        );
        ensure!(
            merged != head && !is_ancestor(&world, &head, &merged).await?,
            "{style}: our commit itself was merged"
        );
        ensure!(parents(&world, &merged).await? == 1, "{style}");
        ensure!(
            err.contains(&format!(
                "a {style} merge writes new commits, so the deploy waits for {}",
                &merged[..7]
            )),
            "{style}: {err}"
        );
        ensure!(world
            .kustomization_at(&merged)
            .await?
            .contains(&format!("newTag: \"{tag}\"")));
        ensure!(
            world.ready_tags() == vec![tag; 3],
            "{style}: {:?}",
            world.ready_tags()
        );
        // A squash commit carries the merge message; a rebase lands our commit as it is, without
        // the skip marker, and the step warns.
        let dir = world.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO);
        let tip = gitops_sandbox::git::Git::new(&dir, ["log", "-1", "--format=%B", &merged])
            .text()
            .await?;
        let warned = err.contains("without [skip ci], so workflows on pushes to main run for it");
        ensure!(
            tip.contains("[skip ci]") == (style == "squash") && warned == (style == "rebase"),
            "{style}: {tip:?}\n{err}"
        );
    }
    Ok(())
}

/// `merge: none` stops with the pull request's outputs; a re-run reuses it; another value with
/// `supersede` closes it, linking the new one.
#[tokio::test]
async fn merge_none_reruns_and_supersede() -> Result<()> {
    let world = World::start(timing()).await?;
    protect(&world, Protection::default())?;
    let before = world.head().await?;
    let none = |tag: &str, extra: &[&str]| {
        let mut e = vec!["--merge", "none"];
        e.extend_from_slice(extra);
        pr_args(&world, tag, &e)
    };
    let (code, first, err) = world.run_json(&none("1.4.0", &[]), &[]).await?;
    ensure!(code == 0 && first["result"] == "success", "{first}\n{err}");
    ensure!(
        first["pr_number"] == 1 && first["merge_commit_sha"].is_null(),
        "{first}"
    );
    ensure!(
        first["synced_revision"].is_null(),
        "verified an unmerged change: {first}"
    );
    ensure!(world.head().await? == before, "the base moved");
    ensure!(err.contains("pull request #1 is open"), "{err}");

    // The same change again: the same pull request, no second one.
    let (code, again, err) = world.run_json(&none("1.4.0", &[]), &[]).await?;
    ensure!(
        code == 0 && again["pr_number"] == 1 && again["pr_branch"] == first["pr_branch"],
        "{again}\n{err}"
    );
    ensure!(err.contains("reusing the open pull request #1"), "{err}");
    ensure!(pulls(&world).len() == 1, "{:?}", pulls(&world));

    // Another value without supersede: both stay open.
    let (code, other, err) = world.run_json(&none("1.5.0", &[]), &[]).await?;
    ensure!(code == 0 && other["pr_number"] == 2, "{other}\n{err}");
    ensure!(pulls(&world).iter().filter(|p| p.open).count() == 2);

    // A third value with supersede: both older ones are closed, each pointing at the new one.
    let (code, newest, err) = world
        .run_json(&none("1.6.0", &["--supersede"]), &[])
        .await?;
    ensure!(code == 0 && newest["pr_number"] == 3, "{newest}\n{err}");
    let all = pulls(&world);
    for old in all.iter().filter(|p| p.number < 3) {
        ensure!(!old.open && !old.merged, "{old:?}");
        ensure!(
            old.comments
                .iter()
                .any(|c| c.starts_with("Superseded by #3 (") && c.contains("1.6.0")),
            "{old:?}"
        );
    }
    ensure!(all.iter().filter(|p| p.open).count() == 1);
    ensure!(world.head().await? == before);

    // A dry run of the same change with merge: auto names the open pull request and merges
    // nothing.
    let (code, dry, err) = world
        .run_json(&pr_args(&world, "1.6.0", &["--dry-run"]), &[])
        .await?;
    ensure!(code == 0 && dry["pr_number"] == 3, "{dry}\n{err}");
    ensure!(
        err.contains("dry run: would merge pull request #3"),
        "{err}"
    );
    ensure!(
        pulls(&world)
            .iter()
            .any(|p| p.number == 3 && p.open && !p.merged),
        "{:?}",
        pulls(&world)
    );
    ensure!(world.head().await? == before, "the dry run merged");
    no_token(&world, &[&err, &newest.to_string()])
}

/// A failing required check fails the deploy within its deadline, naming the check; `merge: now`
/// without the required approval names what is missing; an approval lets `auto` merge.
#[tokio::test]
async fn a_failing_check_or_a_missing_approval_is_named() -> Result<()> {
    let world = World::start(timing()).await?;
    protect(&world, checks(&["ci/test"]))?;
    let before = world.head().await?;
    let ci = async {
        let (_, head) = open_pull(&world, "1.7.0").await?;
        post_status(&world, &head, "failure", "ci/test", "3 tests failed").await
    };
    let started = Instant::now();
    let args = pr_args(&world, "1.7.0", &["--merge-timeout", "20s"]);
    let run = world.run_json(&args, &[]);
    let (ran, ci) = tokio::join!(run, ci);
    ci?;
    let (code, report, err) = ran?;
    ensure!(
        started.elapsed() < Duration::from_secs(25),
        "waited {:?}",
        started.elapsed()
    );
    ensure!(
        code == 1 && report["phase"] == "merge" && report["pr_number"] == 1,
        "{report}\n{err}"
    );
    ensure!(
        error(&report)
            .contains("cannot merge: required check \"ci/test\" is failure: 3 tests failed"),
        "{report}"
    );
    ensure!(
        world.head().await? == before,
        "a failed check changed the base"
    );

    // Approvals: `now` is refused, saying why.
    protect(
        &world,
        Protection {
            required_approvals: 1,
            ..Protection::default()
        },
    )?;
    let (code, report, err) = world
        .run_json(&pr_args(&world, "1.8.0", &["--merge", "now"]), &[])
        .await?;
    ensure!(code == 1 && report["phase"] == "merge", "{report}\n{err}");
    ensure!(
        error(&report).contains(
            "cannot be merged now: Does not have enough approvals (approvals: 0 of 1 required)"
        ),
        "{report}"
    );
    // `auto` waits for a reviewer, saying so, and merges once approved.
    let reviewer = async {
        let (pull, _) = open_pull(&world, "1.8.0").await?;
        world
            .sandbox
            .gitea()
            .review_pull(demo::OWNER, demo::REPO, pull.number, "alice", "APPROVED")
            .await;
        Ok::<_, anyhow::Error>(())
    };
    let args = pr_args(&world, "1.8.0", &[]);
    let run = world.run_json(&args, &[]);
    let (ran, reviewer) = tokio::join!(run, reviewer);
    reviewer?;
    let (code, report, err) = ran?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    ensure!(
        report["merge_commit_sha"] == world.head().await?.as_str(),
        "{report}"
    );
    Ok(())
}

/// A deploy whose pods never start is rolled back through a second pull request, merged the same way.
#[tokio::test]
async fn a_failed_deploy_is_rolled_back_by_pull_request() -> Result<()> {
    let world = World::start(timing()).await?;
    protect(&world, Protection::default())?;
    let (code, report, err) = world
        .run_json(
            &pr_args(&world, "broken-3", &["--rollback-on-failure"]),
            &[],
        )
        .await?;
    ensure!(
        code == 1 && report["result"] == "rolled_back",
        "{report}\n{err}"
    );
    ensure!(
        err.lines()
            .last()
            .unwrap_or_default()
            .ends_with("rolled back to 1.0.0 (healthy)"),
        "{err}"
    );
    let all = pulls(&world);
    ensure!(all.len() == 2 && all.iter().all(|p| p.merged), "{all:?}");
    ensure!(
        all[1]
            .title
            .starts_with("rollback registry.example.com/demo/web to 1.0.0 after the failed deploy"),
        "{all:?}"
    );
    ensure!(world
        .kustomization_at(demo::BRANCH)
        .await?
        .contains("newTag: \"1.0.0\""));
    ensure!(
        world.ready_tags() == vec!["1.0.0"; 3],
        "{:?}",
        world.ready_tags()
    );
    Ok(())
}

/// An unknown label is an input error found before anything is written: no branch, no pull request.
#[tokio::test]
async fn an_unknown_label_writes_nothing() -> Result<()> {
    let world = World::start(timing()).await?;
    world
        .sandbox
        .gitea()
        .add_label(demo::OWNER, demo::REPO, "deploy");
    let (code, report, err) = world
        .run_json(
            &pr_args(&world, "1.9.0", &["--pr-labels", "deploy,prod"]),
            &[],
        )
        .await?;
    ensure!(
        code == 2 && report["result"] == "invalid_input",
        "{report}\n{err}"
    );
    ensure!(
        error(&report).contains("labels: \"prod\" is not a label of demo/gitops (it has: deploy)"),
        "{report}"
    );
    let dir = world.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO);
    let branches =
        gitops_sandbox::git::Git::new(&dir, ["for-each-ref", "--format=%(refname)", "refs/heads/"])
            .text()
            .await?;
    ensure!(branches.trim() == "refs/heads/main", "{branches}");
    ensure!(pulls(&world).is_empty());
    // With a known label the pull request carries it.
    let (code, report, err) = world
        .run_json(&pr_args(&world, "1.9.0", &["--pr-labels", "deploy"]), &[])
        .await?;
    ensure!(code == 0, "{report}\n{err}");
    ensure!(pulls(&world)[0].labels == 1);
    Ok(())
}

const IMAGES: usize = 16;

/// 16 pipelines deploy 16 images of one kustomization through pull requests at once: every change
/// is merged exactly once, none is lost, no pull request is left open.
#[tokio::test]
async fn sixteen_concurrent_pull_request_deploys_lose_nothing() -> Result<()> {
    let world = World::start(timing()).await?;
    let gitea = world.sandbox.gitea();
    gitea.create_repo("ops", "many", "main").await?;
    let mut text =
        String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n");
    for i in 0..IMAGES {
        text.push_str(&format!(
            "- name: registry.example.com/img-{i:02}\n  newTag: 1.0.0\n"
        ));
    }
    gitea
        .commit_files(
            "ops",
            "many",
            "main",
            &[("kustomization.yaml", &text)],
            "seed",
        )
        .await?;
    gitea.protect_branch_with("ops", "many", "main", Protection::default())?;
    let runs = (0..IMAGES).map(|i| {
        let args: Vec<String> = [
            "--server-url",
            world.sandbox.gitea_url(),
            "--repository",
            "ops/many",
            "--path",
            ".",
            "--image",
            &format!("registry.example.com/img-{i:02}"),
            "--tag",
            "2.0.0",
            "--mode",
            "pull_request",
            "--merge-poll-interval",
            "300ms",
            "--timeout",
            "80s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let world = &world;
        async move { world.run_json(&args, &[]).await }
    });
    let results: Vec<Result<(i32, Value, String)>> = futures::future::join_all(runs).await;
    for (i, r) in results.into_iter().enumerate() {
        let (code, report, err) = r?;
        ensure!(
            code == 0 && report["result"] == "success",
            "img-{i:02}: {report}\n{err}"
        );
    }
    let head = gitea
        .branch_head("ops", "many", "main")
        .await?
        .context("main")?;
    let file = String::from_utf8(
        gitea
            .read_file("ops", "many", &head, "kustomization.yaml")
            .await?
            .context("the file")?,
    )?;
    ensure!(
        file.matches("newTag: 2.0.0").count() == IMAGES,
        "lost an update:\n{file}"
    );
    let all = gitea.pulls("ops", "many");
    ensure!(all.iter().all(|p| !p.open), "left open: {all:?}");
    for i in 0..IMAGES {
        let image = format!("img-{i:02} ");
        let merged = all
            .iter()
            .filter(|p| p.merged && p.title.contains(&image))
            .count();
        ensure!(merged == 1, "img-{i:02} merged {merged} times: {all:?}");
    }
    Ok(())
}

/// A pull request that conflicts with a moved base is never merged textually: the change is
/// re-applied to the new base on a new branch, and the old pull request is closed pointing at it.
#[tokio::test]
async fn a_conflicting_pull_request_is_recreated_from_the_new_base() -> Result<()> {
    let world = World::start(timing()).await?;
    protect(&world, Protection::default())?;
    let args = pr_args(&world, "2.0.0", &["--merge", "none"]);
    let (code, first, err) = world.run_json(&args, &[]).await?;
    ensure!(code == 0 && first["pr_number"] == 1, "{first}\n{err}");
    // Someone changes the same line on the base (and a comment next to it): #1 now conflicts.
    let text = world.kustomization_at(demo::BRANCH).await?;
    let moved = text.replace(
        "newTag: \"1.0.0\" # set by CI",
        "newTag: \"1.0.1\" # hotfix",
    );
    ensure!(moved != text);
    world
        .commit(&[(demo::KUSTOMIZATION, &moved)], "hotfix")
        .await?;

    let (code, report, err) = world.run_json(&pr_args(&world, "2.0.0", &[]), &[]).await?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    ensure!(
        err.contains("pull request #1 conflicts with main; re-applying the change"),
        "{err}"
    );
    ensure!(
        report["pr_number"] == 2 && report["previous_tag"] == "1.0.1",
        "{report}"
    );
    let all = pulls(&world);
    ensure!(!all[0].open && !all[0].merged, "{all:?}");
    ensure!(
        all[0]
            .comments
            .iter()
            .any(|c| c.contains("re-applied to the new main in #2")),
        "{all:?}"
    );
    ensure!(all[1].merged, "{all:?}");
    // The hotfix's comment is kept: the edit was re-applied, not merged over.
    let file = world.kustomization_at(demo::BRANCH).await?;
    ensure!(file.contains("newTag: \"2.0.0\" # hotfix"), "{file}");
    ensure!(
        world.ready_tags() == vec!["2.0.0"; 3],
        "{:?}",
        world.ready_tags()
    );

    // The same with `merge: now`: the re-created pull request is new to the forge, which refuses
    // its first merge while it test-merges it ("Please try again later"); that is no final refusal.
    let (code, first, err) = world
        .run_json(&pr_args(&world, "2.1.0", &["--merge", "none"]), &[])
        .await?;
    ensure!(code == 0 && first["pr_number"] == 3, "{first}\n{err}");
    let text = world.kustomization_at(demo::BRANCH).await?;
    let moved = text.replace("newTag: \"2.0.0\" # hotfix", "newTag: \"2.0.1\" # hotfix 2");
    ensure!(moved != text);
    world
        .commit(&[(demo::KUSTOMIZATION, &moved)], "hotfix 2")
        .await?;
    let (code, report, err) = world
        .run_json(&pr_args(&world, "2.1.0", &["--merge", "now"]), &[])
        .await?;
    ensure!(
        code == 0 && report["result"] == "success" && report["pr_number"] == 4,
        "{report}\n{err}"
    );
    let file = world.kustomization_at(demo::BRANCH).await?;
    ensure!(file.contains("newTag: \"2.1.0\" # hotfix 2"), "{file}");
    Ok(())
}

/// The same flow on the older Gitea and on Forgejo, whose answers differ (1.22 merges a passing pull
/// request at once with 200; Forgejo wraps refusals in `not allowed to merge [reason: …]` and answers a
/// `null` combined status), and over the git transport.
#[tokio::test]
async fn pull_requests_work_on_every_profile_and_over_git() -> Result<()> {
    let world = World::start(timing()).await?;
    for (profile, transport, tag) in [
        ("gitea-1.22", "api", "3.1.0"),
        ("forgejo-12", "api", "3.2.0"),
        ("gitea-1.25", "git", "3.3.0"),
    ] {
        world.sandbox.gitea().set_profile(
            gitops_sandbox::profile::GiteaProfile::named(profile).context("a profile")?,
        );
        protect(&world, checks(&["ci/test"]))?;
        let ci = async {
            let (_, head) = open_pull(&world, tag).await?;
            post_status(&world, &head, "success", "ci/test", "ok").await?;
            Ok::<_, anyhow::Error>(head)
        };
        let mut args = pr_args(&world, tag, &[]);
        let at = args
            .iter()
            .position(|a| a == "--transport")
            .context("--transport")?;
        args[at + 1] = transport.into();
        let run = world.run_json(&args, &[]);
        let (ran, ci) = tokio::join!(run, ci);
        let (code, report, err) = ran?;
        let head = ci?;
        ensure!(
            code == 0 && report["result"] == "success",
            "{profile}: {report}\n{err}"
        );
        ensure!(report["commit_sha"] == head.as_str(), "{profile}: {report}");
        ensure!(
            report["merge_commit_sha"] == world.head().await?.as_str(),
            "{profile}: {report}"
        );
        ensure!(
            world.ready_tags() == vec![tag; 3],
            "{profile}: {:?}",
            world.ready_tags()
        );

        // A refusal in the profile's words, with what we saw.
        protect(
            &world,
            Protection {
                required_approvals: 1,
                ..Protection::default()
            },
        )?;
        let refused = format!("{tag}-1");
        let (code, report, err) = world
            .run_json(&pr_args(&world, &refused, &["--merge", "now"]), &[])
            .await?;
        let reason = if profile == "gitea-1.25" {
            "Does not have enough approvals".to_owned()
        } else {
            "not allowed to merge [reason: Does not have enough approvals]".to_owned()
        };
        ensure!(
            code == 1 && report["phase"] == "merge",
            "{profile}: {report}\n{err}"
        );
        ensure!(
            err.contains(&format!(
                "cannot be merged now: {reason} (approvals: 0 of 1 required)"
            )),
            "{profile}: {err}"
        );
    }
    Ok(())
}

/// `run` arguments for GitHub's API (the sandbox serves GitHub Enterprise Server's shape at
/// `/api/v3` and `/api/graphql`); the branch goes over git.
fn github_args(world: &World, tag: &str, extra: &[&str]) -> Vec<String> {
    let mut more = vec!["--forge", "github"];
    more.extend_from_slice(extra);
    let mut args = pr_args(world, tag, &more);
    let at = args
        .iter()
        .position(|a| a == "--transport")
        .expect("--transport");
    args[at + 1] = "git".into();
    args
}

/// The same deploys through GitHub's API: auto-merge over GraphQL once the required check passes,
/// a squash merge at once, a re-run reusing its pull request, labels by name.
#[tokio::test]
async fn github_pull_requests_deploy_the_same_way() -> Result<()> {
    let world = World::start(timing()).await?;
    protect(&world, checks(&["ci/test"]))?;
    world
        .sandbox
        .gitea()
        .add_label(demo::OWNER, demo::REPO, "deploy");
    let ci = async {
        let (pull, head) = open_pull(&world, "4.1.0").await?;
        scheduled(&world, pull.number).await?;
        ensure!(
            pulls(&world)
                .iter()
                .any(|p| p.number == pull.number && p.open),
            "merged before its check passed"
        );
        post_status(&world, &head, "success", "ci/test", "ok").await?;
        Ok::<_, anyhow::Error>(head)
    };
    let args = github_args(&world, "4.1.0", &["--pr-labels", "deploy"]);
    let run = world.run_json(&args, &[]);
    let (ran, ci) = tokio::join!(run, ci);
    let (code, report, err) = ran?;
    let head = ci?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let merged = world.head().await?;
    ensure!(
        report["commit_sha"] == head.as_str()
            && report["merge_commit_sha"] == merged.as_str()
            && report["synced_revision"] == merged.as_str(),
        "{report}"
    );
    ensure!(
        report["pr_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/demo/gitops/pull/1")),
        "{report}"
    );
    ensure!(
        err.contains("will merge (merge) when its required checks succeed"),
        "{err}"
    );
    ensure!(parents(&world, &merged).await? == 2 && is_ancestor(&world, &head, &merged).await?);
    ensure!(pulls(&world)[0].labels == 1, "{:?}", pulls(&world));
    // GitHub's merge cannot delete the head branch: the deploy does, once merged.
    let branch = report["pr_branch"].as_str().unwrap_or_default().to_owned();
    ensure!(
        !branch.is_empty()
            && world
                .sandbox
                .gitea()
                .branch_head(demo::OWNER, demo::REPO, &branch)
                .await?
                .is_none(),
        "the merged branch {branch:?} is left: {report}"
    );
    ensure!(
        world.ready_tags() == vec!["4.1.0"; 3],
        "{:?}",
        world.ready_tags()
    );

    // Squash, merged at once: nothing blocks it, so GitHub refuses to schedule ("clean status").
    protect(&world, Protection::default())?;
    let args = github_args(&world, "4.2.0", &["--merge-style", "squash"]);
    let (code, report, err) = world.run_json(&args, &[]).await?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let merged = world.head().await?;
    ensure!(
        report["merge_commit_sha"] == merged.as_str() && parents(&world, &merged).await? == 1,
        "{report}"
    );
    ensure!(world
        .kustomization_at(&merged)
        .await?
        .contains("newTag: \"4.2.0\""));

    // merge: none, twice: one pull request.
    let args = github_args(&world, "4.3.0", &["--merge", "none"]);
    let (code, first, err) = world.run_json(&args, &[]).await?;
    ensure!(code == 0 && first["pr_number"] == 3, "{first}\n{err}");
    let (code, again, err) = world.run_json(&args, &[]).await?;
    ensure!(code == 0 && again["pr_number"] == 3, "{again}\n{err}");
    ensure!(err.contains("reusing the open pull request #3"), "{err}");
    ensure!(pulls(&world).iter().filter(|p| p.open).count() == 1);
    no_token(&world, &[&err, &again.to_string()])
}
