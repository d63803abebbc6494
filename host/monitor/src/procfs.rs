//! Node totals and network counters from `/proc`: `stat` (CPU), `meminfo`, `net/dev` (of the
//! host, or of a pod's network namespace through one of its processes), `net/route`.

use crate::summary::InterfaceStats;

/// Busy CPU time of all cores from `/proc/stat`'s `cpu` line, in clock ticks: user, nice,
/// system, irq, softirq and steal (idle and iowait are not busy; guest time is already in
/// user).
pub(crate) fn busy_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    (fields.len() >= 4).then(|| field(0) + field(1) + field(2) + field(5) + field(6) + field(7))
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
pub(crate) fn boot_time(proc_stat: &str) -> Option<i64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// What `/proc/meminfo` says, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MemInfo {
    /// `MemTotal`.
    pub total: u64,
    /// `MemFree`.
    pub free: u64,
    /// `Inactive(file)`.
    pub inactive_file: u64,
    /// `AnonPages`.
    pub anon: u64,
}

impl MemInfo {
    /// Parse `/proc/meminfo` (values in kB).
    pub fn parse(text: &str) -> MemInfo {
        let mut info = MemInfo::default();
        for line in text.lines() {
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            let value = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024;
            match key {
                "MemTotal" => info.total = value,
                "MemFree" => info.free = value,
                "Inactive(file)" => info.inactive_file = value,
                "AnonPages" => info.anon = value,
                _ => {}
            }
        }
        info
    }

    /// Memory in use, page cache included.
    pub fn usage(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }

    /// Usage minus inactive file pages, as the kubelet computes it for the root cgroup.
    pub fn working_set(&self) -> u64 {
        self.usage().saturating_sub(self.inactive_file)
    }
}

/// Every interface but loopback in a `net/dev` text, into `out` (cleared first).
pub(crate) fn interfaces(net_dev: &str, out: &mut Vec<InterfaceStats>) {
    out.clear();
    for line in net_dev.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs …
        let mut values = counters.split_whitespace().map(|v| v.parse().unwrap_or(0));
        let mut nth = |n: usize| values.nth(n).unwrap_or(0);
        let rx_bytes = nth(0);
        let rx_errors = nth(1);
        let tx_bytes = nth(5);
        let tx_errors = nth(1);
        out.push(InterfaceStats {
            name: name.to_string(),
            rx_bytes,
            rx_errors,
            tx_bytes,
            tx_errors,
        });
    }
}

/// The interface of the default route in a `/proc/net/route` text.
pub(crate) fn default_interface(net_route: &str) -> Option<&str> {
    net_route.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let (iface, destination) = (fields.next()?, fields.next()?);
        (destination == "00000000").then_some(iface)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n\
        intr 12345\nbtime 1700000000\nprocesses 42\n";
    const MEMINFO: &str = "MemTotal:       24000000 kB\nMemFree:        10000000 kB\n\
        MemAvailable:   20000000 kB\nInactive(file):  3000000 kB\nAnonPages:       2000000 kB\n";
    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
        face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
        lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  \
        eth0:    2000      20    1    0    0     0          0         0     3000      30    2    0    0     0       0          0\n";
    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
        docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\n\
        ens3\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\n";

    #[test]
    fn cpu_busy_ticks_leave_out_idle_and_iowait() {
        assert_eq!(busy_ticks(STAT), Some(100 + 5 + 50 + 3 + 2 + 1));
        assert_eq!(busy_ticks("intr 1\n"), None);
        assert_eq!(boot_time(STAT), Some(1_700_000_000));
    }

    #[test]
    fn meminfo_gives_usage_and_working_set() {
        let info = MemInfo::parse(MEMINFO);
        assert_eq!(info.total, 24_000_000 * 1024);
        assert_eq!(info.usage(), 14_000_000 * 1024);
        assert_eq!(info.working_set(), 11_000_000 * 1024);
        assert_eq!(info.anon, 2_000_000 * 1024);
    }

    #[test]
    fn net_dev_skips_loopback() {
        let mut out = Vec::new();
        interfaces(NET_DEV, &mut out);
        assert_eq!(
            out,
            vec![InterfaceStats {
                name: "eth0".into(),
                rx_bytes: 2000,
                rx_errors: 1,
                tx_bytes: 3000,
                tx_errors: 2,
            }]
        );
    }

    #[test]
    fn default_route_interface() {
        assert_eq!(default_interface(ROUTE), Some("ens3"));
        assert_eq!(default_interface("Iface\tDestination\n"), None);
    }
}
