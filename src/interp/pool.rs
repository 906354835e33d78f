//! Reference semantics of pooling over windows and globally.

use super::index::{flat, indices, strides, tap_position};
use crate::ir::{numel, PoolKind, Window};

pub fn pool(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    kind: PoolKind,
    window: &Window,
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let os = strides(out_shape);
    let xst = strides(xs);

    let rank = window.size.len();
    let channels = xs[rank];
    for o in indices(&out_shape[..rank]) {
        for c in 0..channels {
            let (mut acc, mut count) = (0.0f32, 0usize);
            let mut max = f32::NEG_INFINITY;
            for t in indices(&window.size) {
                if let Some(p) = tap_position(&o, &t, window, xs) {
                    let v = x[flat(&p, &xst) + c];
                    acc += v;
                    count += 1;
                    // As the generated code: a NaN in the window is skipped.
                    if v > max {
                        max = v;
                    }
                }
            }
            out[flat(&o, &os) + c] = match kind {
                PoolKind::Max => max,
                PoolKind::Average => acc / count as f32,
            };
        }
    }
    out
}

pub fn global_pool(inputs: &[(&[f32], &[usize])], out_shape: &[usize], kind: PoolKind) -> Vec<f32> {
    let x = inputs[0].0;
    let mut out = vec![0.0f32; numel(out_shape)];

    let channels = out_shape[0];
    let positions = x.len() / channels;
    for (c, v) in out.iter_mut().enumerate() {
        let values = (0..positions).map(|p| x[p * channels + c]);
        *v = match kind {
            PoolKind::Max => values.fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m }),
            PoolKind::Average => values.sum::<f32>() / positions as f32,
        };
    }
    out
}
