//! `LSTM`, `GRU`, `SimpleRNN` and `Bidirectional` (over any of them), following
//! `keras/src/layers/rnn/{lstm,gru,simple_rnn,bidirectional}.py` and tf_keras's.
//!
//! A call becomes one [`Op::Recurrent`] node per direction. With `return_state` the node
//! appends its final states to its output and slices (`LAYER/output`, `LAYER/state_h`,
//! ...) make the call's several outputs; a Bidirectional merges its two directions with
//! one more node (concat, sum, mul, ave) or exposes both (`merge_mode=None`).

use serde_json::{Map, Value};

use super::{check_shape, LayerKind, Options, Source, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Activation, Cell, MergeKind, Op, Recurrent, Weights};
use crate::keras::activation::{self, ActivationSpec};
use crate::keras::config::KerasVersion;

/// One recurrent layer's inference-relevant configuration.
#[derive(Debug, Clone)]
struct Rnn {
    cell: Cell,
    units: usize,
    use_bias: bool,
    activation: Activation,
    recurrent_activation: Activation,
    go_backwards: bool,
    return_sequences: bool,
    return_state: bool,
    /// Masked steps output zeros (else the previous output).
    zero_output_for_mask: bool,
}

/// Recurrent layer classes this file converts (`RNN` wrapping one of the cells).
pub(super) const CLASSES: &[&str] = &["LSTM", "GRU", "SimpleRNN", "RNN"];

/// The cell of each layer class, for `RNN(cell=...)`.
const CELLS: &[(&str, &str)] = &[
    ("LSTMCell", "LSTM"),
    ("GRUCell", "GRU"),
    ("SimpleRNNCell", "SimpleRNN"),
];

pub(super) fn parse(
    class: &str,
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    parse_rnn(class, options, version).map(|rnn| Box::new(rnn) as Box<dyn LayerKind>)
}

/// A layer's own options (sequence handling); its cell's options are in the same config
/// for LSTM, GRU and SimpleRNN, in `cell` for `RNN`.
fn parse_rnn(class: &str, options: &mut Options, version: KerasVersion) -> Option<Rnn> {
    options.ignore(&["unroll", "use_cudnn"]);
    let zero_output_for_mask = options.bool("zero_output_for_mask", false);
    if options.bool("stateful", false) {
        options.problems.push(
            "option 'stateful'=true is not supported (the generated code starts every call \
             from a zero state)"
                .into(),
        );
    }
    if options.bool("time_major", false) {
        options
            .problems
            .push("option 'time_major'=true is not supported".into());
    }
    let go_backwards = options.bool("go_backwards", false);
    let return_sequences = options.bool("return_sequences", false);
    let return_state = options.bool("return_state", false);
    let cell = if class == "RNN" {
        rnn_cell(options, version)
    } else {
        parse_cell(class, options, version)
    };
    let CellConfig {
        cell,
        units,
        use_bias,
        activation,
        recurrent_activation,
    } = cell?;
    Some(Rnn {
        cell,
        units,
        use_bias,
        activation,
        recurrent_activation,
        go_backwards,
        return_sequences,
        return_state,
        zero_output_for_mask,
    })
}

/// What a cell computes.
struct CellConfig {
    cell: Cell,
    units: usize,
    use_bias: bool,
    activation: Activation,
    recurrent_activation: Activation,
}

