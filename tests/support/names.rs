//! A resolver for made-up names, so that no test asks the system's resolver (whose answers, and
//! whose nameserver, are not the test's to choose).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use connect_by_list::{Family, Resolve, Resolving};

/// Answers each name from a table, each family with the table's addresses of that family; an
/// unknown name has no address. Counts the questions per family (`asked`, indexed by `Family`).
#[derive(Debug, Default)]
pub struct Names {
    names: HashMap<String, Vec<IpAddr>>,
    pub asked: Arc<[AtomicUsize; 2]>,
}

impl Names {
    /// One name and its addresses, in the resolver's order.
    pub fn one(name: &str, ips: &[IpAddr]) -> Names {
        Names {
            names: HashMap::from([(name.to_owned(), ips.to_vec())]),
            asked: Arc::default(),
        }
    }

    /// Another name and its addresses.
    pub fn add(&mut self, name: &str, ips: &[IpAddr]) {
        self.names.insert(name.to_owned(), ips.to_vec());
    }
}

impl Resolve for Names {
    fn resolve(&self, name: &str, family: Family) -> Resolving {
        self.asked[family as usize].fetch_add(1, Ordering::SeqCst);
        let answer: Vec<IpAddr> = self
            .names
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|ip| Family::of(*ip) == family)
            .collect();
        Box::pin(async move { Ok(answer) })
    }
}
