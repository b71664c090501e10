//! Pure decisions of the pull-request mode: where a pull request stands, from a typed snapshot of
//! what the forge reports (the pull request, the base branch's protection, the head's statuses, the
//! reviews). Rules from Gitea's `services/pull/check.go` (mergeability), `services/pull/commit_status.go`
//! (required contexts are glob patterns; a missing one is pending) and `services/pull/review.go`
//! (only official, non-stale, non-dismissed approvals count); see `docs/research/gitea-pulls.md`.

use crate::forge::gitea::models::{Branch, CommitStatus, PullRequest, PullReview};

/// Everything [`state`] looks at.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    /// The pull request as the forge reports it now.
    pub pull: &'a PullRequest,
    /// The base branch with its protection.
    pub base: &'a Branch,
    /// The latest status of each context of the head commit.
    pub statuses: &'a [CommitStatus],
    /// The reviews.
    pub reviews: &'a [PullReview],
    /// True when the base changed a file our commit changed since the head branched off.
    pub base_changed_our_files: bool,
    /// What the forge says blocks the merge when it does not say why (GitHub's `blocked`).
    pub forge_blocked: Option<&'a str>,
}

/// Where a pull request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Merged: the commit the merge made on the base.
    Merged {
        /// `merge_commit_sha`.
        sha: String,
    },
    /// Closed without a merge (by someone, or superseded).
    Closed,
    /// The head conflicts with the base (the forge cannot merge it, and the base changed a file we
    /// changed): the branch must be re-created from the new base.
    Conflict,
    /// The forge cannot merge it yet but the base did not touch our files: it is still checking.
    Checking,
    /// A required check failed: it will not merge until someone re-runs it.
    CheckFailed {
        /// The context.
        context: String,
        /// `failure`, `error`.
        state: String,
        /// Its description.
        description: String,
    },
    /// Still waiting for these.
    Waiting(Vec<Blocker>),
    /// Nothing blocks the merge.
    Ready,
}

/// What an open pull request waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// Required checks not yet successful: pending, or not reported at all.
    Checks {
        /// `context (pending)` or `pattern (not reported)`, in the protection's order.
        pending: Vec<String>,
    },
    /// Not enough approvals.
    Approvals {
        /// Approvals that count.
        have: u32,
        /// Approvals the protection requires.
        need: u32,
    },
    /// A reviewer requested changes.
    ChangesRequested,
    /// The forge's own rules, as it words them.
    Forge(String),
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::Checks { pending } => write!(f, "required checks: {}", pending.join(", ")),
            Blocker::Approvals { have, need } => {
                write!(f, "approvals: {have} of {need} required")
            }
            Blocker::ChangesRequested => f.write_str("a reviewer requested changes"),
            Blocker::Forge(why) => f.write_str(why),
        }
    }
}

/// Where the pull request stands.
pub fn state(s: &Snapshot<'_>) -> State {
    if s.pull.merged {
        return State::Merged {
            sha: s.pull.merge_commit_sha.clone().unwrap_or_default(),
        };
    }
    if s.pull.state == "closed" {
        return State::Closed;
    }
    if !s.pull.mergeable {
        return if s.base_changed_our_files {
            State::Conflict
        } else {
            State::Checking
        };
    }
    let mut blockers = Vec::new();
    if s.base.enable_status_check {
        let mut pending = Vec::new();
        // No contexts named: every status counts, and none at all is pending.
        let everything = ["*".to_owned()];
        let patterns = if s.base.status_check_contexts.is_empty() {
            &everything[..]
        } else {
            &s.base.status_check_contexts[..]
        };
        for pattern in patterns {
            let matching: Vec<&CommitStatus> = s
                .statuses
                .iter()
                .filter(|st| context_matches(pattern, &st.context))
                .collect();
            if matching.is_empty() {
                pending.push(if s.base.status_check_contexts.is_empty() {
                    "any status (none reported)".to_owned()
                } else {
                    format!("{pattern} (not reported)")
                });
            }
            for st in matching {
                match st.status.as_str() {
                    "success" | "warning" | "skipped" => {}
                    "failure" | "error" => {
                        return State::CheckFailed {
                            context: st.context.clone(),
                            state: st.status.clone(),
                            description: st.description.clone(),
                        }
                    }
                    other => pending.push(format!("{} ({other})", st.context)),
                }
            }
        }
        if !pending.is_empty() {
            blockers.push(Blocker::Checks { pending });
        }
    }
    let counts = |st: &str| {
        s.reviews
            .iter()
            .filter(|r| r.state == st && r.official && !r.stale && !r.dismissed)
            .count() as u32
    };
    if counts("REQUEST_CHANGES") > 0 {
        blockers.push(Blocker::ChangesRequested);
    }
    let have = counts("APPROVED");
    if have < s.base.required_approvals {
        blockers.push(Blocker::Approvals {
            have,
            need: s.base.required_approvals,
        });
    }
    if let (true, Some(why)) = (blockers.is_empty(), s.forge_blocked) {
        blockers.push(Blocker::Forge(why.to_owned()));
    }
    if blockers.is_empty() {
        State::Ready
    } else {
        State::Waiting(blockers)
    }
}

