//! The loopback connects of `benches/connect.rs`, timed paired and interleaved, for the ratios.
//!
//! On a shared machine the speed of everything drifts by 10–25 % over seconds, and criterion
//! measures one contender for seconds, then the next: a 10 % difference between two of them is
//! then as likely the drift as the code. Here every round times a block of connects for each
//! contender back to back (in a rotating order), so all of them meet the same moment's machine,
//! and the ratios to Tokio's `TcpStream::connect` and to hyper-util's `HttpConnector` are taken
//! within each round. The medians of those per-round ratios are what the README quotes, with
//! their spread between rounds (the middle half of the rounds) and the share of rounds in which
//! the contender was the faster of the two.
//!
//! Contenders, each with its defaults (see `benches/connect.rs`): connect-by-list's
//! `Connector::connect`, Tokio's `TcpStream::connect`, hyper-util's `HttpConnector` through its
//! `Service<Uri>`. Every connect goes to 127.0.0.1 only.
//!
//! Run: `cargo bench --bench paired` (add `-- one_live` or `-- refused_then_live` to pick one).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/loopback.rs"]
mod loopback;
mod support;

use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::time::Instant;

use connect_by_list::Connector;
use hyper_util::client::legacy::connect::HttpConnector;
use support::{hyper_util, live_listener, ours, runtime, tokio_connect, ListResolver};

/// Rounds timed per scenario, after `WARM_UP` rounds that are not.
const ROUNDS: usize = 1000;
const WARM_UP: usize = 20;
/// Connects per contender per round.
const BLOCK: usize = 25;

type Connect<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

/// Times `contenders` round by round and prints each one's median time per connect and its
/// per-round ratios to the contenders named in `references`.
fn duel(title: &str, references: &[&str], contenders: &[(&str, Connect<'_>)]) {
    let rt = runtime();
    let n = contenders.len();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); n];
    for round in 0..WARM_UP + ROUNDS {
        for turn in 0..n {
            let who = (round + turn) % n;
            let connect = &contenders[who].1;
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..BLOCK {
                    connect().await;
                }
            });
            let per_connect = start.elapsed().as_secs_f64() * 1e6 / BLOCK as f64;
            if round >= WARM_UP {
                times[who].push(per_connect);
            }
        }
    }
    let references: Vec<usize> = references
        .iter()
        .map(|reference| {
            contenders
                .iter()
                .position(|(name, _)| name == reference)
                .unwrap()
        })
        .collect();
    println!("\n{title}: {ROUNDS} rounds of {BLOCK} connects each, interleaved");
    print!("| contender | median µs per connect |");
    for &reference in &references {
        print!(" time ÷ {}'s, same round |", contenders[reference].0);
    }
    println!("\n|---|---|{}", "---|".repeat(references.len()));
    for (who, (name, _)) in contenders.iter().enumerate() {
        let mut mine = times[who].clone();
        print!("| {name} | {:.1} |", quantile(&mut mine, 0.5));
        for &reference in &references {
            let mut ratios: Vec<f64> = times[who]
                .iter()
                .zip(&times[reference])
                .map(|(mine, theirs)| mine / theirs)
                .collect();
            if who == reference {
                print!(" 1 |");
                continue;
            }
            let faster = ratios.iter().filter(|&&ratio| ratio < 1.0).count();
            print!(
                " {:.3} ({:.3}–{:.3}), faster in {:.0} % |",
                quantile(&mut ratios, 0.5),
                quantile(&mut ratios, 0.25),
                quantile(&mut ratios, 0.75),
                100.0 * faster as f64 / ratios.len() as f64,
            );
        }
        println!();
    }
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let tokio_name = "tokio TcpStream::connect";
    let hyper_name = "hyper-util HttpConnector";

    if wanted("one_live") {
        let live = live_listener();
        let one = [live];
        let connector = Connector::new();
        let http = HttpConnector::new();
        let uri: http::Uri = format!("http://{live}/").parse().unwrap();
        duel(
            "one_live",
            &[tokio_name, hyper_name],
            &[
                (
                    "connect-by-list",
                    Box::new(|| Box::pin(ours(&connector, &one))),
                ),
                (tokio_name, Box::new(|| Box::pin(tokio_connect(&one)))),
                (hyper_name, Box::new(|| Box::pin(hyper_util(&http, &uri)))),
            ],
        );
    }

    if wanted("refused_then_live") {
        let refused = loopback::Refused::new(Ipv4Addr::LOCALHOST.into()).unwrap();
        let live = live_listener();
        let addrs = [refused.addr(), live];
        let connector = Connector::builder().history_capacity(0).build().unwrap();
        let with_history = Connector::new();
        let http = HttpConnector::new_with_resolver(ListResolver(addrs.to_vec()));
        let uri: http::Uri = "http://refused-then-live.invalid/".parse().unwrap();
        duel(
            "refused_then_live",
            &[tokio_name, hyper_name],
            &[
                (
                    "connect-by-list (history off)",
                    Box::new(|| Box::pin(ours(&connector, &addrs))),
                ),
                (
                    "connect-by-list (history on, the default)",
                    Box::new(|| Box::pin(ours(&with_history, &addrs))),
                ),
                (tokio_name, Box::new(|| Box::pin(tokio_connect(&addrs)))),
                (hyper_name, Box::new(|| Box::pin(hyper_util(&http, &uri)))),
            ],
        );
    }
}
