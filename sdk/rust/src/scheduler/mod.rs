//! Scheduler plugins: choose a node for every pending pod.
//!
//! The host streams node and pod changes into the plugin
//! ([`Scheduler::update`]) and then asks for one node per pending pod
//! ([`Scheduler::schedule`]). As soon as `schedule` returns a node, the host
//! reports the pod on it (`pod-assigned`: the pod is assumed, as in
//! kube-scheduler), and takes it back (`pod-unassigned`) if the binding
//! fails, so a plugin never accounts for its own decisions.
//!
//! This module supplies a scheduling framework in the style of
//! kube-scheduler, so that a custom policy is a few lines:
//!
//! * [`NodeCache`] keeps the plugin's view of the cluster: one [`NodeInfo`]
//!   per node with the pods on it, the sum of their requests and the host
//!   ports they use, plus indexes of the pods per node by owner and by label
//!   (for spreading); O(1) per event and per lookup by name.
//! * [`Filter`]s rule nodes out, each with a reason; [`Score`]s rank the nodes
//!   that are left, 0 to 100, combined by weight.
//! * [`Framework`] holds the cache, the filters and the weighted scores, and
//!   picks the best node. Like kube-scheduler it filters only until it has
//!   found enough feasible nodes in large clusters
//!   ([`Framework::percentage_of_nodes_to_score`]), starting where the
//!   previous pod stopped. Ties go to the node whose name sorts first unless
//!   configured otherwise ([`TieBreak`]).
//! * [`plugins`] has the built-in filters and scores, which reproduce
//!   kube-scheduler's basics; [`Framework::with_defaults`] uses them all.
//!
//! ```no_run
//! use hortator_sdk::scheduler::{Filter, Framework, NodeInfo, Pod, Scheduler};
//!
//! /// Keeps pods off nodes labelled `maintenance=true`.
//! struct NoMaintenance;
//!
//! impl Filter for NoMaintenance {
//!     fn name(&self) -> &str {
//!         "no-maintenance"
//!     }
//!
//!     fn filter(&self, _pod: &Pod, node: &NodeInfo) -> Result<(), String> {
//!         match node.node().label("maintenance") {
//!             Some("true") => Err("node(s) were in maintenance".into()),
//!             _ => Ok(()),
//!         }
//!     }
//! }
//!
//! struct MyScheduler(Framework);
//!
//! impl Scheduler for MyScheduler {
//!     fn init(config: hortator_sdk::serde_json::Value) -> Result<Self, String> {
//!         Ok(MyScheduler(Framework::with_defaults().filter(NoMaintenance).configure(&config)?))
//!     }
//!
//!     fn framework(&mut self) -> &mut Framework {
//!         &mut self.0
//!     }
//! }
//!
//! hortator_sdk::export_scheduler!(MyScheduler);
//! ```

mod cache;
mod framework;
mod hash;
pub mod plugins;
mod spread;

pub use cache::{NodeCache, NodeInfo};
pub use framework::{
    Filter, Framework, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND, MIN_FEASIBLE_NODES_TO_FIND, Score,
    TieBreak,
};

pub use crate::KeyValue;
pub use crate::bindings::scheduler::hortator::plugin::scheduler_types::{
    AssignedPod, ClusterEvent, HostPort, Node, NodeReason, NodeSelectorRequirement,
    NodeSelectorTerm, Owner, Pod, PreferredTerm, Protocol, Resources, ScheduleResult,
    SelectorOperator, Taint, TaintEffect, Toleration, TolerationOperator,
};

use serde_json::Value;

/// A scheduler plugin, built around a [`Framework`].
///
/// The host calls [`Scheduler::init`] once, then [`Scheduler::update`] and
/// [`Scheduler::schedule`] in any order; calls never overlap. The default
/// `update` and `schedule` hand everything to the framework; override them to
/// add behaviour around it.
pub trait Scheduler: Sized + 'static {
    /// Builds the plugin from its configuration: the plugin's TOML table as
    /// JSON, an empty object when there is none. An error refuses the plugin.
    fn init(config: Value) -> Result<Self, String>;

    /// The framework this plugin schedules with.
    fn framework(&mut self) -> &mut Framework;

    /// Applies cluster changes, in order, to the framework's node cache.
    fn update(&mut self, events: Vec<ClusterEvent>) {
        self.framework().update(events);
    }

    /// Chooses a node for `pod`, or explains for every node why it does not fit.
    fn schedule(&mut self, pod: &Pod) -> ScheduleResult {
        self.framework().schedule(pod)
    }
}

