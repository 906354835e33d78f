//! Differential testing: random valid models, written in the interchange format (so they go
//! through the frontend, every pass, lowering and both backends), whose generated Rust and
//! C++ are compiled, run and compared with the reference interpreter, and with each other.
//!
//! `cargo test --release --test differential` runs a small fixed set of cases; for longer
//! runs, `scripts/differential.sh [CASES] [SEED]` (or `KERAS2SRC_DIFF_CASES` and
//! `KERAS2SRC_DIFF_SEED`). Every model of `tests/fixtures/differential/` (bugs found this
//! way) is replayed too. A failing case's JSON is written to
//! `target/differential-failures/` for replay (`KERAS2SRC_DIFF_REPLAY=FILE_OR_DIR`).
//!
//! Values must agree within the DESIGN bound `1e-5 + 1e-4 |want|` (no looser bound has
//! been needed: weights are scaled by `1/sqrt(fan_in)` and sums are short), and Rust and
//! C++ (built with `-ffp-contract=off`) must agree bit for bit.

mod common;

use std::path::{Path, PathBuf};

use common::{close, run_both, Case};
use keras2src::{interp, Model};
use serde_json::{json, Map, Value};

/// Cases in `cargo test`, and the default seed.
const DEFAULT_CASES: usize = 40;
const DEFAULT_SEED: u64 = 1;
/// Models per compiled program (keeps one rustc run short).
const BATCH: usize = 50;
const SAMPLES: usize = 2;

// ---------------------------------------------------------------------------------------
// A small deterministic PRNG (SplitMix64).

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    fn normals(&mut self, n: usize, std: f64) -> Vec<f32> {
        (0..n).map(|_| (self.normal() * std) as f32).collect()
    }
}

// ---------------------------------------------------------------------------------------
// The model builder: Keras 3 functional JSON plus weights.

#[derive(Clone)]
struct Tensor {
    layer: String,
    shape: Vec<usize>,
    int: bool,
    uses: usize,
}

struct Builder {
    rng: Rng,
    layers: Vec<Value>,
    weights: Map<String, Value>,
    tensors: Vec<Tensor>,
    inputs: Vec<usize>,
    /// Integer inputs' vocabulary sizes, by input position.
    vocab: Vec<Option<usize>>,
    count: usize,
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn tensor_ref(t: &Tensor) -> Value {
    let mut shape = vec![Value::Null];
    shape.extend(t.shape.iter().map(|&d| json!(d)));
    json!({
        "class_name": "__keras_tensor__",
        "config": {
            "shape": shape,
            "dtype": if t.int { "int32" } else { "float32" },
            "keras_history": [t.layer, 0, 0]
        }
    })
}

const PLAIN_ACTIVATIONS: &[&str] = &[
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "elu",
    "selu",
    "celu",
    "gelu",
    "softplus",
    "softsign",
    "silu",
    "swish",
    "hard_silu",
    "mish",
    "exponential",
    "log_sigmoid",
    "hard_tanh",
    "tanh_shrink",
    "squareplus",
    "sparse_plus",
    "soft_shrink",
    "hard_shrink",
    "sparse_sigmoid",
];
const AXIS_ACTIVATIONS: &[&str] = &["softmax", "log_softmax", "sparsemax", "glu"];

impl Builder {
    fn new(seed: u64) -> Builder {
        Builder {
            rng: Rng::new(seed),
            layers: Vec::new(),
            weights: Map::new(),
            tensors: Vec::new(),
            inputs: Vec::new(),
            vocab: Vec::new(),
            count: 0,
        }
    }

    fn name(&mut self, class: &str) -> String {
        self.count += 1;
        format!("{}_{}", class.to_lowercase(), self.count)
    }

    fn input(&mut self, shape: Vec<usize>, vocab: Option<usize>) -> usize {
        let name = self.name("input");
        let mut batch_shape = vec![Value::Null];
        batch_shape.extend(shape.iter().map(|&d| json!(d)));
        self.layers.push(json!({
            "class_name": "InputLayer",
            "config": {
                "batch_shape": batch_shape,
                "dtype": if vocab.is_some() { "int32" } else { "float32" },
                "name": name
            },
            "name": name,
            "inbound_nodes": []
        }));
        self.tensors.push(Tensor {
            layer: name,
            shape,
            int: vocab.is_some(),
            uses: 0,
        });
        self.vocab.push(vocab);
        let t = self.tensors.len() - 1;
        self.inputs.push(t);
        t
    }

    /// Adds a layer called on `inputs` (a list when `list`), with its weights.
    fn layer(
        &mut self,
        class: &str,
        config: Value,
        inputs: &[usize],
        weights: Vec<(Vec<usize>, Vec<f32>)>,
        shape: Vec<usize>,
    ) -> usize {
        self.call(class, config, inputs, false, json!({}), weights, shape)
    }

    /// [`Builder::layer`], with the tensors as separate arguments when `positional` (a
    /// list otherwise) and keyword arguments.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        class: &str,
        mut config: Value,
        inputs: &[usize],
        positional: bool,
        kwargs: Value,
        weights: Vec<(Vec<usize>, Vec<f32>)>,
        shape: Vec<usize>,
    ) -> usize {
        let name = self.name(class);
        config["name"] = json!(name);
        let refs: Vec<Value> = inputs
            .iter()
            .map(|&t| {
                self.tensors[t].uses += 1;
                tensor_ref(&self.tensors[t])
            })
            .collect();
        let args = if inputs.len() == 1 {
            json!([refs[0]])
        } else if positional {
            Value::Array(refs)
        } else {
            json!([refs])
        };
        self.layers.push(json!({
            "class_name": class,
            "config": config,
            "name": name,
            "inbound_nodes": [{"args": args, "kwargs": kwargs}]
        }));
        if !weights.is_empty() {
            let list: Vec<Value> = weights
                .into_iter()
                .map(|(shape, data)| {
                    assert_eq!(numel(&shape), data.len(), "{class} weight");
                    json!({"shape": shape, "data": data})
                })
                .collect();
            self.weights.insert(name.clone(), Value::Array(list));
        }
        self.tensors.push(Tensor {
            layer: name,
            shape,
            int: false,
            uses: 0,
        });
        self.tensors.len() - 1
    }

