//! Lowers an optimised graph and its memory plan into a [`Program`]: named weight arrays
//! and one kernel per computing node, with every size a constant. Both backends print
//! exactly this; neither makes a numerical decision of its own.

use std::collections::BTreeSet;

use crate::ir::MathFn;

use super::axis::AxisKernel;
pub use super::conv::Blocking;
use super::epilogue::Epilogue;
use super::loops::{walk, Buf, Place, Stmt, Unroll, Uses, Val, Visit, WriteOp};
use super::share::{share, INLINE_LAYERS_MAX};
use super::{port_ident, Kernels};
use crate::error::LayerProblem;
use crate::ir::expr::{self, Expr};
use crate::ir::quant::ChannelAxis;
use crate::ir::{numel, Activation, AxisFn, Graph, InputDtype, Op, WeightsDtype};
use crate::naming::{comment, Namer};
use crate::passes::stream::StateSlot;
use crate::passes::{Location, MemoryPlan};

/// Everything a backend prints: the entry points and the weights they share.
#[derive(Debug, Clone)]
pub struct Program {
    /// `predict`: the model on one whole sample.
    pub predict: Entry,
    /// `step`, for a model that streams: one time step, the state carried by the caller.
    pub step: Option<Stream>,
    pub weights: Vec<WeightArray>,
    pub math: BTreeSet<MathFn>,
    /// Whether a kernel uses an infinite or NaN constant.
    pub non_finite: bool,
    /// Whether the model is quantized (its kernels call the int8 runtime functions).
    pub int8: bool,
}

/// One entry point: its ports and the layers it calls, in order.
#[derive(Debug, Clone)]
pub struct Entry {
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub scratch_len: usize,
    /// The int8 arena's length (a quantized model's), in bytes; 0 otherwise.
    pub scratch_i8_len: usize,
    /// In call order.
    pub layers: Vec<Layer>,
}

/// The step function of a streaming model (see [`crate::passes::stream`]): its last input
/// is the state before the step, its last output the state after it.
#[derive(Debug, Clone)]
pub struct Stream {
    pub entry: Entry,
    pub slots: Vec<StateSlot>,
}

impl Stream {
    /// Floats in the state.
    pub fn state_len(&self) -> usize {
        crate::passes::stream::state_len(&self.slots)
    }

    /// The step's model inputs (without the state).
    pub fn inputs(&self) -> &[Port] {
        &self.entry.inputs[..self.entry.inputs.len() - 1]
    }

    /// The step's model outputs (without the state).
    pub fn outputs(&self) -> &[Port] {
        &self.entry.outputs[..self.entry.outputs.len() - 1]
    }
}

/// A model input or output as the generated API shows it.
#[derive(Debug, Clone)]
pub struct Port {
    /// The Keras name as in the file (untrusted: print it only through the Namer).
    pub name: String,
    /// Its identifier in the generated code, lower-case: `input` when the model has one
    /// input, else `input0`, `input1`, ... (outputs alike). Backends derive their
    /// constants from it (`INPUT_LEN`, `kInput0Len`).
    pub ident: String,
    pub shape: Vec<usize>,
    pub len: usize,
    pub dtype: InputDtype,
    /// An int8 port's quantization (`--int8-io`), exported as constants.
    pub quant: Option<crate::ir::int8::QParams>,
}

/// A constant array; `dims` is `[len]` or `[rows, cols]` (one printed row each).
#[derive(Debug, Clone)]
pub struct WeightArray {
    /// snake_case; the Rust backend upper-cases it for a `static`.
    pub ident: String,
    pub dims: Vec<usize>,
    /// The stored numbers, each exactly an f32: the weights (`F32`), f16 values (`F16`,
    /// stored as their bits), or integers in `[-127, 127]` (`Int8`, stored as `i8`; the
    /// loops multiply each by its channel's scale, see [`crate::ir::quant`]).
    pub data: Vec<f32>,
    pub dtype: WeightsDtype,
}

pub type WeightId = usize;

