//! The integer kernels of a quantized model ([`crate::ir::int8`]) as loops: every sum in
//! `i32`, every rescale a call of the runtime's `requantize_i32`, no float in between
//! (only [`QOp::Quantize`] and [`QOp::Dequantize`] touch f32, at the edges of an int8 run).

use super::index::{ix, nest, strides, taps};
use super::loops::{for_, Buf, IVal, Ix, Place, Stmt, Val};
use super::{AddStored, WeightId};
use crate::ir::int8::{QAdd, QLinear, QOp};
use crate::ir::{numel, PoolKind, WeightsDtype, Window};

fn at(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

/// Lowers one quantized op; `x` is its first input's shape, `y` its output's.
pub(super) fn lower(op: &QOp, in_shapes: &[&[usize]], y: &[usize], add: &AddStored) -> Vec<Stmt> {
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
            None => dense(l, numel(x), add),
            Some((window, groups)) => conv(l, window, *groups, x, y, add),
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
    fn start(&self, o: &Ix) -> Stmt {
        Stmt::ilet_mut("acc", IVal::LoadI32(Buf::W(self.bias), o.clone()))
    }

    /// `acc` brought to the output's scale, clamped and stored at `to`.
    fn finish(&self, l: &QLinear, o: &Ix, to: Ix) -> Vec<Stmt> {
        let requantized = IVal::requant(
            IVal::var("acc"),
            IVal::LoadI32(Buf::W(self.multiplier), o.clone()),
            IVal::LoadI32(Buf::W(self.shift), o.clone()),
        );
        vec![
            Stmt::ilet("q", offset(requantized, l.output.zero_point)),
            Place::Out(to).iset(IVal::var("q").clamp(l.lo, l.hi)),
        ]
    }
}

/// A Dense over `len / inputs` rows. The kernel is stored transposed, `[units][inputs]`,
/// so that each sum reads its weights in order, and the input's zero point is folded into
/// the bias (`sum (x - z) w = sum x w - z sum w`: exact in integers).
fn dense(l: &QLinear, len: usize, add: &AddStored) -> Vec<Stmt> {
    let (inputs, units) = (l.kernel.shape[0], l.kernel.shape[1]);
    let rows = len / inputs.max(1);
    let mut transposed = Vec::with_capacity(l.kernel.data.len());
    for o in 0..units {
        transposed.extend((0..inputs).map(|i| l.kernel.data[i * units + o]));
    }
    let channels = Channels::new(l, &transposed, inputs, true, add);
    let w = add("kernel", vec![units, inputs], &transposed, WeightsDtype::Q8);
    let o = at("o");
    let product = IVal::load(Buf::In(0), Ix::default().plus("r", inputs).plus("i", 1))
        * IVal::load(Buf::W2(w, o.clone()), at("i"));
    let mut body = vec![channels.start(&o)];
    body.extend(for_(
        "i",
        inputs,
        vec![Place::Var("acc".into()).iadd(product)],
    ));
    body.extend(channels.finish(l, &o, Ix::default().plus("r", units).plus("o", 1)));
    for_("r", rows, for_("o", units, body))
}

/// A convolution (grouped, depthwise). The kernel is stored by filter, `[filters][taps *
/// channels per group]`. Where no tap can fall into the padding, the input's zero point is
/// folded into the bias as for a Dense; elsewhere each product subtracts it (a padding
/// tap, skipped, is the real 0).
fn conv(
    l: &QLinear,
    window: &Window,
    groups: usize,
    x: &[usize],
    y: &[usize],
    add: &AddStored,
) -> Vec<Stmt> {
    let rank = window.size.len();
    let filters = y[rank];
    let per_group = x[rank] / groups.max(1);
    let f_per_group = filters / groups.max(1);
    let row = l.kernel.data.len() / filters.max(1);
    let taps_n = row / per_group.max(1);
    let mut by_filter = Vec::with_capacity(l.kernel.data.len());
    for f in 0..filters {
        by_filter.extend((0..row).map(|r| l.kernel.data[r * filters + f]));
    }
    let unpadded = (0..rank).all(|d| {
        let last = (y[d] - 1) * window.strides[d] + (window.size[d] - 1) * window.dilation[d];
        window.padding[d].0 == 0 && last < x[d]
    });
    let channels = Channels::new(l, &by_filter, row, unpadded, add);
    let w = add("kernel", vec![filters, row], &by_filter, WeightsDtype::Q8);
    debug_assert_eq!(taps_n * per_group, row);
    let f = Ix::default().plus("g", f_per_group).plus("f", 1);
    let zero = if unpadded { 0 } else { l.input.zero_point };
    let accumulate = taps(window, x, y, |tap, input| {
        let xi = input.plus("g", per_group).plus("c", 1);
        let wi = Ix::default().add_scaled(&tap, per_group).plus("c", 1);
        let product =
            centered(IVal::load(Buf::In(0), xi), zero) * IVal::load(Buf::W2(w, f.clone()), wi);
        for_("c", per_group, vec![Place::Var("acc".into()).iadd(product)])
    });
    let out = ix("o", &strides(y)[..rank]).add_scaled(&f, 1);
    let mut body = vec![channels.start(&f)];
    body.extend(accumulate);
    body.extend(channels.finish(l, &f, out));
    nest(
        "o",
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
