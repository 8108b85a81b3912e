//! RFC 9460 records read from the wire and judged; each test names the section it checks.

use super::*;

/// RDATA in wire form: priority, target (dotted, "." for the root), then (key, value) pairs as
/// given (so tests can break the order).
fn rdata(priority: u16, target: &str, params: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = priority.to_be_bytes().to_vec();
    for label in target.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    for (key, value) in params {
        out.extend_from_slice(&key.to_be_bytes());
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn alpn_value(ids: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for id in ids {
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
    }
    out
}

fn malformed(rdata: &[u8]) -> String {
    HttpsRecord::from_rdata(rdata)
        .expect_err("the record is malformed")
        .reason()
        .to_owned()
}

/// RFC 9460 §2.2 and §7: every key this client reads, from the wire.
#[test]
fn every_key_is_read_from_the_wire() {
    let alpn = alpn_value(&["h2", "h3"]);
    let v6: Vec<u8> = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets().to_vec();
    let record = HttpsRecord::from_rdata(&rdata(
        2,
        "Svc.Example.NET.",
        &[
            (0, &[0, 1]),
            (1, &alpn),
            (2, &[]),
            (3, &[0x20, 0xfb]),
            (4, &[192, 0, 2, 1, 192, 0, 2, 2]),
            (5, &[0xfe, 0x0d]),
            (6, &v6),
            (4242, &[9]),
        ],
    ))
    .expect("a well-formed record");
    assert_eq!(record.priority(), 2);
    assert!(!record.is_alias());
    assert_eq!(record.target(), Some("svc.example.net"));
    assert_eq!(record.mandatory(), [1]);
    assert_eq!(record.alpn(), [b"h2".to_vec(), b"h3".to_vec()]);
    assert!(record.no_default_alpn());
    assert_eq!(record.port(), Some(8443));
    assert_eq!(
        record.ipv4_hints(),
        [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)]
    );
    assert_eq!(record.ech(), Some(&[0xfe, 0x0d][..]));
    assert_eq!(
        record.ipv6_hints(),
        ["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(
        record.to_string(),
        "2 svc.example.net mandatory=alpn alpn=h2,h3 no-default-alpn port=8443 \
         ipv4hint=192.0.2.1,192.0.2.2 ech=(2 bytes) ipv6hint=2001:db8::1 key4242"
    );
}

/// RFC 9460 §2.4.2: "recipients MUST ignore any SvcParams that are present" in AliasMode.
#[test]
fn alias_mode_parameters_are_ignored() {
    let record = HttpsRecord::from_rdata(&rdata(0, "pool.example.net", &[(3, &[1, 187])]))
        .expect("an AliasMode record");
    assert!(record.is_alias());
    assert_eq!(record.target(), Some("pool.example.net"));
    assert_eq!(record.port(), None);
    // Present when the same parameter comes in ServiceMode:
    let service = HttpsRecord::from_rdata(&rdata(1, "pool.example.net", &[(3, &[1, 187])]))
        .expect("a ServiceMode record");
    assert_eq!(service.port(), Some(443));
}

/// RFC 9460 §2.2: keys strictly increasing, known values well formed, no compression; each
/// breach is refused with a reason that names the part.
#[test]
fn malformed_records_are_refused_with_the_reason() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "SvcPriority is cut short"),
        (vec![0, 1], "TargetName is cut short"),
        (vec![0, 1, 3, b'a', b'b'], "TargetName is cut short"),
        (vec![0, 1, 0xc0, 12], "TargetName is compressed"),
        (vec![0, 1, 1, b' ', 0], "TargetName has a label"),
        (vec![0, 1, 0, 0, 3, 0, 2, 1], "SvcParamValue is cut short"),
        (vec![0, 1, 0, 0], "SvcParamKey is cut short"),
        (
            rdata(1, ".", &[(3, &[1, 187]), (1, &alpn_value(&["h2"]))]),
            "alpn is out of order or repeated",
        ),
        (
            rdata(1, ".", &[(3, &[1, 187]), (3, &[1, 187])]),
            "port is out of order or repeated",
        ),
        (rdata(1, ".", &[(65535, &[])]), "invalid key 65535"),
        (rdata(1, ".", &[(3, &[1])]), "port: not two bytes"),
        (rdata(1, ".", &[(1, &[])]), "alpn: empty"),
        (rdata(1, ".", &[(1, &[0])]), "alpn: an empty protocol id"),
        (rdata(1, ".", &[(1, &[5, b'h'])]), "alpn-id is cut short"),
        (rdata(1, ".", &[(2, &[1])]), "no-default-alpn: has a value"),
        (
            rdata(1, ".", &[(4, &[192, 0, 2])]),
            "ipv4hint: not a non-empty",
        ),
        (rdata(1, ".", &[(4, &[])]), "ipv4hint: not a non-empty"),
        (rdata(1, ".", &[(6, &[0; 15])]), "ipv6hint: not a non-empty"),
        (rdata(1, ".", &[(5, &[])]), "ech: empty"),
        (
            rdata(1, ".", &[(0, &[0, 3, 0, 1]), (1, b"\x02h2"), (3, &[0, 1])]),
            "mandatory: keys out of order",
        ),
        (rdata(1, ".", &[(0, &[0, 0])]), "mandatory: lists itself"),
        (rdata(1, ".", &[(0, &[0])]), "mandatory: not a non-empty"),
        (
            rdata(1, ".", &[(0, &[0, 3])]),
            "mandatory lists port but the record does not have it",
        ),
    ];
    for (wire, expected) in cases {
        let reason = malformed(&wire);
        assert!(
            reason.contains(expected),
            "{wire:?}: {reason:?} should say {expected:?}"
        );
    }
    // A 64-octet label, and a name past 255 octets.
    let mut long_label = vec![0, 1, 64];
    long_label.extend([b'a'; 64]);
    long_label.push(0);
    assert!(malformed(&long_label).contains("longer than 63"));
    let long_name = rdata(1, &vec!["a".repeat(63); 5].join("."), &[]);
    assert!(malformed(&long_name).contains("longer than 255"));
    // Every prefix of a good record is refused, never a panic.
    let good = rdata(
        1,
        "svc.example.net",
        &[
            (1, &alpn_value(&["h2"])),
            (3, &[1, 187]),
            (4, &[192, 0, 2, 1]),
        ],
    );
    assert!(HttpsRecord::from_rdata(&good).is_ok());
    for cut in 0..good.len() {
        let prefix = &good[..cut];
        // A prefix that ends right after a whole parameter is itself a good record.
        let _ = HttpsRecord::from_rdata(prefix);
    }
    assert!(HttpsRecord::from_rdata(&good[..good.len() - 1]).is_err());
}

