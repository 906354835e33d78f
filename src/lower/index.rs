//! Index helpers shared by the lowerings: row-major strides, loop nests, window taps
//! guarded only on the axes that have padding.

use super::loops::{for_, Ix, Stmt};
use crate::ir::Window;

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Loops over `dims` (outermost first) named `{prefix}0`, `{prefix}1`, ... around `body`.
pub(super) fn nest(prefix: &str, dims: &[usize], body: Vec<Stmt>) -> Vec<Stmt> {
    dims.iter()
        .enumerate()
        .rev()
        .fold(body, |body, (d, &n)| for_(&format!("{prefix}{d}"), n, body))
}

/// `sum(var_d * strides[d])` for the variables `{prefix}d`.
pub(super) fn ix(prefix: &str, strides: &[usize]) -> Ix {
    strides
        .iter()
        .enumerate()
        .fold(Ix::default(), |ix, (d, &s)| {
            ix.plus(&format!("{prefix}{d}"), s)
        })
}

/// The taps of a window at output position `o*`, each guarded where it can fall into the
/// padding; `inner(tap_index, input_index)` builds the innermost statements.
pub(super) fn taps(
    w: &Window,
    in_shape: &[usize],
    out_shape: &[usize],
    inner: impl FnOnce(Ix, Ix) -> Vec<Stmt>,
) -> Vec<Stmt> {
    let rank = w.size.len();
    let xst = strides(in_shape);
    let tap_st = strides(&w.size);
    let mut tap = Ix::default();
    let mut input = Ix::default();
    for d in 0..rank {
        tap = tap.plus(&format!("t{d}"), tap_st[d]);
        input = input
            .plus(&format!("o{d}"), w.strides[d] * xst[d])
            .plus(&format!("t{d}"), w.dilation[d] * xst[d])
            .offset(-((w.padding[d].0 * xst[d]) as isize));
    }
    let mut body = inner(tap, input);
    for d in (0..rank).rev() {
        let (before, _) = w.padding[d];
        // The last tap of the last window must stay inside the unpadded axis.
        let last = (out_shape[d] - 1) * w.strides[d] + (w.size[d] - 1) * w.dilation[d];
        let always_inside = before == 0 && last < in_shape[d];
        if !always_inside {
            let pos = Ix::default()
                .plus(&format!("o{d}"), w.strides[d])
                .plus(&format!("t{d}"), w.dilation[d]);
            body = vec![Stmt::IfInRange {
                ix: pos,
                lo: before,
                hi: before + in_shape[d],
                body,
            }];
        }
        body = for_(&format!("t{d}"), w.size[d], body);
    }
    body
}
