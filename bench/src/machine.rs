//! The machine and the tools, for the report.

use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpu: String,
    pub logical_cores: usize,
    /// `cpu MHz` of the first core in /proc/cpuinfo.
    pub mhz: f64,
    /// Of avx2, fma, avx512f and the other avx512 flags: those the CPU has.
    pub simd_flags: Vec<String>,
    pub rustc: String,
    pub gxx: String,
    pub date: String,
    /// /proc/loadavg when the run started (the machine may be shared).
    pub load: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let flags = field("flags");
        let simd_flags = flags
            .split_whitespace()
            .filter(|f| matches!(*f, "avx2" | "fma") || f.starts_with("avx512"))
            .map(str::to_string)
            .collect();
        Machine {
            cpu: field("model name"),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mhz: field("cpu MHz").parse().unwrap_or(0.0),
            simd_flags,
            rustc: first_line("rustc", &["--version"]),
            gxx: first_line("g++", &["--version"]),
            date: first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            load: std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        }
    }

    /// f32 FLOP per second at the FMA peak of one core: 2 FMA pipes x 8 f32 lanes x 2 flops
    /// (multiply and add) = 32 flops per cycle at the `cpu MHz` clock.
    pub fn peak_gflops(&self) -> f64 {
        32.0 * self.mhz / 1000.0
    }
}

fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("{program}: not found"))
}

/// The version of `package` in the workspace's Cargo.lock.
pub fn locked_version(package: &str) -> Option<String> {
    let lock = std::fs::read_to_string(crate::repo_root().join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            let version = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(version.trim_matches('"').to_string());
        }
    }
    None
}
