//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod dns;
#[cfg(target_os = "linux")]
pub mod ech;
pub mod loopback;
pub mod names;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod skip;
pub mod tls;

/// The `connect` example that `cargo test` (and nextest) builds next to the test binaries.
pub fn example() -> std::path::PathBuf {
    let mut path = std::env::current_exe().expect("test binary path");
    path.pop(); // the test binary
    if path.ends_with("deps") {
        path.pop();
    }
    path.push("examples");
    path.push(format!("connect{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test` or `cargo nextest run`, which build examples",
        path.display()
    );
    path
}
