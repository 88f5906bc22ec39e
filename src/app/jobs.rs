//! Long work on a worker thread, with progress the UI can draw and a Cancel button that stops it.
//!
//! Why: loading a 300-slice series, segmenting it and meshing take seconds; the window must keep drawing and
//! answer Cancel meanwhile. The library already reports through [`Progress`] and stops at its checkpoints when
//! asked, so a job is a thread that runs one library call with a [`JobProgress`] and sends the result back. The UI
//! polls once per frame; the worker asks for a repaint when its stage changes, so an idle window does not spin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eframe::egui;
use guidesmith::progress::{CancelFlag, Progress};

/// What a running job reports: its stage, steps done out of total, and the cancel flag.
pub struct JobProgress {
    stage: Mutex<String>,
    done: AtomicU64,
    total: AtomicU64,
    cancel: CancelFlag,
    ctx: egui::Context,
    repaint_every: Duration,
}

/// How often a running job repaints the window at most (egui coalesces the requests) when a GPU draws it: enough
/// for a smooth progress bar.
pub const REPAINT_ON_GPU: Duration = Duration::from_millis(100);

/// The same when a software renderer (Mesa's lavapipe, llvmpipe) draws the window: every frame then costs tens of
/// milliseconds of the same cores the work runs on. Measured on the 512 x 512 x 300 series (`docs/PERFORMANCE.md`):
/// with a repaint every 250 ms (and before that, a spinner that repainted every frame) the surface and checks took
/// twice as long as in the CLI; with none during the step they took the same time. Once a second keeps the elapsed
/// time moving; input (the pointer, Cancel) still repaints at once.
pub const REPAINT_IN_SOFTWARE: Duration = Duration::from_secs(1);

impl Progress for JobProgress {
    fn begin(&self, stage: &str, total: u64) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = stage.to_string();
        self.done.store(0, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.ctx.request_repaint_after(self.repaint_every);
    }

    fn advance(&self, steps: u64) {
        self.done.fetch_add(steps, Ordering::Relaxed);
        self.ctx.request_repaint_after(self.repaint_every);
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.is_set()
    }
}

/// What [`Job::poll`] found.
pub enum Polled<T> {
    Running,
    Done(T),
    /// The worker ended without a result (it panicked).
    Died,
}

/// A job started with [`Job::spawn`]: poll it every frame until it gives its result.
pub struct Job<T> {
    /// What the job does, for the progress bar ("Loading CT", ...).
    pub label: String,
    progress: Arc<JobProgress>,
    result: Receiver<T>,
    started: Instant,
}

impl<T: Send + 'static> Job<T> {
    /// Runs `work` on a new thread; its progress repaints the window at most once per `repaint_every`.
    pub fn spawn(
        label: impl Into<String>,
        ctx: &egui::Context,
        repaint_every: Duration,
        work: impl FnOnce(&dyn Progress) -> T + Send + 'static,
    ) -> Job<T> {
        let progress = Arc::new(JobProgress {
            stage: Mutex::new(String::new()),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            cancel: CancelFlag::new(),
            ctx: ctx.clone(),
            repaint_every,
        });
        let (send, result) = mpsc::channel();
        let worker_progress = Arc::clone(&progress);
        let label = label.into();
        std::thread::Builder::new()
            .name(format!("job: {label}"))
            .spawn(move || {
                let out = work(worker_progress.as_ref());
                // The UI may have gone away; then nobody wants the result.
                let _ = send.send(out);
                worker_progress.ctx.request_repaint();
            })
            .expect("the operating system refused a worker thread");
        Job {
            label,
            progress,
            result,
            started: Instant::now(),
        }
    }

    /// Whether the work runs, gave its result, or ended without one (it panicked). One receive per call, so a
    /// result that arrives between two checks cannot be lost.
    pub fn poll(&self) -> Polled<T> {
        match self.result.try_recv() {
            Ok(out) => Polled::Done(out),
            Err(TryRecvError::Empty) => Polled::Running,
            Err(TryRecvError::Disconnected) => Polled::Died,
        }
    }

    /// Asks the work to stop at its next checkpoint.
    pub fn cancel(&self) {
        self.progress.cancel.cancel();
    }

    /// Whether Cancel was pressed.
    pub fn cancelling(&self) -> bool {
        self.progress.cancel.is_set()
    }

    /// The current stage and the fraction of it done (`None` when the stage has no step count).
    pub fn status(&self) -> (String, Option<f32>) {
        let stage = self.progress.stage.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let total = self.progress.total.load(Ordering::Relaxed);
        let done = self.progress.done.load(Ordering::Relaxed);
        let fraction = (total > 1).then(|| (done as f32 / total as f32).min(1.0));
        (stage, fraction)
    }

    /// The longest time between two repaints it asks for.
    pub fn repaint_every(&self) -> Duration {
        self.progress.repaint_every
    }

    /// Seconds since the job started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
