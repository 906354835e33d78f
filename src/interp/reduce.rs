//! Reference semantics of reductions over axes.

use super::index::{flat, indices, strides};
use crate::ir::{numel, CumulativeKind, ReduceKind};

pub fn reduce(
    inputs: &[(&[f32], &[usize])],
    out_shape: &[usize],
    kind: ReduceKind,
    axes: &[usize],
) -> Vec<f32> {
    let (x, xs) = inputs[0];
    let mut out = vec![0.0f32; numel(out_shape)];
    let xst = strides(xs);

    // The output with the reduced axes kept (size 1) has the same flat layout.
    let kept: Vec<usize> = xs
        .iter()
        .enumerate()
        .map(|(d, &len)| if axes.contains(&d) { 1 } else { len })
        .collect();
    let kst = strides(&kept);
    let count: usize = axes.iter().map(|&a| xs[a]).product();
    let start = match kind {
        ReduceKind::Sum | ReduceKind::Mean => 0.0,
        ReduceKind::Max => f32::NEG_INFINITY,
        ReduceKind::Min => f32::INFINITY,
    };
    out.iter_mut().for_each(|v| *v = start);
    for i in indices(xs) {
        let o: Vec<usize> = (0..i.len())
            .map(|d| if axes.contains(&d) { 0 } else { i[d] })
            .collect();
        let slot = &mut out[flat(&o, &kst)];
        let v = x[flat(&i, &xst)];
        *slot = match kind {
            ReduceKind::Sum | ReduceKind::Mean => *slot + v,
            // As max pooling: `v > m ? v : m`.
            ReduceKind::Max => {
                if v > *slot {
                    v
                } else {
                    *slot
                }
            }
            ReduceKind::Min => {
                if v < *slot {
                    v
                } else {
                    *slot
                }
            }
        };
    }
    if kind == ReduceKind::Mean {
        out.iter_mut().for_each(|v| *v /= count as f32);
    }
    out
}

/// The running sum or product along `axis`, each line accumulated in order.
pub fn cumulative((x, shape): (&[f32], &[usize]), kind: CumulativeKind, axis: usize) -> Vec<f32> {
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out = x.to_vec();
    for line in out.chunks_mut(len * inner) {
        for i in 1..len {
            for j in 0..inner {
                let (before, at) = (line[(i - 1) * inner + j], &mut line[i * inner + j]);
                *at = match kind {
                    CumulativeKind::Sum => before + *at,
                    CumulativeKind::Product => before * *at,
                };
            }
        }
    }
    out
}
