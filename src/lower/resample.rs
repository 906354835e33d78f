//! Lowers the resampling ops whose input positions are not affine in the output position
//! (resizes by any factor, adaptive pooling) to loops that read per-axis index tables:
//! weight arrays of whole numbers made here from [`crate::ir::resize_taps`] and
//! [`crate::ir::adaptive_windows`], read once per output row or column
//! ([`Index::Table`]), so the channel loop inside stays a plain strided walk.

use super::index::{ix, nest, strides};
use super::loops::{for_, Buf, Cond, Index, Ix, Place, Stmt, Unroll, Val, WriteOp};
use super::WeightId;
use crate::ir::{adaptive_windows, resize_taps, PoolKind, ResizeMethod};

/// `sum(var_d * strides[d])` over the variables `{prefix}d`.
fn index(prefix: &str, strides: &[usize]) -> Ix {
    strides
        .iter()
        .enumerate()
        .fold(Ix::default(), |ix, (d, &s)| {
            ix.plus(&format!("{prefix}{d}"), s)
        })
}

/// `let var = table[ix]`: a table of positions, added as the weight `weight` (f32 entries
/// are exact: tensor lengths stay far below 2^24).
fn let_table(
    add_weight: &mut super::AddWeight,
    weight: &str,
    var: String,
    values: impl ExactSizeIterator<Item = usize>,
    ix: Ix,
) -> Stmt {
    let data: Vec<f32> = values.map(|v| v as f32).collect();
    let table = add_weight(weight, vec![data.len()], &data);
    Stmt::LetIndex {
        name: var,
        value: Index::Table { table, ix },
    }
}

/// TensorFlow's resize (half-pixel centres) of the spatial axes of `[*spatial, C]`: per
/// output position along axis `d`, `lo{d}` / `hi{d}` / `w{d}` come from the axis's tables;
/// bilinear blends the corners the last axis first, as TensorFlow's
/// `top + (bottom - top) * y_lerp` with `top = top_left + (top_right - top_left) * x_lerp`.
pub fn resize(
    method: ResizeMethod,
    in_shape: &[usize],
    out_shape: &[usize],
    add_weight: &mut super::AddWeight,
) -> Vec<Stmt> {
    let rank = out_shape.len() - 1;
    let (xst, ost) = (strides(in_shape), strides(out_shape));
    let bilinear = method == ResizeMethod::Bilinear;
    // Per axis: the statements that fetch its taps for output position `o{d}`.
    let fetch: Vec<Vec<Stmt>> = (0..rank)
        .map(|d| {
            let taps = resize_taps(in_shape[d], out_shape[d], method);
            let at = Ix::default().plus(&format!("o{d}"), 1);
            let lo = format!("lo{d}");
            let mut stmts = vec![let_table(
                add_weight,
                &lo,
                lo.clone(),
                taps.iter().map(|t| t.lo),
                at.clone(),
            )];
            if bilinear {
                let hi = format!("hi{d}");
                stmts.push(let_table(
                    add_weight,
                    &hi,
                    hi.clone(),
                    taps.iter().map(|t| t.hi),
                    at.clone(),
                ));
                let lerp: Vec<f32> = taps.iter().map(|t| t.lerp).collect();
                let lerp = add_weight(&format!("lerp{d}"), vec![taps.len()], &lerp);
                stmts.push(Stmt::let_(format!("w{d}"), Val::load(Buf::W(lerp), at)));
            }
            stmts
        })
        .collect();
    let corner = |mask: usize| {
        let ix = (0..rank).fold(Ix::default().plus("c", 1), |ix, a| {
            let hi = mask >> (rank - 1 - a) & 1 == 1;
            ix.plus(&format!("{}{a}", if hi { "hi" } else { "lo" }), xst[a])
        });
        Val::load(Buf::In(0), ix)
    };
    let value = if bilinear {
        let mut values: Vec<Val> = (0..1 << rank).map(corner).collect();
        for a in (0..rank).rev() {
            let w = Val::var(&format!("w{a}"));
            values = values
                .chunks(2)
                .map(|pair| pair[0].clone() + (pair[1].clone() - pair[0].clone()) * w.clone())
                .collect();
        }
        values.pop().unwrap_or(Val::Const(0.0))
    } else {
        corner(0)
    };
    let channels = in_shape[rank];
    let mut body = for_(
        "c",
        channels,
        vec![Place::Out(index("o", &ost[..rank]).plus("c", 1)).set(value)],
    );
    for d in (0..rank).rev() {
        body = for_(
            &format!("o{d}"),
            out_shape[d],
            [fetch[d].clone(), body].concat(),
        );
    }
    body
}

