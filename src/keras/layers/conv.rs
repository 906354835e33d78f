//! Convolutions: `Conv1D/2D/3D` (with `groups`), `DepthwiseConv1D/2D` and
//! `SeparableConv1D/2D`, as IR `Conv` nodes.
//!
//! - A depthwise kernel `[*k, in, M]` is the grouped kernel `[*k, 1, in * M]` with
//!   `groups = in` (same flat data; output channel `c * M + m`).
//! - A separable convolution is two nodes: `NAME/depthwise` (the depthwise convolution,
//!   no bias, linear) and `NAME`, a 1x1 convolution with the pointwise kernel, the bias and
//!   the activation; the layer's parameters are counted on the second.
//! - Padding `same` / `causal` is resolved to explicit amounts (see `spatial`);
//!   `channels_first` wraps the nodes in transposes.

use super::spatial::{self, Layout, PaddingMode};
use super::{check_shape, single, LayerKind, Options, Step};
use crate::ir::{Op, Weights, Window};
use crate::keras::activation::{self, ActivationSpec};
use crate::keras::config::KerasVersion;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Regular { filters: usize, groups: usize },
    Depthwise { multiplier: usize },
    Separable { filters: usize, multiplier: usize },
}

#[derive(Debug)]
struct Conv {
    kind: Kind,
    kernel_size: Vec<usize>,
    strides: Vec<usize>,
    dilation: Vec<usize>,
    padding: PaddingMode,
    layout: Layout,
    use_bias: bool,
    activation: ActivationSpec,
    keras2: bool,
}

/// Options that only matter for training.
const TRAINING_KEYS: &[&str] = &[
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "depthwise_initializer",
    "depthwise_regularizer",
    "depthwise_constraint",
    "pointwise_initializer",
    "pointwise_regularizer",
    "pointwise_constraint",
    "lora_alpha",
];

/// The layer's `activation` option.
pub(super) fn activation_option(
    options: &mut Options,
    version: KerasVersion,
) -> Option<ActivationSpec> {
    match options.get("activation") {
        None => Some(ActivationSpec::linear()),
        Some(v) => match activation::parse(v, version) {
            Ok(a) => Some(a),
            Err(e) => {
                options.problems.push(e);
                None
            }
        },
    }
}

pub(super) fn parse(
    class: &str,
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let (family, rank) = class.split_at(class.len() - 2);
    let rank = match rank {
        "1D" => 1,
        "2D" => 2,
        _ => 3,
    };
    options.ignore(TRAINING_KEYS);
    options.only(
        "lora_rank",
        &serde_json::Value::Null,
        " (merge the LoRA weights into the kernel before saving)",
    );
    let kind = match family {
        "Conv" => {
            let filters = spatial::positive(options, "filters", None);
            let groups = spatial::positive(options, "groups", Some(1));
            match (filters, groups) {
                (Some(f), Some(g)) if f % g != 0 => {
                    options.problems.push(format!(
                        "option 'filters'={f} is not a multiple of 'groups'={g}"
                    ));
                    None
                }
                (Some(filters), Some(groups)) => Some(Kind::Regular { filters, groups }),
                _ => None,
            }
        }
        family => {
            // tf.keras writes `groups: 1` for these.
            options.only(
                "groups",
                &1.into(),
                " (only 1 for depthwise and separable convolutions)",
            );
            let multiplier = spatial::positive(options, "depth_multiplier", Some(1));
            if family == "DepthwiseConv" {
                multiplier.map(|multiplier| Kind::Depthwise { multiplier })
            } else {
                let filters = spatial::positive(options, "filters", None);
                match (filters, multiplier) {
                    (Some(filters), Some(multiplier)) => Some(Kind::Separable {
                        filters,
                        multiplier,
                    }),
                    _ => None,
                }
            }
        }
    };
    let kernel_size = spatial::tuple(options, "kernel_size", rank, None);
    let strides = spatial::tuple(options, "strides", rank, Some(vec![1; rank]));
    let dilation = spatial::tuple(options, "dilation_rate", rank, Some(vec![1; rank]));
    let causal = rank == 1 && family == "Conv";
    let padding = spatial::padding_mode(options, causal);
    let channels_first = spatial::channels_first(options);
    let use_bias = options.bool("use_bias", true);
    let activation = activation_option(options, version);
    Some(Box::new(Conv {
        kind: kind?,
        kernel_size: kernel_size?,
        strides: strides?,
        dilation: dilation?,
        padding: padding?,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank,
        },
        use_bias,
        activation: activation?,
        keras2: version.major < 3,
    }))
}

