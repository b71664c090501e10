//! Publish benchmark (see BENCHMARKS.md): time to publish one image change to a large synthetic GitOps
//! repository served by the sandbox, with the `api` transport, the `git` transport and the naive baseline
//! (full `git clone` of the branch + edit + commit + push), side by side in one run; `api` on a 100-file
//! repository; and publish latency p50/p99 of 32 concurrent runs (16 per transport).
//!
//! Run: `cargo run --release --example publish_bench` (or without `--release`; the report says which).
//! Options via env: `BENCH_FILES` (default 20000), `BENCH_COMMITS` (2000), `BENCH_MB` (104: random bytes
//! spread over the history, so the pack cannot be compressed below it), `BENCH_REPS` (5),
//! `BENCH_API_REPS` (21: the api-only runs alternating between the two repositories).

// Only the publish part: an example has no `CARGO_BIN_EXE_*` for the world part.
#[path = "../tests/support/publish.rs"]
mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use base64::Engine as _;
use gitops_deploy::forge::gitea;
use gitops_deploy::publish;
use gitops_deploy::report::Report;
use gitops_deploy::secret::Masker;
use gitops_deploy::secret::Secret;
use gitops_sandbox::{Sandbox, SandboxConfig};
use support::*;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The overlay every timed run edits.
const TARGET: &str = "apps/app-0007/overlays/prod";

