//! Connects once to the first reachable of the given targets and shows the race.
//!
//! ```text
//! cargo run --release --example connect -- [OPTIONS] TARGET...
//!
//! TARGET               host:port, [IPv6]:port or IP:port
//! --timeout MS         one deadline for the whole connect
//! --attempt-delay MS   wait before starting the next attempt (default 250)
//! --json               print exactly one JSON object on stdout
//! ```
//!
//! Exit status: 0 connected, 1 could not connect, 2 bad arguments or targets.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use connect_by_list::{Attempt, ConnectError, Connection, Connector, Report};
use serde_json::{json, Value};

const USAGE: &str = "usage: connect [--timeout MS] [--attempt-delay MS] [--json] TARGET...";

#[derive(Debug, Default)]
struct Options {
    timeout: Option<Duration>,
    attempt_delay: Option<Duration>,
    json: bool,
    targets: Vec<String>,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut millis = |name: &str| -> Result<Duration, String> {
            let value = args
                .next()
                .ok_or_else(|| format!("{name} needs a value in milliseconds"))?;
            let ms: u64 = value
                .parse()
                .map_err(|_| format!("{name} {value:?}: not a whole number of milliseconds"))?;
            Ok(Duration::from_millis(ms))
        };
        match arg.as_str() {
            "--timeout" => options.timeout = Some(millis("--timeout")?),
            "--attempt-delay" => options.attempt_delay = Some(millis("--attempt-delay")?),
            "--json" => options.json = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--" => options.targets.extend(args.by_ref()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => options.targets.push(arg),
        }
    }
    if options.targets.is_empty() {
        return Err("no TARGET given".to_string());
    }
    Ok(options)
}

fn connector(options: &Options) -> Result<Connector, String> {
    let mut builder = Connector::builder();
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(delay) = options.attempt_delay {
        builder = builder.attempt_delay(delay);
    }
    builder.build().map_err(|error| error.to_string())
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

fn attempt_json(attempt: &Attempt) -> Value {
    json!({
        "local": attempt.local().map(|a| a.to_string()),
        "remote": attempt.remote().to_string(),
        "host": attempt.host(),
        "start_ms": ms(attempt.started()),
        "end_ms": ms(attempt.ended()),
        "outcome": attempt.outcome().as_str(),
        "error": attempt.error().map(|e| e.to_string()),
    })
}

fn report_json(
    result: &Result<Connection, ConnectError>,
    report: &Report,
    elapsed: Duration,
) -> Value {
    let (peer, local, error) = match result {
        Ok(connection) => (
            Some(connection.peer_addr().to_string()),
            Some(connection.local_addr().to_string()),
            None,
        ),
        Err(error) => (None, None, Some(error.to_string())),
    };
    json!({
        "ok": result.is_ok(),
        "elapsed_ms": ms(elapsed),
        "peer": peer,
        "local": local,
        "error": error,
        "attempts": report.attempts().iter().map(attempt_json).collect::<Vec<_>>(),
        "resolve_failures": report.resolve_failures().iter().map(|f| json!({
            "host": f.host(),
            "error": f.error().to_string(),
        })).collect::<Vec<_>>(),
        "not_tried": report.not_tried(),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("connect: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let connector = match connector(&options) {
        Ok(connector) => connector,
        Err(message) => {
            eprintln!("connect: {message}");
            return ExitCode::from(2);
        }
    };
    let clock = Instant::now();
    let result = connector.connect(&options.targets).await;
    let elapsed = clock.elapsed();
    if let Err(error) = &result {
        if let Some(invalid) = error.invalid_target() {
            eprintln!("connect: {invalid}");
            return ExitCode::from(2);
        }
    }
    let report = match &result {
        Ok(connection) => connection.report(),
        Err(error) => error.report(),
    };
    if options.json {
        println!("{}", report_json(&result, report, elapsed));
    } else {
        match &result {
            Ok(connection) => println!(
                "connected to {} from {} in {:.1}ms",
                connection.peer_addr(),
                connection.local_addr(),
                ms(elapsed)
            ),
            Err(error) => println!("failed after {:.1}ms: {error}", ms(elapsed)),
        }
        print!("{}", report.timeline());
    }
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
