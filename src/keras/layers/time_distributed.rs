//! `TimeDistributed`: the wrapped layer runs on each slice along axis 1 (the first axis
//! after the batch). The inner layer is parsed with the ordinary [`super::parse`] and built
//! for the per-slice shape; each of its ops is then lifted to the whole input by giving it
//! one more leading axis that it does not mix: Dense, elementwise ops and normalisations
//! already act per row; convolutions and pooling get a window of 1 along that axis;
//! global pooling becomes a pooling window over the slice followed by a reshape. Ops that
//! cannot be lifted are rejected, naming the inner layer.
//!
//! Weights: Keras 3 keeps the inner layer's under `layers/time_distributed/layer/vars`;
//! legacy `.h5` files list them under the wrapper, in the inner layer's order.

use serde_json::{Map, Value};

use super::{LayerKind, Options, Source, Step, WeightCount};
use crate::error::escape_for_message as esc;
use crate::ir::{Activation, NormAxis, Op, Weights, Window};
use crate::keras::config::{KerasVersion, LayerEntry};

#[derive(Debug)]
struct TimeDistributed {
    inner: Box<dyn LayerKind>,
    /// `name (Class)` of the inner layer, for messages.
    label: String,
    /// Whether the inner layer passes Keras masks on (then so does the wrapper: Keras
    /// runs it on every step and the output keeps the input's mask).
    passes_mask: bool,
}

/// The inner layer's entry, from the wrapper's `layer` option.
fn inner_entry(layer: &Value) -> Result<LayerEntry, String> {
    let obj = layer
        .as_object()
        .ok_or("option 'layer' is not a layer object")?;
    let class = obj
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or("option 'layer' has no 'class_name'")?;
    let config: Map<String, Value> = match obj.get("config") {
        Some(Value::Object(c)) => c.clone(),
        _ => return Err("option 'layer' has no config object".into()),
    };
    let name = config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(class)
        .to_string();
    let mut entry = LayerEntry::new(name, class.to_string(), config);
    entry.module = obj
        .get("module")
        .and_then(Value::as_str)
        .map(str::to_string);
    entry.registered_name = obj
        .get("registered_name")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(entry)
}

pub(super) fn parse(options: &mut Options, version: KerasVersion) -> Option<Box<dyn LayerKind>> {
    let Some(layer) = options.get("layer") else {
        options.problems.push("option 'layer' is missing".into());
        return None;
    };
    let entry = match inner_entry(layer) {
        Ok(entry) => entry,
        Err(e) => {
            options.problems.push(e);
            return None;
        }
    };
    let label = format!("'{}' ({})", esc(&entry.name), esc(&entry.class));
    if crate::keras::config::MODEL_CLASSES.contains(&entry.class.as_str()) {
        options.problems.push(format!(
            "inner layer {label}: a model inside TimeDistributed is not supported"
        ));
        return None;
    }
    if entry.class == "TimeDistributed" || entry.is_input() {
        options
            .problems
            .push(format!("inner layer {label} cannot be time-distributed"));
        return None;
    }
    match super::parse(&entry, version) {
        Ok(inner) if inner.mask_source().is_some() => {
            options.problems.push(format!(
                "inner layer {label}: masking is not supported inside TimeDistributed"
            ));
            None
        }
        Ok(inner) => Some(Box::new(TimeDistributed {
            inner,
            label,
            passes_mask: super::registry::mask_policy(&entry.class)
                == super::registry::MaskPolicy::Passes,
        })),
        Err(problems) => {
            options.problems.extend(
                problems
                    .into_iter()
                    .map(|p| format!("inner layer {label}: {p}")),
            );
            None
        }
    }
}

/// The inner layer's weight count, for legacy files whose wrapper failed to parse.
pub(super) fn loose_weight_count(entry: &LayerEntry) -> Option<WeightCount> {
    let inner = inner_entry(entry.config.get("layer")?).ok()?;
    super::loose_weight_count(&inner)
}