/// Caps: at most 8 hints of each family are kept from one record, however many it carries.
#[test]
fn hints_are_capped() {
    let v4: Vec<u8> = (0..20u8).flat_map(|i| [192, 0, 2, i]).collect();
    let v6: Vec<u8> = (0..20u16)
        .flat_map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i).octets())
        .collect();
    let record = HttpsRecord::from_rdata(&rdata(1, ".", &[(4, &v4), (6, &v6)])).unwrap();
    assert_eq!(record.ipv4_hints().len(), MAX_HINTS);
    assert_eq!(record.ipv6_hints().len(), MAX_HINTS);
    assert_eq!(record.ipv4_hints()[7], Ipv4Addr::new(192, 0, 2, 7));
    let built =
        HttpsRecord::new(1, ".").with_ipv4_hints((0..20).map(|i| Ipv4Addr::new(192, 0, 2, i)));
    assert_eq!(built.ipv4_hints().len(), MAX_HINTS);
}

/// RFC 9460 §9.1: "_PORT._https.NAME" for ports other than 443.
#[test]
fn query_names() {
    assert_eq!(query_name("example.com", 443), "example.com");
    assert_eq!(query_name("example.com.", 443), "example.com");
    assert_eq!(query_name("example.com", 8443), "_8443._https.example.com");
    assert_eq!(query_name("example.com", 80), "_80._https.example.com");
}

fn judge(owner: &str, records: &[HttpsRecord]) -> (Answer, Vec<SkippedRecord>) {
    read_answer(owner, records, 443, &ClientSupport::default())
}

fn services(answer: Answer) -> Vec<Service> {
    match answer {
        Answer::Services(services) => services,
        Answer::Alias(name) => panic!("an alias to {name}, not services"),
    }
}

