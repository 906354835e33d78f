//! `LSTM`, `GRU`, `SimpleRNN`, `RNN` (over one cell or `StackedRNNCells`) and
//! `Bidirectional` (over any of them), following
//! `keras/src/layers/rnn/{lstm,gru,simple_rnn,rnn,stacked_rnn_cells,bidirectional}.py` and
//! tf_keras's.
//!
//! A call becomes one [`Op::Recurrent`] node per direction. With `return_state` the node
//! appends its final states to its output and slices (`LAYER/output`, `LAYER/state_h`,
//! ...) make the call's several outputs; a Bidirectional merges its two directions with
//! one more node (concat, sum, mul, ave) or exposes both (`merge_mode=None`).
//!
//! Stacked cells run cell 1, then cell 2, ... at each step, cell `k + 1` reading cell
//! `k`'s output: the same numbers as one recurrent node per cell over the whole sequence,
//! each reading the sequence of outputs of the one before (`LAYER/cell0`, `LAYER/cell1`,
//! ..., the last cell's node is the layer's). Every node reads the input in the layer's
//! direction and skips the masked steps; the ones before the last write their outputs
//! back in time order so that the next reads them in processing order. `return_state`
//! returns every cell's states, first cell first (`LAYER/cell0_state_h`, ...).

use serde_json::{Map, Value};

use super::{check_shape, LayerKind, Options, Source, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Activation, Cell, MergeKind, Op, Recurrent, Weights};
use crate::keras::activation::{self, ActivationSpec};
use crate::keras::config::KerasVersion;

/// One recurrent layer's inference-relevant configuration.
#[derive(Debug, Clone)]
struct Rnn {
    /// The cells run at every step, in order, each reading the output of the one before
    /// (one but for `RNN(StackedRNNCells)`).
    cells: Vec<CellConfig>,
    go_backwards: bool,
    return_sequences: bool,
    return_state: bool,
    /// Masked steps output zeros (else the previous output).
    zero_output_for_mask: bool,
    /// Keras carries the state between calls (`stateful=True`): see [`Recurrent::stateful`].
    stateful: bool,
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
    let stateful = options.bool("stateful", false);
    if options.bool("time_major", false) {
        options
            .problems
            .push("option 'time_major'=true is not supported".into());
    }
    let go_backwards = options.bool("go_backwards", false);
    let return_sequences = options.bool("return_sequences", false);
    let return_state = options.bool("return_state", false);
    let cells = if class == "RNN" {
        rnn_cells(options, version)
    } else {
        parse_cell(class, options, version).map(|c| vec![c])
    };
    Some(Rnn {
        cells: cells?,
        go_backwards,
        return_sequences,
        return_state,
        zero_output_for_mask,
        stateful,
    })
}

/// What a cell computes.
#[derive(Debug, Clone)]
struct CellConfig {
    /// The Keras cell class (`LSTMCell`, ...), which names its weights' group in a stack.
    class: &'static str,
    cell: Cell,
    units: usize,
    use_bias: bool,
    activation: Activation,
    recurrent_activation: Activation,
}

/// `RNN`'s `cell`: one LSTMCell, GRUCell or SimpleRNNCell config, or a StackedRNNCells
/// of them.
fn rnn_cells(options: &mut Options, version: KerasVersion) -> Option<Vec<CellConfig>> {
    let Some(cell) = options.get("cell") else {
        options.problems.push("option 'cell' is missing".into());
        return None;
    };
    let class = cell.get("class_name").and_then(Value::as_str);
    let config = cell.get("config").and_then(Value::as_object);
    let (Some(class), Some(config)) = (class, config) else {
        options
            .problems
            .push("option 'cell' is not a cell's config".into());
        return None;
    };
    if class != "StackedRNNCells" {
        return rnn_cell(cell, "cell", options, version).map(|c| vec![c]);
    }
    let mut stacked = Options::new(config);
    let cells = match stacked.get("cells") {
        Some(Value::Array(cells)) if !cells.is_empty() => Some(cells),
        _ => {
            stacked
                .problems
                .push("option 'cells' is not a non-empty list of cells".into());
            None
        }
    };
    let mut parsed = Vec::new();
    for (k, cell) in cells.into_iter().flatten().enumerate() {
        parsed.push(rnn_cell(
            cell,
            &format!("cells[{k}]"),
            &mut stacked,
            version,
        ));
    }
    let problems = stacked.finish();
    let failed = !problems.is_empty();
    options.problems.extend(
        problems
            .into_iter()
            .map(|p| format!("cell (StackedRNNCells): {p}")),
    );
    let parsed: Option<Vec<CellConfig>> = parsed.into_iter().collect();
    if failed {
        None
    } else {
        parsed
    }
}

