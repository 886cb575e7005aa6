//! Child processes of the harness (backend, proxies): spawned pinned to a
//! CPU list with `taskset`, awaited until they accept connections, and
//! stopped with SIGTERM (then SIGKILL) when the harness is done with them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process the harness started and stops on drop.
pub struct Managed {
    /// Name used in messages.
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Managed {
    /// Spawns `program args` with `envs`, pinned to the `taskset` CPU list
    /// `pin` when given, stdout discarded and stderr appended to `log`.
    pub fn spawn(spec: SpawnSpec<'_>) -> anyhow::Result<Managed> {
        let mut command = spec.placement.command(spec.program);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec.log)
            .with_context(|| format!("opening {}", spec.log.display()))?;
        command
            .args(spec.args)
            .envs(spec.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command
            .spawn()
            .with_context(|| format!("starting {} ({})", spec.name, spec.program.display()))?;
        spec.placement.renice_other_user(child.id());
        Ok(Managed {
            name: spec.name.to_string(),
            child,
            log: spec.log.to_path_buf(),
        })
    }

    /// Process id (`taskset` execs the program, so it is the program's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has already exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited unexpectedly ({status}); last log lines: {}",
                self.name,
                self.log_tail(5)
            );
        }
        Ok(())
    }

    /// The last `lines` lines of the child's stderr log, joined by ` | `.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join(" | ")
    }

    /// Waits until `addr` accepts TCP connections (and the process lives).
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not listen on {addr} within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `GET path` on `addr` answers 200.
    pub fn wait_http_ok(
        &mut self,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if http_get_status(addr, path).ok() == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{}: GET {path} on {addr} not 200 within {timeout:?}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

/// What [`Managed::spawn`] starts.
pub struct SpawnSpec<'a> {
    /// Name used in messages.
    pub name: &'a str,
    /// Executable.
    pub program: &'a Path,
    /// Arguments.
    pub args: &'a [String],
    /// Extra environment.
    pub envs: &'a [(String, String)],
    /// CPUs and priority.
    pub placement: &'a Placement,
    /// File that collects the child's stderr.
    pub log: &'a Path,
}

/// Where a child runs: pinned to a CPU list (`taskset -c`), with a
/// scheduling priority (`nice -n`, negative = ahead of the compilers other
/// people run on a shared machine), and optionally as another user. Both
/// tools exec the program, so the child's pid is the program's.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// `taskset -c` CPU list.
    pub cpus: Option<String>,
    /// `nice -n` adjustment.
    pub nice: Option<i32>,
    /// Run as this user and group id (the transparent setups' proxies, whose
    /// connections the REDIRECT rule exempts by owner). The user is set before
    /// `nice` would run, and a user other than root cannot lower its own
    /// nice value, so [`Managed::spawn`] renices the child from here instead.
    pub user: Option<u32>,
}

impl Placement {
    /// A command that runs `program` placed.
    pub fn command(&self, program: &Path) -> Command {
        let mut words: Vec<std::ffi::OsString> = Vec::new();
        if let (Some(nice), None) = (self.nice, self.user) {
            words.extend(["nice".into(), "-n".into(), nice.to_string().into()]);
        }
        if let Some(cpus) = &self.cpus {
            words.extend(["taskset".into(), "-c".into(), cpus.into()]);
        }
        words.push(program.into());
        let mut command = Command::new(&words[0]);
        command.args(&words[1..]);
        if let Some(user) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(user).gid(user);
        }
        command
    }

    /// For a child started as another user: `renice` it to the nice value
    /// the others get from `nice` (a warning if that fails).
    fn renice_other_user(&self, pid: u32) {
        let (Some(nice), Some(_)) = (self.nice, self.user) else {
            return;
        };
        let status = Command::new("renice")
            .args(["-n", &nice.to_string(), "-p", &pid.to_string()])
            .stdout(Stdio::null())
            .status();
        if !status.is_ok_and(|status| status.success()) {
            eprintln!("weft-bench: could not renice process {pid} to {nice}");
        }
    }
}

/// A free loopback port (bound and released; good enough on a quiet host).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Status code of a plain `GET path` over HTTP/1.1 (`Connection: close`).
pub fn http_get_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let status = std::str::from_utf8(&head[9..12])?.parse()?;
    Ok(status)
}

/// Status code and body of a plain `GET path` over HTTP/1.1
/// (`Connection: close`, the body read to the end of the connection).
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no HTTP status in {:?}", response.lines().next()))?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_string()))
}
