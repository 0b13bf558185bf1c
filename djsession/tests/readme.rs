//! The quick start shown in the READMEs is `examples/quickstart.rs`, byte for byte, and fits in
//! the 25 lines it promises. (`.ci/quickstart` compiles and serves that example.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

const EXAMPLE: &str = include_str!("../examples/quickstart.rs");

/// The first ```rust block of `markdown`.
fn first_rust_block(markdown: &str) -> &str {
    let start = markdown
        .find("```rust")
        .expect("the README has a rust code block");
    let body = &markdown[start..];
    let body = &body[body.find('\n').expect("a fence line") + 1..];
    &body[..body.find("```").expect("a closing fence")]
}

#[test]
fn the_workspace_readme_quick_start_is_the_example() {
    let readme = include_str!("../../README.md");
    assert_eq!(first_rust_block(readme), EXAMPLE);
}

#[test]
fn the_crate_readme_quick_start_is_the_example() {
    let readme = include_str!("../README.md");
    assert_eq!(first_rust_block(readme), EXAMPLE);
}

#[test]
fn the_quick_start_is_at_most_25_lines() {
    assert!(
        EXAMPLE.lines().count() <= 25,
        "{} lines",
        EXAMPLE.lines().count()
    );
}

#[test]
fn the_quick_start_is_added_with_one_cargo_add() {
    let readme = include_str!("../../README.md");
    assert!(readme.contains("cargo add djsession --features postgres,axum"));
}
