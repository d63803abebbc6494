//! UDP in userspace: each client address gets an association — a socket
//! connected to one endpoint — that relays datagrams both ways and ends
//! after [`IDLE_TIMEOUT`] without traffic, or when its endpoint is removed.
//!
//! Listeners bound to 0.0.0.0 receive redirected datagrams; replies must
//! leave from the address the datagram was redirected to, or conntrack would
//! not translate them back to the ClusterIP. So datagrams are read with
//! `IP_PKTINFO` and replies are sent from the recorded address.

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, sendmsg, setsockopt,
    sockopt,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::{AbortOnDrop, Shared};

/// How long an association lives without traffic.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65535;

/// Per-client entries that expire when idle.
#[derive(Debug)]
pub(crate) struct Associations<T> {
    timeout: Duration,
    entries: HashMap<SocketAddrV4, (T, Instant)>,
}

impl<T> Associations<T> {
    /// An empty table whose entries expire after `timeout` of idleness.
    pub(crate) fn new(timeout: Duration) -> Self {
        Associations {
            timeout,
            entries: HashMap::new(),
        }
    }

    /// The live entry of `client`, marked used at `now`; an expired entry
    /// is removed.
    pub(crate) fn touch(&mut self, client: SocketAddrV4, now: Instant) -> Option<&T> {
        let expired = self
            .entries
            .get(&client)
            .is_some_and(|(_, last)| now.saturating_duration_since(*last) >= self.timeout);
        if expired {
            self.entries.remove(&client);
        }
        let (value, last) = self.entries.get_mut(&client)?;
        *last = now;
        Some(value)
    }

    /// Records `value` for `client`, used at `now`.
    pub(crate) fn insert(&mut self, client: SocketAddrV4, value: T, now: Instant) {
        self.entries.insert(client, (value, now));
    }

    /// Removes the entry of `client` if `matches` it.
    pub(crate) fn remove_if(
        &mut self,
        client: SocketAddrV4,
        matches: impl FnOnce(&T) -> bool,
    ) -> Option<T> {
        if self.entries.get(&client).is_some_and(|(v, _)| matches(v)) {
            return self.entries.remove(&client).map(|(v, _)| v);
        }
        None
    }

    /// Removes and returns the entries idle for the timeout at `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<T> {
        let expired: Vec<SocketAddrV4> = self
            .entries
            .iter()
            .filter(|(_, (_, last))| now.saturating_duration_since(*last) >= self.timeout)
            .map(|(client, _)| *client)
            .collect();
        expired
            .into_iter()
            .filter_map(|client| self.entries.remove(&client).map(|(v, _)| v))
            .collect()
    }

    /// Keeps the entries `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.entries.retain(|_, (value, _)| keep(value));
    }
}

/// One client's relay to its endpoint.
struct Association {
    id: u64,
    endpoint: SocketAddrV4,
    upstream: Arc<UdpSocket>,
    _replies: AbortOnDrop,
}

type Table = Arc<Mutex<Associations<Association>>>;

fn lock(table: &Table) -> std::sync::MutexGuard<'_, Associations<Association>> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// Binds a UDP listener that records each datagram's destination address.
pub(crate) async fn bind(address: SocketAddrV4) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(address).await?;
    setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(io::Error::from)?;
    Ok(socket)
}

/// What woke the listener up.
enum Event {
    Datagram(io::Result<(usize, SocketAddrV4, Option<Ipv4Addr>)>),
    Sweep,
    Endpoints(bool),
}

/// Relays datagrams arriving on `socket` (from [`bind`]) until aborted.
pub(crate) async fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let socket = Arc::new(socket);
    let table: Table = Arc::new(Mutex::new(Associations::new(IDLE_TIMEOUT)));
    let mut endpoints = shared.endpoints.subscribe();
    let mut sweep = tokio::time::interval(IDLE_TIMEOUT / 2);
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut control = nix::cmsg_space!(libc::in_pktinfo);
    let mut next_id = 0u64;
    loop {
        let event = tokio::select! {
            received = receive(&socket, &mut buffer, &mut control) => Event::Datagram(received),
            _ = sweep.tick() => Event::Sweep,
            changed = endpoints.changed() => Event::Endpoints(changed.is_ok()),
        };
        match event {
            Event::Datagram(Ok((len, client, local))) => {
                let relay = Relay {
                    socket: &socket,
                    shared: &shared,
                    table: &table,
                    client,
                    local,
                };
                relay.forward(&buffer[..len], &mut next_id).await;
            }
            Event::Datagram(Err(e)) => tracing::debug!(error = %e, "receive failed"),
            Event::Sweep => drop(lock(&table).expire(Instant::now())),
            Event::Endpoints(false) => return,
            Event::Endpoints(true) => {
                let current = endpoints.borrow_and_update().clone();
                lock(&table).retain(|a| current.contains(&a.endpoint));
            }
        }
    }
}

/// A datagram's way through the listener.
struct Relay<'a> {
    socket: &'a Arc<UdpSocket>,
    shared: &'a Shared,
    table: &'a Table,
    client: SocketAddrV4,
    /// The address the datagram was sent (or redirected) to.
    local: Option<Ipv4Addr>,
}

