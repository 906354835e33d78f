//! The integer preprocessing ops (CategoryEncoding, Discretization, IntegerLookup): their
//! parameters and shape inference. Values are read as integers the way Keras casts them
//! (an `i32` model input as is, an f32 truncated toward zero); results are small integers
//! held as f32 (exact below 2^24).

/// How [`super::Op::Encode`] combines the one-hot vectors of its input's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeMode {
    /// A vector per value: `[*s, depth]` (a last axis of 1 is replaced).
    OneHot,
    /// 1.0 where any value along the first axis hits: `[n, *s] -> [*s, depth]`.
    MultiHot,
    /// How many values along the first axis hit: `[n, *s] -> [*s, depth]`.
    Count,
}

/// [`super::Op::Lookup`]: a table from integer keys to values. For each input value `v`
/// (as an integer): `mask.1` when `v == mask.0`; else `values[j]` when `v == keys[j]`;
/// else, with `oov_buckets = Some((n, start))`, `floormod(v, n) + start`; else `default`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// Distinct integers, exact in f32 (|k| < 2^24).
    pub keys: Vec<f32>,
    /// One per key.
    pub values: Vec<f32>,
    pub default: f32,
    pub mask: Option<(f32, f32)>,
    pub oov_buckets: Option<(usize, f32)>,
}

/// Largest magnitude below which every integer is exact in f32.
pub const EXACT_INTEGER_LIMIT: f32 = 16_777_216.0;

/// [`super::Op::Encode`]'s output shape for input `x`.
pub fn encode_shape(x: &[usize], depth: usize, mode: EncodeMode) -> Result<Vec<usize>, String> {
    if depth == 0 {
        return Err("an encoding of depth 0".into());
    }
    let mut out = match mode {
        EncodeMode::OneHot => match x {
            [lead @ .., 1] => lead.to_vec(),
            _ => x.to_vec(),
        },
        EncodeMode::MultiHot | EncodeMode::Count => match x {
            [_, rest @ ..] => rest.to_vec(),
            [] => return Err("a multi-hot or count encoding needs an input axis".into()),
        },
    };
    out.push(depth);
    Ok(out)
}

/// [`super::Op::Bucketize`]: the boundaries must be sorted, without NaN.
pub fn bucketize_shape(x: &[usize], boundaries: &[f32]) -> Result<Vec<usize>, String> {
    if boundaries.iter().any(|b| b.is_nan()) || boundaries.windows(2).any(|w| w[0] > w[1]) {
        return Err("bucket boundaries must be sorted numbers".into());
    }
    Ok(x.to_vec())
}

/// [`super::Op::Lookup`]: keys (at least one) and values line up, keys are exact integers.
pub fn lookup_shape(x: &[usize], lookup: &Lookup) -> Result<Vec<usize>, String> {
    if lookup.keys.is_empty() || lookup.keys.len() != lookup.values.len() {
        return Err(format!(
            "{} lookup keys but {} values",
            lookup.keys.len(),
            lookup.values.len()
        ));
    }
    let exact = |k: f32| k.fract() == 0.0 && k.abs() < EXACT_INTEGER_LIMIT;
    if !lookup.keys.iter().all(|&k| exact(k)) || !lookup.mask.is_none_or(|(k, _)| exact(k)) {
        return Err("lookup keys must be integers below 2^24 in magnitude".into());
    }
    if lookup.oov_buckets.is_some_and(|(n, _)| n == 0) {
        return Err("zero out-of-vocabulary buckets".into());
    }
    Ok(x.to_vec())
}