/// One LSTMCell, GRUCell or SimpleRNNCell config, its problems reported under `what`.
fn rnn_cell(
    cell: &Value,
    what: &str,
    options: &mut Options,
    version: KerasVersion,
) -> Option<CellConfig> {
    let class = cell.get("class_name").and_then(Value::as_str);
    let config = cell.get("config").and_then(Value::as_object);
    let (Some(class), Some(config)) = (class, config) else {
        options
            .problems
            .push(format!("option '{what}' is not a cell's config"));
        return None;
    };
    let Some(&(_, layer_class)) = CELLS.iter().find(|(c, _)| *c == class) else {
        options.problems.push(format!(
            "option '{what}': cell class '{}' is not supported (LSTMCell, GRUCell, \
             SimpleRNNCell and a StackedRNNCells of them are)",
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
            .map(|p| format!("{what} ({}): {p}", esc(class))),
    );
    if failed {
        None
    } else {
        parsed
    }
}

/// Options of recurrent cells that only matter for training (`unit_forget_bias` only
/// initialises the bias).
pub(super) const TRAINING_ONLY: &[&str] = &[
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
];

/// A cell's options (for LSTM, GRU and SimpleRNN they sit in the layer's own config).
fn parse_cell(class: &str, options: &mut Options, version: KerasVersion) -> Option<CellConfig> {
    options.ignore(TRAINING_ONLY);
    options.ignore(&["implementation"]);
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
    let class = match cell {
        Cell::Lstm => "LSTMCell",
        Cell::Gru { .. } => "GRUCell",
        Cell::Simple => "SimpleRNNCell",
    };
    Some(CellConfig {
        class,
        cell,
        units: units?,
        use_bias,
        activation: activation?,
        recurrent_activation: recurrent_activation?,
    })
}

/// An elementwise activation option of a cell (`null` means linear, as in Keras).
pub(super) fn cell_activation(
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

impl CellConfig {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.use_bias {
            vec!["kernel", "recurrent_kernel", "bias"]
        } else {
            vec!["kernel", "recurrent_kernel"]
        }
    }

    fn state_names(&self) -> &'static [&'static str] {
        match self.cell {
            Cell::Lstm => &["state_h", "state_c"],
            _ => &["state_h"],
        }
    }

    /// The op of this cell over an input of `input` shape, with its own `weights`.
    fn op(&self, input: &[usize], weights: &[Weights], run: Run) -> Result<Op, String> {
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
        let bias = if self.use_bias {
            let b = weights.get(2).ok_or("missing bias")?;
            let want = match self.cell {
                Cell::Gru { reset_after: true } => vec![2, g * u],
                _ => vec![g * u],
            };
            check_shape("bias", b, &want)?;
            Some(b.clone())
        } else {
            None
        };
        Ok(Op::Recurrent(Box::new(Recurrent {
            cell: self.cell,
            units: u,
            kernel: kernel.clone(),
            recurrent: recurrent.clone(),
            bias,
            activation: self.activation.clone(),
            recurrent_activation: self.recurrent_activation.clone(),
            go_backwards: run.go_backwards,
            return_sequences: run.return_sequences,
            reverse_sequences: run.reverse_sequences,
            return_state: run.return_state,
            initial_state: run.initial_state,
            masked: run.masked,
            zero_output_for_mask: run.zero_output_for_mask,
            stateful: run.stateful,
        })))
    }

    /// Slices of a `return_state` node: the main output then each state, as `(suffix,
    /// ops)`; a main output of `[steps, units]` (`sequences`) is reshaped back.
    fn unpack(&self, steps: usize, sequences: bool, prefix: &str) -> Vec<(String, Vec<Op>)> {
        let u = self.units;
        let main_len = if sequences { steps * u } else { u };
        let mut parts = vec![(
            format!("{prefix}output"),
            if sequences {
                vec![
                    slice(0, main_len),
                    Op::Reshape {
                        target: vec![steps as i64, u as i64],
                    },
                ]
            } else {
                vec![slice(0, main_len)]
            },
        )];
        for (k, name) in self.state_names().iter().enumerate() {
            let begin = main_len + k * u;
            parts.push((format!("{prefix}{name}"), vec![slice(begin, begin + u)]));
        }
        parts
    }
}

/// How one recurrent node runs (see [`Recurrent`]).
#[derive(Debug, Clone, Copy)]
struct Run {
    go_backwards: bool,
    return_sequences: bool,
    reverse_sequences: bool,
    return_state: bool,
    initial_state: bool,
    masked: bool,
    zero_output_for_mask: bool,
    stateful: bool,
}

/// One direction of a call: where its inputs come from and how its nodes are named.
struct Direction<'a> {
    /// Reverse the returned sequence (a Bidirectional's backward direction).
    reverse_sequences: bool,
    zero_output_for_mask: bool,
    /// The initial states (one cell only) and the mask, after the sequence.
    extra: Vec<Source>,
    initial_state: bool,
    masked: bool,
    /// The suffix of the last cell's node (`None`: the layer's own name).
    name: Option<&'a str>,
    /// Before the names of the other nodes (`forward_`, ...).
    prefix: &'a str,
}

