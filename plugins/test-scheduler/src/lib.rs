//! A scheduler plugin made of the SDK's framework with its default filters
//! and scores, so the host's tests exercise the framework end to end. The
//! configuration may set the framework's `tie-break`, `weights` and
//! `disabled` keys (see `Framework::configure`).

use hortator_sdk::scheduler::{Framework, Scheduler};
use hortator_sdk::serde_json::Value;

struct DefaultScheduler(Framework);

impl Scheduler for DefaultScheduler {
    fn init(config: Value) -> Result<Self, String> {
        Framework::with_defaults()
            .configure(&config)
            .map(DefaultScheduler)
    }

    fn framework(&mut self) -> &mut Framework {
        &mut self.0
    }
}

hortator_sdk::export_scheduler!(DefaultScheduler);
