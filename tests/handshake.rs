//! The race through a handshake, on loopback with real sockets: a server that accepts TCP and
//! then never answers (what a path-MTU blackhole or a wedged TLS stack looks like from the
//! client) loses to the next address, which finishes its handshake.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use connect_by_list::rustls::pki_types::ServerName;
use connect_by_list::rustls::{ClientConfig, ServerConfig};
use connect_by_list::{Connector, Outcome, Peer, TlsHandshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

const H2_AND_H1: &[&[u8]] = &[b"h2", b"http/1.1"];

/// A self-signed certificate for `app.test`, as server and client configurations, both
/// offering ALPN `h2` and `http/1.1`.
fn configs() -> (ServerConfig, ClientConfig) {
    let (server, client, _) = configs_and_pem();
    (server, client)
}

/// The same, with the certificate in PEM form (for the command line's `--ca`).
fn configs_and_pem() -> (ServerConfig, ClientConfig, String) {
    support::tls::configs(&["app.test".into()], H2_AND_H1, H2_AND_H1)
}

/// A TLS server that finishes every handshake.
async fn tls_server(config: ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut stream) = acceptor.accept(stream).await {
                    let mut buf = [0; 1];
                    let _ = stream.read(&mut buf).await;
                }
            });
        }
    });
    addr
}

/// Accepts TCP and then says nothing, holding every connection open.
async fn stalling_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

/// Accepts TCP and closes at once.
async fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    addr
}

fn connector() -> Connector {
    Connector::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A TCP-only race "wins" with the server that then stalls; the TLS race moves on after one
/// attempt delay and wins with the server that finishes TLS, closing the stalled attempt. The
/// failure this guards against waits out the 10 s deadline; the bound is 2 s.
#[tokio::test]
async fn the_tls_race_leaves_a_stalled_server_behind() {
    let (server_config, client_config) = configs();
    let stalled = stalling_server().await;
    let live = tls_server(server_config).await;
    let tcp_only = connector().connect([stalled, live]).await.unwrap();
    assert_eq!(tcp_only.peer_addr(), stalled, "TCP alone picks the staller");

    // A connector of its own: history would otherwise put the TCP race's winner first.
    let tls = TlsHandshake::new(Arc::new(client_config))
        .server_name(ServerName::try_from("app.test").unwrap());
    let connection = connector()
        .connect_with([stalled, live], tls)
        .await
        .unwrap();
    assert_eq!(connection.peer_addr(), live);
    let report = connection.report();
    let attempts = report.attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].remote(), stalled);
    assert_eq!(attempts[0].outcome(), Outcome::Lost);
    assert!(
        attempts[0].connected().is_some(),
        "the staller's TCP connected"
    );
    assert_eq!(attempts[1].outcome(), Outcome::Connected);
    assert!(attempts[1].started() >= Duration::from_millis(250));
    assert!(attempts[1].connected() <= Some(attempts[1].ended()));
    assert!(
        report.elapsed() < Duration::from_secs(2),
        "{:?}",
        report.elapsed()
    );
    let (_, session) = connection.stream().get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    assert!(session.protocol_version().is_some());
    let local = connection.local_addr().unwrap();
    assert!(local.ip().is_loopback() && local.port() != 0);
}

/// A server that closes during the handshake fails its attempt at once (a handshake failure,
/// with its error), and the next attempt starts then, not after the attempt delay.
#[tokio::test]
async fn a_failed_tls_handshake_moves_the_race_on_at_once() {
    let (server_config, client_config) = configs();
    let closing = closing_server().await;
    let live = tls_server(server_config).await;
    let tls = TlsHandshake::new(Arc::new(client_config))
        .server_name(ServerName::try_from("app.test").unwrap());
    let connection = connector()
        .connect_with([closing, live], tls)
        .await
        .unwrap();
    let attempts = connection.report().attempts();
    assert_eq!(attempts[0].outcome(), Outcome::HandshakeFailed);
    assert!(attempts[0].error().is_some());
    assert_eq!(attempts[1].started(), attempts[0].ended());
    assert!(attempts[1].started() < Duration::from_millis(250));
}

/// Any handshake: the first server to greet wins; one that accepts and says nothing is closed.
#[tokio::test]
async fn any_handshake_can_be_raced() {
    let stalled = stalling_server().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let greeter = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(b"hello").await;
            tokio::spawn(async move {
                let mut buf = [0; 1];
                let _ = stream.read(&mut buf).await;
            });
        }
    });
    let greeting = |mut stream: TcpStream, peer: Peer| async move {
        let mut hello = [0; 5];
        stream.read_exact(&mut hello).await?;
        Ok((stream, peer))
    };
    let connection = connector()
        .connect_with([stalled, greeter], greeting)
        .await
        .unwrap();
    let (_, peer) = connection.stream();
    assert_eq!(peer.remote(), greeter);
    assert_eq!(peer.host(), None);
    assert_eq!(connection.report().attempts()[0].outcome(), Outcome::Lost);
}

/// The command line's `--tls`: the handshake inside the race, `--json` with each attempt's
/// `connected_ms`, the TLS version and ALPN; `--ca` trusts the given certificate, `--insecure`
/// any, and a certificate that is not trusted fails the attempt as `handshake_failed`.
#[tokio::test]
async fn the_command_line_races_tls() {
    let (server_config, _, pem) = configs_and_pem();
    let stalled = stalling_server().await;
    let live = tls_server(server_config).await;
    let ca = std::env::temp_dir().join(format!("cbl-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, pem).unwrap();
    let ca_path = ca.to_str().unwrap().to_owned();
    let (stalled, live) = (stalled.to_string(), live.to_string());
    let run = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(support::example())
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["--json", "--timeout", "5000", "--tls"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([stalled.clone(), live.clone()]);
        args
    };
    let parse = |output: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&output.stdout).unwrap()
    };

    let trusted = run(args(&[
        "--ca",
        &ca_path,
        "--sni",
        "app.test",
        "--alpn",
        "h2,http/1.1",
    ]))
    .await;
    let json = parse(&trusted);
    assert!(trusted.status.success(), "{json}");
    assert_eq!(json["peer"], live.as_str());
    assert_eq!(json["tls"]["alpn"], "h2");
    assert_eq!(json["tls"]["version"], "TLSv1_3");
    let attempts = json["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["outcome"], "lost");
    assert!(attempts[0]["connected_ms"].is_f64(), "{json}");
    assert_eq!(attempts[1]["outcome"], "connected");
    assert!(attempts[1]["start_ms"].as_f64().unwrap() >= 250.0, "{json}");
    assert!(json["elapsed_ms"].as_f64().unwrap() < 2000.0, "{json}");

    let insecure = run(args(&["--insecure", "--sni", "app.test"])).await;
    assert!(insecure.status.success(), "{}", parse(&insecure));

    // The bundled web roots do not trust a self-signed certificate: every handshake fails.
    let untrusted = run(vec![
        "--json".into(),
        "--tls".into(),
        "--sni".into(),
        "app.test".into(),
        live.clone(),
    ])
    .await;
    let json = parse(&untrusted);
    assert_eq!(untrusted.status.code(), Some(1), "{json}");
    assert_eq!(json["attempts"][0]["outcome"], "handshake_failed");
    assert!(
        json["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{json}"
    );

    let bad = run(vec![
        "--tls".into(),
        "--ca".into(),
        "/nonexistent.pem".into(),
        live,
    ])
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--ca"));
    let _ = std::fs::remove_file(ca);
}