/// `RNN`'s `cell`: one LSTMCell, GRUCell or SimpleRNNCell config.
fn rnn_cell(options: &mut Options, version: KerasVersion) -> Option<CellConfig> {
    let Some(cell) = options.get("cell") else {
        options.problems.push("option 'cell' is missing".into());
        return None;
    };
    let class = cell.get("class_name").and_then(Value::as_str);
    let config = cell.get("config").and_then(Value::as_object);
    let (Some(class), Some(config)) = (class, config) else {
        options.problems.push(
            "option 'cell' is not one cell's config (several cells are not supported)".into(),
        );
        return None;
    };
    let Some(&(_, layer_class)) = CELLS.iter().find(|(c, _)| *c == class) else {
        options.problems.push(format!(
            "option 'cell': cell class '{}' is not supported (LSTMCell, GRUCell and \
             SimpleRNNCell are)",
            esc(class)
        ));
        return None;
    };
    let mut inner = Options::new(config);
    let parsed = parse_cell(layer_class, &mut inner, version);
    let problems = inner.finish();
    let failed = !problems.is_empty();
    options.problems.extend(
        problems
            .into_iter()
            .map(|p| format!("cell ({}): {p}", esc(class))),
    );
    if failed {
        None
    } else {
        parsed
    }
}

/// A cell's options (for LSTM, GRU and SimpleRNN they sit in the layer's own config).
fn parse_cell(class: &str, options: &mut Options, version: KerasVersion) -> Option<CellConfig> {
    options.ignore(&[
        "kernel_initializer",
        "recurrent_initializer",
        "bias_initializer",
        "unit_forget_bias",
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
        "dropout",
        "recurrent_dropout",
        "seed",
        "implementation",
    ]);
    let units = match options.int("units") {
        Some(u) if u > 0 => usize::try_from(u).ok(),
        Some(u) => {
            options
                .problems
                .push(format!("option 'units'={u} must be positive"));
            None
        }
        None => {
            options.problems.push("option 'units' is missing".into());
            None
        }
    };
    let cell = match class {
        "LSTM" => Cell::Lstm,
        // Written by every Keras that has it; older Keras 2 GRUs (no key) reset before.
        "GRU" => Cell::Gru {
            reset_after: options.bool("reset_after", version.major >= 3),
        },
        _ => Cell::Simple,
    };
    let activation = cell_activation(options, "activation", "tanh", version);
    let recurrent_activation = if cell == Cell::Simple {
        Some(Activation::Linear)
    } else {
        cell_activation(options, "recurrent_activation", "sigmoid", version)
    };
    let use_bias = options.bool("use_bias", true);
    Some(CellConfig {
        cell,
        units: units?,
        use_bias,
        activation: activation?,
        recurrent_activation: recurrent_activation?,
    })
}

/// An elementwise activation option of a cell (`null` means linear, as in Keras).
fn cell_activation(
    options: &mut Options,
    key: &str,
    default: &str,
    version: KerasVersion,
) -> Option<Activation> {
    let spec = match options.get(key) {
        None => activation::from_name(default, version),
        Some(v) => activation::parse(v, version),
    };
    match spec {
        Ok(ActivationSpec::Plain(a)) => Some(a),
        Ok(ActivationSpec::Axis { func, .. }) => {
            let name = ActivationSpec::Axis { func, axis: -1 }
                .resolve(&[1])
                .map(|a| a.label())
                .unwrap_or("axis activation");
            options.problems.push(format!(
                "option '{key}'='{name}' is not supported in a recurrent cell (only \
                 elementwise activations are)"
            ));
            None
        }
        Err(e) => {
            options.problems.push(format!("option '{key}': {e}"));
            None
        }
    }
}

