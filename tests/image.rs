//! The shipped artifact, as users run it. The repository's own Dockerfile is built with buildah from
//! local stand-ins of its official base images (`docker/standins.sh`), released with the release
//! workflows' script (`scripts/release-image.sh build` → `push`) to a real registry on loopback (Debian's
//! `docker-registry`), pulled back **by digest** into an empty store, and run the way a runner runs a
//! Docker action: the entrypoint with no arguments, `INPUT_*` and the runner's variables, the
//! file-command directory and the workspace mounted at Gitea's paths.
//!
//! Needs buildah, debootstrap, docker-registry and skopeo: `scripts/test.sh` installs them; a missing
//! one fails here with the command that installs it.

mod support;
use support::runner;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gitops_sandbox::Sandbox;
use runner::{outputs_of, world, Deploy};

/// The name the release is pushed under (on the loopback registry).
const REPO_PATH: &str = "ops/gitops-deploy";
/// A host name for the sandbox, resolved through the container's /etc/hosts only.
const HOST: &str = "gitea.sandbox.test";

/// The released image, pulled by digest into a store of its own.
struct Released {
    store: Store,
    /// `127.0.0.1:PORT/ops/gitops-deploy@sha256:…`
    reference: String,
    entrypoint: Vec<String>,
}

/// A buildah storage location (vfs: no kernel overlay support needed).
struct Store {
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Store {
    fn at(root: PathBuf) -> Store {
        Store { root, _temp: None }
    }

    fn temporary() -> Store {
        let temp = tempfile::tempdir().unwrap();
        Store {
            root: temp.path().to_owned(),
            _temp: Some(temp),
        }
    }

    /// The global options that select this store, as `BUILDAH_ARGS` for the scripts.
    fn args(&self) -> String {
        format!(
            "--root {}/root --runroot {}/run --storage-driver vfs",
            self.root.display(),
            self.root.display()
        )
    }

    fn buildah(&self) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.args(self.args().split(' '));
        cmd
    }

    /// `buildah <args>`, which must succeed; its trimmed stdout.
    fn run(&self, args: &[&str]) -> String {
        checked(self.buildah().args(args), &format!("buildah {}", args[0]))
    }
}