/// Exports a type implementing [`Scheduler`] as the plugin's `scheduler` world.
///
/// ```ignore
/// hortator_sdk::export_scheduler!(MyScheduler);
/// ```
///
/// The plugin's metadata is the package name and version of the crate that
/// invokes the macro, and [`SDK_VERSION`](crate::SDK_VERSION).
#[macro_export]
macro_rules! export_scheduler {
    ($plugin:ty) => {
        const _: () = {
            $crate::__plugin_instance!($plugin);

            struct HortatorSchedulerExport;

            impl $crate::__private::scheduler::Guest for HortatorSchedulerExport {
                $crate::__plugin_lifecycle!($plugin, $crate::scheduler::Scheduler);

                fn update(events: ::std::vec::Vec<$crate::scheduler::ClusterEvent>) {
                    $crate::__private::with(&INSTANCE, |plugin| {
                        $crate::scheduler::Scheduler::update(plugin, events)
                    })
                }

                fn schedule(pod: $crate::scheduler::Pod) -> $crate::scheduler::ScheduleResult {
                    $crate::__private::with(&INSTANCE, |plugin| {
                        $crate::scheduler::Scheduler::schedule(plugin, &pod)
                    })
                }
            }

            $crate::__private::scheduler::export!(
                HortatorSchedulerExport with_types_in $crate::__private::scheduler
            );
        };
    };
}

impl Node {
    /// A ready, schedulable node with `milli_cpu` millicores and `memory`
    /// bytes allocatable, room for 110 pods and 100 GiB of ephemeral storage,
    /// no labels and no taints: a starting point for tests.
    pub fn new(name: &str, milli_cpu: u64, memory: u64) -> Node {
        Node {
            name: name.into(),
            labels: Vec::new(),
            allocatable: Resources {
                milli_cpu,
                memory,
                ephemeral_storage: 100 << 30,
                pods: 110,
            },
            taints: Vec::new(),
            unschedulable: false,
            ready: true,
        }
    }

    /// The value of one of the node's labels.
    pub fn label(&self, key: &str) -> Option<&str> {
        crate::lookup(&self.labels, key)
    }
}

impl Pod {
    /// A pod in namespace `default` with uid `<name>-uid` requesting
    /// `milli_cpu` millicores and `memory` bytes, and nothing else: a starting
    /// point for tests.
    pub fn new(name: &str, milli_cpu: u64, memory: u64) -> Pod {
        Pod {
            uid: format!("{name}-uid"),
            namespace: "default".into(),
            name: name.into(),
            labels: Vec::new(),
            requests: Resources {
                milli_cpu,
                memory,
                ephemeral_storage: 0,
                pods: 1,
            },
            host_ports: Vec::new(),
            node_selector: Vec::new(),
            required_node_affinity: Vec::new(),
            preferred_node_affinity: Vec::new(),
            tolerations: Vec::new(),
            owner: None,
            spread_selectors: Vec::new(),
            priority: 0,
        }
    }

    /// The value of one of the pod's labels.
    pub fn label(&self, key: &str) -> Option<&str> {
        crate::lookup(&self.labels, key)
    }

    /// The pod's requests as kube-scheduler scores them: a pod that requests
    /// no CPU counts 100 millicores, one that requests no memory 200 MiB
    /// (the counterpart of [`NodeInfo::non_zero_requested`]).
    pub fn non_zero_requests(&self) -> Resources {
        cache::non_zero_requests(self)
    }
}

impl ClusterEvent {
    /// `pod-assigned`: `pod` now occupies `node_name`.
    pub fn assigned(pod: Pod, node_name: &str) -> ClusterEvent {
        ClusterEvent::PodAssigned(AssignedPod {
            pod,
            node_name: node_name.into(),
        })
    }
}

impl Resources {
    /// No resources.
    pub const ZERO: Resources = Resources {
        milli_cpu: 0,
        memory: 0,
        ephemeral_storage: 0,
        pods: 0,
    };
}

impl Toleration {
    /// Whether this toleration tolerates `taint`, by Kubernetes' rules: the
    /// effects match (or the toleration names none), the keys match (or the
    /// toleration's is empty), and with `equal` the values match.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        self.tolerates_parts(&taint.key, &taint.value, taint.effect)
    }

    /// [`Toleration::tolerates`] for a taint given by its parts.
    pub fn tolerates_parts(&self, key: &str, value: &str, effect: TaintEffect) -> bool {
        if self.effect.is_some_and(|wanted| wanted != effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == value,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing;
