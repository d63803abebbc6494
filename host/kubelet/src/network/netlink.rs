//! The netlink side of a network plan: links, addresses, routes and VXLAN
//! forwarding entries, in the node's network namespace or, through a thread
//! that entered it, in a pod's.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::pin::Pin;

use futures::{StreamExt, TryStreamExt};
use hortator_plugin_runtime::networking::{Namespace, NetworkOp};
use ipnet::Ipv4Net;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::RouteScope;
use rtnetlink::packet_route::{AddressFamily, address::AddressAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};
use tokio::sync::{mpsc, oneshot};

/// A netlink connection in the network namespace of the thread that opened
/// it; its background task stops when this is dropped.
pub(super) struct Netlink {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Netlink {
    /// Opens a connection (inside a Tokio runtime).
    pub(super) fn connect() -> Result<Self, String> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("open a netlink socket: {e}"))?;
        Ok(Netlink {
            handle,
            task: tokio::spawn(connection),
        })
    }

    pub(super) fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Job = Box<dyn FnOnce(Handle) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A thread inside a pod's network namespace with a netlink socket of its
/// own there. The thread never leaves the namespace; it ends when this is
/// dropped.
pub(super) struct PodNamespace {
    jobs: mpsc::UnboundedSender<Job>,
}

impl PodNamespace {
    /// Starts the thread in the namespace `netns` (an open `/proc/PID/ns/net`).
    pub(super) async fn enter(netns: &File) -> Result<Self, String> {
        let netns = netns
            .try_clone()
            .map_err(|e| format!("duplicate the namespace handle: {e}"))?;
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let (ready, started) = oneshot::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("pod-netns".into())
            .spawn(move || {
                let runtime = nix::sched::setns(&netns, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("enter the namespace: {}", e.desc()))
                    .and_then(|()| {
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .map_err(|e| format!("start a runtime: {e}"))
                    });
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let netlink = match Netlink::connect() {
                        Ok(netlink) => netlink,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    while let Some(job) = queue.recv().await {
                        job(netlink.handle()).await;
                    }
                });
            })
            .map_err(|e| format!("start a thread: {e}"))?;
        started
            .await
            .map_err(|_| "the namespace thread stopped".to_string())??;
        Ok(PodNamespace { jobs })
    }

    /// Runs `job` in the namespace with the thread's netlink handle.
    pub(super) async fn run<T, F, Fut>(&self, job: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(Handle) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, String>> + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |handle| {
            Box::pin(async move {
                let _ = reply.send(job(handle).await);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| "the namespace thread stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the namespace thread stopped".to_string())?
    }
}

/// What applying an operation left behind that the caller must remember.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// Nothing to remember.
    None,
    /// A link was created in the node's namespace.
    CreatedLink(String),
    /// Pod traffic crosses this bridge (it needs forwarding rules).
    Bridge(String),
    /// Traffic from `source` to outside `except` must be masqueraded.
    Masquerade(Ipv4Net, Ipv4Net),
}

/// Applies plan operations: node-namespace ones through `host`, pod ones
/// through `pod` (skipped when `None`: the sandbox and its namespace are gone).
pub(super) struct Applier<'a> {
    pub(super) host: Handle,
    pub(super) pod: Option<&'a PodNamespace>,
    /// The pod's namespace, where `create-veth` puts the pod end.
    pub(super) netns: Option<&'a File>,
}