/// Runs `cmd`; panics with its output when it fails; returns trimmed stdout.
fn checked(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start ({e})"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Fails clearly when a tool the image tests need is missing.
fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "the image tests need `{tool}`, which is not installed: run the README's test command \
         (scripts/test.sh installs it), or `apt-get install {package}`"
    );
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A registry on loopback, stopped when dropped.
struct Registry {
    child: std::process::Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        // Ready when `GET /v2/` answers 200 (the Docker Registry HTTP API's version check).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if registry.v2_answers() {
                return registry;
            }
            assert!(
                Instant::now() < deadline,
                "the registry never answered /v2/"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn v2_answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(&self.host) else {
            return false;
        };
        let _ = write!(s, "GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host);
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds, pushes and pulls the image once per test process.
fn released() -> &'static Released {
    static IMAGE: OnceLock<Released> = OnceLock::new();
    IMAGE.get_or_init(|| {
        for (tool, package) in [
            ("buildah", "buildah"),
            ("debootstrap", "debootstrap"),
            ("docker-registry", "docker-registry"),
            ("skopeo", "skopeo"),
        ] {
            require(tool, package);
        }
        // The stand-ins (and buildah's layers) are kept between runs on this machine: a cache only.
        let build_store = Store::at(root().join("target").join("image-store"));
        checked(
            Command::new(root().join("docker/standins.sh"))
                .env("BUILDAH_ARGS", build_store.args())
                .env("STANDIN_CACHE", root().join("target").join("standins")),
            "docker/standins.sh",
        );
        let registry = Registry::start();
        let image = format!("{}/{REPO_PATH}", registry.host);
        // Behind a TLS-intercepting proxy the build reaches crates.io only with the proxy's CA: the
        // machine's local trust anchors, passed the way the Dockerfile documents.
        let local_cas = local_trust_anchors();
        let script = root().join("scripts/release-image.sh");
        let started = Instant::now();
        checked(
            Command::new(&script)
                .args(["build", &image, "v0.0.0-test"])
                .env("BUILDAH_ARGS", build_store.args())
                .env("PLATFORMS", "linux/amd64")
                .env("PULL", "never")
                .env("EXTRA_CA_CERTS", &local_cas),
            "release-image.sh build",
        );
        eprintln!("image: built in {:.0} s", started.elapsed().as_secs_f64());
        let pushed = checked(
            Command::new(&script)
                .args(["push", &image, "v0.0.0-test"])
                .env("BUILDAH_ARGS", build_store.args())
                .env("TLS_VERIFY", "false")
                .env_remove("GITHUB_OUTPUT"),
            "release-image.sh push",
        );
        let digest = pushed
            .lines()
            .find_map(|l| l.strip_prefix("digest="))
            .unwrap_or_else(|| panic!("push printed no digest: {pushed}"))
            .to_owned();
        let reference = format!("{image}@{digest}");
        // The build store keeps only the stand-ins: this build's list and images are in the registry
        // now, and would otherwise pile up run after run (40 MB each, plus untagged stage images).
        // A cache's housekeeping: its failure must not fail (and so rebuild) every image test.
        for cleanup in [
            vec!["manifest", "rm", &format!("{image}:v0.0.0-test")],
            vec!["rmi", "--prune"],
        ] {
            let _ = build_store.buildah().args(&cleanup).output();
        }

        // What the registry holds under that digest: an index naming the linux/amd64 image.
        let raw = checked(
            Command::new("skopeo").args([
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{reference}"),
            ]),
            "skopeo inspect",
        );
        let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let platforms: Vec<String> = index["manifests"]
            .as_array()
            .unwrap_or_else(|| panic!("not an image index: {raw}"))
            .iter()
            .map(|m| {
                let field = |k: &str| m["platform"][k].as_str().unwrap_or("?").to_owned();
                format!("{}/{}", field("os"), field("architecture"))
            })
            .collect();
        assert_eq!(platforms, ["linux/amd64"], "{raw}");

        // Pulled by digest into an empty store: what a runner's `docker://…@sha256:…` gets.
        let store = Store::temporary();
        store.run(&[
            "pull",
            "-q",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ]);
        let inspect: serde_json::Value =
            serde_json::from_str(&store.run(&["inspect", "--type", "image", &reference])).unwrap();
        let entrypoint: Vec<String> =
            serde_json::from_value(inspect["OCIv1"]["config"]["Entrypoint"].clone()).unwrap();
        let size = store.run(&["images", "--format", "{{.Size}}", &reference]);
        eprintln!("image: {reference}, {size}");
        drop(registry);
        Released {
            store,
            reference,
            entrypoint,
        }
    })
}

/// PEM text of the certificates in /usr/local/share/ca-certificates (Debian's place for local trust
/// anchors), empty when there are none.
fn local_trust_anchors() -> String {
    let mut pem = String::new();
    if let Ok(dir) = std::fs::read_dir("/usr/local/share/ca-certificates") {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "crt"))
        {
            pem.push_str(&std::fs::read_to_string(f).unwrap_or_default());
            pem.push('\n');
        }
    }
    pem
}

/// How a container run is set up besides the deploy's environment.
#[derive(Default)]
struct Container {
    /// Lines of the container's /etc/hosts.
    hosts: Vec<String>,
}

/// The sandbox world, started once the image is built: nothing of the tests runs beside the build
/// (with the four worlds started first, it took 338 s and 340 s here; after them, 277 s).
async fn world_after_the_build() -> (Sandbox, String) {
    tokio::task::spawn_blocking(released).await.unwrap();
    world().await
}

