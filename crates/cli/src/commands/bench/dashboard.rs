//! `tidewatch bench dashboard --data DIR`: server time of every dashboard
//! page over a data directory (a `tidewatch demo --data DIR` store, say),
//! against the health check as the baseline of the same server.
//!
//! The server runs in this process on a loopback port and is asked over
//! plain HTTP like a browser asks it; each page is loaded `--rounds` times
//! and its median and slowest load reported. The target is < 200 ms.

use crate::commands::bench::http_get;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tidewatch_server::{AppState, ServerConfig};

#[derive(clap::Args)]
pub struct Args {
    /// The data directory to serve.
    #[arg(long)]
    pub data: PathBuf,
    /// Loads of each page.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

pub fn bench_dashboard(a: Args) -> Result<ExitCode> {
    if a.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let mut config = ServerConfig::new(a.data.clone(), SocketAddr::from(([127, 0, 0, 1], 0)));
    config.anonymous_read = true;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            tidewatch_server::serve_until_stopped(AppState::new(config), stop, move |addr| {
                let _ = tx.send(addr);
            })
        })
    };
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .context("the server did not start")?;

    let mut pages = vec![
        "/".to_string(),
        "/feeds".into(),
        "/narratives".into(),
        "/groups".into(),
        "/search?q=earthquake".into(),
        "/search?q=%22city+council%22+OR+transit".into(),
    ];
    let (status, body) = http_get(addr, "/api/v1/feeds")?;
    if status != 200 {
        bail!(
            "listing the feeds answered {status}: is {} a data directory?",
            a.data.display()
        );
    }
    let feeds: serde_json::Value = serde_json::from_slice(&body)?;
    for f in feeds.as_array().into_iter().flatten() {
        if let Some(name) = f["name"].as_str() {
            let name = tidewatch_server::dashboard::encode_segment(name);
            pages.push(format!("/feeds/{name}"));
            pages.push(format!("/feeds/{name}?range=all"));
        }
    }
    let (_, body) = http_get(addr, "/api/v1/coordination/groups")?;
    let groups: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(id) = groups.as_array().and_then(|g| g.first()).and_then(|g| g["id"].as_str()) {
        pages.push(format!("/groups/{id}"));
    }

    let time = |path: &str| -> Result<(Duration, Duration)> {
        let mut times = Vec::with_capacity(a.rounds);
        for _ in 0..a.rounds {
            let start = Instant::now();
            let (status, _) = http_get(addr, path)?;
            times.push(start.elapsed());
            if status != 200 {
                bail!("{path} answered {status}");
            }
        }
        times.sort_unstable();
        Ok((times[times.len() / 2], times[times.len() - 1]))
    };
    let (base, _) = time("/api/v1/health")?;
    println!("{:<48} {:>10} {:>10}", "page", "median ms", "max ms");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut slowest = (Duration::ZERO, String::new());
    for p in &pages {
        let (median, max) = time(p)?;
        println!("{p:<48} {:>10.1} {:>10.1}", ms(median), ms(max));
        if max > slowest.0 {
            slowest = (max, p.clone());
        }
    }
    println!(
        "{} pages x {} loads; slowest load {:.1} ms ({}); baseline /api/v1/health median {:.2} ms",
        pages.len(),
        a.rounds,
        ms(slowest.0),
        slowest.1,
        ms(base)
    );
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    Ok(if slowest.0 < Duration::from_millis(200) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
