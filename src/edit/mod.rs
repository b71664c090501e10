//! The edit engine: a kustomize-compatible, byte-preserving `set image`.
