//! Reference evaluation of the integer preprocessing ops, in the same operation order as
//! the generated loops (`lower::preprocess`).

use crate::ir::{numel, EncodeMode, Lookup};

/// `Bucketize`: each value's bucket, the number of boundaries at or below it.
pub fn bucketize(x: &[f32], boundaries: &[f32]) -> Vec<f32> {
    x.iter()
        .map(|&v| {
            let above = boundaries.iter().filter(|&&b| b > v).count();
            (boundaries.len() - above) as f32
        })
        .collect()
}

/// `Lookup`: each value's entry in the table (integer keys).
pub fn lookup(x: &[f32], lookup: &Lookup) -> Vec<f32> {
    x.iter().map(|&v| look_up(lookup, trunc(v))).collect()
}

/// Truncation toward zero (what Keras's cast to an integer does); NaN stays NaN.
pub fn trunc(v: f32) -> f32 {
    v.trunc()
}

pub fn encode(x: &[f32], shape: &[usize], depth: usize, mode: EncodeMode) -> Vec<f32> {
    // `[n, inner]` combined over `n`, or `n = 1` (one-hot: every value its own vector).
    let (n, inner) = match mode {
        EncodeMode::OneHot => (1, x.len()),
        EncodeMode::MultiHot | EncodeMode::Count => {
            let n = shape.first().copied().unwrap_or(1);
            (n, numel(shape) / n.max(1))
        }
    };
    let mut y = vec![0.0f32; inner * depth];
    for j in 0..n {
        for i in 0..inner {
            let v = trunc(x[j * inner + i]);
            for t in 0..depth {
                if v == t as f32 {
                    let out = &mut y[i * depth + t];
                    *out = match mode {
                        EncodeMode::Count => *out + 1.0,
                        EncodeMode::OneHot | EncodeMode::MultiHot => 1.0,
                    };
                }
            }
        }
    }
    y
}

/// One value through the table; `v` is already an integer (or NaN).
fn look_up(lookup: &Lookup, v: f32) -> f32 {
    let mut y = match lookup.oov_buckets {
        Some((n, start)) => floor_mod(v, n as f32) + start,
        None => lookup.default,
    };
    for (k, value) in lookup.keys.iter().zip(&lookup.values) {
        if v == *k {
            y = *value;
        }
    }
    if let Some((key, value)) = lookup.mask {
        if v == key {
            y = value;
        }
    }
    y
}

/// `floormod(v, n)` for an integer `v`, as the generated code computes it: a truncated
/// quotient, then the remainder brought into `0..n`.
pub fn floor_mod(v: f32, n: f32) -> f32 {
    let q = trunc(v / n);
    let mut r = v - q * n;
    if 0.0 > r {
        r += n;
    }
    if 0.0 > r {
        r += n;
    }
    if r > n - 1.0 {
        r -= n;
    }
    r
}
