//! Post-training int8 quantization (`--quantize int8`), as TensorFlow Lite's converter does
//! it (see [`crate::ir::int8`] for the arithmetic):
//!
//! 1. **Calibrate.** The float graph runs on the calibration samples in the interpreter;
//!    every tensor's smallest and largest value give its [`QParams`]. Pooling, padding and
//!    reshapes keep their input's parameters (so they need no rescaling, as in TFLite).
//! 2. **Rewrite.** Every layer with an int8 kernel becomes one: Dense and convolutions
//!    (plain, grouped, depthwise) whose activation is linear, ReLU or ReLU6 (a clamp),
//!    max and average pooling, global pooling, zero padding, and Add of two tensors. A
//!    Dense or convolution with another activation (softmax, sigmoid, ...) keeps the
//!    activation in float after it. Every other layer (softmax, recurrent layers,
//!    normalisation, ...) stays float: [`QOp::Dequantize`] before it and
//!    [`QOp::Quantize`] after it, where an int8 layer reads it.
//! 3. **Ports.** Model inputs and outputs stay f32 (quantized and dequantized inside), or
//!    with `int8_io` are int8 with their parameters exported.

use crate::error::LayerProblem;
use crate::interp;
use crate::ir::int8::{
    activation_clamp, QAdd, QLinear, QOp, QParams, Requant, MAX_POOLED, MAX_TAPS,
};
use crate::ir::quant::{store, ChannelAxis};
use crate::ir::{Activation, Graph, InputDtype, MergeKind, Op, TensorId, Weights, WeightsDtype};

/// What calibration saw of every tensor of the float graph.
#[derive(Debug, Clone)]
pub struct Ranges {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
}

/// The float graph prepared for quantization: the inference passes without pool fusion
/// (pooling is its own int8 kernel), and with every activation that is not a clamp split
/// off its Dense or convolution (so that the layer's own output is calibrated).
pub fn prepare(graph: Graph) -> Graph {
    let graph = super::split_activation::run(graph);
    let graph = super::fold_affine::run(graph);
    let graph = super::fuse_activation::run(graph);
    super::split_activation::split(graph, |op| match op {
        Op::Dense { activation, .. } | Op::Conv { activation, .. } => {
            !matches!(activation, Activation::Linear)
                && activation_clamp(activation, UNIT).is_none()
        }
        _ => false,
    })
}

const UNIT: QParams = QParams {
    scale: 1.0,
    zero_point: 0,
};

/// Runs `graph` on every sample and records each tensor's range (NaN ignored).
pub fn calibrate(graph: &Graph, samples: &[Vec<Vec<f32>>]) -> Result<Ranges, String> {
    let n = graph.tensors.len();
    let mut ranges = Ranges {
        min: vec![f32::INFINITY; n],
        max: vec![f32::NEG_INFINITY; n],
    };
    for (k, sample) in samples.iter().enumerate() {
        let values = interp::run(graph, sample).map_err(|e| format!("sample {k}: {e}"))?;
        for (t, v) in values.iter().enumerate() {
            for &x in v {
                if x < ranges.min[t] {
                    ranges.min[t] = x;
                }
                if x > ranges.max[t] {
                    ranges.max[t] = x;
                }
            }
        }
    }
    Ok(ranges)
}

/// The parameters of every tensor: from its range, or its input's for the ops that keep
/// them.
fn params(graph: &Graph, ranges: &Ranges) -> Vec<QParams> {
    let mut params: Vec<QParams> = (0..graph.tensors.len())
        .map(|t| QParams::from_range(ranges.min[t], ranges.max[t]))
        .collect();
    for node in &graph.nodes {
        if keeps_params(&node.op) {
            params[node.output] = params[node.inputs[0]];
        }
    }
    params
}

fn keeps_params(op: &Op) -> bool {
    matches!(
        op,
        Op::Pool { .. }
            | Op::GlobalPool { .. }
            | Op::Pad { .. }
            | Op::Reshape { .. }
            | Op::Identity
    )
}

