//! Allocation of service ClusterIPs and NodePorts. State lives in memory and is rebuilt from the
//! stored services at start; the stored services are the source of truth.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::sync::Mutex;

use ipnet::Ipv4Net;

/// Why an address or port could not be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    /// The requested value is taken.
    #[error("provided {what} is already allocated")]
    Taken {
        /// "IP" or "port".
        what: &'static str,
    },
    /// The requested value is outside the configured range.
    #[error("provided {what} is not in the valid range. The range of valid {what}s is {range}")]
    OutOfRange {
        /// "IP" or "port".
        what: &'static str,
        /// The configured range.
        range: String,
    },
    /// Every value is taken.
    #[error("range is full")]
    Full,
}

#[derive(Debug)]
struct State {
    used: BTreeSet<u32>,
    next: u32,
}

/// Hands out values from a range, never the same one twice until released.
#[derive(Debug)]
pub struct Allocator {
    what: &'static str,
    range: RangeInclusive<u32>,
    display: String,
    state: Mutex<State>,
}

impl Allocator {
    fn new(what: &'static str, range: RangeInclusive<u32>, display: String) -> Self {
        let next = *range.start();
        Allocator {
            what,
            range,
            display,
            state: Mutex::new(State {
                used: BTreeSet::new(),
                next,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reserve(&self, value: u32) -> Result<(), AllocError> {
        if !self.range.contains(&value) {
            return Err(AllocError::OutOfRange {
                what: self.what,
                range: self.display.clone(),
            });
        }
        if self.lock().used.insert(value) {
            Ok(())
        } else {
            Err(AllocError::Taken { what: self.what })
        }
    }

    fn allocate(&self) -> Result<u32, AllocError> {
        let mut state = self.lock();
        let (start, end) = (*self.range.start(), *self.range.end());
        let size = u64::from(end - start) + 1;
        if state.used.len() as u64 >= size {
            return Err(AllocError::Full);
        }
        let mut candidate = state.next;
        loop {
            if !state.used.contains(&candidate) {
                state.used.insert(candidate);
                state.next = if candidate == end {
                    start
                } else {
                    candidate + 1
                };
                return Ok(candidate);
            }
            candidate = if candidate == end {
                start
            } else {
                candidate + 1
            };
        }
    }

    fn release(&self, value: u32) {
        self.lock().used.remove(&value);
    }
}

/// Service ClusterIP allocator over a CIDR (network, the first address and broadcast excluded;
/// the first usable address is kept for the `kubernetes` service as in Kubernetes).
#[derive(Debug)]
pub struct IpAllocator(Allocator);

impl IpAllocator {
    /// An allocator over `cidr`.
    pub fn new(cidr: Ipv4Net) -> Self {
        let first = u32::from(cidr.network()) + 1;
        let last = u32::from(cidr.broadcast()).saturating_sub(1).max(first);
        IpAllocator(Allocator::new("IP", first..=last, cidr.to_string()))
    }

    /// Reserve a specific address.
    pub fn reserve(&self, ip: Ipv4Addr) -> Result<(), AllocError> {
        self.0.reserve(u32::from(ip))
    }

    /// The next free address.
    pub fn allocate(&self) -> Result<Ipv4Addr, AllocError> {
        self.0.allocate().map(Ipv4Addr::from)
    }

    /// Give an address back.
    pub fn release(&self, ip: Ipv4Addr) {
        self.0.release(u32::from(ip))
    }
}

/// NodePort allocator.
#[derive(Debug)]
pub struct PortAllocator(Allocator);

impl PortAllocator {
    /// An allocator over `range`.
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let display = format!("{}-{}", range.start(), range.end());
        PortAllocator(Allocator::new(
            "port",
            u32::from(*range.start())..=u32::from(*range.end()),
            display,
        ))
    }

    /// Reserve a specific port.
    pub fn reserve(&self, port: u16) -> Result<(), AllocError> {
        self.0.reserve(u32::from(port))
    }

    /// The next free port.
    pub fn allocate(&self) -> Result<u16, AllocError> {
        self.0.allocate().map(|p| p as u16)
    }

    /// Give a port back.
    pub fn release(&self, port: u16) {
        self.0.release(u32::from(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_are_unique_and_reusable() {
        let alloc = IpAllocator::new("10.254.0.0/30".parse().unwrap());
        let a = alloc.allocate().unwrap();
        let b = alloc.allocate().unwrap();
        assert_ne!(a, b);
        assert_eq!(alloc.allocate(), Err(AllocError::Full));
        alloc.release(a);
        assert_eq!(alloc.allocate().unwrap(), a);
        assert_eq!(alloc.reserve(b), Err(AllocError::Taken { what: "IP" }));
        assert!(matches!(
            alloc.reserve("10.0.0.1".parse().unwrap()),
            Err(AllocError::OutOfRange { .. })
        ));
    }

    #[test]
    fn ports_stay_in_range() {
        let alloc = PortAllocator::new(30000..=30002);
        let got: BTreeSet<u16> = (0..3).map(|_| alloc.allocate().unwrap()).collect();
        assert_eq!(got, BTreeSet::from([30000, 30001, 30002]));
        assert_eq!(alloc.allocate(), Err(AllocError::Full));
        assert!(matches!(
            alloc.reserve(80),
            Err(AllocError::OutOfRange { .. })
        ));
    }
}
