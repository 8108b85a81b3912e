//! Happy Eyeballs v3 through the public API, on loopback: a handshake that says it is HTTPS
//! makes the connector ask for HTTPS records, and the record's `port` decides where it connects.
#![allow(clippy::unwrap_used)]

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use connect_by_list::{
    Connector, Family, Handshake, HttpsRecord, Outcome, Peer, Resolve, Resolving, ResolvingHttps,
};
use tokio::net::{TcpListener, TcpStream};

/// `svc.test` is 127.0.0.1; its HTTPS record (asked under `https_name`) sends clients to
/// `port`. Records the HTTPS names asked.
#[derive(Debug)]
struct Zone {
    https_name: String,
    port: u16,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Resolve for Zone {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let answer = match (name, family) {
            ("svc.test", Family::V4) => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            _ => Vec::new(),
        };
        Box::pin(async move { Ok(answer) })
    }

    fn resolve_https(&self, name: &str) -> ResolvingHttps {
        self.asked.lock().unwrap().push(name.to_owned());
        let records = if name == self.https_name {
            vec![HttpsRecord::new(1, ".").with_port(self.port)]
        } else {
            Vec::new()
        };
        Box::pin(async move { Ok(records) })
    }
}

/// No handshake at all, but it says it is HTTPS's (as `TlsHandshake` does).
struct PlainHttps(bool);

impl Handshake for PlainHttps {
    type Output = TcpStream;
    type Future = std::future::Ready<io::Result<TcpStream>>;

    fn handshake(&self, stream: TcpStream, _: Peer) -> Self::Future {
        std::future::ready(Ok(stream))
    }

    fn https_alpn(&self) -> Option<Vec<Vec<u8>>> {
        self.0.then(|| vec![b"http/1.1".to_vec()])
    }
}

/// A port nothing listens on (a listener's, closed again), and a live listener.
async fn closed_and_live() -> (u16, TcpListener) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (closed, live)
}

/// RFC 9460 §7.2 through the connector: the target's port is closed, the HTTPS record's
/// `port` is live, so only a connect that asked for and used the record can succeed; the
/// query name carries the port (`_PORT._https.NAME`, §9.1).
#[tokio::test]
async fn the_records_port_is_where_the_connect_goes() {
    let (closed, live) = closed_and_live().await;
    let live_port = live.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let zone = Zone {
        https_name: format!("_{closed}._https.svc.test"),
        port: live_port,
        asked: asked.clone(),
    };
    let connector = Connector::builder().resolver(zone).build().unwrap();
    let connection = connector
        .connect_with(("svc.test", closed), PlainHttps(true))
        .await
        .unwrap();
    assert_eq!(connection.peer_addr().port(), live_port);
    let attempts = connection.report().attempts();
    assert_eq!(attempts.len(), 1, "{}", connection.report());
    assert_eq!(attempts[0].outcome(), Outcome::Connected);
    assert_eq!(attempts[0].host(), Some("svc.test"));
    assert_eq!(
        *asked.lock().unwrap(),
        [format!("_{closed}._https.svc.test")]
    );
}

/// A handshake that is not HTTPS's asks for no HTTPS records: the connect goes to the
/// target's (closed) port and fails there.
#[tokio::test]
async fn no_records_are_asked_for_other_handshakes() {
    let (closed, live) = closed_and_live().await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    let zone = Zone {
        https_name: format!("_{closed}._https.svc.test"),
        port: live.local_addr().unwrap().port(),
        asked: asked.clone(),
    };
    let connector = Connector::builder().resolver(zone).build().unwrap();
    let error = connector
        .connect_with(("svc.test", closed), PlainHttps(false))
        .await
        .unwrap_err();
    let attempts = error.report().attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].remote().port(), closed);
    assert_eq!(attempts[0].outcome(), Outcome::Refused);
    assert!(asked.lock().unwrap().is_empty());
}

/// `Builder::https_records(true)` marks every connect as HTTPS: a plain TCP connect asks for
/// the records too, and the plan shows where each address came from.
#[tokio::test]
async fn the_builder_marks_plain_connects_and_plans() {
    let (closed, live) = closed_and_live().await;
    let live_port = live.local_addr().unwrap().port();
    let zone = || Zone {
        https_name: format!("_{closed}._https.svc.test"),
        port: live_port,
        asked: Arc::default(),
    };
    let connector = Connector::builder()
        .resolver(zone())
        .https_records(true)
        .build()
        .unwrap();
    let connection = connector.connect(("svc.test", closed)).await.unwrap();
    assert_eq!(connection.peer_addr().port(), live_port);
    let winner = connection.report().winner().unwrap();
    let via = winner.https().expect("shaped by the HTTPS record");
    assert_eq!(
        (via.priority(), via.port(), via.target()),
        (1, live_port, "svc.test")
    );
    assert_eq!(via.alpn(), [b"http/1.1".to_vec()]);
    assert!(!via.is_hint());
    assert!(
        winner.to_string().contains(&format!(
            "[HTTPS 1 svc.test port {live_port} alpn http/1.1]"
        )),
        "{winner}"
    );

    // The plan: the record's port first (priority 1), then the origin's own port (last resort).
    let plan = connector.plan(("svc.test", closed)).await.unwrap();
    let rows: Vec<(u16, Option<u16>)> = plan
        .attempts()
        .iter()
        .map(|a| (a.remote().port(), a.https().map(|via| via.priority())))
        .collect();
    assert_eq!(rows, [(live_port, Some(1)), (closed, None)]);

    // Off (the default), the same zone is not asked.
    let plain = Connector::builder().resolver(zone()).build().unwrap();
    let plan = plain.plan(("svc.test", closed)).await.unwrap();
    let ports: Vec<u16> = plan.attempts().iter().map(|a| a.remote().port()).collect();
    assert_eq!(ports, [closed]);
}