impl Rnn {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.use_bias {
            vec!["kernel", "recurrent_kernel", "bias"]
        } else {
            vec!["kernel", "recurrent_kernel"]
        }
    }

    /// The op over an input of `input` shape; `reverse_sequences` for a Bidirectional's
    /// backward direction.
    fn op(
        &self,
        input: &[usize],
        weights: &[Weights],
        reverse_sequences: bool,
        initial_state: bool,
        masked: bool,
    ) -> Result<Op, String> {
        let [_steps, features] = input[..] else {
            return Err(format!(
                "needs an input of shape [steps, features] (batch excluded), got {input:?}"
            ));
        };
        let (u, g) = (self.units, self.cell.gates());
        let kernel = weights.first().ok_or("missing kernel")?;
        check_shape("kernel", kernel, &[features, g * u])?;
        let recurrent = weights.get(1).ok_or("missing recurrent_kernel")?;
        check_shape("recurrent_kernel", recurrent, &[u, g * u])?;
        let bias = match weights.get(2) {
            Some(b) if self.use_bias => {
                let want = match self.cell {
                    Cell::Gru { reset_after: true } => vec![2, g * u],
                    _ => vec![g * u],
                };
                check_shape("bias", b, &want)?;
                Some(b.clone())
            }
            _ => None,
        };
        Ok(Op::Recurrent(Box::new(Recurrent {
            cell: self.cell,
            units: u,
            kernel: kernel.clone(),
            recurrent: recurrent.clone(),
            bias,
            activation: self.activation.clone(),
            recurrent_activation: self.recurrent_activation.clone(),
            go_backwards: self.go_backwards,
            return_sequences: self.return_sequences,
            reverse_sequences,
            return_state: self.return_state,
            initial_state,
            masked,
            zero_output_for_mask: self.zero_output_for_mask,
        })))
    }

    /// Shapes of the main output and each state.
    fn main_shape(&self, steps: usize) -> Vec<usize> {
        if self.return_sequences {
            vec![steps, self.units]
        } else {
            vec![self.units]
        }
    }

    /// The initial states among a call's inputs (after the sequence): none, or one per
    /// state of each of `directions`.
    fn initial_states(&self, inputs: &[&[usize]], directions: usize) -> Result<bool, String> {
        let given = inputs.len().saturating_sub(1);
        let want = self.cell.states() * directions;
        if inputs.is_empty() || (given != 0 && given != want) {
            return Err(format!(
                "is called with {given} initial state tensor(s); this layer takes {want} \
                 ({})",
                self.state_names().join(", ")
            ));
        }
        if let Some(bad) = inputs[1..].iter().find(|s| **s != [self.units]) {
            return Err(format!(
                "is given an initial state of shape {bad:?}; each must be [{}] (batch excluded)",
                self.units
            ));
        }
        Ok(given > 0)
    }

    fn state_names(&self) -> &'static [&'static str] {
        match self.cell {
            Cell::Lstm => &["state_h", "state_c"],
            _ => &["state_h"],
        }
    }

    /// Slices of a `return_state` node (step `packed`): the main output then each state,
    /// as `(suffix, op)`; the main output is reshaped back to `[steps, units]`.
    fn unpack(&self, steps: usize, prefix: &str) -> Vec<(String, Vec<Op>)> {
        let main = self.main_shape(steps);
        let main_len: usize = main.iter().product();
        let mut parts = vec![(
            format!("{prefix}output"),
            if self.return_sequences {
                vec![
                    slice(0, main_len),
                    Op::Reshape {
                        target: main.iter().map(|&d| d as i64).collect(),
                    },
                ]
            } else {
                vec![slice(0, main_len)]
            },
        )];
        for (k, name) in self.state_names().iter().enumerate() {
            let begin = main_len + k * self.units;
            parts.push((
                format!("{prefix}{name}"),
                vec![slice(begin, begin + self.units)],
            ));
        }
        parts
    }
}

fn slice(begin: usize, end: usize) -> Op {
    Op::Slice {
        begin: vec![begin],
        end: vec![end],
        step: vec![1],
    }
}

/// Appends the steps of `ops` reading `from`, marking the last as call output `output`.
fn push_chain(
    steps: &mut Vec<Step>,
    suffix: &str,
    ops: Vec<Op>,
    from: usize,
    output: Option<usize>,
) -> usize {
    let count = ops.len();
    for (i, op) in ops.into_iter().enumerate() {
        let source = if i == 0 { from } else { steps.len() - 1 };
        let name = if i + 1 == count {
            suffix.to_string()
        } else {
            format!("{suffix}_{i}")
        };
        let mut step = Step::new(Some(&name), op, vec![Source::Step(source)]);
        if i + 1 == count {
            step.output = output;
        }
        steps.push(step);
    }
    steps.len() - 1
}

