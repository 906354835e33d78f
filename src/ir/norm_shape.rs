//! Shape inference for the normalisation ops.

use super::op::NormAxis;
use super::{checked_numel, numel};

/// [`super::Op::Normalize`]: the view must cover the input exactly, and `gamma` / `beta`
/// must hold every index the view reaches.
pub fn normalize(
    x: &[usize],
    view: &[NormAxis],
    gamma: &Option<Vec<f32>>,
    beta: &Option<Vec<f32>>,
) -> Result<Vec<usize>, String> {
    let lens: Vec<usize> = view.iter().map(|a| a.len).collect();
    if checked_numel(&lens) != Some(numel(x)) || view.iter().any(|a| a.len == 0) {
        return Err(format!(
            "normalisation view {lens:?} does not cover input shape {x:?}"
        ));
    }
    if !view.iter().any(|a| a.reduced) {
        return Err("normalisation reduces over no axis".into());
    }
    let reach = view
        .iter()
        .try_fold(1usize, |acc, a| {
            (a.len - 1)
                .checked_mul(a.param_stride)
                .and_then(|v| v.checked_add(acc))
        })
        .ok_or("normalisation parameters are too large")?;
    for (name, param) in [("gamma", gamma), ("beta", beta)] {
        if let Some(p) = param {
            if p.len() < reach {
                return Err(format!(
                    "{name} has {} values, the view reads {reach}",
                    p.len()
                ));
            }
        }
    }
    Ok(x.to_vec())
}
