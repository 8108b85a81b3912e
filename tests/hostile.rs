//! Hostile input through the public API: arbitrary target text, arbitrary address sets through
//! resolution, ranking and planning, and huge inputs. Nothing may panic, every accepted target
//! round-trips, every plan is a permutation of the deduplicated candidates, and the documented
//! caps (`max_addresses_per_name`, 32 per family by default; `max_attempts`, 100 by default) hold,
//! with what they cut counted in `Report::not_tried`.
//!
//! Property tests run proptest's default 256 cases each; set `PROPTEST_CASES` (e.g. 10000) for a
//! longer local run.
//!
//! Addresses are loopback or documentation ranges only. Planning sends nothing (its route probes
//! are UDP `connect` calls, which send no packet); the few real connects go to loopback ports
//! reserved by this test, where the kernel answers with a reset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use connect_by_list::{
    AddressFilter, ConnectErrorKind, Connector, Family, Host, IntoTargets, IpPrefix, Outcome,
    Planned, Policy, PolicyTable, Resolve, Resolving, Target,
};
use proptest::prelude::*;
use support::loopback::Refused;

// ---------------------------------------------------------------------------------------------
// Target parsing
// ---------------------------------------------------------------------------------------------

/// Text that looks like a target often enough to reach every branch of the parser.
fn target_like() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-zA-Z0-9_.-]{0,20}",
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,4}",
        "0[xX][0-9a-fA-F]{1,8}(\\.[0-9]{1,3}){0,3}",
        "\\[[0-9a-fA-F:.%a-z]{0,45}\\]?",
        "[0-9a-fA-F:.]{0,45}",
        "[a-z]{1,63}(\\.[a-z]{1,63}){0,5}\\.?",
        any::<String>(),
    ];
    let port = prop_oneof![
        "[0-9]{0,6}",
        "-?[0-9]{1,3}",
        "[0-9a-z+ ]{0,4}",
        any::<u16>().prop_map(|p| p.to_string()),
    ];
    prop_oneof![
        (host.clone(), port).prop_map(|(h, p)| format!("{h}:{p}")),
        host,
        any::<String>(),
        ".*",
    ]
}

/// Every accepted target displays as text that parses back to the same target.
fn assert_round_trips(target: &Target) -> Result<(), TestCaseError> {
    prop_assert_ne!(target.port(), 0);
    let shown = target.to_string();
    let again: Target = shown
        .parse()
        .map_err(|e| TestCaseError::fail(format!("{target:?} shows as {shown:?}: {e}")))?;
    prop_assert_eq!(&again, target);
    if let Host::Ip(ip) = target.host() {
        prop_assert_eq!(
            target.socket_addr(),
            Some(SocketAddr::new(*ip, target.port()))
        );
    } else {
        prop_assert_eq!(target.socket_addr(), None);
    }
    Ok(())
}

