//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod loopback;
pub mod names;
pub mod netns;
pub mod skip;