impl LayerKind for TimeDistributed {
    fn weight_names(&self) -> Vec<&'static str> {
        self.inner.weight_names()
    }

    fn passes_mask(&self) -> bool {
        self.passes_mask
    }

    fn weight_groups(&self) -> Vec<String> {
        self.inner
            .weight_groups()
            .into_iter()
            .map(|g| {
                if g.is_empty() {
                    "layer".to_string()
                } else {
                    format!("layer/{g}")
                }
            })
            .collect()
    }

    fn trainable_weights(&self) -> usize {
        self.inner.trainable_weights()
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = super::single(inputs)?;
        let Some((&steps, slice)) = input.split_first().filter(|(_, s)| !s.is_empty()) else {
            return Err(format!(
                "needs an input with a time axis and at least one more, got shape {input:?}"
            ));
        };
        let inner = self
            .inner
            .steps(&[slice], weights)
            .map_err(|e| format!("inner layer {}: {e}", self.label))?;
        // Per-slice shapes of the inner steps' outputs, to lift ops that need them.
        let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(inner.len());
        let mut lifted: Vec<Step> = Vec::new();
        // Index in `lifted` of each inner step's output.
        let mut index: Vec<usize> = Vec::with_capacity(inner.len());
        for step in inner {
            let in_shapes: Vec<&[usize]> = step
                .inputs
                .iter()
                .map(|s| match s {
                    Source::Input(_) => slice,
                    Source::Step(j) => &shapes[*j][..],
                })
                .collect();
            let [x] = in_shapes[..] else {
                return Err(format!(
                    "inner layer {} makes a step with several inputs, which cannot be \
                     time-distributed",
                    self.label
                ));
            };
            let out = step
                .op
                .output_shape(&in_shapes)
                .map_err(|e| format!("inner layer {}: {e}", self.label))?;
            let ops =
                lift(&step.op, steps, x).map_err(|e| format!("inner layer {}: {e}", self.label))?;
            let sources: Vec<Source> = step
                .inputs
                .iter()
                .map(|s| match s {
                    Source::Input(k) => Source::Input(*k),
                    Source::Step(j) => Source::Step(index[*j]),
                })
                .collect();
            let count = ops.len();
            for (k, op) in ops.into_iter().enumerate() {
                let last = k + 1 == count;
                let suffix = match (&step.suffix, last) {
                    (suffix, true) => suffix.clone(),
                    (Some(s), false) => Some(format!("{s}_pool")),
                    (None, false) => Some("pool".to_string()),
                };
                let inputs = if k == 0 {
                    sources.clone()
                } else {
                    vec![Source::Step(lifted.len() - 1)]
                };
                lifted.push(Step {
                    suffix,
                    op,
                    inputs,
                    output: if last { step.output } else { None },
                });
            }
            index.push(lifted.len() - 1);
            shapes.push(out);
        }
        Ok(lifted)
    }
}

/// An activation on the lifted output (axis activations move one axis up).
fn lift_activation(a: &Activation) -> Activation {
    match a {
        Activation::Axis { func, axis } => Activation::Axis {
            func: *func,
            axis: axis + 1,
        },
        other => other.clone(),
    }
}

fn lift_window(w: &Window) -> Window {
    let front = |v: &[usize], first: usize| [&[first][..], v].concat();
    Window {
        size: front(&w.size, 1),
        strides: front(&w.strides, 1),
        dilation: front(&w.dilation, 1),
        padding: [&[(0, 0)][..], &w.padding].concat(),
    }
}

fn lift_kernel(kernel: &Weights) -> Weights {
    Weights {
        shape: [&[1][..], &kernel.shape].concat(),
        data: kernel.data.clone(),
    }
}

