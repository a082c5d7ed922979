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
                _ => panic!("redis-server on port {} did not start: {seen:?}", self.port),
            }
        }
        // Keep reading its log so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
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