    /// A random activation name for a layer option over an axis of `last` (glu needs an
    /// even axis; softmax-like ones need more than one element to be non-constant).
    fn activation(&mut self, last: usize) -> &'static str {
        if self.rng.chance(0.25) {
            return "linear";
        }
        if self.rng.chance(0.15) && last > 1 {
            let a = *self.rng.pick(AXIS_ACTIVATIONS);
            if a != "glu" || last.is_multiple_of(2) {
                return a;
            }
        }
        self.rng.pick::<&str>(PLAIN_ACTIVATIONS)
    }

    fn after_activation(shape: &[usize], activation: &str) -> Vec<usize> {
        let mut shape = shape.to_vec();
        if activation == "glu" {
            *shape.last_mut().unwrap() /= 2;
        }
        shape
    }

    fn bias(&mut self, n: usize) -> (Vec<usize>, Vec<f32>) {
        (vec![n], self.rng.normals(n, 0.2))
    }

    // --- layers, each returning the new tensor (or None when it does not fit) ---------

    fn dense(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let n_in = *shape.last()?;
        let units = self.rng.range(1, 12);
        let activation = self.activation(units);
        let use_bias = self.rng.chance(0.7);
        let mut w = vec![(
            vec![n_in, units],
            self.rng.normals(n_in * units, 1.0 / (n_in as f64).sqrt()),
        )];
        if use_bias {
            w.push(self.bias(units));
        }
        let mut out = shape;
        *out.last_mut().unwrap() = units;
        let out = Self::after_activation(&out, activation);
        Some(self.layer(
            "Dense",
            json!({"units": units, "activation": activation, "use_bias": use_bias}),
            &[x],
            w,
            out,
        ))
    }

    fn activation_layer(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let last = *shape.last()?;
        let (class, config) = match self.rng.range(0, 5) {
            0 => ("ReLU", {
                let mut c = Map::new();
                if self.rng.chance(0.5) {
                    c.insert("max_value".into(), json!(self.rng.range(1, 6) as f64 * 0.5));
                }
                if self.rng.chance(0.5) {
                    c.insert("negative_slope".into(), json!(0.1));
                }
                if self.rng.chance(0.3) {
                    c.insert("threshold".into(), json!(-0.25));
                }
                Value::Object(c)
            }),
            1 => ("LeakyReLU", json!({"negative_slope": 0.2})),
            2 => ("ELU", json!({"alpha": 0.7})),
            3 if last > 1 => ("Softmax", json!({"axis": -1})),
            _ => {
                let a = self.activation(last);
                ("Activation", json!({ "activation": a }))
            }
        };
        let a = config["activation"].as_str().unwrap_or("");
        let out = Self::after_activation(&shape, a);
        Some(self.layer(class, config, &[x], vec![], out))
    }

    fn batch_norm(&mut self, x: usize) -> Option<usize> {
        let c = *self.tensors[x].shape.last()?;
        let (center, scale) = (self.rng.chance(0.8), self.rng.chance(0.8));
        let mut w = Vec::new();
        if scale {
            let g = (0..c)
                .map(|_| (1.0 + 0.3 * self.rng.normal()) as f32)
                .collect();
            w.push((vec![c], g));
        }
        if center {
            w.push(self.bias(c));
        }
        w.push((vec![c], self.rng.normals(c, 0.3)));
        let var = (0..c).map(|_| (0.5 + self.rng.unit()) as f32).collect();
        w.push((vec![c], var));
        let shape = self.tensors[x].shape.clone();
        Some(self.layer(
            "BatchNormalization",
            json!({"axis": -1, "epsilon": 0.001, "center": center, "scale": scale}),
            &[x],
            w,
            shape,
        ))
    }

    /// PReLU, Rescaling, UnitNormalization, GroupNormalization or RepeatVector.
    fn other(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let c = *shape.last()?;
        match self.rng.range(0, 4) {
            0 => {
                // Shared over the first axis, sometimes.
                let shared = shape.len() > 1 && self.rng.chance(0.5);
                let mut ashape = shape.clone();
                if shared {
                    ashape[0] = 1;
                }
                let n = numel(&ashape);
                let alpha = self.rng.normals(n, 0.3);
                let config = if shared {
                    json!({ "shared_axes": [1] })
                } else {
                    json!({ "shared_axes": null })
                };
                Some(self.layer("PReLU", config, &[x], vec![(ashape, alpha)], shape))
            }
            1 => {
                let (scale, offset) = (0.5 + self.rng.unit(), self.rng.normal() * 0.2);
                Some(self.layer(
                    "Rescaling",
                    json!({"scale": scale, "offset": offset}),
                    &[x],
                    vec![],
                    shape,
                ))
            }
            2 if c > 1 => Some(self.layer(
                "UnitNormalization",
                json!({ "axis": -1 }),
                &[x],
                vec![],
                shape,
            )),
            3 if shape.len() > 1 => {
                let divisors: Vec<usize> = (1..=c).filter(|&g| c.is_multiple_of(g)).collect();
                let groups = *self.rng.pick(&divisors);
                if numel(&shape) / groups < 2 {
                    return None;
                }
                let mut w = Vec::new();
                let g = (0..c)
                    .map(|_| (1.0 + 0.3 * self.rng.normal()) as f32)
                    .collect();
                w.push((vec![c], g));
                w.push(self.bias(c));
                Some(self.layer(
                    "GroupNormalization",
                    json!({"groups": groups, "axis": -1, "epsilon": 0.001, "center": true,
                           "scale": true}),
                    &[x],
                    w,
                    shape,
                ))
            }
            4 if shape.len() == 1 => {
                let n = self.rng.range(1, 4);
                Some(self.layer("RepeatVector", json!({ "n": n }), &[x], vec![], vec![n, c]))
            }
            _ => None,
        }
    }

    fn layer_norm(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let rank = shape.len();
        // The last axis, or the last two.
        let axes: Vec<i64> = if rank >= 2 && self.rng.chance(0.3) {
            vec![rank as i64 - 1, rank as i64]
        } else {
            vec![-1]
        };
        let param: Vec<usize> = if axes.len() == 2 {
            shape[rank - 2..].to_vec()
        } else {
            vec![shape[rank - 1]]
        };
        if numel(&param) < 2 {
            return None;
        }
        let rms = self.rng.chance(0.2);
        let (center, scale) = (self.rng.chance(0.8), self.rng.chance(0.8));
        let mut w = Vec::new();
        if scale || rms {
            let g = (0..numel(&param))
                .map(|_| (1.0 + 0.3 * self.rng.normal()) as f32)
                .collect();
            w.push((param.clone(), g));
        }
        if center && !rms {
            w.push((param.clone(), self.rng.normals(numel(&param), 0.2)));
        }
        Some(self.layer(
            "LayerNormalization",
            json!({"axis": axes, "epsilon": 0.001, "center": center, "scale": scale,
                   "rms_scaling": rms}),
            &[x],
            w,
            shape,
        ))
    }

    /// Output length of a window over `len`.
    fn window_out(len: usize, size: usize, stride: usize, dilation: usize, pad: &str) -> usize {
        match pad {
            "valid" => {
                let span = (size - 1) * dilation + 1;
                if len < span {
                    0
                } else {
                    (len - span) / stride + 1
                }
            }
            _ => len.div_ceil(stride),
        }
    }

    fn conv(&mut self, x: usize) -> Option<usize> {
        let full = self.tensors[x].shape.clone();
        let rank = full.len() - 1;
        if !(1..=2).contains(&rank) {
            return None;
        }
        // channels_first reads the first axis as the channels.
        let first = self.rng.chance(0.15);
        let shape = if first {
            let mut s = full[1..].to_vec();
            s.push(full[0]);
            s
        } else {
            full.clone()
        };
        let cin = shape[rank];
        if self.rng.chance(0.15) {
            return self.conv_transpose(x, shape, first);
        }
        let family = *self
            .rng
            .pick(&["Conv", "Conv", "DepthwiseConv", "SeparableConv"]);
        let class = format!("{family}{rank}D");
        let pads: &[&str] = if rank == 1 && family == "Conv" {
            &["valid", "same", "causal"]
        } else {
            &["valid", "same"]
        };
        let padding = *self.rng.pick(pads);
        let kernel: Vec<usize> = (0..rank).map(|_| self.rng.range(1, 3)).collect();
        let dilated = self.rng.chance(0.25);
        let (strides, dilation): (Vec<usize>, Vec<usize>) = if dilated {
            (
                vec![1; rank],
                (0..rank).map(|_| self.rng.range(1, 2)).collect(),
            )
        } else {
            (
                (0..rank).map(|_| self.rng.range(1, 2)).collect(),
                vec![1; rank],
            )
        };
        let mut out: Vec<usize> = (0..rank)
            .map(|a| Self::window_out(shape[a], kernel[a], strides[a], dilation[a], padding))
            .collect();
        if out.contains(&0) {
            return None;
        }
        let use_bias = self.rng.chance(0.7);
        let ksize = numel(&kernel);
        let mut config = json!({
            "kernel_size": kernel, "strides": strides, "dilation_rate": dilation,
            "padding": padding, "use_bias": use_bias,
            "data_format": if first { "channels_first" } else { "channels_last" }
        });
        let mut w = Vec::new();
        let channels;
        match family {
            "Conv" => {
                let divisors: Vec<usize> = (1..=cin).filter(|&g| cin.is_multiple_of(g)).collect();
                let groups = if self.rng.chance(0.3) {
                    *self.rng.pick(&divisors)
                } else {
                    1
                };
                let filters = groups * self.rng.range(1, 8usize.div_ceil(groups).max(1));
                config["filters"] = json!(filters);
                config["groups"] = json!(groups);
                let fan_in = ksize * cin / groups;
                let mut kshape = kernel.clone();
                kshape.extend([cin / groups, filters]);
                let n = numel(&kshape);
                w.push((kshape, self.rng.normals(n, 1.0 / (fan_in as f64).sqrt())));
                channels = filters;
            }
            "DepthwiseConv" => {
                let m = self.rng.range(1, 2);
                config["depth_multiplier"] = json!(m);
                let mut kshape = kernel.clone();
                kshape.extend([cin, m]);
                let n = numel(&kshape);
                w.push((kshape, self.rng.normals(n, 1.0 / (ksize as f64).sqrt())));
                channels = cin * m;
            }
            _ => {
                let m = self.rng.range(1, 2);
                let filters = self.rng.range(1, 8);
                config["depth_multiplier"] = json!(m);
                config["filters"] = json!(filters);
                let mut kshape = kernel.clone();
                kshape.extend([cin, m]);
                let n = numel(&kshape);
                w.push((kshape, self.rng.normals(n, 1.0 / (ksize as f64).sqrt())));
                let mut pshape = vec![1; rank];
                pshape.extend([cin * m, filters]);
                let n = numel(&pshape);
                w.push((pshape, self.rng.normals(n, 1.0 / ((cin * m) as f64).sqrt())));
                channels = filters;
            }
        }
        if use_bias {
            w.push(self.bias(channels));
        }
        // channels_first applies axis activations to the last (spatial) axis: keep to
        // elementwise ones there.
        let activation = self.activation(if first { 1 } else { channels });
        config["activation"] = json!(activation);
        out.push(channels);
        let mut out = Self::after_activation(&out, activation);
        if first {
            let c = out.pop().unwrap();
            out.insert(0, c);
        }
        let y = self.layer(&class, config, &[x], w, out);
        // A max pooling right after a valid convolution is fused (ConvMaxPool).
        if padding == "valid" && !first && self.rng.chance(0.4) {
            return self.pool(y, Some("Max")).or(Some(y));
        }
        Some(y)
    }

    /// `shape` is channels-last; the output is channels-first when `first`.
    fn conv_transpose(&mut self, x: usize, shape: Vec<usize>, first: bool) -> Option<usize> {
        let rank = shape.len() - 1;
        let cin = shape[rank];
        if numel(&shape) > 128 {
            return None;
        }
        let kernel: Vec<usize> = (0..rank).map(|_| self.rng.range(1, 3)).collect();
        let strides: Vec<usize> = (0..rank).map(|_| self.rng.range(1, 2)).collect();
        let padding = *self.rng.pick(&["valid", "same"]);
        let filters = self.rng.range(1, 6);
        let mut out: Vec<usize> = (0..rank)
            .map(|a| match padding {
                "same" => shape[a] * strides[a],
                _ => shape[a] * strides[a] + kernel[a].saturating_sub(strides[a]),
            })
            .collect();
        let use_bias = self.rng.chance(0.7);
        let mut kshape = kernel.clone();
        kshape.extend([filters, cin]);
        let n = numel(&kshape);
        let fan_in = numel(&kernel) * cin;
        let mut w = vec![(kshape, self.rng.normals(n, 1.0 / (fan_in as f64).sqrt()))];
        if use_bias {
            w.push(self.bias(filters));
        }
        let activation = self.activation(if first { 1 } else { filters });
        out.push(filters);
        let mut out = Self::after_activation(&out, activation);
        if first {
            let c = out.pop().unwrap();
            out.insert(0, c);
        }
        Some(self.layer(
            &format!("Conv{rank}DTranspose"),
            json!({"filters": filters, "kernel_size": kernel, "strides": strides,
                   "padding": padding, "use_bias": use_bias, "activation": activation,
                   "output_padding": null, "dilation_rate": vec![1; rank],
                   "data_format": if first { "channels_first" } else { "channels_last" }}),
            &[x],
            w,
            out,
        ))
    }

    fn pool(&mut self, x: usize, kind: Option<&str>) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let rank = shape.len() - 1;
        if !(1..=2).contains(&rank) {
            return None;
        }
        // After a valid convolution (`kind` given): mostly a window that tiles its input,
        // as the fused ConvMaxPool needs.
        let tiling = kind.is_some() && self.rng.chance(0.8);
        let kind = kind.unwrap_or_else(|| *self.rng.pick(&["Max", "Average"]));
        let first = !tiling && self.rng.chance(0.15);
        let format = if first {
            "channels_first"
        } else {
            "channels_last"
        };
        let shape = if first {
            let mut s = shape[1..].to_vec();
            s.push(shape[0]);
            s
        } else {
            shape
        };
        if !tiling && self.rng.chance(0.2) {
            let mut config = json!({ "data_format": format });
            let keepdims = self.rng.chance(0.3);
            config["keepdims"] = json!(keepdims);
            let c = shape[rank];
            let out = if keepdims {
                let mut s = vec![1; rank];
                if first {
                    s.insert(0, c);
                } else {
                    s.push(c);
                }
                s
            } else {
                vec![c]
            };
            return Some(self.layer(
                &format!("Global{kind}Pooling{rank}D"),
                config,
                &[x],
                vec![],
                out,
            ));
        }
        let size: Vec<usize> = (0..rank).map(|_| self.rng.range(1, 3)).collect();
        let strides: Vec<usize> = if tiling || self.rng.chance(0.5) {
            size.clone()
        } else {
            (0..rank).map(|_| self.rng.range(1, 2)).collect()
        };
        let padding = if tiling {
            "valid"
        } else {
            *self.rng.pick(&["valid", "same"])
        };
        let mut out: Vec<usize> = (0..rank)
            .map(|a| Self::window_out(shape[a], size[a], strides[a], 1, padding))
            .collect();
        if out.contains(&0) {
            return None;
        }
        if first {
            out.insert(0, shape[rank]);
        } else {
            out.push(shape[rank]);
        }
        Some(self.layer(
            &format!("{kind}Pooling{rank}D"),
            json!({"pool_size": size, "strides": strides, "padding": padding,
                   "data_format": format}),
            &[x],
            vec![],
            out,
        ))
    }

    fn zero_padding(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let rank = shape.len() - 1;
        let pads: Vec<(usize, usize)> = (0..rank)
            .map(|_| (self.rng.range(0, 2), self.rng.range(0, 2)))
            .collect();
        let mut out = shape.clone();
        for (a, &(l, r)) in pads.iter().enumerate() {
            out[a] += l + r;
        }
        let (class, padding) = match rank {
            1 => ("ZeroPadding1D", json!([pads[0].0, pads[0].1])),
            2 => (
                "ZeroPadding2D",
                json!([[pads[0].0, pads[0].1], [pads[1].0, pads[1].1]]),
            ),
            _ => return None,
        };
        let mut config = json!({ "padding": padding });
        if rank == 2 {
            config["data_format"] = json!("channels_last");
        }
        Some(self.layer(class, config, &[x], vec![], out))
    }

    fn cropping(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let rank = shape.len() - 1;
        let mut crops = Vec::new();
        for &len in &shape[..rank] {
            if len < 3 {
                return None;
            }
            crops.push((self.rng.range(0, 1), self.rng.range(0, 1)));
        }
        let mut out = shape.clone();
        for (a, &(l, r)) in crops.iter().enumerate() {
            out[a] -= l + r;
        }
        let (class, cropping) = match rank {
            1 => ("Cropping1D", json!([crops[0].0, crops[0].1])),
            2 => (
                "Cropping2D",
                json!([[crops[0].0, crops[0].1], [crops[1].0, crops[1].1]]),
            ),
            _ => return None,
        };
        Some(self.layer(class, json!({ "cropping": cropping }), &[x], vec![], out))
    }

    fn upsampling(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let rank = shape.len() - 1;
        if numel(&shape) > 200 {
            return None;
        }
        let size: Vec<usize> = (0..rank).map(|_| self.rng.range(1, 2)).collect();
        let mut out = shape.clone();
        for a in 0..rank {
            out[a] *= size[a];
        }
        match rank {
            1 => Some(self.layer("UpSampling1D", json!({"size": size[0]}), &[x], vec![], out)),
            2 => {
                let interpolation = *self.rng.pick(&["nearest", "bilinear"]);
                Some(self.layer(
                    "UpSampling2D",
                    json!({"size": size, "interpolation": interpolation,
                           "data_format": "channels_last"}),
                    &[x],
                    vec![],
                    out,
                ))
            }
            _ => None,
        }
    }

    fn reshape(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        match self.rng.range(0, 2) {
            0 if shape.len() > 1 => {
                let n = numel(&shape);
                Some(self.layer("Flatten", json!({}), &[x], vec![], vec![n]))
            }
            1 if shape.len() > 1 => {
                // A random permutation of the axes.
                let mut perm: Vec<usize> = (0..shape.len()).collect();
                for i in (1..perm.len()).rev() {
                    let j = self.rng.range(0, i);
                    perm.swap(i, j);
                }
                let out = perm.iter().map(|&p| shape[p]).collect();
                let dims: Vec<usize> = perm.iter().map(|p| p + 1).collect();
                Some(self.layer("Permute", json!({ "dims": dims }), &[x], vec![], out))
            }
            _ => {
                // Split the element count into two or three factors.
                let n = numel(&shape);
                let divisors: Vec<usize> = (1..=n).filter(|&d| n.is_multiple_of(d)).collect();
                let a = *self.rng.pick(&divisors);
                let mut out = vec![a, n / a];
                if self.rng.chance(0.3) {
                    let m = out[1];
                    let ds: Vec<usize> = (1..=m).filter(|&d| m.is_multiple_of(d)).collect();
                    let b = *self.rng.pick(&ds);
                    out = vec![a, b, m / b];
                }
                Some(self.layer(
                    "Reshape",
                    json!({ "target_shape": out }),
                    &[x],
                    vec![],
                    out.clone(),
                ))
            }
        }
    }

    fn recurrent(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        if shape.len() != 2 {
            return None;
        }
        let (class, config, w, out) = self.rnn_parts(&shape, None);
        if self.rng.chance(0.3) {
            // Bidirectional: the backward layer's weights follow the forward one's.
            let (_, _, w2, _) = self.rnn_parts(&shape, Some((class, &config)));
            let merge = *self.rng.pick(&["concat", "sum", "mul", "ave"]);
            let mut out = out;
            if merge == "concat" {
                *out.last_mut().unwrap() *= 2;
            }
            let mut inner = config.clone();
            inner["name"] = json!(format!("forward_{}", self.count + 1));
            let config = json!({
                "layer": {"class_name": class, "config": inner},
                "merge_mode": merge
            });
            return Some(self.layer("Bidirectional", config, &[x], [w, w2].concat(), out));
        }
        Some(self.layer(class, config, &[x], w, out))
    }

    /// A recurrent layer's class, config, weights and output shape; with `like`, weights
    /// for the same class and config.
    #[allow(clippy::type_complexity)]
    fn rnn_parts(
        &mut self,
        shape: &[usize],
        like: Option<(&'static str, &Value)>,
    ) -> (&'static str, Value, Vec<(Vec<usize>, Vec<f32>)>, Vec<usize>) {
        let (steps, n_in) = (shape[0], shape[1]);
        let class = match like {
            Some((class, _)) => class,
            None => *self.rng.pick(&["LSTM", "GRU", "SimpleRNN"]),
        };
        let units = match like {
            Some((_, c)) => c["units"].as_u64().unwrap() as usize,
            None => self.rng.range(1, 8),
        };
        let gates = match class {
            "LSTM" => 4,
            "GRU" => 3,
            _ => 1,
        };
        let use_bias = self.rng.chance(0.8);
        let return_sequences = self.rng.chance(0.5);
        let go_backwards = self.rng.chance(0.3);
        let mut config = json!({
            "units": units, "use_bias": use_bias, "return_sequences": return_sequences,
            "go_backwards": go_backwards, "return_state": false, "stateful": false,
            "unroll": false
        });
        if self.rng.chance(0.2) {
            config["activation"] = json!(*self.rng.pick(&["relu", "sigmoid", "hard_tanh"]));
        }
        if class != "SimpleRNN" && self.rng.chance(0.2) {
            config["recurrent_activation"] = json!(*self.rng.pick(&["hard_sigmoid", "tanh"]));
        }
        let mut w = vec![
            (
                vec![n_in, gates * units],
                self.rng
                    .normals(n_in * gates * units, 1.0 / (n_in as f64).sqrt()),
            ),
            (
                vec![units, gates * units],
                self.rng
                    .normals(units * gates * units, 1.0 / (units as f64).sqrt()),
            ),
        ];
        if let Some((_, c)) = like {
            config = c.clone();
        }
        let use_bias = config["use_bias"].as_bool().unwrap();
        let return_sequences = config["return_sequences"].as_bool().unwrap();
        if class == "GRU" {
            let reset_after = match like {
                Some((_, c)) => c["reset_after"].as_bool().unwrap(),
                None => self.rng.chance(0.7),
            };
            config["reset_after"] = json!(reset_after);
            if use_bias {
                let b = if reset_after {
                    vec![2, 3 * units]
                } else {
                    vec![3 * units]
                };
                let n = numel(&b);
                w.push((b, self.rng.normals(n, 0.2)));
            }
        } else if use_bias {
            w.push(self.bias(gates * units));
        }
        let out = if return_sequences {
            vec![steps, units]
        } else {
            vec![units]
        };
        (class, config, w, out)
    }

    fn multi_head_attention(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        if shape.len() != 2 {
            return None;
        }
        let d = shape[1];
        let candidates: Vec<usize> = (0..self.tensors.len())
            .filter(|&t| !self.tensors[t].int && self.tensors[t].shape.len() == 2)
            .collect();
        let v = *self.rng.pick(&candidates);
        let dv = self.tensors[v].shape[1];
        let causal = self.rng.chance(0.3) && self.tensors[v].shape[0] == shape[0];
        let heads = self.rng.range(1, 3);
        let key_dim = self.rng.range(1, 4);
        let value_dim = self.rng.range(1, 4);
        let use_bias = self.rng.chance(0.7);
        let mut w = Vec::new();
        for (rows, cols) in [(d, key_dim), (dv, key_dim), (dv, value_dim)] {
            w.push((
                vec![rows, heads, cols],
                self.rng
                    .normals(rows * heads * cols, 1.0 / (rows as f64).sqrt()),
            ));
            if use_bias {
                w.push((vec![heads, cols], self.rng.normals(heads * cols, 0.2)));
            }
        }
        w.push((
            vec![heads, value_dim, d],
            self.rng.normals(
                heads * value_dim * d,
                1.0 / ((heads * value_dim) as f64).sqrt(),
            ),
        ));
        if use_bias {
            w.push(self.bias(d));
        }
        let kwargs = if causal {
            json!({"use_causal_mask": true})
        } else {
            json!({})
        };
        Some(self.call(
            "MultiHeadAttention",
            json!({"num_heads": heads, "key_dim": key_dim, "value_dim": value_dim,
                   "use_bias": use_bias, "dropout": 0.0, "output_shape": null,
                   "attention_axes": null}),
            &[x, v],
            true,
            kwargs,
            w,
            shape,
        ))
    }

    fn attention(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        if shape.len() != 2 {
            return None;
        }
        // A value of the same feature size (possibly x itself: self-attention).
        let candidates: Vec<usize> = (0..self.tensors.len())
            .filter(|&t| {
                let s = &self.tensors[t].shape;
                !self.tensors[t].int && s.len() == 2 && s[1] == shape[1]
            })
            .collect();
        let v = *self.rng.pick(&candidates);
        let use_scale = self.rng.chance(0.5);
        let concat = self.rng.chance(0.3);
        let mut w = Vec::new();
        if use_scale {
            w.push((vec![], vec![(0.5 + self.rng.unit()) as f32]));
        }
        if concat {
            w.push((vec![], vec![(0.5 + self.rng.unit()) as f32]));
        }
        Some(self.layer(
            "Attention",
            json!({"use_scale": use_scale, "score_mode": if concat { "concat" } else { "dot" },
                   "dropout": 0.0}),
            &[x, v],
            w,
            shape,
        ))
    }

    /// A merge of `x` with another tensor of its shape, or a concatenation.
    fn merge(&mut self, x: usize) -> Option<usize> {
        let shape = self.tensors[x].shape.clone();
        let rank = shape.len();
        if self.rng.chance(0.35) {
            let axis = self.rng.range(0, rank - 1);
            let partners: Vec<usize> = (0..self.tensors.len())
                .filter(|&t| {
                    let s = &self.tensors[t].shape;
                    !self.tensors[t].int
                        && s.len() == rank
                        && (0..rank).all(|a| a == axis || s[a] == shape[a])
                })
                .collect();
            let y = *self.rng.pick(&partners);
            let mut out = shape.clone();
            out[axis] += self.tensors[y].shape[axis];
            let keras_axis = if self.rng.chance(0.5) {
                axis as i64 + 1
            } else {
                axis as i64 - rank as i64
            };
            return Some(self.layer(
                "Concatenate",
                json!({ "axis": keras_axis }),
                &[x, y],
                vec![],
                out,
            ));
        }
        let partners: Vec<usize> = (0..self.tensors.len())
            .filter(|&t| !self.tensors[t].int && self.tensors[t].shape == shape)
            .collect();
        let class = *self.rng.pick(&[
            "Add", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
        ]);
        let distinct: Vec<usize> = partners.iter().copied().filter(|&t| t != x).collect();
        let y = match class {
            // x - x is zero.
            "Subtract" if distinct.is_empty() => return None,
            "Subtract" => *self.rng.pick(&distinct),
            _ => *self.rng.pick(&partners),
        };
        let mut ins = vec![x, y];
        if class != "Subtract" && self.rng.chance(0.2) {
            ins.push(*self.rng.pick(&partners));
        }
        Some(self.layer(class, json!({}), &ins, vec![], shape))
    }

    fn embedding(&mut self, x: usize, vocab: usize, mask_zero: bool) -> usize {
        let dim = self.rng.range(2, 6);
        let mut shape = self.tensors[x].shape.clone();
        shape.push(dim);
        let w = vec![(vec![vocab, dim], self.rng.normals(vocab * dim, 1.0))];
        self.layer(
            "Embedding",
            json!({"input_dim": vocab, "output_dim": dim, "mask_zero": mask_zero}),
            &[x],
            w,
            shape,
        )
    }

    /// One random layer on a recent tensor.
    fn step(&mut self) {
        for _ in 0..30 {
            let floats: Vec<usize> = (0..self.tensors.len())
                .filter(|&t| !self.tensors[t].int)
                .collect();
            // Mostly the newest tensors, sometimes an older one (branches).
            let x = if self.rng.chance(0.7) {
                *floats.last().unwrap()
            } else {
                *self.rng.pick(&floats)
            };
            let size = numel(&self.tensors[x].shape);
            let made = match self.rng.range(0, 16) {
                0 | 1 => self.dense(x),
                2..=4 => self.conv(x),
                5 | 6 => self.pool(x, None),
                7 => self.activation_layer(x),
                8 => self.batch_norm(x),
                9 => self.layer_norm(x),
                10 => self.merge(x),
                11 => match self.rng.range(0, 2) {
                    0 => self.zero_padding(x),
                    1 => self.cropping(x),
                    _ => self.upsampling(x),
                },
                12 => self.reshape(x),
                13 if size <= 256 => self.recurrent(x),
                14 if self.rng.chance(0.5) => self.attention(x),
                14 => self.multi_head_attention(x),
                15 => self.other(x),
                _ => None,
            };
            if let Some(y) = made {
                let s = &self.tensors[y].shape;
                if numel(s) > 0 && numel(s) <= 1024 {
                    return;
                }
                // Too big: leave it dangling but not an output, by undoing it.
                self.undo(y);
            }
        }
    }

    fn undo(&mut self, y: usize) {
        let layer = self.layers.pop().unwrap();
        self.weights.remove(layer["name"].as_str().unwrap());
        self.tensors.pop();
        assert_eq!(y, self.tensors.len());
        let mut refs: Vec<&Value> = Vec::new();
        for arg in layer["inbound_nodes"][0]["args"].as_array().unwrap() {
            match arg.as_array() {
                Some(list) => refs.extend(list),
                None => refs.push(arg),
            }
        }
        for r in refs {
            let name = r["config"]["keras_history"][0].as_str().unwrap();
            let t = self.tensors.iter_mut().find(|t| t.layer == name).unwrap();
            t.uses -= 1;
        }
    }

    /// The interchange document: outputs are the tensors nobody consumes (at most 3).
    fn document(&self, name: &str) -> Value {
        let mut outputs: Vec<&Tensor> = self
            .tensors
            .iter()
            .filter(|t| t.uses == 0 && !t.int)
            .collect();
        let dropped = outputs.len().saturating_sub(3);
        outputs.drain(..dropped);
        let ends = |ts: &[&Tensor]| -> Value {
            Value::Array(ts.iter().map(|t| json!([t.layer, 0, 0])).collect())
        };
        let inputs: Vec<&Tensor> = self.inputs.iter().map(|&t| &self.tensors[t]).collect();
        json!({
            "format": "keras2src",
            "version": 1,
            "keras_version": "3.8.0",
            "model": {
                "class_name": "Functional",
                "config": {
                    "name": name,
                    "layers": self.layers,
                    "input_layers": ends(&inputs),
                    "output_layers": ends(&outputs)
                }
            },
            "weights": self.weights
        })
    }
}

