//! Connects once to the first reachable of the given targets and shows the race.
//!
//! ```text
//! cargo run --release --example connect -- [OPTIONS] TARGET...
//!
//! TARGET               host:port, [IPv6]:port or IP:port
//! --timeout MS         one deadline for the whole connect
//! --attempt-delay MS   wait before starting the next attempt (default 250)
//! --local ADDR|all     connect from this local address (repeatable), or from every
//!                      address of every interface that is up
//! --deny-private       refuse loopback, private, link-local, ... destinations (SSRF policy)
//! -4, -6               IPv4 only, or IPv6 only (the other family is neither looked up nor tried)
//! --no-nat64           never synthesize NAT64 addresses for IPv4 destinations on IPv6-only hosts
//! --plan               resolve and rank, print the attempts in order, connect nothing
//! --repeat N           connect N times with one connector (closing each stream) and print
//!                      min / median / p99 / max connect time, failures and winning peers
//! --json               print exactly one JSON object on stdout
//! --tls                finish a TLS handshake inside the race (needs `--features rustls`):
//!                      an attempt wins only when its handshake does
//! --insecure           with --tls: accept any certificate (the handshake itself is still done)
//! --ca FILE            with --tls: trust the PEM certificates in FILE instead of the bundled
//!                      web roots
//! --sni NAME           with --tls: the server name to verify and send (default: each target's
//!                      host, or its IP address)
//! --alpn LIST          with --tls: ALPN protocols to offer, comma-separated (e.g. h2,http/1.1)
//! --https-rr           resolve with hickory (needs `--features hickory`) and ask for the
//!                      names' HTTPS records beside AAAA and A: they shape the race (Happy
//!                      Eyeballs v3), with or without --tls
//! ```
//!
//! `--plan`, `--json` and the report say where each address came from: `A`, `AAAA`, `hint`
//! (an HTTPS record's `ipv4hint`/`ipv6hint`) or `literal`, with the HTTPS record's priority,
//! target name, port and ALPN when one shaped the attempt.
//!
//! Exit status: 0 connected, 1 could not connect, 2 bad arguments or targets.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use connect_by_list::{
    AddressFilter, Attempt, ConnectError, Connection, Connector, HttpsVia, IpFamily, Nat64, Report,
    Synthesized,
};
use serde_json::{json, Value};

const USAGE: &str = "usage: connect [--timeout MS] [--attempt-delay MS] [--local ADDR|all]... \
[--deny-private] [-4 | -6] [--no-nat64] [--plan | --repeat N] [--json] [--tls [--insecure] \
[--ca FILE] [--sni NAME] [--alpn LIST]] [--https-rr] TARGET...";