/// The steps of a direction that hold its outputs.
struct Outputs {
    /// The main output (the last cell's node, or its `output` slice with `return_state`).
    main: usize,
    /// The final states, cell by cell.
    states: Vec<usize>,
}

impl Rnn {
    fn weight_names(&self) -> Vec<&'static str> {
        self.cells
            .iter()
            .flat_map(CellConfig::weight_names)
            .collect()
    }

    /// Where a Keras 3 weights file keeps each cell's weights, below `prefix` (the
    /// layer's group, or a Bidirectional's `forward_layer/`): `cell`, or for stacked
    /// cells `cell/cells/lstm_cell`, `cell/cells/lstm_cell_1`, ... (named after the class,
    /// numbered per class, as `saving_lib` names a list's items).
    fn weight_groups(&self, prefix: &str) -> Vec<String> {
        if let [_] = self.cells[..] {
            return vec![format!("{prefix}cell")];
        }
        let mut used: std::collections::BTreeMap<&str, usize> = Default::default();
        self.cells
            .iter()
            .map(|c| {
                let base = match c.cell {
                    Cell::Lstm => "lstm_cell",
                    Cell::Gru { .. } => "gru_cell",
                    Cell::Simple => "simple_rnn_cell",
                };
                let n = used.entry(base).or_insert(0);
                let name = if *n == 0 {
                    base.to_string()
                } else {
                    format!("{base}_{n}")
                };
                *n += 1;
                format!("{prefix}cell/cells/{name}")
            })
            .collect()
    }

    fn last(&self) -> &CellConfig {
        // A layer has at least one cell (checked when parsing).
        &self.cells[self.cells.len() - 1]
    }

    /// The initial states among a call's inputs (after the sequence): none, or one per
    /// state of each of `directions`.
    fn initial_states(&self, inputs: &[&[usize]], directions: usize) -> Result<bool, String> {
        let given = inputs.len().saturating_sub(1);
        if inputs.is_empty() {
            return Err("is called without an input sequence".into());
        }
        if given > 0 && self.cells.len() > 1 {
            return Err("initial_state with StackedRNNCells is not supported".into());
        }
        let cell = self.last();
        let want = cell.cell.states() * directions;
        if given != 0 && given != want {
            return Err(format!(
                "is called with {given} initial state tensor(s); this layer takes {want} \
                 ({})",
                cell.state_names().join(", ")
            ));
        }
        if let Some(bad) = inputs[1..].iter().find(|s| **s != [cell.units]) {
            return Err(format!(
                "is given an initial state of shape {bad:?}; each must be [{}] (batch excluded)",
                cell.units
            ));
        }
        Ok(given > 0)
    }

    /// Appends the nodes of one direction over the call's input 0 (of shape `input`): one
    /// recurrent node per cell, each reading the sequence of the one before, then with
    /// `return_state` the slices of their outputs and states.
    fn direction(
        &self,
        steps: &mut Vec<Step>,
        input: &[usize],
        weights: &[Weights],
        d: &Direction,
    ) -> Result<Outputs, String> {
        let length = input.first().copied().unwrap_or(0);
        let last = self.cells.len() - 1;
        let mut from = Source::Input(0);
        let mut shape = input.to_vec();
        let mut weights = weights;
        let mut states = Vec::new();
        let mut main = 0;
        for (k, cell) in self.cells.iter().enumerate() {
            let n = cell.weight_names().len().min(weights.len());
            let (own, rest) = weights.split_at(n);
            weights = rest;
            let is_last = k == last;
            // The cells before the last return their whole sequence in time order, so the
            // next, reading in the layer's direction, sees them in processing order.
            let run = Run {
                go_backwards: self.go_backwards,
                return_sequences: !is_last || self.return_sequences,
                reverse_sequences: if is_last {
                    d.reverse_sequences
                } else {
                    self.go_backwards
                },
                return_state: self.return_state,
                initial_state: d.initial_state,
                masked: d.masked,
                zero_output_for_mask: is_last && d.zero_output_for_mask,
                stateful: self.stateful,
            };
            let op = cell
                .op(&shape, own, run)
                .map_err(|e| match self.cells.len() {
                    1 => e,
                    _ => format!("cell {k} ({}): {e}", cell.class),
                })?;
            let prefix = match self.cells.len() {
                1 => d.prefix.to_string(),
                _ => format!("{}cell{k}_", d.prefix),
            };
            let name = match (is_last, self.cells.len()) {
                (true, _) => d.name.map(str::to_string),
                (false, _) => Some(format!("{}cell{k}", d.prefix)),
            };
            let mut sources = vec![from];
            sources.extend(d.extra.iter().copied());
            steps.push(Step::new(name.as_deref(), op, sources));
            let node = steps.len() - 1;
            main = node;
            if self.return_state {
                let prefix = if is_last {
                    d.prefix.to_string()
                } else {
                    prefix
                };
                for (j, (suffix, ops)) in cell
                    .unpack(length, run.return_sequences, &prefix)
                    .into_iter()
                    .enumerate()
                {
                    let at = push_chain(steps, &suffix, ops, node, None);
                    match j {
                        0 => main = at,
                        _ => states.push(at),
                    }
                }
            }
            from = Source::Step(main);
            shape = vec![length, cell.units];
        }
        Ok(Outputs { main, states })
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
        Rnn::weight_groups(self, "")
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
        let direction = Direction {
            reverse_sequences: false,
            zero_output_for_mask: self.zero_output_for_mask,
            extra: (1..inputs.len()).map(Source::Input).collect(),
            initial_state: initial,
            masked,
            name: None,
            prefix: "",
        };
        let mut steps = Vec::new();
        let outputs = self.direction(&mut steps, tensors[0], weights, &direction)?;
        if self.return_state {
            let all = std::iter::once(outputs.main).chain(outputs.states);
            for (k, s) in all.enumerate() {
                steps[s].output = Some(k);
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
    if forward.stateful || backward.stateful {
        // Its backward direction reads each call's sequence from the end: no step at a time.
        options.problems.push(
            "a stateful Bidirectional is not supported (streaming needs forward-only layers)"
                .into(),
        );
        return None;
    }
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
        let mut groups = self.forward.weight_groups("forward_layer/");
        groups.extend(self.backward.weight_groups("backward_layer/"));
        groups
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
        let states_of = |rnn: &Rnn| rnn.last().cell.states();
        if states_of(&self.forward) != states_of(&self.backward) && inputs.len() > 1 {
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
        let n = if initial { states_of(&self.forward) } else { 0 };
        let mask = masked.then_some(Source::Input(all.len() - 1));
        let extra = |first: usize| {
            (first..first + n)
                .map(Source::Input)
                .chain(mask)
                .collect::<Vec<_>>()
        };
        // The node named after the layer: the merge, or the forward direction when the
        // two are returned as they are.
        let forward_suffix = (!both || state).then_some("forward");
        // Keras makes both directions output zeros at masked steps when they return
        // sequences (`zero_output_for_mask = return_sequences`).
        let direction = |rnn: &Rnn, backward: bool| Direction {
            reverse_sequences: backward,
            zero_output_for_mask: rnn.return_sequences,
            extra: extra(if backward { 1 + n } else { 1 }),
            initial_state: initial,
            masked,
            name: if backward {
                Some("backward")
            } else {
                forward_suffix
            },
            prefix: if backward { "backward_" } else { "forward_" },
        };
        let mut steps = Vec::new();
        let forward =
            self.forward
                .direction(&mut steps, input, fw, &direction(&self.forward, false))?;
        let backward =
            self.backward
                .direction(&mut steps, input, bw, &direction(&self.backward, true))?;
        let (fw_out, bw_out) = (forward.main, backward.main);
        let states: Vec<usize> = forward.states.into_iter().chain(backward.states).collect();
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
    let cell_count = |cell: &Map<String, Value>| {
        let use_bias = cell.get("use_bias").and_then(Value::as_bool);
        2 + usize::from(use_bias.unwrap_or(true))
    };
    // An `RNN` keeps its cell's options in `cell`, a StackedRNNCells in its `cells`.
    let own = |config: &Map<String, Value>| {
        let Some(cell) = config.get("cell") else {
            return Some(cell_count(config));
        };
        let cell = cell.get("config")?.as_object()?;
        match cell.get("cells") {
            Some(Value::Array(cells)) => cells
                .iter()
                .map(|c| c.get("config").and_then(Value::as_object).map(cell_count))
                .sum(),
            _ => Some(cell_count(cell)),
        }
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
    fn time_major_and_a_stateful_bidirectional_are_rejected_by_name() {
        assert!(parse_layer(&entry("LSTM", r#"{"units": 4, "stateful": true}"#), K3).is_ok());
        let err = problems("GRU", r#"{"units": 4, "time_major": true}"#);
        assert!(err[0].contains("'time_major'"), "{err:?}");
        let err = problems(
            "Bidirectional",
            r#"{"merge_mode": "concat", "layer": {"class_name": "SimpleRNN", "config": {"units": 3, "stateful": true}}}"#,
        );
        assert!(err[0].contains("stateful Bidirectional"), "{err:?}");
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
    fn stacked_cells_run_one_node_per_cell() {
        let config = r#"{"return_sequences": true, "return_state": true, "go_backwards": true,
            "cell": {"class_name": "StackedRNNCells", "config": {"name": "s", "trainable": true,
            "cells": [
                {"class_name": "LSTMCell", "config": {"units": 3}},
                {"class_name": "GRUCell", "config": {"units": 2, "use_bias": false}},
                {"class_name": "LSTMCell", "config": {"units": 4}}]}}}"#;
        let kind = parse_layer(&entry("RNN", config), K3).unwrap();
        assert_eq!(
            kind.weight_groups(),
            [
                "cell/cells/lstm_cell",
                "cell/cells/gru_cell",
                "cell/cells/lstm_cell_1"
            ]
        );
        assert_eq!(kind.weight_names().len(), 8);
        let weights = [
            zeros(&[5, 12]),
            zeros(&[3, 12]),
            zeros(&[12]),
            zeros(&[3, 6]),
            zeros(&[2, 6]),
            zeros(&[2, 16]),
            zeros(&[4, 16]),
            zeros(&[16]),
        ];
        let steps = kind.steps(&[&[6, 5]], &weights).unwrap();
        // Each cell reads the sequence of the one before, in the layer's direction; all but
        // the last write it in time order.
        let runs: Vec<(Option<&str>, bool, bool, bool)> = steps
            .iter()
            .filter_map(|s| match &s.op {
                Op::Recurrent(r) => Some((
                    s.suffix.as_deref(),
                    r.go_backwards,
                    r.return_sequences,
                    r.reverse_sequences,
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            runs,
            [
                (Some("cell0"), true, true, true),
                (Some("cell1"), true, true, true),
                (None, true, true, false)
            ]
        );
        let mut outputs: Vec<(usize, Option<&str>)> = steps
            .iter()
            .filter_map(|s| s.output.map(|k| (k, s.suffix.as_deref())))
            .collect();
        outputs.sort();
        assert_eq!(
            outputs,
            [
                (0, Some("output")),
                (1, Some("cell0_state_h")),
                (2, Some("cell0_state_c")),
                (3, Some("cell1_state_h")),
                (4, Some("state_h")),
                (5, Some("state_c"))
            ]
        );
        let err = kind.steps(&[&[6, 5], &[4], &[4]], &weights).unwrap_err();
        assert!(err.contains("StackedRNNCells"), "{err}");
        let err = kind.steps(&[&[6, 5]], &weights[..7]).unwrap_err();
        assert!(err.contains("cell 2 (LSTMCell)"), "{err}");
        let map: Map<String, Value> = serde_json::from_str(config).unwrap();
        assert_eq!(loose_weight_count("RNN", &map), Some(8));
        // In a Bidirectional, below each direction's group.
        let bi = format!(
            r#"{{"merge_mode": "concat", "layer": {{"class_name": "RNN", "config": {config}}}}}"#
        );
        let kind = parse_layer(&entry("Bidirectional", &bi), K3).unwrap();
        assert_eq!(
            kind.weight_groups()[3],
            "backward_layer/cell/cells/lstm_cell"
        );
        let err = problems(
            "RNN",
            r#"{"cell": {"class_name": "StackedRNNCells", "config": {"cells": [
                {"class_name": "LSTMCell", "config": {"units": 3}},
                {"class_name": "PeepholeLSTMCell", "config": {"units": 3}}]}}}"#,
        );
        assert!(
            err[0].contains("StackedRNNCells") && err[0].contains("PeepholeLSTMCell"),
            "{err:?}"
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
