//! Lowers the spatial and multi-input ops to loops ([`super::loops`]): every size and
//! stride a constant, the channel loop innermost (channels-last), window taps that fall in
//! the padding skipped by a guard only on the axes that have padding.

use super::expr::Expr;
use super::loops::{for_, Acc, Buf, Cond, Ix, Stmt, Update, Val};
use super::{Epilogue, WeightId};
use crate::backend::math::MathFn;
use crate::ir::{numel, MergeKind, PoolKind, ReduceKind, Window};

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Loops over `dims` (outermost first) named `{prefix}0`, `{prefix}1`, ... around `body`.
fn nest(prefix: &str, dims: &[usize], body: Vec<Stmt>) -> Vec<Stmt> {
    dims.iter()
        .enumerate()
        .rev()
        .fold(body, |body, (d, &n)| for_(&format!("{prefix}{d}"), n, body))
}

/// `sum(var_d * strides[d])` for the variables `{prefix}d`.
fn ix(prefix: &str, strides: &[usize]) -> Ix {
    strides
        .iter()
        .enumerate()
        .fold(Ix::default(), |ix, (d, &s)| {
            ix.plus(&format!("{prefix}{d}"), s)
        })
}

/// Applies `activation` to `count` outputs starting at `base`.
fn activate(expr: Option<&Expr>, base: &Ix, count: usize) -> Vec<Stmt> {
    let epilogue = Epilogue {
        rescale: None,
        activation: expr,
    };
    finish_in_place(&epilogue, base, count)
}

/// Applies `epilogue` to the `count` channels of one position starting at `base`.
fn finish_in_place(epilogue: &Epilogue, base: &Ix, count: usize) -> Vec<Stmt> {
    if epilogue.is_identity() {
        return Vec::new();
    }
    let i = base.clone().plus("a", 1);
    let sum = Val::load(Buf::Out, i.clone());
    let (mut body, value) = epilogue.finish(sum, &Ix::default().plus("a", 1), "x");
    body.push(Stmt::Store(i, value));
    for_("a", count, body)
}

/// The taps of a window at output position `o*`, each guarded where it can fall into the
/// padding; `inner(tap_index, input_index)` builds the innermost statements.
fn taps(
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

/// How convolutions are blocked for registers: `pixels` output positions along the last
/// spatial axis (each filter row read is reused by all of them) times `filters` outputs
/// per position (summed in registers across the taps). Blocking never changes what an
/// output sums or in which order, so Rust and C++ may block differently and still agree
/// bit for bit; they do, because rustc and g++ keep different shapes in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocking {
    pub pixels: usize,
    pub filters: usize,
}

impl Blocking {
    /// Measured on MobileNetV2 (alpha 0.35, 96x96), sum of per-layer best times, Zen 4
    /// (shared, noisy: +-10%), in us as rustc -O / rustc -O -C target-cpu=native / g++ -O2
    /// / g++ -O3 -march=native (before blocking: 1180 / 776 / 1930 / 1562):
    ///   2 x 16: 806 / 360 / - / -
    ///   4 x 16: 871 / 317 / 1611 / 918 (another run: 919 / 372)
    ///   4 x 32: 920 / 575 / 1580 / 690 (depthwise not yet blocked)
    ///   2 x 32: 937 / 546 / 1400 / 664
    ///   2 x 64: - / - / 1426 / 668;  4 x 64: - / - / 2229 / 773;  1 x 64: - / - / 1453 / 590
    /// and on the 3x3 conv 13x13x16 -> 11x11x32 of B2 (rustc -O / native): before 28.5 /
    /// 15.3, 2 x 16: 34 / 16.1, 4 x 16: 61-92 / 16.3 (spills the 16 SSE registers).
    /// rustc keeps a block in registers while it fully unrolls it (about 64 products per
    /// channel); larger blocks fall back to worse loops (depthwise 4 x 32: 3-10x slower).
    pub const RUST: Blocking = Blocking {
        pixels: 2,
        filters: 16,
    };
    /// g++ fully unrolls filter loops of up to 16 and then vectorises the channel loop as
    /// an in-order reduction (see the loop printer); wider loops stay vector loops. Whole
    /// MobileNetV2, best of 15, g++ -O2 / -O3 -march=native (noisy, +-30%): before
    /// 1490-1510 / 1280-1840; 2 x 32: 1300-1330 / 1120-1290; 1 x 64: 1520-1530 / 560-1100.
    /// B2 (-O3 native): before 73-80, 2 x 32: 54-57, 1 x 64: 59-64.
    pub const CPP: Blocking = Blocking {
        pixels: 1,
        filters: 64,
    };
}