impl Conv {
    fn rank(&self) -> usize {
        self.kernel_size.len()
    }

    fn window(&self, spatial_lengths: &[usize]) -> Window {
        spatial::window(
            spatial_lengths,
            &self.kernel_size,
            &self.strides,
            &self.dilation,
            self.padding,
        )
    }

    fn shape(&self, tail: &[usize]) -> Vec<usize> {
        let mut shape = self.kernel_size.clone();
        shape.extend_from_slice(tail);
        shape
    }

    fn bias(
        &self,
        weights: &[Weights],
        index: usize,
        len: usize,
    ) -> Result<Option<Weights>, String> {
        if !self.use_bias {
            return Ok(None);
        }
        let bias = weights.get(index).ok_or("missing bias")?;
        check_shape("bias", bias, &[len])?;
        Ok(Some(bias.clone()))
    }

    /// A depthwise kernel `[*k, in, M]` as the grouped kernel `[*k, 1, in * M]`.
    fn depthwise(
        &self,
        kernel: &Weights,
        channels: usize,
        multiplier: usize,
    ) -> Result<Weights, String> {
        let name = if self.keras2 {
            "depthwise_kernel"
        } else {
            "kernel"
        };
        check_shape(name, kernel, &self.shape(&[channels, multiplier]))?;
        Weights::new(self.shape(&[1, channels * multiplier]), kernel.data.clone())
    }
}

impl LayerKind for Conv {
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = match self.kind {
            Kind::Regular { .. } => vec!["kernel"],
            Kind::Depthwise { .. } if self.keras2 => vec!["depthwise_kernel"],
            Kind::Depthwise { .. } => vec!["kernel"],
            Kind::Separable { .. } => vec!["depthwise_kernel", "pointwise_kernel"],
        };
        if self.use_bias {
            names.push("bias");
        }
        names
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = self.layout.channels_last(single(inputs)?)?;
        let rank = self.rank();
        let channels = input[rank];
        let window = self.window(&input[..rank]);
        let activation = self.layout.activation(&self.activation)?;
        let kernel = weights.first().ok_or("missing kernel")?;
        let core = match self.kind {
            Kind::Regular { filters, groups } => {
                if channels % groups != 0 {
                    return Err(format!(
                        "{channels} input channels cannot be split into {groups} groups"
                    ));
                }
                check_shape("kernel", kernel, &self.shape(&[channels / groups, filters]))?;
                let op = Op::Conv {
                    kernel: kernel.clone(),
                    bias: self.bias(weights, 1, filters)?,
                    window,
                    groups,
                    rescale: None,
                    activation,
                };
                vec![(None, op)]
            }
            Kind::Depthwise { multiplier } => {
                let op = Op::Conv {
                    kernel: self.depthwise(kernel, channels, multiplier)?,
                    bias: self.bias(weights, 1, channels * multiplier)?,
                    window,
                    groups: channels,
                    rescale: None,
                    activation,
                };
                vec![(None, op)]
            }
            Kind::Separable {
                filters,
                multiplier,
            } => {
                let depthwise = Op::Conv {
                    kernel: self.depthwise(kernel, channels, multiplier)?,
                    bias: None,
                    window,
                    groups: channels,
                    rescale: None,
                    activation: crate::ir::Activation::Linear,
                };
                let pointwise = weights.get(1).ok_or("missing pointwise kernel")?;
                let mut shape = vec![1; rank];
                shape.extend([channels * multiplier, filters]);
                check_shape("pointwise_kernel", pointwise, &shape)?;
                let op = Op::Conv {
                    kernel: pointwise.clone(),
                    bias: self.bias(weights, 2, filters)?,
                    window: Window {
                        size: vec![1; rank],
                        strides: vec![1; rank],
                        dilation: vec![1; rank],
                        padding: vec![(0, 0); rank],
                    },
                    groups: 1,
                    rescale: None,
                    activation,
                };
                vec![(Some("depthwise"), depthwise), (None, op)]
            }
        };
        Ok(self.layout.wrap(core, true))
    }
}
