//! Starts Debian's `redis-server` on a free loopback port for one test (or
//! benchmark) and stops it when dropped. No persistence unless asked for.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    persistent: bool,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// A server without persistence.
    pub fn start() -> RedisServer {
        RedisServer::launch(free_port(), false, None)
    }

    /// A server that keeps its data in an append-only file across `restart`.
    pub fn start_persistent() -> RedisServer {
        RedisServer::launch(free_port(), true, None)
    }

    fn launch(port: u16, persistent: bool, dir: Option<PathBuf>) -> RedisServer {
        let dir = dir.unwrap_or_else(|| {
            let d = std::env::temp_dir()
                .join(format!("fashop-notify-redis-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            d
        });
        let mut server = RedisServer {
            port,
            dir,
            persistent,
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        if let Err(seen) = self.spawn_with(&[]) {
            panic!("redis-server on port {} did not start: {seen:?}", self.port);
        }
    }

    /// Starts the server; its log lines when it stopped before accepting
    /// connections.
    fn spawn_with(&mut self, extra: &[&str]) -> Result<(), Vec<String>> {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect(
                "redis-server is not installed (apt-get install redis-server; `make deps` does it)",
            );
        let mut child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--dir", self.dir.to_str().unwrap(), "--save", ""])
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .args([
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ])
            .args(["--logfile", ""])
            .args(["--unixsocket", self.socket().to_str().unwrap()])
            .args(["--unixsocketperm", "700"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The server logs to stdout; it accepts connections once it says so.
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if line.contains("Ready to accept connections") {
                        break;
                    }
                    seen.push(line);
                }
                _ => {
                    let _ = child.wait();
                    return Err(seen);
                }
            }
        }
        // Keep reading its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The Unix socket the server also listens on.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The same server through its Unix socket.
    pub fn unix_url(&self) -> String {
        format!("redis+unix://{}?db=0", self.socket().display())
    }

    /// `spec`, through the Unix socket.
    pub fn unix_spec(&self, prefix: &str) -> String {
        format!("{}&prefix={prefix}:", self.unix_url())
    }

    /// One command that must answer OK.
    fn command(&self, args: &[&str]) {
        let mut conn = redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .unwrap_or_else(|e| panic!("redis on port {}: {e}", self.port));
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let answer: String = cmd
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("redis on port {}: {args:?}: {e}", self.port));
        assert_eq!(answer, "OK", "{args:?}");
    }

    /// The store spec with a prefix of its own, so tests sharing a server stay apart.
    pub fn spec(&self, prefix: &str) -> String {
        format!("{}?prefix={prefix}:", self.url())
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three masters of a Redis Cluster (no replicas) started from Debian's
/// `redis-server` on free loopback ports, joined as `redis-cli --cluster
/// create` would join them; stopped when dropped.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::launch_cluster_node()).collect();
        // What `redis-cli --cluster create` does, without its one-second
        // pauses: each master gets a third of the slots, the first meets the
        // others, and gossip spreads the slot map (wait_until_ready).
        let slots = [(0, 5460), (5461, 10922), (10923, 16383)];
        for (node, (first, last)) in nodes.iter().zip(slots) {
            node.command(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &first.to_string(),
                &last.to_string(),
            ]);
        }
        for other in &nodes[1..] {
            nodes[0].command(&["CLUSTER", "MEET", "127.0.0.1", &other.port.to_string()]);
        }
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ready();
        cluster
    }

    /// Until every node says the cluster is up and knows all three masters
    /// (the gossip that spreads the slot map takes a moment).
    fn wait_until_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for node in &self.nodes {
            let client = redis::Client::open(node.url()).unwrap();
            loop {
                let info: String = client
                    .get_connection()
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the cluster never came up: {info}"
                );
                std::thread::yield_now();
            }
        }
    }

    /// `redis+cluster://` naming every node.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}/", hosts.join(","))
    }

    /// The store spec with a prefix of its own.
    pub fn spec(&self, prefix: &str) -> String {
        format!("{}?prefix={prefix}:", self.url())
    }

    /// `redis://` of each node, to ask each for its own figures.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

impl RedisServer {
    /// A cluster node listens on two ports: its own and, 10000 above it,
    /// the cluster bus. Both are taken free, and a start whose port another
    /// process took meanwhile is tried again on other ports.
    fn launch_cluster_node() -> RedisServer {
        let mut failures = Vec::new();
        for _ in 0..5 {
            let port = free_cluster_port();
            let dir = std::env::temp_dir().join(format!(
                "fashop-notify-redis-cluster-{}-{port}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = RedisServer {
                port,
                dir,
                persistent: false,
                child: None,
            };
            match server.spawn_with(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ]) {
                Ok(()) => return server,
                Err(seen) if seen.iter().any(|l| l.contains("Address already in use")) => {
                    failures.push(seen)
                }
                Err(seen) => panic!("redis-server on port {port} did not start: {seen:?}"),
            }
        }
        panic!("no cluster node started on free ports: {failures:?}")
    }
}

/// A free loopback port whose cluster bus port (10000 above) is free too.
fn free_cluster_port() -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port <= u16::MAX - 10000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}