/// A random model: one to three inputs, then 3 to 9 layers.
fn random_model(seed: u64) -> Value {
    let mut b = Builder::new(seed);
    let family = b.rng.range(0, 3);
    match family {
        // A vector.
        0 => {
            let n = b.rng.range(2, 12);
            b.input(vec![n], None);
        }
        // A sequence, sometimes of token ids through an embedding.
        1 => {
            let steps = b.rng.range(2, 9);
            if b.rng.chance(0.3) {
                let vocab = b.rng.range(3, 10);
                let x = b.input(vec![steps], Some(vocab));
                let masked = b.rng.chance(0.4);
                let e = b.embedding(x, vocab, masked);
                if masked {
                    // The mask is consumed by a recurrent layer's last state.
                    let shape = b.tensors[e].shape.clone();
                    let (class, mut config, w, _) = b.rnn_parts(&shape, None);
                    config["return_sequences"] = json!(false);
                    let units = config["units"].as_u64().unwrap() as usize;
                    b.layer(class, config, &[e], w, vec![units]);
                    // Other layers reject the mask on purpose: offer the tensor to none.
                    b.tensors[e].int = true;
                }
            } else {
                let c = b.rng.range(1, 6);
                b.input(vec![steps, c], None);
            }
        }
        // An image.
        _ => {
            let (h, w, c) = (b.rng.range(2, 8), b.rng.range(2, 8), b.rng.range(1, 4));
            b.input(vec![h, w, c], None);
        }
    }
    // Sometimes a second input of the first's shape, merged in at once.
    if b.rng.chance(0.25) {
        let first = b.tensors.last().unwrap().clone();
        let x = b.tensors.len() - 1;
        let y = b.input(first.shape.clone(), None);
        let class = *b.rng.pick(&["Add", "Multiply", "Concatenate"]);
        let mut shape = first.shape.clone();
        if class == "Concatenate" {
            *shape.last_mut().unwrap() *= 2;
        }
        b.layer(class, json!({}), &[x, y], vec![], shape);
    }
    let layers = b.rng.range(3, 9);
    for _ in 0..layers {
        b.step();
    }
    b.document(&format!("diff_{seed}"))
}

