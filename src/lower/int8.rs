//! The integer kernels of a quantized model ([`crate::ir::int8`]) as loops: every sum in
//! `i32`, every rescale a call of the runtime's `requantize_i32`, no float in between
//! (only [`QOp::Quantize`] and [`QOp::Dequantize`] touch f32, at the edges of an int8 run).

use super::index::{ix, nest, strides, taps};
use super::loops::{for_, walk, Array, Buf, IVal, Ix, Place, Stmt, Val, Visit};
use super::{AddStored, WeightId};
use crate::ir::int8::{QAdd, QLinear, QOp};
use crate::ir::{numel, PoolKind, WeightsDtype, Window};

fn at(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

/// Lowers one quantized op; `x` is its first input's shape, `y` its output's.
pub(super) fn lower(
    op: &QOp,
    in_shapes: &[&[usize]],
    y: &[usize],
    four: bool,
    add: &AddStored,
) -> Vec<Stmt> {
    let x = in_shapes[0];
    match op {
        QOp::Quantize(q) => for_(
            "i",
            numel(y),
            vec![Place::Out(at("i")).iset(IVal::Quantize(
                Box::new(Val::load(Buf::In(0), at("i"))),
                q.scale,
                q.zero_point,
            ))],
        ),
        QOp::Dequantize(q) => for_(
            "i",
            numel(y),
            vec![Place::Out(at("i")).set(
                Val::Int(Box::new(centered(
                    IVal::load(Buf::In(0), at("i")),
                    q.zero_point,
                ))) * Val::Const(q.scale),
            )],
        ),
        QOp::Linear(l) => match &l.conv {
            None => dense(l, numel(x), four, add),
            Some((window, groups)) => conv(l, window, *groups, x, y, four, add),
        },
        QOp::Pool { kind, window } => pool(*kind, window, x, y),
        QOp::GlobalPool { kind } => global_pool(*kind, x),
        QOp::Add(a) => add_kernel(a, numel(y)),
        QOp::Pad { padding, value } => pad(padding, *value, x, y),
    }
}

/// `v - zero_point` (just `v` for a zero point of 0).
fn centered(v: IVal, zero_point: i32) -> IVal {
    if zero_point == 0 {
        v
    } else {
        v - IVal::Const(zero_point)
    }
}

/// `v + zero_point` (just `v` for a zero point of 0).
fn offset(v: IVal, zero_point: i32) -> IVal {
    if zero_point == 0 {
        v
    } else {
        v + IVal::Const(zero_point)
    }
}

/// An array of `i32` values, stored as their bits.
fn add_i32(add: &AddStored, suffix: &str, values: &[i32]) -> WeightId {
    let bits: Vec<f32> = values.iter().map(|&v| f32::from_bits(v as u32)).collect();
    add(suffix, vec![values.len()], &bits, WeightsDtype::I32)
}

/// The per-channel arrays of a Dense or convolution: bias (less `zero_point * sum w` when
/// the input's zero point is folded in), multiplier and shift.
struct Channels {
    bias: WeightId,
    multiplier: WeightId,
    shift: WeightId,
}

impl Channels {
    fn new(l: &QLinear, weights: &[f32], row: usize, fold: bool, add: &AddStored) -> Channels {
        let bias: Vec<i32> = l
            .bias
            .iter()
            .zip(weights.chunks(row.max(1)))
            .map(|(&b, w)| {
                let sum: i32 = w.iter().map(|&v| v as i32).sum();
                if fold {
                    b - l.input.zero_point * sum
                } else {
                    b
                }
            })
            .collect();
        let multipliers: Vec<i32> = l.requant.iter().map(|r| r.multiplier).collect();
        let shifts: Vec<i32> = l.requant.iter().map(|r| r.shift).collect();
        Channels {
            bias: add_i32(add, "bias", &bias),
            multiplier: add_i32(add, "multiplier", &multipliers),
            shift: add_i32(add, "shift", &shifts),
        }
    }

    /// `let mut acc = bias[o]`.
    fn start(&self, o: &Ix, acc: &str) -> Stmt {
        Stmt::ilet_mut(acc, IVal::LoadI32(Buf::W(self.bias), o.clone()))
    }

    /// `acc` brought to the output's scale, clamped and stored at `to` (through a
    /// variable `q`: the clamp reads it twice).
    fn finish(&self, l: &QLinear, o: &Ix, to: Ix, acc: &str, q: &str) -> Vec<Stmt> {
        self.finish_value(l, o, to, IVal::var(acc), q)
    }

    /// [`Channels::finish`] of any sum.
    fn finish_value(&self, l: &QLinear, o: &Ix, to: Ix, acc: IVal, q: &str) -> Vec<Stmt> {
        let requantized = IVal::requant(
            acc,
            IVal::LoadI32(Buf::W(self.multiplier), o.clone()),
            IVal::LoadI32(Buf::W(self.shift), o.clone()),
        );
        vec![
            Stmt::ilet(q, offset(requantized, l.output.zero_point)),
            Place::Out(to).iset(IVal::var(q).clamp(l.lo, l.hi)),
        ]
    }

    /// Output channels `4b .. 4b + 4` (loop variable `b`) at once: their sums start from
    /// the biases and `accumulate` adds the products to `acc0 .. acc3` (one input run
    /// against the four weight rows, [`Stmt::Dots`]). The statements and the sums.
    fn four(
        &self,
        accumulate: impl FnOnce([String; 4]) -> Vec<Stmt>,
    ) -> (Vec<Stmt>, Vec<(String, Ix)>) {
        let accs: [String; 4] = std::array::from_fn(|k| format!("acc{k}"));
        let sums: Vec<(String, Ix)> = (0..4)
            .map(|k| {
                (
                    accs[k].clone(),
                    Ix::default().plus("b", 4).offset(k as isize),
                )
            })
            .collect();
        let mut body: Vec<Stmt> = sums.iter().map(|(a, c)| self.start(c, a)).collect();
        body.extend(accumulate(accs));
        (body, sums)
    }

    /// `position` (which computes the sums, each `(name, channel)`), then each sum
    /// finished at `out + channel`; with a fused max pooling, `position` runs at every
    /// position of the window (`u0`, `u1`, ... stand for its `o0`, `o1`, ...: output
    /// position `p` times the strides plus `u`) and the largest sum is finished.
    fn finish_all(
        &self,
        l: &QLinear,
        mut position: Vec<Stmt>,
        sums: &[(String, Ix)],
        out: &Ix,
    ) -> Vec<Stmt> {
        let finish = |name: &str, channel: &Ix, k: usize| {
            let to = out.clone().add_scaled(channel, 1);
            self.finish(l, channel, to, name, &format!("q{k}"))
        };
        let Some(pool) = &l.pool else {
            for (k, (name, channel)) in sums.iter().enumerate() {
                position.extend(finish(name, channel, k));
            }
            return position;
        };
        walk(&mut position, &mut Pooled(&pool.strides));
        let best = |name: &str| format!("{name}_max");
        let mut body: Vec<Stmt> = (sums.iter())
            .map(|(name, _)| Stmt::ilet_mut(&best(name), IVal::Const(i32::MIN)))
            .collect();
        for (name, _) in sums {
            let largest = IVal::max(IVal::var(&best(name)), IVal::var(name));
            position.push(Place::Var(best(name)).iset(largest));
        }
        body.extend(nest("u", &pool.size, vec![Stmt::Block(position)]));
        for (k, (name, channel)) in sums.iter().enumerate() {
            body.extend(finish(&best(name), channel, k));
        }
        body
    }
}

impl Channels {
    /// Every filter of an output position at once: `position` computes the sums in a
    /// local array (declaring it); each is finished at `out + f`. With a fused max
    /// pooling, `position` runs at every position of the window and each filter's largest
    /// sum is finished (see [`Channels::finish_all`]).
    fn across(
        &self,
        l: &QLinear,
        (mut position, sums): (Vec<Stmt>, Array),
        filters: usize,
        out: &Ix,
    ) -> Vec<Stmt> {
        let f = at("f");
        let load = |a: &Array| IVal::LoadI32(Buf::Local(a.clone()), f.clone());
        let finish = |a: &Array| {
            let to = out.clone().plus("f", 1);
            for_("f", filters, self.finish_value(l, &f, to, load(a), "q0"))
        };
        let Some(pool) = &l.pool else {
            position.extend(finish(&sums));
            return position;
        };
        walk(&mut position, &mut Pooled(&pool.strides));
        let best = Array::named("acc_max".into());
        let mut body = vec![Stmt::ILocal {
            array: best.clone(),
            len: filters,
        }];
        let place = || Place::Local(best.clone(), f.clone());
        body.extend(for_(
            "f",
            filters,
            vec![place().iset(IVal::Const(i32::MIN))],
        ));
        let largest = IVal::max(load(&best), load(&sums));
        position.extend(for_("f", filters, vec![place().iset(largest)]));
        body.extend(nest("u", &pool.size, vec![Stmt::Block(position)]));
        body.extend(finish(&best));
        body
    }
}

/// Output position `o_d` of a convolution as `p_d * stride_d + u_d`: pooling window `p`'s
/// position `u` (see [`Channels::finish_all`]).
struct Pooled<'a>(&'a [usize]);

