//! What the test binaries (and the verify-latency benchmark) share, one module per concern; each
//! binary declares `mod support;` and uses its part:
//! - [`world`]: a whole GitOps world on the sandbox (Gitea, Argo CD, Kubernetes, the app) and running
//!   the binary against it (`--output json` reports);
//! - [`publish`]: seeding repositories, publish configs, git inspection, an answer-dropping proxy;
//! - [`runner`]: the deploy as a CI runner starts it (`INPUT_*`, the runner's variables and files);
//! - [`edit_vectors`], [`values_vectors`]: the vector tables of the edit and values engines.
#![allow(dead_code)]

pub mod edit_vectors;
pub mod publish;
pub mod runner;
pub mod values_vectors;
pub mod world;
