//! Progress reporting from long library work to whatever front end runs it, and the front end's way to stop it.
//!
//! The library never prints. Long operations take a `&dyn Progress`, announce stages and steps, and ask
//! [`Progress::is_cancelled`] between steps; the CLI shows progress with indicatif, the GUI with its own widgets and a
//! Cancel button, tests and benches pass [`NoProgress`]. Implementations must be `Sync` because steps are reported
//! from rayon worker threads.
//!
//! Why cancellation rides on the progress reporter: every long operation already takes one, so a front end that can
//! show progress can also stop the work, with no second parameter threaded through every layer. Work that sees a
//! cancel request returns [`Cancelled`] (each module's error type has a variant for it) at the next step boundary,
//! and writes nothing: outputs are produced in memory and written only at the end, each file atomically.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Receives progress of long operations and says whether they should stop. All methods have defaults.
pub trait Progress: Sync {
    /// A stage starts, with `total` steps.
    fn begin(&self, _stage: &str, _total: u64) {}
    /// `steps` more steps of the current stage are done.
    fn advance(&self, _steps: u64) {}
    /// The current stage is finished.
    fn end(&self) {}
    /// Whether the front end asked the work to stop. Polled between steps, so it must be cheap.
    fn is_cancelled(&self) -> bool {
        false
    }
    /// `Err(Cancelled)` once the front end asked the work to stop: `progress.checkpoint()?` at a step boundary.
    fn checkpoint(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Work stopped because the front end asked it to; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cancelled; nothing was written")]
pub struct Cancelled;

/// Reports nothing and never cancels.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A cancel flag a front end keeps and the work polls: clone it into the worker's progress reporter, call
/// [`CancelFlag::cancel`] from the UI thread.
#[derive(Debug, Default, Clone)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A flag that is not set.
    pub fn new() -> CancelFlag {
        CancelFlag::default()
    }

    /// Ask the work to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`CancelFlag::cancel`] was called.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// No progress display, but cancellable through a [`CancelFlag`].
#[derive(Debug, Default, Clone)]
pub struct Cancellable(pub CancelFlag);

impl Progress for Cancellable {
    fn is_cancelled(&self) -> bool {
        self.0.is_set()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_flag_cancels_at_the_next_checkpoint() {
        let flag = CancelFlag::new();
        let progress = Cancellable(flag.clone());
        assert_eq!(progress.checkpoint(), Ok(()));
        flag.cancel();
        assert_eq!(progress.checkpoint(), Err(Cancelled));
        assert_eq!(NoProgress.checkpoint(), Ok(()));
    }
}
