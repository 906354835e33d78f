//! What every engine answers to, and the worker process that speaks the line protocol:
//! `runner INPUT_PATH` prints `ready ...`; then `out` answers one line of output floats,
//! `time N` runs N predictions back to back and answers the elapsed nanoseconds, and
//! `quit` (or EOF) ends it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// One engine running one model on one fixed input.
pub trait Engine {
    /// The model's output on the input.
    fn output(&mut self) -> Result<Vec<f32>, String>;
    /// Nanoseconds for `n` predictions back to back.
    fn time(&mut self, n: u64) -> Result<u64, String>;
}

/// Starts an engine on a model file for a fixture; `Err` says why it is skipped.
pub type Starter = dyn Fn(&Path, &crate::fixture::Fixture) -> Result<Box<dyn Engine>, String>;

/// An engine with the predictions per slice it was calibrated to.
pub type Calibrated = (Box<dyn Engine>, u64);

/// A worker process.
pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The words after `ready` on the first line (a peer's package and version).
    pub ready: Vec<String>,
}

/// Why a worker did not start.
#[derive(Debug)]
pub enum StartError {
    /// Exit code 3: the peer's package is not installed.
    Missing(String),
    Failed(String),
}

impl Worker {
    /// Starts `command` (stderr goes to `stderr_log`) and waits for its `ready` line.
    pub fn start(mut command: Command, stderr_log: &Path) -> Result<Worker, StartError> {
        let log = std::fs::File::create(stderr_log)
            .map_err(|e| StartError::Failed(format!("{}: {e}", stderr_log.display())))?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| StartError::Failed(format!("cannot start {command:?}: {e}")))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let mut words = line.split_whitespace().map(str::to_string);
        if words.next().as_deref() == Some("ready") {
            return Ok(Worker {
                child,
                stdin,
                stdout,
                ready: words.collect(),
            });
        }
        drop(stdin);
        let status = child.wait().ok().and_then(|s| s.code());
        let tail = log_tail(stderr_log);
        Err(if status == Some(3) {
            StartError::Missing(tail)
        } else {
            StartError::Failed(format!(
                "no `ready` line (got {:?}, exit code {status:?}): {tail}",
                line.trim()
            ))
        })
    }

    fn ask(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.stdin, "{command}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("worker gone: {e}"))?;
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line.trim().to_string()),
            _ => Err("worker closed its output".into()),
        }
    }
}

/// The last lines a worker wrote to its stderr log, on one line.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

impl Engine for Worker {
    fn output(&mut self) -> Result<Vec<f32>, String> {
        self.ask("out")?
            .split_whitespace()
            .map(|v| match v {
                "nan" | "NaN" | "-nan" => Ok(f32::NAN),
                "inf" => Ok(f32::INFINITY),
                "-inf" => Ok(f32::NEG_INFINITY),
                v => v.parse().map_err(|_| format!("bad output value {v:?}")),
            })
            .collect()
    }

    fn time(&mut self, n: u64) -> Result<u64, String> {
        let answer = self.ask(&format!("time {n}"))?;
        answer
            .parse()
            .map_err(|_| format!("bad time answer {answer:?}"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}