/// One layer: its call and, unless it calls an earlier layer's, its function.
#[derive(Debug, Clone)]
pub struct Layer {
    pub ident: String,
    /// `name (Class)`, safe for a line comment.
    pub comment: String,
    pub body: Vec<Stmt>,
    pub inputs: Vec<Arg>,
    /// The function's parameter names for `inputs` (`input`, or `input0`, `input1`, ...).
    pub input_names: Vec<String>,
    pub output: Arg,
    /// The kernel's private working memory in the scratch arena (`work`), if it needs
    /// some (recurrent layers).
    pub workspace: Option<Arg>,
    /// The layer whose function the call runs: its own index, or (above
    /// [`INLINE_LAYERS_MAX`] layers) an earlier layer's whose function is the same up to
    /// the weight arrays passed.
    pub kernel: usize,
    /// Above [`INLINE_LAYERS_MAX`] layers, the weight arrays the call passes: `body` reads
    /// the function's weight parameter `k` as weight id `k`. Empty otherwise, where `body`
    /// reads the program's arrays by id.
    pub weights: Vec<WeightId>,
    /// Multiply-accumulates per call; 0 for a layer that moves, pools or maps values.
    pub macs: usize,
}

impl Program {
    /// Whether the layer functions (of every entry) are kept out of line and take their
    /// weights as parameters (`predict` has more than [`INLINE_LAYERS_MAX`] layers, see
    /// [`Layer::weights`]).
    pub fn out_of_line(&self) -> bool {
        self.predict.layers.len() > INLINE_LAYERS_MAX
    }
}

/// Where a kernel argument lives and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    pub loc: Location,
    pub len: usize,
    /// `I32` for an integer model input (read by Embedding), else `F32`.
    pub dtype: InputDtype,
}

/// What runs in place on a layer's output.
#[derive(Debug, Clone)]
pub enum Post {
    None,
    Map(Expr),
    /// An axis activation (softmax, ...) as loops over the output.
    Loops(Vec<Stmt>),
}

/// What a backend asks of lowering for its compiler and core: how loops are blocked for
/// registers, and what becomes of short accumulation loops. Never what is computed or in
/// which order, so every tuning gives the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub blocking: Blocking,
    /// What innermost loops of up to 16 iterations ask of the compiler.
    pub short_loops: Unroll,
}

/// Lowers `graph` (already optimised) with its memory plan, tuned for one backend; lists
/// every node whose op the code generators cannot emit yet.
pub fn lower(
    graph: &Graph,
    plan: &MemoryPlan,
    tuning: &Tuning,
) -> Result<Program, Vec<LayerProblem>> {
    lower_with(graph, plan, tuning, WeightsDtype::F32)
}

/// [`lower`], with the kernels stored as `dtype` (see [`crate::ir::quant`]); lists every
/// layer whose kernel the dtype cannot hold.
pub fn lower_with(
    graph: &Graph,
    plan: &MemoryPlan,
    tuning: &Tuning,
    dtype: WeightsDtype,
) -> Result<Program, Vec<LayerProblem>> {
    lower_with_step(graph, plan, None, tuning, dtype)
}

/// A streaming model's step graph (optimised), its memory plan and its state slots.
pub struct StepGraph<'a> {
    pub graph: &'a Graph,
    pub plan: &'a MemoryPlan,
    pub slots: &'a [StateSlot],
}

/// [`lower_with`], with a step function beside `predict` when `step` is given: its layers
/// are named apart (`step_...`), and both entries share every weight array they both use.
pub fn lower_with_step(
    graph: &Graph,
    plan: &MemoryPlan,
    step: Option<StepGraph>,
    tuning: &Tuning,
    dtype: WeightsDtype,
) -> Result<Program, Vec<LayerProblem>> {
    let mut lowering = Lowering {
        tuning,
        dtype,
        table: Default::default(),
        uses: Uses::default(),
        problems: Vec::new(),
    };
    let mut predict = lowering.entry(graph, plan, "");
    let mut step = step.map(|s| Stream {
        entry: lowering.entry(s.graph, s.plan, "step_"),
        slots: s.slots.to_vec(),
    });
    if !lowering.problems.is_empty() {
        return Err(lowering.problems);
    }
    let (_, weights, _) = lowering.table.into_inner();
    if predict.layers.len() > INLINE_LAYERS_MAX {
        share(&mut predict.layers, &weights);
        if let Some(step) = &mut step {
            share(&mut step.entry.layers, &weights);
        }
    }
    Ok(Program {
        predict,
        step,
        weights,
        math: lowering.uses.math,
        non_finite: lowering.uses.non_finite,
        int8: graph.nodes.iter().any(|n| matches!(n.op, Op::Int8(_))),
    })
}