proptest! {
    /// Any text: parsing never panics; an accepted target round-trips through `Display`; a
    /// refused one says which input and why.
    #[test]
    fn any_text_parses_or_is_refused_clearly(text in target_like()) {
        match text.parse::<Target>() {
            Ok(target) => assert_round_trips(&target)?,
            Err(invalid) => {
                prop_assert_eq!(invalid.input(), format!("{text:?}"));
                prop_assert!(!invalid.reason().is_empty());
            }
        }
        // The same text through each list form.
        let one = text.as_str().into_targets();
        prop_assert_eq!(one.clone(), vec![text.clone()].into_targets());
        prop_assert_eq!(one, [text.as_str()].into_targets());
    }

    /// Any (host, port): `Target::new` and the tuple conversions never panic and agree; an
    /// accepted target round-trips.
    #[test]
    fn any_host_and_port_parse_or_are_refused(host in target_like(), port in any::<u16>()) {
        let made = Target::new(&host, port);
        if let Ok(target) = &made {
            assert_round_trips(target)?;
            prop_assert_eq!(target.port(), port);
        }
        if port == 0 || host.is_empty() {
            prop_assert!(made.is_err());
        }
        prop_assert_eq!(made.clone().map(|t| vec![t]), (host.as_str(), port).into_targets());
        prop_assert_eq!(made.map(|t| vec![t]), (host.clone(), port).into_targets());
    }

    /// Any socket address converts, except port 0; it round-trips as text.
    #[test]
    fn any_socket_address_converts(bits in any::<u128>(), v4 in any::<u32>(), port in any::<u16>()) {
        for ip in [IpAddr::V6(Ipv6Addr::from_bits(bits)), IpAddr::V4(Ipv4Addr::from_bits(v4))] {
            let addr = SocketAddr::new(ip, port);
            match addr.into_targets() {
                Ok(targets) => {
                    prop_assert_ne!(port, 0);
                    prop_assert_eq!(targets.len(), 1);
                    prop_assert_eq!(targets[0].socket_addr(), Some(addr));
                    assert_round_trips(&targets[0])?;
                }
                Err(_) => prop_assert_eq!(port, 0),
            }
        }
    }

    /// A list with one bad entry anywhere is refused, naming that entry.
    #[test]
    fn one_bad_entry_refuses_the_list(good in 0usize..50, at in any::<prop::sample::Index>()) {
        let mut list: Vec<String> = (0..good).map(|i| format!("host{i}.test:{}", i + 1)).collect();
        let at = at.index(list.len() + 1);
        list.insert(at, "host.test:0".into());
        let invalid = list.into_targets().expect_err("port 0 is refused");
        prop_assert_eq!(invalid.input(), "\"host.test:0\"");
    }
}

#[test]
fn huge_text_is_refused_cheaply() {
    let long_name = format!("{}:80", "a".repeat(1 << 20));
    let invalid = long_name.parse::<Target>().expect_err("over 253 bytes");
    assert!(
        invalid.reason().contains("over DNS"),
        "{}",
        invalid.reason()
    );
    let many_labels = format!("{}:80", "a.".repeat(1 << 18));
    assert!(many_labels.parse::<Target>().is_err());
    let many_brackets = format!("{}:80", "[".repeat(1 << 16));
    assert!(many_brackets.parse::<Target>().is_err());
    let many_colons = ":".repeat(1 << 16);
    assert!(many_colons.parse::<Target>().is_err());
    // 100,000 valid entries and one bad one at the end.
    let mut list: Vec<String> = (0..100_000)
        .map(|i| format!("127.0.{}.{}:{}", i / 256 % 256, i % 256, 1 + i % 60_000))
        .collect();
    assert_eq!(list.clone().into_targets().map(|t| t.len()), Ok(100_000));
    list.push("127.0.0.1".into());
    let invalid = list.into_targets().expect_err("no port");
    assert_eq!(invalid.input(), "\"127.0.0.1\"");
}

// ---------------------------------------------------------------------------------------------
// Resolution, ranking and planning with arbitrary address sets
// ---------------------------------------------------------------------------------------------

/// A resolver over a fixed table: `n<i>.test` answers with entry i (the whole list, both families
/// mixed, whichever family is asked: the connector must keep only the family it asked for), or
/// fails when the entry is `None`.
#[derive(Debug, Clone)]
struct Table(Arc<Vec<Option<Vec<IpAddr>>>>);

impl Table {
    fn name(index: usize) -> String {
        format!("n{index}.test")
    }
}

impl Resolve for Table {
    fn resolve(&self, name: &str, _family: Family) -> Resolving {
        let entry = name
            .strip_prefix('n')
            .and_then(|rest| rest.strip_suffix(".test"))
            .and_then(|index| index.parse::<usize>().ok())
            .and_then(|index| self.0.get(index).cloned());
        Box::pin(async move {
            match entry {
                Some(Some(addrs)) => Ok(addrs),
                Some(None) => Err(io::Error::other("scripted lookup failure")),
                None => Err(io::Error::new(io::ErrorKind::NotFound, "not in the table")),
            }
        })
    }
}

