//! Version profiles: which release of Gitea/Forgejo and of Argo CD the sandbox behaves as, where
//! releases differ in ways a deploy client can see.
//!
//! Every flag below is a behaviour read from the upstream source; the table in
//! `docs/compatibility.md` lists each with the versions, the upstream file and the test covering it.
//! A profile is chosen by name (`gitops-sandbox serve --gitea 1.22 --argocd 3.0`,
//! [`GiteaProfile::named`], [`ArgoProfile::named`]); the defaults are the newest releases.

/// Which forge a profile is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forge {
    /// go-gitea/gitea.
    Gitea,
    /// forgejo/forgejo.
    Forgejo,
}

/// Behaviours of one Gitea or Forgejo release line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GiteaProfile {
    /// Short name (`gitea-1.22`, `forgejo-8`).
    pub name: &'static str,
    /// Gitea or Forgejo.
    pub forge: Forge,
    /// What `GET /api/v1/version` answers. Forgejo appends the Gitea API level it is compatible with
    /// (forgejo Makefile `FORGEJO_VERSION`/`GITEA_VERSION`, main.go; docs/research/field-gitea.md §6).
    pub version: &'static str,
    /// The compare API resolves commit IDs: Gitea ≥ 1.23 (go-gitea/gitea#32801, `IsStringLikelyCommitID`;
    /// 1.22 has compare since #30349 for branch and tag names only: a base SHA is 404 "BaseNotExist",
    /// a head SHA 404 "The target couldn't be found.", v1.22.6 routers/api/v1/repo/pull.go:1103-1182)
    /// and Forgejo ≥ 9.0.3 (forgejo#5991/#5993; v8.0.3 pull.go:1103 answers "BaseNotExist").
    pub compare_takes_commit_ids: bool,
    /// The compare API needs pull-request read: with pull requests disabled it is 404 "Can't read
    /// pulls or can't read UnitTypeCode" (`parseCompareInfo` → `CanReadIssuesOrPulls`, v1.25.2
    /// pull.go:1140-1144; every Forgejo, v11.0.1 pull.go:1166-1174). Gitea 1.25.3 and 1.26 dropped
    /// the check (go-gitea/gitea#36166, backport #36144).
    pub compare_needs_pulls: bool,
    /// Status of a contents write whose `sha` is stale: 422 "sha does not match [given: X, expected:
    /// Y]" (Gitea, Forgejo ≤ 11: routers/api/v1/repo/file.go `handleChangeRepoFilesError`), 409 with the
    /// same text from Forgejo 12.0 (forgejo#8139, v15.0.3 file.go:778-781).
    pub stale_sha_status: u16,
    /// Status of a contents write a pre-receive hook declines: 403 with the hook's `remote:` lines on
    /// Gitea ≥ 1.26 (go-gitea/gitea#35592, `git.ErrPushRejected`), else unmapped: 500 whose message
    /// production mode blanks (`{"message":"","url":…}`, services/context/api.go:119-131), also on
    /// released Forgejo (v15.0.3 file.go:788).
    pub hook_rejection_status: u16,
    /// 404 bodies carry `"errors"`: `null` (Gitea ≤ 1.26 `APIErrorNotFound`, a map), `[]` (Forgejo ≥ 9
    /// `APINotFound`), absent (Gitea ≥ 1.27, go-gitea/gitea#38031).
    pub not_found_errors: NotFoundErrors,
}

impl GiteaProfile {
    /// The Gitea minor version (`Some(25)` for 1.25.x); `None` for Forgejo.
    fn gitea_minor(&self) -> Option<u32> {
        if self.forge != Forge::Gitea {
            return None;
        }
        self.version.split('.').nth(1)?.parse().ok()
    }

    /// Merge refusals by branch protection are bare texts ("Does not have enough approvals") on
    /// Gitea ≥ 1.24 (go-gitea/gitea#27779 `ErrNotReadyToMerge`); Forgejo and older Gitea wrap them:
    /// `not allowed to merge [reason: …]` (forgejo models/error.go `ErrDisallowedToMerge`).
    pub fn merge_reasons_bare(&self) -> bool {
        self.gitea_minor().is_some_and(|m| m >= 24)
    }

    /// The combined status of a commit without statuses is a `null` body on Gitea ≤ 1.24 and
    /// Forgejo; `{"state": "pending", …}` since Gitea 1.25 (go-gitea/gitea#34562).
    pub fn empty_combined_status_is_null(&self) -> bool {
        self.gitea_minor().is_none_or(|m| m < 25)
    }

    /// `merge_when_checks_succeed` always schedules (201, merged asynchronously) on Gitea ≥ 1.23
    /// (go-gitea/gitea#30780) and Forgejo; Gitea 1.22 merged at once (200) when the checks passed.
    pub fn auto_merge_always_schedules(&self) -> bool {
        self.gitea_minor().is_none_or(|m| m > 22)
    }
}

