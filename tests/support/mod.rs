//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod loopback;
pub mod names;
#[cfg(target_os = "linux")]
pub mod netns;