/// The weight arrays of a program: names, arrays, and each array's id by content.
type Table = (
    Namer,
    Vec<WeightArray>,
    std::collections::HashMap<u64, WeightId>,
);

/// What the entries of one program share: weight arrays (found again by content), names.
struct Lowering<'a> {
    tuning: &'a Tuning,
    dtype: WeightsDtype,
    table: std::cell::RefCell<Table>,
    uses: Uses,
    problems: Vec<LayerProblem>,
}

impl Lowering<'_> {
    /// One entry point's layers and ports; its layer functions' names start with `prefix`.
    fn entry(&mut self, graph: &Graph, plan: &MemoryPlan, prefix: &str) -> Entry {
        let mut layers = Vec::new();
        let port = |name: &str, ident: String, t: usize, dtype| Port {
            name: name.to_string(),
            ident,
            shape: graph.shape(t).to_vec(),
            len: numel(graph.shape(t)),
            dtype,
            quant: (dtype == InputDtype::I8)
                .then(|| crate::passes::quantize::port_params(graph, t))
                .flatten(),
        };
        let arg = |t: usize| Arg {
            loc: plan.locations[t],
            len: numel(graph.shape(t)),
            dtype: graph.dtype(t),
        };
        let (tuning, table) = (self.tuning, &self.table);
        for (i, node) in graph.nodes.iter().enumerate() {
            if plan.is_view[i] {
                continue;
            }
            let ident = table
                .borrow_mut()
                .0
                .ident(&format!("{prefix}{}", node.name));
            let add_stored = |suffix: &str, dims: Vec<usize>, data: &[f32], dtype: WeightsDtype| {
                let (namer, weights, by_content) = &mut *table.borrow_mut();
                // A layer called at several sites shares one copy of its weights.
                let same = |w: &WeightArray| {
                    w.dims == dims
                        && w.dtype == dtype
                        && w.data.len() == data.len()
                        && w.data
                            .iter()
                            .zip(data)
                            .all(|(a, b)| a.to_bits() == b.to_bits())
                };
                let key = content_key(&dims, data, dtype);
                if let Some(&id) = by_content.get(&key).filter(|&&id| same(&weights[id])) {
                    return id;
                }
                weights.push(WeightArray {
                    ident: namer.ident(&format!("{ident}_{suffix}")),
                    dims,
                    data: data.to_vec(),
                    dtype,
                });
                by_content.insert(key, weights.len() - 1);
                weights.len() - 1
            };
            let mut add_weight = |suffix: &str, dims: Vec<usize>, data: &[f32]| {
                add_stored(suffix, dims, data, WeightsDtype::F32)
            };
            let mut kernels = Kernels {
                dtype: self.dtype,
                add: &add_stored,
            };
            let lowered = loops(
                &node.op,
                false,
                node,
                graph,
                &mut add_weight,
                &mut kernels,
                tuning,
            );
            let mut body = match lowered {
                Ok(stmts) => stmts,
                Err(message) => {
                    self.problems.push(LayerProblem {
                        layer: node.name.clone(),
                        class: node.class.clone(),
                        message,
                    });
                    continue;
                }
            };
            // An int8 kernel's sums are single `i32` variables (or runtime calls): the
            // compiler may unroll their short loops (the vector reductions that keep f32
            // loops rolled on x86 do not arise); a core without SIMD has them unrolled.
            let int8 = matches!(node.op, Op::Int8(_));
            let short_loops = match tuning.short_loops {
                Unroll::Never if int8 => Unroll::Compiler,
                other => other,
            };
            if short_loops != Unroll::Compiler {
                walk(&mut body, &mut ShortLoops(short_loops));
            }
            if short_loops == Unroll::Fully {
                unroll_small_nests(&mut body);
            }
            walk(&mut body, &mut self.uses);
            let (input, output) = (graph.shape(node.inputs[0]), graph.shape(node.output));
            let macs = node.op.macs(input, output);
            layers.push(Layer {
                ident,
                comment: format!("{} ({})", comment(&node.name), comment(&node.class)),
                body,
                inputs: node.inputs.iter().map(|&t| arg(t)).collect(),
                input_names: (0..node.inputs.len())
                    .map(|k| port_ident("input", node.inputs.len() == 1, k))
                    .collect(),
                output: arg(node.output),
                workspace: plan.workspace[i].map(|offset| Arg {
                    loc: Location::Scratch(offset),
                    len: node.op.workspace_len(),
                    dtype: InputDtype::F32,
                }),
                kernel: layers.len(),
                weights: Vec::new(),
                macs,
            });
        }
        Entry {
            inputs: graph
                .inputs
                .iter()
                .enumerate()
                .map(|(k, i)| {
                    let ident = port_ident("input", graph.inputs.len() == 1, k);
                    port(&i.name, ident, i.tensor, i.dtype)
                })
                .collect(),
            outputs: graph
                .outputs
                .iter()
                .enumerate()
                .map(|(k, o)| {
                    let ident = port_ident("output", graph.outputs.len() == 1, k);
                    port(&o.name, ident, o.tensor, graph.dtype(o.tensor))
                })
                .collect(),
            scratch_len: plan.scratch_len,
            scratch_i8_len: plan.scratch_i8_len,
            layers,
        }
    }
}

