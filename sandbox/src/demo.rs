//! The demo GitOps repository seeded into a fresh sandbox: `demo/gitops`, branch `main`, a `web`
//! app with a base and a `prod` overlay whose kustomization sets the image tag. Other parts of the
//! sandbox (the Argo CD app `web-prod`, the Deployment `web`) point at these names, so they are
//! constants here rather than strings repeated in each part.

use crate::gitea::{Error, Gitea};

/// Owner of the demo repository.
pub const OWNER: &str = "demo";
/// Name of the demo repository.
pub const REPO: &str = "gitops";
/// `owner/name` of the demo repository.
pub const REPOSITORY: &str = "demo/gitops";
/// The branch Argo CD follows.
pub const BRANCH: &str = "main";
/// The overlay Argo CD renders (the deploy step edits its `kustomization.yaml`).
pub const PATH: &str = "apps/web/overlays/prod";
/// The overlay's kustomization file.
pub const KUSTOMIZATION: &str = "apps/web/overlays/prod/kustomization.yaml";
/// The image name the overlay's `images` entry matches.
pub const IMAGE: &str = "registry.example.com/demo/web";
/// The tag the overlay sets initially.
pub const TAG: &str = "1.0.0";
/// The workload's name (Deployment and Service).
pub const WORKLOAD: &str = "web";
/// The workload's namespace.
pub const NAMESPACE: &str = "web";
/// Replicas of the Deployment.
pub const REPLICAS: u32 = 3;

/// `apps/web/base/kustomization.yaml`.
pub const BASE_KUSTOMIZATION: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
";

/// `apps/web/base/deployment.yaml`: 3 replicas, ready when `/version` answers, and a short progress
/// deadline so a broken image fails the rollout quickly.
pub const BASE_DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels:
    app: web
spec:
  replicas: 3
  progressDeadlineSeconds: 60
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: registry.example.com/demo/web:0.0.0-base
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /version
              port: http
            periodSeconds: 2
";

/// `apps/web/base/service.yaml`.
pub const BASE_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: web
spec:
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: http
";

/// `apps/web/overlays/prod/kustomization.yaml`, with comments the deploy step must keep intact.
pub const PROD_KUSTOMIZATION: &str = "\
# Production overlay of the web app.
# The deploy step changes only the image tag below; keep the rest as it is.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: web
resources:
  - ../../base
images:
  # The app image, pinned per release.
  - name: registry.example.com/demo/web
    newTag: \"1.0.0\" # set by CI
";

/// Create `demo/gitops` with the base and overlay on `main`; returns the commit id.
///
/// # Errors
/// The repository exists already, or git failed.
pub async fn seed(gitea: &Gitea) -> Result<String, Error> {
    gitea.create_repo(OWNER, REPO, BRANCH).await?;
    gitea
        .commit_files(
            OWNER,
            REPO,
            BRANCH,
            &[
                (
                    "README.md",
                    "# demo/gitops\n\nThe GitOps repository of the sandbox's demo.\n",
                ),
                ("apps/web/base/kustomization.yaml", BASE_KUSTOMIZATION),
                ("apps/web/base/deployment.yaml", BASE_DEPLOYMENT),
                ("apps/web/base/service.yaml", BASE_SERVICE),
                (KUSTOMIZATION, PROD_KUSTOMIZATION),
            ],
            "Add the web app (base and prod overlay)",
        )
        .await
}
