//! Verify options (Argo CD, rollout, HTTP check, deadlines, rollback), shared by `run` and `wait`.
//! Raw strings only; [`crate::verify::Config::from_args`] types and checks them. An empty value
//! (`INPUT_X=""`, as runners set for inputs without a value) means "not given".

use clap::Args;

/// Options of the verification phases. Each phase runs only when configured: Argo CD with
/// `argocd_app`, rollout with `rollout` or `kubeconfig`, the HTTP check with `health_url`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Verify")]
pub struct VerifyArgs {
    /// Argo CD server URL (`https://argocd.example.com`; `https://` is assumed without a scheme).
    #[arg(long, env = "INPUT_ARGOCD_SERVER", value_name = "URL")]
    pub argocd_server: Option<String>,
    /// Argo CD API token. Prefer the environment variable: a flag is visible to other processes.
    #[arg(
        long,
        env = "INPUT_ARGOCD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub argocd_token: Option<String>,
    /// Argo CD application to wait for; leave empty to skip the Argo CD phase.
    #[arg(long, env = "INPUT_ARGOCD_APP", value_name = "NAME")]
    pub argocd_app: Option<String>,
    /// Namespace of the Application object (apps in any namespace).
    #[arg(long, env = "INPUT_ARGOCD_APP_NAMESPACE", value_name = "NS")]
    pub argocd_app_namespace: Option<String>,
    /// Argo CD project of the app (turns "permission denied" for a missing app into "not found").
    #[arg(long, env = "INPUT_ARGOCD_PROJECT", value_name = "NAME")]
    pub argocd_project: Option<String>,
    /// When to trigger a sync: `auto` (only for apps without auto-sync), `always` or `never`
    /// [default: auto].
    #[arg(long, env = "INPUT_ARGOCD_SYNC", value_name = "auto|always|never")]
    pub argocd_sync: Option<String>,
    /// Skip TLS verification of the Argo CD server. Accepts true/false.
    #[arg(long, env = "INPUT_ARGOCD_INSECURE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub argocd_insecure: Option<String>,
    /// CA certificate(s) for the Argo CD server: a PEM file path or the PEM text itself.
    #[arg(long, env = "INPUT_ARGOCD_CA", value_name = "PEM|FILE")]
    pub argocd_ca: Option<String>,
    /// Kubeconfig for reading workloads directly: a file path, the YAML itself or its base64. Without
    /// it, workloads are read through Argo CD.
    #[arg(
        long,
        env = "INPUT_KUBECONFIG",
        hide_env_values = true,
        value_name = "FILE|YAML|BASE64"
    )]
    pub kubeconfig: Option<String>,
    /// Workloads to check, `kind/name` (deployment, statefulset, daemonset), newline- or
    /// comma-separated, or `auto`: those of the Argo CD app whose template uses our image.
    #[arg(long, env = "INPUT_ROLLOUT", value_name = "KIND/NAME")]
    pub rollout: Vec<String>,
    /// Namespace of the `rollout` workloads [default: the kubeconfig context's, or the app's].
    #[arg(long, env = "INPUT_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// URL the HTTP check polls; leave empty to skip it.
    #[arg(long, env = "INPUT_HEALTH_URL", value_name = "URL")]
    pub health_url: Option<String>,
    /// Expected HTTP status [default: 200].
    #[arg(long, env = "INPUT_HEALTH_EXPECT_STATUS", value_name = "CODE")]
    pub health_expect_status: Option<String>,
    /// Expected body: text it must contain, or `re:REGEX`; `{tag}` and `{digest}` are replaced by
    /// the deployed values.
    #[arg(long, env = "INPUT_HEALTH_EXPECT_BODY", value_name = "TEXT|re:REGEX")]
    pub health_expect_body: Option<String>,
    /// Consecutive passing answers required [default: 3].
    #[arg(long, env = "INPUT_HEALTH_SUCCESSES", value_name = "N")]
    pub health_successes: Option<String>,
    /// Time between HTTP checks [default: 2s].
    #[arg(long, env = "INPUT_HEALTH_INTERVAL", value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Overall deadline of the whole command (`90s`, `10m`, `1h30m` or seconds) [default: 10m].
    #[arg(long, env = "INPUT_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Deadline of the Argo CD phase [default: what is left of `timeout`].
    #[arg(long, env = "INPUT_SYNC_TIMEOUT", value_name = "DURATION")]
    pub sync_timeout: Option<String>,
    /// Deadline of the rollout phase [default: what is left of `timeout`].
    #[arg(long, env = "INPUT_ROLLOUT_TIMEOUT", value_name = "DURATION")]
    pub rollout_timeout: Option<String>,
    /// Deadline of the HTTP check [default: what is left of `timeout`].
    #[arg(long, env = "INPUT_HEALTH_TIMEOUT", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// How long `Degraded`/`Missing` health, an `…Error` condition or a stuck pod may last before
    /// the deploy fails [default: 30s].
    #[arg(long, env = "INPUT_DEGRADED_GRACE", value_name = "DURATION")]
    pub degraded_grace: Option<String>,
    /// After a verify failure, write the previous values back (remove the entry if the deploy added
    /// it) and wait for them. Accepts true/false.
    #[arg(long, env = "INPUT_ROLLBACK_ON_FAILURE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rollback_on_failure: Option<String>,
    /// How to read the Argo CD application: `stream` (default, falls back to polling) or `poll`
    /// (every 2 s). For benchmarks and proxies that break streams.
    #[arg(
        long,
        env = "INPUT_ARGOCD_WATCH",
        value_name = "stream|poll",
        hide = true
    )]
    pub argocd_watch: Option<String>,
}
