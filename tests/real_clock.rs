//! Races on real loopback sockets where the real clock matters: two attempts that connect in the
//! same poll, and how late a deadline really returns (printed, and bounded by what Tokio's 1 ms
//! timer allows).
//!
//! The two tests take turns (they block threads and measure lateness; neither should disturb the
//! other). Only loopback is dialed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connect_by_list::{ConnectErrorKind, Connector, Outcome};
use socket2::{Domain, Socket, Type};
use support::loopback::Blackhole;
#[cfg(target_os = "linux")]
use support::loopback::SynSent;

/// One test at a time in this binary.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A listener whose one backlog slot is taken by a filler connection, so SYNs to it are dropped,
/// until [`Gate::open`] accepts and closes the filler. The listener stays open throughout.
struct Gate {
    listener: Arc<Socket>,
    filler: Option<std::net::TcpStream>,
    addr: SocketAddr,
}

impl Gate {
    fn new(ip: IpAddr) -> Gate {
        let listener = Socket::new(
            Domain::for_address(SocketAddr::new(ip, 0)),
            Type::STREAM,
            None,
        )
        .unwrap();
        listener.bind(&SocketAddr::new(ip, 0).into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let filler = std::net::TcpStream::connect(addr).unwrap();
        Gate {
            listener: Arc::new(listener),
            filler: Some(filler),
            addr,
        }
    }

    /// Frees the backlog slot: the next SYN (a retransmit) completes its handshake.
    fn open(&mut self) {
        let (accepted, _) = self.listener.accept().expect("the filler is queued");
        drop(accepted);
        drop(self.filler.take());
    }

    /// The next queued connection, waiting (bounded) for it.
    fn accept(&self) -> Option<std::net::TcpStream> {
        self.listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            match self.listener.accept() {
                Ok((socket, _)) => return Some(socket.into()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) => panic!("accept on {}: {e}", self.addr),
            }
        }
    }
}

/// Two attempts whose handshakes complete while the runtime cannot look, so both are ready in
/// the same poll: exactly one stream is returned and the other connection is closed.
///
/// Both SYNs are dropped (full backlogs); 300 ms in, another thread frees both backlog slots;
/// the kernel retransmits each SYN about 1 s after it was sent, and both handshakes complete in
/// the kernel while the client's only runtime thread is blocked (500 ms to 2 s). When the
/// runtime wakes, both connects are ready at once. Then: one attempt Connected, the other Lost;
/// on the server side both connections were accepted by the kernel (so the loser's handshake had
/// completed: it was a connected socket that the race closed, not a pending one it abandoned);
/// the winner's is still open (a read would block), the loser's reads EOF.
#[tokio::test]
async fn two_attempts_ready_in_the_same_poll_return_one_stream_and_close_the_other() {
    let _turn = TURN.lock().await;
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut gates = [Gate::new(ip), Gate::new(ip)];
    let addrs = [gates[0].addr, gates[1].addr];
    let connector = Connector::builder()
        .attempt_delay(Duration::from_millis(10))
        .timeout(Duration::from_secs(5))
        .history_capacity(0)
        .build()
        .unwrap();

    let opener = std::thread::spawn({
        let mut gates_to_open: Vec<Gate> = gates
            .iter_mut()
            .map(|gate| Gate {
                listener: gate.listener.clone(),
                filler: gate.filler.take(),
                addr: gate.addr,
            })
            .collect();
        move || {
            std::thread::sleep(Duration::from_millis(300));
            for gate in &mut gates_to_open {
                gate.open();
            }
        }
    });
    // Blocks this current-thread runtime across the SYN retransmits (~1 s).
    let blocker = tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::thread::sleep(Duration::from_millis(1500));
    });

    let mut connecting = connector.connect(addrs);
    // Both SYNs dropped, both attempts in the kernel's table (the positive control for the check
    // at the end that they are gone).
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut connecting)
            .await
            .is_err()
    );
    #[cfg(target_os = "linux")]
    let in_flight = addrs.map(|addr| SynSent::seen(addr.port(), 1));
    let connection = connecting.await.expect("one of the two connects");
    blocker.await.unwrap();
    opener.join().unwrap();
    let report = connection.report().clone();
    eprintln!("{}", report.timeline());

    let outcomes: Vec<Outcome> = report.attempts().iter().map(|a| a.outcome()).collect();
    assert_eq!(outcomes.len(), 2, "both attempts ran");
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Connected)
            .count(),
        1
    );
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Lost).count(), 1);
    let winner = report.winner().unwrap();
    let loser = report
        .attempts()
        .iter()
        .find(|a| a.outcome() == Outcome::Lost)
        .unwrap();
    assert_eq!(connection.peer_addr(), winner.remote());
    // The race ends every loser in the instant the winner is seen.
    assert_eq!(loser.ended(), winner.ended());

    let (winner_gate, loser_gate) = if winner.remote() == addrs[0] {
        (&gates[0], &gates[1])
    } else {
        (&gates[1], &gates[0])
    };
    let winner_side = winner_gate
        .accept()
        .expect("the winner's connection was accepted");
    assert_eq!(
        winner_side.peer_addr().unwrap(),
        connection.stream().local_addr().unwrap()
    );
    // The same-poll case: the loser's handshake had completed too.
    let mut loser_side = loser_gate.accept().expect(
        "the loser's handshake completed before it was closed (if not, both connects were not \
         ready in the same poll: the construction did not work on this machine)",
    );
    assert_ne!(
        loser_side.peer_addr().unwrap(),
        connection.stream().local_addr().unwrap()
    );

    // The winner's connection is open: nothing to read yet, no EOF.
    winner_side.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let read = (&winner_side).read(&mut buf);
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(io::ErrorKind::WouldBlock),
        "the winner's connection is still open"
    );
    // The loser's was closed by the race: EOF.
    loser_side
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(
        loser_side.read(&mut buf).unwrap(),
        0,
        "the loser's connection reads EOF"
    );
    #[cfg(target_os = "linux")]
    for sockets in in_flight {
        sockets.gone();
    }
    drop(connection);
}

