//! Platform code for the dial, kept apart so that `dial.rs` reads without `cfg`: how a socket is
//! made non-blocking, the options only some systems have, and what each system offers to make a
//! dead address fail fast instead of after its SYN retries.
//!
//! Every platform module has the same four functions:
//!
//! - `nonblocking_stream(domain)`: a non-blocking TCP socket, in one system call where the
//!   system can (`SOCK_NONBLOCK`).
//! - `sets_recverr(remote, options)`: whether the attempt carries an option that must be
//!   cleared once connected (`IPV6_RECVERR` on Linux; nothing elsewhere).
//! - `apply(socket, remote, options, recverr)`: the platform's options, before bind and connect.
//! - `clear_recverr(stream)`: undoes what `sets_recverr` asked for, on the connected stream.
//!
//! and `INTERFACE_BINDING`, whether [`Builder::interface`](crate::Builder::interface) has a
//! per-socket equivalent here (`Builder::build` refuses it where not).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