/// Writes a repository with `files` files in its tip and `commits` commits whose history carries `mb`
/// megabytes of random (incompressible) bytes, straight into the bare repository with `git fast-import`.
fn generate(dir: &Path, files: usize, commits: usize, mb: usize) -> Result<()> {
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .spawn()
        .context("start git fast-import")?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, child.stdin.take().unwrap());
    let mut random = std::fs::File::open("/dev/urandom")?;
    let mut t = 1_700_000_000u64;
    let mut commit = |w: &mut dyn Write,
                      msg: &str,
                      ops: &mut dyn FnMut(&mut dyn Write) -> Result<()>|
     -> Result<()> {
        t += 60;
        writeln!(
            w,
            "commit refs/heads/main\ncommitter Bench <bench@example.invalid> {t} +0000"
        )?;
        writeln!(w, "data {}\n{msg}", msg.len())?;
        ops(w)?;
        writeln!(w)?;
        Ok(())
    };
    let inline = |w: &mut dyn Write, path: &str, data: &[u8]| -> Result<()> {
        writeln!(w, "M 100644 inline {path}\ndata {}", data.len())?;
        w.write_all(data)?;
        writeln!(w)?;
        Ok(())
    };
    // The tip's layout: apps/app-NNNN/{base: 4 files, overlays/{dev,staging,prod}: 2 files each}.
    let apps = files.div_ceil(10);
    commit(&mut w, "initial layout", &mut |w| {
        let mut n = 0;
        for a in 0..apps {
            let app = format!("apps/app-{a:04}");
            let mut put = |w: &mut dyn Write, p: String, text: String| -> Result<()> {
                if n < files {
                    inline(w, &p, text.as_bytes())?;
                    n += 1;
                }
                Ok(())
            };
            put(
                w,
                format!("{app}/base/kustomization.yaml"),
                "resources:\n  - deployment.yaml\n  - service.yaml\n  - configmap.yaml\n".into(),
            )?;
            put(w, format!("{app}/base/deployment.yaml"), format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{a:04}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/team/app-{a:04}:0.0.0\n"))?;
            put(w, format!("{app}/base/service.yaml"), format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: app-{a:04}\nspec:\n  ports:\n    - port: 80\n"))?;
            put(w, format!("{app}/base/configmap.yaml"), format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{a:04}\ndata:\n  LOG_LEVEL: info\n"))?;
            for env in ["dev", "staging", "prod"] {
                put(w, format!("{app}/overlays/{env}/kustomization.yaml"), format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\npatches:\n  - path: patch.yaml\nimages:\n  - name: registry.example.com/team/app-{a:04}\n    newTag: 0.0.0\n"))?;
                put(w, format!("{app}/overlays/{env}/patch.yaml"), format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{a:04}\nspec:\n  replicas: 2\n"))?;
            }
        }
        Ok(())
    })?;
    // History: each commit rewrites one of 100 asset files with fresh random bytes.
    let per_commit = (mb << 20) / commits.max(2).saturating_sub(1).max(1);
    let mut buf = vec![0u8; per_commit];
    for c in 1..commits {
        random.read_exact(&mut buf)?;
        commit(&mut w, &format!("update asset {c}"), &mut |w| {
            inline(w, &format!("assets/blob-{:03}.bin", c % 100), &buf)
        })?;
    }
    writeln!(w, "done")?;
    w.flush()?;
    drop(w);
    ensure!(child.wait()?.success(), "git fast-import failed");
    Ok(())
}

fn size_pack_mib(dir: &Path) -> f64 {
    let out = git(dir, &["count-objects", "-v"]);
    let kib: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("size-pack: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The naive baseline: full clone of the branch, edit, commit, push (token in env config, as ours).
fn baseline(server: &str, repo: &str, token: &str, tag: &str) -> Result<Duration> {
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let header = format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x:{token}"))
    );
    let run = |cwd: &Path, args: &[&str]| -> Result<()> {
        let out = Command::new("git")
            .current_dir(cwd)
            .args(args)
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", &header)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()?;
        ensure!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    let url = format!("{server}/{OWNER}/{repo}.git");
    run(
        tmp.path(),
        &[
            "clone",
            "--quiet",
            "--single-branch",
            "--branch",
            "main",
            &url,
            "w",
        ],
    )?;
    let w = tmp.path().join("w");
    let file = w.join(TARGET).join("kustomization.yaml");
    let text = std::fs::read_to_string(&file)?;
    let edited: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("newTag:") {
                format!("    newTag: {tag}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(&file, edited)?;
    run(
        &w,
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@example.invalid",
            "commit",
            "--quiet",
            "-am",
            "deploy [skip ci]",
        ],
    )?;
    run(&w, &["push", "--quiet", "origin", "HEAD:main"])?;
    Ok(started.elapsed())
}

async fn ours(
    server: &str,
    repo: &str,
    token: &str,
    transport: &str,
    tag: &str,
) -> Result<Duration> {
    let config = config(
        server,
        repo,
        token,
        TARGET,
        "registry.example.com/team/app-0007",
        tag,
        transport,
    );
    let started = Instant::now();
    let out = publish::run(&config, &Report::capture(Masker::new()).0).await?;
    ensure!(out.changed, "nothing changed");
    Ok(started.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> Result<()> {
    let files = env_num("BENCH_FILES", 20_000);
    let commits = env_num("BENCH_COMMITS", 2_000);
    let mb = env_num("BENCH_MB", 104);
    let reps = env_num("BENCH_REPS", 5);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    let server = sandbox.gitea_url().to_owned();
    let token = sandbox.token().to_owned();

    let started = Instant::now();
    for (name, n, c, m) in [("large", files, commits, mb), ("small", 100, 10, 0)] {
        sandbox.gitea().create_repo(OWNER, name, "main").await?;
        let dir = repo_dir(&sandbox, name);
        generate(&dir, n, c, m)?;
        // What Gitea configures for every repository (partial clone support).
        git(&dir, &["config", "uploadpack.allowFilter", "true"]);
        git(&dir, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
    }
    let large = repo_dir(&sandbox, "large");
    let tip_files = git(&large, &["ls-tree", "-r", "--name-only", "refs/heads/main"])
        .lines()
        .count();
    let history = git(&large, &["rev-list", "--count", "refs/heads/main"])
        .trim()
        .to_owned();
    println!(
        "generated in {:.1}s: large repo {tip_files} files, {history} commits, {:.0} MiB packed ({profile} build)",
        started.elapsed().as_secs_f64(),
        size_pack_mib(&large)
    );

    let (mut api, mut via_git, mut base, mut small) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..reps {
        // Interleaved, so that every method sees the same machine load.
        api.push(ours(&server, "large", &token, "api", &format!("1.{r}.0")).await?);
        via_git.push(ours(&server, "large", &token, "git", &format!("2.{r}.0")).await?);
        let (s, t, tag) = (server.clone(), token.clone(), format!("3.{r}.0"));
        base.push(tokio::task::spawn_blocking(move || baseline(&s, "large", &t, &tag)).await??);
        small.push(ours(&server, "small", &token, "api", &format!("4.{r}.0")).await?);
    }
    let (api, via_git, base, small) = (median(api), median(via_git), median(base), median(small));
    println!("| method | repo | median of {reps} | vs baseline |");
    println!("| --- | --- | ---: | ---: |");
    println!(
        "| baseline (full clone + commit + push) | large | {:.0} ms | 1× |",
        ms(base)
    );
    println!(
        "| git (depth 1, blob:none, sparse) | large | {:.0} ms | {:.1}× |",
        ms(via_git),
        ms(base) / ms(via_git)
    );
    println!(
        "| api (contents API) | large | {:.0} ms | {:.1}× |",
        ms(api),
        ms(base) / ms(api)
    );
    println!(
        "| api (contents API) | small (100 files) | {:.0} ms | |",
        ms(small)
    );
    println!(
        "api large vs small: {:+.1}%",
        (ms(api) / ms(small) - 1.0) * 100.0
    );

    // The size comparison on its own: api publishes alternating between the two repositories, with no
    // baseline clone in between to disturb them, many times.
    let api_reps = env_num("BENCH_API_REPS", 21);
    let (mut large_runs, mut small_runs) = (Vec::new(), Vec::new());
    for r in 0..api_reps {
        large_runs.push(ours(&server, "large", &token, "api", &format!("5.{r}.0")).await?);
        small_runs.push(ours(&server, "small", &token, "api", &format!("6.{r}.0")).await?);
    }
    let (large_med, small_med) = (median(large_runs), median(small_runs));
    println!(
        "api alone, alternating, median of {api_reps}: large {:.1} ms, small {:.1} ms, {:+.1}%",
        ms(large_med),
        ms(small_med),
        (ms(large_med) / ms(small_med) - 1.0) * 100.0
    );

    // Where the api time goes: each request of one publish, timed alone on both repositories.
    let client = gitea::Client::builder(server.as_str())
        .token(Some(Secret::new(&token)))
        .build()?;
    println!("| request (median of {reps}) | small | large |");
    println!("| --- | ---: | ---: |");
    let file = format!("{TARGET}/kustomization.yaml");
    let mut rows: Vec<(&str, Vec<Duration>, Vec<Duration>)> = [
        "GET branch",
        "GET contents (file)",
        "POST contents (1 file)",
    ]
    .into_iter()
    .map(|n| (n, Vec::new(), Vec::new()))
    .collect();
    for r in 0..reps {
        for (col, name) in [(1, "small"), (2, "large")] {
            let repo = client.repo(OWNER, name);
            let mut times = Vec::new();
            let t = Instant::now();
            repo.branch("main").send().await?;
            times.push(t.elapsed());
            let t = Instant::now();
            let got = repo.contents(&file).at_ref("main").get().await?;
            times.push(t.elapsed());
            let gitea::models::Contents::File(f) = got else {
                anyhow::bail!("not a file")
            };
            let text = String::from_utf8(f.decoded().unwrap()?)?;
            let edited: String = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("newTag:") {
                        format!("    newTag: 9.{r}.0")
                    } else {
                        l.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
            let t = Instant::now();
            repo.change_files("bench [skip ci]")
                .branch("main")
                .update(&file, edited.as_bytes(), &f.sha)
                .send()
                .await?;
            times.push(t.elapsed());
            for (row, d) in rows.iter_mut().zip(times) {
                if col == 1 {
                    row.1.push(d)
                } else {
                    row.2.push(d)
                }
            }
        }
    }
    for (name, small, large) in rows {
        println!(
            "| {name} | {:.0} ms | {:.0} ms |",
            ms(median(small)),
            ms(median(large))
        );
    }

    // 32 concurrent runs, 16 per transport, each setting its own image in one shared file.
    let k = many_images_kustomization(32);
    seed_repo(
        &sandbox,
        "busy",
        &[("apps/team/overlays/prod/kustomization.yaml", &k)],
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let transport = if i % 2 == 0 { "api" } else { "git" };
        let c = config(
            &server,
            "busy",
            &token,
            "apps/team/overlays/prod",
            &app_image(i),
            &format!("1.0.{i}"),
            transport,
        );
        tasks.push(tokio::spawn(async move {
            let out = publish::run(&c, &Report::capture(Masker::new()).0).await;
            (transport, out)
        }));
    }
    let mut lat = Vec::new();
    let mut attempts = 0;
    for t in tasks {
        let (transport, out) = t.await?;
        let out = out.with_context(|| format!("{transport} run"))?;
        attempts += out.attempts;
        lat.push(out.elapsed);
    }
    lat.sort();
    println!(
        "32 concurrent: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, {attempts} attempts in total",
        ms(lat[15]),
        ms(lat[31]),
        ms(lat[31])
    );
    Ok(())
}
