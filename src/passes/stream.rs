//! Streaming: the model as a step function that consumes one time step per call and keeps
//! its recurrent state between calls (Keras `stateful=True`, or `--stream`).
//!
//! The step graph is the model read with a sequence length of one (the frontend run again,
//! so that every op is sized for one step) with the recurrent state threaded through it: an
//! extra input `state` (each recurrent layer's h, then c for an LSTM, in layer order) gives
//! every recurrent node its initial state, and an extra output `state` collects their final
//! states. The generated `step` passes the caller's `State` in and writes the new state
//! back, so the step graph is an ordinary graph: the interpreter, the passes and lowering
//! treat it as any other.
//!
//! Which models stream: on a sequence (a tensor whose axis 0 is time, as every model input
//! is), each layer must act on every time step alone: Dense, activations, per-feature
//! affine maps, normalisations over features, elementwise merges and concatenations of
//! sequences along features, reshapes that keep the time axis, convolutions and poolings
//! one step wide (TimeDistributed), Embedding, and forward recurrent layers. Once a
//! recurrent layer returns only its last output, the time axis is gone and anything may
//! follow. The check runs on the model read with two steps, where the time axis cannot be
//! mistaken for another of size one.

use crate::error::LayerProblem;
use crate::ir::{numel, Activation, Graph, InputDtype, Node, Op, TensorId, Window};

/// The sequence length of the model the checks read.
pub const CHECK_STEPS: usize = 2;

/// A model's step function.
#[derive(Debug, Clone)]
pub struct Step {
    /// Inputs: the model's, one time step each (time axis dropped), then `state`. Outputs:
    /// the model's for this step, then the new `state`.
    pub graph: Graph,
    /// Where each recurrent layer keeps its state, in layer order.
    pub slots: Vec<StateSlot>,
}

/// One recurrent layer's part of the state: h, then c for an LSTM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSlot {
    /// The Keras layer name (untrusted: print it only through the Namer or `comment`).
    pub layer: String,
    pub offset: usize,
    pub units: usize,
    /// 2 for an LSTM (h, c), else 1.
    pub states: usize,
}

impl StateSlot {
    /// `` `lstm`: h, c of 8 floats each, from 0 ``, for comments (the name made safe).
    pub fn describe(&self) -> String {
        let parts = if self.states == 2 { "h, c" } else { "h" };
        format!(
            "`{}`: {parts} of {} floats each, from {}",
            crate::naming::comment(&self.layer),
            self.units,
            self.offset
        )
    }
}

impl Step {
    /// Floats in the state.
    pub fn state_len(&self) -> usize {
        state_len(&self.slots)
    }
}

/// Floats in a state made of `slots`.
pub fn state_len(slots: &[StateSlot]) -> usize {
    slots.iter().map(|s| s.units * s.states).sum()
}

/// The step graph of the model read with two time steps (`two`, for the checks) and with
/// one (`one`, which the step graph is built from); both come from the same file.
pub fn step_graph(two: &Graph, one: &Graph) -> Result<Step, Vec<LayerProblem>> {
    let sequences = check(two)?;
    let same = |a: &Node, b: &Node| {
        a.name == b.name && std::mem::discriminant(&a.op) == std::mem::discriminant(&b.op)
    };
    if two.nodes.len() != one.nodes.len()
        || two.inputs.len() != one.inputs.len()
        || !two.nodes.iter().zip(&one.nodes).all(|(a, b)| same(a, b))
    {
        return Err(vec![problem(
            one.nodes.first(),
            "the model read with one time step has other layers than read with two \
             (keras2src cannot stream it)",
        )]);
    }
    // Whether each tensor of `one` is a sequence, through the node correspondence.
    let mut is_sequence = vec![false; one.tensors.len()];
    for (a, b) in two.inputs.iter().zip(&one.inputs) {
        is_sequence[b.tensor] = sequences[a.tensor];
    }
    for (a, b) in two.nodes.iter().zip(&one.nodes) {
        is_sequence[b.output] = sequences[a.output];
    }
    build(one, &is_sequence).map_err(|message| vec![problem(one.nodes.first(), &message)])
}