impl Visit for Pooled<'_> {
    fn ix(&mut self, ix: &mut Ix) {
        let terms = std::mem::take(&mut ix.terms);
        for (var, s) in terms {
            match var.strip_prefix('o').and_then(|d| d.parse::<usize>().ok()) {
                Some(d) => {
                    ix.terms.push((format!("p{d}"), s * self.0[d]));
                    ix.terms.push((format!("u{d}"), s));
                }
                None => ix.terms.push((var, s)),
            }
        }
    }
}

/// Rows of `row` values, four at a time interleaved by fours (see [`Stmt::Dots`]): block
/// `b` holds, for each 4 values of its rows, 4 of row `4b`, then 4 of each next row.
fn interleaved(rows: &[f32], row: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len());
    for block in rows.chunks(4 * row) {
        for quad in 0..row / 4 {
            for r in block.chunks(row) {
                out.extend_from_slice(&r[4 * quad..4 * quad + 4]);
            }
        }
    }
    out
}

/// The shortest run a dot product is worth its call for; shorter sums stay loops, which
/// `--tune mcu` unrolls.
const DOT_MIN: usize = 16;

/// A Dense over `len / inputs` rows. The kernel is stored transposed, `[units][inputs]`,
/// so that each sum reads its weights in order, and the input's zero point is folded into
/// the bias (`sum (x - z) w = sum x w - z sum w`: exact in integers).
fn dense(l: &QLinear, len: usize, four: bool, add: &AddStored) -> Vec<Stmt> {
    let (inputs, units) = (l.kernel.shape[0], l.kernel.shape[1]);
    let rows = len / inputs.max(1);
    let mut transposed = Vec::with_capacity(l.kernel.data.len());
    for o in 0..units {
        transposed.extend((0..inputs).map(|i| l.kernel.data[i * units + o]));
    }
    let channels = Channels::new(l, &transposed, inputs, true, add);
    let row = Ix::default().plus("r", inputs);
    let out = Ix::default().plus("r", units);
    if four && units.is_multiple_of(4) && inputs.is_multiple_of(4) {
        let data = interleaved(&transposed, inputs);
        let w = add(
            "kernel",
            vec![units / 4, 4 * inputs],
            &data,
            WeightsDtype::Q8,
        );
        let (position, sums) = channels.four(|sums| {
            vec![Stmt::Dots {
                sums,
                x: (Buf::In(0), row),
                w: (Buf::W2(w, at("b")), Ix::default()),
                len: inputs,
                rows: 1,
                stride: 0,
            }]
        });
        let body = channels.finish_all(l, position, &sums, &out);
        return for_("r", rows, for_("b", units / 4, body));
    }
    let w = add("kernel", vec![units, inputs], &transposed, WeightsDtype::Q8);
    let o = at("o");
    let dot = IVal::Dot(
        Box::new([(Buf::In(0), row), (Buf::W2(w, o.clone()), Ix::default())]),
        inputs,
    );
    let mut body = vec![
        channels.start(&o, "acc"),
        Place::Var("acc".into()).iadd(dot),
    ];
    body.extend(channels.finish(l, &o, out.plus("o", 1), "acc", "q0"));
    for_("r", rows, for_("o", units, body))
}