impl LayerKind for Rnn {
    fn weight_names(&self) -> Vec<&'static str> {
        Rnn::weight_names(self)
    }

    fn weight_groups(&self) -> Vec<String> {
        vec!["cell".into()]
    }

    fn tensor_arguments(&self) -> &'static [&'static str] {
        &["inputs", "initial_state"]
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        self.call_nodes(inputs, weights, false)
    }

    fn masked_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
    ) -> Option<Result<Vec<Step>, String>> {
        Some(self.call_nodes(inputs, weights, true))
    }

    fn mask_outputs(&self) -> usize {
        usize::from(self.return_sequences)
    }
}

impl Rnn {
    /// The nodes of a call on `inputs` (sequence, initial states, then the mask if
    /// `masked`).
    fn call_nodes(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        masked: bool,
    ) -> Result<Vec<Step>, String> {
        let tensors = inputs
            .len()
            .checked_sub(usize::from(masked))
            .filter(|&n| n > 0)
            .map(|n| &inputs[..n])
            .ok_or("is called without an input sequence")?;
        let initial = self.initial_states(tensors, 1)?;
        let input = tensors[0];
        let op = self.op(input, weights, false, initial, masked)?;
        let sources = (0..inputs.len()).map(Source::Input).collect();
        let mut steps = vec![Step::new(None, op, sources)];
        if self.return_state {
            for (k, (suffix, ops)) in self.unpack(input[0], "").into_iter().enumerate() {
                push_chain(&mut steps, &suffix, ops, 0, Some(k));
            }
        }
        Ok(steps)
    }
}

/// How a Bidirectional combines its two directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MergeMode {
    Concat,
    Sum,
    Mul,
    Ave,
    /// Both outputs, forward first.
    Both,
}

#[derive(Debug)]
struct Bidirectional {
    forward: Rnn,
    backward: Rnn,
    merge: MergeMode,
}

pub(super) fn parse_bidirectional(
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let merge = match options.get("merge_mode") {
        None => Some(MergeMode::Both),
        Some(Value::String(s)) => match s.as_str() {
            "concat" => Some(MergeMode::Concat),
            "sum" => Some(MergeMode::Sum),
            "mul" => Some(MergeMode::Mul),
            "ave" => Some(MergeMode::Ave),
            other => {
                options.problems.push(format!(
                    "option 'merge_mode'='{}' is not supported (concat, sum, mul, ave or null)",
                    esc(other)
                ));
                None
            }
        },
        Some(other) => {
            options.problems.push(format!(
                "option 'merge_mode'={} is not supported",
                esc(&other.to_string())
            ));
            None
        }
    };
    // Keras writes `merge_mode` always (null for None); a missing key is the default, concat.
    let merge = if options.map.contains_key("merge_mode") {
        merge
    } else {
        Some(MergeMode::Concat)
    };
    let forward = match options.get("layer") {
        Some(layer) => wrapped(layer, "layer", options, version),
        None => {
            options.problems.push("option 'layer' is missing".into());
            None
        }
    };
    let backward = match options.get("backward_layer") {
        Some(layer) => wrapped(layer, "backward_layer", options, version),
        None => forward.clone().map(|f| Rnn {
            go_backwards: !f.go_backwards,
            ..f
        }),
    };
    let (forward, backward) = (forward?, backward?);
    if forward.return_sequences != backward.return_sequences
        || forward.return_state != backward.return_state
    {
        options.problems.push(
            "'backward_layer' must have the same return_sequences and return_state as 'layer'"
                .into(),
        );
        return None;
    }
    Some(Box::new(Bidirectional {
        forward,
        backward,
        merge: merge?,
    }))
}

