//! What `generate` tells a person while it works: a spinner with the current step on stderr
//! when stderr is a terminal (nothing when it is a file or a pipe), then one summary line
//! of what was written. `--quiet` silences both.

use std::borrow::Cow;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::message;

pub struct Progress {
    spinner: Option<ProgressBar>,
    started: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Progress {
            spinner,
            started: Instant::now(),
            quiet,
        }
    }

    /// Shows the step now under way.
    pub fn step(&self, message: impl Into<Cow<'static, str>>) {
        if let Some(spinner) = &self.spinner {
            spinner.set_message(message);
        }
    }

    /// Prints a line above the spinner (a note from the model), or plainly without one.
    pub fn println(&self, line: &str) {
        match &self.spinner {
            Some(spinner) => spinner.suspend(|| message(line)),
            None => message(line),
        }
    }

    /// Removes the spinner (before the result or an error is printed).
    pub fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }

    /// The summary line: the files written with their sizes, then `what` (the model's
    /// size), and the time taken.
    pub fn summary(&self, files: &[PathBuf], what: &str) {
        self.finish();
        if self.quiet {
            return;
        }
        let files: Vec<String> = files
            .iter()
            .map(|p| {
                let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                format!("{} ({})", p.display(), bytes(size))
            })
            .collect();
        let time = self.started.elapsed();
        let time = if time.as_secs() == 0 {
            format!("{} ms", time.as_millis())
        } else {
            format!("{:.1} s", time.as_secs_f64())
        };
        message(&format!("wrote {}: {what}, in {time}", files.join(" and ")));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `1234567` as `1.2 MB`: sizes as a person reads them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `25636712` as `25,636,712`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