fn problem(node: Option<&Node>, message: &str) -> LayerProblem {
    LayerProblem {
        layer: node.map_or_else(String::new, |n| n.name.clone()),
        class: node.map_or_else(String::new, |n| n.class.clone()),
        message: message.to_string(),
    }
}

/// Which tensors are sequences, or every layer that cannot run one step at a time.
fn check(graph: &Graph) -> Result<Vec<bool>, Vec<LayerProblem>> {
    let mut sequence = vec![false; graph.tensors.len()];
    for input in &graph.inputs {
        sequence[input.tensor] = true;
    }
    let mut problems = Vec::new();
    let recurrent: Vec<&Node> = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Recurrent(_)))
        .collect();
    if recurrent.is_empty() {
        problems.push(problem(
            None,
            "has no recurrent layer (LSTM, GRU, SimpleRNN, RNN): there is no state to stream",
        ));
    }
    // Keras resets a layer that is not stateful on every call: streaming would differ.
    if recurrent.iter().any(|n| stateful(n)) {
        for n in recurrent.iter().filter(|n| !stateful(n)) {
            problems.push(problem(
                Some(n),
                "is not stateful while other recurrent layers are: Keras restarts it on every \
                 call, a stream would not (make every recurrent layer stateful)",
            ));
        }
    }
    // Outputs of refused layers: their consumers are not judged again.
    let mut refused = vec![false; graph.tensors.len()];
    for node in &graph.nodes {
        if node.inputs.iter().any(|&t| refused[t]) {
            refused[node.output] = true;
            continue;
        }
        let seq_inputs = node.inputs.iter().filter(|&&t| sequence[t]).count();
        if seq_inputs == 0 {
            continue;
        }
        let judged = if seq_inputs < node.inputs.len() {
            Err(
                "combines a sequence with a tensor that has no time axis, which a stream \
                 cannot do one step at a time"
                    .into(),
            )
        } else {
            per_step(node, graph)
        };
        match judged {
            Ok(keeps_time) => sequence[node.output] = keeps_time,
            Err(message) => {
                problems.push(problem(Some(node), &message));
                refused[node.output] = true;
            }
        }
    }
    if problems.is_empty() {
        Ok(sequence)
    } else {
        Err(problems)
    }
}

fn stateful(node: &Node) -> bool {
    matches!(&node.op, Op::Recurrent(r) if r.stateful)
}