/// Loopback and documentation addresses only, from narrow ranges (to make duplicates) and wide
/// ones, both families, IPv4-mapped IPv6 included.
fn allowed_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (1u8..4).prop_map(|d| IpAddr::V4(Ipv4Addr::new(127, 0, 0, d))),
        any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::V4(Ipv4Addr::new(127, a, b, c))),
        (0u8..4).prop_map(|d| IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))),
        any::<u8>().prop_map(|d| IpAddr::V4(Ipv4Addr::new(198, 51, 100, d))),
        any::<u8>().prop_map(|d| IpAddr::V4(Ipv4Addr::new(203, 0, 113, d))),
        Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        (0u16..4).prop_map(|d| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, d))),
        any::<[u16; 6]>().prop_map(|[a, b, c, d, e, f]| {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, a, b, c, d, e, f))
        }),
        (0u8..4).prop_map(|d| IpAddr::V6(Ipv4Addr::new(192, 0, 2, d).to_ipv6_mapped())),
    ]
}

/// One target of a generated list.
#[derive(Clone, Debug)]
enum Spec {
    Literal(IpAddr, u16),
    /// `n<i>.test` with a port.
    Name(usize, u16),
}

fn any_port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(80u16), Just(443), 1u16..=65535]
}

fn any_spec(names: usize) -> impl Strategy<Value = Spec> {
    prop_oneof![
        (allowed_ip(), any_port()).prop_map(|(ip, port)| Spec::Literal(ip, port)),
        (0..names, any_port()).prop_map(|(i, port)| Spec::Name(i, port)),
    ]
}

fn target_of(spec: &Spec) -> Target {
    match spec {
        Spec::Literal(ip, port) => Target::from(SocketAddr::new(*ip, *port)),
        Spec::Name(index, port) => Target::new(&Table::name(*index), *port).unwrap(),
    }
}

/// Policy tables: the built-in ones, and arbitrary rows (refused tables fall back to the default).
fn any_table() -> impl Strategy<Value = PolicyTable> {
    let row = (any::<u128>(), 0u8..=128, any::<u8>(), any::<u8>()).prop_map(
        |(bits, prefix_len, precedence, label)| {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len))
                .unwrap_or(0);
            Policy {
                prefix: Ipv6Addr::from_bits(bits & mask),
                prefix_len,
                precedence,
                label,
            }
        },
    );
    prop_oneof![
        Just(PolicyTable::rfc6724()),
        Just(PolicyTable::rfc6724_update()),
        Just(PolicyTable::prefer_ipv4()),
        prop::collection::vec(row, 0..8)
            .prop_map(|rows| PolicyTable::new(rows).unwrap_or_else(|_| PolicyTable::rfc6724())),
    ]
}

fn any_filter() -> impl Strategy<Value = AddressFilter> {
    prop_oneof![
        4 => Just(AddressFilter::allow_all()),
        1 => Just(AddressFilter::deny_non_public()),
        1 => Just(AddressFilter::allow_all().deny("192.0.2.0/24".parse::<IpPrefix>().unwrap())),
        1 => Just(AddressFilter::allow_all().deny("::1".parse::<IpPrefix>().unwrap())),
    ]
}

/// Everything one generated plan case needs.
#[derive(Clone, Debug)]
struct PlanCase {
    answers: Vec<Option<Vec<IpAddr>>>,
    specs: Vec<Spec>,
    cap: usize,
    first_family_count: usize,
    sort: bool,
    table: PolicyTable,
    filter: AddressFilter,
}

fn any_plan_case() -> impl Strategy<Value = PlanCase> {
    let answers = prop::collection::vec(
        prop::option::weighted(0.9, prop::collection::vec(allowed_ip(), 0..40)),
        1..5,
    );
    answers
        .prop_flat_map(|answers| {
            let names = answers.len();
            (
                Just(answers),
                prop::collection::vec(any_spec(names), 1..12),
                prop_oneof![1usize..4, 1usize..64],
                1usize..4,
                any::<bool>(),
                any_table(),
                any_filter(),
            )
        })
        .prop_map(
            |(answers, specs, cap, first_family_count, sort, table, filter)| PlanCase {
                answers,
                specs,
                cap,
                first_family_count,
                sort,
                table,
                filter,
            },
        )
}

