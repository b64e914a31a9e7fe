//! The signals that stop tidewatch's long-running processes: Ctrl-C
//! (SIGINT) and SIGTERM, what `kill`, systemd and container runtimes send
//! to stop a service. `serve` waits for one and shuts down gracefully;
//! `run` and `worker` ([`stop_on_signal`]) set a flag their loop reads, so
//! they commit what they read before they exit.
//!
//! SIGHUP keeps whatever disposition the parent gave it: a process started
//! under `nohup` outlives its terminal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The stop signals, registered with the runtime they were made in: a
/// signal that arrives after [`StopSignals::register`] is not missed.
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers; call it inside a runtime with I/O enabled.
    pub fn register() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// The next stop signal.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Sets `flag` on the first stop signal and prints `stopping`; a second
/// signal ends the process at once (exit status 130). The handlers are in
/// place when this returns; a thread of its own waits for them.
pub fn stop_on_signal(flag: Arc<AtomicBool>, stopping: &'static str) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let mut signals = rt.block_on(async { StopSignals::register() })?;
    std::thread::Builder::new().name("tw-signals".into()).spawn(move || {
        rt.block_on(async move {
            loop {
                signals.next().await;
                if flag.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
                eprintln!("{stopping}");
            }
        })
    })?;
    Ok(())
}