fn post(activation: &Activation, shape: &[usize]) -> Post {
    match activation {
        Activation::Linear => Post::None,
        Activation::Axis { func, axis } => {
            Post::Loops(super::axis::in_place(&AxisKernel::new(*func, *axis, shape)))
        }
        other => expr::activation(other).map_or(Post::None, Post::Map),
    }
}

/// Marks innermost loops of up to 16 iterations. On x86, GCC fully unrolls them before
/// vectorising, then turns the unrolled statements into in-order vector reductions over
/// the enclosing loop (a channel loop, a tap loop), 4-15x slower: such a loop stays a loop
/// ([`Unroll::Never`]). Measured on bench_cnn's first convolution (16 filters, g++ -O3
/// -march=native): 30.6 us unrolled, 7.6 us with only the accumulating loop kept, 2.1 us
/// with every 16-filter loop kept. On a core without SIMD, unrolled loops keep their
/// accumulators in registers ([`Unroll::Fully`]; GCC does not at -O2 unasked).
struct ShortLoops(Unroll);

/// The most iterations a nest of loops around accumulators is unrolled to.
const UNROLLED_NEST_MAX: usize = 32;

/// Marks loops whose body is a nest already fully unrolled, up to [`UNROLLED_NEST_MAX`]
/// iterations in all (the partial sums around an accumulator tile): their accumulators'
/// indices are then constants. Returns the iterations the statements unroll to, or `None`
/// where something stays a loop.
fn unroll_small_nests(stmts: &mut [Stmt]) -> Option<usize> {
    let mut total = Some(1usize);
    for s in stmts.iter_mut() {
        let own = match s {
            Stmt::For {
                count,
                unroll,
                body,
                ..
            } => {
                let inner = unroll_small_nests(body);
                match (*unroll, inner) {
                    (Unroll::Fully, _) => Some(*count),
                    (_, Some(n)) if n > 1 && n * *count <= UNROLLED_NEST_MAX => {
                        *unroll = Unroll::Fully;
                        Some(n * *count)
                    }
                    _ => None,
                }
            }
            Stmt::Block(body) | Stmt::If(_, body) => unroll_small_nests(body).map(|_| 1),
            Stmt::IfInRange { body, .. } => unroll_small_nests(body).map(|_| 1),
            // An int8 kernel's runtime calls and stores (each with its requantization) are
            // code worth a loop: only its pure sums unroll.
            Stmt::Dots { .. }
            | Stmt::IWrite {
                to: Place::Out(_), ..
            } => None,
            _ => Some(1),
        };
        total = total.zip(own).map(|(a, b)| a.max(b));
    }
    total
}

