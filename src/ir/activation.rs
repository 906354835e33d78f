//! Activation functions, with their parameters resolved (Keras-version differences are
//! decided by the frontend, so `HardSigmoid` carries its slope).

/// An activation applied to a whole tensor. Elementwise ones keep the shape; `Axis` ones
/// work along one axis (softmax and friends), and `Glu` halves that axis.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    Linear,
    /// Keras `relu` with all its options: `x >= threshold ? min(x, max_value)
    /// : negative_slope * (x - threshold)`; also relu6 and leaky_relu.
    Relu {
        negative_slope: f32,
        max_value: Option<f32>,
        threshold: f32,
    },
    Sigmoid,
    /// `clip(slope * x + 0.5, 0, 1)`: slope 0.2 in Keras 2, 1/6 in Keras 3.
    HardSigmoid {
        slope: f32,
    },
    Tanh,
    Elu {
        alpha: f32,
    },
    Selu,
    Celu {
        alpha: f32,
    },
    Gelu {
        approximate: bool,
    },
    Softplus,
    Softsign,
    Silu,
    HardSilu,
    Mish,
    Exponential,
    LogSigmoid,
    HardTanh,
    TanhShrink,
    Squareplus {
        b: f32,
    },
    SparsePlus,
    SoftShrink {
        threshold: f32,
    },
    HardShrink {
        threshold: f32,
    },
    SparseSigmoid,
    /// Keras `threshold`: `x > threshold ? x : default_value`.
    Threshold {
        threshold: f32,
        default_value: f32,
    },
    /// Arithmetic or a comparison with a scalar constant: `x op value`, or `value op x`
    /// with `constant_first` (`x + 3.0`, `1.0 / x`, `x > 0`; comparisons give 1.0 / 0.0).
    Scalar {
        op: ScalarOp,
        value: f32,
        constant_first: bool,
    },
    /// `x ^ exponent` for a constant exponent.
    Power {
        exponent: f32,
    },
    /// `clip(x, min, max)` (NaN stays NaN).
    Clip {
        min: f32,
        max: f32,
    },
    /// Elementwise math without parameters (`keras.ops.log`, ...).
    Math(MathOp),
    /// An activation along one axis (negative axes already resolved).
    Axis {
        func: AxisFn,
        axis: usize,
    },
}

/// Binary operations with a scalar constant, see [`Activation::Scalar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Maximum,
    Minimum,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Equal,
    NotEqual,
}

/// Parameterless elementwise math, see [`Activation::Math`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathOp {
    Log,
    Sqrt,
    /// `1 / sqrt(x)`.
    Rsqrt,
    Square,
    Abs,
    Negative,
    Reciprocal,
}

/// Activations that combine the values along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisFn {
    Softmax,
    LogSoftmax,
    Sparsemax,
    /// `a * sigmoid(b)` where `a`, `b` are the two halves of the axis.
    Glu,
}

impl Activation {
    /// Plain ReLU.
    pub fn relu() -> Self {
        Activation::Relu {
            negative_slope: 0.0,
            max_value: None,
            threshold: 0.0,
        }
    }

    pub fn is_linear(&self) -> bool {
        matches!(self, Activation::Linear)
    }

    /// Output shape for an input shape; only `Glu` changes it.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        match self {
            Activation::Axis { func, axis } => {
                let Some(&len) = input.get(*axis) else {
                    return Err(format!(
                        "axis {axis} is out of range for input shape {input:?}"
                    ));
                };
                let mut shape = input.to_vec();
                if *func == AxisFn::Glu {
                    if len % 2 != 0 {
                        return Err(format!("glu needs an even axis length, got {len}"));
                    }
                    shape[*axis] = len / 2;
                }
                Ok(shape)
            }
            _ => Ok(input.to_vec()),
        }
    }

    /// A short name for comments and summaries.
    pub fn label(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu { .. } => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::HardSigmoid { .. } => "hard_sigmoid",
            Activation::Tanh => "tanh",
            Activation::Elu { .. } => "elu",
            Activation::Selu => "selu",
            Activation::Celu { .. } => "celu",
            Activation::Gelu { .. } => "gelu",
            Activation::Softplus => "softplus",
            Activation::Softsign => "softsign",
            Activation::Silu => "silu",
            Activation::HardSilu => "hard_silu",
            Activation::Mish => "mish",
            Activation::Exponential => "exponential",
            Activation::LogSigmoid => "log_sigmoid",
            Activation::HardTanh => "hard_tanh",
            Activation::TanhShrink => "tanh_shrink",
            Activation::Squareplus { .. } => "squareplus",
            Activation::SparsePlus => "sparse_plus",
            Activation::SoftShrink { .. } => "soft_shrink",
            Activation::HardShrink { .. } => "hard_shrink",
            Activation::SparseSigmoid => "sparse_sigmoid",
            Activation::Threshold { .. } => "threshold",
            Activation::Scalar { op, .. } => match op {
                ScalarOp::Add => "add",
                ScalarOp::Subtract => "subtract",
                ScalarOp::Multiply => "multiply",
                ScalarOp::Divide => "divide",
                ScalarOp::Maximum => "maximum",
                ScalarOp::Minimum => "minimum",
                ScalarOp::Greater => "greater",
                ScalarOp::GreaterEqual => "greater_equal",
                ScalarOp::Less => "less",
                ScalarOp::LessEqual => "less_equal",
                ScalarOp::Equal => "equal",
                ScalarOp::NotEqual => "not_equal",
            },
            Activation::Power { .. } => "power",
            Activation::Clip { .. } => "clip",
            Activation::Math(op) => match op {
                MathOp::Log => "log",
                MathOp::Sqrt => "sqrt",
                MathOp::Rsqrt => "rsqrt",
                MathOp::Square => "square",
                MathOp::Abs => "abs",
                MathOp::Negative => "negative",
                MathOp::Reciprocal => "reciprocal",
            },
            Activation::Axis { func, .. } => match func {
                AxisFn::Softmax => "softmax",
                AxisFn::LogSoftmax => "log_softmax",
                AxisFn::Sparsemax => "sparsemax",
                AxisFn::Glu => "glu",
            },
        }
    }
}
