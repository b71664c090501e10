//! `gitops-sandbox serve` driven from outside, as a person reproducing a field behaviour by hand
//! would: version and scenario flags, and the control API on the Argo CD server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Get-only tokens, JWT-shaped as Argo CD requires of any bearer (server/server.go `getToken`).
const GET_ONLY_1: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJnZXQtb25seS0xIn0.c2lnbmF0dXJlLTE";
const GET_ONLY_2: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJnZXQtb25seS0yIn0.c2lnbmF0dXJlLTI";

struct Served {
    child: Child,
    info: Value,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gitops-sandbox"))
        .arg("serve")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gitops-sandbox starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the JSON line");
    let info = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    Served { child, info }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_version_and_scenario_switches_and_a_control_api() {
    let s = serve(&[
        "--gitea",
        "1.22.6",
        "--argocd-get-only-token",
        GET_ONLY_1,
        "--argocd-refresh-hangs",
        "1",
    ]);
    let get = |k: &str| s.info[k].as_str().unwrap().to_owned();
    assert_eq!(get("gitea_version"), "1.22.6");
    let http = reqwest::Client::new();
    let gitea = get("gitea_url");
    let version: Value = http
        .get(format!("{gitea}/api/v1/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version"], "1.22.6");

    // Gitea 1.22: compare by branch name works, by commit ID it is 404.
    let repo = format!("{gitea}/api/v1/repos/{}", get("repository"));
    let auth = format!("token {}", get("token"));
    let branch: Value = http
        .get(format!("{repo}/branches/main"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let head = branch["commit"]["id"].as_str().unwrap().to_owned();
    let by_name = http
        .get(format!("{repo}/compare/main...main"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status(), 200);
    let by_id = http
        .get(format!("{repo}/compare/{head}...{head}"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.status(), 404);

    // Argo CD: the get-only token reads, a refresh hangs, a sync is refused.
    let argo = get("argocd_url");
    let app = format!("{argo}/api/v1/applications/{}", get("argocd_app"));
    let bearer = &format!("Bearer {GET_ONLY_1}");
    // A bearer that is not JWT-shaped carries no session at all.
    let opaque = http
        .get(&app)
        .header("Authorization", "Bearer not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(opaque.status(), 401);
    let body: Value = opaque.json().await.unwrap();
    assert_eq!(body["message"], "no session information");
    let read = http
        .get(&app)
        .header("Authorization", bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let refresh = http
        .get(format!("{app}?refresh=normal"))
        .header("Authorization", bearer)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refresh.is_err_and(|e| e.is_timeout()), "the refresh hangs");
    // ... leaving the annotation on the app, as the real controller does (appcontroller.go:1982).
    let stuck: Value = http
        .get(&app)
        .header("Authorization", bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stuck["metadata"]["annotations"]["argocd.argoproj.io/refresh"], "normal",
        "{stuck}"
    );
    let sync = http
        .post(format!("{app}/sync"))
        .header("Authorization", bearer)
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(sync.status(), 403);
    let body: Value = sync.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("permission denied: applications, sync, default/"),
        "{body}"
    );
    // Only one refresh was to hang: the next one answers.
    let refreshed = http
        .get(format!("{app}?refresh=normal"))
        .header("Authorization", bearer)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);

    // The control API switches the same behaviours at run time.
    let admin = |path: &str, body: Value| {
        http.post(format!("{argo}/_sandbox/{path}"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    assert_eq!(
        admin("tokens/get-only", serde_json::json!({"token": GET_ONLY_2}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        admin("scenario/refresh-hang", serde_json::json!({"count": 1}))
            .await
            .unwrap()
            .status(),
        204
    );
    let hung = http
        .get(format!("{app}?refresh=normal"))
        .header("Authorization", format!("Bearer {GET_ONLY_2}"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_profiles_and_switches_them_over_the_control_api() {
    let s = serve(&["--gitea", "forgejo-8", "--argocd", "3.0"]);
    let get = |k: &str| s.info[k].as_str().unwrap().to_owned();
    assert_eq!(get("gitea_profile"), "forgejo-8");
    assert_eq!(get("gitea_version"), "8.0.3+gitea-1.22.0");
    assert_eq!(get("argocd_profile"), "argocd-3.0");
    let http = reqwest::Client::new();
    let gitea = get("gitea_url");
    let argo = get("argocd_url");
    let post = |url: String, body: Value| {
        http.post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let argo_version: Value = http
        .get(format!("{argo}/api/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        argo_version["Version"]
            .as_str()
            .unwrap()
            .starts_with("v3.0."),
        "{argo_version}"
    );
    // Argo CD 3.x keeps resource health out of the CR and says so.
    let bearer = format!("Bearer {}", get("argocd_token"));
    let app: Value = http
        .get(format!("{argo}/api/v1/applications/{}", get("argocd_app")))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(app["status"]["resourceHealthSource"], "appTree");
    // An app asked for in another project is 404, as a missing one.
    let other = http
        .get(format!(
            "{argo}/api/v1/applications/{}?project=other",
            get("argocd_app")
        ))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    // The stream drops apps of other projects silently, and refuses a bad token with a unary body.
    let first_line = |project: &'static str| {
        let url = format!(
            "{argo}/api/v1/stream/applications?name={}&project={project}",
            get("argocd_app")
        );
        let request = http.get(url).header("Authorization", &bearer).send();
        async move {
            let mut stream = request.await.unwrap();
            tokio::time::timeout(Duration::from_millis(800), stream.chunk()).await
        }
    };
    let own = first_line("default").await;
    assert!(
        own.as_ref()
            .is_ok_and(|c| c.as_ref().is_ok_and(|c| c.is_some())),
        "the app of its own project comes first: {own:?}"
    );
    let other = first_line("other").await;
    assert!(other.is_err(), "nothing of another project: {other:?}");
    let refused = http
        .get(format!("{argo}/api/v1/stream/applications"))
        .header("Authorization", "Bearer a.b.c")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], 16, "{body}");

    // Old Forgejo: compare by commit ID is 404; the control API moves to Gitea 1.26 at run time.
    let repo = format!("{gitea}/api/v1/repos/{}", get("repository"));
    let auth = format!("token {}", get("token"));
    let branch: Value = http
        .get(format!("{repo}/branches/main"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let head = branch["commit"]["id"].as_str().unwrap().to_owned();
    let compare = |range: String| {
        http.get(format!("{repo}/compare/{range}"))
            .header("Authorization", &auth)
            .send()
    };
    assert_eq!(
        compare(format!("{head}...{head}")).await.unwrap().status(),
        404
    );
    let switched = post(
        format!("{gitea}/_sandbox/profile"),
        serde_json::json!({"gitea": "1.26"}),
    )
    .await
    .unwrap();
    assert_eq!(switched.status(), 200);
    assert_eq!(
        compare(format!("{head}...{head}")).await.unwrap().status(),
        200
    );
    // With pull requests disabled, 1.25 refuses compare, 1.26 does not.
    let settings = format!("{gitea}/_sandbox/repos/{}/settings", get("repository"));
    assert_eq!(
        post(settings.clone(), serde_json::json!({"pulls": false}))
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(compare("main...main".into()).await.unwrap().status(), 200);
    post(
        format!("{gitea}/_sandbox/profile"),
        serde_json::json!({"gitea": "1.25"}),
    )
    .await
    .unwrap();
    assert_eq!(compare("main...main".into()).await.unwrap().status(), 404);
    let unknown = post(
        format!("{argo}/_sandbox/profile"),
        serde_json::json!({"argocd": "1.8"}),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), 400);
}