impl Applier<'_> {
    /// Applies one operation; the error is the reason only (see [`describe`]).
    pub(super) async fn apply(&self, op: &NetworkOp) -> Result<Effect, String> {
        match op {
            NetworkOp::EnsureBridge(b) => {
                ensure_bridge(&self.host, &b.name, net(&b.address)?, b.mtu).await?;
                Ok(Effect::Bridge(b.name.clone()))
            }
            NetworkOp::CreateVeth(v) => {
                let netns = self.netns.ok_or("the pod's network namespace is gone")?;
                create_veth(&self.host, &v.host_name, &v.pod_name, v.mtu, netns).await?;
                Ok(Effect::CreatedLink(v.host_name.clone()))
            }
            NetworkOp::AttachToBridge(a) => {
                attach(&self.host, &a.device, &a.bridge).await?;
                Ok(Effect::Bridge(a.bridge.clone()))
            }
            NetworkOp::AddAddress(a) => {
                let (device, cidr) = (a.device.clone(), net(&a.cidr)?);
                self.in_ns(a.ns, move |h| async move {
                    add_address(&h, &device, cidr).await
                })
                .await
            }
            NetworkOp::SetUp(l) => {
                let device = l.device.clone();
                self.in_ns(l.ns, move |h| async move { set_up(&h, &device).await })
                    .await
            }
            NetworkOp::AddRoute(r) => {
                let destination = net(&r.route.destination)?;
                let gateway = match r.route.gateway.as_str() {
                    "" => None,
                    gateway => Some(addr(gateway)?),
                };
                let device = (!r.device.is_empty()).then(|| r.device.clone());
                self.in_ns(r.ns, move |h| async move {
                    add_route(&h, destination, gateway, device.as_deref()).await
                })
                .await
            }
            NetworkOp::EnsureVxlan(v) => {
                ensure_vxlan(&self.host, &v.name, v.vni, addr(&v.local)?, v.port, v.mtu).await?;
                Ok(Effect::None)
            }
            NetworkOp::AddVxlanPeer(p) => {
                add_vxlan_peer(
                    &self.host,
                    &p.device,
                    net(&p.destination)?,
                    addr(&p.remote)?,
                )
                .await?;
                Ok(Effect::None)
            }
            NetworkOp::EnsureMasquerade(m) => Ok(Effect::Masquerade(
                net(&m.source)?.trunc(),
                net(&m.except)?.trunc(),
            )),
            NetworkOp::DeleteLink(l) => {
                let device = l.device.clone();
                self.in_ns(l.ns, move |h| async move { delete_link(&h, &device).await })
                    .await
            }
        }
    }

    async fn in_ns<F, Fut>(&self, ns: Namespace, op: F) -> Result<Effect, String>
    where
        F: FnOnce(Handle) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + 'static,
    {
        match (ns, self.pod) {
            (Namespace::Host, _) => op(self.host.clone()).await.map(|()| Effect::None),
            (Namespace::Pod, Some(pod)) => pod.run(op).await.map(|()| Effect::None),
            (Namespace::Pod, None) => Ok(Effect::None),
        }
    }
}

/// An operation in words, for error messages.
pub(super) fn describe(op: &NetworkOp) -> String {
    let ns = |ns: Namespace| match ns {
        Namespace::Host => "the node namespace",
        Namespace::Pod => "the pod namespace",
    };
    match op {
        NetworkOp::EnsureBridge(b) => format!("ensure bridge {} with {}", b.name, b.address),
        NetworkOp::CreateVeth(v) => format!("create veth pair {}/{}", v.host_name, v.pod_name),
        NetworkOp::AttachToBridge(a) => format!("attach {} to bridge {}", a.device, a.bridge),
        NetworkOp::AddAddress(a) => {
            format!("add address {} to {} in {}", a.cidr, a.device, ns(a.ns))
        }
        NetworkOp::SetUp(l) => format!("set {} up in {}", l.device, ns(l.ns)),
        NetworkOp::AddRoute(r) => {
            let mut text = format!("add route {}", r.route.destination);
            if !r.route.gateway.is_empty() {
                text += &format!(" via {}", r.route.gateway);
            }
            if !r.device.is_empty() {
                text += &format!(" dev {}", r.device);
            }
            format!("{text} in {}", ns(r.ns))
        }
        NetworkOp::EnsureVxlan(v) => format!("ensure VXLAN device {} (VNI {})", v.name, v.vni),
        NetworkOp::AddVxlanPeer(p) => {
            format!(
                "add VXLAN peer {} for {} on {}",
                p.remote, p.destination, p.device
            )
        }
        NetworkOp::EnsureMasquerade(m) => {
            format!("masquerade {} except to {}", m.source, m.except)
        }
        NetworkOp::DeleteLink(l) => format!("delete link {} in {}", l.device, ns(l.ns)),
    }
}

