//! The sandbox core and its Gitea double, checked against the real `git` client, real HTTP and the
//! official Gitea swagger schemas.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use gitops_sandbox::eventually::eventually;
use gitops_sandbox::faults::{FaultKind, FaultRule, Server};
use gitops_sandbox::{demo, Sandbox, SandboxConfig};
use serde_json::json;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Run the real git, blocking, in a worker thread (the servers run on this runtime). The
/// `Authorization` header goes through env config, never argv or the URL.
async fn git(dir: &Path, auth: Option<String>, args: &[&str]) -> Output {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new("git");
        cmd.current_dir(&dir)
            .args(&args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .env("GIT_AUTHOR_NAME", "tester")
            .env("GIT_AUTHOR_EMAIL", "tester@example.com")
            .env("GIT_COMMITTER_NAME", "tester")
            .env("GIT_COMMITTER_EMAIL", "tester@example.com");
        if let Some(header) = auth {
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", header);
        }
        cmd.output().expect("git must be installed")
    })
    .await
    .unwrap()
}

fn token_header(token: &str) -> Option<String> {
    Some(format!("Authorization: token {token}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn demo_url(sandbox: &Sandbox) -> String {
    format!("{}/{}.git", sandbox.gitea_url(), demo::REPOSITORY)
}

/// Clone the demo repository into `parent/name` with the write token.
async fn clone_demo(sandbox: &Sandbox, parent: &Path, name: &str) -> PathBuf {
    let out = git(
        parent,
        token_header(sandbox.token()),
        &["clone", "--quiet", &demo_url(sandbox), name],
    )
    .await;
    assert!(out.status.success(), "clone failed: {}", stderr(&out));
    parent.join(name)
}

/// Commit one new file in a clone and return the commit id.
async fn commit_in_clone(clone: &Path, file: &str, text: &str) -> String {
    std::fs::write(clone.join(file), text).unwrap();
    assert!(git(clone, None, &["add", file]).await.status.success());
    let out = git(clone, None, &["commit", "--quiet", "-m", file]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = git(clone, None, &["rev-parse", "HEAD"]).await;
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_and_push_need_a_write_token() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let work = tempfile::tempdir().unwrap();

    // No credentials: 401 with Gitea's challenge, and git gives up.
    let out = git(
        work.path(),
        None,
        &["clone", "--quiet", &demo_url(&sandbox), "anon"],
    )
    .await;
    assert!(!out.status.success());
    let response = client()
        .get(format!(
            "{}/info/refs?service=git-upload-pack",
            demo_url(&sandbox)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"Gitea\""
    );

    // The write token clones and pushes; the server's branch moves to the pushed commit.
    let clone = clone_demo(&sandbox, work.path(), "writer").await;
    assert!(clone.join(demo::KUSTOMIZATION).is_file());
    let pushed = commit_in_clone(&clone, "pushed.txt", "pushed\n").await;
    let out = git(
        &clone,
        token_header(sandbox.token()),
        &["push", "--quiet", "origin", "main"],
    )
    .await;
    assert!(out.status.success(), "push failed: {}", stderr(&out));
    let head = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap();
    assert_eq!(head.as_deref(), Some(pushed.as_str()));

    // Basic auth with any user and the token as password works too (what actions/checkout does).
    let basic = base64_basic("x-access-token", sandbox.token());
    let out = git(
        work.path(),
        Some(format!("Authorization: Basic {basic}")),
        &["clone", "--quiet", &demo_url(&sandbox), "basic"],
    )
    .await;
    assert!(out.status.success(), "basic clone failed: {}", stderr(&out));

    // The read-only token can clone but its push is refused with 403 and nothing moves.
    let reader = git(
        work.path(),
        token_header(sandbox.read_only_token()),
        &["clone", "--quiet", &demo_url(&sandbox), "reader"],
    )
    .await;
    assert!(reader.status.success(), "{}", stderr(&reader));
    let reader_clone = work.path().join("reader");
    commit_in_clone(&reader_clone, "denied.txt", "no\n").await;
    let out = git(
        &reader_clone,
        token_header(sandbox.read_only_token()),
        &["push", "origin", "main"],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let head_after = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap();
    assert_eq!(head_after.as_deref(), Some(pushed.as_str()));

    // The tokens never reach the request log.
    let log = serde_json::to_string(&sandbox.requests().entries()).unwrap();
    assert!(!log.contains(sandbox.token()) && !log.contains(sandbox.read_only_token()));
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_answer_instead_of_the_server() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let version = format!("{}/api/v1/version", sandbox.gitea_url());
    sandbox.faults().inject(
        FaultRule::new(Server::Gitea, FaultKind::Status(503))
            .path_contains("/version")
            .times(2),
    );
    for _ in 0..2 {
        let response = client().get(&version).send().await.unwrap();
        assert_eq!(response.status(), 503);
        // The injected error has Gitea's own shape, so clients parse it as a real one.
        let body: serde_json::Value = response.json().await.unwrap();
        Swagger::load().check("APIError", &body);
    }
    assert_eq!(client().get(&version).send().await.unwrap().status(), 200);

    // A reset: the client gets no response at all.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::Gitea, FaultKind::Reset).method(http::Method::GET));
    let err = client().get(&version).send().await.unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");

    // A stall: the client's own timeout fires.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::Gitea, FaultKind::Timeout));
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = short.get(&version).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // The admin API scripts the same faults over HTTP; `server` defaults to the receiving server.
    let response = client()
        .post(format!("{}/_sandbox/faults", sandbox.gitea_url()))
        .json(&serde_json::json!({"kind": {"status": 502}, "path_contains": "/version"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(client().get(&version).send().await.unwrap().status(), 502);
    assert!(sandbox.faults().pending().is_empty());

    let faults: Vec<_> = sandbox
        .requests()
        .for_server(Server::Gitea)
        .into_iter()
        .filter_map(|r| r.fault)
        .collect();
    assert_eq!(
        faults,
        [
            FaultKind::Status(503),
            FaultKind::Status(503),
            FaultKind::Reset,
            FaultKind::Timeout,
            FaultKind::Status(502)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_port_or_directory_outlives_the_sandbox() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let addr = sandbox.servers()[0].addr();
    let state_dir = sandbox.state_dir().to_owned();
    // A stalled request is in flight when the sandbox goes away.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::Gitea, FaultKind::Timeout));
    let stalled = tokio::spawn(
        client()
            .get(format!("{}/api/v1/version", sandbox.gitea_url()))
            .send(),
    );
    eventually(
        "the stalled request arrives",
        Duration::from_secs(10),
        || async {
            match sandbox.requests().entries().is_empty() {
                false => Ok(()),
                true => Err("no request".to_owned()),
            }
        },
    )
    .await
    .unwrap();
    drop(sandbox);
    // The port refuses connections immediately, and the stalled request ends with an error.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let result = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("stalled request must end when the sandbox drops")
        .unwrap();
    assert!(result.is_err());
    assert!(!state_dir.exists());
}

/// Response bodies validated against the official Gitea swagger definitions.
struct Swagger {
    definitions: serde_json::Value,
}

impl Swagger {
    fn load() -> Swagger {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/gitea-swagger.json");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        Swagger {
            definitions: doc["definitions"].clone(),
        }
    }

    /// Validate `value` against `#/definitions/{name}`: the schema's root carries the swagger's
    /// `definitions`, so every nested `$ref` resolves as in the original document. Swagger 2.0
    /// schemas are JSON Schema draft 4; formats (`date-time`, `email`) are checked too.
    #[track_caller]
    fn check(&self, name: &str, value: &serde_json::Value) {
        let schema = serde_json::json!({
            "$ref": format!("#/definitions/{name}"),
            "definitions": self.definitions,
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name} invalid: {errors:#?}\n{value:#}");
        // A schema that accepts anything would make this check vacuous.
        assert!(
            !validator.is_valid(&serde_json::json!([])),
            "{name} accepts an array"
        );
    }

    /// [`Swagger::check`] for a model whose Go struct has pointer fields: Gitea sends `null` for
    /// them, which swagger 2.0 cannot express, so those (and only those) may be `null`.
    #[track_caller]
    fn check_nullable(&self, name: &str, value: &serde_json::Value, nullable: &[&str]) {
        let mut v = value.clone();
        if let Some(map) = v.as_object_mut() {
            map.retain(|k, x| !(x.is_null() && nullable.contains(&k.as_str())));
        }
        self.check(name, &v);
    }

    #[track_caller]
    fn check_list(&self, name: &str, value: &serde_json::Value) {
        let items = value.as_array().expect("a JSON array");
        for item in items {
            self.check(name, item);
        }
    }
}

/// A tiny Gitea API client for the tests.
struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    fn new(sandbox: &Sandbox, token: Option<&str>) -> Api {
        Api {
            base: format!("{}/api/v1", sandbox.gitea_url()),
            token: token.map(str::to_owned),
            http: client(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(value: &serde_json::Value) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

const REPO_API: &str = "/repos/demo/gitops";

/// The pointer fields of `PullRequest` (go-gitea/gitea modules/structs/pull.go: `Milestone
/// *Milestone`, `Assignee *User`, `MergedCommitID *string`, `Merged`, `Closed`, `Deadline
/// *time.Time`, `MergedBy *User`): `null` until set.
const PULL_NULLABLE: &[&str] = &[
    "assignee",
    "closed_at",
    "due_date",
    "merge_commit_sha",
    "merged_at",
    "merged_by",
    "milestone",
];

async fn head(sandbox: &Sandbox) -> String {
    sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_responses_match_gitea_swagger() {
    let swagger = Swagger::load();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::new(&sandbox, Some(sandbox.token()));
    let seeded = head(&sandbox).await;

    let (status, version) = Api::new(&sandbox, None).get("/version").await;
    assert_eq!(status, 200);
    swagger.check("ServerVersion", &version);

    let (status, repo) = api.get(REPO_API).await;
    assert_eq!(status, 200);
    swagger.check("Repository", &repo);
    assert_eq!(repo["full_name"], "demo/gitops");
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["permissions"]["push"], true);

    let (status, branch) = api.get(&format!("{REPO_API}/branches/main")).await;
    assert_eq!(status, 200);
    swagger.check("Branch", &branch);
    assert_eq!(branch["commit"]["id"], seeded.as_str());
    assert_eq!(branch["protected"], false);

    // A file: base64 content and its blob sha.
    let file_path = format!("{REPO_API}/contents/{}?ref=main", demo::KUSTOMIZATION);
    let (status, file) = api.get(&file_path).await;
    assert_eq!(status, 200);
    swagger.check("ContentsResponse", &file);
    assert_eq!(file["type"], "file");
    assert_eq!(file["encoding"], "base64");
    assert_eq!(unb64(&file["content"]), demo::PROD_KUSTOMIZATION);
    assert_eq!(file["last_commit_sha"], seeded.as_str());
    let blob_sha = file["sha"].as_str().unwrap().to_owned();
    let expected_blob = git(
        &sandbox.gitea().repo_dir(demo::OWNER, demo::REPO),
        None,
        &["rev-parse", &format!("main:{}", demo::KUSTOMIZATION)],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&expected_blob.stdout).trim(),
        blob_sha
    );

    // A directory: an array of entries without content.
    let (status, dir) = api.get(&format!("{REPO_API}/contents/apps/web/base")).await;
    assert_eq!(status, 200);
    swagger.check_list("ContentsResponse", &dir);
    let names: Vec<&str> = dir
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["deployment.yaml", "kustomization.yaml", "service.yaml"]
    );

    // Update one file with the sha guard: a real commit on main, authored as asked.
    let new_text = demo::PROD_KUSTOMIZATION.replace("\"1.0.0\"", "\"1.1.0\"");
    let (status, updated) = api
        .put(
            &format!("{REPO_API}/contents/{}", demo::KUSTOMIZATION),
            serde_json::json!({
                "content": b64(&new_text),
                "sha": blob_sha,
                "branch": "main",
                "message": "web: deploy 1.1.0 [skip ci]",
                "author": {"name": "deploy-bot", "email": "bot@example.com"},
            }),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    swagger.check("FileResponse", &updated);
    let first_commit = updated["commit"]["sha"].as_str().unwrap().to_owned();
    assert_eq!(head(&sandbox).await, first_commit);
    assert_eq!(updated["commit"]["parents"][0]["sha"], seeded.as_str());
    assert_eq!(updated["commit"]["author"]["name"], "deploy-bot");
    assert_eq!(updated["commit"]["committer"]["email"], "bot@example.com");
    assert_eq!(
        updated["commit"]["message"],
        "web: deploy 1.1.0 [skip ci]\n"
    );
    assert_eq!(unb64(&updated["content"]["content"]), new_text);
    let new_blob = updated["content"]["sha"].as_str().unwrap().to_owned();
    assert_ne!(new_blob, blob_sha);

    // The stale sha is refused with Gitea's 422 and nothing is written.
    let (status, error) = api
        .put(
            &format!("{REPO_API}/contents/{}", demo::KUSTOMIZATION),
            serde_json::json!({"content": b64("x"), "sha": blob_sha}),
        )
        .await;
    assert_eq!(status, 422);
    swagger.check("APIError", &error);
    assert_eq!(
        error["message"],
        format!("sha does not match [given: {blob_sha}, expected: {new_blob}]")
    );
    assert_eq!(head(&sandbox).await, first_commit);

    // Several files in one commit.
    let (status, changed) = api
        .post(
            &format!("{REPO_API}/contents"),
            serde_json::json!({
                "branch": "main",
                "message": "two files",
                "files": [
                    {"operation": "update", "path": demo::KUSTOMIZATION, "sha": new_blob,
                     "content": b64(&new_text.replace("1.1.0", "1.2.0"))},
                    {"operation": "create", "path": "apps/web/NOTES.md", "content": b64("notes\n")},
                ],
            }),
        )
        .await;
    assert_eq!(status, 201, "{changed}");
    swagger.check("FilesResponse", &changed);
    let second_commit = changed["commit"]["sha"].as_str().unwrap().to_owned();
    assert_eq!(changed["files"].as_array().unwrap().len(), 2);
    assert_eq!(
        changed["commit"]["parents"][0]["sha"],
        first_commit.as_str()
    );

    // Statuses.
    let (status, created) = api
        .post(
            &format!("{REPO_API}/statuses/{second_commit}"),
            serde_json::json!({"state": "success", "context": "deploy/prod", "description": "healthy"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    swagger.check("CommitStatus", &created);
    let (status, list) = api
        .get(&format!("{REPO_API}/statuses/{second_commit}"))
        .await;
    assert_eq!(status, 200);
    swagger.check_list("CommitStatus", &list);
    assert_eq!(list[0]["context"], "deploy/prod");
    assert_eq!(list[0]["status"], "success");

    // A commit, with its files.
    let (status, commit) = api
        .get(&format!("{REPO_API}/git/commits/{second_commit}"))
        .await;
    assert_eq!(status, 200);
    swagger.check("Commit", &commit);
    assert_eq!(commit["sha"], second_commit.as_str());
    assert_eq!(commit["parents"][0]["sha"], first_commit.as_str());
    let files: Vec<&str> = commit["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["apps/web/NOTES.md", demo::KUSTOMIZATION]);

    // Compare: commits in head not in base, newest first; none the other way (ancestry).
    let (status, compare) = api
        .get(&format!("{REPO_API}/compare/{seeded}...{second_commit}"))
        .await;
    assert_eq!(status, 200);
    swagger.check("Compare", &compare);
    assert_eq!(compare["total_commits"], 2);
    assert_eq!(compare["commits"][0]["sha"], second_commit.as_str());
    let (_, back) = api
        .get(&format!("{REPO_API}/compare/{second_commit}...{seeded}"))
        .await;
    assert_eq!(back["total_commits"], 0);

    // A change on a new branch, then a pull request; the same one again is a 409.
    let (status, branched) = api
        .put(
            &format!("{REPO_API}/contents/{}", demo::KUSTOMIZATION),
            serde_json::json!({
                "content": b64(&new_text.replace("1.1.0", "1.3.0")),
                "sha": changed["files"][0]["sha"],
                "branch": "main",
                "new_branch": "deploy/1.3.0",
            }),
        )
        .await;
    assert_eq!(status, 200, "{branched}");
    assert_eq!(head(&sandbox).await, second_commit, "main must not move");
    let (status, pull) = api
        .post(
            &format!("{REPO_API}/pulls"),
            serde_json::json!({"head": "deploy/1.3.0", "base": "main", "title": "Deploy 1.3.0"}),
        )
        .await;
    assert_eq!(status, 201, "{pull}");
    swagger.check_nullable("PullRequest", &pull, PULL_NULLABLE);
    assert_eq!(pull["number"], 1);
    assert_eq!(pull["head"]["sha"], branched["commit"]["sha"]);
    let (status, conflict) = api
        .post(
            &format!("{REPO_API}/pulls"),
            serde_json::json!({"head": "deploy/1.3.0", "base": "main", "title": "again"}),
        )
        .await;
    assert_eq!(status, 409);
    swagger.check("APIError", &conflict);
    assert!(conflict["message"]
        .as_str()
        .unwrap()
        .starts_with("pull request already exists for these targets"));

    // Errors keep Gitea's shape.
    let (status, missing) = api
        .get(&format!("{REPO_API}/contents/nope.yaml?ref=main"))
        .await;
    assert_eq!(status, 404);
    swagger.check("APIError", &missing);
    let (status, unauthorized) = Api::new(&sandbox, None).get(REPO_API).await;
    assert_eq!(status, 401);
    swagger.check("APIError", &unauthorized);
    let reader = Api::new(&sandbox, Some(sandbox.read_only_token()));
    assert_eq!(reader.get(&file_path).await.0, 200);
    let (status, forbidden) = reader
        .put(
            &format!("{REPO_API}/contents/{}", demo::KUSTOMIZATION),
            serde_json::json!({"content": b64("x"), "sha": "0"}),
        )
        .await;
    assert_eq!(status, 403);
    swagger.check("APIError", &forbidden);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_branch_refuses_api_writes_and_pushes() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::new(&sandbox, Some(sandbox.token()));
    let work = tempfile::tempdir().unwrap();
    let clone = clone_demo(&sandbox, work.path(), "clone").await;
    sandbox
        .gitea()
        .protect_branch(demo::OWNER, demo::REPO, demo::BRANCH)
        .unwrap();
    let before = head(&sandbox).await;

    let (_, branch) = api.get(&format!("{REPO_API}/branches/main")).await;
    assert_eq!(branch["protected"], true);
    assert_eq!(branch["user_can_push"], false);
    let (status, error) = api
        .put(
            "/repos/demo/gitops/contents/new.txt",
            serde_json::json!({"content": b64("x")}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(error["message"], "user cannot commit to repo [user: demo]");

    commit_in_clone(&clone, "pushed.txt", "x\n").await;
    let out = git(
        &clone,
        token_header(sandbox.token()),
        &["push", "origin", "main"],
    )
    .await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Not allowed to push to protected branch main")
            && err.contains("pre-receive hook declined"),
        "{err}"
    );
    assert_eq!(head(&sandbox).await, before);

    // Other branches stay open, and lifting the protection lets the push through.
    let out = git(
        &clone,
        token_header(sandbox.token()),
        &["push", "--quiet", "origin", "main:feature"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    sandbox
        .gitea()
        .unprotect_branch(demo::OWNER, demo::REPO, demo::BRANCH)
        .unwrap();
    let out = git(
        &clone,
        token_header(sandbox.token()),
        &["push", "--quiet", "origin", "main"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(head(&sandbox).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racing_commit_makes_the_next_write_meet_a_moved_head() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::new(&sandbox, Some(sandbox.token()));
    let file_url = format!("{REPO_API}/contents/{}", demo::KUSTOMIZATION);
    let race = |path: &str| gitops_sandbox::faults::Race {
        repository: demo::REPOSITORY.into(),
        branch: demo::BRANCH.into(),
        path: path.into(),
    };

    // The race touches our file: the guard fails against the new head → 422.
    let (_, file) = api.get(&file_url).await;
    sandbox.faults().race_next_write(race(demo::KUSTOMIZATION));
    let (status, error) = api
        .put(
            &file_url,
            serde_json::json!({"content": b64("a: 1\n"), "sha": file["sha"]}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .starts_with("sha does not match"));
    let raced = sandbox
        .gitea()
        .read_file(demo::OWNER, demo::REPO, "main", demo::KUSTOMIZATION)
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8(raced)
        .unwrap()
        .ends_with("# racing commit 1\n"));

    // The race touches another file: the guard holds but the push back is out of date → 500,
    // and a retry succeeds on top of the racing commit.
    let (_, file) = api.get(&file_url).await;
    sandbox.faults().race_next_write(race("OTHER.md"));
    let body = serde_json::json!({"content": b64("a: 2\n"), "sha": file["sha"]});
    let (status, _) = api.put(&file_url, body.clone()).await;
    assert_eq!(status, 500);
    let racer = head(&sandbox).await;
    let (status, ok) = api.put(&file_url, body).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["commit"]["parents"][0]["sha"], racer.as_str());

    // Over the POST admin API, before a push: the pushed commit no longer fits and is rejected.
    let work = tempfile::tempdir().unwrap();
    let clone = clone_demo(&sandbox, work.path(), "clone").await;
    commit_in_clone(&clone, "mine.txt", "mine\n").await;
    let response = client()
        .post(format!("{}/_sandbox/race", sandbox.gitea_url()))
        .json(&race("OTHER.md"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let out = git(
        &clone,
        token_header(sandbox.token()),
        &["push", "origin", "main"],
    )
    .await;
    assert!(!out.status.success(), "push over a raced head must fail");
    let racer = head(&sandbox).await;
    let info = git(
        &sandbox.gitea().repo_dir(demo::OWNER, demo::REPO),
        None,
        &["log", "-1", "--format=%s", &racer],
    )
    .await;
    assert!(String::from_utf8_lossy(&info.stdout).starts_with("sandbox: racing commit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_api_writes_and_pushes_keep_every_commit() {
    const WRITERS: usize = 4;
    const PUSHERS: usize = 2;
    let sandbox = std::sync::Arc::new(Sandbox::start(SandboxConfig::default()).await.unwrap());
    let work = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let sandbox = sandbox.clone();
        tasks.push(tokio::spawn(async move {
            let api = Api::new(&sandbox, Some(sandbox.token()));
            // Each writer creates its own file, retrying as a client must on a 500 (a push moved
            // the branch under the write).
            loop {
                let (status, body) = api
                    .put(
                        &format!("{REPO_API}/contents/api-{i}.txt"),
                        serde_json::json!({"content": b64(&format!("{i}\n"))}),
                    )
                    .await;
                match status {
                    201 => return,
                    500 => assert!(Instant::now() < deadline, "writer {i} starved"),
                    other => panic!("writer {i}: {other} {body}"),
                }
            }
        }));
    }
    for i in 0..PUSHERS {
        let sandbox = sandbox.clone();
        let parent = work.path().to_owned();
        tasks.push(tokio::spawn(async move {
            let clone = clone_demo(&sandbox, &parent, &format!("pusher-{i}")).await;
            commit_in_clone(&clone, &format!("push-{i}.txt"), "pushed\n").await;
            loop {
                let out = git(
                    &clone,
                    token_header(sandbox.token()),
                    &["push", "--quiet", "origin", "main"],
                )
                .await;
                if out.status.success() {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "pusher {i} starved: {}",
                    stderr(&out)
                );
                let out = git(
                    &clone,
                    token_header(sandbox.token()),
                    &["pull", "--quiet", "--rebase", "origin", "main"],
                )
                .await;
                assert!(out.status.success(), "{}", stderr(&out));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let files = sandbox
        .gitea()
        .list_files(demo::OWNER, demo::REPO, "main", "")
        .await
        .unwrap();
    for i in 0..WRITERS {
        assert!(files.contains(&format!("api-{i}.txt")), "{files:?}");
    }
    for i in 0..PUSHERS {
        assert!(files.contains(&format!("push-{i}.txt")), "{files:?}");
    }
    let count = git(
        &sandbox.gitea().repo_dir(demo::OWNER, demo::REPO),
        None,
        &["rev-list", "--count", "main"],
    )
    .await;
    // The seed commit plus one per writer and pusher: nothing lost, nothing duplicated.
    assert_eq!(
        String::from_utf8_lossy(&count.stdout).trim(),
        (1 + WRITERS + PUSHERS).to_string()
    );
}

#[test]
fn swagger_check_rejects_wrong_shapes() {
    let swagger = Swagger::load();
    for (name, bad) in [
        ("Branch", serde_json::json!({"name": 5})),
        ("ContentsResponse", serde_json::json!({"size": "12"})),
        ("Commit", serde_json::json!({"created": "yesterday"})),
        ("FilesResponse", serde_json::json!({"files": [null]})),
    ] {
        let result = std::panic::catch_unwind(|| swagger.check(name, &bad));
        assert!(result.is_err(), "{name} accepted {bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_with_a_gzip_request_body_works() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let clone = clone_demo(&sandbox, work.path(), "clone").await;
    // Many local commits the server lacks make the negotiation's "have" lines exceed 1 KiB, above
    // which git gzips the upload-pack request body. They are dated after the common commit: the
    // negotiator sends haves newest first, and a common commit with the same timestamp (all made in
    // one second) could end the negotiation in its first, small round.
    for i in 0..40 {
        let dir = clone.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("git")
                .current_dir(&dir)
                .args([
                    "commit",
                    "--quiet",
                    "--allow-empty",
                    "-m",
                    &format!("local {i}"),
                ])
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_AUTHOR_NAME", "tester")
                .env("GIT_AUTHOR_EMAIL", "tester@example.com")
                .env("GIT_COMMITTER_NAME", "tester")
                .env("GIT_COMMITTER_EMAIL", "tester@example.com")
                .env(
                    "GIT_COMMITTER_DATE",
                    format!("@{} +0000", 4_000_000_000u64 + i),
                )
                .output()
                .expect("git must be installed")
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let remote_head = sandbox
        .gitea()
        .commit_files(
            demo::OWNER,
            demo::REPO,
            demo::BRANCH,
            &[("new.txt", "new\n")],
            "new",
        )
        .await
        .unwrap();
    let dir = clone.clone();
    let header = token_header(sandbox.token()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("git")
            .current_dir(&dir)
            .args(["fetch", "origin", "main"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TRACE_CURL", "1")
            .env("GIT_TRACE_CURL_NO_DATA", "1")
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", header)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Content-Encoding: gzip"),
        "the fetch did not gzip its request"
    );
    let fetched = git(&clone, None, &["rev-parse", "FETCH_HEAD"]).await;
    assert_eq!(String::from_utf8_lossy(&fetched.stdout).trim(), remote_head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_one_json_line_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    /// Kills the server if an assertion fails before it stopped by itself.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if self.0.try_wait().ok().flatten().is_none() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut child = Reap(
        std::process::Command::new(env!("CARGO_BIN_EXE_gitops-sandbox"))
            .arg("serve")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        line
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("serve must print its JSON line")
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    for key in [
        "gitea_url",
        "token",
        "repository",
        "branch",
        "path",
        "image",
    ] {
        assert!(info[key].is_string(), "{key} missing in {line}");
    }
    assert_eq!(info["repository"], demo::REPOSITORY);
    assert_eq!(info["path"], demo::PATH);
    let gitea_url = info["gitea_url"].as_str().unwrap().to_owned();
    let response = client()
        .get(format!(
            "{gitea_url}/api/v1/repos/demo/gitops/branches/main"
        ))
        .header(
            "Authorization",
            format!("token {}", info["token"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = eventually("serve exits on SIGTERM", Duration::from_secs(20), || {
        let exited = child.0.try_wait().unwrap();
        async move { exited.ok_or_else(|| "still running".to_owned()) }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    let addr = gitea_url.trim_start_matches("http://").to_owned();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let state_dir = info["state_dir"].as_str().unwrap();
    assert!(
        !Path::new(state_dir).exists(),
        "temporary state dir left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_api_write_gives_an_empty_repository_its_branch() {
    let sandbox = Sandbox::start(SandboxConfig {
        seed_demo: false,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    sandbox
        .gitea()
        .create_repo("ops", "fresh", "main")
        .await
        .unwrap();
    let api = Api::new(&sandbox, Some(sandbox.token()));
    let (status, repo) = api.get("/repos/ops/fresh").await;
    assert_eq!(status, 200);
    assert_eq!(repo["empty"], true);

    let (status, other) = api
        .put(
            "/repos/ops/fresh/contents/a.txt",
            serde_json::json!({"content": b64("a\n"), "branch": "other"}),
        )
        .await;
    assert_eq!(status, 404, "{other}");
    assert_eq!(other["message"], "branch does not exist [name: other]");

    let (status, created) = api
        .put(
            "/repos/ops/fresh/contents/a.txt",
            serde_json::json!({"content": b64("a\n")}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["commit"]["parents"], serde_json::json!([]));
    assert_eq!(created["commit"]["message"], "Add a.txt\n");
    let head = sandbox
        .gitea()
        .branch_head("ops", "fresh", "main")
        .await
        .unwrap();
    assert_eq!(head.as_deref(), created["commit"]["sha"].as_str());
    assert_eq!(api.get("/repos/ops/fresh").await.1["empty"], false);
}

/// The https front: a client that trusts the front's CA gets Gitea's own answers through it (API and
/// git's smart HTTP, bytes unchanged); one that does not is refused on the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_front_serves_gitea_with_its_own_ca() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let front = sandbox.gitea_tls(&["gitea.sandbox.test"]).await.unwrap();
    let ca = reqwest::Certificate::from_pem(front.ca_pem().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let url = format!("{}/api/v1/version", front.url());
    let through: serde_json::Value = trusting
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let direct: serde_json::Value = client()
        .get(format!("{}/api/v1/version", sandbox.gitea_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(through, direct);

    let err = client().get(&url).send().await.unwrap_err();
    let chain = format!("{:?}", err);
    assert!(chain.contains("UnknownIssuer"), "{chain}");

    // git over the front, trusting only the CA file.
    let work = tempfile::tempdir().unwrap();
    let ca_file = work.path().join("ca.pem");
    std::fs::write(&ca_file, front.ca_pem()).unwrap();
    let out = tokio::process::Command::new("git")
        .args([
            "ls-remote",
            &format!("{}/{}.git", front.url(), demo::REPOSITORY),
        ])
        .env("GIT_SSL_CAINFO", &ca_file)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.extraHeader")
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: token {}", sandbox.token()),
        )
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("refs/heads/main"));
}

/// Each Gitea/Forgejo profile's wire differences, with the exact bodies the upstream sources give
/// (sandbox/src/profile.rs cites them): stale sha 422 or 409, compare by commit ID and without pull
/// requests, the MaxSize binding error, a declining hook as 403 with its text or a blank 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_answer_as_their_release_does() {
    use gitops_sandbox::profile::GiteaProfile;
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let swagger = Swagger::load();
    let api = Api::new(&sandbox, Some(sandbox.token()));
    let file = format!("{REPO_API}/contents/{}", demo::KUSTOMIZATION);
    let stale = serde_json::json!({"content": b64("x: 1\n"), "sha": "0".repeat(40)});
    let long_branch = serde_json::json!({"content": b64("x: 1\n"), "sha": "0".repeat(40),
        "branch": "b".repeat(101)});
    let before = head(&sandbox).await;
    for (profile, stale_status, sha_compare, errors) in [
        ("gitea-1.22", 422, 404, serde_json::Value::Null),
        ("gitea-1.25", 422, 200, serde_json::Value::Null),
        ("gitea-1.26", 422, 200, serde_json::Value::Null),
        ("forgejo-8", 422, 404, serde_json::Value::Null),
        ("forgejo-12", 409, 200, serde_json::json!([])),
    ] {
        let p = GiteaProfile::named(profile).unwrap();
        sandbox.gitea().set_profile(p);
        let (_, version) = api.get("/version").await;
        assert_eq!(version["version"], p.version, "{profile}");

        let (status, body) = api.put(&file, stale.clone()).await;
        assert_eq!(status, stale_status, "{profile}: {body}");
        swagger.check("APIError", &body);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("sha does not match [given: 0000"),
            "{profile}: {body}"
        );

        let (status, body) = api.put(&file, long_branch.clone()).await;
        assert_eq!(
            (status, body["message"].clone()),
            (422, serde_json::json!("[BranchName]: MaxSize")),
            "{profile}"
        );

        let head = head(&sandbox).await;
        let (status, body) = api
            .get(&format!("{REPO_API}/compare/{head}...{head}"))
            .await;
        assert_eq!(status, sha_compare, "{profile}: {body}");
        if status == 404 {
            assert_eq!(body["message"], "BaseNotExist", "{profile}");
            assert_eq!(body["errors"], errors, "{profile}");
        }
        sandbox
            .gitea()
            .set_pulls_enabled(demo::OWNER, demo::REPO, false)
            .unwrap();
        let (status, body) = api.get(&format!("{REPO_API}/compare/main...main")).await;
        sandbox
            .gitea()
            .set_pulls_enabled(demo::OWNER, demo::REPO, true)
            .unwrap();
        if p.compare_needs_pulls {
            assert_eq!(status, 404, "{profile}");
            assert_eq!(
                body["message"],
                "Can't read pulls or can't read UnitTypeCode"
            );
        } else {
            assert_eq!(status, 200, "{profile}: {body}");
        }

        let (_, current) = api.get(&format!("{file}?ref=main")).await;
        sandbox
            .gitea()
            .set_hook_rejection(demo::OWNER, demo::REPO, Some("frozen"))
            .unwrap();
        let (status, body) = api
            .put(
                &file,
                serde_json::json!({"content": b64("x: 2\n"), "sha": current["sha"]}),
            )
            .await;
        sandbox
            .gitea()
            .set_hook_rejection(demo::OWNER, demo::REPO, None)
            .unwrap();
        swagger.check("APIError", &body);
        match p.hook_rejection_status {
            403 => assert_eq!(
                (status, body["message"].as_str()),
                (403, Some("frozen")),
                "{profile}"
            ),
            _ => assert_eq!(
                (status, body["message"].as_str()),
                (500, Some("")),
                "{profile}"
            ),
        }
    }
    assert_eq!(head(&sandbox).await, before, "no refused write landed");
}

/// Pull requests, merges, reviews, labels and the combined status behave as Gitea's (see
/// `sandbox/src/gitea/pulls.rs` for the upstream files) and every body matches the swagger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_behave_as_gitea_and_match_its_swagger() {
    use gitops_sandbox::gitea::Protection;
    let swagger = Swagger::load();
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let api = Api::new(&sandbox, Some(sandbox.token()));
    let gitea = sandbox.gitea();
    gitea
        .protect_branch_with(
            demo::OWNER,
            demo::REPO,
            "main",
            Protection {
                required_approvals: 1,
                enable_status_check: true,
                status_check_contexts: vec!["ci/*".into()],
            },
        )
        .unwrap();
    let (status, branch) = api.get(&format!("{REPO_API}/branches/main")).await;
    assert_eq!(status, 200);
    swagger.check("Branch", &branch);
    assert_eq!(
        (
            &branch["protected"],
            &branch["required_approvals"],
            &branch["enable_status_check"]
        ),
        (&json!(true), &json!(1), &json!(true))
    );
    assert_eq!(branch["status_check_contexts"], json!(["ci/*"]));
    assert_eq!(branch["user_can_push"], false);

    let (status, label) = api
        .post(
            &format!("{REPO_API}/labels"),
            json!({"name": "deploy", "color": "#00aabb"}),
        )
        .await;
    assert_eq!(status, 201, "{label}");
    swagger.check("Label", &label);
    let (_, labels) = api.get(&format!("{REPO_API}/labels")).await;
    swagger.check_list("Label", &labels);
    assert_eq!(labels[0]["name"], "deploy");

    // A change on its own branch (main is protected), then its pull request. Unknown label ids are
    // dropped, as Gitea does.
    let (_, file) = api
        .get(&format!(
            "{REPO_API}/contents/{}?ref=main",
            demo::KUSTOMIZATION
        ))
        .await;
    let text = demo::PROD_KUSTOMIZATION.replace("\"1.0.0\"", "\"2.0.0\"");
    let (status, branched) = api
        .post(
            &format!("{REPO_API}/contents"),
            json!({"branch": "main", "new_branch": "deploy/2.0.0", "message": "deploy 2.0.0",
                   "files": [{"operation": "update", "path": demo::KUSTOMIZATION,
                              "sha": file["sha"], "content": b64(&text)}]}),
        )
        .await;
    assert_eq!(status, 201, "{branched}");
    let head_sha = branched["commit"]["sha"].as_str().unwrap().to_owned();
    let (status, again) = api
        .post(
            &format!("{REPO_API}/contents"),
            json!({"branch": "main", "new_branch": "deploy/2.0.0", "message": "again",
                   "files": [{"operation": "update", "path": demo::KUSTOMIZATION,
                              "sha": file["sha"], "content": b64(&text)}]}),
        )
        .await;
    assert_eq!(
        (status, again["message"].as_str()),
        (422, Some("branch already exists [name: deploy/2.0.0]"))
    );
    let (status, pull) = api
        .post(
            &format!("{REPO_API}/pulls"),
            json!({"head": "deploy/2.0.0", "base": "main", "title": "deploy 2.0.0",
                   "body": "body", "labels": [label["id"], 9999]}),
        )
        .await;
    assert_eq!(status, 201, "{pull}");
    swagger.check_nullable("PullRequest", &pull, PULL_NULLABLE);
    assert_eq!(pull["labels"].as_array().unwrap().len(), 1);
    // A new pull request is "checking" for a moment: not mergeable, and a merge is "try again later".
    assert_eq!(
        (&pull["mergeable"], &pull["merged"]),
        (&json!(false), &json!(false))
    );
    assert!(pull["merge_commit_sha"].is_null());
    let n = pull["number"].as_i64().unwrap();
    let pulls_api = format!("{REPO_API}/pulls/{n}");
    let (status, later) = api
        .post(&format!("{pulls_api}/merge"), json!({"Do": "merge"}))
        .await;
    assert_eq!(
        (status, later["message"].as_str()),
        (405, Some("Please try again later"))
    );
    eventually("the conflict check", Duration::from_secs(5), || async {
        let (_, p) = api.get(&pulls_api).await;
        if p["mergeable"] == true {
            Ok(())
        } else {
            Err(p["mergeable"].to_string())
        }
    })
    .await
    .unwrap();

    // No statuses yet: the newest Gitea answers `pending` with `statuses: null`.
    let (status, combined) = api
        .get(&format!("{REPO_API}/commits/{head_sha}/status"))
        .await;
    assert_eq!(status, 200);
    swagger.check_nullable("CombinedStatus", &combined, &["statuses"]);
    assert_eq!(
        (&combined["state"], &combined["total_count"]),
        (&json!("pending"), &json!(0))
    );

    // Merging now is refused with the protection's reasons, in Gitea's order.
    let merge = |body: serde_json::Value| {
        let api = &api;
        let path = format!("{pulls_api}/merge");
        async move { api.post(&path, body).await }
    };
    let (status, refused) = merge(json!({"Do": "merge"})).await;
    assert_eq!(status, 405);
    swagger.check("APIError", &refused);
    assert_eq!(
        refused["message"],
        "Not all required status checks successful"
    );
    let (status, _) = api
        .post(
            &format!("{REPO_API}/statuses/{head_sha}"),
            json!({"state": "success", "context": "ci/test"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, combined) = api
        .get(&format!("{REPO_API}/commits/{head_sha}/status"))
        .await;
    swagger.check("CombinedStatus", &combined);
    assert_eq!(combined["state"], "success");
    let (status, refused) = merge(json!({"do": "merge"})).await;
    assert_eq!(
        (status, refused["message"].as_str()),
        (405, Some("Does not have enough approvals"))
    );
    gitea
        .review_pull(demo::OWNER, demo::REPO, n, "alice", "APPROVED")
        .await;
    let (status, reviews) = api.get(&format!("{pulls_api}/reviews")).await;
    assert_eq!(status, 200);
    swagger.check_nullable("PullReview", &reviews[0], &["team"]);
    assert_eq!(
        (&reviews[0]["state"], &reviews[0]["official"]),
        (&json!("APPROVED"), &json!(true))
    );
    let (status, stale) = merge(json!({"Do": "merge", "head_commit_id": "0".repeat(40)})).await;
    assert_eq!(
        (status, stale["message"].as_str()),
        (409, Some("head out of date"))
    );

    // Auto-merge: 201 with an empty body, merged moments later; a merge commit on main.
    let before = head(&sandbox).await;
    let (status, body) = merge(json!({"Do": "merge", "merge_when_checks_succeed": true,
                                      "delete_branch_after_merge": true}))
    .await;
    assert_eq!((status, body), (201, json!("")));
    let merged = eventually("the scheduled merge", Duration::from_secs(10), || async {
        let (_, p) = api.get(&pulls_api).await;
        if p["merged"] == true {
            Ok(p)
        } else {
            Err(p.to_string())
        }
    })
    .await
    .unwrap();
    swagger.check_nullable("PullRequest", &merged, PULL_NULLABLE);
    let tip = head(&sandbox).await;
    assert_eq!(merged["merge_commit_sha"], tip.as_str());
    assert_eq!(merged["state"], "closed");
    let parents = git(
        &gitea.repo_dir(demo::OWNER, demo::REPO),
        None,
        &["rev-list", "--parents", "-n1", &tip],
    )
    .await;
    let parents = String::from_utf8_lossy(&parents.stdout).into_owned();
    assert_eq!(
        parents.split_whitespace().collect::<Vec<_>>(),
        [tip.as_str(), before.as_str(), head_sha.as_str()]
    );
    assert!(gitea
        .branch_head(demo::OWNER, demo::REPO, "deploy/2.0.0")
        .await
        .unwrap()
        .is_none());
    let (status, twice) = merge(json!({"Do": "merge"})).await;
    assert_eq!(
        (status, twice["message"].as_str()),
        (405, Some("The PR is already merged"))
    );

    // The list: no `state` means all; `state=open` the open ones.
    let (_, all) = api.get(&format!("{REPO_API}/pulls")).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let (_, open) = api.get(&format!("{REPO_API}/pulls?state=open")).await;
    assert_eq!(open, json!([]));

    // Comment and close another one; a closed pull request cannot be merged (404).
    gitea
        .commit_files(demo::OWNER, demo::REPO, "main", &[("x.txt", "x\n")], "x")
        .await
        .unwrap();
    git(
        &gitea.repo_dir(demo::OWNER, demo::REPO),
        None,
        &["branch", "other", "main~1"],
    )
    .await;
    let (_, other) = api
        .post(
            &format!("{REPO_API}/pulls"),
            json!({"head": "other", "base": "main", "title": "other"}),
        )
        .await;
    let m = other["number"].as_i64().unwrap();
    let (status, comment) = api
        .post(
            &format!("{REPO_API}/issues/{m}/comments"),
            json!({"body": "superseded"}),
        )
        .await;
    assert_eq!(status, 201, "{comment}");
    swagger.check("Comment", &comment);
    let (status, closed) = api
        .call(
            reqwest::Method::PATCH,
            &format!("{REPO_API}/pulls/{m}"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!((status, &closed["state"]), (201, &json!("closed")));
    let (status, _) = api
        .post(
            &format!("{REPO_API}/pulls/{m}/merge"),
            json!({"Do": "merge"}),
        )
        .await;
    assert_eq!(status, 404);

    // Gitea 1.22: protection reasons wrapped, and no statuses is a `null` body.
    gitea.set_profile(gitops_sandbox::profile::GiteaProfile::named("gitea-1.22").unwrap());
    let (_, null) = api.get(&format!("{REPO_API}/commits/{tip}/status")).await;
    assert_eq!(null, serde_json::Value::Null);
}

/// GitHub's shape of the same store (`/api/v3`, `/api/graphql`), as `sandbox/src/gitea/github.rs`
/// describes it from GitHub's REST description and the threads in `docs/research/github-pulls.md`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_shaped_pull_requests_answer_as_github() {
    use gitops_sandbox::gitea::Protection;
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let gitea = sandbox.gitea();
    let gh = |token: Option<&str>| Api {
        base: format!("{}/api/v3", sandbox.gitea_url()),
        token: token.map(str::to_owned),
        http: client(),
    };
    let api = gh(Some(sandbox.token()));
    let (status, bad) = gh(Some("nope")).get(REPO_API).await;
    assert_eq!(
        (status, bad["message"].as_str()),
        (401, Some("Bad credentials"))
    );
    gitea
        .protect_branch_with(
            demo::OWNER,
            demo::REPO,
            "main",
            Protection {
                required_approvals: 1,
                enable_status_check: true,
                status_check_contexts: vec!["ci/test".into()],
            },
        )
        .unwrap();
    let (_, branch) = api.get(&format!("{REPO_API}/branches/main")).await;
    assert_eq!(branch["protected"], true);
    assert_eq!(
        branch["protection"]["required_status_checks"]["contexts"],
        json!(["ci/test"])
    );

    let text = demo::PROD_KUSTOMIZATION.replace("\"1.0.0\"", "\"5.0.0\"");
    git(
        &gitea.repo_dir(demo::OWNER, demo::REPO),
        None,
        &["branch", "deploy/5", "main"],
    )
    .await;
    let head = gitea
        .commit_files(
            demo::OWNER,
            demo::REPO,
            "deploy/5",
            &[(demo::KUSTOMIZATION, &text)],
            "5.0.0",
        )
        .await
        .unwrap();
    let new =
        json!({"head": "demo:deploy/5", "base": "main", "title": "deploy 5.0.0", "body": "b"});
    let (status, pull) = api.post(&format!("{REPO_API}/pulls"), new.clone()).await;
    assert_eq!(status, 201, "{pull}");
    // Computing mergeability: `null` at first.
    assert!(pull["mergeable"].is_null(), "{pull}");
    let (status, dup) = api.post(&format!("{REPO_API}/pulls"), new).await;
    assert_eq!(status, 422);
    assert_eq!(dup["message"], "Validation Failed");
    assert_eq!(
        dup["errors"][0]["message"],
        "A pull request already exists for demo:deploy/5."
    );
    // List items are thin; a bare `head` filter is ignored.
    let (_, list) = api
        .get(&format!("{REPO_API}/pulls?state=open&head=deploy/nothing"))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        list[0].get("mergeable").is_none() && list[0].get("merged").is_none(),
        "{list}"
    );
    let (_, none) = api
        .get(&format!("{REPO_API}/pulls?head=demo:deploy/nothing"))
        .await;
    assert_eq!(none, json!([]));
    let n = pull["number"].as_i64().unwrap();
    let pr = format!("{REPO_API}/pulls/{n}");
    let settled = eventually("mergeability", Duration::from_secs(5), || async {
        let (_, p) = api.get(&pr).await;
        if p["mergeable"].is_boolean() {
            Ok(p)
        } else {
            Err(p["mergeable"].to_string())
        }
    })
    .await
    .unwrap();
    assert_eq!(
        (&settled["mergeable"], &settled["mergeable_state"]),
        (&json!(true), &json!("blocked"))
    );
    // While open, `merge_commit_sha` is the test merge: not on main.
    let test_merge = settled["merge_commit_sha"].as_str().unwrap().to_owned();
    assert_ne!(test_merge, head);
    assert_eq!(settled["merged"], false);

    let (_, combined) = api.get(&format!("{REPO_API}/commits/{head}/status")).await;
    assert_eq!(
        (&combined["state"], &combined["total_count"]),
        (&json!("pending"), &json!(0))
    );
    let put = |body: serde_json::Value| {
        let api = &api;
        let path = format!("{pr}/merge");
        async move { api.call(reqwest::Method::PUT, &path, Some(body)).await }
    };
    let (status, refused) = put(json!({"merge_method": "merge", "sha": head})).await;
    assert_eq!(
        (status, refused["message"].as_str()),
        (405, Some("Required status check \"ci/test\" is expected."))
    );
    Api::new(&sandbox, Some(sandbox.token()))
        .post(
            &format!("{REPO_API}/statuses/{head}"),
            json!({"state": "success", "context": "ci/test"}),
        )
        .await;
    let (_, combined) = api.get(&format!("{REPO_API}/commits/{head}/status")).await;
    assert_eq!(combined["state"], "success");
    assert_eq!(combined["statuses"][0]["state"], "success");
    let (status, refused) = put(json!({"merge_method": "merge", "sha": head})).await;
    assert_eq!(
        (status, refused["message"].as_str()),
        (
            405,
            Some("At least 1 approving review is required by reviewers with write access.")
        )
    );
    // Auto-merge over GraphQL, then an approval merges it.
    let graphql = |id: &str| {
        let http = client();
        let url = format!("{}/api/graphql", sandbox.gitea_url());
        let token = sandbox.token().to_owned();
        let body = json!({"query": "mutation($id: ID!, $method: PullRequestMergeMethod!) { enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method}) { pullRequest { id } } }",
                          "variables": {"id": id, "method": "SQUASH"}});
        async move {
            let r = http
                .post(url)
                .header("Authorization", format!("Bearer {token}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let answer = graphql(settled["node_id"].as_str().unwrap()).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let (status, stale) = put(json!({"merge_method": "merge", "sha": "0".repeat(40)})).await;
    assert_eq!(
        (status, stale["message"].as_str()),
        (
            409,
            Some("Head branch was modified. Review and try the merge again.")
        )
    );
    gitea
        .review_pull(demo::OWNER, demo::REPO, n, "alice", "APPROVED")
        .await;
    let merged = eventually("the auto-merge", Duration::from_secs(10), || async {
        let (_, p) = api.get(&pr).await;
        if p["merged"] == true {
            Ok(p)
        } else {
            Err(p["mergeable_state"].to_string())
        }
    })
    .await
    .unwrap();
    let tip = head_of(&sandbox).await;
    assert_eq!(merged["merge_commit_sha"], tip.as_str());
    let (_, reviews) = api.get(&format!("{pr}/reviews")).await;
    assert_eq!(reviews[0]["state"], "APPROVED");

    // A pull request nothing blocks: GitHub will not schedule it ("clean status").
    gitea
        .unprotect_branch(demo::OWNER, demo::REPO, "main")
        .unwrap();
    git(
        &gitea.repo_dir(demo::OWNER, demo::REPO),
        None,
        &["branch", "deploy/6", "main"],
    )
    .await;
    gitea
        .commit_files(
            demo::OWNER,
            demo::REPO,
            "deploy/6",
            &[("six.txt", "6\n")],
            "six",
        )
        .await
        .unwrap();
    let (_, six) = api
        .post(
            &format!("{REPO_API}/pulls"),
            json!({"head": "deploy/6", "base": "main", "title": "six"}),
        )
        .await;
    let six_api = format!("{REPO_API}/pulls/{}", six["number"]);
    let node = six["node_id"].as_str().unwrap().to_owned();
    eventually("mergeability", Duration::from_secs(5), || async {
        let (_, p) = api.get(&six_api).await;
        if p["mergeable_state"] == "clean" {
            Ok(())
        } else {
            Err(p["mergeable_state"].to_string())
        }
    })
    .await
    .unwrap();
    let answer = graphql(&node).await;
    assert_eq!(
        answer["errors"][0]["message"],
        "Pull request Pull request is in clean status"
    );
    let (status, ok) = api
        .call(
            reqwest::Method::PUT,
            &format!("{six_api}/merge"),
            Some(json!({"merge_method": "squash"})),
        )
        .await;
    assert_eq!(
        (status, &ok["merged"], &ok["message"]),
        (
            200,
            &json!(true),
            &json!("Pull Request successfully merged")
        )
    );
    assert_eq!(ok["sha"], head_of(&sandbox).await.as_str());
}

/// The demo branch's head (for tests whose own `head` is a pull request's).
async fn head_of(sandbox: &Sandbox) -> String {
    head(sandbox).await
}