/// Keras 3's adaptive pooling of the spatial axes of `[*spatial, C]`: output position
/// `o{d}` pools input positions `s{d} .. s{d} + n{d}` (start and length from the axis's
/// tables), the window loops running to the longest window with a guard where lengths
/// differ. The average divides by the number of positions pooled.
pub fn adaptive_pool(
    kind: PoolKind,
    in_shape: &[usize],
    out_shape: &[usize],
    add_weight: &mut super::AddWeight,
) -> Vec<Stmt> {
    let rank = out_shape.len() - 1;
    let channels = in_shape[rank];
    let (xst, ost) = (strides(in_shape), strides(out_shape));
    let mut fetch = Vec::with_capacity(rank);
    // Per axis: the longest window and whether some are shorter.
    let mut spans = Vec::with_capacity(rank);
    for d in 0..rank {
        let windows = adaptive_windows(in_shape[d], out_shape[d]);
        let lengths: Vec<usize> = windows.iter().map(|(s, e)| e - s).collect();
        let longest = lengths.iter().copied().max().unwrap_or(1);
        let ragged = lengths.iter().any(|&n| n != longest);
        let at = Ix::default().plus(&format!("o{d}"), 1);
        let mut stmts = vec![let_table(
            add_weight,
            &format!("start{d}"),
            format!("s{d}"),
            windows.iter().map(|w| w.0),
            at.clone(),
        )];
        if ragged {
            stmts.push(let_table(
                add_weight,
                &format!("len{d}"),
                format!("n{d}"),
                lengths.into_iter(),
                at,
            ));
        }
        fetch.push(stmts);
        spans.push((longest, ragged));
    }

    let at = index("o", &ost[..rank]).plus("c", 1);
    let input = (0..rank)
        .fold(Ix::default(), |ix, d| {
            ix.plus(&format!("s{d}"), xst[d])
                .plus(&format!("t{d}"), xst[d])
        })
        .plus("c", 1);
    let x = Val::load(Buf::In(0), input);
    let update = match kind {
        PoolKind::Max => Place::Out(at.clone()).set(Val::max(Val::load(Buf::Out, at.clone()), x)),
        PoolKind::Average => Place::Out(at.clone()).write(WriteOp::Add, x),
    };
    let mut taps = for_("c", channels, vec![update]);
    if kind == PoolKind::Average {
        taps.insert(0, Place::Var("count".into()).accumulate(Val::Const(1.0)));
    }
    for d in (0..rank).rev() {
        let (longest, ragged) = spans[d];
        let t = format!("t{d}");
        if ragged {
            taps = vec![Stmt::If(Cond::IndexLess(t.clone(), format!("n{d}")), taps)];
        }
        // Always a real loop: the guard compares the loop variable by name.
        taps = if ragged {
            vec![Stmt::For {
                var: t,
                count: longest,
                unroll: Unroll::Compiler,
                body: taps,
            }]
        } else {
            for_(&t, longest, taps)
        };
    }

    let start = match kind {
        PoolKind::Max => Val::Const(f32::NEG_INFINITY),
        PoolKind::Average => Val::Const(0.0),
    };
    let mut body = for_("c", channels, vec![Place::Out(at.clone()).set(start)]);
    if kind == PoolKind::Average {
        body.push(Stmt::let_mut("count".into(), Val::Const(0.0)));
    }
    body.extend(taps);
    if kind == PoolKind::Average {
        body.extend(for_(
            "c",
            channels,
            vec![Place::Out(at).write(WriteOp::Div, Val::var("count"))],
        ));
    }
    for d in (0..rank).rev() {
        body = for_(
            &format!("o{d}"),
            out_shape[d],
            [fetch[d].clone(), body].concat(),
        );
    }
    body
}

/// Nearest-neighbour upsampling: each input position is written `factors` times.
pub fn upsample_nearest(factors: &[usize], in_shape: &[usize], out_shape: &[usize]) -> Vec<Stmt> {
    let rank = factors.len();
    let channels = in_shape[rank];
    let (xst, ost) = (strides(in_shape), strides(out_shape));
    let mut out = Ix::default();
    for d in 0..rank {
        out = out
            .plus(&format!("i{d}"), factors[d] * ost[d])
            .plus(&format!("r{d}"), ost[d]);
    }
    let copy = for_(
        "c",
        channels,
        vec![Place::Out(out.plus("c", 1))
            .set(Val::load(Buf::In(0), ix("i", &xst[..rank]).plus("c", 1)))],
    );
    let body = nest("r", factors, copy);
    nest("i", &in_shape[..rank], body)
}