fn net(text: &str) -> Result<Ipv4Net, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 CIDR"))
}

fn addr(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 address"))
}

fn errno(error: &rtnetlink::Error) -> Option<Errno> {
    match error {
        rtnetlink::Error::NetlinkError(message) => {
            message.code.map(|code| Errno::from_raw(-code.get()))
        }
        _ => None,
    }
}

/// A netlink failure in words: the errno's description when there is one.
fn reason(error: rtnetlink::Error) -> String {
    match errno(&error) {
        Some(errno) => errno.desc().to_string(),
        None => error.to_string(),
    }
}

/// The link named `name` with its kind, if there is one.
async fn find_link(handle: &Handle, name: &str) -> Result<Option<(u32, Option<InfoKind>)>, String> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => {
            let kind = link
                .attributes
                .iter()
                .find_map(|attribute| match attribute {
                    LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
                        LinkInfo::Kind(kind) => Some(kind.clone()),
                        _ => None,
                    }),
                    _ => None,
                });
            Ok(Some((link.header.index, kind)))
        }
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(Errno::ENODEV) => Ok(None),
        Err(e) => Err(reason(e)),
    }
}

async fn index(handle: &Handle, name: &str) -> Result<u32, String> {
    find_link(handle, name)
        .await?
        .map(|(index, _)| index)
        .ok_or_else(|| format!("no link named {name}"))
}

/// Whether the link `name` exists.
pub(super) async fn link_exists(handle: &Handle, name: &str) -> Result<bool, String> {
    Ok(find_link(handle, name).await?.is_some())
}

/// Creates the link described by `message` unless a link `name` of `kind`
/// exists; returns its index.
async fn ensure_link(
    handle: &Handle,
    name: &str,
    kind: InfoKind,
    message: rtnetlink::packet_route::link::LinkMessage,
) -> Result<u32, String> {
    if find_link(handle, name).await?.is_none() {
        match handle.link().add(message).execute().await {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(Errno::EEXIST) => {}
            Err(e) => return Err(reason(e)),
        }
    }
    match find_link(handle, name).await? {
        Some((index, Some(found))) if found == kind => Ok(index),
        Some(_) => Err(format!("{name} exists and is not a {kind} device")),
        None => Err(format!("{name} disappeared after it was created")),
    }
}

async fn ensure_bridge(
    handle: &Handle,
    name: &str,
    address: Ipv4Net,
    mtu: u32,
) -> Result<(), String> {
    let message = LinkBridge::new(name).mtu(mtu).build();
    let index = ensure_link(handle, name, InfoKind::Bridge, message).await?;
    let present = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_any(|found| {
            let matches = found.header.prefix_len == address.prefix_len()
                && found.attributes.iter().any(|attribute| {
                    matches!(attribute, AddressAttribute::Address(IpAddr::V4(a)) if *a == address.addr())
                });
            std::future::ready(matches)
        })
        .await
        .map_err(reason)?;
    if !present {
        match handle
            .address()
            .add(index, address.addr().into(), address.prefix_len())
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(Errno::EEXIST) => {}
            Err(e) => return Err(reason(e)),
        }
    }
    Ok(())
}

/// Creates a veth pair whose `pod` end is created directly in `netns`, so
/// that its name cannot clash with the node's interfaces. A leftover host end
/// from an interrupted attempt (same name: names derive from the pod) is
/// replaced.
async fn create_veth(
    handle: &Handle,
    host: &str,
    pod: &str,
    mtu: u32,
    netns: &File,
) -> Result<(), String> {
    let message = || {
        let peer = LinkUnspec::new_with_name(pod)
            .mtu(mtu)
            .setns_by_fd(netns.as_raw_fd())
            .build();
        LinkVeth::new(host, pod)
            .mtu(mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build()
    };
    match handle.link().add(message()).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(Errno::EEXIST) && link_exists(handle, host).await? => {
            delete_link(handle, host).await?;
            handle.link().add(message()).execute().await.map_err(reason)
        }
        Err(e) => Err(reason(e)),
    }
}