/// RFC 9460 §2.4.3: ServiceMode records are tried by SvcPriority, lowest first.
#[test]
fn services_come_lowest_priority_first() {
    let (answer, skipped) = judge(
        "example.com",
        &[
            HttpsRecord::new(3, "c.example.net"),
            HttpsRecord::new(1, "a.example.net"),
            HttpsRecord::new(2, "b.example.net"),
            HttpsRecord::new(1, "a2.example.net"),
        ],
    );
    assert!(skipped.is_empty(), "{skipped:?}");
    let mut order: Vec<(u16, String)> = services(answer)
        .iter()
        .map(|s| (s.priority, s.target.to_string()))
        .collect();
    // The two of priority 1 come first, in either order (they are shuffled).
    order[..2].sort();
    assert_eq!(
        order,
        [
            (1, "a.example.net".into()),
            (1, "a2.example.net".into()),
            (2, "b.example.net".into()),
            (3, "c.example.net".into()),
        ]
    );
}

/// RFC 9460 §2.4.1: records of one priority are shuffled, each answer afresh; other
/// priorities keep their order. Over 400 answers with three records of priority 1, every one
/// of them comes first at least once (a fixed order would put the same one first every time;
/// a fair shuffle misses one with a chance under 3 in 10^70), and priority 2 is always last.
#[test]
fn records_of_equal_priority_are_shuffled() {
    let records = [
        HttpsRecord::new(2, "z.example.net"),
        HttpsRecord::new(1, "a.example.net"),
        HttpsRecord::new(1, "b.example.net"),
        HttpsRecord::new(1, "c.example.net"),
    ];
    let mut first = std::collections::HashMap::new();
    for _ in 0..400 {
        let (answer, _) = judge("example.com", &records);
        let targets: Vec<String> = services(answer)
            .iter()
            .map(|s| s.target.to_string())
            .collect();
        assert_eq!(targets[3], "z.example.net");
        *first.entry(targets[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(first.len(), 3, "{first:?}");
}

/// RFC 9460 §7.2: `port` overrides the target's port for that record's endpoints only.
#[test]
fn port_overrides_the_targets_port() {
    let (answer, _) = read_answer(
        "_8443._https.example.com",
        &[
            HttpsRecord::new(1, ".").with_port(9443),
            HttpsRecord::new(2, "."),
        ],
        8443,
        &ClientSupport::default(),
    );
    let ports: Vec<u16> = services(answer).iter().map(|s| s.port).collect();
    assert_eq!(ports, [9443, 8443]);
}

/// RFC 9460 §2.5.2: "." in ServiceMode is the owner name; for a port-prefixed query name, the
/// host under the prefix (the prefixed name has no addresses).
#[test]
fn a_dot_target_is_the_owner() {
    for (owner, expected) in [
        ("example.com", "example.com"),
        ("_8443._https.example.com", "example.com"),
        ("_x._https.example.com", "_x._https.example.com"),
        ("Alias.Example.NET.", "alias.example.net"),
    ] {
        let (answer, _) = judge(owner, &[HttpsRecord::new(1, ".")]);
        assert_eq!(&*services(answer)[0].target, expected, "{owner}");
    }
}

/// RFC 9460 §7.1: the client offers what both speak over TCP, in its own order; `http/1.1` is
/// the default unless `no-default-alpn`; a record with nothing left (h3 only) is skipped.
#[test]
fn alpn_decides_whether_a_record_is_usable() {
    let (answer, skipped) = judge(
        "example.com",
        &[
            HttpsRecord::new(1, ".")
                .with_alpn(["h3"])
                .with_no_default_alpn(),
            HttpsRecord::new(2, ".").with_alpn(["h3"]),
            HttpsRecord::new(3, ".").with_alpn(["h3", "h2"]),
            HttpsRecord::new(4, ".").with_no_default_alpn(),
            HttpsRecord::new(5, "."),
        ],
    );
    let usable = services(answer);
    let offered: Vec<(u16, Vec<&str>)> = usable
        .iter()
        .map(|s| {
            let ids = s
                .alpn
                .iter()
                .map(|id| std::str::from_utf8(id).unwrap())
                .collect();
            (s.priority, ids)
        })
        .collect();
    assert_eq!(
        offered,
        [
            (2, vec!["http/1.1"]),
            (3, vec!["h2", "http/1.1"]),
            (5, vec!["http/1.1"]),
        ]
    );
    let reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "alpn h3 offers nothing this client speaks over TCP",
            "no-default-alpn without alpn",
        ]
    );
    assert_eq!(skipped[0].record, "1 . alpn=h3 no-default-alpn");
}

/// RFC 9460 §8: "clients MUST ignore" a record whose mandatory keys they do not support; `ech`
/// counts as supported only where the TLS side can use it.
#[test]
fn unknown_mandatory_keys_skip_the_record() {
    let records = [
        HttpsRecord::from_rdata(&rdata(1, ".", &[(0, &[0x10, 0x92]), (4242, &[])])).unwrap(),
        HttpsRecord::new(2, ".")
            .with_ech(&[1u8, 2][..])
            .with_mandatory([5]),
        HttpsRecord::new(3, ".").with_port(8443).with_mandatory([3]),
    ];
    let (answer, skipped) = judge("example.com", &records);
    let kept: Vec<u16> = services(answer).iter().map(|s| s.priority).collect();
    assert_eq!(kept, [3]);
    let reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "mandatory key key4242 not supported",
            "mandatory key ech not supported",
        ]
    );
    let with_ech = ClientSupport {
        ech: true,
        ..ClientSupport::default()
    };
    let (answer, _) = read_answer("example.com", &records, 443, &with_ech);
    let kept: Vec<u16> = services(answer).iter().map(|s| s.priority).collect();
    assert_eq!(kept, [2, 3]);
}

