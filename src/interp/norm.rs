//! Reference evaluation of the normalisation ops, in the same operation order as the
//! generated loops (`lower::norm`).

use crate::ir::{NormAxis, NormKind};

/// Flat input index and parameter index of each position of `axes`, in row-major order.
fn positions(view: &[NormAxis], axes: &[usize]) -> Vec<(usize, usize)> {
    let mut strides = vec![1usize; view.len()];
    for a in (0..view.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * view[a + 1].len;
    }
    let mut out = vec![(0usize, 0usize)];
    for &a in axes {
        let (stride, pstride, len) = (strides[a], view[a].param_stride, view[a].len);
        out = out
            .into_iter()
            .flat_map(|(i, p)| (0..len).map(move |k| (i + k * stride, p + k * pstride)))
            .collect();
    }
    out
}

pub fn normalize(
    view: &[NormAxis],
    kind: NormKind,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    x: &[f32],
) -> Vec<f32> {
    let kept: Vec<usize> = (0..view.len()).filter(|&a| !view[a].reduced).collect();
    let reduced: Vec<usize> = (0..view.len()).filter(|&a| view[a].reduced).collect();
    let inner = positions(view, &reduced);
    let n = inner.len() as f32;
    let mut y = vec![0.0; x.len()];
    for (base, pbase) in positions(view, &kept) {
        let at = |(i, p): (usize, usize)| (x[base + i], pbase + p);
        match kind {
            NormKind::Standardize { epsilon } | NormKind::RmsScale { epsilon } => {
                let mut sum = 0.0f32;
                for &pos in &inner {
                    sum += at(pos).0;
                }
                let mean = sum / n;
                let mut sq = 0.0f32;
                for &pos in &inner {
                    let d = at(pos).0 - mean;
                    sq += d * d;
                }
                let r = 1.0 / (sq / n + epsilon).sqrt();
                for &pos in &inner {
                    let (v, p) = at(pos);
                    y[base + pos.0] = match kind {
                        NormKind::RmsScale { .. } => {
                            let v = v * r;
                            gamma.map_or(v, |g| v * g[p])
                        }
                        _ => {
                            let inv = gamma.map_or(r, |g| r * g[p]);
                            match beta {
                                Some(b) => v * inv + (b[p] - mean * inv),
                                None => v * inv - mean * inv,
                            }
                        }
                    };
                }
            }
            NormKind::Rms { epsilon } => {
                let mut sq = 0.0f32;
                for &pos in &inner {
                    let v = at(pos).0;
                    sq += v * v;
                }
                let r = 1.0 / (sq / n + epsilon).sqrt();
                for &pos in &inner {
                    let (v, p) = at(pos);
                    let v = v * r;
                    y[base + pos.0] = gamma.map_or(v, |g| v * g[p]);
                }
            }
            NormKind::L2 { epsilon } => {
                let mut sq = 0.0f32;
                for &pos in &inner {
                    let v = at(pos).0;
                    sq += v * v;
                }
                let inv0 = 1.0 / sq.sqrt();
                let cap = 1.0 / epsilon;
                let inv = if cap < inv0 { cap } else { inv0 };
                for &pos in &inner {
                    y[base + pos.0] = at(pos).0 * inv;
                }
            }
        }
    }
    y
}
