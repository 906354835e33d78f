//! Lowering of the recurrent op: the time loop, written once in the loop language.
//!
//! The state (h, and c for an LSTM) and the packed gate sums live in the node's workspace
//! (`work`, planned in the scratch arena). Each step computes the gate sums
//! `bias + x_t · W + h · U` as one register-blocked matrix-vector product over the packed
//! gate axis (see `dense`), then runs the elementwise gate math and writes h into the output row
//! directly when the layer returns sequences.

use super::dense::{matvec, Rows};
use super::loops::{for_, Buf, Cond, Index, Ix, Place, Stmt, Val};
use super::{AddWeight, Blocking, Kernel, WeightId};
use crate::ir::expr;
use crate::ir::{Activation, Cell, Recurrent};

fn at(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

/// `base + var`.
fn off(base: usize, var: &str) -> Ix {
    Ix::constant(base).plus(var, 1)
}

/// An activation applied to the value in variable `var`.
fn act(a: &Activation, var: &str) -> Val {
    match a {
        Activation::Linear => Val::var(var),
        a => match expr::activation(a) {
            Some(e) => Val::Apply(e, var.to_string()),
            None => Val::var(var),
        },
    }
}

/// GRU: `h = z * h' + (1 - z) * hh`, with `h'` at the start of the workspace.
fn gru_h() -> Stmt {
    let_(
        "h",
        Val::var("z") * work(at("k")) + (Val::Const(1.0) - Val::var("z")) * Val::var("hh"),
    )
}

fn let_(name: &str, v: Val) -> Stmt {
    Stmt::let_(name.to_string(), v)
}

fn work(ix: Ix) -> Val {
    Val::load(Buf::Work, ix)
}

/// `work[dst + o] = bias[o] + sum_s x_s · w_s[.][col_s + o]` for `o < n` (zero bias
/// without one): the packed gate sums, one register-blocked matrix-vector product.
fn gates(
    dst: usize,
    n: usize,
    sources: &[Rows],
    bias: Option<WeightId>,
    rows: Blocking,
) -> Vec<Stmt> {
    let finish = |o: Ix, sum: Val| {
        let value = match bias {
            Some(b) => Val::load(Buf::W(b), o.clone()) + sum,
            None => sum,
        };
        vec![Place::Work(Ix::constant(dst).add_scaled(&o, 1)).set(value)]
    };
    matvec(n, sources, rows, &finish)
}

/// The loops of one recurrent node over an input `[steps, features]`.
/// `kernel` and `recurrent` are the kernels, registered by the caller.
pub(crate) fn recurrent(
    r: &Recurrent,
    steps: usize,
    features: usize,
    [kernel, recurrent]: [Kernel; 2],
    add_weight: &mut AddWeight,
    rows: Blocking,
) -> Vec<Stmt> {
    let (u, g) = (r.units, r.cell.gates());
    let (bias, recurrent_bias) = match (&r.bias, r.cell) {
        (Some(b), Cell::Gru { reset_after: true }) => (
            Some(add_weight("input_bias", vec![g * u], &b.data[..g * u])),
            Some(add_weight("recurrent_bias", vec![g * u], &b.data[g * u..])),
        ),
        (Some(b), _) => (Some(add_weight("bias", vec![g * u], &b.data)), None),
        (None, _) => (None, None),
    };
    let states = r.cell.states() * u;
    // The state starts at zero, or at the initial states (inputs 1, 2: h, c).
    let mut out = if r.initial_state {
        (0..r.cell.states())
            .flat_map(|j| {
                for_(
                    "k",
                    u,
                    vec![Place::Work(off(j * u, "k")).set(Val::load(Buf::In(1 + j), at("k")))],
                )
            })
            .collect()
    } else {
        for_("k", states, vec![Place::Work(at("k")).set(Val::Const(0.0))])
    };
    // With a mask, the last output (what a masked step emits) follows the cell's
    // workspace, starting at zero.
    let last = r.cell.workspace(u);
    if r.masked {
        out.extend(for_(
            "k",
            u,
            vec![Place::Work(off(last, "k")).set(Val::Const(0.0))],
        ));
    }

    // Time indices: `s` counts processing steps; `t` is the input row, `row` the output row.
    let mut body = Vec::new();
    let reversed = |name: &str, body: &mut Vec<Stmt>| -> String {
        if steps == 1 {
            "s".into()
        } else {
            body.push(Stmt::LetIndex {
                name: name.into(),
                value: Index::Reversed {
                    var: "s".into(),
                    last: steps - 1,
                },
            });
            name.into()
        }
    };
    let t = if r.go_backwards {
        reversed("t", &mut body)
    } else {
        "s".into()
    };
    let row = if r.reverse_sequences && r.return_sequences {
        reversed("row", &mut body)
    } else {
        "s".into()
    };
    let x_t = Rows {
        buf: Buf::In(0),
        base: Ix::default().plus(&t, features),
        count: features,
        weight: kernel,
        col: 0,
        packed: false,
    };
    let h_prev = |col: usize| Rows {
        buf: Buf::Work,
        base: Ix::default(),
        count: u,
        weight: recurrent,
        col,
        packed: false,
    };
    // Stores the new h (in variable `h`) into the state and the output row.
    let keep_h = |stmts: &mut Vec<Stmt>| {
        stmts.push(Place::Work(at("k")).set(Val::var("h")));
        if r.masked {
            stmts.push(Place::Work(off(last, "k")).set(Val::var("h")));
        }
        if r.return_sequences {
            stmts.push(Place::Out(Ix::default().plus(&row, u).plus("k", 1)).set(Val::var("h")));
        }
    };
    let ra = &r.recurrent_activation;
    match r.cell {
        Cell::Lstm => {
            // work: h [0, u), c [u, 2u), z [2u, 6u).
            let z = 2 * u;
            body.extend(gates(z, 4 * u, &[x_t, h_prev(0)], bias, rows));
            let mut gate = vec![
                let_("zi", work(off(z, "k"))),
                let_("zf", work(off(z + u, "k"))),
                let_("zc", work(off(z + 2 * u, "k"))),
                let_("zo", work(off(z + 3 * u, "k"))),
                let_("ig", act(ra, "zi")),
                let_("fg", act(ra, "zf")),
                let_("cg", act(&r.activation, "zc")),
                let_("og", act(ra, "zo")),
                let_(
                    "c",
                    Val::var("fg") * work(off(u, "k")) + Val::var("ig") * Val::var("cg"),
                ),
                Place::Work(off(u, "k")).set(Val::var("c")),
                let_("h", Val::var("og") * act(&r.activation, "c")),
            ];
            keep_h(&mut gate);
            body.extend(for_("k", u, gate));
        }
        Cell::Gru { reset_after } => {
            // work: h [0, u), x part [u, 4u), h part [4u, 7u), r * h [7u, 8u).
            let (zx, zh, rh) = (u, 4 * u, 7 * u);
            body.extend(gates(zx, 3 * u, &[x_t], bias, rows));
            if reset_after {
                body.extend(gates(zh, 3 * u, &[h_prev(0)], recurrent_bias, rows));
                let mut gate = vec![
                    let_("az", work(off(zx, "k")) + work(off(zh, "k"))),
                    let_("ar", work(off(zx + u, "k")) + work(off(zh + u, "k"))),
                    let_("z", act(ra, "az")),
                    let_("r", act(ra, "ar")),
                    let_(
                        "ah",
                        work(off(zx + 2 * u, "k")) + Val::var("r") * work(off(zh + 2 * u, "k")),
                    ),
                    let_("hh", act(&r.activation, "ah")),
                    gru_h(),
                ];
                keep_h(&mut gate);
                body.extend(for_("k", u, gate));
            } else {
                body.extend(gates(zh, 2 * u, &[h_prev(0)], None, rows));
                body.extend(for_(
                    "k",
                    u,
                    vec![
                        let_("az", work(off(zx, "k")) + work(off(zh, "k"))),
                        let_("ar", work(off(zx + u, "k")) + work(off(zh + u, "k"))),
                        // z waits in the (spent) h part for the second loop.
                        Place::Work(off(zh, "k")).set(act(ra, "az")),
                        let_("r", act(ra, "ar")),
                        Place::Work(off(rh, "k")).set(Val::var("r") * work(at("k"))),
                    ],
                ));
                let r_h = Rows {
                    buf: Buf::Work,
                    base: Ix::constant(rh),
                    ..h_prev(2 * u)
                };
                body.extend(gates(zh + 2 * u, u, &[r_h], None, rows));
                let mut gate = vec![
                    let_(
                        "ah",
                        work(off(zx + 2 * u, "k")) + work(off(zh + 2 * u, "k")),
                    ),
                    let_("hh", act(&r.activation, "ah")),
                    let_("z", work(off(zh, "k"))),
                    gru_h(),
                ];
                keep_h(&mut gate);
                body.extend(for_("k", u, gate));
            }
        }
        Cell::Simple => {
            // work: h [0, u), z [u, 2u).
            body.extend(gates(u, u, &[x_t, h_prev(0)], bias, rows));
            let mut gate = vec![
                let_("z", work(off(u, "k"))),
                let_("h", act(&r.activation, "z")),
            ];
            keep_h(&mut gate);
            body.extend(for_("k", u, gate));
        }
    }
    if r.masked {
        // The step runs where the mask keeps it; a masked step keeps the state and emits
        // the last output (zeros with zero_output_for_mask).
        let split = body
            .iter()
            .position(|s| {
                !matches!(
                    s,
                    Stmt::LetIndex {
                        value: Index::Reversed { .. },
                        ..
                    }
                )
            })
            .unwrap_or(body.len());
        let step = body.split_off(split);
        body.push(let_("m", Val::load(Buf::In(r.arity() - 1), at(&t))));
        body.push(Stmt::If(
            Cond::Greater(Val::var("m"), Val::Const(0.5)),
            step,
        ));
        let mut skip = Vec::new();
        if r.zero_output_for_mask {
            skip.extend(for_(
                "k",
                u,
                vec![Place::Work(off(last, "k")).set(Val::Const(0.0))],
            ));
        }
        if r.return_sequences {
            skip.extend(for_(
                "k",
                u,
                vec![Place::Out(Ix::default().plus(&row, u).plus("k", 1)).set(work(off(last, "k")))],
            ));
        }
        if !skip.is_empty() {
            body.push(Stmt::If(
                Cond::Greater(Val::Const(0.5), Val::var("m")),
                skip,
            ));
        }
    }
    out.extend(for_("s", steps, body));
    if !r.return_sequences {
        let from = if r.masked { last } else { 0 };
        out.extend(for_(
            "k",
            u,
            vec![Place::Out(at("k")).set(work(off(from, "k")))],
        ));
    }
    if r.return_state {
        let main = r.main_len(steps);
        out.extend(for_(
            "k",
            states,
            vec![Place::Out(off(main, "k")).set(work(at("k")))],
        ));
    }
    out
}

/// The kernel of `Op::SequenceMask`: `rows` values of 1.0 (keep) or 0.0, each 0.0 when
/// all `features` inputs of its row equal `value` (`features` is 1 without
/// `reduce_last`). Integer indices (Embedding `mask_zero`, `value` 0) are clamped to 0..=1
/// and pick 0.0 or 1.0 from a two-value table.
pub fn sequence_mask(
    value: f32,
    rows: usize,
    features: usize,
    integer: bool,
    add_weight: &mut AddWeight,
) -> Vec<Stmt> {
    if integer {
        let table = add_weight("keep", vec![2], &[0.0, 1.0]);
        return for_(
            "i",
            rows,
            vec![
                Stmt::LetIndex {
                    name: "index".into(),
                    value: Index::Lookup {
                        input: 0,
                        ix: at("i"),
                        max: 1,
                        integer: true,
                    },
                },
                Place::Out(at("i")).set(Val::load(Buf::W(table), at("index"))),
            ],
        );
    }
    let mut body = vec![Stmt::let_mut("equal".into(), Val::Const(0.0))];
    body.extend(for_(
        "f",
        features,
        vec![Stmt::If(
            Cond::Equal(
                Val::load(Buf::In(0), Ix::default().plus("i", features).plus("f", 1)),
                Val::Const(value),
            ),
            vec![Place::Var("equal".into()).accumulate(Val::Const(1.0))],
        )],
    ));
    body.push(Place::Out(at("i")).set(Val::Const(1.0)));
    body.push(Stmt::If(
        Cond::Equal(Val::var("equal"), Val::Const(features as f32)),
        vec![Place::Out(at("i")).set(Val::Const(0.0))],
    ));
    for_("i", rows, body)
}