async fn attach(handle: &Handle, device: &str, bridge: &str) -> Result<(), String> {
    let (device, bridge) = (index(handle, device).await?, index(handle, bridge).await?);
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(device)
                .controller(bridge)
                .build(),
        )
        .execute()
        .await
        .map_err(reason)
}

/// Sets the link `device` up.
pub(super) async fn set_up(handle: &Handle, device: &str) -> Result<(), String> {
    let index = index(handle, device).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(reason)
}

async fn add_address(handle: &Handle, device: &str, cidr: Ipv4Net) -> Result<(), String> {
    let index = index(handle, device).await?;
    handle
        .address()
        .add(index, cidr.addr().into(), cidr.prefix_len())
        .execute()
        .await
        .map_err(reason)
}

async fn add_route(
    handle: &Handle,
    destination: Ipv4Net,
    gateway: Option<Ipv4Addr>,
    device: Option<&str>,
) -> Result<(), String> {
    let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(destination.network(), destination.prefix_len());
    match gateway {
        Some(gateway) => route = route.gateway(gateway),
        None => route = route.scope(RouteScope::Link),
    }
    if let Some(device) = device {
        route = route.output_interface(index(handle, device).await?);
    }
    handle
        .route()
        .add(route.build())
        .execute()
        .await
        .map_err(reason)
}

/// Deletes the link `device`; a missing link is not an error.
pub(super) async fn delete_link(handle: &Handle, device: &str) -> Result<(), String> {
    let Some((index, _)) = find_link(handle, device).await? else {
        return Ok(());
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(Errno::ENODEV) => Ok(()),
        Err(e) => Err(reason(e)),
    }
}

/// Ensures a VXLAN device and turns on proxy ARP on it, so that this node
/// answers for the pod addresses it routes elsewhere and peers reach them
/// without learning pod MACs.
async fn ensure_vxlan(
    handle: &Handle,
    name: &str,
    vni: u32,
    local: Ipv4Addr,
    port: u16,
    mtu: u32,
) -> Result<(), String> {
    let message = LinkVxlan::new(name, vni)
        .local(local)
        .port(port)
        .mtu(mtu)
        .up()
        .build();
    ensure_link(handle, name, InfoKind::Vxlan, message).await?;
    let path = format!("/proc/sys/net/ipv4/conf/{name}/proxy_arp");
    std::fs::write(&path, "1").map_err(|e| format!("write {path}: {e}"))
}

/// Floods the device's unknown destinations to `remote` too (an all-zero
/// forwarding entry, appended) and routes `destination` through the device.
async fn add_vxlan_peer(
    handle: &Handle,
    device: &str,
    destination: Ipv4Net,
    remote: Ipv4Addr,
) -> Result<(), String> {
    let index = index(handle, device).await?;
    let mut entry = NeighbourMessage::default();
    entry.header.family = AddressFamily::Bridge;
    entry.header.ifindex = index;
    entry.header.state = NeighbourState::Permanent;
    entry.header.flags = NeighbourFlags::Own;
    entry.attributes = vec![
        NeighbourAttribute::LinkLayerAddress(vec![0; 6]),
        NeighbourAttribute::Destination(NeighbourAddress::Inet(remote)),
    ];
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(entry));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
    let mut responses = handle.clone().request(request).map_err(reason)?;
    while let Some(response) = responses.next().await {
        if let NetlinkPayload::Error(error) = response.payload {
            let error = rtnetlink::Error::NetlinkError(error);
            match errno(&error) {
                None | Some(Errno::EEXIST) => {}
                Some(_) => return Err(reason(error)),
            }
        }
    }
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(destination.network(), destination.prefix_len())
        .scope(RouteScope::Link)
        .output_interface(index)
        .build();
    handle
        .route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(reason)
}
