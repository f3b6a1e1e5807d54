//! One measured run: exec a bootstrap against a fresh [`Emulator`], time its first request for work and
//! its first answer, let it answer the planned invocations, read its peak RSS, kill it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use serde::Serialize;

use crate::runtime_api::{Emulator, Plan, Progress};

/// A bootstrap and what it is run with.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub bootstrap: PathBuf,
    pub event: Bytes,
    /// Set on top of the Lambda-like base environment ([`lambda_env`]).
    pub env: Vec<(String, String)>,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub case: String,
    /// exec -> first `GET .../invocation/next`.
    pub ready_ms: f64,
    /// exec -> first `POST .../invocation/{id}/response` (or `/error`).
    pub first_answer_ms: f64,
    pub invocations: u64,
    pub responses: u64,
    pub errors: u64,
    /// First request for work -> last answer, per invocation (absent for a one-invocation run).
    pub warm_us_per_invocation: Option<f64>,
    /// `VmHWM` of the process once it has answered every invocation (and waits for the next).
    pub peak_rss_kib: u64,
    /// `VmRSS` at the same moment.
    pub rss_kib: u64,
}

/// How long a run may take at most before it is called hung.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub ready: Duration,
    pub all_answers: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ready: Duration::from_secs(20),
            all_answers: Duration::from_secs(300),
        }
    }
}

/// The variables Lambda sets for a custom runtime (`provided.al2023`), for `function` with 256 MB, and
/// the Runtime API at `api`. The bench's own variables come on top.
pub fn lambda_env(function: &str, api: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/01/[$LATEST]coldstart".to_owned(),
        ),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The last bytes a stream wrote (for the error message when a bootstrap fails).
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<Vec<u8>>>);

impl Tail {
    const KEEP: usize = 4096;

    fn drain(&self, mut from: impl Read + Send + 'static) {
        let tail = self.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(n) = from.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let mut kept = tail.0.lock().unwrap_or_else(|p| p.into_inner());
                kept.extend_from_slice(&buffer[..n]);
                if kept.len() > 2 * Self::KEEP {
                    let cut = kept.len() - Self::KEEP;
                    kept.drain(..cut);
                }
            }
        });
    }

    fn text(&self) -> String {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let start = kept.len().saturating_sub(Self::KEEP);
        String::from_utf8_lossy(&kept[start..]).into_owned()
    }
}

/// `VmHWM` and `VmRSS` of `pid` in KiB.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    Ok((field_kib(&status, "VmHWM")?, field_kib(&status, "VmRSS")?))
}

fn field_kib(status: &str, name: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no {name} in /proc/PID/status"))
}

