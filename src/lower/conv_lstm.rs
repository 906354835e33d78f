//! Lowering of the ConvLSTM recurrence ([`ConvLstm`]): one loop over the steps, written
//! once in the loop language.
//!
//! The workspace holds h `[0, n)`, c `[n, 2n)` and the gate sums of every position
//! `[2n, 6n)` (`n` = positions x filters). Per step, each position's gate sums start at
//! its input gates (the input convolution, computed by the node before) and add the taps
//! of the recurrent convolution over the previous h (`same` padding: taps outside the
//! state are skipped by a guard), filters innermost; only then do the gate updates
//! overwrite h and c, and write h to the output row when the layer returns sequences.

use super::index::strides;
use super::loops::{for_, Buf, Index, Ix, Place, Stmt, Val};
use super::AddWeight;
use crate::ir::expr;
use crate::ir::{Activation, ConvLstm};

fn at(var: &str) -> Ix {
    Ix::default().plus(var, 1)
}

fn off(base: usize, var: &str) -> Ix {
    Ix::constant(base).plus(var, 1)
}

fn work(ix: Ix) -> Val {
    Val::load(Buf::Work, ix)
}

fn let_(name: &str, v: Val) -> Stmt {
    Stmt::let_(name.to_string(), v)
}

/// An activation applied to the value in variable `var`.
fn act(a: &Activation, var: &str) -> Val {
    match expr::activation(a) {
        Some(e) if *a != Activation::Linear => Val::Apply(e, var.to_string()),
        _ => Val::var(var),
    }
}

/// The loops of one ConvLSTM node over input gates `[steps, *spatial, 4 * filters]`.
pub fn conv_lstm(c: &ConvLstm, steps: usize, add_weight: &mut AddWeight) -> Vec<Stmt> {
    let (f, rank) = (c.filters, c.rank());
    let g = 4 * f;
    let positions: usize = c.spatial.iter().product();
    let n = positions * f;
    let (h, cell, z) = (0, n, 2 * n);
    let kernel = c.kernel_size().to_vec();
    let taps: usize = kernel.iter().product();
    let recurrent = add_weight("recurrent_kernel", vec![taps * f, g], &c.recurrent.data);
    let padding = c.padding();
    let pst = strides(&c.spatial);
    let kst = strides(&kernel);

    // h and c start at zero, or at the initial states (inputs 1 and 2).
    let mut out = if c.initial_state {
        let mut init = for_(
            "k",
            n,
            vec![Place::Work(at("k")).set(Val::load(Buf::In(1), at("k")))],
        );
        init.extend(for_(
            "k",
            n,
            vec![Place::Work(off(cell, "k")).set(Val::load(Buf::In(2), at("k")))],
        ));
        init
    } else {
        for_("k", 2 * n, vec![Place::Work(at("k")).set(Val::Const(0.0))])
    };

    let mut body = Vec::new();
    // `s` counts processing steps; `t` is the input step read.
    let t = if c.go_backwards && steps > 1 {
        body.push(Stmt::LetIndex {
            name: "t".into(),
            value: Index::Reversed {
                var: "s".into(),
                last: steps - 1,
            },
        });
        "t"
    } else {
        "s"
    };
    // Position o* (variables o0, o1, ...): its gate sums start at the input gates.
    let position = (0..rank).fold(Ix::default(), |ix, d| ix.plus(&format!("o{d}"), pst[d]));
    let sums = Ix::constant(z).add_scaled(&position, g);
    let gate = at("gi");
    let mut per_position = for_(
        "gi",
        g,
        vec![
            Place::Work(sums.clone().add_scaled(&gate, 1)).set(Val::load(
                Buf::In(0),
                Ix::default()
                    .plus(t, positions * g)
                    .add_scaled(&position, g)
                    .add_scaled(&gate, 1),
            )),
        ],
    );
    // Tap q* reads h at o* + q* - before (a zero outside the state: skipped).
    let tap = (0..rank).fold(Ix::default(), |ix, d| ix.plus(&format!("q{d}"), kst[d]));
    let neighbour = (0..rank).fold(Ix::default(), |ix, d| {
        ix.plus(&format!("o{d}"), pst[d] * f)
            .plus(&format!("q{d}"), pst[d] * f)
            .offset(-((padding[d].0 * pst[d] * f) as isize))
    });
    let mut accumulate = for_(
        "ch",
        f,
        [
            vec![let_(
                "hv",
                work(Ix::constant(h).add_scaled(&neighbour, 1).plus("ch", 1)),
            )],
            for_(
                "gi",
                g,
                vec![Place::Work(sums.clone().add_scaled(&gate, 1)).accumulate(
                    Val::var("hv")
                        * Val::load(
                            Buf::W2(recurrent, Ix::default().add_scaled(&tap, f).plus("ch", 1)),
                            gate.clone(),
                        ),
                )],
            ),
        ]
        .concat(),
    );
    for d in (0..rank).rev() {
        if kernel[d] > 1 {
            accumulate = vec![Stmt::IfInRange {
                ix: Ix::default()
                    .plus(&format!("o{d}"), 1)
                    .plus(&format!("q{d}"), 1),
                lo: padding[d].0,
                hi: padding[d].0 + c.spatial[d],
                body: accumulate,
            }];
        }
        accumulate = for_(&format!("q{d}"), kernel[d], accumulate);
    }
    per_position.extend(accumulate);
    body.extend((0..rank).rev().fold(per_position, |inner, d| {
        for_(&format!("o{d}"), c.spatial[d], inner)
    }));

    // The gates of every position and filter, once all sums are in.
    let ra = &c.recurrent_activation;
    let gates_at = |k: usize| work(Ix::constant(z + k * f).plus("p", g).plus("k", 1));
    let state = |base: usize| Ix::constant(base).plus("p", f).plus("k", 1);
    let mut update = vec![
        let_("zi", gates_at(0)),
        let_("zf", gates_at(1)),
        let_("zc", gates_at(2)),
        let_("zo", gates_at(3)),
        let_("ig", act(ra, "zi")),
        let_("fg", act(ra, "zf")),
        let_("cg", act(&c.activation, "zc")),
        let_("og", act(ra, "zo")),
        let_(
            "c",
            Val::var("fg") * work(state(cell)) + Val::var("ig") * Val::var("cg"),
        ),
        Place::Work(state(cell)).set(Val::var("c")),
        let_("h", Val::var("og") * act(&c.activation, "c")),
        Place::Work(state(h)).set(Val::var("h")),
    ];
    if c.return_sequences {
        update.push(
            Place::Out(Ix::default().plus("s", n).plus("p", f).plus("k", 1)).set(Val::var("h")),
        );
    }
    body.extend(for_("p", positions, for_("k", f, update)));
    out.extend(for_("s", steps, body));

    if !c.return_sequences {
        out.extend(for_("k", n, vec![Place::Out(at("k")).set(work(at("k")))]));
    }
    if c.return_state {
        // h then c, as they lie in the workspace.
        let main = c.main_len(steps);
        out.extend(for_(
            "k",
            2 * n,
            vec![Place::Out(off(main, "k")).set(work(at("k")))],
        ));
    }
    out
}
