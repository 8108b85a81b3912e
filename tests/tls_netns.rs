//! The failure users actually hit on IPv6, in a two-namespace lab: a path-MTU blackhole. The
//! TCP handshake passes over IPv6 (small packets), the server's TLS flight (a certificate of a
//! few KB) is dropped on the way, so a race that ends at the SYN-ACK picks IPv6 and then stalls.
//! The race through the TLS handshake picks IPv4 after one attempt delay.
//!
//! How the blackhole is made matters (see issue 12): the server's large packets are dropped on
//! the *client's* input hook (a drop on the server's own output hook is a local send failure
//! that Linux does not even retransmit), and the server's veth sends wire-sized segments
//! (`gso_max_size`), so the length rule judges packets, not whole GSO bursts.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_by_list::rustls::pki_types::ServerName;
use connect_by_list::rustls::{ClientConfig, ServerConfig};
use connect_by_list::{
    ConnectErrorKind, ConnectInfo, Connector, HttpsConnector, Outcome, TlsHandshake,
};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

mod support;
use support::names::Names;
use support::netns::Lab;

const V6_SERVER: &str = "2001:db8::2";
const V4_SERVER: &str = "192.0.2.2";
const DEADLINE: Duration = Duration::from_secs(10);

/// A certificate for `app.test` with enough names on it that the server's first flight is a few
/// KB (well over 1,280 bytes), as a real chain is.
fn configs() -> (ServerConfig, ClientConfig) {
    let mut names = vec!["app.test".to_string()];
    names.extend((0..120).map(|i| format!("alias-{i:03}.app.test")));
    let h1: &[&[u8]] = &[b"http/1.1"];
    let (server, client, pem) = support::tls::configs(&names, h1, h1);
    // Base64 carries 3 bytes in 4: the DER certificate is over twice 1,280 bytes.
    assert!(
        pem.len() * 3 / 4 > 2 * 1280,
        "certificate of {} bytes in PEM",
        pem.len()
    );
    (server, client)
}

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

/// An HTTPS server on both of the server host's addresses, one port; runs until the test ends.
async fn serve(config: ServerConfig) -> u16 {
    let v6 = tokio::net::TcpListener::bind((V6_SERVER.parse::<std::net::IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let port = v6.local_addr().unwrap().port();
    let v4 = tokio::net::TcpListener::bind((V4_SERVER.parse::<std::net::IpAddr>().unwrap(), port))
        .await
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    for listener in [v6, v4] {
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello))
                        .await;
                });
            }
        });
    }
    port
}

fn connector() -> Connector {
    Connector::builder().timeout(DEADLINE).build().unwrap()
}

/// What one connect in the client namespace saw: winner, elapsed, and each attempt's
/// (remote, outcome, connected?, started).
type Seen = (
    SocketAddr,
    Duration,
    Vec<(SocketAddr, Outcome, bool, Duration)>,
);

fn seen(report: &connect_by_list::Report, peer: SocketAddr) -> Seen {
    let attempts = report
        .attempts()
        .iter()
        .map(|a| {
            (
                a.remote(),
                a.outcome(),
                a.connected().is_some(),
                a.started(),
            )
        })
        .collect();
    (peer, report.elapsed(), attempts)
}