/// Whether `node`, whose inputs are sequences (time on axis 0), acts on each time step
/// alone: `Ok(true)` if its output is a sequence, `Ok(false)` if it has dropped the time
/// axis (a recurrent layer's last output), `Err` why it mixes steps.
fn per_step(node: &Node, graph: &Graph) -> Result<bool, String> {
    let x = graph.shape(node.inputs[0]);
    let y = graph.shape(node.output);
    let steps = CHECK_STEPS;
    let across = |what: &str| Err(format!("{what}, across time steps: a stream has one step"));
    let keeps_time = y.first() == Some(&steps);
    let activation = |a: &Activation| match a {
        Activation::Axis { axis: 0, .. } => across("its activation runs along the time axis"),
        _ => Ok(true),
    };
    let window = |w: &Window| {
        let one_step = w.size.first() == Some(&1)
            && w.strides.first() == Some(&1)
            && w.padding.first() == Some(&(0, 0));
        if one_step {
            Ok(true)
        } else {
            across("its window slides along the time axis")
        }
    };
    let result = match &node.op {
        Op::Recurrent(r) => {
            if r.go_backwards || r.reverse_sequences {
                return Err("reads the sequence from its end (go_backwards or a \
                            Bidirectional): a stream runs forward only"
                    .into());
            }
            if r.masked {
                return Err("takes a mask: masking is not supported when streaming".into());
            }
            if r.initial_state || r.return_state {
                return Err("takes initial states or returns its states: the stream's \
                            State holds them (not supported when streaming)"
                    .into());
            }
            Ok(r.return_sequences)
        }
        Op::Dense { activation: a, .. } if x.len() >= 2 => activation(a),
        Op::Dense { .. } => across("it is a Dense layer over the time axis"),
        Op::Activation(a) => activation(a),
        Op::Identity | Op::Embedding { .. } | Op::Bucketize { .. } | Op::Lookup(_) => Ok(true),
        Op::Affine { scale, inner, .. } => {
            if (numel(x) / steps).is_multiple_of((inner * scale.len()).max(1)) {
                Ok(true)
            } else {
                across("its parameters vary along the time axis")
            }
        }
        Op::PRelu { alpha } => {
            if alpha.shape.len() < x.len() || alpha.shape.first() == Some(&1) {
                Ok(true)
            } else {
                across("its alpha varies along the time axis")
            }
        }
        Op::ConstMerge { constant, .. } => {
            if constant.shape.len() < x.len() || constant.shape.first() == Some(&1) {
                Ok(true)
            } else {
                across("its constant varies along the time axis")
            }
        }
        Op::Merge { .. } | Op::Select { .. } => {
            let same = node.inputs.iter().all(|&t| graph.shape(t).len() == y.len());
            if same && keeps_time {
                Ok(true)
            } else {
                across("it broadcasts a sequence")
            }
        }
        Op::Concat { axis } if *axis != 0 => Ok(true),
        Op::Reshape { .. } if x.first() == Some(&steps) && keeps_time => Ok(true),
        Op::Transpose { perm } if perm.first() == Some(&0) => Ok(true),
        Op::Slice { begin, end, step } => {
            let whole = begin.first() == Some(&0)
                && end.first() == Some(&steps)
                && step.first() == Some(&1);
            if whole {
                Ok(true)
            } else {
                across("it slices the time axis")
            }
        }
        Op::Pad { padding, .. } if padding.first() == Some(&(0, 0)) => Ok(true),
        Op::Reduce { axes, .. } if !axes.contains(&0) && keeps_time => Ok(true),
        Op::Cumulative { axis, .. } if *axis != 0 => Ok(true),
        Op::Upsample { factors, .. } if factors.first() == Some(&1) && x.len() >= 3 => Ok(true),
        Op::Normalize { view, .. } => match view.first() {
            Some(a) if !a.reduced && a.param_stride == 0 && a.len.is_multiple_of(steps) => Ok(true),
            _ => across("it normalises along the time axis"),
        },
        Op::Conv {
            window: w,
            activation: a,
            ..
        } if x.len() >= 3 => window(w).and_then(|_| activation(a)),
        Op::Pool { window: w, .. } if x.len() >= 3 => window(w),
        Op::ConvMaxPool { conv, pool } if x.len() >= 3 => match conv.as_ref() {
            Op::Conv { window: w, .. } => window(w).and_then(|_| window(pool)),
            _ => across("it convolves along the time axis"),
        },
        Op::SequenceMask { .. } => Err("masking is not supported when streaming".into()),
        Op::Int8(_) => Err("a quantized model does not stream".into()),
        Op::Concat { .. }
        | Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Pad { .. }
        | Op::Reduce { .. }
        | Op::Cumulative { .. }
        | Op::Upsample { .. }
        | Op::Conv { .. }
        | Op::Pool { .. }
        | Op::ConvMaxPool { .. }
        | Op::Residual { .. }
        | Op::ConvTranspose { .. }
        | Op::GlobalPool { .. }
        | Op::Resize { .. }
        | Op::AdaptivePool { .. }
        | Op::Repeat { .. }
        | Op::Dot { .. }
        | Op::MatMul
        | Op::AdditiveScore { .. }
        | Op::AttentionSoftmax { .. }
        | Op::ConvLstm(_)
        | Op::Encode { .. } => across("it combines values"),
    };
    result.map(|keeps| keeps && keeps_time)
}