struct Running {
    child: Child,
    stdout: Tail,
    stderr: Tail,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    fn output(&self) -> String {
        format!(
            "stderr: {}\nstdout: {}",
            self.stderr.text(),
            self.stdout.text()
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

/// Wait until `done` holds for the progress, the child exits, or `limit` passes.
async fn wait_until(
    running: &mut Running,
    progress: &mut tokio::sync::watch::Receiver<Progress>,
    limit: Duration,
    what: &str,
    done: impl Fn(&Progress) -> bool,
) -> anyhow::Result<Progress> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let now = *progress.borrow_and_update();
        if done(&now) {
            return Ok(now);
        }
        if now.init_error {
            bail!("the bootstrap reported an init error\n{}", running.output());
        }
        if let Some(status) = running.child.try_wait()? {
            bail!(
                "the bootstrap exited ({status}) before {what}\n{}",
                running.output()
            );
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("no {what} within {limit:?}\n{}", running.output());
        }
        // Woken by the emulator's next change, or after a short while to look at the child again.
        let _ = tokio::time::timeout(Duration::from_millis(20), progress.changed()).await;
    }
}

fn millis(from: Instant, to: Option<Instant>) -> f64 {
    to.map(|t| t.duration_since(from).as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

/// Run `case` once for `invocations` invocations. Returns the run and the first answer's body.
pub async fn run_once(
    case: &Case,
    invocations: u64,
    limits: Limits,
) -> anyhow::Result<(Run, Option<Bytes>, Option<Bytes>)> {
    let emulator = Emulator::new(Plan {
        event: case.event.clone(),
        invocations,
        function_arn: format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            case.name
        ),
        timeout: Duration::from_secs(10),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the Runtime API on loopback")?;
    let api = listener.local_addr()?.to_string();
    let router = emulator.router();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let mut progress = emulator.progress();

    let mut command = Command::new(&case.bootstrap);
    command
        .env_clear()
        .envs(lambda_env(&case.name, &api))
        .envs(case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            server.abort();
            return Err(error).with_context(|| format!("cannot exec {}", case.bootstrap.display()));
        }
    };
    let (stdout, stderr) = (Tail::default(), Tail::default());
    if let Some(out) = child.stdout.take() {
        stdout.drain(out);
    }
    if let Some(err) = child.stderr.take() {
        stderr.drain(err);
    }
    let mut running = Running {
        child,
        stdout,
        stderr,
        server,
    };

    wait_until(
        &mut running,
        &mut progress,
        limits.ready,
        "first request for work",
        |p| p.first_next.is_some(),
    )
    .await?;
    wait_until(
        &mut running,
        &mut progress,
        limits.ready,
        "first answer",
        |p| p.first_answer.is_some(),
    )
    .await?;
    let end = wait_until(
        &mut running,
        &mut progress,
        limits.all_answers,
        "answer to every invocation",
        |p| p.done.is_some(),
    )
    .await?;
    // Every invocation answered: the runtime is back on `next`, held open. Read its memory now.
    let (peak_rss_kib, rss_kib) = memory_kib(running.child.id())?;
    let warm_us_per_invocation = match (end.first_next, end.done) {
        (Some(first), Some(done)) if invocations > 1 => {
            Some(done.duration_since(first).as_secs_f64() * 1e6 / invocations as f64)
        }
        _ => None,
    };
    let answers = emulator.answers();
    drop(running);
    Ok((
        Run {
            case: case.name.clone(),
            ready_ms: millis(started, end.first_next),
            first_answer_ms: millis(started, end.first_answer),
            invocations,
            responses: end.responses,
            errors: end.errors,
            warm_us_per_invocation,
            peak_rss_kib,
            rss_kib,
        },
        answers.first_response,
        answers.first_error,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_memory_fields_of_proc_status() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  20000 kB\nVmHWM:\t    9188 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(field_kib(status, "VmHWM").expect("hwm"), 9188);
        assert_eq!(field_kib(status, "VmRSS").expect("rss"), 9000);
        assert!(field_kib(status, "VmSwap").is_err());
        assert!(field_kib("VmHWM:\tlots kB\n", "VmHWM").is_err());
        // Our own process has both.
        let (hwm, rss) = memory_kib(std::process::id()).expect("own status");
        assert!(hwm >= rss && rss > 0);
    }

    #[test]
    fn the_lambda_environment_names_the_runtime_api() {
        let env = lambda_env("ingest", "127.0.0.1:9001");
        assert!(env
            .iter()
            .any(|(k, v)| k == "AWS_LAMBDA_RUNTIME_API" && v == "127.0.0.1:9001"));
        for required in [
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_VERSION",
        ] {
            assert!(env.iter().any(|(k, _)| k == required), "{required}");
        }
    }

    #[tokio::test]
    async fn a_bootstrap_that_exits_is_reported_with_its_output() {
        let case = Case {
            name: "broken".into(),
            bootstrap: "/bin/sh".into(),
            event: Bytes::from_static(b"{}"),
            env: vec![],
        };
        // /bin/sh with no script on stdin (null) exits at once without asking for work.
        let error = run_once(&case, 1, Limits::default())
            .await
            .expect_err("exits before asking for work");
        assert!(format!("{error:#}").contains("exited"), "{error:#}");
    }
}
