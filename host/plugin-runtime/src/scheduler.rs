//! The scheduler world: a stateful plugin fed with cluster changes and asked
//! for one placement per pod.

use std::sync::Mutex;

use crate::bindings::scheduler::{Scheduler, SchedulerPre};
use crate::core::{Core, plugin_accessors, world_binding};
use crate::error::{CallError, LoadError};
use crate::runtime::Runtime;
use crate::settings::PluginSettings;

pub use crate::bindings::admission::hortator::plugin::types::KeyValue;
pub use crate::bindings::scheduler::hortator::plugin::scheduler_types::{
    AssignedPod, ClusterEvent, HostPort, Node, NodeReason, NodeSelectorRequirement,
    NodeSelectorTerm, Owner, Pod, PreferredTerm, Protocol, Resources, ScheduleResult,
    SelectorOperator, Taint, TaintEffect, Toleration, TolerationOperator,
};

world_binding!(Scheduler, SchedulerPre, "scheduler");

/// A loaded scheduler plugin. Calls are serialised: the plugin keeps one view
/// of the cluster in one instance.
pub struct SchedulerPlugin {
    core: Core<Scheduler>,
    /// Set when the instance holding the cluster view was discarded.
    state_lost: Mutex<bool>,
}

impl SchedulerPlugin {
    /// Load, check and initialise a component.
    pub fn load(
        runtime: &Runtime,
        settings: PluginSettings,
        source: String,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        Ok(SchedulerPlugin {
            core: Core::load(runtime, settings, source, bytes, None)?,
            state_lost: Mutex::new(false),
        })
    }

    /// Stream cluster changes into the plugin.
    pub fn update(&self, events: &[ClusterEvent]) -> Result<(), CallError> {
        let mut lost = self.state_lost.lock().expect("scheduler lock");
        self.core
            .call(|world, store| world.call_update(store, events))
            .inspect_err(|_| *lost = true)
    }

    /// Choose a node for a pod. A named node must be one the plugin was told about;
    /// the caller checks that.
    pub fn schedule(&self, pod: &Pod) -> Result<ScheduleResult, CallError> {
        let mut lost = self.state_lost.lock().expect("scheduler lock");
        let result = self
            .core
            .call(|world, store| world.call_schedule(store, pod))
            .inspect_err(|_| *lost = true)?;
        if let ScheduleResult::Node(name) = &result
            && name.is_empty()
        {
            let err = CallError::Malformed("schedule() chose a node with an empty name".into());
            self.core.record_malformed(&err);
            return Err(err);
        }
        Ok(result)
    }

    /// True once after the plugin lost its cluster view (its instance failed and
    /// was replaced): the caller must replay the whole cluster with `update`.
    pub fn take_state_lost(&self) -> bool {
        std::mem::take(&mut *self.state_lost.lock().expect("scheduler lock"))
    }

    plugin_accessors!();
}