/// The `errors` member of a 404 body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotFoundErrors {
    /// `"errors": null`.
    Null,
    /// `"errors": []`.
    Empty,
}

/// Every Gitea/Forgejo profile, oldest first per forge.
pub const GITEA_PROFILES: [GiteaProfile; 5] = [
    GiteaProfile {
        name: "gitea-1.22",
        forge: Forge::Gitea,
        version: "1.22.6",
        compare_takes_commit_ids: false,
        compare_needs_pulls: true,
        stale_sha_status: 422,
        hook_rejection_status: 500,
        not_found_errors: NotFoundErrors::Null,
    },
    GiteaProfile {
        name: "gitea-1.25",
        forge: Forge::Gitea,
        version: "1.25.2",
        compare_takes_commit_ids: true,
        compare_needs_pulls: true,
        stale_sha_status: 422,
        hook_rejection_status: 500,
        not_found_errors: NotFoundErrors::Null,
    },
    GiteaProfile {
        name: "gitea-1.26",
        forge: Forge::Gitea,
        version: "1.26.4",
        compare_takes_commit_ids: true,
        compare_needs_pulls: false,
        stale_sha_status: 422,
        hook_rejection_status: 403,
        not_found_errors: NotFoundErrors::Null,
    },
    GiteaProfile {
        name: "forgejo-8",
        forge: Forge::Forgejo,
        version: "8.0.3+gitea-1.22.0",
        compare_takes_commit_ids: false,
        compare_needs_pulls: true,
        stale_sha_status: 422,
        hook_rejection_status: 500,
        not_found_errors: NotFoundErrors::Null,
    },
    GiteaProfile {
        name: "forgejo-12",
        forge: Forge::Forgejo,
        version: "12.0.4+gitea-1.22.0",
        compare_takes_commit_ids: true,
        compare_needs_pulls: true,
        stale_sha_status: 409,
        hook_rejection_status: 500,
        not_found_errors: NotFoundErrors::Empty,
    },
];

impl GiteaProfile {
    /// The newest Gitea, the default.
    pub const NEWEST: GiteaProfile = GITEA_PROFILES[2];

    /// A profile by name: `gitea-1.22`, `1.22`, `1.22.6` (any patch), `forgejo-8`, `forgejo-old`
    /// (= 8), `forgejo` / `forgejo-new` (= 12), `gitea` / `latest` (= 1.26).
    pub fn named(name: &str) -> Option<GiteaProfile> {
        let name = name.trim().to_ascii_lowercase();
        let alias = match name.as_str() {
            "gitea" | "latest" => "gitea-1.26",
            "forgejo" | "forgejo-new" => "forgejo-12",
            "forgejo-old" => "forgejo-8",
            other => other,
        };
        GITEA_PROFILES.into_iter().find(|p| {
            p.name == alias
                || p.name.strip_prefix("gitea-").is_some_and(|v| {
                    alias == v || alias.strip_prefix(v).is_some_and(|r| r.starts_with('.'))
                })
        })
    }

    /// The nearest profile for a version string (`1.22.6` → gitea-1.22); `None` when none parses.
    /// An approximation between the lines the profiles stand for: Forgejo 9–11 get forgejo-8
    /// (whose compare is older than 9.0.3's), Gitea 1.25.3+ gets gitea-1.25 (whose compare still
    /// needs pull requests); pick a profile by name for those.
    pub fn for_version(version: &str) -> Option<GiteaProfile> {
        if let Some((forgejo, _)) = version.split_once("+gitea-") {
            let major: u32 = forgejo.split('.').next()?.parse().ok()?;
            return Some(GITEA_PROFILES[if major >= 12 { 4 } else { 3 }]);
        }
        let mut parts = version.split(['.', '-', '+']);
        let (major, minor): (u32, u32) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
        Some(match (major, minor) {
            (1, ..=22) => GITEA_PROFILES[0],
            (1, 23..=25) => GITEA_PROFILES[1],
            _ => GITEA_PROFILES[2],
        })
    }
}

/// What `status.health.message` of an Application says when it is not Healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppHealthMessage {
    /// Never set by the controller: v2.14 and v3.0 write only the status (controller/health.go,
    /// appcontroller.go:1778), v3.1–v3.5 mark the field "Deprecated: this field is not used".
    None,
    /// "Caused by apps/Deployment:ns/name" (HEAD, argo-cd#28455, in no release yet).
    CausedBy,
}

