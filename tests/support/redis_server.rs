//! A throwaway `redis-server` on a free loopback port, for the tests that need a real one.
//! It panics rather than skip when `redis-server` is missing (a skipped suite would pass
//! silently); `scripts/test` installs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    password: String,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server requiring `password`, persisting to an append-only file in a fresh
    /// directory so that a restart keeps what it held.
    pub fn start(password: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let dir = std::env::temp_dir().join(format!("portcullis-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data directory");
        let mut server = RedisServer { child: None, port, password: password.to_owned(), dir };
        server.restart();
        server
    }

    /// (Re)starts the server process on the same port and data directory.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--requirepass", &self.password])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        self.wait_until_it_answers();
    }

    /// Stops the server and starts it again without its data, as a Redis without
    /// persistence restarts, or a failover to an empty replica.
    #[allow(dead_code)]
    pub fn restart_empty(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).expect("a data directory");
        self.restart();
    }

    /// Stops the server abruptly, as a crash or a network cut would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut reply = [0; 1];
                // Any reply, `-NOAUTH` included, means it serves commands.
                if stream.write_all(b"PING\r\n").and_then(|()| stream.read_exact(&mut reply)).is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {} within 10 s", self.port);
    }

    pub fn url(&self, password: &str) -> String {
        format!("redis://default:{password}@127.0.0.1:{}", self.port)
    }

    /// Runs `redis-cli` against this server and returns its output lines.
    #[allow(dead_code)]
    pub fn cli(&self, args: &[&str]) -> Vec<String> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--no-auth-warning", "-a", &self.password])
            .args(args)
            .output()
            .expect("redis-cli comes with redis-server");
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect()
    }

    /// Redis commands served so far, by command, from `INFO commandstats`, leaving out the
    /// `INFO` and `AUTH` of the measuring `redis-cli` and connection upkeep (`PING`).
    #[allow(dead_code)]
    pub fn commands_served(&self) -> std::collections::BTreeMap<String, u64> {
        self.cli(&["INFO", "commandstats"])
            .iter()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?.parse().ok()?;
                (!matches!(name, "info" | "ping" | "auth")).then(|| (name.to_owned(), calls))
            })
            .collect()
    }
}

/// Ends what a [`Monitor`] collects: its own `ECHO` is the last command it sees.
const MONITOR_MARK: &str = "portcullis-monitor-mark";

/// The commands clients send to the server, as `MONITOR` shows them: one per round trip
/// for a script or a plain command, leaving out the commands scripts run inside Redis
/// (which `INFO commandstats` counts too) and connection upkeep.
#[allow(dead_code)]
pub struct Monitor {
    child: Child,
    lines: Receiver<String>,
}

impl RedisServer {
    /// Starts watching the commands clients send; it sees everything sent after it returns.
    #[allow(dead_code)]
    pub fn monitor(&self) -> Monitor {
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--no-auth-warning", "-a", &self.password, "MONITOR"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli comes with redis-server");
        let stdout = child.stdout.take().expect("a piped stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let started = lines.recv_timeout(Duration::from_secs(10)).expect("MONITOR answers");
        assert_eq!(started, "OK", "MONITOR started");
        Monitor { child, lines }
    }
}

impl Monitor {
    /// The names of the commands clients sent since the last call (or since it started).
    #[allow(dead_code)]
    pub fn commands_since(&self, server: &RedisServer) -> Vec<String> {
        server.cli(&["ECHO", MONITOR_MARK]);
        let mut commands = Vec::new();
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(10)).expect("MONITOR sees its mark");
            let Some((source, command)) = line.split_once("] ") else { continue };
            if source.ends_with(" lua") {
                continue;
            }
            let name = command.split('"').nth(1).unwrap_or_default().to_lowercase();
            match name.as_str() {
                "echo" if command.contains(MONITOR_MARK) => return commands,
                "auth" | "ping" | "echo" => {}
                _ => commands.push(name),
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