/// What the plan must hold: the allowed remotes (IPv4-mapped ones as IPv4), the denied ones (as
/// given), and how many the per-name cap cuts.
struct Expected {
    allowed: HashSet<SocketAddr>,
    denied: HashSet<SocketAddr>,
    cut: usize,
    /// At most this many candidates can come out: literals, plus two capped answers per name.
    bound: usize,
}

fn expected(case: &PlanCase) -> Expected {
    let mut all = Vec::new();
    let mut cut = 0;
    let mut bound = 0;
    for spec in &case.specs {
        match spec {
            Spec::Literal(ip, port) => {
                all.push(SocketAddr::new(*ip, *port));
                bound += 1;
            }
            Spec::Name(index, port) => {
                bound += 2 * case.cap;
                let Some(answer) = &case.answers[*index] else {
                    continue;
                };
                for family in [Family::V6, Family::V4] {
                    let of_family: Vec<IpAddr> = answer
                        .iter()
                        .copied()
                        .filter(|ip| Family::of(*ip) == family)
                        .collect();
                    cut += of_family.len().saturating_sub(case.cap);
                    all.extend(
                        of_family
                            .into_iter()
                            .take(case.cap)
                            .map(|ip| SocketAddr::new(ip, *port)),
                    );
                }
            }
        }
    }
    let (allowed, denied): (HashSet<SocketAddr>, HashSet<SocketAddr>) = all
        .into_iter()
        .partition(|addr| case.filter.check(addr.ip()).is_ok());
    // The filter judges the address as given (and names its form when it refuses it); an
    // IPv4-mapped address that passes is then dialed as the IPv4 address it is.
    let allowed = allowed
        .into_iter()
        .map(|addr| SocketAddr::new(addr.ip().to_canonical(), addr.port()))
        .collect();
    Expected {
        allowed,
        denied,
        cut,
        bound,
    }
}