/// A wrapped layer (`{"class_name": "LSTM", "config": {...}}`), its problems reported with
/// the wrapper's option name.
fn wrapped(value: &Value, key: &str, outer: &mut Options, version: KerasVersion) -> Option<Rnn> {
    let class = value.get("class_name").and_then(Value::as_str);
    let config = value.get("config").and_then(Value::as_object);
    let (Some(class), Some(config)) = (class, config) else {
        outer
            .problems
            .push(format!("option '{key}' is not a layer config"));
        return None;
    };
    if !CLASSES.contains(&class) {
        outer.problems.push(format!(
            "option '{key}': wrapping a '{}' is not supported (LSTM, GRU, SimpleRNN and RNN are)",
            esc(class)
        ));
        return None;
    }
    let config: &Map<String, Value> = config;
    let mut options = Options::new(config);
    let rnn = parse_rnn(class, &mut options, version);
    let problems = options.finish();
    let failed = !problems.is_empty();
    outer.problems.extend(
        problems
            .into_iter()
            .map(|p| format!("{key} ({}): {p}", esc(class))),
    );
    if failed {
        None
    } else {
        rnn
    }
}

impl LayerKind for Bidirectional {
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = self.forward.weight_names();
        names.extend(self.backward.weight_names());
        names
    }

    fn weight_groups(&self) -> Vec<String> {
        vec!["forward_layer/cell".into(), "backward_layer/cell".into()]
    }

    fn tensor_arguments(&self) -> &'static [&'static str] {
        &["inputs", "initial_state"]
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        self.call_nodes(inputs, weights, false)
    }

    fn masked_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
    ) -> Option<Result<Vec<Step>, String>> {
        Some(self.call_nodes(inputs, weights, true))
    }

    fn mask_outputs(&self) -> usize {
        match (self.forward.return_sequences, self.merge) {
            (false, _) => 0,
            (true, MergeMode::Both) => 2,
            (true, _) => 1,
        }
    }
}

impl Bidirectional {
    /// The nodes of a call on `inputs` (sequence, forward then backward initial states,
    /// then the mask if `masked`).
    fn call_nodes(
        &self,
        all: &[&[usize]],
        weights: &[Weights],
        masked: bool,
    ) -> Result<Vec<Step>, String> {
        let inputs = &all[..all.len() - usize::from(masked)];
        // Initial states: the forward layer's, then the backward layer's (as Keras splits
        // the list in halves).
        if self.forward.cell.states() != self.backward.cell.states() && inputs.len() > 1 {
            return Err(
                "initial_state with different cells in 'layer' and 'backward_layer' is not \
                 supported"
                    .into(),
            );
        }
        let initial = self.forward.initial_states(inputs, 2)?;
        self.backward.initial_states(inputs, 2)?;
        let input = inputs[0];
        let split = self.forward.weight_names().len();
        let (fw, bw) = weights.split_at(split.min(weights.len()));
        let both = self.merge == MergeMode::Both;
        let state = self.forward.return_state;
        // Keras makes both directions output zeros at masked steps when they return
        // sequences (`zero_output_for_mask = return_sequences`).
        let zero = |rnn: &Rnn| Rnn {
            zero_output_for_mask: rnn.return_sequences,
            ..rnn.clone()
        };
        let forward_op = zero(&self.forward).op(input, fw, false, initial, masked)?;
        let backward_op = zero(&self.backward).op(input, bw, true, initial, masked)?;
        let n = if initial {
            self.forward.cell.states()
        } else {
            0
        };
        let mask = masked.then_some(Source::Input(all.len() - 1));
        let sources = |first: usize| {
            std::iter::once(Source::Input(0))
                .chain((first..first + n).map(Source::Input))
                .chain(mask)
                .collect::<Vec<_>>()
        };
        // The node named after the layer: the merge, or the forward direction when the
        // two are returned as they are.
        let forward_suffix = (!both || state).then_some("forward");
        let mut steps = vec![
            Step::new(forward_suffix, forward_op, sources(1)),
            Step::new(Some("backward"), backward_op, sources(1 + n)),
        ];
        let (mut fw_out, mut bw_out) = (0, 1);
        let mut states = Vec::new();
        if state {
            let steps_len = input[0];
            for (dir, (rnn, prefix)) in [(&self.forward, "forward_"), (&self.backward, "backward_")]
                .into_iter()
                .enumerate()
            {
                for (k, (suffix, ops)) in rnn.unpack(steps_len, prefix).into_iter().enumerate() {
                    let last = push_chain(&mut steps, &suffix, ops, dir, None);
                    match k {
                        0 if dir == 0 => fw_out = last,
                        0 => bw_out = last,
                        _ => states.push(last),
                    }
                }
            }
        }
        let mut outputs = Vec::new();
        let merge = |kind: MergeKind| Op::Merge { kind };
        let merged = match self.merge {
            MergeMode::Both => None,
            MergeMode::Concat => {
                let axis = if self.forward.return_sequences { 1 } else { 0 };
                Some(Op::Concat { axis })
            }
            MergeMode::Sum => Some(merge(MergeKind::Add)),
            MergeMode::Mul => Some(merge(MergeKind::Multiply)),
            MergeMode::Ave => Some(merge(MergeKind::Average)),
        };
        match merged {
            Some(op) => {
                steps.push(Step::new(
                    None,
                    op,
                    vec![Source::Step(fw_out), Source::Step(bw_out)],
                ));
                outputs.push(steps.len() - 1);
            }
            None => outputs.extend([fw_out, bw_out]),
        }
        if both && state {
            // Every node is a slice or a direction: give the layer's name to a copy-free
            // one, the forward output's.
            let first = outputs[0];
            steps[first].suffix = None;
        }
        outputs.extend(states);
        for (k, &s) in outputs.iter().enumerate() {
            steps[s].output = Some(k);
        }
        Ok(steps)
    }
}