/// Behaviours of one Argo CD release line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgoProfile {
    /// Short name (`argocd-3.0`).
    pub name: &'static str,
    /// The release the profile was read from.
    pub version: &'static str,
    /// Resource health is stored in the Application (`status.resources[].health`); from 3.0 it is
    /// not (`controller.resource.health.persist` defaults to false, `status.resourceHealthSource:
    /// appTree`), and the API server fills it back in from the resource tree cache
    /// (server/application/application.go `inferResourcesStatusHealth`), nil on a cache miss.
    pub persist_resource_health: bool,
    /// A Missing resource makes the app Missing (before 3.4); from 3.4 only "no resource is live"
    /// does (controller/health.go `setApplicationHealth`).
    pub missing_makes_app_missing: bool,
    /// What the app-level health message says.
    pub app_health_message: AppHealthMessage,
}

/// Every Argo CD profile, oldest first.
pub const ARGO_PROFILES: [ArgoProfile; 4] = [
    ArgoProfile {
        name: "argocd-2.14",
        version: "v2.14.11",
        persist_resource_health: true,
        missing_makes_app_missing: true,
        app_health_message: AppHealthMessage::None,
    },
    ArgoProfile {
        name: "argocd-3.0",
        version: "v3.0.6",
        persist_resource_health: false,
        missing_makes_app_missing: true,
        app_health_message: AppHealthMessage::None,
    },
    ArgoProfile {
        name: "argocd-3.4",
        version: "v3.4.2",
        persist_resource_health: false,
        missing_makes_app_missing: false,
        app_health_message: AppHealthMessage::None,
    },
    ArgoProfile {
        name: "argocd-3.6",
        version: "v3.6.0-rc0",
        persist_resource_health: false,
        missing_makes_app_missing: false,
        app_health_message: AppHealthMessage::CausedBy,
    },
];

impl ArgoProfile {
    /// The newest released line (3.4–3.5), the default.
    pub const NEWEST: ArgoProfile = ARGO_PROFILES[2];

    /// A profile by name: `argocd-3.0`, `3.0`, `3.2` (any minor in the line: 3.0–3.3 → 3.0, 3.4–3.5 →
    /// 3.4), `v3.1.8`, `2.14`, `latest` (= 3.4), `head` (= 3.6, unreleased).
    pub fn named(name: &str) -> Option<ArgoProfile> {
        let name = name.trim().to_ascii_lowercase();
        let v = name
            .strip_prefix("argocd-")
            .unwrap_or(&name)
            .trim_start_matches('v');
        match v {
            "latest" | "argocd" => return Some(Self::NEWEST),
            "head" => return Some(ARGO_PROFILES[3]),
            _ => {}
        }
        let mut parts = v.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        Some(match (major, minor) {
            (2, 14) => ARGO_PROFILES[0],
            (3, 0..=3) => ARGO_PROFILES[1],
            (3, 4..=5) => ARGO_PROFILES[2],
            (3, 6..) => ARGO_PROFILES[3],
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_found_by_every_documented_name() {
        for (name, want) in [
            ("gitea-1.22", "gitea-1.22"),
            ("1.22", "gitea-1.22"),
            ("1.22.6", "gitea-1.22"),
            ("1.25", "gitea-1.25"),
            ("latest", "gitea-1.26"),
            ("forgejo-old", "forgejo-8"),
            ("forgejo", "forgejo-12"),
            ("Forgejo-8", "forgejo-8"),
        ] {
            assert_eq!(
                GiteaProfile::named(name).map(|p| p.name),
                Some(want),
                "{name}"
            );
        }
        assert_eq!(GiteaProfile::named("1.2"), None);
        assert_eq!(GiteaProfile::named("1.221"), None);
        for (name, want) in [
            ("2.14", "argocd-2.14"),
            ("3.0", "argocd-3.0"),
            ("v3.3.1", "argocd-3.0"),
            ("argocd-3.4", "argocd-3.4"),
            ("3.5", "argocd-3.4"),
            ("3.6", "argocd-3.6"),
            ("latest", "argocd-3.4"),
            ("head", "argocd-3.6"),
        ] {
            assert_eq!(
                ArgoProfile::named(name).map(|p| p.name),
                Some(want),
                "{name}"
            );
        }
        assert_eq!(ArgoProfile::named("2.8"), None);
    }

    #[test]
    fn versions_map_to_their_line() {
        for (v, want) in [
            ("1.22.6", "gitea-1.22"),
            ("1.23.0", "gitea-1.25"),
            ("1.26.4", "gitea-1.26"),
            ("1.27.0+dev-12-gabc", "gitea-1.26"),
            ("8.0.3+gitea-1.22.0", "forgejo-8"),
            ("12.0.4+gitea-1.22.0", "forgejo-12"),
        ] {
            assert_eq!(
                GiteaProfile::for_version(v).map(|p| p.name),
                Some(want),
                "{v}"
            );
        }
    }
}