impl Relay<'_> {
    /// Sends `data` through the client's association, opening one (to the
    /// endpoint the balancer picks) if needed. Without endpoints the
    /// datagram is dropped.
    async fn forward(&self, data: &[u8], next_id: &mut u64) {
        let now = Instant::now();
        let existing = lock(self.table)
            .touch(self.client, now)
            .map(|a| (a.id, a.upstream.clone()));
        let (id, upstream) = match existing {
            Some(found) => found,
            None => {
                *next_id += 1;
                match self.open(*next_id, now).await {
                    Some(upstream) => (*next_id, upstream),
                    None => return,
                }
            }
        };
        if let Err(e) = upstream.send(data).await {
            tracing::debug!(client = %self.client, error = %e, "relay failed");
            lock(self.table).remove_if(self.client, |a| a.id == id);
        }
    }

    async fn open(&self, id: u64, now: Instant) -> Option<Arc<UdpSocket>> {
        let Some(endpoint) = self.shared.pick((*self.client.ip()).into(), now, false) else {
            self.shared.metrics.connection("udp", false);
            return None;
        };
        let upstream = match connect(endpoint).await {
            Ok(upstream) => Arc::new(upstream),
            Err(e) => {
                self.shared.metrics.connection("udp", false);
                tracing::debug!(%endpoint, error = %e, "cannot open an upstream socket");
                return None;
            }
        };
        self.shared.metrics.connection("udp", true);
        let replies = tokio::spawn(replies(
            upstream.clone(),
            self.socket.clone(),
            self.client,
            self.local,
            self.table.clone(),
            id,
        ));
        let association = Association {
            id,
            endpoint,
            upstream: upstream.clone(),
            _replies: AbortOnDrop(replies),
        };
        lock(self.table).insert(self.client, association, now);
        Some(upstream)
    }
}

async fn connect(endpoint: SocketAddrV4) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).await?;
    socket.connect(endpoint).await?;
    Ok(socket)
}

/// Sends the endpoint's replies to `client` from `local` until the upstream
/// socket fails (the association is then dropped) or the task is aborted.
async fn replies(
    upstream: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    client: SocketAddrV4,
    local: Option<Ipv4Addr>,
    table: Table,
    id: u64,
) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        match upstream.recv(&mut buffer).await {
            Ok(len) => {
                lock(&table).touch(client, Instant::now());
                if let Err(e) = send_from(&socket, &buffer[..len], client, local).await {
                    tracing::debug!(%client, error = %e, "reply not delivered");
                }
            }
            Err(e) => {
                tracing::debug!(%client, error = %e, "upstream failed: association closed");
                let ended = lock(&table).remove_if(client, |a| a.id == id);
                drop(ended);
                return;
            }
        }
    }
}

/// Receives a datagram: its length, source, and destination address.
async fn receive(
    socket: &UdpSocket,
    buffer: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, SocketAddrV4, Option<Ipv4Addr>)> {
    let fd = socket.as_raw_fd();
    socket
        .async_io(Interest::READABLE, || {
            let mut iov = [IoSliceMut::new(&mut *buffer)];
            let message =
                recvmsg::<SockaddrIn>(fd, &mut iov, Some(&mut *control), MsgFlags::empty())
                    .map_err(io::Error::from)?;
            let client = message
                .address
                .map(|a| SocketAddrV4::new(a.ip(), a.port()))
                .ok_or_else(|| io::Error::other("datagram without a source address"))?;
            let mut local = None;
            for cmsg in message.cmsgs().map_err(io::Error::from)? {
                if let ControlMessageOwned::Ipv4PacketInfo(info) = cmsg {
                    local = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
                }
            }
            Ok((message.bytes, client, local))
        })
        .await
}

/// Sends `data` to `client` with source address `local` (when known).
async fn send_from(
    socket: &UdpSocket,
    data: &[u8],
    client: SocketAddrV4,
    local: Option<Ipv4Addr>,
) -> io::Result<()> {
    let Some(local) = local else {
        socket.send_to(data, client).await?;
        return Ok(());
    };
    let info = libc::in_pktinfo {
        ipi_ifindex: 0,
        ipi_spec_dst: libc::in_addr {
            s_addr: u32::from(local).to_be(),
        },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    let destination = SockaddrIn::from(client);
    let fd = socket.as_raw_fd();
    socket
        .async_io(Interest::WRITABLE, || {
            sendmsg(
                fd,
                &[IoSlice::new(data)],
                &[ControlMessage::Ipv4PacketInfo(&info)],
                MsgFlags::empty(),
                Some(&destination),
            )
            .map(drop)
            .map_err(io::Error::from)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn associations_expire_when_idle() {
        let start = Instant::now();
        let mut table = Associations::new(Duration::from_secs(30));
        let a: SocketAddrV4 = "10.20.0.9:5000".parse().unwrap();
        let b: SocketAddrV4 = "10.20.0.9:5001".parse().unwrap();
        table.insert(a, 1, start);
        table.insert(b, 2, start);
        // Traffic keeps a alive.
        assert_eq!(table.touch(a, start + Duration::from_secs(20)), Some(&1));
        let expired = table.expire(start + Duration::from_secs(30));
        assert_eq!(expired, [2]);
        assert_eq!(table.touch(b, start + Duration::from_secs(30)), None);
        assert_eq!(table.touch(a, start + Duration::from_secs(49)), Some(&1));
        // Idle too long: gone even before a sweep.
        assert_eq!(table.touch(a, start + Duration::from_secs(80)), None);
        assert!(table.expire(start + Duration::from_secs(1000)).is_empty());
    }

    #[test]
    fn associations_are_removed_selectively() {
        let now = Instant::now();
        let mut table = Associations::new(Duration::from_secs(30));
        let a: SocketAddrV4 = "10.20.0.9:5000".parse().unwrap();
        let b: SocketAddrV4 = "10.20.0.10:5000".parse().unwrap();
        table.insert(a, 1, now);
        table.insert(b, 2, now);
        assert_eq!(table.remove_if(a, |v| *v == 7), None);
        assert_eq!(table.remove_if(a, |v| *v == 1), Some(1));
        table.retain(|v| *v != 2);
        assert_eq!(table.touch(b, now), None);
    }
}
