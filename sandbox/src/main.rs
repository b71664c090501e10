//! `gitops-sandbox`: run the sandbox by hand.
fn main() {}