/// True when a status context matches a required pattern: Gitea compiles each pattern with
/// gobwas/glob (`*`, `?`, `[…]`, `{a,b}`) and falls back to equality when it does not compile.
pub fn context_matches(pattern: &str, context: &str) -> bool {
    match globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
    {
        Ok(glob) => glob.compile_matcher().is_match(context),
        Err(_) => pattern == context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pull(state: &str, merged: bool, mergeable: bool) -> PullRequest {
        serde_json::from_value(json!({
            "number": 7, "state": state, "merged": merged, "mergeable": mergeable,
            "merge_commit_sha": if merged { json!("m3rg3d") } else { json!(null) },
            "head": {"ref": "gitops-deploy/web", "sha": "h3ad"},
            "base": {"ref": "main", "sha": "ba5e"},
        }))
        .unwrap()
    }

    fn branch(approvals: u32, contexts: &[&str]) -> Branch {
        serde_json::from_value(json!({
            "name": "main", "commit": {"id": "ba5e"}, "protected": true,
            "required_approvals": approvals,
            "enable_status_check": !contexts.is_empty(),
            "status_check_contexts": contexts,
        }))
        .unwrap()
    }

    /// Protected with status checks on and no contexts named.
    fn branch_all() -> Branch {
        serde_json::from_value(json!({
            "name": "main", "commit": {"id": "ba5e"}, "protected": true,
            "enable_status_check": true, "status_check_contexts": [],
        }))
        .unwrap()
    }

    fn status(context: &str, state: &str) -> CommitStatus {
        serde_json::from_value(json!({"context": context, "status": state, "description": "d"}))
            .unwrap()
    }

    fn review(state: &str, official: bool, stale: bool) -> PullReview {
        serde_json::from_value(json!({"state": state, "official": official, "stale": stale}))
            .unwrap()
    }

    #[test]
    fn states_from_snapshots() {
        let ok = |c: &str| status(c, "success");
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            PullRequest,
            Branch,
            Vec<CommitStatus>,
            Vec<PullReview>,
            State,
        )> = vec![
            (
                "merged",
                pull("closed", true, true),
                branch(0, &[]),
                vec![],
                vec![],
                State::Merged {
                    sha: "m3rg3d".into(),
                },
            ),
            (
                "closed unmerged",
                pull("closed", false, true),
                branch(0, &[]),
                vec![],
                vec![],
                State::Closed,
            ),
            (
                "conflict",
                pull("open", false, false),
                branch(0, &[]),
                vec![],
                vec![],
                State::Conflict,
            ),
            (
                "still checking",
                pull("open", false, false),
                branch(0, &[]),
                vec![],
                vec![],
                State::Checking,
            ),
            (
                "no protection",
                pull("open", false, true),
                branch(0, &[]),
                vec![],
                vec![],
                State::Ready,
            ),
            (
                "checks pass",
                pull("open", false, true),
                branch(0, &["ci/*"]),
                vec![ok("ci/build"), ok("ci/test")],
                vec![],
                State::Ready,
            ),
            (
                "a check is missing",
                pull("open", false, true),
                branch(0, &["ci/build", "lint"]),
                vec![ok("ci/build")],
                vec![],
                State::Waiting(vec![Blocker::Checks {
                    pending: vec!["lint (not reported)".into()],
                }]),
            ),
            (
                "a check is pending",
                pull("open", false, true),
                branch(0, &["ci/*"]),
                vec![ok("ci/build"), status("ci/test", "pending")],
                vec![],
                State::Waiting(vec![Blocker::Checks {
                    pending: vec!["ci/test (pending)".into()],
                }]),
            ),
            (
                "a check failed",
                pull("open", false, true),
                branch(0, &["ci/*"]),
                vec![status("ci/test", "failure")],
                vec![],
                State::CheckFailed {
                    context: "ci/test".into(),
                    state: "failure".into(),
                    description: "d".into(),
                },
            ),
            (
                "an unrequired check failed",
                pull("open", false, true),
                branch(0, &["ci/build"]),
                vec![ok("ci/build"), status("nightly", "failure")],
                vec![],
                State::Ready,
            ),
            (
                "checks not enabled: statuses ignored",
                pull("open", false, true),
                branch(0, &[]),
                vec![status("ci/test", "failure")],
                vec![],
                State::Ready,
            ),
            (
                "checks on, no contexts named: every status, and none is pending",
                pull("open", false, true),
                branch_all(),
                vec![],
                vec![],
                State::Waiting(vec![Blocker::Checks {
                    pending: vec!["any status (none reported)".into()],
                }]),
            ),
            (
                "checks on, no contexts named: a failure anywhere fails",
                pull("open", false, true),
                branch_all(),
                vec![status("ci/build", "success"), status("lint", "failure")],
                vec![],
                State::CheckFailed {
                    context: "lint".into(),
                    state: "failure".into(),
                    description: "d".into(),
                },
            ),
            (
                "a skipped check passes",
                pull("open", false, true),
                branch(0, &["ci/*"]),
                vec![status("ci/build", "success"), status("ci/docs", "skipped")],
                vec![],
                State::Ready,
            ),
            (
                "approvals missing",
                pull("open", false, true),
                branch(2, &[]),
                vec![],
                vec![
                    review("APPROVED", true, false),
                    review("APPROVED", false, false),
                    review("APPROVED", true, true),
                ],
                State::Waiting(vec![Blocker::Approvals { have: 1, need: 2 }]),
            ),
            (
                "approved",
                pull("open", false, true),
                branch(1, &[]),
                vec![],
                vec![review("APPROVED", true, false)],
                State::Ready,
            ),
            (
                "changes requested",
                pull("open", false, true),
                branch(1, &[]),
                vec![],
                vec![
                    review("APPROVED", true, false),
                    review("REQUEST_CHANGES", true, false),
                ],
                State::Waiting(vec![Blocker::ChangesRequested]),
            ),
            (
                "checks and approvals",
                pull("open", false, true),
                branch(1, &["ci"]),
                vec![],
                vec![],
                State::Waiting(vec![
                    Blocker::Checks {
                        pending: vec!["ci (not reported)".into()],
                    },
                    Blocker::Approvals { have: 0, need: 1 },
                ]),
            ),
        ];
        for (name, p, b, st, rv, want) in cases {
            let got = state(&Snapshot {
                pull: &p,
                base: &b,
                statuses: &st,
                reviews: &rv,
                // Unmergeable: a conflict only when the base touched our files.
                base_changed_our_files: name == "conflict",
                forge_blocked: None,
            });
            assert_eq!(got, want, "{name}");
        }
    }

    /// GitHub does not say which rule blocks (its reviews rule is not readable without admin):
    /// its word stands when nothing we can see blocks; what we can see is named first.
    #[test]
    fn the_forges_own_block_counts_when_nothing_else_does() {
        let p = pull("open", false, true);
        let b = branch(0, &["ci"]);
        let blocked = Some("GitHub's branch rules");
        let seen = |statuses: &[CommitStatus]| {
            state(&Snapshot {
                pull: &p,
                base: &b,
                statuses,
                reviews: &[],
                base_changed_our_files: false,
                forge_blocked: blocked,
            })
        };
        assert_eq!(
            seen(&[status("ci", "success")]),
            State::Waiting(vec![Blocker::Forge("GitHub's branch rules".into())])
        );
        assert_eq!(
            seen(&[]),
            State::Waiting(vec![Blocker::Checks {
                pending: vec!["ci (not reported)".into()]
            }])
        );
    }

    #[test]
    fn contexts_match_as_gitea_globs() {
        for (pattern, context, want) in [
            ("ci/build", "ci/build", true),
            ("ci/*", "ci/build", true),
            ("ci/*", "ci/build/linux", true),
            ("ci/?", "ci/a", true),
            ("{lint,test}", "test", true),
            ("ci/build", "ci/build2", false),
            ("[", "[", true),
        ] {
            assert_eq!(
                context_matches(pattern, context),
                want,
                "{pattern} {context}"
            );
        }
    }
}
