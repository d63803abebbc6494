//! Endpoint choice of the userspace proxy: round-robin, with optional
//! ClientIP session affinity (a client's address stays with the endpoint it
//! got until it has been idle for the affinity timeout).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// The endpoints of one service port and the state of their rotation.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    endpoints: Vec<SocketAddrV4>,
    next: usize,
    /// The affinity timeout, when affinity is on.
    affinity: Option<Duration>,
    /// Client address → (endpoint, last use).
    clients: HashMap<IpAddr, (SocketAddrV4, Instant)>,
}

impl Balancer {
    /// Sets the endpoints and the affinity; forgets the affinities that
    /// expired or point at removed endpoints.
    pub(crate) fn update(
        &mut self,
        endpoints: &[SocketAddrV4],
        affinity: Option<Duration>,
        now: Instant,
    ) {
        if self.endpoints != endpoints {
            self.endpoints = endpoints.to_vec();
            self.next = 0;
        }
        self.affinity = affinity;
        match affinity {
            None => self.clients.clear(),
            Some(timeout) => self.clients.retain(|_, (endpoint, last)| {
                endpoints.contains(endpoint) && now.saturating_duration_since(*last) < timeout
            }),
        }
    }

    /// The endpoint for a connection from `client`: its pinned endpoint
    /// while affinity holds (unless `reset`, after that endpoint failed),
    /// else the next in turn (then pinned). `None` without endpoints.
    pub(crate) fn pick(
        &mut self,
        client: IpAddr,
        now: Instant,
        reset: bool,
    ) -> Option<SocketAddrV4> {
        if self.endpoints.is_empty() {
            return None;
        }
        if let Some(timeout) = self.affinity
            && !reset
            && let Some((endpoint, last)) = self.clients.get_mut(&client)
            && now.saturating_duration_since(*last) < timeout
            && self.endpoints.contains(endpoint)
        {
            *last = now;
            return Some(*endpoint);
        }
        let index = self.next % self.endpoints.len();
        let endpoint = self.endpoints[index];
        self.next = (index + 1) % self.endpoints.len();
        if self.affinity.is_some() {
            self.clients.insert(client, (endpoint, now));
        }
        Some(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(list: &[&str]) -> Vec<SocketAddrV4> {
        list.iter().map(|e| e.parse().unwrap()).collect()
    }

    #[test]
    fn round_robin_over_endpoints() {
        let now = Instant::now();
        let mut balancer = Balancer::default();
        let client: IpAddr = "10.20.0.9".parse().unwrap();
        assert_eq!(balancer.pick(client, now, false), None);
        let list = endpoints(&["10.20.0.2:80", "10.20.0.3:80", "10.20.1.2:80"]);
        balancer.update(&list, None, now);
        let picks: Vec<_> = (0..6)
            .map(|_| balancer.pick(client, now, false).unwrap())
            .collect();
        assert_eq!(
            picks,
            [list[0], list[1], list[2], list[0], list[1], list[2]]
        );
        balancer.update(&list[1..], None, now);
        assert_eq!(balancer.pick(client, now, false), Some(list[1]));
        assert_eq!(balancer.pick(client, now, false), Some(list[2]));
    }

    #[test]
    fn client_ip_affinity_pins_until_idle() {
        let start = Instant::now();
        let timeout = Duration::from_secs(10);
        let list = endpoints(&["10.20.0.2:80", "10.20.0.3:80"]);
        let mut balancer = Balancer::default();
        balancer.update(&list, Some(timeout), start);
        let a: IpAddr = "10.20.0.9".parse().unwrap();
        let b: IpAddr = "10.20.0.10".parse().unwrap();
        assert_eq!(balancer.pick(a, start, false), Some(list[0]));
        assert_eq!(balancer.pick(b, start, false), Some(list[1]));
        for seconds in [5, 10, 15] {
            let now = start + Duration::from_secs(seconds);
            assert_eq!(balancer.pick(a, now, false), Some(list[0]), "{seconds}s");
        }
        // b was idle for 20 s: the rotation decides again.
        assert_eq!(
            balancer.pick(b, start + Duration::from_secs(20), false),
            Some(list[0])
        );
        // A failed endpoint: reset moves the client on and pins it there.
        let later = start + Duration::from_secs(21);
        assert_eq!(balancer.pick(a, later, true), Some(list[1]));
        assert_eq!(balancer.pick(a, later, false), Some(list[1]));
        // The pinned endpoint goes away: the client is placed again.
        balancer.update(&list[..1], Some(timeout), later);
        assert_eq!(balancer.pick(a, later, false), Some(list[0]));
        balancer.update(&list, None, later);
        assert!(balancer.clients.is_empty());
    }
}