/// Whether statements read or write a local array (accumulators).
struct Local(bool);

impl Visit for Local {
    fn stmt(&mut self, s: &mut Stmt) {
        // An f32 accumulator array, or an int8 kernel's `i32` sum.
        self.0 |= matches!(
            s,
            Stmt::Write {
                to: Place::Local(..),
                ..
            } | Stmt::IWrite {
                to: Place::Var(_),
                op: WriteOp::Add,
                ..
            }
        );
    }

    fn val(&mut self, v: &mut Val) {
        self.0 |= matches!(v, Val::Load(Buf::Local(_), _));
    }
}

impl Visit for ShortLoops {
    fn stmt(&mut self, s: &mut Stmt) {
        if let Stmt::For {
            count,
            unroll,
            body,
            ..
        } = s
        {
            let innermost = !body.iter().any(|s| matches!(s, Stmt::For { .. }));
            // Unrolled, only the loops over accumulators pay for their code.
            let keeps = self.0 != Unroll::Fully || {
                let mut local = Local(false);
                walk(body, &mut local);
                local.0
            };
            if *count <= 16 && innermost && keeps {
                *unroll = self.0;
            }
        }
    }
}

/// A hash of a weight array's shape and exact bits, to find repeated arrays (lookups only:
/// nothing is iterated from the map, so output order stays deterministic).
fn content_key(dims: &[usize], data: &[f32], dtype: WeightsDtype) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dims.hash(&mut h);
    dtype.hash(&mut h);
    for v in data {
        v.to_bits().hash(&mut h);
    }
    h.finish()
}

