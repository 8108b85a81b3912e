//! Planning cost: ranking and interleaving 10, 100, 1,000 and 10,000 candidate addresses, mixed
//! IPv4 and IPv6, with no syscalls (every destination routable from a fixed source of its family;
//! see `connect_by_list::__bench::plan_order`).
//!
//! Targets: 1,000 addresses in under 1 ms; growth no worse than n log n. Criterion reports the
//! time per plan and, with `Throughput::Elements`, the rate per address: a rate that stays flat
//! as n grows means linear growth, one that falls by ~log(10) per step n log n, one that falls
//! ten-fold per step quadratic.
//!
//! Run: `cargo bench --bench plan`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use connect_by_list::__bench::plan_order;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// A deterministic mix of `n` distinct addresses: about half IPv6 (global `2001:db8::/32`,
/// ULA `fd00::/8`, a few 6to4 `2002::/16`), half IPv4 (public and private), in shuffled order,
/// so ranking has precedence, label and prefix-length differences to sort by.
fn addresses(n: usize) -> Vec<SocketAddr> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: fixed seed, so every run plans the same list.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|i| {
            let r = next();
            // `i` in the port keeps every pair distinct, so nothing is deduplicated away.
            let port = 1024 + (i % 60_000) as u16;
            let ip = match r % 8 {
                0..=2 => IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    (r >> 16) as u16,
                    (r >> 32) as u16,
                    0,
                    0,
                    0,
                    (r >> 48) as u16,
                )),
                3 => IpAddr::V6(Ipv6Addr::new(
                    0xfd00 | ((r >> 8) as u16 & 0xff),
                    (r >> 16) as u16,
                    0,
                    0,
                    0,
                    0,
                    0,
                    1,
                )),
                4 => IpAddr::V6(Ipv6Addr::new(0x2002, (r >> 16) as u16, 0, 0, 0, 0, 0, 1)),
                5 => IpAddr::V4(Ipv4Addr::new(10, (r >> 8) as u8, (r >> 16) as u8, 1)),
                _ => IpAddr::V4(Ipv4Addr::from((r >> 24) as u32 | 0x0100_0000)),
            };
            SocketAddr::new(ip, port)
        })
        .collect()
}

fn planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for n in [10, 100, 1_000, 10_000] {
        let addrs = addresses(n);
        assert_eq!(plan_order(&addrs).len(), n, "every address is planned");
        group.throughput(Throughput::Elements(n as u64));
        if n >= 10_000 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &addrs, |b, addrs| {
            b.iter(|| plan_order(black_box(addrs)))
        });
    }
    group.finish();
}

criterion_group!(benches, planning);
criterion_main!(benches);