// ---------------------------------------------------------------------------------------
// Running and comparing.

fn case_seed(base: u64, k: usize) -> u64 {
    base.wrapping_mul(1_000_003).wrapping_add(k as u64)
}

fn env<T: std::str::FromStr>(key: &str) -> Option<T> {
    let v = std::env::var(key).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a valid number")),
    )
}

/// Random inputs for a model: N(0, 1) floats, token ids within the vocabulary.
fn samples(model: &Model, doc: &Value, seed: u64) -> Vec<Vec<Vec<f32>>> {
    let mut rng = Rng::new(seed ^ 0x5a5a);
    let vocab = |name: &str| -> usize {
        doc["model"]["config"]["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| l["class_name"] == "Embedding")
            .find(|l| l["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] == name)
            .and_then(|l| l["config"]["input_dim"].as_u64())
            .unwrap_or(2) as usize
    };
    (0..SAMPLES)
        .map(|_| {
            model
                .graph
                .inputs
                .iter()
                .map(|input| {
                    let n = keras2src::ir::numel(model.graph.shape(input.tensor));
                    match input.dtype {
                        keras2src::ir::InputDtype::I32 => (0..n)
                            .map(|_| rng.range(0, vocab(&input.name) - 1) as f32)
                            .collect(),
                        keras2src::ir::InputDtype::F32 => rng.normals(n, 1.0),
                        keras2src::ir::InputDtype::I8 => {
                            unreachable!("a Keras model's inputs are never int8")
                        }
                    }
                })
                .collect()
        })
        .collect()
}

struct Prepared {
    label: String,
    doc: Value,
    case: Case,
    want: Vec<Vec<Vec<f32>>>,
}

fn failures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/differential-failures")
}

fn save_failure(label: &str, doc: &Value) -> PathBuf {
    let dir = failures_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{label}.interchange.json"));
    std::fs::write(&path, serde_json::to_string_pretty(doc).unwrap()).unwrap();
    path
}

/// Loads a document, runs the interpreter; `Err` when the frontend rejects the model.
fn prepare(
    label: &str,
    doc: Value,
    seed: u64,
    dir: &Path,
    ident: String,
) -> Result<Prepared, String> {
    let path = dir.join(format!("{label}.interchange.json"));
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    let model = Model::load(&path, None).map_err(|e| e.to_string())?;
    let samples = samples(&model, &doc, seed);
    let want = samples
        .iter()
        .map(|s| {
            let values = interp::run(&model.graph, s).expect("interpreter");
            interp::outputs(&model.graph, &values)
        })
        .collect();
    Ok(Prepared {
        label: label.to_string(),
        doc,
        case: Case {
            ident,
            model,
            samples,
            // Every third model's Rust weights in a `.weights.bin` file.
            weights: if seed % 3 == 2 {
                keras2src::WeightsPlacement::File
            } else {
                keras2src::WeightsPlacement::Inline
            },
        },
        want,
    })
}

/// Whether every output of a case is constant over all its elements and samples.
fn degenerate(want: &[Vec<Vec<f32>>]) -> bool {
    let outputs = want[0].len();
    (0..outputs).any(|k| {
        let first = want[0][k][0];
        want.iter().all(|s| {
            s[k].iter()
                .all(|&v| v == first || (v.is_nan() && first.is_nan()))
        })
    })
}

struct Tally {
    compared: usize,
    degenerate: Vec<String>,
    failures: Vec<String>,
}

/// Compiles a batch, compares Rust and C++ with the interpreter and each other.
fn check_batch(batch: &[Prepared], dir: &Path, tally: &mut Tally) {
    let cases: Vec<Case> = batch
        .iter()
        .map(|p| Case {
            ident: p.case.ident.clone(),
            model: Model {
                graph: p.case.model.graph.clone(),
                sha256: p.case.model.sha256.clone(),
                path: p.case.model.path.clone(),
                config: None,
                input_shapes: Vec::new(),
            },
            samples: p.case.samples.clone(),
            weights: p.case.weights,
        })
        .collect();
    let (rust, cpp) = run_both(&cases, dir);
    for (c, p) in batch.iter().enumerate() {
        tally.compared += 1;
        if degenerate(&p.want) {
            tally.degenerate.push(p.label.clone());
        }
        let mut problems = Vec::new();
        for (s, want) in p.want.iter().enumerate() {
            if rust[c][s].len() != want.len() || cpp[c][s].len() != want.len() {
                problems.push(format!("sample {s}: output count"));
                continue;
            }
            for (k, w) in want.iter().enumerate() {
                let (r, cc) = (&rust[c][s][k], &cpp[c][s][k]);
                if r.len() != w.len() || cc.len() != w.len() {
                    problems.push(format!("sample {s} output {k}: length"));
                    continue;
                }
                for i in 0..w.len() {
                    if !close(r[i], w[i]) {
                        problems.push(format!(
                            "sample {s} output {k}[{i}]: rust {}, interpreter {}",
                            r[i], w[i]
                        ));
                    }
                    if r[i].to_bits() != cc[i].to_bits() && !(r[i].is_nan() && cc[i].is_nan()) {
                        problems.push(format!(
                            "sample {s} output {k}[{i}]: rust {} != c++ {}",
                            r[i], cc[i]
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            let path = save_failure(&p.label, &p.doc);
            problems.truncate(5);
            tally.failures.push(format!(
                "{} ({}):\n    {}",
                p.label,
                path.display(),
                problems.join("\n    ")
            ));
        }
    }
}

/// The models of `tests/fixtures/differential/`, or of `KERAS2SRC_DIFF_REPLAY` (a file
/// or a directory) when set.
fn regression_fixtures() -> Vec<(String, Value)> {
    let dir = match std::env::var_os("KERAS2SRC_DIFF_REPLAY") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/differential"),
    };
    let mut files: Vec<PathBuf> = if dir.is_file() {
        vec![dir]
    } else {
        std::fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let label = name
                .trim_end_matches(".json")
                .trim_end_matches(".interchange");
            let doc = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (format!("fixture_{label}"), doc)
        })
        .collect()
}

#[test]
fn generated_code_matches_interpreter_on_random_models() {
    let cases: usize = env("KERAS2SRC_DIFF_CASES").unwrap_or(DEFAULT_CASES);
    let seed: u64 = env("KERAS2SRC_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let work = common::work_dir("differential");
    let started = std::time::Instant::now();
    let mut docs: Vec<(String, Value, u64)> = regression_fixtures()
        .into_iter()
        .map(|(label, doc)| (label, doc, 0))
        .collect();
    for k in 0..cases {
        let s = case_seed(seed, k);
        docs.push((format!("seed{seed}_case{k}"), random_model(s), s));
    }
    let mut prepared = Vec::new();
    let mut skipped = Vec::new();
    let mut tally = Tally {
        compared: 0,
        degenerate: Vec::new(),
        failures: Vec::new(),
    };
    for (label, doc, s) in docs {
        let ident = format!("m{}", prepared.len());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            prepare(&label, doc.clone(), s, &work.path, ident)
        }));
        match outcome {
            Ok(Ok(p)) => prepared.push(p),
            Ok(Err(e)) => skipped.push(format!("{label}: {}", e.replace('\n', " "))),
            Err(_) => {
                let path = save_failure(&label, &doc);
                tally
                    .failures
                    .push(format!("{label} ({}): panicked", path.display()));
            }
        }
    }
    for (b, batch) in prepared.chunks(BATCH).enumerate() {
        let dir = work.path.join(format!("batch{b}"));
        std::fs::create_dir_all(&dir).unwrap();
        let whole = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut t = Tally {
                compared: 0,
                degenerate: Vec::new(),
                failures: Vec::new(),
            };
            check_batch(batch, &dir, &mut t);
            t
        }));
        match whole {
            Ok(t) => {
                tally.compared += t.compared;
                tally.degenerate.extend(t.degenerate);
                tally.failures.extend(t.failures);
            }
            // Generating or compiling failed: find the cases, one at a time.
            Err(_) => {
                for (k, p) in batch.iter().enumerate() {
                    let dir = work.path.join(format!("batch{b}_{k}"));
                    std::fs::create_dir_all(&dir).unwrap();
                    let one = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        check_batch(std::slice::from_ref(p), &dir, &mut tally)
                    }));
                    if one.is_err() {
                        let path = save_failure(&p.label, &p.doc);
                        tally.failures.push(format!(
                            "{} ({}): generating, compiling or running failed (see above)",
                            p.label,
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "differential: seed {seed}, {cases} random cases: {} compared, {} skipped, {} with \
         a constant output, {} failed, in {:.1?}",
        tally.compared,
        skipped.len(),
        tally.degenerate.len(),
        tally.failures.len(),
        started.elapsed()
    );
    let mut classes = std::collections::BTreeMap::new();
    for p in &prepared {
        for layer in p.doc["model"]["config"]["layers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let class = layer["class_name"].as_str().unwrap_or("?");
            *classes.entry(class.to_string()).or_insert(0usize) += 1;
        }
    }
    eprintln!("  layers: {classes:?}");
    // What the passes did: fused conv+max pooling nodes, nodes folded or fused away.
    let (mut fused_pools, mut removed) = (0, 0);
    for p in &prepared {
        let optimized = p.case.model.optimized();
        fused_pools += optimized
            .nodes
            .iter()
            .filter(|n| matches!(n.op, keras2src::ir::Op::ConvMaxPool { .. }))
            .count();
        removed += p
            .case
            .model
            .graph
            .nodes
            .len()
            .saturating_sub(optimized.nodes.len());
    }
    eprintln!(
        "  passes: {fused_pools} conv+max pool fusions, {removed} nodes fewer after the passes"
    );
    for s in &skipped {
        eprintln!("  skipped {s}");
    }
    for d in &tally.degenerate {
        eprintln!("  constant output: {d}");
    }
    assert!(
        tally.failures.is_empty(),
        "{} case(s) failed:\n  {}",
        tally.failures.len(),
        tally.failures.join("\n  ")
    );
    // Outputs that never vary test little: keep them rare (x - x, a dead relu, ...).
    assert!(
        tally.degenerate.len() * 5 <= tally.compared.max(5),
        "too many cases have a constant output"
    );
    // The generator makes valid models: the frontend should take nearly all of them.
    assert!(
        skipped.len() * 10 <= cases.max(10),
        "too many generated models were rejected"
    );
}