/// A convolution (grouped, depthwise), with a max pooling when one is fused. The kernel is
/// stored by filter, `[filters][taps * channels per group]`. Where no tap can fall into
/// the padding, the input's zero point is folded into the bias as for a Dense; elsewhere
/// each product subtracts it (a padding tap, skipped, is the real 0).
fn conv(
    l: &QLinear,
    window: &Window,
    groups: usize,
    x: &[usize],
    y: &[usize],
    four: bool,
    add: &AddStored,
) -> Vec<Stmt> {
    let rank = window.size.len();
    // The convolution's own output (`y` is the pooling's, when one is fused).
    let conv_y = l
        .float_op()
        .output_shape(&[x])
        .unwrap_or_else(|_| y.to_vec());
    let filters = y[rank];
    let per_group = x[rank] / groups.max(1);
    let f_per_group = filters / groups.max(1);
    let row = l.kernel.data.len() / filters.max(1);
    let mut by_filter = Vec::with_capacity(l.kernel.data.len());
    for f in 0..filters {
        by_filter.extend((0..row).map(|r| l.kernel.data[r * filters + f]));
    }
    let unpadded = (0..rank).all(|d| {
        let last = (conv_y[d] - 1) * window.strides[d] + (window.size[d] - 1) * window.dilation[d];
        window.padding[d].0 == 0 && last < x[d]
    });
    let channels = Channels::new(l, &by_filter, row, unpadded, add);
    let zero = if unpadded { 0 } else { l.input.zero_point };
    let outer = if l.pool.is_some() { "p" } else { "o" };
    let out = ix(outer, &strides(y)[..rank]);
    // Unpadded, with every channel in one group and the last window axis undilated, a
    // window row is one run of input values (`size * channels`), as is its weights' row:
    // dot products (the DSP extension's SMLAD on a Cortex-M4), four filters at a time.
    let last = rank - 1;
    let run = window.size[last] * per_group;
    let runs = unpadded && groups == 1 && window.dilation[last] == 1 && run >= DOT_MIN;
    let mut rows = window.clone();
    rows.size[last] = 1;
    if four && runs && filters.is_multiple_of(4) && run.is_multiple_of(4) {
        let data = interleaved(&by_filter, row);
        let w = add(
            "kernel",
            vec![filters / 4, 4 * row],
            &data,
            WeightsDtype::Q8,
        );
        // The window's rows along the next-to-last axis too are one call: `runs` input
        // runs `stride` apart, their weights one after the other.
        let (runs, stride) = match rank {
            1 => (1, 0),
            _ => (
                window.size[rank - 2],
                window.dilation[rank - 2] * strides(x)[rank - 2],
            ),
        };
        let mut outer_taps = rows.clone();
        if rank > 1 {
            outer_taps.size[rank - 2] = 1;
        }
        let (position, sums) = channels.four(|sums| {
            taps(&outer_taps, x, &conv_y, |tap, input| {
                let wi = Ix::default().add_scaled(&tap, 4 * runs * run);
                vec![Stmt::Dots {
                    sums,
                    x: (Buf::In(0), input),
                    w: (Buf::W2(w, at("b")), wi),
                    len: run,
                    rows: runs,
                    stride,
                }]
            })
        });
        let body = channels.finish_all(l, position, &sums, &out);
        return nest(outer, &y[..rank], for_("b", filters / 4, body));
    }
    let depthwise = per_group == 1 && f_per_group == 1;
    if !four && !runs && (groups == 1 || depthwise) {
        let position = |_: ()| {
            let f = at("f");
            let sums = Array::named("acc".into());
            let mut body = vec![Stmt::ILocal {
                array: sums.clone(),
                len: filters,
            }];
            let bias = IVal::LoadI32(Buf::W(channels.bias), f.clone());
            body.extend(for_(
                "f",
                filters,
                vec![Place::Local(sums.clone(), f.clone()).iset(bias)],
            ));
            // Keras's layout, `[taps * in][filters]`: the filters innermost.
            let w = add(
                "kernel",
                vec![row, filters],
                &l.kernel.data,
                WeightsDtype::Q8,
            );
            body.extend(taps(window, x, &conv_y, |tap, input| {
                let add = |xv: IVal, wrow: Ix| {
                    let product = xv * IVal::load(Buf::W2(w, wrow), f.clone());
                    Place::Local(sums.clone(), f.clone()).iadd(product)
                };
                if depthwise {
                    let xv = centered(IVal::load(Buf::In(0), input.plus("f", 1)), zero);
                    return for_("f", filters, vec![add(xv, tap)]);
                }
                let xv = centered(IVal::load(Buf::In(0), input.plus("c", 1)), zero);
                let wrow = Ix::default().add_scaled(&tap, per_group).plus("c", 1);
                let mut body = vec![Stmt::ilet("xv", xv)];
                body.extend(for_("f", filters, vec![add(IVal::var("xv"), wrow)]));
                for_("c", per_group, body)
            }));
            (body, sums)
        };
        return nest(
            outer,
            &y[..rank],
            channels.across(l, position(()), filters, &out),
        );
    }
    let w = add("kernel", vec![filters, row], &by_filter, WeightsDtype::Q8);
    let f = Ix::default().plus("g", f_per_group).plus("f", 1);
    let accumulate = if runs {
        taps(&rows, x, &conv_y, |tap, input| {
            let wi = Ix::default().add_scaled(&tap, run);
            let runs = [(Buf::In(0), input), (Buf::W2(w, f.clone()), wi)];
            vec![Place::Var("acc".into()).iadd(IVal::Dot(Box::new(runs), run))]
        })
    } else {
        taps(window, x, &conv_y, |tap, input| {
            let xi = input.plus("g", per_group).plus("c", 1);
            let wi = Ix::default().add_scaled(&tap, per_group).plus("c", 1);
            let product =
                centered(IVal::load(Buf::In(0), xi), zero) * IVal::load(Buf::W2(w, f.clone()), wi);
            for_("c", per_group, vec![Place::Var("acc".into()).iadd(product)])
        })
    };
    let mut position = vec![channels.start(&f, "acc")];
    position.extend(accumulate);
    let body = channels.finish_all(l, position, &[("acc".to_string(), f.clone())], &out);
    nest(
        outer,
        &y[..rank],
        for_("g", groups, for_("f", f_per_group, body)),
    )
}