/// Lowers one op to loops, adding its weights: every op in one match. `residual` asks a
/// Dense or Conv to add input 1 in its epilogue ([`Op::Residual`]).
fn loops(
    op: &Op,
    residual: bool,
    node: &crate::ir::Node,
    graph: &Graph,
    add_weight: &mut super::AddWeight,
    kernels: &mut Kernels,
    tuning: &Tuning,
) -> Result<Vec<Stmt>, String> {
    let blocking = tuning.blocking;
    use super::{attention, conv, layout, merge, pool, reduce, resample};
    let in_shapes: Vec<&[usize]> = node.inputs.iter().map(|&t| graph.shape(t)).collect();
    let (x, y) = (in_shapes[0], graph.shape(node.output));
    let elementwise = |activation: &Activation| match activation {
        Activation::Linear => Ok(None),
        Activation::Axis { .. } => Err(format!(
            "activation '{}' after this layer is not supported yet",
            activation.label()
        )),
        other => Ok(expr::activation(other)),
    };
    Ok(match op {
        // A core without SIMD sums four filters at once (its DSP extension: SMLAD); SIMD
        // cores one filter's contiguous run at a time (the compiler vectorizes it).
        Op::Int8(q) => {
            let four = tuning.short_loops == Unroll::Fully;
            super::int8::lower(q, &in_shapes, y, four, kernels.add)
        }
        Op::Dense {
            kernel,
            bias,
            rescale,
            activation,
        } => {
            let (inputs, units) = (kernel.shape[0], kernel.shape[1]);
            let rows = numel(x) / inputs.max(1);
            // Packed tile by tile, `[tiles * inputs][tile]`: a tile's weights are read in
            // order (a core without SIMD loads them with one pointer).
            let tile = blocking.tile.max(1);
            let packed = blocking.pack && units > tile && units % tile == 0;
            let (stored, scale) =
                kernels.store(kernel, ChannelAxis::last(&kernel.shape), "kernel")?;
            let kernel = if packed {
                let mut data = Vec::with_capacity(stored.values.len());
                for t in 0..units / tile {
                    for row in stored.values.chunks(units) {
                        data.extend_from_slice(&row[t * tile..(t + 1) * tile]);
                    }
                }
                let dims = vec![units / tile * inputs, tile];
                kernels.add("kernel", dims, &data, &stored, scale)
            } else {
                kernels.add(
                    "kernel",
                    vec![inputs, units],
                    &stored.values,
                    &stored,
                    scale,
                )
            };
            let bias = bias
                .as_ref()
                .map(|b| add_weight("bias", vec![units], &b.data));
            let post = post(activation, y);
            let expr = match &post {
                Post::Map(expr) => Some(expr),
                Post::None | Post::Loops(_) => None,
            };
            let epilogue = Epilogue::new(rescale.as_ref(), residual, expr, add_weight);
            let dense = super::dense::dense(
                rows, inputs, units, kernel, packed, bias, epilogue, blocking,
            );
            match post {
                Post::None | Post::Map(_) => dense,
                Post::Loops(stmts) => [dense, stmts].concat(),
            }
        }
        Op::Activation(Activation::Axis {
            func: AxisFn::Glu,
            axis,
        }) => {
            let k = AxisKernel::new(AxisFn::Glu, *axis, x);
            super::axis::glu(k.outer, k.len / 2, k.inner)
        }
        Op::Activation(activation) => match post(activation, y) {
            Post::Loops(stmts) => [super::elementwise::copy(numel(y)), stmts].concat(),
            Post::Map(expr) => super::elementwise::map(&expr, numel(y)),
            Post::None => super::elementwise::copy(numel(y)),
        },
        Op::Affine {
            center,
            scale,
            shift,
            inner,
        } => {
            let channels = scale.len();
            let center = center
                .as_ref()
                .map(|c| add_weight("center", vec![channels], c));
            let scale = add_weight("scale", vec![channels], scale);
            let shift = add_weight("shift", vec![channels], shift);
            let dims = (numel(x) / (channels * inner), channels, *inner);
            super::elementwise::affine(dims, center, scale, shift)
        }
        Op::PRelu { alpha } => {
            // Alpha varying only along the last axis is read modulo its length;
            // any other broadcast is expanded here, once.
            let last = *x.last().unwrap_or(&1);
            let leading_ones = alpha.shape.iter().rev().skip(1).all(|&d| d == 1);
            let data = if leading_ones && alpha.len() == last {
                alpha.data.clone()
            } else {
                broadcast(&alpha.data, &alpha.shape, x)
            };
            let period = data.len();
            let alpha = add_weight("alpha", vec![period], &data);
            super::elementwise::prelu(numel(x), alpha, period)
        }
        Op::Reshape { .. } | Op::Identity => super::elementwise::copy(numel(x)),
        Op::Conv {
            kernel,
            bias,
            rescale,
            window,
            groups,
            activation,
        } => {
            let filters = kernel.shape[kernel.shape.len() - 1];
            let (stored, scale) =
                kernels.store(kernel, ChannelAxis::last(&kernel.shape), "kernel")?;
            let b = bias
                .as_ref()
                .map(|b| add_weight("bias", vec![filters], &b.data));
            let act = elementwise(activation)?;
            let epilogue = Epilogue::new(rescale.as_ref(), residual, act.as_ref(), add_weight);
            conv::conv(
                window,
                *groups,
                (&stored, scale),
                b,
                epilogue,
                x,
                y,
                kernels,
                blocking,
            )
        }
        Op::ConvTranspose {
            kernel,
            bias,
            strides,
            dilation,
            crop,
            activation,
            ..
        } => {
            let channels = kernel.shape[kernel.shape.len() - 1];
            let k = kernels.kernel(
                kernel,
                ChannelAxis::second_last(&kernel.shape),
                "kernel",
                vec![kernel.len() / channels, channels],
            )?;
            let filters = kernel.shape[kernel.shape.len() - 2];
            let b = bias
                .as_ref()
                .map(|b| add_weight("bias", vec![filters], &b.data));
            let act = elementwise(activation)?;
            conv::conv_transpose(
                strides,
                dilation,
                crop,
                k,
                &kernel.shape,
                b,
                act.as_ref(),
                x,
                y,
            )
        }
        Op::ConvMaxPool { conv, pool } => {
            let Op::Conv {
                kernel,
                bias,
                rescale,
                window,
                activation,
                ..
            } = conv.as_ref()
            else {
                return Err("a fused pooling without its convolution".into());
            };
            let filters = kernel.shape[kernel.shape.len() - 1];
            let rows = kernel.len() / filters;
            // Packed by filter block, `[blocks * rows][block]` (see `conv_max_pool`).
            let block = if blocking.pack && filters % blocking.filters.max(1) == 0 {
                blocking.filters.max(1)
            } else {
                filters
            };
            let (stored, scale) =
                kernels.store(kernel, ChannelAxis::last(&kernel.shape), "kernel")?;
            let mut data = Vec::with_capacity(kernel.len());
            for b in 0..filters / block {
                for row in stored.values.chunks(filters) {
                    data.extend_from_slice(&row[b * block..(b + 1) * block]);
                }
            }
            let dims = vec![filters / block * rows, block];
            let k = kernels.add("kernel", dims, &data, &stored, scale);
            let b = bias
                .as_ref()
                .map(|b| add_weight("bias", vec![filters], &b.data));
            let act = elementwise(activation)?;
            let epilogue = Epilogue::new(rescale.as_ref(), false, act.as_ref(), add_weight);
            conv::conv_max_pool(
                window,
                pool,
                k,
                block,
                b,
                epilogue,
                x,
                y,
                blocking.pool_channels,
            )
        }
        Op::Residual { op } => match op.as_ref() {
            Op::Dense { .. } | Op::Conv { .. } => {
                loops(op, true, node, graph, add_weight, kernels, tuning)?
            }
            _ => return Err("a residual add without its Dense or Conv".into()),
        },
        Op::Pool { kind, window } => pool::pool(*kind, window, x, y),
        Op::GlobalPool { kind } => pool::global_pool(*kind, x),
        Op::Pad { padding, value } => layout::pad(padding, *value, x, y),
        Op::Slice { begin, step, .. } => layout::slice(begin, step, x, y),
        Op::ConstMerge {
            kind,
            constant,
            constant_first,
        } => {
            let c = add_weight("constant", vec![constant.len()], &constant.data);
            merge::const_merge(*kind, c, &constant.shape, *constant_first, x, y)
        }
        Op::Reduce { kind, axes, .. } => reduce::reduce(*kind, axes, x),
        Op::Cumulative { kind, axis } => reduce::cumulative(*kind, *axis, x),
        Op::Select { then, otherwise } => merge::select(*then, *otherwise, &in_shapes, y),
        Op::Transpose { perm } => layout::transpose(perm, x, y),
        Op::Upsample {
            factors,
            bilinear: false,
        } => resample::upsample_nearest(factors, x, y),
        Op::Upsample {
            factors,
            bilinear: true,
        } => resample::upsample_bilinear(factors, x, y, add_weight),
        Op::Resize { method, .. } => resample::resize(*method, x, y, add_weight),
        Op::AdaptivePool { kind, .. } => resample::adaptive_pool(*kind, x, y, add_weight),
        Op::Repeat { times } => layout::repeat(*times, x[0]),
        Op::Merge { kind } => merge::merge(*kind, &in_shapes, y),
        Op::Concat { axis } => layout::concat(*axis, &in_shapes, y),
        Op::Recurrent(r) => {
            let (u, g) = (r.units, r.cell.gates());
            let kernel = kernels.kernel(
                &r.kernel,
                ChannelAxis::last(&r.kernel.shape),
                "kernel",
                vec![x[1], g * u],
            )?;
            let recurrent = kernels.kernel(
                &r.recurrent,
                ChannelAxis::last(&r.recurrent.shape),
                "recurrent_kernel",
                vec![u, g * u],
            )?;
            let kernels = [kernel, recurrent];
            super::recurrent::recurrent(r, x[0], x[1], kernels, add_weight, blocking)
        }
        Op::ConvLstm(c) => super::conv_lstm::conv_lstm(c, x[0], add_weight),
        Op::SequenceMask { value, .. } => {
            let rows = numel(y);
            let integer = input_dtype(graph, node.inputs[0]) == InputDtype::I32;
            if integer && *value != 0.0 {
                return Err(format!(
                    "a mask comparing integer input with {value} is not supported (with 0 is)"
                ));
            }
            super::recurrent::sequence_mask(
                *value,
                rows,
                numel(x) / rows.max(1),
                integer,
                add_weight,
            )
        }
        Op::Dot { axes, normalize } => {
            attention::dot(*axes, *normalize, in_shapes[0], in_shapes[1], y)
        }
        Op::MatMul => attention::matmul(in_shapes[0], in_shapes[1]),
        Op::AttentionSoftmax {
            scale,
            causal,
            window,
        } => attention::softmax(x, *scale, *causal, *window),
        Op::AdditiveScore { pre, scale, post } => {
            let scale = scale
                .as_ref()
                .map(|s| add_weight("scale", vec![s.len()], s));
            attention::additive_score(in_shapes[0], in_shapes[1], *pre, scale, *post)
        }
        Op::Normalize {
            view,
            kind,
            gamma,
            beta,
        } => {
            let gamma = gamma
                .as_ref()
                .map(|g| add_weight("gamma", vec![g.len()], g));
            let beta = beta.as_ref().map(|b| add_weight("beta", vec![b.len()], b));
            super::norm::normalize(view, *kind, gamma, beta)
        }
        Op::Embedding { table } => {
            let (rows, dim) = (table.shape[0], table.shape[1]);
            let t = add_weight("embeddings", vec![rows, dim], &table.data);
            let integer = input_dtype(graph, node.inputs[0]) == InputDtype::I32;
            super::embedding::embedding(numel(x), rows, dim, t, integer)
        }
        Op::Encode { depth, mode } => {
            let integer = input_dtype(graph, node.inputs[0]) == InputDtype::I32;
            let (n, inner) = match mode {
                crate::ir::EncodeMode::OneHot => (1, numel(x)),
                crate::ir::EncodeMode::MultiHot | crate::ir::EncodeMode::Count => {
                    let n = x.first().copied().unwrap_or(1).max(1);
                    (n, numel(x) / n)
                }
            };
            super::preprocess::encode(n, inner, *depth, *mode, integer)
        }
        Op::Bucketize { boundaries } => {
            let integer = input_dtype(graph, node.inputs[0]) == InputDtype::I32;
            // No boundaries: every value is bucket 0 (and no empty array, which C++ refuses).
            let b = (!boundaries.is_empty())
                .then(|| add_weight("boundaries", vec![boundaries.len()], boundaries));
            super::preprocess::bucketize(numel(x), (boundaries.len(), b), integer)
        }
        Op::Lookup(l) => {
            let integer = input_dtype(graph, node.inputs[0]) == InputDtype::I32;
            let keys = add_weight("keys", vec![l.keys.len()], &l.keys);
            let values = add_weight("values", vec![l.values.len()], &l.values);
            let miss = match l.oov_buckets {
                Some((n, start)) => super::preprocess::Miss::Buckets(n as f32, start),
                None => super::preprocess::Miss::Default(l.default),
            };
            super::preprocess::lookup(
                numel(x),
                (l.keys.len(), keys, values),
                miss,
                l.mask,
                integer,
            )
        }
    })
}

/// The element type of a tensor: `i32` for an integer model input, else `f32`.
fn input_dtype(graph: &Graph, tensor: usize) -> InputDtype {
    graph
        .inputs
        .iter()
        .find(|i| i.tensor == tensor)
        .map_or(InputDtype::F32, |i| i.dtype)
}

/// Expands `data` of `shape` (same rank, 1 where broadcast) to `target`.
fn broadcast(data: &[f32], shape: &[usize], target: &[usize]) -> Vec<f32> {
    (0..numel(target))
        .map(|flat| data[crate::ir::broadcast_index(flat, shape, target)])
        .collect()
}
