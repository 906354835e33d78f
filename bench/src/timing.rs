//! Calibration and interleaved rounds.

use crate::engine::{Calibrated, Engine};

/// Target length of one timed slice.
const SLICE_NS: f64 = 15e6;
/// A slice at least this long ends calibration.
const MIN_SLICE_NS: u64 = 10_000_000;

/// Predictions per slice so that one slice takes about 10-20 ms.
pub fn calibrate(engine: &mut dyn Engine) -> Result<u64, String> {
    let mut n = 1u64;
    loop {
        let ns = engine.time(n)?.max(1);
        if ns >= MIN_SLICE_NS {
            return Ok(n);
        }
        let scale = (SLICE_NS / ns as f64).clamp(1.5, 100.0);
        n = ((n as f64 * scale).ceil() as u64).max(n + 1);
    }
}

/// Per-call nanoseconds of every round.
#[derive(Debug, Clone, Default)]
pub struct Samples(pub Vec<f64>);

/// Median, spread and minimum of the per-call times (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub min: f64,
    pub rounds: usize,
}

impl Samples {
    pub fn stats(&self) -> Stats {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let pos = q * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Stats {
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            min: v[0],
            rounds: v.len(),
        }
    }
}

/// Runs `rounds` rounds; in each, every engine runs one slice of its calibrated size in
/// turn (round robin), so that drifts of the machine hit every engine alike. An engine
/// that fails leaves the rounds with its error.
pub fn interleave(engines: &mut [Calibrated], rounds: usize) -> Vec<Result<Samples, String>> {
    let mut samples = vec![Ok(Samples::default()); engines.len()];
    for _ in 0..rounds {
        for ((engine, n), s) in engines.iter_mut().zip(&mut samples) {
            if let Ok(times) = s {
                match engine.time(*n) {
                    Ok(ns) => times.0.push(ns as f64 / *n as f64),
                    Err(e) => *s = Err(e),
                }
            }
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_interpolate() {
        let s = Samples((1..=11).map(f64::from).collect()).stats();
        assert_eq!((s.median, s.p10, s.p90, s.min), (6.0, 2.0, 10.0, 1.0));
    }
}