/// Runs the released image's entrypoint with `deploy`'s environment, as a runner runs a Docker action.
async fn run_in_image(deploy: &Deploy, container: Container) -> Output {
    let image = tokio::task::spawn_blocking(released).await.unwrap();
    let ctr = image.store.run(&["from", "-q", &image.reference]);
    let act = Path::new(runner::ACT_DIR);
    let workspace = Path::new(runner::WORKSPACE);
    let mut args: Vec<String> = [
        "run",
        "--isolation",
        "chroot",
        "--workingdir",
        runner::WORKSPACE,
    ]
    .map(String::from)
    .into();
    for (host, inside) in [(deploy.act_dir(), act), (deploy.workspace_dir(), workspace)] {
        args.push("-v".into());
        args.push(format!("{}:{}", host.display(), inside.display()));
    }
    let hosts = deploy.act_dir().parent().unwrap().join("hosts");
    let mut text = "127.0.0.1 localhost\n".to_owned();
    for line in &container.hosts {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&hosts, text).unwrap();
    args.extend([
        "--no-hosts".into(),
        "-v".into(),
        format!("{}:/etc/hosts:ro", hosts.display()),
    ]);
    // The sandbox's throwaway tokens reach buildah's argv here; a real runner passes them the same way
    // to `docker run -e`. The product itself never puts a secret on a command line.
    for (k, v) in deploy.env(act, workspace) {
        args.push("-e".into());
        args.push(format!("{k}={v}"));
    }
    args.push(ctr.clone());
    args.push("--".into());
    args.extend(image.entrypoint.iter().cloned());
    let store_args = image.store.args();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("buildah")
            .args(store_args.split(' '))
            .args(&args)
            .output()
            .expect("buildah runs");
        let _ = Command::new("buildah")
            .args(store_args.split(' '))
            .args(["rm", &ctr])
            .output();
        out
    })
    .await
    .unwrap()
}

/// The checks every successful deploy in the image must pass: exit 0, masks first, no secret after
/// them, the outputs of a deploy of `tag` whose commit is the branch head, and the summary.
async fn assert_deployed(sandbox: &Sandbox, deploy: &Deploy, out: &Output, commit_url_base: &str) {
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}; log:\n{log}", out.status);
    let lines: Vec<&str> = log.lines().collect();
    let first_other = lines
        .iter()
        .position(|l| !l.starts_with("::add-mask::"))
        .unwrap();
    for secret in deploy.secrets() {
        assert!(
            lines[..first_other].contains(&format!("::add-mask::{secret}").as_str()),
            "no mask for a secret before the first other line:\n{log}"
        );
    }
    runner::assert_no_secret(deploy, &lines[first_other..].join("\n"));
    runner::assert_no_secret(deploy, &String::from_utf8_lossy(&out.stdout));
    let outputs = outputs_of(&deploy.output_file());
    let get = |k: &str| outputs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let head = runner::head(sandbox).await;
    assert_eq!(get("result"), "success", "{log}");
    assert_eq!(get("changed"), "true");
    assert_eq!(get("commit_sha"), head);
    assert_eq!(
        get("commit_url"),
        format!("{commit_url_base}/demo/gitops/commit/{head}")
    );
    assert_eq!(get("synced_revision"), head);
    assert_eq!(get("health"), "Healthy");
    assert_eq!(get("previous_tag"), "1.0.0");
    let summary = std::fs::read_to_string(deploy.summary_file()).unwrap();
    assert!(
        summary.starts_with("### ✅ gitops-deploy: deployed ("),
        "{summary}"
    );
    runner::assert_no_secret(deploy, &summary);
}

/// `uses: docker://…` bypasses action.yml: no input defaults, so no `INPUT_TOKEN`. The token comes from
/// the environment the runner sets (Forgejo exports `GITHUB_TOKEN` and `FORGEJO_TOKEN`), is masked
/// first, and the deploy publishes over the contents API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_deploys_over_the_api_with_the_runners_token() {
    let (sandbox, source_sha) = world_after_the_build().await;
    let mut deploy = Deploy::new(&sandbox, "1.1.0", &source_sha);
    deploy.unset("INPUT_TOKEN");
    deploy.set("FORGEJO_ACTIONS", "true");
    deploy.set("GITHUB_TOKEN", sandbox.token());
    deploy.set("FORGEJO_TOKEN", sandbox.token());
    let out = run_in_image(&deploy, Container::default()).await;
    assert_deployed(&sandbox, &deploy, &out, sandbox.gitea_url()).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("publish: committed"), "{log}");
}

/// `transport: git` in the image: git, its https helper and their libraries are there; the sandbox is
/// reached by a host name that only the container's /etc/hosts knows (as a runner's `--add-host` or a
/// service container alias).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_deploys_over_git_by_host_name() {
    let (sandbox, source_sha) = world_after_the_build().await;
    let port = url::Url::parse(sandbox.gitea_url())
        .unwrap()
        .port()
        .unwrap();
    let server = format!("http://{HOST}:{port}");
    let mut deploy = Deploy::new(&sandbox, "1.1.0", &source_sha);
    deploy.set("INPUT_TRANSPORT", "git");
    deploy.set("INPUT_SERVER_URL", &server);
    deploy.set("GITHUB_SERVER_URL", &server);
    let out = run_in_image(
        &deploy,
        Container {
            hosts: vec![format!("127.0.0.1 {HOST}")],
        },
    )
    .await;
    assert_deployed(&sandbox, &deploy, &out, &server).await;
}

