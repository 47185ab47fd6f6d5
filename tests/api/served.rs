//! The real binary (`bulk-invite serve`) in its own process, for tests
//! that measure what an attack costs the server (its peak memory) or need
//! settings only the command line gives (database time limits).

use crate::helpers::TestApp;
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `bulk-invite serve` process on a test app's database (whose account
/// and API key it shares), stopped when dropped.
pub struct Served {
    pub address: String,
    pub port: u16,
    child: Child,
}

impl Served {
    /// Starts the server with `env` on top of quiet defaults, and waits
    /// until `/healthz` answers.
    pub async fn start(app: &TestApp, env: &[(&str, &str)]) -> Served {
        Self::start_with(app, env, Stdio::null()).await
    }

    /// The same, with its log (stderr) written to `log`.
    pub async fn start_logging(app: &TestApp, env: &[(&str, &str)], log: &Path) -> Served {
        let file = std::fs::File::create(log).expect("log file");
        Self::start_with(app, env, Stdio::from(file)).await
    }

    async fn start_with(app: &TestApp, env: &[(&str, &str)], stderr: Stdio) -> Served {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_bulk-invite"));
        command
            .arg("serve")
            .env("DATABASE_URL", &app.database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("HTTP_WORKERS", "2")
            .env("DATABASE_POOL_SIZE", "4")
            .env("SERVE_DISPATCHER", "false")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start bulk-invite serve");
        let served = Served {
            address: format!("http://127.0.0.1:{port}"),
            port,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while served.health_within(Duration::from_secs(1)).await.is_none() {
            assert!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        served
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// How long `/healthz` took to answer 200, or `None` past `limit`.
    pub async fn health_within(&self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let client = reqwest::Client::builder().timeout(limit).build().ok()?;
        let response = client.get(self.url("/healthz")).send().await.ok()?;
        (response.status() == 200).then(|| started.elapsed())
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_memory(&self) -> u64 {
        status_field(self.child.id(), "VmHWM:") * 1024
    }

    /// The process's threads now.
    pub fn threads(&self) -> u64 {
        status_field(self.child.id(), "Threads:")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A number from `/proc/{pid}/status` (a `kB` unit dropped).
fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// What a raw connection got: the status line's code (None when closed
/// without an answer), whether the server closed it, and how long that took.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: Option<u16>,
    pub closed: bool,
    pub head: String,
    pub after: Duration,
}

/// Reads from a raw connection until the server closes it or `limit` passes.
pub fn read_answer(mut stream: TcpStream, limit: Duration) -> RawAnswer {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed = false;
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&data).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    RawAnswer {
        status,
        closed,
        head: text.split("\r\n\r\n").next().unwrap_or_default().to_owned(),
        after: started.elapsed(),
    }
}
