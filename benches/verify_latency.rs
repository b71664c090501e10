//! Latency of the Argo CD wait: time from the sandbox reaching the ready state to the exit of
//! `gitops-deploy wait`, over N runs, streaming and polling side by side in one run.
//!
//! "Ready" is the first sandbox state for which the project's own predicate
//! (`argocd::verdict::app_verdict`) says `Ready`: the app at our commit, `Synced`, `Healthy`, no
//! pending operation, the operation `Succeeded`, `reconciledAt ≥ finishedAt`. A watcher inside this
//! process sees each sandbox state change as it is published, records that instant, and the
//! child's exit instant is taken when `wait()` returns.
//!
//! Run: `cargo bench --bench verify_latency` (`VERIFY_BENCH_RUNS=N` to change the 50 runs).
//! Prints a Markdown table for BENCHMARKS.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{World, APP};
use gitops_deploy::argocd::models::Application;
use gitops_deploy::argocd::verdict::{app_verdict, AppSnapshot, Target, VerdictState};
use gitops_sandbox::argocd::ArgoCd;

/// Waits until the sandbox's app is ready for `sha`; returns the instant it first was.
async fn ready_at(argo: ArgoCd, sha: String) -> Result<Instant> {
    let mut changes = argo.changes();
    let target = Target::new(&sha);
    loop {
        let json = argo.app_json(APP).map_err(|e| anyhow::anyhow!("{e}"))?;
        let app: Application = serde_json::from_value(json)?;
        let snap = AppSnapshot { app, tree: None };
        let v = app_verdict(
            &snap,
            &target,
            &VerdictState::default(),
            Duration::from_secs(30),
            tokio::time::Instant::now(),
        );
        if v.is_ready() {
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
    mode: &str,
    runs: usize,
    tag_prefix: &str,
) -> Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(runs);
    for i in 0..runs {
        let sha = world.commit_tag(&format!("{tag_prefix}.{i}")).await?;
        let ready = tokio::spawn(ready_at(world.argo.clone(), sha.clone()));
        let mut cmd = world.cli("wait");
        cmd.args([
            "--commit",
            &sha,
            "--argocd-server",
            &world.argo_url,
            "--argocd-app",
            APP,
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
        let stream = measure(&world, "stream", runs, "3.1").await?;
        let poll = measure(&world, "poll", runs, "3.2").await?;
        println!("| watch | runs | p50 | p90 | p99 | max |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for (name, d) in [("stream", &stream), ("poll (2 s)", &poll)] {
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