/// RFC 9460 §2.4.2: an AliasMode record sends the client to its target; ServiceMode records
/// beside it are ignored; "." as its target means no service, so the origin is used.
#[test]
fn alias_mode_answers() {
    let (answer, skipped) = judge(
        "example.com",
        &[
            HttpsRecord::new(1, "svc.example.net"),
            HttpsRecord::new(0, "Pool.Example.NET."),
        ],
    );
    assert_eq!(answer, Answer::Alias("pool.example.net".into()));
    assert_eq!(skipped[0].reason, "ServiceMode beside an AliasMode record");
    let (answer, skipped) = judge("example.com", &[HttpsRecord::new(0, ".")]);
    assert_eq!(answer, Answer::Services(Vec::new()));
    assert_eq!(skipped[0].reason, "AliasMode to \".\": no service");
}

/// Caps: at most 16 records of one answer are read; the rest are reported, not used.
#[test]
fn records_are_capped() {
    let records: Vec<HttpsRecord> = (1..=20).map(|p| HttpsRecord::new(p, ".")).collect();
    let (answer, skipped) = judge("example.com", &records);
    assert_eq!(services(answer).len(), MAX_RECORDS);
    assert_eq!(skipped.len(), 4);
    assert!(skipped
        .iter()
        .all(|s| s.reason == "more than 16 records in the answer"));
    assert_eq!(skipped[0].record, "17 .");
}

/// RFC 9460 §2.4.2: clients bound alias chains and detect loops.
#[test]
fn alias_chains_are_bounded_and_loops_stop() {
    let mut chain = AliasChain::new("Example.com.");
    assert_eq!(chain.follow("a.example.net"), Ok("a.example.net"));
    assert_eq!(chain.follow("b.example.net."), Ok("b.example.net"));
    assert_eq!(chain.current(), "b.example.net");
    assert_eq!(
        chain.follow("EXAMPLE.COM"),
        Err(AliasStop::Loop("example.com".into()))
    );
    assert_eq!(
        chain.follow("a.example.net").unwrap_err().to_string(),
        "AliasMode loop back to a.example.net"
    );

    let mut chain = AliasChain::new("example.com");
    for hop in 1..=MAX_ALIAS_HOPS {
        assert!(
            chain.follow(&format!("hop{hop}.example.net")).is_ok(),
            "hop {hop}"
        );
    }
    assert_eq!(
        chain.follow("one-more.example.net"),
        Err(AliasStop::TooLong)
    );
    assert_eq!(
        AliasStop::TooLong.to_string(),
        "more than 8 AliasMode records"
    );
}

/// Round trip: what the builder makes is what the wire gives.
#[test]
fn built_and_read_records_agree() {
    let wire = rdata(
        1,
        "svc.example.net",
        &[
            (1, &alpn_value(&["h2"])),
            (3, &[0x20, 0xfb]),
            (4, &[192, 0, 2, 1]),
        ],
    );
    let built = HttpsRecord::new(1, "svc.example.net.")
        .with_alpn(["h2"])
        .with_port(8443)
        .with_ipv4_hints([Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(HttpsRecord::from_rdata(&wire).unwrap(), built);
}