/// Max or average pooling, per channel; an average divides by the taps inside the input.
fn pool(kind: PoolKind, window: &Window, x: &[usize], y: &[usize]) -> Vec<Stmt> {
    let rank = window.size.len();
    let channels = x[rank];
    let out = ix("o", &strides(y)[..rank]).plus("c", 1);
    let body = match kind {
        PoolKind::Max => {
            let mut body = vec![Place::Out(out.clone()).iset(IVal::Const(-128))];
            body.extend(taps(window, x, y, |_, input| {
                let v = IVal::load(Buf::In(0), input.plus("c", 1));
                let largest = IVal::max(IVal::load(Buf::Out, out.clone()), v);
                vec![Place::Out(out.clone()).iset(largest)]
            }));
            body
        }
        PoolKind::Average => {
            let mut body = vec![
                Stmt::ilet_mut("sum", IVal::Const(0)),
                Stmt::ilet_mut("count", IVal::Const(0)),
            ];
            body.extend(taps(window, x, y, |_, input| {
                vec![
                    Place::Var("sum".into()).iadd(IVal::load(Buf::In(0), input.plus("c", 1))),
                    Place::Var("count".into()).iadd(IVal::Const(1)),
                ]
            }));
            body.push(Place::Out(out).iset(IVal::RoundedDiv("sum".into(), "count".into())));
            body
        }
    };
    nest("o", &y[..rank], for_("c", channels, body))
}

