//! gitops-deploy: the GitOps "CD step" as one program.
//!
//! The deploy is a pipeline of steps with a one-way data flow:
//! **inputs → plan → edit → publish → verify (argo → rollout → http) → report**.
//! Each step is its own module with a typed config, a typed outcome and no knowledge of the others;
//! only [`pipeline`] knows their order.

pub mod ancestry;
pub mod argocd;
pub mod cli;
pub mod edit;
pub mod error;
pub mod forge;
pub mod health;
pub mod pipeline;
pub mod publish;
pub mod pull_request;
pub mod report;
pub mod retry;
pub mod rollout;
pub mod runner;
pub mod secret;
pub mod text;
pub mod tls;
pub mod verdict;
pub mod verify;
pub mod wait;