/// Convolution. Every output sums its bias, then its taps in order and the input channels
/// of each tap in order. Grouped (non-depthwise) convolutions run per output position with
/// the filter loop innermost; the others go through [`conv_blocked`].
#[allow(clippy::too_many_arguments)]
pub fn conv(
    window: &Window,
    groups: usize,
    kernel: &[f32],
    bias: Option<WeightId>,
    epilogue: Epilogue,
    in_shape: &[usize],
    out_shape: &[usize],
    add_weight: &mut super::AddWeight,
    blocking: Blocking,
) -> Vec<Stmt> {
    let rank = window.size.len();
    let (channels, filters) = (in_shape[rank], out_shape[rank]);
    if groups == 1 || (groups == channels && filters == channels) {
        let depthwise = groups > 1;
        return conv_blocked(
            window, depthwise, kernel, bias, epilogue, in_shape, out_shape, add_weight, blocking,
        );
    }
    let kernel = add_weight("kernel", vec![kernel.len() / filters, filters], kernel);
    let (per_group, filters_per_group) = (channels / groups, filters / groups);
    let ost = strides(out_shape);
    let out_base = ix("o", &ost[..rank]);
    let init = for_(
        "f",
        filters,
        vec![Stmt::Store(
            out_base.clone().plus("f", 1),
            bias.map_or(Val::Const(0.0), |b| {
                Val::load(Buf::W(b), Ix::default().plus("f", 1))
            }),
        )],
    );
    // Depthwise (one input channel per group): the group loop goes inside the taps, so the
    // innermost loop runs along the channels and vectorises. Each output still sums its
    // taps in the same order.
    let depthwise = per_group == 1;
    let accumulate = taps(window, in_shape, out_shape, |tap, input| {
        let row = Ix::default().add_scaled(&tap, per_group).plus("c", 1);
        let col = Ix::default().plus("g", filters_per_group).plus("f", 1);
        let x = input.plus("g", per_group).plus("c", 1);
        let per_channel = for_(
            "c",
            per_group,
            [
                vec![Stmt::Let("xv".into(), Val::load(Buf::In(0), x))],
                for_(
                    "f",
                    filters_per_group,
                    vec![Stmt::Update(
                        out_base.clone().add_scaled(&col, 1),
                        Update::Add,
                        Val::var("xv") * Val::load(Buf::W2(kernel, row.clone()), col.clone()),
                    )],
                ),
            ]
            .concat(),
        );
        if depthwise {
            for_("g", groups, per_channel)
        } else {
            per_channel
        }
    });
    let accumulate = if depthwise {
        accumulate
    } else {
        for_("g", groups, accumulate)
    };
    let body = [
        init,
        accumulate,
        finish_in_place(&epilogue, &out_base, filters),
    ]
    .concat();
    nest("o", &out_shape[..rank], body)
}

