//! Reference interpreter for the recurrent op: the cell equations written plainly, one
//! time step after another, as Keras states them (`keras/src/layers/rnn/{lstm,gru,simple_rnn}.py`).

use super::reference_math;
use crate::ir::expr;
use crate::ir::{Activation, Cell, ConvLstm, Recurrent};

/// Runs a recurrent layer on its inputs: the sequence, any initial states, then the mask.
pub(super) fn recurrent(r: &Recurrent, inputs: &[(&[f32], &[usize])]) -> Vec<f32> {
    let (x, shape) = inputs[0];
    let states: Vec<&[f32]> = inputs[1..1 + r.state_inputs()]
        .iter()
        .map(|(v, _)| *v)
        .collect();
    let mask = r.masked.then(|| inputs[inputs.len() - 1].0);
    eval(r, x, shape, &states, mask)
}

/// Runs a ConvLSTM on its inputs: the sequence, then any initial states.
pub(super) fn conv_lstm_node(c: &ConvLstm, inputs: &[(&[f32], &[usize])]) -> Vec<f32> {
    let states: Vec<&[f32]> = inputs[1..].iter().map(|(v, _)| *v).collect();
    conv_lstm(c, inputs[0].0, inputs[0].1[0], &states)
}

/// `SequenceMask`: 0.0 where every compared value equals `value` (NaN equals nothing),
/// else 1.0; over the last axis when `reduce_last`.
pub(super) fn sequence_mask(x: &[f32], shape: &[usize], value: f32, reduce_last: bool) -> Vec<f32> {
    let keep = |row: &[f32]| {
        if row.iter().all(|&v| v == value) {
            0.0
        } else {
            1.0
        }
    };
    if reduce_last {
        let f = shape.last().copied().unwrap_or(1).max(1);
        x.chunks(f).map(keep).collect()
    } else {
        x.chunks(1).map(keep).collect()
    }
}

/// Runs the recurrence over `x` of shape `[steps, features]` from the given initial
/// states (h, then c for an LSTM; zero when not given), skipping the steps `mask`
/// (1.0 keep, 0.0 skip) masks as Keras does.
fn eval(
    r: &Recurrent,
    x: &[f32],
    shape: &[usize],
    states: &[&[f32]],
    mask: Option<&[f32]>,
) -> Vec<f32> {
    let (steps, features) = (shape[0], shape[1]);
    let (u, g) = (r.units, r.cell.gates());
    // Each activation's formula, built once.
    let formulas: Vec<(&Activation, Option<expr::Expr>)> = [&r.activation, &r.recurrent_activation]
        .into_iter()
        .map(|a| (a, expr::activation(a)))
        .collect();
    let act = |a: &Activation, v: f32| match formulas.iter().find(|(f, _)| *f == a) {
        Some((_, Some(e))) => e.eval(v, &reference_math),
        _ => v,
    };
    let mut h = states
        .first()
        .map_or_else(|| vec![0.0f32; u], |s| s.to_vec());
    let mut c = states
        .get(1)
        .map_or_else(|| vec![0.0f32; u], |s| s.to_vec());
    let mut out = vec![0.0f32; r.main_len(steps)];
    // `x · W + b_input` and `h · U (+ b_recurrent)` for one step.
    let input_part = |t: usize| -> Vec<f32> {
        let mut z = match (&r.bias, r.cell) {
            (Some(b), _) => b.data[..g * u].to_vec(),
            (None, _) => vec![0.0; g * u],
        };
        for i in 0..features {
            let xi = x[t * features + i];
            for (o, zo) in z.iter_mut().enumerate() {
                *zo += xi * r.kernel.data[i * g * u + o];
            }
        }
        z
    };
    let recurrent_part = |h: &[f32], bias: Option<&[f32]>| -> Vec<f32> {
        let mut z = bias.map_or_else(|| vec![0.0; g * u], <[f32]>::to_vec);
        for (j, &hj) in h.iter().enumerate() {
            for (o, zo) in z.iter_mut().enumerate() {
                *zo += hj * r.recurrent.data[j * g * u + o];
            }
        }
        z
    };
    // The last output (Keras's `prev_output`): what a masked step emits.
    let mut last = vec![0.0f32; u];
    let row_of = |s: usize| {
        if r.reverse_sequences {
            steps - 1 - s
        } else {
            s
        }
    };
    for s in 0..steps {
        let t = if r.go_backwards { steps - 1 - s } else { s };
        if mask.is_some_and(|m| m[t] == 0.0) {
            if r.zero_output_for_mask {
                last.fill(0.0);
            }
            if r.return_sequences {
                out[row_of(s) * u..(row_of(s) + 1) * u].copy_from_slice(&last);
            }
            continue;
        }
        let zx = input_part(t);
        match r.cell {
            Cell::Lstm => {
                let zh = recurrent_part(&h, None);
                for k in 0..u {
                    let z = |gate: usize| zx[gate * u + k] + zh[gate * u + k];
                    let i = act(&r.recurrent_activation, z(0));
                    let f = act(&r.recurrent_activation, z(1));
                    let cand = act(&r.activation, z(2));
                    let o = act(&r.recurrent_activation, z(3));
                    c[k] = f * c[k] + i * cand;
                    h[k] = o * act(&r.activation, c[k]);
                }
            }
            Cell::Gru { reset_after: true } => {
                let rec_bias = r.bias.as_ref().map(|b| &b.data[g * u..]);
                let zh = recurrent_part(&h, rec_bias);
                for k in 0..u {
                    let z = act(&r.recurrent_activation, zx[k] + zh[k]);
                    let rr = act(&r.recurrent_activation, zx[u + k] + zh[u + k]);
                    let hh = act(&r.activation, zx[2 * u + k] + rr * zh[2 * u + k]);
                    h[k] = z * h[k] + (1.0 - z) * hh;
                }
            }
            Cell::Gru { reset_after: false } => {
                let zh = recurrent_part(&h, None);
                let gates: Vec<(f32, f32)> = (0..u)
                    .map(|k| {
                        (
                            act(&r.recurrent_activation, zx[k] + zh[k]),
                            act(&r.recurrent_activation, zx[u + k] + zh[u + k]),
                        )
                    })
                    .collect();
                let rh: Vec<f32> = (0..u).map(|k| gates[k].1 * h[k]).collect();
                let mut hh = zx[2 * u..].to_vec();
                for (j, &v) in rh.iter().enumerate() {
                    for (k, o) in hh.iter_mut().enumerate() {
                        *o += v * r.recurrent.data[j * g * u + 2 * u + k];
                    }
                }
                for k in 0..u {
                    let z = gates[k].0;
                    h[k] = z * h[k] + (1.0 - z) * act(&r.activation, hh[k]);
                }
            }
            Cell::Simple => {
                let zh = recurrent_part(&h, None);
                for k in 0..u {
                    h[k] = act(&r.activation, zx[k] + zh[k]);
                }
            }
        }
        last.copy_from_slice(&h);
        if r.return_sequences {
            let row = row_of(s);
            out[row * u..(row + 1) * u].copy_from_slice(&h);
        }
    }
    if !r.return_sequences {
        out.copy_from_slice(&last);
    }
    if r.return_state {
        out.extend_from_slice(&h);
        if r.cell == Cell::Lstm {
            out.extend_from_slice(&c);
        }
    }
    out
}