/// The step graph from the one-step model: time axes dropped at the ports, the state
/// threaded through the recurrent nodes.
fn build(one: &Graph, is_sequence: &[bool]) -> Result<Step, String> {
    let mut g = Graph {
        notes: one.notes.clone(),
        ..Graph::default()
    };
    let mut map: Vec<Option<TensorId>> = vec![None; one.tensors.len()];
    for input in &one.inputs {
        let shape = one.shape(input.tensor);
        let t = g.add_input(&input.name, step_shape(shape), input.dtype)?;
        map[input.tensor] = Some(if shape.len() > 1 {
            reshape(&mut g, &format!("{}/step", input.name), t, shape)?
        } else {
            t
        });
    }
    let slots = slots(one);
    let state = g.add_input("state", vec![state_len(&slots)], InputDtype::F32)?;
    let mut new_states = Vec::new();
    let mut slot = slots.iter();
    for node in &one.nodes {
        let inputs = node
            .inputs
            .iter()
            .map(|&t| map[t].ok_or("a tensor is read before it is made"))
            .collect::<Result<Vec<_>, _>>()?;
        let output = match &node.op {
            Op::Recurrent(r) => {
                let s = slot.next().ok_or("a recurrent layer has no state slot")?;
                let u = s.units;
                let mut inputs = inputs;
                for k in 0..s.states {
                    let at = s.offset + k * u;
                    let name = format!("{}/state_in{k}", node.name);
                    inputs.push(slice(&mut g, &name, state, at, at + u)?);
                }
                let op = Op::Recurrent(Box::new(crate::ir::Recurrent {
                    initial_state: true,
                    return_state: true,
                    ..(**r).clone()
                }));
                let both = g.add_node(&node.name, &node.class, op, inputs, node.keras_params)?;
                let main = slice(&mut g, &format!("{}/output", node.name), both, 0, u)?;
                let end = u * (1 + s.states);
                new_states.push(slice(
                    &mut g,
                    &format!("{}/state", node.name),
                    both,
                    u,
                    end,
                )?);
                if r.return_sequences {
                    reshape(&mut g, &format!("{}/sequence", node.name), main, &[1, u])?
                } else {
                    main
                }
            }
            op => g.add_node(
                &node.name,
                &node.class,
                op.clone(),
                inputs,
                node.keras_params,
            )?,
        };
        if g.shape(output) != one.shape(node.output) {
            return Err(format!(
                "layer shapes differ in the step graph ({:?}, expected {:?})",
                g.shape(output),
                one.shape(node.output)
            ));
        }
        map[node.output] = Some(output);
    }
    for output in &one.outputs {
        let t = map[output.tensor].ok_or("an output is not computed")?;
        let shape = one.shape(output.tensor);
        let t = if is_sequence[output.tensor] && shape.len() > 1 {
            let name = format!("{}/step", output.name);
            reshape(&mut g, &name, t, &step_shape(shape))?
        } else {
            t
        };
        g.add_output(&output.name, t);
    }
    let state_out = match &new_states[..] {
        [one] => *one,
        all => g.add_node(
            "state",
            "Concatenate",
            Op::Concat { axis: 0 },
            all.to_vec(),
            0,
        )?,
    };
    g.add_output("state", state_out);
    Ok(Step { graph: g, slots })
}

/// One time step's shape: the time axis dropped (a sequence of scalars keeps `[1]`).
fn step_shape(shape: &[usize]) -> Vec<usize> {
    if shape.len() > 1 {
        shape[1..].to_vec()
    } else {
        shape.to_vec()
    }
}

/// The state slots of the recurrent nodes, in node order.
fn slots(graph: &Graph) -> Vec<StateSlot> {
    let mut offset = 0;
    graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Recurrent(r) => {
                let slot = StateSlot {
                    layer: n.name.clone(),
                    offset,
                    units: r.units,
                    states: r.cell.states(),
                };
                offset += r.units * r.cell.states();
                Some(slot)
            }
            _ => None,
        })
        .collect()
}

fn slice(
    g: &mut Graph,
    name: &str,
    t: TensorId,
    begin: usize,
    end: usize,
) -> Result<TensorId, String> {
    let op = Op::Slice {
        begin: vec![begin],
        end: vec![end],
        step: vec![1],
    };
    g.add_node(name, "Slice", op, vec![t], 0)
}

fn reshape(g: &mut Graph, name: &str, t: TensorId, shape: &[usize]) -> Result<TensorId, String> {
    let target = shape.iter().map(|&d| d as i64).collect();
    g.add_node(name, "Reshape", Op::Reshape { target }, vec![t], 0)
}
