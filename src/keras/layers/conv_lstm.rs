//! `ConvLSTM1D`, `ConvLSTM2D` and `ConvLSTM3D`, following
//! `keras/src/layers/rnn/conv_lstm.py` and tf_keras's `base_conv_lstm.py` (same math).
//!
//! A call is two nodes: `LAYER/input_conv`, the input convolution (kernel, bias, strides,
//! dilation, padding) of every step at once, as one `Conv` over `[steps, *spatial,
//! channels]` with a window of 1 along the steps; then `LAYER`, an [`Op::ConvLstm`] that
//! runs the steps in a loop, adding the `same`-padded, stride-1 convolution of the previous
//! `h` with the recurrent kernel (Keras's `recurrent_conv`) before the LSTM gate math.
//! With `return_state` it appends h and c, and slices (`LAYER/output`, `LAYER/state_h`,
//! `LAYER/state_c`) make the call's outputs. `channels_first` runs channels-last between
//! transposes.

use serde_json::Value;

use super::recurrent::cell_activation;
use super::spatial::{self, PaddingMode};
use super::{check_shape, LayerKind, Options, Source, Step};
use crate::ir::{numel, Activation, ConvLstm, Op, Weights, Window};
use crate::keras::config::KerasVersion;

#[derive(Debug)]
struct ConvLstmLayer {
    rank: usize,
    filters: usize,
    kernel_size: Vec<usize>,
    strides: Vec<usize>,
    dilation: Vec<usize>,
    padding: PaddingMode,
    channels_first: bool,
    activation: Activation,
    recurrent_activation: Activation,
    use_bias: bool,
    go_backwards: bool,
    return_sequences: bool,
    return_state: bool,
}

/// Options besides the recurrent cells' training-only ones that do not change inference:
/// `unroll`, and `zero_output_for_mask` (only with a Keras mask, which these layers
/// refuse).
const IGNORED: &[&str] = &["unroll", "zero_output_for_mask"];

pub(super) fn parse(
    class: &str,
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let rank = match class {
        "ConvLSTM1D" => 1,
        "ConvLSTM2D" => 2,
        _ => 3,
    };
    options.ignore(super::recurrent::TRAINING_ONLY);
    options.ignore(IGNORED);
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
    let filters = spatial::positive(options, "filters", None);
    let kernel_size = spatial::tuple(options, "kernel_size", rank, None);
    let strides = spatial::tuple(options, "strides", rank, Some(vec![1; rank]));
    let dilation = spatial::tuple(options, "dilation_rate", rank, Some(vec![1; rank]));
    let padding = spatial::padding_mode(options, false);
    let channels_first = spatial::channels_first(options);
    let activation = cell_activation(options, "activation", "tanh", version);
    let recurrent_activation = cell_activation(options, "recurrent_activation", "sigmoid", version);
    let use_bias = options.bool("use_bias", true);
    let go_backwards = options.bool("go_backwards", false);
    let return_sequences = options.bool("return_sequences", false);
    let return_state = options.bool("return_state", false);
    Some(Box::new(ConvLstmLayer {
        rank,
        filters: filters?,
        kernel_size: kernel_size?,
        strides: strides?,
        dilation: dilation?,
        padding: padding?,
        channels_first: channels_first?,
        activation: activation?,
        recurrent_activation: recurrent_activation?,
        use_bias,
        go_backwards,
        return_sequences,
        return_state,
    }))
}

/// Weights of a ConvLSTM layer that fails to parse.
pub(super) fn loose_weight_count(config: &serde_json::Map<String, Value>) -> usize {
    let use_bias = config.get("use_bias").and_then(Value::as_bool);
    2 + usize::from(use_bias.unwrap_or(true))
}

impl ConvLstmLayer {
    /// Axis permutation of a `[steps, *spatial, C]` tensor to `[steps, C, *spatial]`, or
    /// back (`to_last`).
    fn step_transpose(&self, to_last: bool) -> Op {
        let r = self.rank;
        let perm = if to_last {
            std::iter::once(0)
                .chain(2..r + 2)
                .chain(std::iter::once(1))
                .collect()
        } else {
            std::iter::once(0)
                .chain(std::iter::once(r + 1))
                .chain(1..=r)
                .collect()
        };
        Op::Transpose { perm }
    }

    fn slice(begin: usize, end: usize) -> Op {
        Op::Slice {
            begin: vec![begin],
            end: vec![end],
            step: vec![1],
        }
    }

    fn reshape(shape: &[usize]) -> Op {
        Op::Reshape {
            target: shape.iter().map(|&d| d as i64).collect(),
        }
    }
}

