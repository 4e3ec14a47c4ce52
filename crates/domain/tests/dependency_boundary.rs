//! The domain crate must stay free of I/O frameworks; this test reads its manifest.

#[test]
fn domain_has_no_io_dependencies() {
    let manifest = include_str!("../Cargo.toml");
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("the manifest has a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap_or_default();
    for forbidden in ["tokio", "sqlx", "axum", "hyper", "reqwest", "tower"] {
        let listed = dependencies
            .lines()
            .any(|line| line.trim_start().starts_with(forbidden));
        assert!(!listed, "the domain crate depends on {forbidden}");
    }
}