/// A Gitea behind https with a private CA: the CA is given as `server_ca` (a file in the workspace,
/// named relative to it), and both the contents API (`transport: auto` probes it first) and git
/// (`transport: git`) trust it. Without it, the same deploy fails on the certificate, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_deploys_over_tls_with_the_servers_ca() {
    let (sandbox, source_sha) = world_after_the_build().await;
    let front = sandbox.gitea_tls(&[HOST]).await.unwrap();
    let server = format!("https://{HOST}:{}", front.port());
    let hosts = || Container {
        hosts: vec![format!("127.0.0.1 {HOST}")],
    };

    // Without the CA: refused on the certificate, nothing written.
    let mut deploy = Deploy::new(&sandbox, "1.1.0", &source_sha);
    deploy.set("INPUT_SERVER_URL", &server);
    deploy.set("INPUT_TRANSPORT", "api");
    deploy.set("INPUT_TIMEOUT", "20s");
    let out = run_in_image(&deploy, hosts()).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.to_lowercase().contains("certificate"), "{log}");
    assert_eq!(runner::head(&sandbox).await, source_sha, "nothing written");

    // With the CA, over the API (the auto probe included), then over git.
    for (transport, tag) in [("auto", "1.1.0"), ("git", "1.2.0")] {
        let source = runner::head(&sandbox).await;
        let mut deploy = Deploy::new(&sandbox, tag, &source);
        std::fs::write(deploy.workspace_dir().join("gitea-ca.pem"), front.ca_pem()).unwrap();
        deploy.set("INPUT_SERVER_URL", &server);
        deploy.set("INPUT_SERVER_CA", "gitea-ca.pem");
        deploy.set("INPUT_TRANSPORT", transport);
        let out = run_in_image(&deploy, hosts()).await;
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{transport}: {log}");
        let outputs = outputs_of(&deploy.output_file());
        let get = |k: &str| outputs.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("result"), "success", "{transport}: {log}");
        assert_eq!(get("changed"), "true", "{transport}");
        assert!(
            runner::kustomization(&sandbox)
                .await
                .contains(&format!("newTag: \"{tag}\"")),
            "{transport}"
        );
    }
}

/// Invalid input in the image: exit 2 and the `::error::` line naming the inputs, before any network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_rejects_invalid_input_with_exit_2() {
    let (sandbox, source_sha) = world_after_the_build().await;
    let mut deploy = Deploy::new(&sandbox, "1.1.0", &source_sha);
    deploy.set("INPUT_IMAGE", "");
    deploy.set("INPUT_TIMEOUT", "soon");
    let out = run_in_image(&deploy, Container::default()).await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    let error = log.lines().find(|l| l.starts_with("::error ")).unwrap();
    assert!(
        error.contains("image") && error.contains("timeout"),
        "{error}"
    );
    let outputs = outputs_of(&deploy.output_file());
    assert!(outputs.contains(&("result".to_owned(), "invalid_input".to_owned())));
}

/// The release step `pin` changes only action.yml's `runs.image`, to the pushed digest.
#[test]
fn release_pin_changes_only_the_image_line() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("action.yml");
    let original = std::fs::read_to_string(root().join("action.yml")).unwrap();
    std::fs::write(&copy, &original).unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    checked(
        Command::new(root().join("scripts/release-image.sh"))
            .args(["pin", "gitea.example.com/ops/gitops-deploy", &digest])
            .env("ACTION_YML", &copy),
        "release-image.sh pin",
    );
    let pinned = std::fs::read_to_string(&copy).unwrap();
    let changed: Vec<(&str, &str)> = original
        .lines()
        .zip(pinned.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        changed,
        [(
            "  image: Dockerfile",
            format!("  image: docker://gitea.example.com/ops/gitops-deploy@{digest}").as_str()
        )]
    );
    assert_eq!(original.lines().count(), pinned.lines().count());
    // A digest that is not one is refused, the file untouched.
    let out = Command::new(root().join("scripts/release-image.sh"))
        .args(["pin", "gitea.example.com/ops/gitops-deploy", "latest"])
        .env("ACTION_YML", &copy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), pinned);
}
