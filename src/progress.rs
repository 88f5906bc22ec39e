//! Progress reporting from long library work to whatever front end runs it.
//!
//! The library never prints. Long operations take a `&dyn Progress` and announce stages and steps; the CLI shows
//! them with indicatif, the GUI (later) with its own widgets, tests and benches pass `NoProgress`. Implementations
//! must be `Sync` because steps are reported from rayon worker threads.

/// Receives progress of long operations. All methods have empty defaults.
pub trait Progress: Sync {
    /// A stage starts, with `total` steps.
    fn begin(&self, _stage: &str, _total: u64) {}
    /// `steps` more steps of the current stage are done.
    fn advance(&self, _steps: u64) {}
    /// The current stage is finished.
    fn end(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