/// Max or average over every spatial position, per channel.
fn global_pool(kind: PoolKind, x: &[usize]) -> Vec<Stmt> {
    let channels = x[x.len() - 1];
    let positions = numel(x) / channels.max(1);
    let v = IVal::load(Buf::In(0), Ix::default().plus("p", channels).plus("c", 1));
    let body = match kind {
        PoolKind::Max => {
            let mut body = vec![Place::Out(at("c")).iset(IVal::Const(-128))];
            let largest = IVal::max(IVal::load(Buf::Out, at("c")), v);
            body.extend(for_(
                "p",
                positions,
                vec![Place::Out(at("c")).iset(largest)],
            ));
            body
        }
        PoolKind::Average => {
            let mut body = vec![
                Stmt::ilet_mut("sum", IVal::Const(0)),
                Stmt::ilet("count", IVal::Const(positions as i32)),
            ];
            body.extend(for_("p", positions, vec![Place::Var("sum".into()).iadd(v)]));
            body.push(Place::Out(at("c")).iset(IVal::RoundedDiv("sum".into(), "count".into())));
            body
        }
    };
    for_("c", channels, body)
}

/// TFLite's int8 Add ([`QAdd::apply`]), elementwise.
fn add_kernel(a: &QAdd, len: usize) -> Vec<Stmt> {
    let scaled = |k: usize| {
        let shifted = centered(IVal::load(Buf::In(k), at("i")), a.inputs[k].zero_point)
            * IVal::Const(1 << QAdd::LEFT_SHIFT);
        IVal::requant(
            shifted,
            IVal::Const(a.requant[k].multiplier),
            IVal::Const(a.requant[k].shift),
        )
    };
    let sum = IVal::requant(
        IVal::var("a") + IVal::var("b"),
        IVal::Const(a.output_requant.multiplier),
        IVal::Const(a.output_requant.shift),
    );
    for_(
        "i",
        len,
        vec![
            Stmt::ilet("a", scaled(0)),
            Stmt::ilet("b", scaled(1)),
            Stmt::ilet("q", offset(sum, a.output.zero_point)),
            Place::Out(at("i")).iset(IVal::var("q").clamp(a.lo, a.hi)),
        ],
    )
}

/// Constant padding with the quantized pad value.
fn pad(padding: &[(usize, usize)], value: i32, x: &[usize], y: &[usize]) -> Vec<Stmt> {
    let ost = strides(y);
    let mut body = for_(
        "p",
        numel(y),
        vec![Place::Out(at("p")).iset(IVal::Const(value))],
    );
    let offset: usize = padding.iter().zip(&ost).map(|((b, _), s)| b * s).sum();
    body.extend(nest(
        "i",
        x,
        vec![Place::Out(ix("i", &ost).offset(offset as isize))
            .iset(IVal::load(Buf::In(0), ix("i", &strides(x))))],
    ));
    body
}
