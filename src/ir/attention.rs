//! Shape rules of the attention ops: batched matrix products over the last two axes.

/// What Keras adds to an attention score that is masked out (Attention subtracts `1e9`,
/// MultiHeadAttention's softmax adds `-1e9`); the softmax then gives it exactly 0.
pub const MASKED_SCORE: f32 = -1.0e9;

/// `[*b, m, k] x [*b, k, n] -> [*b, m, n]`, the leading (batch) axes equal.
pub(super) fn matmul_shape(inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
    let [a, b] = inputs else {
        return Err(format!("expects two inputs, got {}", inputs.len()));
    };
    let (Some((&[m, k], batch_a)), Some((&[k2, n], batch_b))) = (split2(a), split2(b)) else {
        return Err(format!(
            "needs two inputs of rank 2 or more, got shapes {a:?} and {b:?}"
        ));
    };
    if batch_a != batch_b || k != k2 {
        return Err(format!(
            "cannot multiply matrices of shapes {a:?} and {b:?}"
        ));
    }
    let mut out = batch_a.to_vec();
    out.extend([m, n]);
    Ok(out)
}

/// The last two axes and the leading ones.
fn split2(shape: &[usize]) -> Option<(&[usize; 2], &[usize])> {
    let at = shape.len().checked_sub(2)?;
    let (batch, last) = shape.split_at(at);
    Some((last.try_into().ok()?, batch))
}

/// A per-feature scale must have one value per contracted feature.
pub(super) fn check_scale(
    inputs: &[&[usize]],
    scale: Option<&[f32]>,
    out: Vec<usize>,
) -> Result<Vec<usize>, String> {
    let features = inputs.first().and_then(|a| a.last()).copied().unwrap_or(0);
    match scale {
        Some(s) if s.len() != features => Err(format!(
            "scale has {} values, expected one per feature ({features})",
            s.len()
        )),
        _ => Ok(out),
    }
}
