//! No code: this crate only unifies dependency features across the workspace's builds.
//! See its `Cargo.toml` and docs/decisions/0002-one-feature-set-for-every-build.md.