#[derive(Debug, Default)]
struct Options {
    timeout: Option<Duration>,
    attempt_delay: Option<Duration>,
    locals: Vec<IpAddr>,
    all_locals: bool,
    deny_private: bool,
    family: IpFamily,
    no_nat64: bool,
    plan: bool,
    repeat: Option<u32>,
    json: bool,
    tls: bool,
    insecure: bool,
    ca: Option<String>,
    sni: Option<String>,
    alpn: Vec<String>,
    https_rr: bool,
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
            "--plan" => options.plan = true,
            "--deny-private" => options.deny_private = true,
            "-4" | "-6" if options.family != IpFamily::Any => {
                return Err("-4 and -6 do not go together".to_string())
            }
            "-4" => options.family = IpFamily::V4Only,
            "-6" => options.family = IpFamily::V6Only,
            "--no-nat64" => options.no_nat64 = true,
            "--local" => match args.next().as_deref() {
                Some("all") => options.all_locals = true,
                Some(text) => options.locals.push(
                    text.parse()
                        .map_err(|_| format!("--local {text:?}: not an IP address or \"all\""))?,
                ),
                None => return Err("--local needs an IP address or \"all\"".to_string()),
            },
            "--repeat" => {
                let value = args.next().ok_or("--repeat needs a count")?;
                let runs: u32 = value
                    .parse()
                    .ok()
                    .filter(|runs| *runs > 0)
                    .ok_or_else(|| format!("--repeat {value:?}: not a count of 1 or more"))?;
                options.repeat = Some(runs);
            }
            "--tls" => options.tls = true,
            "--https-rr" => options.https_rr = true,
            "--insecure" => options.insecure = true,
            "--ca" => options.ca = Some(args.next().ok_or("--ca needs a PEM file")?),
            "--sni" => options.sni = Some(args.next().ok_or("--sni needs a server name")?),
            "--alpn" => {
                let list = args
                    .next()
                    .ok_or("--alpn needs a list such as h2,http/1.1")?;
                options.alpn = list.split(',').map(str::to_owned).collect();
                if options.alpn.iter().any(String::is_empty) {
                    return Err(format!("--alpn {list:?}: an empty protocol name"));
                }
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            "--" => options.targets.extend(args.by_ref()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => options.targets.push(arg),
        }
    }
    if options.targets.is_empty() {
        return Err("no TARGET given".to_string());
    }
    if options.plan && options.repeat.is_some() {
        return Err("--plan and --repeat do not go together".to_string());
    }
    if options.all_locals && !options.locals.is_empty() {
        return Err("--local all and --local ADDR do not go together".to_string());
    }
    let tls_detail = options.insecure
        || options.ca.is_some()
        || options.sni.is_some()
        || !options.alpn.is_empty();
    if tls_detail && !options.tls {
        return Err("--insecure, --ca, --sni and --alpn go with --tls".to_string());
    }
    if options.insecure && options.ca.is_some() {
        return Err("--insecure and --ca do not go together".to_string());
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
    if options.all_locals {
        builder = builder.local_addrs_from_interfaces();
    } else if !options.locals.is_empty() {
        builder = builder.local_addrs(options.locals.iter().copied());
    }
    if options.deny_private {
        builder = builder.address_filter(AddressFilter::deny_non_public());
    }
    builder = builder.ip_family(options.family);
    if options.no_nat64 {
        builder = builder.nat64(Nat64::Off);
    }
    #[cfg(feature = "hickory")]
    if options.https_rr {
        let resolver = connect_by_list::HickoryResolver::from_system_conf()
            .map_err(|error| format!("cannot read the system's DNS configuration: {error}"))?;
        builder = builder.resolver(resolver);
    }
    #[cfg(not(feature = "hickory"))]
    if options.https_rr {
        return Err("--https-rr needs a build with --features hickory".to_string());
    }
    builder = builder.https_records(options.https_rr);
    builder.build().map_err(|error| error.to_string())
}

/// A connection (its stream no longer needed) and, with `--tls`, the TLS version and ALPN.
type Connected = (Connection<()>, Option<Value>);

/// One connect, with the TLS handshake inside the race when `--tls` gave one.
async fn connect_once(
    connector: &Connector,
    options: &Options,
    tls: Option<&tls::Tls>,
) -> Result<Connected, ConnectError> {
    match tls {
        Some(tls) => tls::connect(connector, &options.targets, tls).await,
        None => {
            let connection = connector.connect(&options.targets).await?;
            Ok((connection.map_stream(drop), None))
        }
    }
}

#[cfg(feature = "rustls")]
mod tls {
    use std::sync::Arc;

    use connect_by_list::rustls::client::danger::{
        HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
    };
    use connect_by_list::rustls::crypto::{verify_tls12_signature, verify_tls13_signature};
    use connect_by_list::rustls::pki_types::pem::PemObject;
    use connect_by_list::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use connect_by_list::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};
    use connect_by_list::{ConnectError, Connector, TlsHandshake};
    use serde_json::json;

    use super::{Connected, Options};

    pub(super) type Tls = TlsHandshake;

