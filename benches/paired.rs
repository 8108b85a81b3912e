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
//! Scenarios: `one_live`, `refused_then_live` (the crate with history off and on),
//! `1000_concurrent` (1,000 connects at once per call; time per connect), and with the `rustls`
//! feature `tls_one_live`: a TLS connect (TCP and the TLS 1.3 handshake, one certificate, one
//! client configuration) through the race (`Connector::connect_tls`) against hyper-util's
//! `HttpConnector` wrapped in hyper-rustls's `HttpsConnector`, and Tokio plus tokio-rustls.
//!
//! Run: `cargo bench --bench paired` (add a scenario's name to pick it).
#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/loopback.rs"]
mod loopback;
mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use support::{batch, hyper_util, ours, runtime, tokio_connect, OneLive, RefusedThenLive, BATCH};

/// How a scenario is timed: `rounds` rounds (after `WARM_UP` that are not counted), each timing
/// `block` calls of every contender, a call making `per_call` connects.
struct Shape {
    rounds: usize,
    block: usize,
    per_call: usize,
}

/// One connect per call, 25 calls a round, 1,000 rounds.
const SINGLE: Shape = Shape {
    rounds: 1000,
    block: 25,
    per_call: 1,
};
/// `BATCH` connects at once per call, one call a round, 60 rounds.
const CONCURRENT: Shape = Shape {
    rounds: 60,
    block: 1,
    per_call: BATCH,
};
const WARM_UP: usize = 20;

type Connect<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

/// Times `contenders` round by round and prints each one's median time per connect and its
/// per-round ratios to the contenders named in `references`.
fn duel(title: &str, shape: Shape, references: &[&str], contenders: &[(&str, Connect<'_>)]) {
    let Shape {
        rounds,
        block,
        per_call,
    } = shape;
    let rt = runtime();
    let n = contenders.len();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); n];
    let warm_up = WARM_UP.min(rounds / 3);
    for round in 0..warm_up + rounds {
        for turn in 0..n {
            let who = (round + turn) % n;
            let connect = &contenders[who].1;
            let start = Instant::now();
            rt.block_on(async {
                for _ in 0..block {
                    connect().await;
                }
            });
            let per_connect = start.elapsed().as_secs_f64() * 1e6 / (block * per_call) as f64;
            if round >= warm_up {
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
    println!(
        "\n{title}: {rounds} rounds of {} connects per contender, interleaved",
        block * per_call
    );
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
        let at = OneLive::new();
        duel(
            "one_live",
            SINGLE,
            &[tokio_name, hyper_name],
            &[
                (
                    "connect-by-list",
                    Box::new(|| Box::pin(ours(&at.connector, &at.one))),
                ),
                (tokio_name, Box::new(|| Box::pin(tokio_connect(&at.one)))),
                (
                    hyper_name,
                    Box::new(|| Box::pin(hyper_util(&at.http, &at.uri))),
                ),
            ],
        );
    }

    if wanted("refused_then_live") {
        let at = RefusedThenLive::new();
        duel(
            "refused_then_live",
            SINGLE,
            &[tokio_name, hyper_name],
            &[
                (
                    "connect-by-list (history off)",
                    Box::new(|| Box::pin(ours(&at.no_history, &at.addrs))),
                ),
                (
                    "connect-by-list (history on, the default)",
                    Box::new(|| Box::pin(ours(&at.with_history, &at.addrs))),
                ),
                (tokio_name, Box::new(|| Box::pin(tokio_connect(&at.addrs)))),
                (
                    hyper_name,
                    Box::new(|| Box::pin(hyper_util(&at.http, &at.uri))),
                ),
            ],
        );
    }

    #[cfg(feature = "rustls")]
    if wanted("tls_one_live") {
        tls_one_live();
    }

    if wanted("1000_concurrent") {
        let at = OneLive::new();
        duel(
            "1000_concurrent",
            CONCURRENT,
            &[tokio_name, hyper_name],
            &[
                (
                    "connect-by-list",
                    Box::new(|| Box::pin(batch(|| ours(&at.connector, &at.one)))),
                ),
                (
                    tokio_name,
                    Box::new(|| Box::pin(batch(|| tokio_connect(&at.one)))),
                ),
                (
                    hyper_name,
                    Box::new(|| Box::pin(batch(|| hyper_util(&at.http, &at.uri)))),
                ),
            ],
        );
    }
}

/// TLS connects, 400 rounds of 10 per contender: the handshake's cryptography dominates, so
/// fewer connects show the ratio as well.
#[cfg(feature = "rustls")]
fn tls_one_live() {
    use std::future::poll_fn;
    use tower_service::Service;

    let (addr, config) = support::tls::server_and_client();
    let connector = connect_by_list::Connector::new();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*config).clone())
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let uri: http::Uri = format!("https://{addr}/").parse().unwrap();
    let tls = tokio_rustls::TlsConnector::from(config.clone());
    let name = connect_by_list::rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let race_name = "connect-by-list connect_tls";
    let hyper_name = "hyper-util HttpConnector + hyper-rustls";
    let plain_name = "tokio TcpStream + tokio-rustls";
    duel(
        "tls_one_live",
        Shape {
            rounds: 400,
            block: 10,
            per_call: 1,
        },
        &[hyper_name, plain_name],
        &[
            (
                race_name,
                Box::new(|| {
                    Box::pin(async {
                        let connection = connector.connect_tls(addr, config.clone()).await.unwrap();
                        support::close(connection.stream().get_ref().0);
                    })
                }),
            ),
            (
                hyper_name,
                Box::new(|| {
                    Box::pin(async {
                        let mut https = https.clone();
                        poll_fn(|cx| https.poll_ready(cx)).await.unwrap();
                        let stream = https.call(uri.clone()).await.unwrap();
                        match stream {
                            hyper_rustls::MaybeHttpsStream::Https(tls) => {
                                support::close(tls.inner().get_ref().0.inner().inner());
                            }
                            hyper_rustls::MaybeHttpsStream::Http(_) => unreachable!("https only"),
                        }
                    })
                }),
            ),
            (
                plain_name,
                Box::new(|| {
                    Box::pin(async {
                        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                        stream.set_nodelay(true).unwrap();
                        let stream = tls.connect(name.clone(), stream).await.unwrap();
                        support::close(stream.get_ref().0);
                    })
                }),
            ),
        ],
    );
}
