//! Idle and half-sent connections against the `portcullis dev` binary (issue 18.5): a
//! process limited to 512 file descriptors keeps serving while 600 half-sent requests are
//! open, and half-sent or idle connections are closed after their timeouts.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `portcullis dev` process, killed when the test ends.
struct Dev {
    child: Child,
    address: SocketAddr,
    stderr: std::path::PathBuf,
}

impl Dev {
    /// Starts `dev` with `args`, limited to `fd_limit` descriptors (soft and hard, so its
    /// start-up cannot raise it).
    fn start(fd_limit: u64, args: &[&str]) -> Self {
        let stderr = std::env::temp_dir().join(format!("portcullis-connections-{}-{fd_limit}.log", std::process::id()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command
            .args(["dev", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let limit = libc::rlimit { rlim_cur: fd_limit, rlim_max: fd_limit };
        // SAFETY: between fork and exec the child only calls setrlimit, which is
        // async-signal-safe, on a value copied into its own memory.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        // Owned by the guard from here on, so a failed start still kills the process.
        let mut dev = Dev { child: command.spawn().unwrap(), address: ([127, 0, 0, 1], 0).into(), stderr };
        let stdout = BufReader::new(dev.child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("Portcullis dev listening on http://") {
                dev.address = rest.split_whitespace().next().unwrap().parse().unwrap();
                return dev;
            }
        }
        panic!("portcullis dev did not start");
    }

    /// Sends a whole request and reads the status line of the answer within `within`.
    fn get(&self, path: &str, within: Duration) -> Result<String, std::io::Error> {
        let mut stream = TcpStream::connect_timeout(&self.address, within)?;
        stream.set_read_timeout(Some(within))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.address)?;
        let mut status = String::new();
        BufReader::new(stream).read_line(&mut status)?;
        Ok(status.trim_end().to_owned())
    }

    /// A connection that sends the start of a request head and stops.
    fn half_sent(&self) -> TcpStream {
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
        stream
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// How long until the server closes `stream` (a read sees the end or a reset), at most
/// `patience`; `None` if it is still open then.
fn closed_after(stream: &mut TcpStream, patience: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream.set_read_timeout(Some(patience)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => Some(started.elapsed()),
        Ok(_) => panic!("the server answered a half-sent request"),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(_) => Some(started.elapsed()),
    }
}

/// Enough descriptors for this test process's own 600 connections.
fn raise_own_fd_limit() {
    portcullis::listener::raise_fd_limit();
    assert!(portcullis::listener::fd_limit() >= 1024, "the tests need 1024 descriptors");
}

#[test]
fn a_512_descriptor_process_with_600_half_sent_requests_still_answers_within_5_s() {
    raise_own_fd_limit();
    let dev = Dev::start(512, &[]);
    let half_sent: Vec<TcpStream> = (0..600).map(|_| dev.half_sent()).collect();
    let started = Instant::now();
    let status = dev.get("/health", Duration::from_secs(5)).expect("a normal request gets through");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(started.elapsed() < Duration::from_secs(5), "answered in {:?}", started.elapsed());
    let again = dev.get("/.well-known/openid-configuration", Duration::from_secs(5)).unwrap();
    assert_eq!(again, "HTTP/1.1 200 OK", "and the next one too");
    drop(half_sent);
    let log = std::fs::read_to_string(&dev.stderr).unwrap();
    assert!(!log.contains("Too many open files"), "{log}");
}

#[test]
fn a_half_sent_request_is_closed_after_the_header_read_timeout_and_an_idle_one_after_the_idle_timeout() {
    let dev = Dev::start(1024, &["--header-read-timeout", "1s", "--idle-timeout", "3s"]);
    let mut half_sent = dev.half_sent();
    let closed = closed_after(&mut half_sent, Duration::from_secs(5)).expect("closed within 5 s");
    assert!(closed >= Duration::from_millis(900) && closed < Duration::from_secs(3), "after {closed:?}");

    let mut silent = TcpStream::connect(dev.address).unwrap();
    let closed = closed_after(&mut silent, Duration::from_secs(5)).expect("a silent connection is closed too");
    assert!(closed < Duration::from_secs(3), "a new connection must send its head in time: {closed:?}");

    let mut kept_alive = TcpStream::connect(dev.address).unwrap();
    write!(kept_alive, "GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", dev.address).unwrap();
    kept_alive.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut reader = BufReader::new(kept_alive.try_clone().unwrap());
    let mut head = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        head.push(std::mem::take(&mut line));
    }
    assert_eq!(head[0], "HTTP/1.1 200 OK\r\n");
    let length: usize = head
        .iter()
        .find_map(|header| {
            header.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
        })
        .expect("a content length");
    reader.read_exact(&mut vec![0; length]).unwrap();
    assert!(reader.buffer().is_empty(), "the whole response was read");
    let idle = closed_after(&mut kept_alive, Duration::from_secs(6)).expect("an idle connection is closed");
    assert!(idle >= Duration::from_millis(2500) && idle < Duration::from_secs(5), "idle for {idle:?}");
}

#[test]
fn zero_timeouts_and_connection_caps_are_refused() {
    for args in [["--header-read-timeout", "0s"], ["--idle-timeout", "0s"], ["--max-connections", "0"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_portcullis")).arg("dev").args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

/// Ctrl-C or SIGTERM: connections without a request in progress do not hold the shutdown.
#[test]
fn sigterm_stops_at_once_despite_idle_and_half_sent_connections() {
    let mut dev = Dev::start(1024, &[]);
    assert_eq!(dev.get("/health", Duration::from_secs(5)).unwrap(), "HTTP/1.1 200 OK", "serving");
    let _half_sent = dev.half_sent();
    let mut idle = TcpStream::connect(dev.address).unwrap();
    write!(idle, "GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", dev.address).unwrap();
    idle.read_exact(&mut [0u8; 15]).unwrap();
    let id = i32::try_from(dev.child.id()).unwrap();
    // SAFETY: kill only sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(id, libc::SIGTERM) }, 0);
    let started = Instant::now();
    while dev.child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(3), "still running 3 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dev.child.wait().unwrap().success(), "a graceful exit");
}
