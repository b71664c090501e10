//! The README's first command, `cargo run --bin gitops-sandbox -- demo`, runs green: the good
//! release is deployed end to end, the broken one is rolled back, within a minute, and no secret is
//! printed. It calls the same function the command does, with the binary cargo built for this test.

use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_deploys_then_rolls_back_a_broken_release() {
    let mut out: Vec<u8> = Vec::new();
    let bin = Path::new(env!("CARGO_BIN_EXE_gitops-deploy"));
    let report = gitops_sandbox::showcase::run(bin, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();

    assert_eq!(report.good.exit_code, Some(0), "{text}");
    assert_eq!(report.good.output("result"), "success");
    assert_eq!(report.good.output("health"), "Healthy");
    assert_eq!(report.broken.exit_code, Some(1), "{text}");
    assert_eq!(report.broken.output("result"), "rolled_back", "{text}");
    assert_eq!(report.broken.output("previous_tag"), "1.1.0");
    assert_eq!(report.final_version, "1.1.0", "{text}");
    assert!(report.elapsed.as_secs() < 60, "{:?}", report.elapsed);

    // The narration shows the live log (phases as groups), the outputs and both summaries.
    for needle in [
        "▶ gitops-deploy: publish",
        "▶ gitops-deploy: argocd",
        "▶ gitops-deploy: rollout",
        "▶ gitops-deploy: health",
        "▶ gitops-deploy: rollback",
        "✖ Error: ",
        "  result=success",
        "  result=rolled_back",
        "### ✅ gitops-deploy: deployed",
        "gitops-deploy: failed in ",
        "`1.0.0` → | `1.1.0`",
        "the app answers \"1.1.0\"",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    for secret in &report.secrets {
        assert!(!text.contains(secret.as_str()), "a secret was printed");
        assert!(!report
            .good
            .log
            .split_once("::group::")
            .unwrap()
            .1
            .contains(secret.as_str()));
    }
}