/// Runs a ConvLSTM recurrence over `gates` (`[steps, *spatial, 4 * filters]`, the input
/// convolution with its bias) from the given initial h and c (zero when not given): per
/// step, `z = gates[t] + conv_same(h, recurrent)` at every position, then the LSTM gate math.
fn conv_lstm(c: &ConvLstm, gates: &[f32], steps: usize, states: &[&[f32]]) -> Vec<f32> {
    let f = c.filters;
    let rank = c.rank();
    let spatial = &c.spatial;
    let positions: usize = spatial.iter().product();
    let kernel = c.kernel_size().to_vec();
    let taps: usize = kernel.iter().product();
    let padding = c.padding();
    let act = |a: &Activation, v: f32| match expr::activation(a) {
        Some(e) => e.eval(v, &reference_math),
        None => v,
    };
    let mut h = states
        .first()
        .map_or_else(|| vec![0.0f32; positions * f], |s| s.to_vec());
    let mut cs = states
        .get(1)
        .map_or_else(|| vec![0.0f32; positions * f], |s| s.to_vec());
    let mut out = Vec::with_capacity(c.main_len(steps) + 2 * positions * f);
    // Row-major coordinates of a flat index over `dims`.
    let coords = |mut flat: usize, dims: &[usize]| -> Vec<usize> {
        let mut at = vec![0; dims.len()];
        for d in (0..dims.len()).rev() {
            at[d] = flat % dims[d];
            flat /= dims[d];
        }
        at
    };
    for s in 0..steps {
        let t = if c.go_backwards { steps - 1 - s } else { s };
        let frame = &gates[t * positions * 4 * f..(t + 1) * positions * 4 * f];
        let mut z = frame.to_vec();
        for p in 0..positions {
            let at = coords(p, spatial);
            for tap in 0..taps {
                let offset = coords(tap, &kernel);
                // The neighbour `at + offset - before`, if inside (else zero padding).
                let mut q = 0;
                let mut inside = true;
                for d in 0..rank {
                    let pos = (at[d] + offset[d]) as isize - padding[d].0 as isize;
                    if pos < 0 || pos >= spatial[d] as isize {
                        inside = false;
                        break;
                    }
                    q = q * spatial[d] + pos as usize;
                }
                if !inside {
                    continue;
                }
                for ch in 0..f {
                    let hv = h[q * f + ch];
                    let row = &c.recurrent.data[(tap * f + ch) * 4 * f..(tap * f + ch + 1) * 4 * f];
                    for (zg, w) in z[p * 4 * f..(p + 1) * 4 * f].iter_mut().zip(row) {
                        *zg += hv * w;
                    }
                }
            }
        }
        let ra = &c.recurrent_activation;
        for p in 0..positions {
            let zp = &z[p * 4 * f..(p + 1) * 4 * f];
            for k in 0..f {
                let i = act(ra, zp[k]);
                let fg = act(ra, zp[f + k]);
                let cand = act(&c.activation, zp[2 * f + k]);
                let o = act(ra, zp[3 * f + k]);
                let cv = fg * cs[p * f + k] + i * cand;
                cs[p * f + k] = cv;
                h[p * f + k] = o * act(&c.activation, cv);
            }
        }
        if c.return_sequences {
            out.extend_from_slice(&h);
        }
    }
    if !c.return_sequences {
        out.extend_from_slice(&h);
    }
    if c.return_state {
        out.extend_from_slice(&h);
        out.extend_from_slice(&cs);
    }
    out
}
