//! Real `nats-server` processes for tests: one JetStream server, or a
//! 3-node JetStream cluster, on free loopback ports with throw-away store
//! directories, killed when dropped.
//!
//! The project rule for tests that need an outside program: when
//! `nats-server` is missing, a test under `CI=true` fails with a clear
//! message (CI installs it, so missing means broken), and elsewhere it
//! prints why and returns early. [`nats_server_available`] implements it.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The program started.
pub const NATS_SERVER: &str = "nats-server";

/// Whether `nats-server` can be run. When it cannot: under `CI=true` this
/// panics (a test that needs it must fail there), otherwise it prints why
/// for `test` and returns false so the test returns early.
pub fn nats_server_available(test: &str) -> bool {
    let found = Command::new(NATS_SERVER)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    let why = format!("{test}: `{NATS_SERVER}` is not on PATH (Debian package nats-server; scripts/test installs it)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{why}; under CI=true this is a failure, not a skip");
    }
    eprintln!("{why}; skipping this test outside CI");
    false
}

/// A free TCP port on loopback (bound, then released for the server).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// One running server process.
struct Node {
    child: Child,
    port: u16,
    monitor_port: u16,
}

impl Node {
    fn spawn(store: &Path, extra: &[String]) -> io::Result<Node> {
        let port = free_port()?;
        let monitor_port = free_port()?;
        let child = Command::new(NATS_SERVER)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                &monitor_port.to_string(),
            ])
            .arg("-sd")
            .arg(store)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Node {
            child,
            port,
            monitor_port,
        })
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Waits until the server answers its JetStream health check (which also
    /// means a cluster has elected its JetStream leader).
    fn wait_healthy(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!("{NATS_SERVER} exited early ({status})")));
            }
            if healthz(self.monitor_port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{NATS_SERVER} on port {} did not become healthy", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        // Already gone is fine: this is cleanup.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /healthz` on the monitoring port answers 200 once JetStream is ready.
fn healthz(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200")
}

/// One `nats-server -js` on loopback, killed on drop.
pub struct NatsServer {
    node: Node,
    _store: TempDir,
}

impl NatsServer {
    /// Starts a server and waits until JetStream is ready.
    pub fn start() -> io::Result<NatsServer> {
        // A port freed by `free_port` can be taken before the server binds
        // it; try again with new ports.
        let mut last = None;
        for _ in 0..3 {
            let store = tempfile::tempdir()?;
            let mut node = Node::spawn(store.path(), &[])?;
            match node.wait_healthy(Instant::now() + Duration::from_secs(10)) {
                Ok(()) => return Ok(NatsServer { node, _store: store }),
                Err(e) => {
                    node.kill();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("nats-server did not start")))
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.node.url()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.node.kill();
    }
}

/// A 3-node JetStream cluster on loopback, each node with its own store;
/// nodes can be killed one by one. Every node is killed on drop.
pub struct NatsCluster {
    nodes: Vec<Node>,
    _stores: Vec<TempDir>,
}

impl NatsCluster {
    /// Starts three clustered nodes and waits until all are healthy.
    pub fn start() -> io::Result<NatsCluster> {
        let mut last = None;
        for _ in 0..3 {
            match NatsCluster::try_start() {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("the nats-server cluster did not start")))
    }

    fn try_start() -> io::Result<NatsCluster> {
        const N: usize = 3;
        let cluster_ports: Vec<u16> = (0..N).map(|_| free_port()).collect::<io::Result<_>>()?;
        let routes = cluster_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        // Built first, so that an error below drops it and kills the nodes already started.
        let mut c = NatsCluster {
            nodes: Vec::new(),
            _stores: Vec::new(),
        };
        for (i, cport) in cluster_ports.iter().enumerate() {
            let store = tempfile::tempdir()?;
            let extra = [
                "--server_name".to_string(),
                format!("n{i}"),
                "--cluster_name".to_string(),
                "tidewatch-test".to_string(),
                "--cluster".to_string(),
                format!("nats://127.0.0.1:{cport}"),
                "--routes".to_string(),
                routes.clone(),
            ];
            c.nodes.push(Node::spawn(store.path(), &extra)?);
            c._stores.push(store);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in &mut c.nodes {
            n.wait_healthy(deadline)?;
        }
        Ok(c)
    }

    /// Every node's client URL, comma-separated (what a NATS client's URL list, and
    /// [`NatsPartitionConfig::url`](super::NatsPartitionConfig::url), take).
    pub fn url(&self) -> String {
        self.nodes.iter().map(Node::url).collect::<Vec<_>>().join(",")
    }

    /// The client URL of node `i`.
    pub fn node_url(&self, i: usize) -> Option<String> {
        self.nodes.get(i).map(Node::url)
    }

    /// Kills node `i` (SIGKILL); its store stays until the cluster is dropped.
    pub fn kill(&mut self, i: usize) {
        if let Some(n) = self.nodes.get_mut(i) {
            n.kill();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
    }
}
