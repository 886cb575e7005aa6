//! Child processes kept running: each in its own process group (so Ctrl-C
//! in the terminal reaches only `weft up`, which stops them in order and
//! nothing they spawned is left behind), its output appended to its log
//! file, restarted with exponential backoff when it exits.
//!
//! ```text
//! spawn ─► running ──exits──► log "exited …, restarting in 1s" ─► sleep(backoff) ─► spawn
//!             │ stop                                                  │ stop
//!             ▼                                                       ▼
//!   SIGTERM to the group ─► wait (grace) ─► SIGKILL to the group      done
//! ```
//!
//! [`next_backoff`] is the pure decision.

use std::io::Write;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::PoisonError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first restart delay.
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// The longest restart delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long before exiting starts again from [`MIN_BACKOFF`].
pub const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// Its log file could not be opened.
    #[error("{name}: cannot open its log {path}: {source}")]
    Log {
        /// The child's name.
        name: String,
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error("{name}: cannot start {program}: {source}")]
    Spawn {
        /// The child's name.
        name: String,
        /// The program.
        program: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Its name in messages: `controller`, `demo/web app`, `demo/web proxy`.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment added to `weft up`'s own.
    pub env: Vec<(String, String)>,
    /// Variables of `weft up`'s own environment the child does not get
    /// (`env` may still set them).
    pub env_remove: Vec<String>,
    /// Its working directory (default: `weft up`'s).
    pub working_dir: Option<PathBuf>,
    /// The file its stdout and stderr are appended to.
    pub log: PathBuf,
}

/// The next restart delay: the minimum for a first restart or after a
/// healthy run, else the previous one doubled, up to the maximum.
pub fn next_backoff(previous: Option<Duration>, ran_for: Duration) -> Duration {
    match previous {
        Some(previous) if ran_for < HEALTHY_RUN => (previous * 2).min(MAX_BACKOFF),
        _ => MIN_BACKOFF,
    }
}

/// The children, kept running until [`Supervisor::stop`].
#[derive(Default)]
pub struct Supervisor {
    children: Vec<Supervised>,
}

struct Supervised {
    name: String,
    pid: Arc<Mutex<Option<u32>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Starts `spec` (an error if the first start fails) and keeps it running.
    pub fn start(&mut self, spec: ProcessSpec, grace: Duration) -> Result<(), SuperviseError> {
        let child = spawn(&spec)?;
        let pid = Arc::new(Mutex::new(child.id()));
        let (stop, stopped) = watch::channel(false);
        let name = spec.name.clone();
        let task = tokio::spawn(keep_running(spec, child, pid.clone(), stopped, grace));
        self.children.push(Supervised {
            name,
            pid,
            stop,
            task,
        });
        Ok(())
    }

    /// The current process id of each child, by name.
    pub fn pids(&self) -> Vec<(String, Option<u32>)> {
        self.children
            .iter()
            .map(|child| {
                (
                    child.name.clone(),
                    *child.pid.lock().unwrap_or_else(PoisonError::into_inner),
                )
            })
            .collect()
    }

    /// Stops every child at once (SIGTERM, then SIGKILL after the grace
    /// period) and waits until all have exited.
    pub async fn stop(self) {
        for child in &self.children {
            let _ = child.stop.send(true);
        }
        for child in self.children {
            let _ = child.task.await;
        }
    }
}

/// Runs the child, restarting it with backoff, until stopped.
async fn keep_running(
    spec: ProcessSpec,
    mut child: Child,
    pid: Arc<Mutex<Option<u32>>>,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut backoff: Option<Duration> = None;
    loop {
        let started = Instant::now();
        let status = tokio::select! {
            status = child.wait() => status,
            _ = stopped.changed() => {
                terminate(&mut child, grace).await;
                *pid.lock().unwrap_or_else(PoisonError::into_inner) = None;
                return;
            }
        };
        *pid.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let mut delay = next_backoff(backoff, started.elapsed());
        let why = match status {
            Ok(status) => describe(status),
            Err(error) => format!("could not be waited for: {error}"),
        };
        let message = format!(
            "{} {why}; restarting in {:.1}s (log: {})",
            spec.name,
            delay.as_secs_f64(),
            spec.log.display()
        );
        eprintln!("weft: {message}");
        append_line(&spec, &format!("--- weft up: {message}"));
        loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stopped.changed() => return,
            }
            match spawn(&spec) {
                Ok(next) => {
                    *pid.lock().unwrap_or_else(PoisonError::into_inner) = next.id();
                    child = next;
                    backoff = Some(delay);
                    break;
                }
                Err(error) => {
                    delay = next_backoff(Some(delay), Duration::ZERO);
                    eprintln!("weft: {error}; retrying in {:.1}s", delay.as_secs_f64());
                }
            }
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => format!("exited ({status})"),
    }
}

fn append_line(spec: &ProcessSpec, line: &str) {
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
    {
        let _ = writeln!(file, "{line}");
    }
}

/// Starts the child in its own process group, output to its log.
fn spawn(spec: &ProcessSpec) -> Result<Child, SuperviseError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(|source| SuperviseError::Log {
            name: spec.name.clone(),
            path: spec.log.clone(),
            source,
        })?;
    let stderr = log.try_clone().map_err(|source| SuperviseError::Log {
        name: spec.name.clone(),
        path: spec.log.clone(),
        source,
    })?;
    let mut command = Command::new(&spec.program);
    for name in &spec.env_remove {
        command.env_remove(name);
    }
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &spec.working_dir {
        command.current_dir(dir);
    }
    command.spawn().map_err(|source| SuperviseError::Spawn {
        name: spec.name.clone(),
        program: spec.program.clone(),
        source,
    })
}

/// SIGTERM to the child's process group; SIGKILL if it is still there
/// after `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    let Some(group) = child.id().and_then(|id| Pid::from_raw(id as i32)) else {
        return;
    };
    let _ = kill_process_group(group, Signal::TERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = kill_process_group(group, Signal::KILL);
        let _ = child.wait().await;
    }
    // Whatever else the child started in its group goes too.
    let _ = kill_process_group(group, Signal::KILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_resets() {
        let ms = Duration::from_millis;
        for (current, ran_for, expected) in [
            (None, ms(100), MIN_BACKOFF),
            (Some(ms(500)), ms(100), ms(1000)),
            (Some(ms(1000)), ms(100), ms(2000)),
            (Some(ms(20_000)), ms(100), MAX_BACKOFF),
            (Some(MAX_BACKOFF), ms(100), MAX_BACKOFF),
            (Some(ms(16_000)), HEALTHY_RUN, MIN_BACKOFF),
        ] {
            assert_eq!(
                next_backoff(current, ran_for),
                expected,
                "{current:?} {ran_for:?}"
            );
        }
    }
}
