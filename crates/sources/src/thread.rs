//! The thread a source runs on, and how it is stopped.
//!
//! Every source runs its own tokio runtime on its own thread and watches a
//! stop signal; stopping (or dropping) the handle raises the signal and
//! waits for the thread, so a stopped source has sent its last record.

use std::thread::JoinHandle;
use tokio::sync::watch;

/// A source's running thread.
pub struct SourceThread {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl SourceThread {
    pub(crate) fn new(stop: watch::Sender<bool>, thread: JoinHandle<()>) -> SourceThread {
        SourceThread {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the source and waits for its thread to end.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// True once the thread has ended (stopped, or the receiving end of
    /// its channel went away).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    fn shutdown(&mut self) {
        // `send_replace` raises the signal even when the source has
        // already dropped its receiver.
        self.stop.send_replace(true);
        if let Some(thread) = self.thread.take() {
            // A panic on that thread has already been reported by the
            // panic hook; there is nothing more to do with it here.
            let _ = thread.join();
        }
    }
}

impl Drop for SourceThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}