    /// The handshake `--tls` asks for (reading `--ca`), or why it cannot be made.
    pub(super) fn prepare(options: &Options) -> Result<Option<TlsHandshake>, String> {
        if options.tls {
            handshake(options).map(Some)
        } else {
            Ok(None)
        }
    }

    fn handshake(options: &Options) -> Result<TlsHandshake, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?;
        let mut config = if options.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = RootCertStore::empty();
            match &options.ca {
                Some(file) => {
                    let certs = CertificateDer::pem_file_iter(file)
                        .map_err(|error| format!("--ca {file:?}: {error}"))?;
                    for cert in certs {
                        let cert = cert.map_err(|error| format!("--ca {file:?}: {error}"))?;
                        roots
                            .add(cert)
                            .map_err(|error| format!("--ca {file:?}: {error}"))?;
                    }
                    if roots.is_empty() {
                        return Err(format!("--ca {file:?}: no certificate in it"));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = options.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let mut handshake = TlsHandshake::new(Arc::new(config));
        if let Some(name) = &options.sni {
            let name = ServerName::try_from(name.clone())
                .map_err(|error| format!("--sni {name:?}: {error}"))?;
            handshake = handshake.server_name(name);
        }
        Ok(handshake)
    }

    pub(super) async fn connect(
        connector: &Connector,
        targets: &[String],
        handshake: &TlsHandshake,
    ) -> Result<Connected, ConnectError> {
        let connection = connector.connect_with(targets, handshake.clone()).await?;
        let (_, session) = connection.stream().get_ref();
        let info = json!({
            "version": session.protocol_version().map(|v| format!("{v:?}")),
            "alpn": session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
            "ech": format!("{:?}", session.ech_status()),
        });
        Ok((connection.map_stream(drop), Some(info)))
    }

    /// `--insecure`: any certificate is taken, but the handshake's signatures are still checked.
    #[derive(Debug)]
    struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            verify_tls12_signature(message, cert, dss, algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            verify_tls13_signature(message, cert, dss, algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(not(feature = "rustls"))]
mod tls {
    use connect_by_list::{ConnectError, Connector};

    use super::{Connected, Options};

    /// Without the rustls feature there is no handshake to make.
    pub(super) type Tls = std::convert::Infallible;

    pub(super) fn prepare(options: &Options) -> Result<Option<Tls>, String> {
        if options.tls {
            return Err(
                "--tls needs the rustls feature: cargo run --features rustls --example connect"
                    .to_string(),
            );
        }
        Ok(None)
    }

    pub(super) async fn connect(
        _: &Connector,
        _: &[String],
        never: &Tls,
    ) -> Result<Connected, ConnectError> {
        match *never {}
    }
}

/// Milliseconds with microsecond precision: a loopback connect takes tens of microseconds.
fn ms(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// Where an address came from: `literal`, `A`, `AAAA` or `hint`.
fn came_from(
    host: Option<&str>,
    remote: std::net::SocketAddr,
    via: Option<&HttpsVia>,
) -> &'static str {
    match (host, via) {
        (_, Some(via)) if via.is_hint() => "hint",
        (None, _) => "literal",
        _ if remote.is_ipv6() => "AAAA",
        _ => "A",
    }
}

/// The HTTPS record that shaped an attempt, or `null`.
fn https_json(via: Option<&HttpsVia>) -> Value {
    via.map_or(Value::Null, |via| {
        json!({
            "priority": via.priority(),
            "target": via.target(),
            "port": via.port(),
            "alpn": via.alpn().iter().map(|id| String::from_utf8_lossy(id)).collect::<Vec<_>>(),
            "ech": via.ech().is_some(),
        })
    })
}

fn attempt_json(attempt: &Attempt) -> Value {
    json!({
        "local": attempt.local().map(|a| a.to_string()),
        "remote": attempt.remote().to_string(),
        "nat64": attempt.nat64().map(nat64_json),
        "host": attempt.host(),
        "from": came_from(attempt.host(), attempt.remote(), attempt.https()),
        "https": https_json(attempt.https()),
        "start_ms": ms(attempt.started()),
        "connected_ms": attempt.connected().map(ms),
        "end_ms": ms(attempt.ended()),
        "outcome": attempt.outcome().as_str(),
        "error": attempt.error().map(|e| e.to_string()),
    })
}

/// What a synthesized IPv6 address stands for.
fn nat64_json(synthesized: &Synthesized) -> Value {
    json!({
        "ipv4": synthesized.ipv4().to_string(),
        "prefix": synthesized.prefix().to_string(),
    })
}

fn report_json(
    result: &Result<Connected, ConnectError>,
    report: &Report,
    elapsed: Duration,
) -> Value {
    let (peer, local, tls, error) = match result {
        Ok((connection, tls)) => (
            Some(connection.peer_addr().to_string()),
            connection.local_addr().ok().map(|local| local.to_string()),
            tls.clone(),
            None,
        ),
        Err(error) => (None, None, None, Some(error.to_string())),
    };
    json!({
        "ok": result.is_ok(),
        "elapsed_ms": ms(elapsed),
        "peer": peer,
        "local": local,
        "tls": tls,
        "error": error,
        "attempts": report.attempts().iter().map(attempt_json).collect::<Vec<_>>(),
        "resolve_failures": report.resolve_failures().iter().map(|f| json!({
            "host": f.host(),
            "error": f.error().to_string(),
        })).collect::<Vec<_>>(),
        "skipped": skipped_json(report),
        "favoured": report.favoured().map(|a| a.to_string()),
        "skipped_https_records": report.skipped_https_records().iter().map(|s| json!({
            "name": s.name(),
            "record": s.record(),
            "reason": s.reason(),
        })).collect::<Vec<_>>(),
        "not_tried": report.not_tried().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "unanswered_lookups": report.unanswered_lookups().iter().map(|lookup| json!({
            "host": lookup.host(),
            "family": lookup.family().to_string(),
            "waited_ms": ms(lookup.waited()),
        })).collect::<Vec<_>>(),
    })
}

fn skipped_json(report: &Report) -> Vec<Value> {
    report
        .skipped()
        .iter()
        .map(|s| {
            json!({
                "remote": s.remote().to_string(),
                "host": s.host(),
                "reason": s.reason().as_str(),
                "detail": s.to_string(),
            })
        })
        .collect()
}

/// `--plan`: the ordered attempts, with each destination's source address.
async fn show_plan(connector: &Connector, options: &Options) -> ExitCode {
    let planned = match connector.plan(&options.targets).await {
        Ok(planned) => planned,
        Err(error) => {
            if let Some(invalid) = error.invalid_target() {
                eprintln!("connect: {invalid}");
                return ExitCode::from(2);
            }
            if options.json {
                println!(
                    "{}",
                    json!({"plan": [], "error": error.to_string(), "skipped": skipped_json(error.report())})
                );
            } else {
                println!("nothing to try: {error}");
            }
            return ExitCode::from(1);
        }
    };
    let rows: Vec<Value> = planned
        .attempts()
        .iter()
        .map(|a| {
            json!({
                "local": a.local().map(|l| l.to_string()),
                "remote": a.remote().to_string(),
                "nat64": a.nat64().map(nat64_json),
                "source": a.source().map(|s| s.to_string()),
                "host": a.host(),
                "from": came_from(a.host(), a.remote(), a.https()),
                "https": https_json(a.https()),
            })
        })
        .collect();
    if options.json {
        let skipped = skipped_json(planned.report());
        println!("{}", json!({"plan": rows, "skipped": skipped}));
    } else {
        println!("{:>3}  {:<46} {:<46} source", "#", "remote", "local");
        for (i, a) in planned.attempts().iter().enumerate() {
            let local = a.local().map_or("-".to_string(), |l| l.to_string());
            let source = a.source().map_or("no route".to_string(), |s| s.to_string());
            let from = came_from(a.host(), a.remote(), a.https());
            let via = a.https().map(|via| format!(" [{via}]")).unwrap_or_default();
            println!(
                "{:>3}  {:<46} {:<46} {source} ({from}){via}",
                i + 1,
                a.remote().to_string(),
                local
            );
            if let Some(synthesized) = a.nat64() {
                println!("     ({synthesized})");
            }
        }
        for failure in planned.report().resolve_failures() {
            println!("     {failure}");
        }
        for skipped in planned.report().skipped() {
            println!("     {skipped}");
        }
    }
    ExitCode::SUCCESS
}

/// `--repeat N`: connect N times in sequence and summarize.
async fn repeat(
    connector: &Connector,
    options: &Options,
    tls: Option<&tls::Tls>,
    runs: u32,
) -> ExitCode {
    let mut times = Vec::new();
    let mut failed = 0u32;
    let mut peers: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..runs {
        let clock = Instant::now();
        match connect_once(connector, options, tls).await {
            Ok((connection, _)) => {
                times.push(clock.elapsed());
                *peers.entry(connection.peer_addr().to_string()).or_default() += 1;
            }
            Err(error) => {
                if let Some(invalid) = error.invalid_target() {
                    eprintln!("connect: {invalid}");
                    return ExitCode::from(2);
                }
                failed += 1;
            }
        }
    }
    times.sort();
    // Nearest-rank percentile over the successful connects.
    let pick = |p: f64| -> Option<f64> {
        let last = times.len().checked_sub(1)?;
        let rank = ((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1;
        times.get(rank.min(last)).map(|d| ms(*d))
    };
    let (min, median, p99, max) = (pick(0.0), pick(0.5), pick(0.99), pick(1.0));
    if options.json {
        println!(
            "{}",
            json!({"runs": runs, "failed": failed, "min_ms": min, "median_ms": median,
                   "p99_ms": p99, "max_ms": max, "peers": peers})
        );
    } else {
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}ms"));
        println!(
            "{runs} connects, {failed} failed: min {} median {} p99 {} max {}",
            show(min),
            show(median),
            show(p99),
            show(max)
        );
        for (peer, count) in &peers {
            println!("  {count:>6}  {peer}");
        }
    }
    if failed == runs {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("connect: cannot start the Tokio runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let status = runtime.block_on(run());
    // Exit now: a system-resolver lookup still out (an AAAA query nobody answers) holds a
    // blocking thread that dropping the runtime would wait for, for up to 20 s.
    runtime.shutdown_background();
    status
}

async fn run() -> ExitCode {
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
    let tls = match tls::prepare(&options) {
        Ok(tls) => tls,
        Err(message) => {
            eprintln!("connect: {message}");
            return ExitCode::from(2);
        }
    };
    if options.plan {
        return show_plan(&connector, &options).await;
    }
    if let Some(runs) = options.repeat {
        return repeat(&connector, &options, tls.as_ref(), runs).await;
    }
    let clock = Instant::now();
    let result = connect_once(&connector, &options, tls.as_ref()).await;
    let elapsed = clock.elapsed();
    if let Err(error) = &result {
        if let Some(invalid) = error.invalid_target() {
            eprintln!("connect: {invalid}");
            return ExitCode::from(2);
        }
    }
    let report = match &result {
        Ok((connection, _)) => connection.report(),
        Err(error) => error.report(),
    };
    if options.json {
        println!("{}", report_json(&result, report, elapsed));
    } else {
        match &result {
            Ok((connection, tls)) => {
                println!(
                    "connected to {} from {} in {:.1}ms",
                    connection.peer_addr(),
                    connection
                        .local_addr()
                        .map_or_else(|error| error.to_string(), |local| local.to_string()),
                    ms(elapsed)
                );
                if let Some(tls) = tls {
                    println!("TLS {} ALPN {}", tls["version"], tls["alpn"]);
                }
            }
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