#[test]
fn the_tls_race_survives_an_ipv6_path_mtu_blackhole() {
    let Some(mut lab) = Lab::with_nft() else {
        return;
    };
    let c = lab.host("c");
    let s = lab.host("s");
    let (_, s_if) = lab.link(
        &c,
        &["192.0.2.1/24", "2001:db8::1/64"],
        &s,
        &["192.0.2.2/24", "2001:db8::2/64"],
    );
    // Wire-sized segments from the server, so the client's length rule sees real packets.
    lab.run(
        &s,
        &[
            "ip",
            "link",
            "set",
            &s_if,
            "gso_max_size",
            "1500",
            "gso_max_segs",
            "1",
        ],
    );

    let (server_config, client_config) = configs();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let _server = s.spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                port_tx.send(serve(server_config).await).unwrap();
                std::future::pending::<()>().await
            })
    });
    let port = port_rx.recv().unwrap();
    let v6: SocketAddr = format!("[{V6_SERVER}]:{port}").parse().unwrap();
    let v4: SocketAddr = format!("{V4_SERVER}:{port}").parse().unwrap();
    let tls = Arc::new(client_config);

    let handshake =
        TlsHandshake::new(tls.clone()).server_name(ServerName::try_from("app.test").unwrap());

    // Without the blackhole, TLS over IPv6 (ranked first) wins: the lab itself is healthy.
    let h = handshake.clone();
    let healthy = c.block_on(move || async move {
        let connection = connector().connect_with([v6, v4], h).await.unwrap();
        seen(connection.report(), connection.peer_addr())
    });
    assert_eq!(healthy.0, v6, "{healthy:?}");

    // The blackhole: the server's IPv6 packets over 1,280 bytes never reach the client.
    lab.nft(
        &c,
        &format!(
            "table inet mtu {{\n  chain input {{\n    type filter hook input priority 0;\n    \
             ip6 saddr {V6_SERVER} tcp sport {port} meta length > 1280 counter drop\n  }}\n}}\n"
        ),
    );

    // A race that ends at the SYN-ACK picks IPv6: its TCP handshake passes.
    let tcp =
        c.block_on(move || async move { connector().connect([v6, v4]).await.unwrap().peer_addr() });
    assert_eq!(tcp, v6);
    // And TLS over IPv6 alone then stalls until the deadline.
    let h = handshake.clone();
    let alone = c.block_on(move || async move {
        let connector = Connector::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let error = connector.connect_with([v6], h).await.map(drop).unwrap_err();
        (error.kind(), seen(error.report(), v6))
    });
    assert_eq!(alone.0, ConnectErrorKind::TimedOut, "{alone:?}");
    assert!(
        alone.1 .2[0].2,
        "IPv6 TCP connected before TLS stalled: {alone:?}"
    );

    // The TLS race moves on to IPv4 after one attempt delay, and closes the stalled attempt.
    let h = handshake.clone();
    let raced = c.block_on(move || async move {
        let connection = connector().connect_with([v6, v4], h).await.unwrap();
        seen(connection.report(), connection.peer_addr())
    });
    println!("TLS race through the blackhole: {raced:?}");
    let (peer, elapsed, attempts) = &raced;
    assert_eq!(*peer, v4);
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].0, v6);
    assert_eq!(attempts[0].1, Outcome::Lost);
    assert!(attempts[0].2, "IPv6 TCP connected");
    assert_eq!((attempts[1].0, attempts[1].1), (v4, Outcome::Connected));
    assert!(attempts[1].3 >= Duration::from_millis(250), "{raced:?}");
    // The failure this guards against waits out the 10 s deadline.
    assert!(*elapsed < Duration::from_secs(2), "{raced:?}");
    let listing = lab.run(&c, &["nft", "list", "table", "inet", "mtu"]);
    let dropped: u64 = listing
        .split("counter packets ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(dropped > 0, "the blackhole dropped nothing:\n{listing}");

    // hyper-util's client over the TLS connector gets its answer the same way.
    let started = Instant::now();
    let (remote, body) = c.block_on(move || async move {
        let connector = Connector::builder()
            .resolver(Names::one("app.test", &[v6.ip(), v4.ip()]))
            .timeout(DEADLINE)
            .build()
            .unwrap();
        let client: Client<_, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpsConnector::new(connector, tls));
        let uri = format!("https://app.test:{port}/").parse().unwrap();
        let response = client.get(uri).await.unwrap();
        let info = response.extensions().get::<ConnectInfo>().cloned().unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (info.remote_addr(), body)
    });
    assert_eq!(remote, v4);
    assert_eq!(&body[..], b"hello");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