/// The op(s) that compute `op` on every slice of a `[steps, *slice]` input at once.
fn lift(op: &Op, steps: usize, slice: &[usize]) -> Result<Vec<Op>, String> {
    let op = match op {
        Op::Dense {
            kernel,
            bias,
            rescale,
            activation,
        } => Op::Dense {
            kernel: kernel.clone(),
            bias: bias.clone(),
            rescale: rescale.clone(),
            activation: lift_activation(activation),
        },
        Op::Activation(a) => Op::Activation(lift_activation(a)),
        // Parameters repeat with the channel period, which the extra axis keeps.
        Op::Affine { .. } | Op::Identity | Op::Embedding { .. } => op.clone(),
        Op::PRelu { alpha } => Op::PRelu {
            alpha: lift_kernel(alpha),
        },
        Op::Reshape { target } => Op::Reshape {
            target: [&[steps as i64][..], target].concat(),
        },
        Op::Normalize {
            view,
            kind,
            gamma,
            beta,
        } => Op::Normalize {
            view: [
                &[NormAxis {
                    len: steps,
                    reduced: false,
                    param_stride: 0,
                }][..],
                view,
            ]
            .concat(),
            kind: *kind,
            gamma: gamma.clone(),
            beta: beta.clone(),
        },
        Op::Conv {
            kernel,
            bias,
            rescale,
            window,
            groups,
            activation,
        } => Op::Conv {
            kernel: lift_kernel(kernel),
            bias: bias.clone(),
            rescale: rescale.clone(),
            window: lift_window(window),
            groups: *groups,
            activation: lift_activation(activation),
        },
        Op::ConvTranspose {
            kernel,
            bias,
            strides,
            dilation,
            crop,
            output,
            activation,
        } => Op::ConvTranspose {
            kernel: lift_kernel(kernel),
            bias: bias.clone(),
            strides: [&[1][..], strides].concat(),
            dilation: [&[1][..], dilation].concat(),
            crop: [&[0][..], crop].concat(),
            output: [&[steps][..], output].concat(),
            activation: lift_activation(activation),
        },
        Op::Pool { kind, window } => Op::Pool {
            kind: *kind,
            window: lift_window(window),
        },
        Op::GlobalPool { kind } => {
            // A window over the whole slice, then drop the unit axes.
            let (spatial, channels) = match slice {
                [spatial @ .., c] if !spatial.is_empty() => (spatial, *c),
                _ => return Err(format!("global pooling of a slice of shape {slice:?}")),
            };
            let window = Window {
                size: spatial.to_vec(),
                strides: spatial.to_vec(),
                dilation: vec![1; spatial.len()],
                padding: vec![(0, 0); spatial.len()],
            };
            return Ok(vec![
                Op::Pool {
                    kind: *kind,
                    window: lift_window(&window),
                },
                Op::Reshape {
                    target: vec![steps as i64, channels as i64],
                },
            ]);
        }
        Op::Pad { padding, value } => Op::Pad {
            padding: [&[(0, 0)][..], padding].concat(),
            value: *value,
        },
        Op::Slice { begin, end, step } => Op::Slice {
            begin: [&[0][..], begin].concat(),
            end: [&[steps][..], end].concat(),
            step: [&[1][..], step].concat(),
        },
        Op::Transpose { perm } => Op::Transpose {
            perm: std::iter::once(0)
                .chain(perm.iter().map(|p| p + 1))
                .collect(),
        },
        Op::Upsample {
            factors,
            bilinear: false,
        } => Op::Upsample {
            factors: [&[1][..], factors].concat(),
            bilinear: false,
        },
        _ => {
            return Err(
                "this layer is not supported inside TimeDistributed (supported: Dense, \
                 convolutions, pooling, reshaping, padding, cropping, nearest upsampling, \
                 activations, normalisations, Embedding, Dropout)"
                    .into(),
            )
        }
    };
    Ok(vec![op])
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn entry(class: &str, config: &str) -> LayerEntry {
        let mut e = LayerEntry::new(
            "td".into(),
            class.into(),
            serde_json::from_str(config).unwrap(),
        );
        e.module = Some("keras.layers".into());
        e
    }

    fn td(inner_class: &str, inner_config: &str) -> Result<Box<dyn LayerKind>, Vec<String>> {
        let config = format!(
            r#"{{"name": "td", "layer": {{"module": "keras.layers", "class_name": "{inner_class}",
                "config": {inner_config}, "registered_name": null}}}}"#
        );
        parse(
            &entry("TimeDistributed", &config),
            KerasVersion { major: 3 },
        )
    }

    fn w(shape: &[usize]) -> Weights {
        Weights::new(shape.to_vec(), vec![0.5; shape.iter().product()]).unwrap()
    }

    #[test]
    fn dense_weights_live_under_layer() {
        let kind = td("Dense", r#"{"name": "d", "units": 3}"#).unwrap();
        assert_eq!(kind.weight_names(), ["kernel", "bias"]);
        assert_eq!(kind.weight_groups(), ["layer"]);
        let steps = kind.steps(&[&[4, 5]], &[w(&[5, 3]), w(&[3])]).unwrap();
        assert_eq!(steps.len(), 1);
        assert!(matches!(steps[0].op, Op::Dense { .. }));
        assert_eq!(steps[0].op.output_shape(&[&[4, 5]]).unwrap(), [4, 3]);
    }

    #[test]
    fn conv_gets_a_unit_window_on_the_time_axis() {
        let kind = td(
            "Conv2D",
            r#"{"name": "c", "filters": 2, "kernel_size": [3, 3], "strides": [2, 1], "padding": "same"}"#,
        )
        .unwrap();
        let steps = kind
            .steps(&[&[3, 8, 7, 4]], &[w(&[3, 3, 4, 2]), w(&[2])])
            .unwrap();
        let Op::Conv { kernel, window, .. } = &steps[0].op else {
            panic!("{:?}", steps[0].op)
        };
        assert_eq!(kernel.shape, [1, 3, 3, 4, 2]);
        assert_eq!(window.size, [1, 3, 3]);
        assert_eq!(window.strides, [1, 2, 1]);
        assert_eq!(window.padding[0], (0, 0));
        assert_eq!(
            steps[0].op.output_shape(&[&[3, 8, 7, 4]]).unwrap(),
            [3, 4, 7, 2]
        );
    }

    #[test]
    fn global_pooling_is_a_window_then_a_reshape() {
        let kind = td("GlobalAveragePooling2D", r#"{"name": "g"}"#).unwrap();
        let steps = kind.steps(&[&[3, 6, 5, 4]], &[]).unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].suffix.as_deref(), Some("pool"));
        assert_eq!(steps[1].suffix, None);
        assert_eq!(steps[1].inputs, [Source::Step(0)]);
        let pooled = steps[0].op.output_shape(&[&[3, 6, 5, 4]]).unwrap();
        assert_eq!(pooled, [3, 1, 1, 4]);
        assert_eq!(steps[1].op.output_shape(&[&pooled]).unwrap(), [3, 4]);
    }

    #[test]
    fn inner_problems_name_the_inner_layer() {
        let err = td("Dense", r#"{"name": "d", "units": 3, "frobnicate": 1}"#).unwrap_err();
        assert!(
            err[0].contains("inner layer 'd' (Dense)") && err[0].contains("frobnicate"),
            "{err:?}"
        );
        let err = td("Masking", r#"{"name": "m"}"#).unwrap_err();
        assert!(err[0].contains("masking is not supported"), "{err:?}");
        let err = td("Zap", r#"{"name": "z"}"#).unwrap_err();
        assert!(err[0].contains("unsupported layer class 'Zap'"), "{err:?}");
        let kind = td("RepeatVector", r#"{"name": "r", "n": 2}"#).unwrap();
        let err = kind.steps(&[&[3, 4]], &[]).unwrap_err();
        assert!(
            err.contains("inner layer 'r' (RepeatVector)")
                && err.contains("not supported inside TimeDistributed"),
            "{err}"
        );
        let err = parse(
            &entry("TimeDistributed", r#"{"name": "td"}"#),
            KerasVersion { major: 3 },
        )
        .unwrap_err();
        assert!(err[0].contains("'layer' is missing"), "{err:?}");
    }
}