fn plan_connector(case: &PlanCase) -> connect_by_list::Builder {
    Connector::builder()
        .resolver(Table(Arc::new(case.answers.clone())))
        .max_addresses_per_name(case.cap)
        .first_family_count(case.first_family_count)
        .policy_table(case.table.clone())
        .sort_addresses(case.sort)
        .address_filter(case.filter.clone())
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// RFC 8305 §4 interleaving: the first `first_family_count` attempts from the first attempt's
/// family, then the families alternate while both have candidates left.
fn assert_interleaved(families: &[Family], first_family_count: usize) -> Result<(), TestCaseError> {
    let Some(&preferred) = families.first() else {
        return Ok(());
    };
    let mut left_preferred = families.iter().filter(|f| **f == preferred).count();
    let mut left_other = families.len() - left_preferred;
    let mut want = Vec::new();
    let run = first_family_count.min(left_preferred);
    want.extend(std::iter::repeat_n(preferred, run));
    left_preferred -= run;
    let mut other_turn = true;
    while left_preferred + left_other > 0 {
        if (other_turn && left_other > 0) || left_preferred == 0 {
            want.push(preferred.other());
            left_other -= 1;
        } else {
            want.push(preferred);
            left_preferred -= 1;
        }
        other_turn = !other_turn;
    }
    prop_assert_eq!(families, want.as_slice());
    Ok(())
}

fn check_plan(
    case: &PlanCase,
    planned: Result<Planned, connect_by_list::ConnectError>,
) -> Result<(), TestCaseError> {
    let want = expected(case);
    let report = match &planned {
        Ok(planned) => planned.report(),
        Err(error) => error.report(),
    };
    prop_assert_eq!(report.not_tried().len(), want.cut);
    prop_assert!(report.attempts().is_empty(), "planning connects nothing");
    let skipped: HashSet<SocketAddr> = report.skipped().iter().map(|s| s.remote()).collect();
    prop_assert_eq!(&skipped, &want.denied);
    match planned {
        Err(error) => {
            prop_assert!(want.allowed.is_empty(), "{error}");
            let kind = if want.denied.is_empty() {
                ConnectErrorKind::NoAddresses
            } else {
                ConnectErrorKind::Denied
            };
            prop_assert_eq!(error.kind(), kind);
        }
        Ok(planned) => {
            let remotes: Vec<SocketAddr> = planned.attempts().iter().map(|a| a.remote()).collect();
            // A permutation of the deduplicated candidates.
            let unique: HashSet<SocketAddr> = remotes.iter().copied().collect();
            prop_assert_eq!(unique.len(), remotes.len(), "a duplicate in {:?}", remotes);
            prop_assert_eq!(&unique, &want.allowed);
            prop_assert!(remotes.len() <= want.bound);
            for attempt in planned.attempts() {
                prop_assert_eq!(attempt.local(), None);
                if let Some(source) = attempt.source() {
                    prop_assert_eq!(source.is_ipv4(), attempt.remote().is_ipv4());
                }
            }
            let families: Vec<Family> = remotes.iter().map(|r| Family::of(r.ip())).collect();
            assert_interleaved(&families, case.first_family_count)?;
        }
    }
    Ok(())
}

proptest! {
    /// Arbitrary names, answers (duplicates, both families mixed in one answer, failures, empty
    /// ones), literals, caps, policy tables (arbitrary rows included) and filters: planning never
    /// panics; the plan is a permutation of the deduplicated allowed candidates, bounded by the
    /// per-name cap, with families interleaved per RFC 8305 §4; denied addresses are listed as
    /// skipped; what the cap cut is counted in `not_tried`.
    #[test]
    fn any_address_set_plans_as_a_capped_permutation(case in any_plan_case()) {
        let connector = plan_connector(&case).build().unwrap();
        let targets: Vec<Target> = case.specs.iter().map(target_of).collect();
        let planned = block_on(connector.plan(targets));
        check_plan(&case, planned)?;
    }

    /// The same with local source addresses (some not on this host): every (local, remote) pair is
    /// unique and of one family, and every allowed remote is either planned or skipped as out of
    /// every local address's reach.
    #[test]
    fn any_address_set_with_local_addresses_plans_unique_pairs(
        case in any_plan_case(),
        locals in prop::collection::vec(
            prop_oneof![
                Just(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                Just(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
                Just(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                Just(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                Just(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
                Just(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
            ],
            1..5,
        ),
    ) {
        let connector = plan_connector(&case).local_addrs(locals.clone()).build().unwrap();
        let targets: Vec<Target> = case.specs.iter().map(target_of).collect();
        let want = expected(&case);
        let planned = block_on(connector.plan(targets));
        let report = match &planned {
            Ok(planned) => planned.report(),
            Err(error) => error.report(),
        };
        prop_assert_eq!(report.not_tried().len(), want.cut);
        let skipped: HashSet<SocketAddr> = report.skipped().iter().map(|s| s.remote()).collect();
        let planned_remotes: HashSet<SocketAddr> = match &planned {
            Ok(planned) => {
                let pairs: Vec<(Option<SocketAddr>, SocketAddr)> =
                    planned.attempts().iter().map(|a| (a.local(), a.remote())).collect();
                let unique: HashSet<_> = pairs.iter().copied().collect();
                prop_assert_eq!(unique.len(), pairs.len(), "a duplicate pair in {:?}", pairs);
                for (local, remote) in &pairs {
                    let local = local.expect("a listed local address");
                    prop_assert_eq!(local.is_ipv4(), remote.is_ipv4());
                    prop_assert!(locals.contains(&local.ip()));
                }
                pairs.iter().map(|(_, remote)| *remote).collect()
            }
            Err(error) => {
                prop_assert!(matches!(error.kind(), ConnectErrorKind::NoAddresses | ConnectErrorKind::Denied));
                HashSet::new()
            }
        };
        // Skipped addresses are listed as given, IPv4-mapped or not; compare canonical forms.
        let canonical = |set: &HashSet<SocketAddr>| -> HashSet<SocketAddr> {
            set.iter().map(|a| SocketAddr::new(a.ip().to_canonical(), a.port())).collect()
        };
        let every = canonical(&want.allowed.union(&want.denied).copied().collect());
        let seen = canonical(&planned_remotes.union(&skipped).copied().collect());
        prop_assert_eq!(seen, every);
        prop_assert!(planned_remotes.is_subset(&want.allowed));
    }

    /// The builder refuses what is out of bounds, naming the setting, and never panics; any
    /// connector it builds plans a literal.
    #[test]
    fn any_settings_build_or_are_refused(
        attempt_delay in any::<u64>(),
        resolution_delay in any::<u64>(),
        timeout in prop::option::of(any::<u64>()),
        attempt_timeout in prop::option::of(any::<u64>()),
        first_family_count in any::<usize>(),
        max_attempts in any::<usize>(),
        max_addresses_per_name in any::<usize>(),
        history_capacity in 0usize..4,
        history_ttl in any::<u64>(),
    ) {
        let nanos = std::time::Duration::from_nanos;
        let mut builder = Connector::builder()
            .attempt_delay(nanos(attempt_delay))
            .resolution_delay(nanos(resolution_delay))
            .first_family_count(first_family_count)
            .max_attempts(max_attempts)
            .max_addresses_per_name(max_addresses_per_name)
            .history_capacity(history_capacity)
            .history_ttl(nanos(history_ttl));
        if let Some(t) = timeout {
            builder = builder.timeout(nanos(t));
        }
        if let Some(t) = attempt_timeout {
            builder = builder.attempt_timeout(nanos(t));
        }
        match builder.build() {
            Ok(connector) => {
                let plan = block_on(connector.plan("127.0.0.1:9"));
                prop_assert!(plan.is_ok());
            }
            Err(error) => prop_assert!(!error.setting().is_empty() && !error.reason().is_empty()),
        }
    }
}

/// Durations at the edge of `Duration` itself: never a panic, even where a deadline would
/// overflow the clock.
#[tokio::test]
async fn extreme_durations_do_not_panic() {
    let refused = Refused::new(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let connector = Connector::builder()
        .timeout(std::time::Duration::MAX)
        .attempt_timeout(std::time::Duration::MAX)
        .history_ttl(std::time::Duration::MAX)
        .build()
        .unwrap();
    let error = connector
        .connect(refused.addr())
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), ConnectErrorKind::AllFailed);
    assert_eq!(error.report().attempts()[0].outcome(), Outcome::Refused);
    assert!(connector.plan(refused.addr()).await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Huge inputs
// ---------------------------------------------------------------------------------------------

/// A port reserved on every IPv4 address (bound to 0.0.0.0, never listening): every 127.x.y.z
/// answers a SYN to it with a reset, and no other test can listen there.
fn refused_everywhere() -> Refused {
    Refused::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).expect("reserve a port")
}

/// The i-th of many distinct loopback addresses (127.1.0.0 upwards).
fn loopback(i: usize) -> IpAddr {
    let i = u32::try_from(i).unwrap();
    IpAddr::V4(Ipv4Addr::from_bits(0x7f01_0000 + i))
}

/// 10,000 distinct IP literals: planning keeps them all (the attempt cap applies to connecting,
/// not to showing the plan); connecting with `max_attempts(5)` makes five attempts (all refused
/// by loopback) and counts the other 9,995 in `not_tried`; the error's text stays short.
#[tokio::test]
async fn ten_thousand_targets_are_planned_and_capped() {
    const N: usize = 10_000;
    let port = refused_everywhere();
    let targets: Vec<SocketAddr> = (0..N)
        .map(|i| SocketAddr::new(loopback(i), port.addr().port()))
        .collect();
    let started = std::time::Instant::now();
    let planned = Connector::new().plan(&targets).await.expect("a plan");
    let planning = started.elapsed();
    assert_eq!(planned.attempts().len(), N);
    let unique: HashSet<SocketAddr> = planned.attempts().iter().map(|a| a.remote()).collect();
    assert_eq!(unique.len(), N);
    assert_eq!(planned.report().not_tried().len(), 0);

    let started = std::time::Instant::now();
    let error = Connector::builder()
        .max_attempts(5)
        .build()
        .unwrap()
        .connect(&targets)
        .await
        .expect_err("every address is refused");
    let connecting = started.elapsed();
    assert_eq!(error.kind(), ConnectErrorKind::AllFailed);
    let report = error.report();
    assert_eq!(report.attempts().len(), 5);
    assert!(report
        .attempts()
        .iter()
        .all(|a| a.outcome() == Outcome::Refused));
    assert_eq!(report.not_tried().len(), N - 5);
    let text = error.to_string();
    assert!(text.len() < 2_000, "{} bytes: {text}", text.len());
    assert!(
        text.contains(&format!("not tried: {} addresses", N - 5)),
        "{text}"
    );
    // Printed, not asserted. Planning 10,000 targets costs a route probe (a UDP connect, which
    // sends nothing) per address, and showing the plan orders all of them.
    eprintln!(
        "10,000 targets: plan in {planning:?}, connect capped at 5 attempts in {connecting:?}"
    );
}

/// Answers `huge.test` with `count` IPv4 loopback addresses and as many IPv6 documentation
/// addresses, and `n<i>.test` with `count` IPv4 loopback addresses from block i.
#[derive(Debug)]
struct Huge {
    count: usize,
}

impl Resolve for Huge {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let count = self.count;
        let block = name
            .strip_prefix('n')
            .and_then(|rest| rest.strip_suffix(".test"))
            .and_then(|i| i.parse::<usize>().ok());
        let answer: Vec<IpAddr> = match (name, family, block) {
            ("huge.test", Family::V4, _) => (0..count).map(loopback).collect(),
            ("huge.test", Family::V6, _) => (0..count)
                .map(|i| {
                    let i = u128::try_from(i).unwrap();
                    IpAddr::V6(Ipv6Addr::from_bits((0x2001_0db8_u128 << 96) + i))
                })
                .collect(),
            (_, Family::V4, Some(block)) => {
                (0..count).map(|i| loopback(block * count + i)).collect()
            }
            _ => Vec::new(),
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// A name with 100,000 addresses per family: the plan keeps the first 32 of each family (the
/// documented default of `max_addresses_per_name`) and counts the rest as not tried.
#[tokio::test]
async fn a_name_with_a_hundred_thousand_addresses_is_cut_to_the_default_cap() {
    const N: usize = 100_000;
    let connector = Connector::builder()
        .resolver(Huge { count: N })
        .build()
        .unwrap();
    let planned = connector.plan("huge.test:80").await.expect("a plan");
    assert_eq!(planned.attempts().len(), 64);
    let v6 = planned
        .attempts()
        .iter()
        .filter(|a| a.remote().is_ipv6())
        .count();
    assert_eq!(v6, 32);
    assert_eq!(planned.report().not_tried().len(), 2 * (N - 32));
    // The first 32 of each family, in the resolver's order.
    let want: HashSet<IpAddr> = (0..32)
        .map(loopback)
        .chain((0..32u128).map(|i| IpAddr::V6(Ipv6Addr::from_bits((0x2001_0db8_u128 << 96) + i))))
        .collect();
    let got: HashSet<IpAddr> = planned.attempts().iter().map(|a| a.remote().ip()).collect();
    assert_eq!(got, want);
}

/// Connecting to names with thousands of refused loopback addresses each: the default caps hold.
/// One name: 32 attempts (all refused), the other 4,968 not tried. Four names: 128 candidates,
/// of which the default `max_attempts` of 100 are tried. A raised per-name cap is still bounded
/// by `max_attempts`.
#[tokio::test]
async fn thousands_of_refused_addresses_are_bounded_by_the_default_caps() {
    const N: usize = 5_000;
    let reserved = refused_everywhere();
    let port = reserved.addr().port();
    let connector = Connector::builder()
        .resolver(Huge { count: N })
        .history_capacity(0)
        .build()
        .unwrap();

    let error = connector
        .connect(("n0.test", port))
        .await
        .expect_err("all refused");
    let report = error.report();
    assert_eq!(error.kind(), ConnectErrorKind::AllFailed);
    assert_eq!(report.attempts().len(), 32);
    assert!(report
        .attempts()
        .iter()
        .all(|a| a.outcome() == Outcome::Refused && a.host() == Some("n0.test")));
    assert_eq!(report.not_tried().len(), N - 32);

    let names: Vec<(String, u16)> = (0..4).map(|i| (format!("n{i}.test"), port)).collect();
    let error = connector.connect(names).await.expect_err("all refused");
    let report = error.report();
    assert_eq!(report.attempts().len(), 100);
    assert_eq!(report.not_tried().len(), 4 * (N - 32) + (4 * 32 - 100));

    let wide = Connector::builder()
        .resolver(Huge { count: N })
        .max_addresses_per_name(10_000)
        .max_attempts(50)
        .build()
        .unwrap();
    let error = wide
        .connect(("n0.test", port))
        .await
        .expect_err("all refused");
    assert_eq!(error.report().attempts().len(), 50);
    assert_eq!(error.report().not_tried().len(), N - 50);
}

/// Answers `a.test` with 192.0.2.1 and 192.0.2.2 after `a_after`, `b.test` with 192.0.2.3 and
/// 192.0.2.1 after `b_after` (IPv4 only).
#[derive(Debug)]
struct Overlapping {
    a_after: std::time::Duration,
    b_after: std::time::Duration,
}

impl Resolve for Overlapping {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        let v4 = |d: u8| IpAddr::V4(Ipv4Addr::new(192, 0, 2, d));
        let (after, answer) = match (name, family) {
            ("a.test", Family::V4) => (self.a_after, vec![v4(1), v4(2)]),
            ("b.test", Family::V4) => (self.b_after, vec![v4(3), v4(1)]),
            _ => (std::time::Duration::ZERO, Vec::new()),
        };
        Box::pin(async move {
            tokio::time::sleep(after).await;
            Ok(answer)
        })
    }
}

/// An address that two names share keeps the place of its first name in the caller's order,
/// whichever answer arrives first (RFC 6724 rule 10 and `sort_addresses(false)` both follow the
/// caller's order; it must not depend on DNS timing). Before the plan kept each pair's earliest
/// place, the copy added first won: when `b.test` answered first, 192.0.2.1 took `b.test`'s place
/// (second target, second answer) and was tried last instead of first.
#[tokio::test(start_paused = true)]
async fn a_shared_address_keeps_its_first_place_whatever_answers_first() {
    let ms = std::time::Duration::from_millis;
    let mut orders = Vec::new();
    for (a_after, b_after) in [(ms(1), ms(20)), (ms(20), ms(1))] {
        let planned = Connector::builder()
            .resolver(Overlapping { a_after, b_after })
            .sort_addresses(false)
            .build()
            .unwrap()
            .plan(["a.test:80", "b.test:80"])
            .await
            .expect("a plan");
        let order: Vec<String> = planned
            .attempts()
            .iter()
            .map(|a| a.remote().ip().to_string())
            .collect();
        orders.push(order);
    }
    assert_eq!(orders[0], ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
    assert_eq!(orders[1], orders[0], "the order changed with answer timing");

    // A literal later in the list that a name before it also resolves to: the name's place.
    let planned = Connector::builder()
        .resolver(Overlapping {
            a_after: ms(1),
            b_after: ms(1),
        })
        .sort_addresses(false)
        .build()
        .unwrap()
        .plan(["a.test:80", "192.0.2.1:80"])
        .await
        .expect("a plan");
    let order: Vec<String> = planned
        .attempts()
        .iter()
        .map(|a| a.remote().ip().to_string())
        .collect();
    assert_eq!(order, ["192.0.2.1", "192.0.2.2"]);
}

/// A link-local destination is only reachable with its scope (interface) id, and the parser's
/// answer to `[fe80::1%eth0]:80` is "pass a SocketAddrV6 with its scope id". That address must
/// keep its scope id through the conversion and into the plan.
///
#[tokio::test]
async fn a_socket_address_keeps_its_ipv6_scope_id() {
    let addr = std::net::SocketAddrV6::new("fe80::1".parse().unwrap(), 80, 0, 1);
    let targets = addr.into_targets().expect("a valid target");
    assert_eq!(targets[0].socket_addr(), Some(SocketAddr::V6(addr)));
    // Planning sends nothing.
    let planned = Connector::new().plan(addr).await.expect("a plan");
    assert_eq!(planned.attempts()[0].remote(), SocketAddr::V6(addr));
}
