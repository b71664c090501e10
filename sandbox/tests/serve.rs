//! `gitops-sandbox serve` driven from outside, as a person reproducing a field behaviour by hand
//! would: version and scenario flags, and the control API on the Argo CD server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

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
        "get-only-1",
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
    let bearer = "Bearer get-only-1";
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
        admin(
            "tokens/get-only",
            serde_json::json!({"token": "get-only-2"})
        )
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
        .header("Authorization", "Bearer get-only-2")
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
}