/// Weights of a recurrent layer (or a Bidirectional, both directions) from its config.
pub(super) fn loose_weight_count(class: &str, config: &Map<String, Value>) -> Option<usize> {
    // An `RNN` keeps its cell's options in `cell`.
    let own = |config: &Map<String, Value>| {
        let cell = match config.get("cell") {
            Some(cell) => cell.get("config")?.as_object()?,
            None => config,
        };
        let use_bias = cell.get("use_bias").and_then(Value::as_bool);
        Some(2 + usize::from(use_bias.unwrap_or(true)))
    };
    match class {
        "LSTM" | "GRU" | "SimpleRNN" | "RNN" => own(config),
        "Bidirectional" => {
            let inner = |key: &str| {
                config
                    .get(key)
                    .and_then(|l| l.get("config"))
                    .and_then(Value::as_object)
                    .and_then(own)
            };
            let forward = inner("layer")?;
            Some(forward + inner("backward_layer").unwrap_or(forward))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_layer;
    use super::*;
    use crate::keras::config::LayerEntry;

    const K2: KerasVersion = KerasVersion { major: 2 };
    const K3: KerasVersion = KerasVersion::KERAS3;

    fn entry(class: &str, config: &str) -> LayerEntry {
        let mut e = LayerEntry::new(
            "l".into(),
            class.into(),
            serde_json::from_str(config).unwrap(),
        );
        e.module = Some("keras.layers".into());
        e
    }

    fn problems(class: &str, config: &str) -> Vec<String> {
        parse_layer(&entry(class, config), K3).unwrap_err()
    }

    fn zeros(shape: &[usize]) -> Weights {
        Weights::new(shape.to_vec(), vec![0.0; shape.iter().product()]).unwrap()
    }

    #[test]
    fn stateful_and_time_major_are_rejected_by_name() {
        let err = problems("LSTM", r#"{"units": 4, "stateful": true}"#);
        assert!(err[0].contains("'stateful'"), "{err:?}");
        let err = problems("GRU", r#"{"units": 4, "time_major": true}"#);
        assert!(err[0].contains("'time_major'"), "{err:?}");
        let err = problems(
            "Bidirectional",
            r#"{"merge_mode": "concat", "layer": {"class_name": "SimpleRNN", "config": {"units": 3, "stateful": true}}}"#,
        );
        assert!(
            err[0].contains("layer (SimpleRNN)") && err[0].contains("'stateful'"),
            "{err:?}"
        );
    }

    #[test]
    fn training_only_options_are_accepted() {
        let config = r#"{"units": 4, "dropout": 0.5, "recurrent_dropout": 0.2, "seed": 3,
            "unroll": true, "implementation": 2, "unit_forget_bias": true,
            "recurrent_initializer": {"class_name": "Orthogonal", "config": {}},
            "recurrent_regularizer": null, "recurrent_constraint": null}"#;
        for class in ["LSTM", "GRU", "SimpleRNN"] {
            assert!(parse_layer(&entry(class, config), K3).is_ok(), "{class}");
        }
    }

    #[test]
    fn axis_activations_and_unknown_merge_modes_are_rejected() {
        let err = problems("LSTM", r#"{"units": 4, "activation": "softmax"}"#);
        assert!(
            err[0].contains("'activation'") && err[0].contains("softmax"),
            "{err:?}"
        );
        let err = problems(
            "Bidirectional",
            r#"{"merge_mode": "max", "layer": {"class_name": "LSTM", "config": {"units": 3}}}"#,
        );
        assert!(err[0].contains("'merge_mode'"), "{err:?}");
        let err = problems(
            "Bidirectional",
            r#"{"layer": {"class_name": "Dense", "config": {"units": 3}}}"#,
        );
        assert!(err[0].contains("Dense"), "{err:?}");
    }

    #[test]
    fn keras2_hard_sigmoid_is_keras2s() {
        let kind = parse_layer(
            &entry(
                "GRU",
                r#"{"units": 2, "recurrent_activation": "hard_sigmoid", "reset_after": false}"#,
            ),
            K2,
        )
        .unwrap();
        let steps = kind
            .steps(&[&[3, 5]], &[zeros(&[5, 6]), zeros(&[2, 6]), zeros(&[6])])
            .unwrap();
        let Op::Recurrent(r) = &steps[0].op else {
            panic!("{steps:?}")
        };
        assert_eq!(
            r.recurrent_activation,
            Activation::HardSigmoid { slope: 0.2 }
        );
        assert_eq!(r.cell, Cell::Gru { reset_after: false });
    }

    #[test]
    fn return_state_marks_the_call_outputs() {
        let kind = parse_layer(
            &entry(
                "LSTM",
                r#"{"units": 2, "return_state": true, "return_sequences": true}"#,
            ),
            K3,
        )
        .unwrap();
        let steps = kind
            .steps(&[&[3, 5]], &[zeros(&[5, 8]), zeros(&[2, 8]), zeros(&[8])])
            .unwrap();
        let outputs: Vec<(usize, Option<&str>)> = steps
            .iter()
            .filter_map(|s| s.output.map(|k| (k, s.suffix.as_deref())))
            .collect();
        assert_eq!(
            outputs,
            [
                (0, Some("output")),
                (1, Some("state_h")),
                (2, Some("state_c"))
            ]
        );
        // Bidirectional: merged output, then forward states, then backward states.
        let kind = parse_layer(
            &entry(
                "Bidirectional",
                r#"{"merge_mode": "sum", "layer": {"class_name": "GRU", "config": {"units": 2, "return_state": true}}}"#,
            ),
            K3,
        )
        .unwrap();
        assert_eq!(
            kind.weight_groups(),
            ["forward_layer/cell", "backward_layer/cell"]
        );
        let gru = [zeros(&[5, 6]), zeros(&[2, 6]), zeros(&[2, 6])];
        let weights: Vec<Weights> = gru.iter().chain(&gru).cloned().collect();
        let steps = kind.steps(&[&[3, 5]], &weights).unwrap();
        let mut outputs: Vec<(usize, Option<&str>)> = steps
            .iter()
            .filter_map(|s| s.output.map(|k| (k, s.suffix.as_deref())))
            .collect();
        outputs.sort();
        assert_eq!(
            outputs,
            [
                (0, None),
                (1, Some("forward_state_h")),
                (2, Some("backward_state_h"))
            ]
        );
    }

    #[test]
    fn initial_states_are_extra_inputs() {
        let lstm = [zeros(&[5, 8]), zeros(&[2, 8]), zeros(&[8])];
        let kind = parse_layer(&entry("LSTM", r#"{"units": 2}"#), K3).unwrap();
        let steps = kind.steps(&[&[3, 5], &[2], &[2]], &lstm).unwrap();
        assert_eq!(steps[0].inputs.len(), 3);
        let Op::Recurrent(r) = &steps[0].op else {
            panic!("{steps:?}")
        };
        assert!(r.initial_state);
        let err = kind.steps(&[&[3, 5], &[2]], &lstm).unwrap_err();
        assert!(
            err.contains("1 initial state") && err.contains("takes 2"),
            "{err}"
        );
        let err = kind.steps(&[&[3, 5], &[3], &[3]], &lstm).unwrap_err();
        assert!(err.contains("[3]"), "{err}");
        // Keras 3 `initial_state=[h, c]`: consecutive keywords of one name.
        let kw = |n: usize| vec!["initial_state".to_string(); n];
        let order = super::super::order_arguments(kind.tensor_arguments(), 1, &kw(2));
        assert_eq!(order.unwrap(), [0, 1, 2]);
        // Bidirectional: forward states, then backward states.
        let kind = parse_layer(
            &entry(
                "Bidirectional",
                r#"{"merge_mode": "concat", "layer": {"class_name": "LSTM", "config": {"units": 2}}}"#,
            ),
            K3,
        )
        .unwrap();
        let weights: Vec<Weights> = lstm.iter().chain(&lstm).cloned().collect();
        let s = [2usize];
        let steps = kind.steps(&[&[3, 5], &s, &s, &s, &s], &weights).unwrap();
        assert_eq!(
            steps[0].inputs,
            [Source::Input(0), Source::Input(1), Source::Input(2)]
        );
        assert_eq!(
            steps[1].inputs,
            [Source::Input(0), Source::Input(3), Source::Input(4)]
        );
        let err = kind.steps(&[&[3, 5], &s, &s], &weights).unwrap_err();
        assert!(err.contains("takes 4"), "{err}");
    }

    #[test]
    fn rnn_takes_one_known_cell() {
        let kind = parse_layer(
            &entry(
                "RNN",
                r#"{"return_sequences": true, "unroll": false,
                    "cell": {"class_name": "GRUCell", "config": {"units": 3, "reset_after": false,
                    "recurrent_activation": "hard_sigmoid"}}}"#,
            ),
            K3,
        )
        .unwrap();
        assert_eq!(kind.weight_names(), ["kernel", "recurrent_kernel", "bias"]);
        let err = problems(
            "RNN",
            r#"{"cell": {"class_name": "StackedRNNCells", "config": {"cells": []}}}"#,
        );
        assert!(err[0].contains("StackedRNNCells"), "{err:?}");
        let err = problems(
            "RNN",
            r#"{"cell": {"class_name": "LSTMCell", "config": {"units": 3, "peephole": true}}}"#,
        );
        assert!(
            err[0].contains("cell (LSTMCell)") && err[0].contains("'peephole'"),
            "{err:?}"
        );
        let config = serde_json::json!({
            "cell": {"class_name": "LSTMCell", "config": {"units": 3, "use_bias": false}}
        });
        assert_eq!(
            loose_weight_count("RNN", config.as_object().unwrap()),
            Some(2)
        );
    }

    #[test]
    fn loose_counts_cover_bidirectional() {
        let config = serde_json::json!({
            "layer": {"class_name": "LSTM", "config": {"units": 3, "use_bias": false}},
            "backward_layer": {"class_name": "GRU", "config": {"units": 3}}
        });
        let config = config.as_object().unwrap();
        assert_eq!(loose_weight_count("Bidirectional", config), Some(5));
    }
}