/// Bilinear upsampling as TensorFlow's resize with half-pixel centres: output `i*f + r`
/// reads input rows `i - 1, i` (phases left of the pixel centre) or `i, i + 1` (right of
/// it), clamped at the edges, with a weight that depends on the phase `r` only. The last
/// spatial axis is interpolated first, as TensorFlow does.
pub fn upsample_bilinear(
    factors: &[usize],
    in_shape: &[usize],
    out_shape: &[usize],
    add_weight: &mut super::AddWeight,
) -> Vec<Stmt> {
    let rank = factors.len();
    let (xst, ost) = (strides(in_shape), strides(out_shape));
    // Per axis: the weight table and how many phases lie left of the centre.
    let axes: Vec<(WeightId, usize)> = (0..rank)
        .map(|d| {
            let f = factors[d];
            let centre: Vec<f32> = (0..f).map(|r| (r as f32 + 0.5) / f as f32 - 0.5).collect();
            let left = centre.iter().filter(|&&c| c < 0.0).count();
            let lerp: Vec<f32> = centre
                .iter()
                .map(|&c| if c < 0.0 { c + 1.0 } else { c })
                .collect();
            (add_weight(&format!("lerp{d}"), vec![f], &lerp), left)
        })
        .collect();
    build_bilinear(0, &axes, factors, in_shape, &xst, &ost, Ix::default())
}

#[allow(clippy::too_many_arguments)]
fn build_bilinear(
    d: usize,
    axes: &[(WeightId, usize)],
    factors: &[usize],
    in_shape: &[usize],
    xst: &[usize],
    ost: &[usize],
    out: Ix,
) -> Vec<Stmt> {
    let rank = factors.len();
    if d == rank {
        let channels = in_shape[rank];
        let corner = |mask: usize| {
            let ix = (0..rank).fold(Ix::default().plus("c", 1), |ix, a| {
                let hi = mask >> (rank - 1 - a) & 1 == 1;
                ix.plus(&format!("{}{a}", if hi { "hi" } else { "lo" }), xst[a])
            });
            Val::load(Buf::In(0), ix)
        };
        let mut values: Vec<Val> = (0..1 << rank).map(corner).collect();
        for a in (0..rank).rev() {
            let w = Val::var(&format!("w{a}"));
            values = values
                .chunks(2)
                .map(|pair| pair[0].clone() + (pair[1].clone() - pair[0].clone()) * w.clone())
                .collect();
        }
        let value = values.pop().unwrap_or(Val::Const(0.0));
        return for_("c", channels, vec![Place::Out(out.plus("c", 1)).set(value)]);
    }
    let (lerp, left) = axes[d];
    let (f, n) = (factors[d], in_shape[d]);
    let (i, r) = (format!("i{d}"), format!("r{d}"));
    let mut per_position = Vec::new();
    for (start, count, below) in [(0, left, 1), (left, f - left, 0)] {
        if count == 0 {
            continue;
        }
        let lo = Ix::default().plus(&i, 1).offset(-(below as isize));
        let body = [
            vec![
                Stmt::LetIndex {
                    name: format!("lo{d}"),
                    value: Index::Clamped {
                        ix: lo.clone(),
                        max: n - 1,
                    },
                },
                Stmt::LetIndex {
                    name: format!("hi{d}"),
                    value: Index::Clamped {
                        ix: lo.offset(1),
                        max: n - 1,
                    },
                },
                Stmt::let_(
                    format!("w{d}"),
                    Val::load(
                        Buf::W(lerp),
                        Ix::default().plus(&r, 1).offset(start as isize),
                    ),
                ),
            ],
            build_bilinear(
                d + 1,
                axes,
                factors,
                in_shape,
                xst,
                ost,
                out.clone()
                    .plus(&i, f * ost[d])
                    .plus(&r, ost[d])
                    .offset((start * ost[d]) as isize),
            ),
        ]
        .concat();
        // Always a real loop: each half needs its own scope for lo/hi/w.
        per_position.push(Stmt::For {
            var: r.clone(),
            count,
            unroll: Unroll::Compiler,
            body,
        });
    }
    for_(&i, n, per_position)
}