/// The quantized graph of `graph` (from [`prepare`]) with the ranges calibration saw;
/// lists the layers that cannot be quantized.
pub fn quantize(graph: &Graph, ranges: &Ranges, int8_io: bool) -> Result<Graph, Vec<LayerProblem>> {
    let params = params(graph, ranges);
    let mut b = Builder {
        old: graph,
        new: Graph {
            notes: graph.notes.clone(),
            ..Graph::default()
        },
        params: &params,
        float: vec![None; graph.tensors.len()],
        int8: vec![None; graph.tensors.len()],
        names: vec![String::new(); graph.tensors.len()],
    };
    for input in &graph.inputs {
        let (dtype, slot) = match (int8_io, input.dtype) {
            (true, InputDtype::F32) => (InputDtype::I8, &mut b.int8),
            (_, dtype) => (dtype, &mut b.float),
        };
        let shape = graph.shape(input.tensor).to_vec();
        let t = b
            .new
            .add_input(&input.name, shape, dtype)
            .map_err(|message| {
                vec![LayerProblem {
                    layer: input.name.clone(),
                    class: "InputLayer".into(),
                    message,
                }]
            })?;
        slot[input.tensor] = Some(t);
        b.names[input.tensor] = input.name.clone();
    }
    let mut problems = Vec::new();
    for node in &graph.nodes {
        b.names[node.output] = node.name.clone();
        if let Err(message) = b.node(node) {
            problems.push(LayerProblem {
                layer: node.name.clone(),
                class: node.class.clone(),
                message,
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for output in &graph.outputs {
        let t = if int8_io {
            b.int8(output.tensor)
        } else {
            b.float(output.tensor)
        };
        let t = t.map_err(|message| {
            vec![LayerProblem {
                layer: output.name.clone(),
                class: "output".into(),
                message,
            }]
        })?;
        b.new.add_output(&output.name, t);
    }
    Ok(super::output_copies::run(fuse_max_pool(b.new)))
}

/// The parameters of int8 tensor `t` of a quantized graph (`None` for an f32 tensor).
pub fn int8_params(graph: &Graph, t: TensorId) -> Option<QParams> {
    let node = &graph.nodes[graph.producer(t)?];
    match &node.op {
        Op::Int8(QOp::Dequantize(_)) => None,
        Op::Int8(QOp::Quantize(p)) => Some(*p),
        Op::Int8(QOp::Linear(l)) => Some(l.output),
        Op::Int8(QOp::Add(a)) => Some(a.output),
        Op::Int8(_) | Op::Reshape { .. } | Op::Identity => int8_params(graph, node.inputs[0])
            .or_else(|| {
                port_params(graph, node.inputs[0]).filter(|_| is_int8_input(graph, node.inputs[0]))
            }),
        _ => None,
    }
}

fn is_int8_input(graph: &Graph, t: TensorId) -> bool {
    graph
        .inputs
        .iter()
        .any(|i| i.tensor == t && i.dtype == InputDtype::I8)
}

/// The parameters of a quantized graph's int8 input or output tensor `t`: what the
/// Quantize after it or the Dequantize before it uses, or its producer's output.
pub fn port_params(graph: &Graph, t: TensorId) -> Option<QParams> {
    read_params(graph, t).or_else(|| {
        let mut t = t;
        loop {
            let node = &graph.nodes[graph.producer(t)?];
            match &node.op {
                Op::Int8(QOp::Quantize(p)) => return Some(*p),
                Op::Int8(QOp::Linear(l)) => return Some(l.output),
                Op::Int8(QOp::Add(a)) => return Some(a.output),
                _ => t = node.inputs[0],
            }
        }
    })
}

/// The parameters the int8 ops reading `t` read it with (through the ops that keep them).
fn read_params(graph: &Graph, t: TensorId) -> Option<QParams> {
    graph.consumers(t).into_iter().find_map(|n| {
        let node = &graph.nodes[n];
        match &node.op {
            Op::Int8(QOp::Dequantize(p)) => Some(*p),
            Op::Int8(QOp::Linear(l)) => Some(l.input),
            Op::Int8(QOp::Add(a)) => Some(a.inputs[usize::from(node.inputs[0] != t)]),
            Op::Int8(QOp::Pool { .. } | QOp::GlobalPool { .. } | QOp::Pad { .. })
            | Op::Reshape { .. }
            | Op::Identity => read_params(graph, node.output),
            _ => None,
        }
    })
}

struct Builder<'a> {
    old: &'a Graph,
    new: Graph,
    params: &'a [QParams],
    /// Per tensor of the float graph: its f32 and its int8 tensor in the new one.
    float: Vec<Option<TensorId>>,
    int8: Vec<Option<TensorId>>,
    /// Per tensor of the float graph: its producer's name (for the conversions' names).
    names: Vec<String>,
}

impl Builder<'_> {
    /// The int8 form of float-graph tensor `t`, quantized where it is f32.
    fn int8(&mut self, t: TensorId) -> Result<TensorId, String> {
        if let Some(q) = self.int8[t] {
            return Ok(q);
        }
        let f = self.float[t].ok_or_else(|| self.unbuilt(t))?;
        let name = format!("{}/quantize", self.names[t]);
        let op = Op::Int8(QOp::Quantize(self.params[t]));
        let q = self.add(&name, "Quantize", op, vec![f])?;
        self.int8[t] = Some(q);
        Ok(q)
    }

    /// The f32 form of `t`, dequantized where it is int8.
    fn float(&mut self, t: TensorId) -> Result<TensorId, String> {
        if let Some(f) = self.float[t] {
            return Ok(f);
        }
        let q = self.int8[t].ok_or_else(|| self.unbuilt(t))?;
        let name = format!("{}/dequantize", self.names[t]);
        let op = Op::Int8(QOp::Dequantize(self.params[t]));
        let f = self.add(&name, "Dequantize", op, vec![q])?;
        self.float[t] = Some(f);
        Ok(f)
    }

    /// Why tensor `t` has no form: the layer that makes it could not be built (reported
    /// with that layer).
    fn unbuilt(&self, t: TensorId) -> String {
        format!("its input from '{}' could not be built", self.names[t])
    }

    fn add(
        &mut self,
        name: &str,
        class: &str,
        op: Op,
        inputs: Vec<TensorId>,
    ) -> Result<TensorId, String> {
        self.new.add_node(name, class, op, inputs, 0)
    }

    /// Rewrites one node of the float graph: adds `node`'s int8 form, or its float form where it has none. A layer that cannot
    /// be quantized runs in float too, so the layers after it still get their forms and
    /// every problem of the model is reported at once; its problem is returned.
    fn node(&mut self, node: &crate::ir::Node) -> Result<(), String> {
        let (old, params) = (self.old, self.params);
        let mut problem = Ok(());
        let out = node.output;
        let input = node.inputs.first().copied();
        let is_int8 = |t: TensorId| -> bool { self.int8[t].is_some() };
        let quantized: Option<QOp> = match &node.op {
            Op::Dense {
                kernel,
                bias,
                rescale,
                activation,
            }
            | Op::Conv {
                kernel,
                bias,
                rescale,
                activation,
                ..
            } if old
                .inputs
                .iter()
                .all(|i| Some(i.tensor) != input || i.dtype != InputDtype::I32) =>
            {
                let conv = match &node.op {
                    Op::Conv { window, groups, .. } => Some((window.clone(), *groups)),
                    _ => None,
                };
                let l = input
                    .ok_or_else(|| "has no input".to_string())
                    .and_then(|x| {
                        activation_clamp(activation, params[out])
                            .map(|clamp| (x, clamp))
                            .ok_or_else(|| {
                                format!("activation '{}' has no int8 form", activation.label())
                            })
                    })
                    .and_then(|(x, clamp)| {
                        let (bias, rescale) = (bias.as_ref(), rescale.as_ref());
                        linear(kernel, bias, rescale, conv, params[x], params[out], clamp)
                    });
                match l {
                    Ok(l) => Some(QOp::Linear(Box::new(l))),
                    Err(message) => {
                        problem = Err(message);
                        None
                    }
                }
            }
            Op::Pool { kind, window }
                if is_int8(node.inputs[0])
                    && window.size.iter().product::<usize>() <= MAX_POOLED =>
            {
                Some(QOp::Pool {
                    kind: *kind,
                    window: window.clone(),
                })
            }
            Op::GlobalPool { kind }
                if is_int8(node.inputs[0])
                    && crate::ir::numel(old.shape(node.inputs[0]))
                        / old.shape(out).iter().product::<usize>().max(1)
                        <= MAX_POOLED =>
            {
                Some(QOp::GlobalPool { kind: *kind })
            }
            Op::Pad { padding, value } if is_int8(node.inputs[0]) => Some(QOp::Pad {
                padding: padding.clone(),
                value: crate::ir::int8::quantize(*value, params[node.inputs[0]]),
            }),
            Op::Merge {
                kind: MergeKind::Add,
            } if node.inputs.len() == 2
                && old.shape(node.inputs[0]) == old.shape(node.inputs[1])
                && old.inputs.iter().all(|i| i.dtype != InputDtype::I32) =>
            {
                let (a, b) = (params[node.inputs[0]], params[node.inputs[1]]);
                Some(QOp::Add(Box::new(QAdd::new(
                    a,
                    b,
                    params[out],
                    (-128, 127),
                ))))
            }
            // A reshape keeps the form of its input.
            Op::Reshape { .. } | Op::Identity if is_int8(node.inputs[0]) => {
                let x = self.int8(node.inputs[0])?;
                let q = self.add(&node.name, &node.class, node.op.clone(), vec![x])?;
                self.int8[out] = Some(q);
                return Ok(());
            }
            _ => None,
        };
        match quantized {
            Some(op) => {
                let inputs =
                    (node.inputs.iter().map(|&t| self.int8(t))).collect::<Result<_, _>>()?;
                let q = self.add(&node.name, &node.class, Op::Int8(op), inputs)?;
                self.int8[out] = Some(q);
            }
            None => {
                let inputs =
                    (node.inputs.iter().map(|&t| self.float(t))).collect::<Result<_, _>>()?;
                let f = self.add(&node.name, &node.class, node.op.clone(), inputs)?;
                self.float[out] = Some(f);
            }
        }
        problem
    }
}

/// A Dense's or convolution's int8 form: the rescale (a BatchNormalization after it)
/// folded into kernel and bias, the kernel per output channel, the bias in units of
/// `input scale * weight scale`.
fn linear(
    kernel: &Weights,
    bias: Option<&Weights>,
    rescale: Option<&crate::ir::Rescale>,
    conv: Option<(crate::ir::Window, usize)>,
    input: QParams,
    output: QParams,
    (lo, hi): (i32, i32),
) -> Result<QLinear, String> {
    let filters = kernel.shape.last().copied().unwrap_or(1).max(1);
    let taps = kernel.len() / filters;
    if taps > MAX_TAPS {
        return Err(format!(
            "sums {taps} products per output; an int8 sum holds at most {MAX_TAPS}"
        ));
    }
    let mut folded = kernel.clone();
    let mut b: Vec<f64> = (0..filters)
        .map(|o| bias.map_or(0.0, |b| f64::from(b.data[o])))
        .collect();
    if let Some(r) = rescale {
        for (i, w) in folded.data.iter_mut().enumerate() {
            *w = (f64::from(*w) * f64::from(r.scale[i % filters])) as f32;
        }
        for (o, b) in b.iter_mut().enumerate() {
            *b = *b * f64::from(r.scale[o]) + f64::from(r.shift[o]);
        }
    }
    let stored = store(
        &folded,
        ChannelAxis::last(&folded.shape),
        WeightsDtype::Int8,
    )?;
    let scales = stored.scales.ok_or("int8 storage gave no scales")?;
    // Sums stay within i32: the products within half its range (MAX_TAPS), the bias within
    // a quarter (a bias beyond it saturates, as an activation beyond its range does), so
    // that a sum with the zero point folded into the bias stays within it too.
    let limit = f64::from(i32::MAX / 4);
    let bias = (0..filters)
        .map(|o| {
            let unit = f64::from(input.scale) * f64::from(scales[o]);
            (b[o] / unit).round().clamp(-limit, limit) as i32
        })
        .collect();
    let requant = (0..filters)
        .map(|o| {
            Requant::new(f64::from(input.scale) * f64::from(scales[o]) / f64::from(output.scale))
        })
        .collect();
    Ok(QLinear {
        kernel: Weights {
            shape: folded.shape,
            data: stored.values,
        },
        conv,
        bias,
        requant,
        input,
        output,
        lo,
        hi,
        pool: None,
    })
}

/// Fuses each int8 max pooling that tiles its input into the convolution feeding it (see
/// [`QLinear::pool`]).
fn fuse_max_pool(mut graph: Graph) -> Graph {
    let tiles = |w: &crate::ir::Window| {
        w.padding.iter().all(|&p| p == (0, 0))
            && w.strides == w.size
            && w.dilation.iter().all(|&d| d == 1)
    };
    loop {
        let found = graph.nodes.iter().enumerate().find_map(|(i, node)| {
            let Op::Int8(QOp::Pool {
                kind: crate::ir::PoolKind::Max,
                window,
            }) = &node.op
            else {
                return None;
            };
            let producer = graph.producer(node.inputs[0])?;
            let Op::Int8(QOp::Linear(l)) = &graph.nodes[producer].op else {
                return None;
            };
            (l.conv.is_some()
                && l.pool.is_none()
                && tiles(window)
                && super::is_sole_consumer(&graph, node.inputs[0], i))
            .then(|| (producer, i, window.clone()))
        });
        let Some((producer, node, window)) = found else {
            return graph;
        };
        if let Op::Int8(QOp::Linear(l)) = &mut graph.nodes[producer].op {
            l.pool = Some(window);
        }
        graph = super::merge_into_producer(graph, producer, node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Activation, Weights};

    /// A layer that cannot be quantized is reported, and the layers after it, which read
    /// its output, are still rewritten (before, the next one found no form and panicked).
    #[test]
    fn a_layer_that_cannot_be_quantized_is_reported_not_a_panic() {
        let n = MAX_TAPS + 1;
        let dense = |inputs: usize| Op::Dense {
            kernel: Weights::new(vec![inputs, 1], vec![1e-3; inputs]).unwrap(),
            bias: None,
            rescale: None,
            activation: Activation::Linear,
        };
        let mut g = Graph::default();
        let x = g.add_input("x", vec![n], InputDtype::F32).unwrap();
        let wide = g.add_node("wide", "Dense", dense(n), vec![x], n).unwrap();
        let y = g
            .add_node("head", "Dense", dense(1), vec![wide], 1)
            .unwrap();
        g.add_output("y", y);
        let sample = vec![(0..n).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<_>>()];
        let ranges = calibrate(&g, &[sample]).unwrap();
        let problems = quantize(&g, &ranges, false).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].layer, "wide");
        assert!(
            problems[0].message.contains("products per output"),
            "{problems:?}"
        );
    }
}
