//! gitops-sandbox: a local GitOps world (Gitea with real git, Argo CD, Kubernetes, the app) on loopback.
