//! Fake addresses, never contacted: node InternalIPs from `10.250.0.0/16`, one pod block
//! per node from `100.64.0.0/10` (the shared address space), pod IPs unique within a block.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Where node InternalIPs come from: `10.250.0.0/16`.
const NODE_BASE: u32 = u32::from_be_bytes([10, 250, 0, 0]);

/// Where pod blocks come from.
pub const POD_RANGE: &str = "100.64.0.0/10";
const POD_BASE: u32 = u32::from_be_bytes([100, 64, 0, 0]);
/// Addresses in [`POD_RANGE`].
pub const POD_SPACE: u64 = 1 << 22;

/// The InternalIP of node `index` (0-based): `10.250.0.1`, `10.250.0.2`, …
pub fn node_ip(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(NODE_BASE + index + 1)
}

/// Addresses in each node's pod block: room for `pods` plus network and broadcast,
/// rounded up to a power of two, at least a `/24`.
pub fn block_size(pods: u32) -> u32 {
    (pods + 2).next_power_of_two().max(256)
}

/// Node `index`'s pod block as (first address, size).
pub fn pod_block(index: u32, pods: u32) -> (Ipv4Addr, u32) {
    let size = block_size(pods);
    (Ipv4Addr::from(POD_BASE + index * size), size)
}

/// A block in CIDR notation.
pub fn cidr((base, size): (Ipv4Addr, u32)) -> String {
    format!("{base}/{}", 32 - size.trailing_zeros())
}

/// Pod IPs of one node's block, by pod uid.
#[derive(Debug)]
pub struct Pool {
    base: u32,
    size: u32,
    /// Offset in the block → pod uid.
    used: HashMap<u32, String>,
    by_uid: HashMap<String, u32>,
    /// Where the next search for a free address starts (addresses are reused last).
    next: u32,
}

impl Pool {
    /// An empty pool over `block`.
    pub fn new((base, size): (Ipv4Addr, u32)) -> Pool {
        Pool {
            base: u32::from(base),
            size,
            used: HashMap::new(),
            by_uid: HashMap::new(),
            next: 1,
        }
    }

    fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let off = u32::from(ip).checked_sub(self.base)?;
        (off >= 1 && off < self.size - 1).then_some(off)
    }

    /// The address of pod `uid`, if it has one.
    pub fn get(&self, uid: &str) -> Option<Ipv4Addr> {
        self.by_uid
            .get(uid)
            .map(|off| Ipv4Addr::from(self.base + off))
    }

    /// Record that pod `uid` holds `ip` (seen in its status). False when `ip` is outside the
    /// block or held by another pod: the pod then needs a new address.
    pub fn claim(&mut self, uid: &str, ip: Ipv4Addr) -> bool {
        let Some(off) = self.offset(ip) else {
            return false;
        };
        match self.used.get(&off) {
            Some(holder) => holder == uid,
            None => {
                self.release(uid);
                self.used.insert(off, uid.to_string());
                self.by_uid.insert(uid.to_string(), off);
                true
            }
        }
    }

    /// The address of pod `uid`, allocating a free one; None when the block is full.
    pub fn allocate(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.get(uid) {
            return Some(ip);
        }
        let usable = self.size - 2;
        for i in 0..usable {
            let off = 1 + (self.next - 1 + i) % usable;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.used.entry(off) {
                slot.insert(uid.to_string());
                self.by_uid.insert(uid.to_string(), off);
                self.next = 1 + off % usable;
                return Some(Ipv4Addr::from(self.base + off));
            }
        }
        None
    }

    /// Free pod `uid`'s address.
    pub fn release(&mut self, uid: &str) {
        if let Some(off) = self.by_uid.remove(uid) {
            self.used.remove(&off);
        }
    }

    /// Keep only the pods in `live`.
    pub fn retain(&mut self, live: impl Fn(&str) -> bool) {
        self.by_uid.retain(|uid, _| live(uid));
        self.used.retain(|_, uid| live(uid));
    }

    /// Addresses in use.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_and_blocks() {
        assert_eq!(node_ip(0), Ipv4Addr::new(10, 250, 0, 1));
        assert_eq!(node_ip(299), Ipv4Addr::new(10, 250, 1, 44));
        assert_eq!(block_size(110), 256);
        assert_eq!(block_size(254), 256);
        assert_eq!(block_size(255), 512);
        assert_eq!(cidr(pod_block(0, 110)), "100.64.0.0/24");
        assert_eq!(cidr(pod_block(3, 110)), "100.64.3.0/24");
        assert_eq!(cidr(pod_block(1, 500)), "100.64.2.0/23");
        assert_eq!(
            cidr(pod_block(crate::MAX_NODES - 1, 110)),
            "100.127.255.0/24"
        );
    }

    #[test]
    fn pod_ips_are_unique_and_reused() {
        let mut pool = Pool::new(pod_block(1, 110));
        let a = pool.allocate("a").unwrap();
        assert_eq!(a, Ipv4Addr::new(100, 64, 1, 1));
        assert_eq!(pool.allocate("a"), Some(a), "idempotent per pod");
        let b = pool.allocate("b").unwrap();
        assert_eq!(b, Ipv4Addr::new(100, 64, 1, 2));
        // Another pod cannot claim a held address; the holder can.
        assert!(!pool.claim("c", a));
        assert!(pool.claim("a", a));
        assert!(!pool.claim("c", Ipv4Addr::new(100, 64, 2, 9)), "outside");
        assert!(
            !pool.claim("c", Ipv4Addr::new(100, 64, 1, 255)),
            "broadcast"
        );
        assert!(pool.claim("c", Ipv4Addr::new(100, 64, 1, 3)));
        // Fill the block: 254 usable addresses.
        for i in 0..251 {
            assert!(pool.allocate(&format!("p{i}")).is_some());
        }
        assert_eq!(pool.len(), 254);
        assert_eq!(pool.allocate("full"), None);
        pool.release("b");
        assert_eq!(pool.allocate("d"), Some(b));
        pool.retain(|uid| uid == "a");
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.get("a"), Some(a));
        assert_eq!(pool.get("d"), None);
    }
}