/// The output positions along one axis whose taps all fall inside the input: `lo..hi`.
fn interior(w: &Window, d: usize, in_len: usize, out_len: usize) -> (usize, usize) {
    let (s, before) = (w.strides[d], w.padding[d].0);
    let lo = before.div_ceil(s).min(out_len);
    let reach = (w.size[d] - 1) * w.dilation[d];
    let hi = if in_len + before > reach {
        ((in_len + before - reach - 1) / s + 1).min(out_len)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// Convolution with one group, or depthwise with one filter per channel, blocked for
/// registers: along the last spatial axis the positions whose taps never touch the padding
/// run in blocks of `blocking.pixels` with no guard, the border positions one at a time with
/// guards; the filters run in blocks of `blocking.filters` (weights packed block by block,
/// rows in the order the loop reads them). Per block: the outputs start at the bias, then
/// for each tap (and input channel) every pixel of the block adds its input times the
/// filter row (innermost, vectorised: a broadcast input, or for depthwise the inputs of
/// the block's channels).
#[allow(clippy::too_many_arguments)]
fn conv_blocked(
    w: &Window,
    depthwise: bool,
    kernel: &[f32],
    bias: Option<WeightId>,
    epilogue: Epilogue,
    in_shape: &[usize],
    out_shape: &[usize],
    add_weight: &mut super::AddWeight,
    blocking: Blocking,
) -> Vec<Stmt> {
    let rank = w.size.len();
    let last = rank - 1;
    let (channels, filters) = (in_shape[rank], out_shape[rank]);
    let rows = kernel.len() / filters;
    let (xst, ost) = (strides(in_shape), strides(out_shape));
    let tap_st = strides(&w.size);
    // Filter blocks: full blocks packed as [block][row][filter], then the rest.
    let fb = blocking.filters.min(filters);
    let (full, rest) = (filters / fb, filters % fb);
    let pack = |start: usize, width: usize, count: usize| -> Vec<f32> {
        let mut data = Vec::with_capacity(count * rows * width);
        for b in 0..count {
            for r in 0..rows {
                let from = r * filters + start + b * width;
                data.extend_from_slice(&kernel[from..from + width]);
            }
        }
        data
    };
    let mut blocks = Vec::new();
    if full > 0 {
        let data = pack(0, fb, full);
        let id = add_weight("kernel", vec![full * rows, fb], &data);
        blocks.push((id, fb, full, 0));
    }
    if rest > 0 {
        let data = pack(full * fb, rest, 1);
        let id = add_weight("kernel_rest", vec![rows, rest], &data);
        blocks.push((id, rest, 1, full * fb));
    }
    // Output position along the last axis of pixel `p` of a block starting at `start`.
    let (lo, hi) = interior(w, last, in_shape[last], out_shape[last]);
    let block = |start: &Ix, pixels: usize, guarded: bool| -> Vec<Stmt> {
        let mut stmts = Vec::new();
        for &(kernel, width, count, first) in &blocks {
            let f = Ix::default().plus("f", 1);
            let filter = Ix::default().plus("b", width).offset(first as isize);
            // Pixel p's accumulator: its outputs of this filter block.
            let acc = |p: usize| Acc {
                name: format!("acc{p}"),
                home: (0..last)
                    .fold(Ix::default(), |ix, a| ix.plus(&format!("o{a}"), ost[a]))
                    .add_scaled(start, ost[last])
                    .offset((p * ost[last]) as isize)
                    .add_scaled(&filter, 1),
            };
            let bias = bias.map_or(Val::Const(0.0), |b| {
                Val::load(Buf::W(b), filter.clone().add_scaled(&f, 1))
            });
            let mut init = Vec::new();
            for p in 0..pixels {
                init.push(Stmt::Acc(acc(p), width));
                init.extend(for_(
                    "f",
                    width,
                    vec![Stmt::AccStore(acc(p), f.clone(), bias.clone())],
                ));
            }
            // Kernel row of tap t* and channel c, in block b.
            let per_tap = if depthwise { 1 } else { channels };
            let mut row = Ix::default().plus("b", rows);
            let mut input = Ix::default();
            for d in 0..rank {
                row = row.plus(&format!("t{d}"), tap_st[d] * per_tap);
                let o = if d == last {
                    Ix::default().add_scaled(start, w.strides[d] * xst[d])
                } else {
                    Ix::default().plus(&format!("o{d}"), w.strides[d] * xst[d])
                };
                input = input
                    .add_scaled(&o, 1)
                    .plus(&format!("t{d}"), w.dilation[d] * xst[d])
                    .offset(-((w.padding[d].0 * xst[d]) as isize));
            }
            let mut body = Vec::new();
            for p in (0..pixels).filter(|_| depthwise) {
                let at = input
                    .clone()
                    .offset((p * w.strides[last] * xst[last]) as isize)
                    .add_scaled(&filter, 1)
                    .plus("f", 1);
                body.extend(for_(
                    "f",
                    width,
                    vec![Stmt::AccAdd(
                        acc(p),
                        f.clone(),
                        Val::load(Buf::In(0), at)
                            * Val::load(Buf::W2(kernel, row.clone()), f.clone()),
                    )],
                ));
            }
            let (row, input) = (row.plus("c", 1), input.plus("c", 1));
            for p in (0..pixels).filter(|_| !depthwise) {
                let x = format!("x{p}");
                let at = input
                    .clone()
                    .offset((p * w.strides[last] * xst[last]) as isize);
                body.push(Stmt::Let(x.clone(), Val::load(Buf::In(0), at)));
                body.extend(for_(
                    "f",
                    width,
                    vec![Stmt::AccAdd(
                        acc(p),
                        f.clone(),
                        Val::var(&x) * Val::load(Buf::W2(kernel, row.clone()), f.clone()),
                    )],
                ));
            }
            let mut body = if depthwise {
                body
            } else {
                for_("c", channels, body)
            };
            for d in (0..rank).rev() {
                let (before, _) = w.padding[d];
                let reach = (out_shape[d] - 1) * w.strides[d] + (w.size[d] - 1) * w.dilation[d];
                let needs_guard = if d == last {
                    guarded
                } else {
                    !(before == 0 && reach < in_shape[d])
                };
                if needs_guard {
                    let pos = if d == last {
                        Ix::default().add_scaled(start, w.strides[d])
                    } else {
                        Ix::default().plus(&format!("o{d}"), w.strides[d])
                    }
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
            // Results to the output, through the rescale and the activation.
            let mut done = Vec::new();
            for p in 0..pixels {
                let sum = Val::load(Buf::Acc(acc(p)), f.clone());
                let out = acc(p).home.add_scaled(&f, 1);
                let channel = filter.clone().add_scaled(&f, 1);
                let (mut store, value) = epilogue.finish(sum, &channel, "x");
                store.push(Stmt::Store(out, value));
                done.extend(for_("f", width, store));
            }
            stmts.extend(for_("b", count, [init, body, done].concat()));
        }
        stmts
    };
    // Per row: the left border one position at a time, the interior in blocks, then the
    // rest (interior remainder and right border) one at a time: three copies of the loop
    // nest at most, which keeps the source (and compile time) small.
    let mut per_row = Vec::new();
    let single = |var: &str, first: usize, count: usize, guarded: bool| {
        let start = Ix::default().plus(var, 1).offset(first as isize);
        for_(var, count, block(&start, 1, guarded))
    };
    if lo > 0 {
        per_row.extend(single("ol", 0, lo, true));
    }
    let whole = (hi - lo) / blocking.pixels;
    if whole > 0 {
        let start = Ix::default()
            .plus("ob", blocking.pixels)
            .offset(lo as isize);
        per_row.extend(for_("ob", whole, block(&start, blocking.pixels, false)));
    }
    let rest = lo + whole * blocking.pixels;
    if rest < out_shape[last] {
        let guarded = hi < out_shape[last];
        per_row.extend(single("ot", rest, out_shape[last] - rest, guarded));
    }
    nest("o", &out_shape[..last], per_row)
}

/// Transposed convolution: every input position scatters into the outputs its taps reach.
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose(
    strides_: &[usize],
    dilation: &[usize],
    crop: &[usize],
    kernel: WeightId,
    kernel_shape: &[usize],
    bias: Option<WeightId>,
    activation: Option<&Expr>,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let rank = strides_.len();
    let (channels, filters) = (in_shape[rank], out_shape[rank]);
    let (xst, ost) = (strides(in_shape), strides(out_shape));
    let tap_st = strides(&kernel_shape[..rank]);
    let init = for_(
        "p",
        numel(out_shape) / filters,
        for_(
            "f",
            filters,
            vec![Stmt::Store(
                Ix::default().plus("p", filters).plus("f", 1),
                bias.map_or(Val::Const(0.0), |b| {
                    Val::load(Buf::W(b), Ix::default().plus("f", 1))
                }),
            )],
        ),
    );
    // Output index of input position i* and tap t*.
    let mut out = Ix::default();
    let mut row = Ix::default();
    for d in 0..rank {
        out = out
            .plus(&format!("i{d}"), strides_[d] * ost[d])
            .plus(&format!("t{d}"), dilation[d] * ost[d])
            .offset(-((crop[d] * ost[d]) as isize));
        row = row.plus(&format!("t{d}"), tap_st[d] * filters);
    }
    let x = ix("i", &xst[..rank]).plus("c", 1);
    let mut body = for_(
        "f",
        filters,
        for_(
            "c",
            channels,
            vec![Stmt::Update(
                out.plus("f", 1),
                Update::Add,
                Val::load(Buf::In(0), x)
                    * Val::load(
                        Buf::W2(kernel, row.plus("f", 1)),
                        Ix::default().plus("c", 1),
                    ),
            )],
        ),
    );
    for d in (0..rank).rev() {
        let pos = Ix::default()
            .plus(&format!("i{d}"), strides_[d])
            .plus(&format!("t{d}"), dilation[d]);
        // Guarded only where a position can fall outside the output (a guard that always
        // holds, such as `0 < 1`, is a clippy error in the generated Rust).
        let reach = (in_shape[d] - 1) * strides_[d] + (kernel_shape[d] - 1) * dilation[d];
        if crop[d] > 0 || reach >= out_shape[d] {
            body = vec![Stmt::IfInRange {
                ix: pos,
                lo: crop[d],
                hi: crop[d] + out_shape[d],
                body,
            }];
        }
        body = for_(&format!("t{d}"), kernel_shape[d], body);
    }
    let scatter = nest("i", &in_shape[..rank], body);
    let post = activation.map_or(Vec::new(), |_| {
        nest(
            "o",
            &out_shape[..rank],
            activate(activation, &ix("o", &ost[..rank]), filters),
        )
    });
    [init, scatter, post].concat()
}

/// Max or average pooling; the average divides by the number of real (unpadded) taps.
pub fn pool(kind: PoolKind, window: &Window, in_shape: &[usize], out_shape: &[usize]) -> Vec<Stmt> {
    let rank = window.size.len();
    let channels = in_shape[rank];
    let out_base = ix("o", &strides(out_shape)[..rank]);
    let start = match kind {
        PoolKind::Max => Val::Const(f32::NEG_INFINITY),
        PoolKind::Average => Val::Const(0.0),
    };
    let init = for_(
        "c",
        channels,
        vec![Stmt::Store(out_base.clone().plus("c", 1), start)],
    );
    let at = out_base.clone().plus("c", 1);
    let accumulate = taps(window, in_shape, out_shape, |_, input| {
        let x = Val::load(Buf::In(0), input.plus("c", 1));
        let update = match kind {
            PoolKind::Max => Stmt::Store(at.clone(), Val::max(Val::load(Buf::Out, at.clone()), x)),
            PoolKind::Average => Stmt::Update(at.clone(), Update::Add, x),
        };
        let mut stmts = for_("c", channels, vec![update]);
        if kind == PoolKind::Average {
            stmts.insert(0, Stmt::Accumulate("count".into(), Val::Const(1.0)));
        }
        stmts
    });
    let mut body = init;
    if kind == PoolKind::Average {
        body.push(Stmt::LetMut("count".into(), Val::Const(0.0)));
    }
    body.extend(accumulate);
    if kind == PoolKind::Average {
        body.extend(for_(
            "c",
            channels,
            vec![Stmt::Update(at, Update::Div, Val::var("count"))],
        ));
    }
    nest("o", &out_shape[..rank], body)
}

/// Max or average over every spatial position, per channel.
pub fn global_pool(kind: PoolKind, in_shape: &[usize]) -> Vec<Stmt> {
    let channels = in_shape[in_shape.len() - 1];
    let positions = numel(in_shape) / channels;
    let c = Ix::default().plus("c", 1);
    let x = Val::load(Buf::In(0), Ix::default().plus("p", channels).plus("c", 1));
    let (start, update) = match kind {
        PoolKind::Max => (
            Val::Const(f32::NEG_INFINITY),
            Stmt::Store(c.clone(), Val::max(Val::load(Buf::Out, c.clone()), x)),
        ),
        PoolKind::Average => (Val::Const(0.0), Stmt::Update(c.clone(), Update::Add, x)),
    };
    let mut body = for_("c", channels, vec![Stmt::Store(c.clone(), start)]);
    body.extend(for_("p", positions, for_("c", channels, vec![update])));
    if kind == PoolKind::Average {
        body.extend(for_(
            "c",
            channels,
            vec![Stmt::Update(c, Update::Div, Val::Const(positions as f32))],
        ));
    }
    body
}

/// Constant padding: fill with `value`, then copy the input into place.
pub fn pad(
    padding: &[(usize, usize)],
    value: f32,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let ost = strides(out_shape);
    let clear = for_(
        "p",
        numel(out_shape),
        vec![Stmt::Store(Ix::default().plus("p", 1), Val::Const(value))],
    );
    let offset: usize = padding.iter().zip(&ost).map(|((b, _), s)| b * s).sum();
    let copy = nest(
        "i",
        in_shape,
        vec![Stmt::Store(
            ix("i", &ost).offset(offset as isize),
            Val::load(Buf::In(0), ix("i", &strides(in_shape))),
        )],
    );
    [clear, copy].concat()
}

/// A gather whose input index is affine in the output index.
pub fn gather(out_shape: &[usize], input: Ix) -> Vec<Stmt> {
    nest(
        "o",
        out_shape,
        vec![Stmt::Store(
            ix("o", &strides(out_shape)),
            Val::load(Buf::In(0), input),
        )],
    )
}

/// `x[begin..:step]` on every axis.
pub fn slice(
    begin: &[usize],
    step: &[usize],
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let xst = strides(in_shape);
    let offset: usize = begin.iter().zip(&xst).map(|(b, s)| b * s).sum();
    let stepped: Vec<usize> = xst.iter().zip(step).map(|(s, k)| s * k).collect();
    gather(out_shape, ix("o", &stepped).offset(offset as isize))
}

/// Output axis `k` is input axis `perm[k]`.
pub fn transpose(perm: &[usize], in_shape: &[usize], out_shape: &[usize]) -> Vec<Stmt> {
    let xst = strides(in_shape);
    let permuted: Vec<usize> = perm.iter().map(|&p| xst[p]).collect();
    gather(out_shape, ix("o", &permuted))
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
        vec![Stmt::Store(
            out.plus("c", 1),
            Val::load(Buf::In(0), ix("i", &xst[..rank]).plus("c", 1)),
        )],
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
        return for_("c", channels, vec![Stmt::Store(out.plus("c", 1), value)]);
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
                    ix: lo.clone(),
                    max: n - 1,
                },
                Stmt::LetIndex {
                    name: format!("hi{d}"),
                    ix: lo.offset(1),
                    max: n - 1,
                },
                Stmt::Let(
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
            body,
        });
    }
    for_(&i, n, per_position)
}

/// `[n] -> [times, n]`.
pub fn repeat(times: usize, n: usize) -> Vec<Stmt> {
    gather(&[times, n], Ix::default().plus("o1", 1))
}

/// The index into an operand of `shape` that output position `o0, o1, ...` (of rank
/// `rank`) reads under numpy broadcasting: shapes aligned at their last axes, axes of
/// size 1 repeated.
fn broadcast_ix(shape: &[usize], rank: usize) -> Ix {
    let lead = rank - shape.len();
    strides(shape)
        .iter()
        .zip(shape)
        .enumerate()
        .fold(Ix::default(), |ix, (d, (&s, &len))| {
            ix.plus(&format!("o{}", d + lead), if len == 1 { 0 } else { s })
        })
}

/// One step of an elementwise merge.
fn merge_step(kind: MergeKind, acc: Val, v: Val) -> Val {
    match kind {
        MergeKind::Add | MergeKind::Average => acc + v,
        MergeKind::Subtract => acc - v,
        MergeKind::Multiply => acc * v,
        MergeKind::Maximum => Val::max(acc, v),
        MergeKind::Minimum => Val::min(acc, v),
        MergeKind::Divide => acc / v,
    }
}

/// Elementwise `x (kind) constant` (or `constant (kind) x`), broadcasting as numpy.
pub fn const_merge(
    kind: MergeKind,
    constant: WeightId,
    constant_shape: &[usize],
    constant_first: bool,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let rank = out_shape.len();
    let x = Val::load(Buf::In(0), broadcast_ix(in_shape, rank));
    let c = Val::load(Buf::W(constant), broadcast_ix(constant_shape, rank));
    let value = if constant_first {
        merge_step(kind, c, x)
    } else {
        merge_step(kind, x, c)
    };
    nest(
        "o",
        out_shape,
        vec![Stmt::Store(ix("o", &strides(out_shape)), value)],
    )
}

/// `condition != 0 ? then : otherwise` with numpy broadcasting; a branch is input `k` or
/// a constant.
pub fn select(
    then: Option<f32>,
    otherwise: Option<f32>,
    in_shapes: &[&[usize]],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let rank = out_shape.len();
    let mut next = 1..;
    let mut branch = |constant: Option<f32>| match constant {
        Some(v) => Val::Const(v),
        None => {
            let k = next.next().unwrap_or(0);
            Val::load(Buf::In(k), broadcast_ix(in_shapes[k], rank))
        }
    };
    let (then, otherwise) = (branch(then), branch(otherwise));
    let o = ix("o", &strides(out_shape));
    let condition = Val::load(Buf::In(0), broadcast_ix(in_shapes[0], rank));
    nest(
        "o",
        out_shape,
        vec![
            Stmt::Store(o.clone(), then),
            Stmt::If(
                Cond::Equal(condition, Val::Const(0.0)),
                vec![Stmt::Store(o, otherwise)],
            ),
        ],
    )
}

/// Sum, mean, max or min over `axes`: the output (reduced axes kept as size 1, the same
/// flat layout) is set to the start value, then every input element is folded into its
/// slot in row-major order; a mean is divided at the end.
pub fn reduce(kind: ReduceKind, axes: &[usize], in_shape: &[usize]) -> Vec<Stmt> {
    let kept: Vec<usize> = in_shape
        .iter()
        .enumerate()
        .map(|(d, &len)| if axes.contains(&d) { 1 } else { len })
        .collect();
    let kst: Vec<usize> = strides(&kept)
        .iter()
        .enumerate()
        .map(|(d, &s)| if axes.contains(&d) { 0 } else { s })
        .collect();
    let n = numel(&kept);
    let o = ix("i", &kst);
    let x = Val::load(Buf::In(0), ix("i", &strides(in_shape)));
    let (start, fold) = match kind {
        ReduceKind::Sum | ReduceKind::Mean => (0.0, Stmt::Update(o.clone(), Update::Add, x)),
        ReduceKind::Max => (
            f32::NEG_INFINITY,
            Stmt::Store(o.clone(), Val::max(Val::load(Buf::Out, o), x)),
        ),
        ReduceKind::Min => (
            f32::INFINITY,
            Stmt::Store(o.clone(), Val::min(Val::load(Buf::Out, o), x)),
        ),
    };
    let p = Ix::default().plus("p", 1);
    let mut body = for_("p", n, vec![Stmt::Store(p.clone(), Val::Const(start))]);
    body.extend(nest("i", in_shape, vec![fold]));
    if kind == ReduceKind::Mean {
        let count = numel(in_shape) / n.max(1);
        body.extend(for_(
            "p",
            n,
            vec![Stmt::Update(p, Update::Div, Val::Const(count as f32))],
        ));
    }
    body
}

/// Elementwise over several inputs, broadcasting as numpy.
pub fn merge(kind: MergeKind, in_shapes: &[&[usize]], out_shape: &[usize]) -> Vec<Stmt> {
    let rank = out_shape.len();
    let load = |k: usize| Val::load(Buf::In(k), broadcast_ix(in_shapes[k], rank));
    let value = (1..in_shapes.len()).fold(load(0), |acc, k| merge_step(kind, acc, load(k)));
    let value = match kind {
        MergeKind::Average => value / Val::Const(in_shapes.len() as f32),
        _ => value,
    };
    nest(
        "o",
        out_shape,
        vec![Stmt::Store(ix("o", &strides(out_shape)), value)],
    )
}

/// Concatenation: each input copied to its offset along `axis`.
pub fn concat(axis: usize, in_shapes: &[&[usize]], out_shape: &[usize]) -> Vec<Stmt> {
    let ost = strides(out_shape);
    let mut offset = 0;
    let mut body = Vec::new();
    for (k, shape) in in_shapes.iter().enumerate() {
        let prefix = format!("i{k}_");
        body.extend(nest(
            &prefix,
            shape,
            vec![Stmt::Store(
                ix(&prefix, &ost).offset((offset * ost[axis]) as isize),
                Val::load(Buf::In(k), ix(&prefix, &strides(shape))),
            )],
        ));
        offset += shape[axis];
    }
    body
}

/// Contraction of axis `axes.0` of the first input with `axes.1` of the second; with
/// `normalize: Some(cap)` each input is first scaled by `min(1 / |x|, cap)` along the
/// contracted axis, element by element as Keras does it.
pub fn dot(
    axes: (usize, usize),
    normalize: Option<f32>,
    a: &[usize],
    b: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let (i, j) = axes;
    let (sa, sb) = (strides(a), strides(b));
    let rest_a: Vec<usize> = (0..a.len()).filter(|&k| k != i).collect();
    let rest_b: Vec<usize> = (0..b.len()).filter(|&k| k != j).collect();
    let mut ia = Ix::default().plus("t", sa[i]);
    let mut ib = Ix::default().plus("t", sb[j]);
    for (n, &d) in rest_a.iter().enumerate() {
        ia = ia.plus(&format!("o{n}"), sa[d]);
    }
    for (n, &d) in rest_b.iter().enumerate() {
        ib = ib.plus(&format!("o{}", rest_a.len() + n), sb[d]);
    }
    let out_dims: Vec<usize> = if rest_a.is_empty() && rest_b.is_empty() {
        vec![1]
    } else {
        out_shape.to_vec()
    };
    let (x, y) = (
        Val::load(Buf::In(0), ia.clone()),
        Val::load(Buf::In(1), ib.clone()),
    );
    let mut body = vec![Stmt::LetMut("acc".into(), Val::Const(0.0))];
    let term = match normalize {
        None => x * y,
        Some(cap) => {
            // Inverse norms of the two slices, then the normalized products.
            for (name, v) in [("a", x.clone()), ("b", y.clone())] {
                let sq = format!("sq_{name}");
                let norm = format!("norm_{name}");
                body.push(Stmt::LetMut(sq.clone(), Val::Const(0.0)));
                body.extend(for_(
                    "t",
                    a[i],
                    vec![Stmt::Accumulate(sq.clone(), v.clone() * v)],
                ));
                body.push(Stmt::Let(
                    norm.clone(),
                    Val::Apply(Expr::call(MathFn::Sqrt), sq),
                ));
                body.push(Stmt::Let(
                    format!("inv_{name}"),
                    Val::min(Val::Const(1.0) / Val::var(&norm), Val::Const(cap)),
                ));
            }
            (x * Val::var("inv_a")) * (y * Val::var("inv_b"))
        }
    };
    body.extend(for_("t", a[i], vec![Stmt::Accumulate("acc".into(), term)]));
    body.push(Stmt::Store(ix("o", &strides(&out_dims)), Val::var("acc")));
    nest("o", &out_dims, body)
}

/// A convolution without padding and the max pooling of its output over windows that tile
/// it ([`crate::ir::Op::ConvMaxPool`]). Per pooled position, row by row of the pooling
/// window, the convolution positions of the row (`k`) are summed in local accumulators
/// exactly as [`conv`] sums them (bias, then taps, then channels), activated, and folded
/// into the running maximum in the pooling's order; only the maximum is stored.
#[allow(clippy::too_many_arguments)]
pub fn conv_max_pool(
    conv: &Window,
    pool: &Window,
    kernel: WeightId,
    bias: Option<WeightId>,
    epilogue: Epilogue,
    in_shape: &[usize],
    out_shape: &[usize],
) -> Vec<Stmt> {
    let rank = conv.size.len();
    let last = rank - 1;
    let (channels, filters) = (in_shape[rank], out_shape[rank]);
    let row = pool.size[last];
    let (xst, ost, tap_st) = (strides(in_shape), strides(out_shape), strides(&conv.size));
    let f = Ix::default().plus("f", 1);
    let slot = Ix::default().plus("k", filters).plus("f", 1);
    let (acc, max) = (|| Buf::Local("acc".into()), || Buf::Local("v".into()));
    // Input position along axis d: (p * pool stride + q) * conv stride + t * dilation.
    let mut input = Ix::default().plus("c", 1);
    let mut weight_row = Ix::default().plus("c", 1);
    for d in 0..rank {
        let q = if d == last {
            "k".to_string()
        } else {
            format!("q{d}")
        };
        input = input
            .plus(&format!("p{d}"), pool.strides[d] * conv.strides[d] * xst[d])
            .plus(&q, conv.strides[d] * xst[d])
            .plus(&format!("t{d}"), conv.dilation[d] * xst[d]);
        weight_row = weight_row.plus(&format!("t{d}"), tap_st[d] * channels);
    }
    let start = bias.map_or(Val::Const(0.0), |b| Val::load(Buf::W(b), f.clone()));
    let init = for_(
        "k",
        row,
        for_(
            "f",
            filters,
            vec![Stmt::LocalStore("acc".into(), slot.clone(), start)],
        ),
    );
    let product = Val::var("x") * Val::load(Buf::W2(kernel, weight_row), f.clone());
    let mac = for_(
        "k",
        row,
        [
            vec![Stmt::Let("x".into(), Val::load(Buf::In(0), input))],
            for_(
                "f",
                filters,
                vec![Stmt::LocalAdd("acc".into(), slot.clone(), product)],
            ),
        ]
        .concat(),
    );
    let taps = nest("t", &conv.size, for_("c", channels, mac));
    let mut fold = vec![Stmt::Let("a".into(), Val::load(acc(), slot))];
    let value = match epilogue.finish(Val::var("a"), &f, "r") {
        (stmts, value @ Val::Var(_)) if stmts.is_empty() => value,
        (stmts, value) => {
            fold.extend(stmts);
            fold.push(Stmt::Let("y".into(), value));
            Val::var("y")
        }
    };
    let running = Val::max(Val::load(max(), f.clone()), value);
    fold.push(Stmt::LocalStore("v".into(), f.clone(), running));
    let pool_row = [
        vec![Stmt::Local {
            name: "acc".into(),
            len: row * filters,
        }],
        init,
        taps,
        for_("k", row, for_("f", filters, fold)),
    ]
    .concat();
    let out = ix("p", &ost[..rank]).plus("f", 1);
    let body = [
        vec![Stmt::Local {
            name: "v".into(),
            len: filters,
        }],
        for_(
            "f",
            filters,
            vec![Stmt::LocalStore(
                "v".into(),
                f.clone(),
                Val::Const(f32::NEG_INFINITY),
            )],
        ),
        nest("q", &pool.size[..last], pool_row),
        for_("f", filters, vec![Stmt::Store(out, Val::load(max(), f))]),
    ]
    .concat();
    nest("p", &out_shape[..rank], body)
}
