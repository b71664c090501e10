//! Scripted faults shared by every sandbox server.
//!
//! A test (or a person, through `POST /_sandbox/faults` on any server) queues [`FaultRule`]s; the HTTP
//! layer in [`crate::http`] asks [`Faults::take`] before routing each request and, when a rule matches,
//! answers with the fault instead of the real handler. Rules are consumed: a rule with `times: 2`
//! fires on the next two matching requests and is then gone, so a test can script "503 twice, then
//! the real answer".
//!
//! Gitea also has a "race": [`Faults::race_next_write`] makes another commit land on a branch just
//! before the next API write or `git push` to that branch is applied, so the write meets a moved head
//! exactly as it would when two pipelines deploy at once. The Gitea module consumes it with
//! [`Faults::take_race`]. This module only stores rules; it never touches the network or git.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

/// Which sandbox server a fault rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    /// The Gitea server (API and git smart HTTP).
    Gitea,
    /// The Argo CD API server.
    #[serde(rename = "argocd")]
    ArgoCd,
    /// The Kubernetes API server.
    Kube,
    /// The deployed application's endpoint.
    App,
}

impl Server {
    /// The lowercase name used in JSON and logs (`gitea`, `argocd`, `kube`, `app`).
    pub fn as_str(self) -> &'static str {
        match self {
            Server::Gitea => "gitea",
            Server::ArgoCd => "argocd",
            Server::Kube => "kube",
            Server::App => "app",
        }
    }
}

/// What a matching request gets instead of the real answer.
///
/// JSON forms: `{"status": 503}`, `"timeout"`, `"reset"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// Answer with this HTTP status and an error body in the server's own shape (Gitea
    /// `{message, url}`, Argo CD `{error, code, message}`, a Kubernetes `Status`, text for the app).
    Status(u16),
    /// Send nothing: the request stalls past any sane client timeout. The stall is bounded (until the
    /// server shuts down, or [`crate::http::STALL_LIMIT`], after which a 504 is sent) so no task leaks.
    Timeout,
    /// Close the TCP connection without a response, with `SO_LINGER 0` so the client sees a reset.
    Reset,
}

/// One scripted fault: the next `times` requests that match get `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The server whose requests are matched.
    pub server: Server,
    /// Only requests with this method match; `None` matches every method.
    #[serde(default, with = "method_serde")]
    pub method: Option<http::Method>,
    /// Only requests whose path (without the query) contains this string match; empty matches all.
    #[serde(default)]
    pub path_contains: String,
    /// The fault to answer with.
    pub kind: FaultKind,
    /// How many matching requests get the fault; the rule is removed after the last one.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl FaultRule {
    /// A rule for `server` that fires once on every method and path; adjust with the builder methods.
    pub fn new(server: Server, kind: FaultKind) -> Self {
        FaultRule {
            server,
            method: None,
            path_contains: String::new(),
            kind,
            times: 1,
        }
    }

    /// Restrict the rule to one HTTP method.
    pub fn method(mut self, method: http::Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Restrict the rule to paths containing `fragment`.
    pub fn path_contains(mut self, fragment: impl Into<String>) -> Self {
        self.path_contains = fragment.into();
        self
    }

    /// Fire on the next `times` matching requests instead of once.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    fn matches(&self, server: Server, method: &http::Method, path: &str) -> bool {
        self.times > 0
            && self.server == server
            && self.method.as_ref().is_none_or(|m| m == method)
            && path.contains(&self.path_contains)
    }
}

/// A commit that lands on `repository`/`branch` just before the next write to that branch.
///
/// The racing commit appends the line `# racing commit <n>` to the file at `path` (creating it when
/// missing). Point `path` at the file the client edits to make its `sha` guard fail (422), or at
/// another file to make only the branch head move under the write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Race {
    /// `owner/name` of the repository.
    pub repository: String,
    /// The branch the racing commit lands on.
    pub branch: String,
    /// The file the racing commit changes.
    pub path: String,
}

