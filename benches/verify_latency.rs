//! Latency of the Argo CD wait: time from the sandbox reaching the ready state to the exit of
//! `gitops-deploy wait`, over N runs, streaming and polling side by side in one run, and ten apps
//! waited for in parallel (ready: the last of the ten is).
//!
//! "Ready" is the first sandbox state for which the project's own predicate
//! (`argocd::verdict::app_verdict`) says `Ready`: the app at our commit, `Synced`, `Healthy`, no
//! pending operation, the operation `Succeeded`, `reconciledAt ≥ finishedAt`. A watcher inside this
//! process sees each sandbox state change as it is published, records that instant, and the
//! child's exit instant is taken when `wait()` returns.
//!
//! Run: `cargo bench --bench verify_latency` (`VERIFY_BENCH_RUNS=N` to change the 50 runs).
//! Prints a Markdown table for BENCHMARKS.md.

#[path = "../tests/support/mod.rs"]
mod support;
use support::world as common;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{World, APP};
use gitops_deploy::argocd::models::Application;
use gitops_deploy::argocd::verdict::{app_verdict, AppSnapshot, Target, VerdictState};
use gitops_sandbox::argocd::ArgoCd;

/// True when every app in `apps` is ready for `sha` now.
fn all_ready(argo: &ArgoCd, apps: &[String], sha: &str) -> Result<bool> {
    let target = Target::new(sha);
    for name in apps {
        let json = argo.app_json(name).map_err(|e| anyhow::anyhow!("{e}"))?;
        let app: Application = serde_json::from_value(json)?;
        let snap = AppSnapshot { app, tree: None };
        let v = app_verdict(
            &snap,
            &target,
            &VerdictState::default(),
            Duration::from_secs(30),
            tokio::time::Instant::now(),
        );
        if !v.is_ready() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Waits until every app in `apps` is ready for `sha`; returns the instant the last one first was
/// (as seen by this watcher: with ten apps to read per change it may see it a little late).
async fn ready_at(argo: ArgoCd, apps: Vec<String>, sha: String) -> Result<Instant> {
    let mut changes = argo.changes();
    loop {
        if all_ready(&argo, &apps, &sha)? {
            return Ok(Instant::now());
        }
        changes.changed().await.context("the sandbox stopped")?;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn measure(
    world: &World,
    apps: &[String],
    mode: &str,
    runs: usize,
    tag_prefix: &str,
) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(runs);
    for i in 0..runs {
        let sha = world.commit_tag(&format!("{tag_prefix}.{i}")).await?;
        let ready = tokio::spawn(ready_at(world.argo.clone(), apps.to_vec(), sha.clone()));
        let mut cmd = world.cli("wait");
        cmd.args([
            "--commit",
            &sha,
            "--argocd-server",
            &world.argo_url,
            "--argocd-app",
            &apps.join(","),
            "--argocd-watch",
            mode,
            "--timeout",
            "60s",
        ])
        .stderr(std::process::Stdio::null());
        let status = cmd.status().await?;
        let exited = Instant::now();
        if !status.success() {
            bail!("run {i} ({mode}) failed: {status}");
        }
        // Exiting while an app is not ready would be going green too early; exiting before the
        // watcher noticed a state that is ready is its own lag, counted as no latency.
        if !all_ready(&world.argo, apps, &sha)? {
            bail!("run {i} ({mode}): exited while an app was not ready for {sha}");
        }
        let ready = tokio::time::timeout(Duration::from_secs(5), ready)
            .await
            .context("the sandbox never reached the ready state")???;
        out.push(exited.saturating_duration_since(ready));
    }
    out.sort();
    Ok(out)
}

fn main() -> Result<()> {
    let runs: usize = std::env::var("VERIFY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut timing = common::timing();
        timing.pod_start_delay = Duration::from_millis(50);
        timing.sync_delay = Duration::from_millis(100);
        timing.stale_health = Duration::from_millis(200);
        let world = World::start(timing).await?;
        let one = vec![APP.to_owned()];
        let stream = measure(&world, &one, "stream", runs, "3.1").await?;
        let poll = measure(&world, &one, "poll", runs, "3.2").await?;
        // Ten apps following the same overlay, waited for in parallel.
        let mut ten = one.clone();
        for i in 1..10 {
            let name = format!("web-copy-{i}");
            world.argo.add_app(world.app_spec(&name, true), true)?;
            ten.push(name);
        }
        let apps10 = measure(&world, &ten, "stream", runs, "3.3").await?;
        println!("| watch | runs | p50 | p90 | p99 | max |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for (name, d) in [
            ("stream", &stream),
            ("poll (2 s)", &poll),
            ("stream, 10 apps in parallel", &apps10),
        ] {
            println!(
                "| {name} | {} | {} ms | {} ms | {} ms | {} ms |",
                d.len(),
                percentile(d, 0.5).as_millis(),
                percentile(d, 0.9).as_millis(),
                percentile(d, 0.99).as_millis(),
                d.last().copied().unwrap_or_default().as_millis()
            );
        }
        Ok(())
    })
}