impl LayerKind for ConvLstmLayer {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.use_bias {
            vec!["kernel", "recurrent_kernel", "bias"]
        } else {
            vec!["kernel", "recurrent_kernel"]
        }
    }

    fn weight_groups(&self) -> Vec<String> {
        vec!["cell".into()]
    }

    fn tensor_arguments(&self) -> &'static [&'static str] {
        &["inputs", "initial_state"]
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        let (r, f) = (self.rank, self.filters);
        let Some((input, states)) = inputs.split_first() else {
            return Err("is called without an input sequence".into());
        };
        if input.len() != r + 2 {
            return Err(format!(
                "needs an input of shape [steps, {r} spatial axes, channels] (batch \
                 excluded), got {input:?}"
            ));
        }
        // Channels-last view of the input.
        let mut x = input.to_vec();
        if self.channels_first {
            x[1..].rotate_left(1);
        }
        let (steps_len, channels) = (x[0], x[r + 1]);
        let mut steps = Vec::new();
        let mut from = Source::Input(0);
        if self.channels_first {
            steps.push(Step::new(
                Some("to_channels_last"),
                self.step_transpose(true),
                vec![from],
            ));
            from = Source::Step(0);
        }
        let kernel = weights.first().ok_or("missing kernel")?;
        let mut want = self.kernel_size.clone();
        want.extend([channels, 4 * f]);
        check_shape("kernel", kernel, &want)?;
        let recurrent = weights.get(1).ok_or("missing recurrent_kernel")?;
        let mut want = self.kernel_size.clone();
        want.extend([f, 4 * f]);
        check_shape("recurrent_kernel", recurrent, &want)?;
        let bias = if self.use_bias {
            let b = weights.get(2).ok_or("missing bias")?;
            check_shape("bias", b, &[4 * f])?;
            Some(b.clone())
        } else {
            None
        };
        // The input convolution of every step: a window of 1 along the steps.
        let spatial_window = spatial::window(
            &x[1..=r],
            &self.kernel_size,
            &self.strides,
            &self.dilation,
            self.padding,
        );
        let window = Window {
            size: std::iter::once(1).chain(spatial_window.size).collect(),
            strides: std::iter::once(1).chain(spatial_window.strides).collect(),
            dilation: std::iter::once(1).chain(spatial_window.dilation).collect(),
            padding: std::iter::once((0, 0))
                .chain(spatial_window.padding)
                .collect(),
        };
        let mut conv_kernel = vec![1];
        conv_kernel.extend(&kernel.shape);
        let conv = Op::Conv {
            kernel: Weights::new(conv_kernel, kernel.data.clone())?,
            bias,
            window,
            groups: 1,
            rescale: None,
            activation: Activation::Linear,
        };
        let gates = conv.output_shape(&[&x])?;
        steps.push(Step::new(Some("input_conv"), conv, vec![from]));
        let gates_step = Source::Step(steps.len() - 1);
        let spatial_out = gates[1..=r].to_vec();
        let mut state_shape = spatial_out.clone();
        state_shape.push(f);
        // Initial states: h and c, in the layer's layout.
        let initial_state = match states.len() {
            0 => false,
            2 => true,
            n => {
                return Err(format!(
                    "is called with {n} initial state tensor(s); this layer takes 2 (h, c)"
                ))
            }
        };
        let mut sources = vec![gates_step];
        for (k, state) in states.iter().enumerate() {
            let mut want = state_shape.clone();
            if self.channels_first {
                want.rotate_right(1);
            }
            if **state != want[..] {
                return Err(format!(
                    "is given an initial state of shape {state:?}; each must be {want:?} \
                     (batch excluded)"
                ));
            }
            if self.channels_first {
                steps.push(Step::new(
                    Some(&format!("initial_state_{k}_channels_last")),
                    spatial::to_channels_last(r),
                    vec![Source::Input(1 + k)],
                ));
                sources.push(Source::Step(steps.len() - 1));
            } else {
                sources.push(Source::Input(1 + k));
            }
        }
        let op = Op::ConvLstm(Box::new(ConvLstm {
            filters: f,
            spatial: spatial_out.clone(),
            recurrent: recurrent.clone(),
            activation: self.activation.clone(),
            recurrent_activation: self.recurrent_activation.clone(),
            go_backwards: self.go_backwards,
            return_sequences: self.return_sequences,
            return_state: self.return_state,
            initial_state,
        }));
        let main_shape: Vec<usize> = if self.return_sequences {
            std::iter::once(steps_len)
                .chain(state_shape.clone())
                .collect()
        } else {
            state_shape.clone()
        };
        // A channels-last output back to the layer's layout.
        let back = |main: bool| {
            if main && self.return_sequences {
                self.step_transpose(false)
            } else {
                spatial::to_channels_first(r)
            }
        };
        let node = steps.len();
        steps.push(Step::new(None, op, sources));
        if !self.return_state {
            if self.channels_first {
                steps.push(Step::new(
                    Some("to_channels_first"),
                    back(true),
                    vec![Source::Step(node)],
                ));
            }
            return Ok(steps);
        }
        let main_len = numel(&main_shape);
        let state_len = numel(&state_shape);
        let parts = [
            ("output", 0, main_len, &main_shape, true),
            (
                "state_h",
                main_len,
                main_len + state_len,
                &state_shape,
                false,
            ),
            (
                "state_c",
                main_len + state_len,
                main_len + 2 * state_len,
                &state_shape,
                false,
            ),
        ];
        for (k, (name, begin, end, shape, main)) in parts.into_iter().enumerate() {
            let mut ops = vec![Self::slice(begin, end), Self::reshape(shape)];
            if self.channels_first {
                ops.push(back(main));
            }
            let count = ops.len();
            for (i, op) in ops.into_iter().enumerate() {
                let source = if i == 0 { node } else { steps.len() - 1 };
                let suffix = if i + 1 == count {
                    name.to_string()
                } else {
                    format!("{name}_{i}")
                };
                let mut step = Step::new(Some(&suffix), op, vec![Source::Step(source)]);
                if i + 1 == count {
                    step.output = Some(k);
                }
                steps.push(step);
            }
        }
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_layer;
    use super::*;
    use crate::keras::config::LayerEntry;

    fn kind(class: &str, config: &str) -> Result<Box<dyn LayerKind>, Vec<String>> {
        let mut e = LayerEntry::new(
            "c".into(),
            class.into(),
            serde_json::from_str(config).unwrap(),
        );
        e.module = Some("keras.layers".into());
        parse_layer(&e, KerasVersion::KERAS3)
    }

    fn zeros(shape: &[usize]) -> Weights {
        Weights::new(shape.to_vec(), vec![0.0; numel(shape)]).unwrap()
    }

    #[test]
    fn input_convolution_then_the_recurrence() {
        let layer = kind(
            "ConvLSTM2D",
            r#"{"filters": 3, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same",
                "return_sequences": true, "unit_forget_bias": true, "dropout": 0.1}"#,
        )
        .unwrap();
        let weights = [zeros(&[3, 2, 2, 12]), zeros(&[3, 2, 3, 12]), zeros(&[12])];
        let steps = layer.steps(&[&[5, 6, 6, 2]], &weights).unwrap();
        assert_eq!(steps.len(), 2);
        let Op::Conv { window, kernel, .. } = &steps[0].op else {
            panic!("{steps:?}")
        };
        assert_eq!(kernel.shape, [1, 3, 2, 2, 12]);
        assert_eq!(window.strides, [1, 2, 1]);
        assert_eq!(window.padding, [(0, 0), (0, 1), (0, 1)]);
        let Op::ConvLstm(c) = &steps[1].op else {
            panic!("{steps:?}")
        };
        assert_eq!(c.spatial, [3, 6]);
        assert_eq!(c.padding(), [(1, 1), (0, 1)]);
        assert_eq!(steps[1].suffix, None);
        let shape = steps[1].op.output_shape(&[&[5, 3, 6, 12]]).unwrap();
        assert_eq!(shape, [5, 3, 6, 3]);
    }

    #[test]
    fn return_state_and_initial_state() {
        let layer = kind(
            "ConvLSTM1D",
            r#"{"filters": 2, "kernel_size": 3, "return_state": true, "use_bias": false}"#,
        )
        .unwrap();
        let weights = [zeros(&[3, 4, 8]), zeros(&[3, 2, 8])];
        let steps = layer
            .steps(&[&[5, 7, 4], &[5, 2], &[5, 2]], &weights)
            .unwrap();
        let outputs: Vec<(usize, &str)> = steps
            .iter()
            .filter_map(|s| Some((s.output?, s.suffix.as_deref()?)))
            .collect();
        assert_eq!(outputs, [(0, "output"), (1, "state_h"), (2, "state_c")]);
        let err = layer.steps(&[&[5, 7, 4], &[5, 2]], &weights).unwrap_err();
        assert!(err.contains("takes 2"), "{err}");
        let err = layer
            .steps(&[&[5, 7, 4], &[7, 2], &[7, 2]], &weights)
            .unwrap_err();
        assert!(err.contains("[5, 2]"), "{err}");
    }

    #[test]
    fn unsupported_options_are_named() {
        let err = kind(
            "ConvLSTM3D",
            r#"{"filters": 2, "kernel_size": 3, "stateful": true, "padding": "causal"}"#,
        )
        .unwrap_err();
        assert!(err.iter().any(|e| e.contains("'stateful'")), "{err:?}");
        assert!(err.iter().any(|e| e.contains("'padding'")), "{err:?}");
        let err = kind(
            "ConvLSTM2D",
            r#"{"filters": 2, "kernel_size": 3, "activation": "softmax"}"#,
        )
        .unwrap_err();
        assert!(err[0].contains("'activation'"), "{err:?}");
    }
}
