//! Talking to the GitOps repository's host: the Gitea/Forgejo REST client ([`gitea`]), GitHub's pull
//! requests on the same client ([`github`]) and the plain git transport ([`git`]). This module owns transport concerns only (requests, git processes, error
//! classification); what to write and when to retry is decided by [`crate::publish`].

pub mod git;
pub mod gitea;
pub mod github;