/// The shared, cloneable fault schedule of one sandbox.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<FaultRule>,
    races: Vec<Race>,
}

impl Faults {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue a rule. Rules are matched in the order they were injected.
    pub fn inject(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// Remove every queued rule and race.
    pub fn clear(&self) {
        let mut state = self.lock();
        state.rules.clear();
        state.races.clear();
    }

    /// Rules not yet used up (for assertions: an empty list means every scripted fault fired).
    pub fn pending(&self) -> Vec<FaultRule> {
        self.lock().rules.clone()
    }

    /// The fault for this request, if a rule matches; consumes one use of the first matching rule.
    pub fn take(&self, server: Server, method: &http::Method, path: &str) -> Option<FaultKind> {
        let mut state = self.lock();
        let index = state
            .rules
            .iter()
            .position(|rule| rule.matches(server, method, path))?;
        let rule = &mut state.rules[index];
        rule.times -= 1;
        let kind = rule.kind;
        if rule.times == 0 {
            state.rules.remove(index);
        }
        Some(kind)
    }

    /// Make a commit land on the race's branch just before the next API write or push to it.
    pub fn race_next_write(&self, race: Race) {
        self.lock().races.push(race);
    }

    /// Take the pending race for `repository` (`owner/name`) and `branch`, if any.
    pub fn take_race(&self, repository: &str, branch: &str) -> Option<Race> {
        let mut state = self.lock();
        let index = state
            .races
            .iter()
            .position(|r| r.repository == repository && r.branch == branch)?;
        Some(state.races.remove(index))
    }

    /// Take any pending race for `repository`, whatever its branch (a push names its branches only
    /// inside the request body, so the git proxy applies the race before it knows them).
    pub fn take_race_any_branch(&self, repository: &str) -> Option<Race> {
        let mut state = self.lock();
        let index = state
            .races
            .iter()
            .position(|r| r.repository == repository)?;
        Some(state.races.remove(index))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the rule list half-updated, so a poisoned
        // lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serde for `Option<http::Method>` as an uppercase string.
mod method_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &Option<http::Method>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => s.serialize_some(m.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<http::Method>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        raw.map(|m| {
            http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| serde::de::Error::custom(format!("invalid HTTP method {m:?}")))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_in_order_and_are_consumed() {
        let faults = Faults::new();
        faults.inject(
            FaultRule::new(Server::Gitea, FaultKind::Status(503))
                .method(http::Method::PUT)
                .path_contains("/contents/")
                .times(2),
        );
        faults.inject(FaultRule::new(Server::Gitea, FaultKind::Reset));
        let put = http::Method::PUT;
        let get = http::Method::GET;
        assert_eq!(faults.take(Server::ArgoCd, &put, "/x/contents/a"), None);
        assert_eq!(
            faults.take(Server::Gitea, &get, "/x/contents/a"),
            Some(FaultKind::Reset)
        );
        assert_eq!(
            faults.take(Server::Gitea, &put, "/x/contents/a"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(
            faults.take(Server::Gitea, &put, "/x/contents/a"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(faults.take(Server::Gitea, &put, "/x/contents/a"), None);
        assert!(faults.pending().is_empty());
    }

    #[test]
    fn rule_json_forms() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"server":"argocd","method":"get","path_contains":"/sync","kind":{"status":502},"times":3}"#,
        )
        .unwrap();
        assert_eq!(rule.server, Server::ArgoCd);
        assert_eq!(rule.method, Some(http::Method::GET));
        assert_eq!(rule.kind, FaultKind::Status(502));
        let rule: FaultRule = serde_json::from_str(r#"{"server":"kube","kind":"reset"}"#).unwrap();
        assert_eq!(rule.times, 1);
        assert_eq!(rule.kind, FaultKind::Reset);
        assert!(serde_json::from_str::<FaultRule>(r#"{"server":"kube","kind":"boom"}"#).is_err());
    }
}
