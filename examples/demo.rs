//! The library doing its main job, with nothing but this machine: it opens three endpoints on
//! loopback (a blackhole that never answers, a refused port, a live listener), races them, and
//! prints the timeline. Then it shows the same race with only dead endpoints and a deadline.
//!
//! ```text
//! cargo run --example demo
//! ```

#[path = "../tests/support/loopback.rs"]
mod loopback;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use connect_by_list::Connector;
use loopback::{has_ipv6_loopback, Blackhole, Refused};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // The blackhole goes first, on IPv6 where this machine has it: the usual "IPv6 is broken"
    // case that Happy Eyeballs exists for.
    let dead_ip = if has_ipv6_loopback() {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        v4
    };
    let blackhole = Blackhole::new(dead_ip)?;
    let refused = Refused::new(v4)?;
    let listener = TcpListener::bind((v4, 0)).await?;
    let live = listener.local_addr()?;
    tokio::spawn(async move { while let Ok((_stream, _peer)) = listener.accept().await {} });

    println!("connect-by-list demo: three endpoints on loopback");
    println!(
        "  {}  blackhole (SYNs dropped, never answers)",
        blackhole.addr()
    );
    println!("  {}  refused (nothing listens)", refused.addr());
    println!("  {}  live listener", live);
    println!();

    let connector = Connector::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let targets = [blackhole.addr(), refused.addr(), live];
    let connection = connector.connect(targets).await?;
    println!(
        "connected to {} from {} in {:.1?}; the blackhole was left behind after one attempt delay, \
         the refused port moved the race on at once:",
        connection.peer_addr(),
        connection.local_addr()?,
        connection.report().elapsed()
    );
    print!("{}", connection.report().timeline());
    println!();

    let deadline = Duration::from_millis(600);
    let connector = Connector::builder().timeout(deadline).build()?;
    let dead = [blackhole.addr(), refused.addr()];
    let clock = std::time::Instant::now();
    let outcome = connector.connect(dead).await;
    let late = clock.elapsed().saturating_sub(deadline);
    match outcome {
        Ok(connection) => println!("unexpected: connected to {}", connection.peer_addr()),
        Err(error) => {
            println!(
                "with only the dead two and a {deadline:?} deadline, it gives up on time \
                 (returned {:.2}ms after the deadline, the blackhole's connect interrupted):",
                late.as_secs_f64() * 1000.0
            );
            println!("{error}");
            print!("{}", error.report().timeline());
        }
    }
    Ok(())
}