/// How late a real deadline returns: two blackholes, a 200 ms deadline, 20 runs; prints the
/// lateness (return instant minus start plus 200 ms) in µs, and the same for a bare
/// `tokio::time::sleep` for comparison.
///
/// Tokio's timer has millisecond resolution: a deadline fires on the first 1 ms tick at or after
/// it, so a deadline is up to 1 ms late before the runtime even wakes. Asserted: no run returns
/// early, and the median is under 2 ms (that tick, plus 1 ms to wake and close two sockets). A
/// deadline restarted by an attempt (here 10 ms apart), or one that waited for a connect in
/// flight, would be 10 ms or more late in every run.
#[tokio::test]
async fn a_real_deadline_returns_within_tokios_timer_granularity() {
    const RUNS: usize = 20;
    const DEADLINE: Duration = Duration::from_millis(200);
    let _turn = TURN.lock().await;
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let holes = [Blackhole::new(ip).unwrap(), Blackhole::new(ip).unwrap()];
    let connector = Connector::builder()
        .attempt_delay(Duration::from_millis(10))
        .timeout(DEADLINE)
        .build()
        .unwrap();
    let late_us = |took: Duration| took.as_micros() as i128 - DEADLINE.as_micros() as i128;
    let mut lateness_us: Vec<i128> = Vec::with_capacity(RUNS);
    // The same measurement of a bare Tokio sleep, for comparison: what the timer itself costs.
    let mut sleep_us: Vec<i128> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let before = Instant::now();
        tokio::time::sleep(DEADLINE).await;
        sleep_us.push(late_us(before.elapsed()));

        let before = Instant::now();
        let result = connector.connect([holes[0].addr(), holes[1].addr()]).await;
        let after = Instant::now();
        let error = result.expect_err("blackholes never answer");
        assert_eq!(error.kind(), ConnectErrorKind::TimedOut);
        let outcomes: Vec<Outcome> = error
            .report()
            .attempts()
            .iter()
            .map(|a| a.outcome())
            .collect();
        assert_eq!(outcomes, [Outcome::Cancelled, Outcome::Cancelled]);
        lateness_us.push(late_us(after.duration_since(before)));
    }
    let stats = |list: &mut Vec<i128>| {
        list.sort_unstable();
        format!(
            "min {} µs, median {} µs, max {} µs (all: {list:?})",
            list[0],
            list[RUNS / 2],
            list[RUNS - 1]
        )
    };
    eprintln!(
        "deadline lateness over {RUNS} runs of a {DEADLINE:?} deadline on two blackholes: {}",
        stats(&mut lateness_us)
    );
    eprintln!(
        "bare tokio::time::sleep({DEADLINE:?}) lateness, same runs: {}",
        stats(&mut sleep_us)
    );
    // Sorted by `stats`.
    assert!(
        lateness_us[0] >= 0,
        "a deadline returned early: {lateness_us:?} µs"
    );
    assert!(
        lateness_us[RUNS / 2] < 2_000,
        "median lateness {} µs, not within Tokio's 1 ms timer tick plus 1 ms: {lateness_us:?} µs",
        lateness_us[RUNS / 2]
    );
}
