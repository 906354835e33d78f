//! Convolutions (plain, grouped, depthwise, transposed, and fused with max pooling) as
//! loops: every size and stride a constant, the channel loop innermost (channels-last),
//! blocked for registers.

use super::index::{ix, nest, strides, taps};
use super::loops::{for_, Array, Buf, Ix, Place, Stmt, Val, WriteOp};
use super::{Epilogue, Kernel, Kernels, WeightId};
use crate::ir::expr::Expr;
use crate::ir::quant::Stored;
use crate::ir::{numel, Window};

/// Applies `activation` to `count` outputs starting at `base`.
fn activate(expr: Option<&Expr>, base: &Ix, count: usize) -> Vec<Stmt> {
    let epilogue = Epilogue {
        activation: expr,
        ..Epilogue::default()
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
    let (mut body, value) = epilogue.finish(sum, &Ix::default().plus("a", 1), &i, "x");
    body.push(Place::Out(i).set(value));
    for_("a", count, body)
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
    /// Input channels whose products each accumulator adds in one statement (see
    /// `channel_passes`); 1 adds them one statement each.
    pub channels: usize,
    /// The same for a convolution fused with its max pooling, whose accumulators are
    /// locals holding every filter ([`conv_max_pool`]).
    pub pool_channels: usize,
    /// Rows a Dense (or recurrent gate) accumulator adds in one statement (see
    /// `dense::matvec`).
    pub rows: usize,
    /// The most outputs of a matrix-vector product computed at once (see `dense::matvec`:
    /// its tiles of [`super::TILE`] outputs are computed in pieces of this many).
    pub tile: usize,
    /// Dense kernels are packed tile by tile (`[tiles * inputs][tile]`) where the tile
    /// divides the units.
    pub pack: bool,
}

/// Convolution. Every output sums its bias, then its taps in order and the input channels
/// of each tap in order. Grouped (non-depthwise) convolutions run per output position with
/// the filter loop innermost; the others go through [`conv_blocked`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    window: &Window,
    groups: usize,
    kernel: (&Stored, Option<WeightId>),
    bias: Option<WeightId>,
    epilogue: Epilogue,
    in_shape: &[usize],
    out_shape: &[usize],
    kernels: &Kernels,
    blocking: Blocking,
) -> Vec<Stmt> {
    let rank = window.size.len();
    let (channels, filters) = (in_shape[rank], out_shape[rank]);
    if groups == 1 || (groups == channels && filters == channels) {
        let depthwise = groups > 1;
        return conv_blocked(
            window, depthwise, kernel, bias, epilogue, in_shape, out_shape, kernels, blocking,
        );
    }
    let (stored, scale) = kernel;
    let data = &stored.values;
    let kernel = kernels.add(
        "kernel",
        vec![data.len() / filters, filters],
        data,
        stored,
        scale,
    );
    let (per_group, filters_per_group) = (channels / groups, filters / groups);
    let ost = strides(out_shape);
    let out_base = ix("o", &ost[..rank]);
    let init = for_(
        "f",
        filters,
        vec![
            Place::Out(out_base.clone().plus("f", 1)).set(bias.map_or(Val::Const(0.0), |b| {
                Val::load(Buf::W(b), Ix::default().plus("f", 1))
            })),
        ],
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
                vec![Stmt::let_("xv".into(), Val::load(Buf::In(0), x))],
                for_(
                    "f",
                    filters_per_group,
                    vec![Place::Out(out_base.clone().add_scaled(&col, 1)).write(
                        WriteOp::Add,
                        Val::var("xv") * kernel.load(row.clone(), col.clone(), col.clone()),
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

/// The loop over a convolution's input channels: `pass(first, n, chained)` gives the
/// statements for channels `first + j`, `j < n`. With `per_pass` above 1 each pass takes
/// that many channels (the rest in one last pass) and `chained` asks for one statement per
/// accumulator, `acc = ((acc + x0 * w0) + x1 * w1) + ...`: the products still added one at
/// a time in channel order, the accumulator read and written once per pass.
fn channel_passes(
    channels: usize,
    per_pass: usize,
    pass: impl Fn(&Ix, usize, bool) -> Vec<Stmt>,
) -> Vec<Stmt> {
    if per_pass <= 1 {
        return for_("c", channels, pass(&Ix::default().plus("c", 1), 1, false));
    }
    let per_pass = per_pass.min(channels.max(1));
    let (full, rest) = (channels / per_pass, channels % per_pass);
    let mut stmts = for_(
        "c",
        full,
        pass(&Ix::default().plus("c", per_pass), per_pass, true),
    );
    if rest > 0 {
        stmts.push(Stmt::Block(pass(
            &Ix::constant(full * per_pass),
            rest,
            true,
        )));
    }
    stmts
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
/// registers: along the last spatial axis the positions run in blocks of `blocking.pixels`,
/// with no guard where no tap touches the padding and a guard per position and tap in the
/// blocks at the borders; the filters run in blocks of `blocking.filters` (weights packed block by block,
/// rows in the order the loop reads them). Per block: the outputs start at the bias, then
/// for each tap (and input channel) every pixel of the block adds its input times the
/// filter row (innermost, vectorised: a broadcast input, or for depthwise the inputs of
/// the block's channels).
#[allow(clippy::too_many_arguments)]
fn conv_blocked(
    w: &Window,
    depthwise: bool,
    (stored, scale): (&Stored, Option<WeightId>),
    bias: Option<WeightId>,
    epilogue: Epilogue,
    in_shape: &[usize],
    out_shape: &[usize],
    kernels: &Kernels,
    blocking: Blocking,
) -> Vec<Stmt> {
    let kernel = &stored.values[..];
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
        let id = kernels.add("kernel", vec![full * rows, fb], &data, stored, scale);
        blocks.push((id, fb, full, 0));
    }
    if rest > 0 {
        let data = pack(full * fb, rest, 1);
        let id = kernels.add("kernel_rest", vec![rows, rest], &data, stored, scale);
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
            let home = |p: usize| {
                (0..last)
                    .fold(Ix::default(), |ix, a| ix.plus(&format!("o{a}"), ost[a]))
                    .add_scaled(start, ost[last])
                    .offset((p * ost[last]) as isize)
                    .add_scaled(&filter, 1)
            };
            let acc = |p: usize| Array::named(format!("acc{p}"));
            // The output channel of filter `f` of the block.
            let channel = || filter.clone().add_scaled(&f, 1);
            let bias = bias.map_or(Val::Const(0.0), |b| {
                Val::load(Buf::W(b), filter.clone().add_scaled(&f, 1))
            });
            let mut init = Vec::new();
            for p in 0..pixels {
                init.push(Stmt::local(acc(p), width));
                init.extend(for_(
                    "f",
                    width,
                    vec![Place::Local(acc(p), f.clone()).set(bias.clone())],
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
            // In a block that reaches the padding, each position checks its own tap along the
            // last axis (a single position checks it around the whole tap instead).
            let per_pixel = guarded && pixels > 1;
            let (pad_last, in_last) = (w.padding[last].0, in_shape[last]);
            let own_tap = |p: usize, stmts: Vec<Stmt>| -> Vec<Stmt> {
                if !per_pixel {
                    return stmts;
                }
                let pos = Ix::default()
                    .add_scaled(start, w.strides[last])
                    .offset((p * w.strides[last]) as isize)
                    .plus(&format!("t{last}"), w.dilation[last]);
                vec![Stmt::IfInRange {
                    ix: pos,
                    lo: pad_last,
                    hi: pad_last + in_last,
                    body: stmts,
                }]
            };
            let mut body = Vec::new();
            for p in (0..pixels).filter(|_| depthwise) {
                let at = input
                    .clone()
                    .offset((p * w.strides[last] * xst[last]) as isize)
                    .add_scaled(&filter, 1)
                    .plus("f", 1);
                body.extend(own_tap(
                    p,
                    for_(
                        "f",
                        width,
                        vec![Place::Local(acc(p), f.clone()).accumulate(
                            Val::load(Buf::In(0), at)
                                * kernel.load(row.clone(), f.clone(), channel()),
                        )],
                    ),
                ));
            }
            // Channels `first + j` for `j < n`, each pixel's products added in one statement.
            let pass = |first: &Ix, n: usize, chained: bool| {
                let mut stmts = Vec::new();
                for p in 0..pixels {
                    let mut mine = Vec::new();
                    let x = |j: usize| {
                        if chained {
                            format!("x{p}_{j}")
                        } else {
                            format!("x{p}")
                        }
                    };
                    let product = |j: usize| {
                        let row = row.clone().add_scaled(first, 1).offset(j as isize);
                        Val::var(&x(j)) * kernel.load(row, f.clone(), channel())
                    };
                    for j in 0..n {
                        let at = input
                            .clone()
                            .add_scaled(first, 1)
                            .offset((j + p * w.strides[last] * xst[last]) as isize);
                        mine.push(Stmt::let_(x(j), Val::load(Buf::In(0), at)));
                    }
                    let sum = Place::Local(acc(p), f.clone());
                    let update = if chained {
                        let start = Val::load(Buf::Local(acc(p)), f.clone());
                        sum.set((0..n).fold(start, |total, j| total + product(j)))
                    } else {
                        sum.accumulate(product(0))
                    };
                    mine.extend(for_("f", width, vec![update]));
                    stmts.extend(own_tap(p, mine));
                }
                stmts
            };
            if !depthwise {
                body = channel_passes(channels, blocking.channels, pass);
            }
            for d in (0..rank).rev() {
                let (before, _) = w.padding[d];
                let reach = (out_shape[d] - 1) * w.strides[d] + (w.size[d] - 1) * w.dilation[d];
                let needs_guard = if d == last {
                    guarded && !per_pixel
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
                let sum = Val::load(Buf::Local(acc(p)), f.clone());
                let out = home(p).add_scaled(&f, 1);
                let channel = filter.clone().add_scaled(&f, 1);
                let (mut store, value) = epilogue.finish(sum, &channel, &out, "x");
                store.push(Place::Out(out).set(value));
                done.extend(for_("f", width, store));
            }
            stmts.extend(for_("b", count, [init, body, done].concat()));
        }
        stmts
    };
    // Per row: blocks of `pixels` positions, at most one position more where that would leave
    // one alone (7 is one block of 7, not 6 + 1). Blocks that reach the padding check each
    // position's taps; the interior's blocks run unguarded in a loop. A few copies of the
    // loop nest per row at most, which keeps the source (and compile time) small.
    let out_len = out_shape[last];
    let pixels = blocking.pixels.max(1);
    let size = |at: usize| {
        let n = pixels.min(out_len - at);
        if out_len - at - n == 1 {
            n + 1
        } else {
            n
        }
    };
    let mut per_row = Vec::new();
    let mut at = 0;
    while at < lo {
        let n = size(at);
        per_row.push(Stmt::Block(block(&Ix::constant(at), n, true)));
        at += n;
    }
    let span = hi.saturating_sub(at);
    let mut whole = span / pixels;
    if whole > 0 && span % pixels == 1 && hi == out_len {
        whole -= 1;
    }
    if whole > 0 {
        let start = Ix::default().plus("ob", pixels).offset(at as isize);
        per_row.extend(for_("ob", whole, block(&start, pixels, false)));
        at += whole * pixels;
    }
    while at < out_len {
        let n = size(at);
        per_row.push(Stmt::Block(block(&Ix::constant(at), n, at + n > hi)));
        at += n;
    }
    nest("o", &out_shape[..last], per_row)
}

/// Transposed convolution: every input position scatters into the outputs its taps reach.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_transpose(
    strides_: &[usize],
    dilation: &[usize],
    crop: &[usize],
    kernel: Kernel,
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
            vec![
                Place::Out(Ix::default().plus("p", filters).plus("f", 1)).set(
                    bias.map_or(Val::Const(0.0), |b| {
                        Val::load(Buf::W(b), Ix::default().plus("f", 1))
                    }),
                ),
            ],
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
            vec![Place::Out(out.plus("f", 1)).write(
                WriteOp::Add,
                Val::load(Buf::In(0), x)
                    * kernel.load(
                        row.plus("f", 1),
                        Ix::default().plus("c", 1),
                        Ix::default().plus("f", 1),
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

/// A convolution without padding and the max pooling of its output over windows that tile
/// it ([`crate::ir::Op::ConvMaxPool`]). Per pooled position, row by row of the pooling
/// window, the convolution positions of the row (`k`) are summed in local accumulators
/// exactly as [`conv`] sums them (bias, then taps, then channels), activated, and folded
/// into the running maximum in the pooling's order; only the maximum is stored. The
/// filters go `block` at a time (all at once when `block` is the filter count), the kernel
/// packed `[filters / block * rows][block]`, so that a block's accumulators fit a core's
/// registers and its weights are read in order.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_max_pool(
    conv: &Window,
    pool: &Window,
    kernel: Kernel,
    block: usize,
    bias: Option<WeightId>,
    epilogue: Epilogue,
    in_shape: &[usize],
    out_shape: &[usize],
    per_pass: usize,
) -> Vec<Stmt> {
    let rank = conv.size.len();
    let last = rank - 1;
    let (channels, filters) = (in_shape[rank], out_shape[rank]);
    let row = pool.size[last];
    let (xst, ost, tap_st) = (strides(in_shape), strides(out_shape), strides(&conv.size));
    let blocks = filters / block;
    let rows = channels * conv.size.iter().product::<usize>();
    let f = Ix::default().plus("f", 1);
    // The filter of `f` in block `b`.
    let filter = if blocks > 1 {
        Ix::default().plus("b", block).plus("f", 1)
    } else {
        f.clone()
    };
    let slot = Ix::default().plus("k", block).plus("f", 1);
    let (acc, max) = (
        || Buf::Local(Array::named("acc".into())),
        || Buf::Local(Array::named("v".into())),
    );
    // Input position along axis d: (p * pool stride + q) * conv stride + t * dilation.
    let mut input = Ix::default();
    let mut weight_row = Ix::default();
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
    if blocks > 1 {
        weight_row = weight_row.plus("b", rows);
    }
    let start = bias.map_or(Val::Const(0.0), |b| Val::load(Buf::W(b), filter.clone()));
    let init = for_(
        "k",
        row,
        for_(
            "f",
            block,
            vec![Place::Local(Array::named("acc".into()), slot.clone()).set(start)],
        ),
    );
    // The products of `terms` (input index, kernel row), each position's added in one
    // statement when `chained`.
    let pass = |terms: &[(Ix, Ix)], chained: bool| {
        let x = |j: usize| {
            if chained {
                format!("x{j}")
            } else {
                "x".to_string()
            }
        };
        let mut stmts = Vec::new();
        for (j, (at, _)) in terms.iter().enumerate() {
            stmts.push(Stmt::let_(x(j), Val::load(Buf::In(0), at.clone())));
        }
        let product = |j: usize| {
            let row = terms[j].1.clone();
            Val::var(&x(j)) * kernel.load(row, f.clone(), filter.clone())
        };
        let sum = Place::Local(Array::named("acc".into()), slot.clone());
        let update = if chained {
            let start = Val::load(acc(), slot.clone());
            sum.set((0..terms.len()).fold(start, |total, j| total + product(j)))
        } else {
            sum.accumulate(product(0))
        };
        stmts.extend(for_("f", block, vec![update]));
        for_("k", row, stmts)
    };
    // Channels `first + j` for `j < n`.
    let channels_from = |first: &Ix, n: usize| -> Vec<(Ix, Ix)> {
        (0..n)
            .map(|j| {
                let at = first.clone().add_scaled(&input, 1).offset(j as isize);
                let row = first.clone().add_scaled(&weight_row, 1).offset(j as isize);
                (at, row)
            })
            .collect()
    };
    // Few channels (an image's first convolution): the products of every channel and of
    // the trailing tap axes from `outer` on, in the order the loops would take, in one
    // statement (at most twice `per_pass` products).
    let outer = (0..rank)
        .find(|&d| channels * conv.size[d..].iter().product::<usize>() <= 2 * per_pass)
        .filter(|_| per_pass > 1 && channels < per_pass);
    let taps = if let Some(outer) = outer {
        let mut terms = vec![(input.clone(), weight_row.clone())];
        for d in outer..rank {
            let t = format!("t{d}");
            terms = terms
                .into_iter()
                .flat_map(|(at, row)| {
                    let t = t.clone();
                    (0..conv.size[d])
                        .map(move |v| (at.clone().substitute(&t, v), row.clone().substitute(&t, v)))
                })
                .collect();
        }
        let terms: Vec<(Ix, Ix)> = terms
            .into_iter()
            .flat_map(|(at, row)| {
                (0..channels).map(move |c| {
                    (
                        at.clone().offset(c as isize),
                        row.clone().offset(c as isize),
                    )
                })
            })
            .collect();
        nest("t", &conv.size[..outer], pass(&terms, true))
    } else {
        let per_channel =
            |first: &Ix, n: usize, chained: bool| pass(&channels_from(first, n), chained);
        nest(
            "t",
            &conv.size,
            channel_passes(channels, per_pass, per_channel),
        )
    };
    let mut fold = vec![Stmt::let_("a".into(), Val::load(acc(), slot))];
    // No residual here: a pass fuses the pooling only into a plain convolution.
    debug_assert!(!epilogue.residual);
    let value = match epilogue.finish(Val::var("a"), &filter, &filter, "r") {
        (stmts, value @ Val::Var(_)) if stmts.is_empty() => value,
        (stmts, value) => {
            fold.extend(stmts);
            fold.push(Stmt::let_("y".into(), value));
            Val::var("y")
        }
    };
    let running = Val::max(Val::load(max(), filter.clone()), value);
    fold.push(Place::Local(Array::named("v".into()), filter.clone()).set(running));
    let block_row = [
        vec![Stmt::local(Array::named("acc".into()), row * block)],
        init,
        taps,
        for_("k", row, for_("f", block, fold)),
    ]
    .concat();
    let pool_row = if blocks > 1 {
        for_("b", blocks, block_row)
    } else {
        block_row
    };
    let out = ix("p", &ost[..rank]).plus("f", 1);
    let body = [
        vec![Stmt::local(Array::named("v".into()), filters)],
        for_(
            "f",
            filters,
            vec![Place::Local(Array::named("v".into()), f.clone())
                .set(Val::Const(f32::NEG_INFINITY))],
        ),
        nest("q", &pool.size[..last], pool_row),
        for_("f", filters, vec![Place::Out(out).set(Val::load(max(), f))]),
    ]
    .concat();
    nest("p", &out_shape[..rank], body)
}
