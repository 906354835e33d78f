//! Attention layers: `Attention` (Luong, dot or concat scores), `AdditiveAttention`
//! (Bahdanau) and `MultiHeadAttention`, decomposed into existing ops plus the two
//! attention ops (`MatMul`, `AdditiveScore`, `AttentionSoftmax`):
//!
//! - scores: `q · kᵀ` (keys transposed by a `Transpose` node so the product's inner loop
//!   runs over contiguous memory), or `AdditiveScore` for `tanh(q + k)` sums;
//! - `AttentionSoftmax`: Attention's scalar `scale`, causal and sliding-window masks
//!   (`-1e9` added where a query may not look, as Keras does; the softmax then gives
//!   those positions exactly 0) and the softmax over the key axis, in one kernel;
//! - then `weights · value`.
//!
//! With `return_attention_scores=True` the call has two outputs, `[output, scores]`, the
//! scores being the softmax (what all three layers return, in Keras 3 and tf_keras;
//! MultiHeadAttention's are `[heads, *query axes, *key axes]`).
//!
//! MultiHeadAttention projects query, key and value with `Dense` (Keras's EinsumDense
//! kernels `[d, H, dim]` are `[d, H * dim]` Dense kernels), splits heads with `Reshape` and
//! `Transpose`, and folds `1 / sqrt(key_dim)` into the query projection (a rounding
//! difference from Keras's scaling of the projected query, well inside the tolerance).
//! GroupQueryAttention is MultiHeadAttention with fewer key/value heads, each shared by a
//! group of consecutive query heads: the group's queries are one matrix against the shared
//! keys (a reshape), so nothing is repeated.
//! Semantics from `keras/src/layers/attention/*.py` (3.15) and
//! `tf_keras/src/layers/attention/*.py` (2.21), which agree on everything used here.

use serde_json::{Map, Value};

use super::{LayerKind, Options, Source, Step, WeightCount};
use crate::error::escape_for_message as esc;
use crate::ir::{numel, Activation, Op, Weights};
use crate::keras::config::LayerEntry;

/// `Attention` or `AdditiveAttention`.
#[derive(Debug)]
struct DenseAttention {
    additive: bool,
    use_scale: bool,
    /// Attention's `score_mode="concat"`.
    concat: bool,
}

#[derive(Debug)]
struct MultiHead {
    heads: usize,
    /// Key and value heads: `heads` for MultiHeadAttention; GroupQueryAttention's
    /// `num_key_value_heads`, each shared by `heads / kv_heads` consecutive query heads.
    kv_heads: usize,
    /// GroupQueryAttention (its sub-layers are stored as `_query_dense`, ...; it leaves
    /// the Keras masks of its inputs in place).
    grouped: bool,
    key_dim: usize,
    value_dim: usize,
    use_bias: bool,
    /// Keras 3 `use_gate`: the attention output is multiplied by `sigmoid(query · W_g +
    /// b_g)` per head and value feature before the output projection.
    use_gate: bool,
    /// `output_shape`, if set.
    output_shape: Option<Vec<usize>>,
    /// `attention_axes` as written (checked against the input rank at call time).
    attention_axes: Option<Vec<i64>>,
    sliding_window: Option<usize>,
    /// How the Keras masks of the inputs reach the scores (see [`MaskMode`]).
    keras3: bool,
    /// `dropout > 0` (Keras 3 then takes its explicit-softmax path at inference too).
    dropout: bool,
    /// tf_keras `softmax_robust_masking`.
    robust: bool,
}

/// How masked scores are treated: Keras 3 and tf_keras with `softmax_robust_masking` set
/// them to `-1e9` (`where`), tf_keras adds `-1e9`; Keras 3's Softmax layer (its path with
/// dropout or returned scores) also zeroes the masked probabilities afterwards, so a query
/// step that sees no key gets zeros instead of the mean of the values.
struct MaskMode {
    replace: bool,
    zero: bool,
}

pub(super) fn parse_dense_attention(
    class: &str,
    options: &mut Options,
) -> Option<Box<dyn LayerKind>> {
    options.ignore(&["dropout", "seed"]);
    let additive = class == "AdditiveAttention";
    let use_scale = options.bool("use_scale", additive);
    let concat = if additive {
        false
    } else {
        match options.get("score_mode") {
            None => false,
            Some(Value::String(mode)) if mode == "dot" => false,
            Some(Value::String(mode)) if mode == "concat" => true,
            Some(other) => {
                options.problems.push(format!(
                    "option 'score_mode'={} is not supported (\"dot\" or \"concat\")",
                    esc(&other.to_string())
                ));
                return None;
            }
        }
    };
    // Keras 2's deprecated `causal` argument is not saved in configs; reject it if present.
    options.only(
        "causal",
        &Value::Bool(false),
        " (pass use_causal_mask=True when calling the layer)",
    );
    Some(Box::new(DenseAttention {
        additive,
        use_scale,
        concat,
    }))
}

/// A positive integer option (`None`, with a problem if `required`, when absent).
fn positive(options: &mut Options, key: &str, required: bool) -> Option<usize> {
    match options.int(key) {
        Some(v) if v > 0 => usize::try_from(v).ok(),
        Some(v) => {
            options
                .problems
                .push(format!("option '{key}'={v} must be positive"));
            None
        }
        None if required => {
            options.problems.push(format!("option '{key}' is missing"));
            None
        }
        None => None,
    }
}

/// `GroupQueryAttention` (Keras 3 only): MultiHeadAttention whose key and value heads are
/// shared by groups of consecutive query heads (`ops.repeat(key, num_repeats, axis=2)`),
/// with `key_dim = value_dim = head_dim`, the query's features as output and no
/// `attention_axes` or `output_shape`. Its call, masks and scores follow
/// MultiHeadAttention's in Keras 3.15 (`grouped_query_attention.py`).
pub(super) fn parse_grouped_query(
    options: &mut Options,
    version: crate::keras::config::KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let dropout = options.f64("dropout", 0.0) > 0.0;
    options.ignore(&[
        "seed",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
        // Flash attention computes the same attention (it is a kernel choice).
        "flash_attention",
    ]);
    let head_dim = positive(options, "head_dim", true);
    let heads = positive(options, "num_query_heads", true);
    let kv_heads = positive(options, "num_key_value_heads", true);
    let sliding_window = positive(options, "sliding_window", false);
    let use_bias = options.bool("use_bias", true);
    let use_gate = options.bool("use_gate", false);
    let (head_dim, heads, kv_heads) = (head_dim?, heads?, kv_heads?);
    if heads % kv_heads != 0 {
        options.problems.push(format!(
            "option 'num_query_heads'={heads} must be a multiple of \
             'num_key_value_heads'={kv_heads}"
        ));
        return None;
    }
    Some(Box::new(MultiHead {
        heads,
        kv_heads,
        grouped: true,
        key_dim: head_dim,
        value_dim: head_dim,
        use_bias,
        use_gate,
        output_shape: None,
        attention_axes: None,
        sliding_window,
        keras3: version.major >= 3,
        dropout,
        robust: false,
    }))
}

pub(super) fn parse_multi_head(
    options: &mut Options,
    version: crate::keras::config::KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let dropout = options.f64("dropout", 0.0) > 0.0;
    let robust = options.bool("softmax_robust_masking", false);
    options.ignore(&[
        "seed",
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
        // Keras 2: the build shapes (the call's shapes decide) and how masks are applied
        // (no mask reaches the softmax but causal ones, which both ways zero the same).
        "query_shape",
        "key_shape",
        "value_shape",
        "flash_attention",
    ]);
    let heads = positive(options, "num_heads", true);
    let key_dim = positive(options, "key_dim", true);
    let value_dim = positive(options, "value_dim", false);
    let sliding_window = positive(options, "sliding_window", false);
    let use_bias = options.bool("use_bias", true);
    let use_gate = options.bool("use_gate", false);
    let output_shape = match options.get("output_shape") {
        None => None,
        Some(v) => {
            let dims: Option<Vec<usize>> = match v {
                Value::Array(items) => items
                    .iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect(),
                single => single
                    .as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .map(|d| vec![d]),
            };
            match dims {
                Some(d) if !d.is_empty() && !d.contains(&0) => Some(d),
                _ => {
                    options.problems.push(format!(
                        "option 'output_shape'={} is not supported (a positive integer or a \
                         list of them)",
                        esc(&v.to_string())
                    ));
                    return None;
                }
            }
        }
    };
    let attention_axes = options.int_list("attention_axes");
    let key_dim = key_dim?;
    let heads = heads?;
    Some(Box::new(MultiHead {
        heads,
        kv_heads: heads,
        grouped: false,
        key_dim,
        value_dim: value_dim.unwrap_or(key_dim),
        use_bias,
        use_gate,
        output_shape,
        attention_axes,
        sliding_window,
        keras3: version.major >= 3,
        dropout,
        robust,
    }))
}

/// Weight counts for layers that fail to parse.
pub(super) fn loose_weight_count(entry: &LayerEntry) -> Option<WeightCount> {
    let flag = |key: &str, default: bool| {
        entry
            .config
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    };
    let total = match entry.class.as_str() {
        "Attention" => {
            let concat = entry.config.get("score_mode").and_then(Value::as_str) == Some("concat");
            usize::from(flag("use_scale", false)) + usize::from(concat)
        }
        "AdditiveAttention" => usize::from(flag("use_scale", true)),
        // query, key, (gate,) value and output projections (MultiHeadAttention,
        // GroupQueryAttention).
        _ => (4 + usize::from(flag("use_gate", false))) * (1 + usize::from(flag("use_bias", true))),
    };
    Some(WeightCount {
        total,
        trainable: total,
    })
}

/// The call options both kinds of attention read.
struct CallOptions {
    causal: bool,
    /// `return_attention_scores=True`: the call's second output is the attention
    /// distribution (the softmax, before dropout).
    scores: bool,
}

/// Reads `use_causal_mask` and `return_attention_scores`; anything more is rejected.
fn call_options(kwargs: &Map<String, Value>) -> Result<CallOptions, String> {
    let mut options = CallOptions {
        causal: false,
        scores: false,
    };
    for (key, value) in kwargs {
        match (key.as_str(), value) {
            ("use_causal_mask", Value::Bool(b)) => options.causal = *b,
            ("return_attention_scores", Value::Bool(b)) => options.scores = *b,
            _ => {
                return Err(format!(
                    "is called with keyword argument '{}'={}, which is not supported",
                    esc(key),
                    esc(&value.to_string())
                ))
            }
        }
    }
    Ok(options)
}

/// Steps under construction, each referred to by its [`Source`].
#[derive(Default)]
struct Steps(Vec<Step>);

impl Steps {
    fn push(&mut self, suffix: Option<&str>, op: Op, inputs: Vec<Source>) -> Source {
        self.0.push(Step::new(suffix, op, inputs));
        Source::Step(self.0.len() - 1)
    }

    fn reshape(&mut self, suffix: &str, from: Source, shape: &[usize]) -> Result<Source, String> {
        let target = shape
            .iter()
            .map(|&d| i64::try_from(d).map_err(|_| "axis too long".to_string()))
            .collect::<Result<Vec<i64>, String>>()?;
        Ok(self.push(Some(suffix), Op::Reshape { target }, vec![from]))
    }

    fn transpose(&mut self, suffix: &str, from: Source, perm: Vec<usize>) -> Source {
        self.push(Some(suffix), Op::Transpose { perm }, vec![from])
    }

    /// The steps, the last one the call's output, followed by `scores` (the attention
    /// distribution) when the call returns it.
    fn finish(mut self, scores: Option<Source>) -> Vec<Step> {
        if let Some(Source::Step(s)) = scores {
            let last = self.0.len() - 1;
            self.0[last].output = Some(0);
            self.0[s].output = Some(1);
        }
        self.0
    }
}

/// The scalar value of a weight stored with shape `()` (or `[1]`).
fn scalar(name: &str, w: Option<&Weights>) -> Result<f32, String> {
    match w {
        Some(w) if w.data.len() == 1 => Ok(w.data[0]),
        Some(w) => Err(format!(
            "weight '{name}' has shape {:?}, expected a scalar",
            w.shape
        )),
        None => Err(format!("missing weight '{name}'")),
    }
}

/// Axis permutation swapping the last two of `rank` axes.
fn swap_last(rank: usize) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..rank).collect();
    perm.swap(rank - 2, rank - 1);
    perm
}

impl LayerKind for DenseAttention {
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.use_scale {
            names.push("scale");
        }
        if self.concat {
            names.push("concat_score_weight");
        }
        names
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        self.call_steps(inputs, weights, &Map::new())
    }

    fn call_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        kwargs: &Map<String, Value>,
    ) -> Result<Vec<Step>, String> {
        let options = call_options(kwargs)?;
        let (q, v, k) = match inputs {
            [q, v] => (*q, *v, *v),
            [q, v, k] => (*q, *v, *k),
            _ => {
                return Err(format!(
                    "is called on {} tensors; it takes [query, value] or [query, value, key]",
                    inputs.len()
                ))
            }
        };
        let rank = q.len();
        let batch = &q[..rank.saturating_sub(2)];
        if rank < 2 || v.len() != rank || k.len() != rank {
            return Err(format!(
                "needs query, value and key of one rank (batch, steps, features), got shapes \
                 {q:?}, {v:?}, {k:?}"
            ));
        }
        let (tv, features) = (k[rank - 2], q[rank - 1]);
        if k[rank - 1] != features || v[rank - 2] != tv || &k[..rank - 2] != batch {
            return Err(format!(
                "query {q:?}, value {v:?} and key {k:?} do not fit together (key needs the \
                 query's features and the value's steps)"
            ));
        }
        let key = if inputs.len() == 3 {
            Source::Input(2)
        } else {
            Source::Input(1)
        };
        let mut steps = Steps::default();
        let kt = steps.transpose("key_transposed", key, swap_last(rank));
        let mut weights = weights.iter();
        let scale = if self.use_scale { weights.next() } else { None };
        let mut scale_scores = None;
        let scores_op = if self.additive {
            let scale = match scale {
                Some(w) if w.data.len() == features => Some(w.data.clone()),
                Some(w) => {
                    return Err(format!(
                        "weight 'scale' has shape {:?}, expected [{features}]",
                        w.shape
                    ))
                }
                None => None,
            };
            Op::AdditiveScore {
                pre: None,
                scale,
                post: None,
            }
        } else if self.concat {
            let pre = scale.map(|w| scalar("scale", Some(w))).transpose()?;
            let post = scalar("concat_score_weight", weights.next())?;
            Op::AdditiveScore {
                pre,
                scale: None,
                post: Some(post),
            }
        } else {
            scale_scores = scale.map(|w| scalar("scale", Some(w))).transpose()?;
            Op::MatMul
        };
        let scores = steps.push(Some("scores"), scores_op, vec![Source::Input(0), kt]);
        let softmax = Op::AttentionSoftmax {
            scale: scale_scores,
            causal: options.causal,
            window: None,
        };
        let weights = steps.push(Some("softmax"), softmax, vec![scores]);
        steps.push(None, Op::MatMul, vec![weights, Source::Input(1)]);
        Ok(steps.finish(options.scores.then_some(weights)))
    }
}

impl MultiHead {
    /// Keras's default `attention_axes` for an input of `rank` axes (batch excluded) are
    /// all but the last; others are not supported.
    fn check_axes(&self, rank: usize) -> Result<(), String> {
        let Some(axes) = &self.attention_axes else {
            return Ok(());
        };
        // Keras axes count the batch axis; negative ones count from the projected
        // tensor's end (`rank + 2` axes with the batch and the head axis).
        let projected = rank as i64 + 2;
        let mut resolved: Vec<i64> = axes
            .iter()
            .map(|&a| if a < 0 { projected - 1 + a } else { a })
            .collect();
        resolved.sort_unstable();
        let default: Vec<i64> = (1..rank as i64).collect();
        if resolved != default {
            return Err(format!(
                "option 'attention_axes'={axes:?} is not supported (only the default, every \
                 axis but the batch and the features: {default:?})"
            ));
        }
        Ok(())
    }

    /// A projection kernel (`[d, H, dim]`, output `[H, dim, *out]`) as a Dense kernel
    /// `[rows, cols]`; `expected` is its Keras shape.
    fn kernel(name: &str, w: &Weights, expected: &[usize], cols: usize) -> Result<Weights, String> {
        check(name, "kernel", w, expected)?;
        let rows = w.data.len() / cols.max(1);
        Weights::new(vec![rows, cols], w.data.clone())
    }

    fn bias(
        name: &str,
        w: Option<&Weights>,
        expected: &[usize],
    ) -> Result<Option<Weights>, String> {
        let Some(b) = w else {
            return Ok(None);
        };
        check(name, "bias", b, expected)?;
        Ok(Some(Weights::new(vec![numel(expected)], b.data.clone())?))
    }
}

fn check(sublayer: &str, what: &str, w: &Weights, expected: &[usize]) -> Result<(), String> {
    if w.shape != expected {
        return Err(format!(
            "weight '{sublayer}/{what}' has shape {:?}, expected {expected:?} for these inputs",
            w.shape
        ));
    }
    Ok(())
}

impl MultiHead {
    /// The projections, in the order Keras creates (and stores) their weights.
    fn sublayers(&self) -> Vec<&'static str> {
        if self.use_gate {
            vec!["query", "key", "gate", "value", "attention_output"]
        } else {
            vec!["query", "key", "value", "attention_output"]
        }
    }
}

impl LayerKind for MultiHead {
    fn weight_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for sublayer in self.sublayers() {
            let (kernel, bias) = match sublayer {
                "query" => ("query/kernel", "query/bias"),
                "key" => ("key/kernel", "key/bias"),
                "gate" => ("gate/kernel", "gate/bias"),
                "value" => ("value/kernel", "value/bias"),
                _ => ("attention_output/kernel", "attention_output/bias"),
            };
            names.push(kernel);
            if self.use_bias {
                names.push(bias);
            }
        }
        names
    }

    fn weight_groups(&self) -> Vec<String> {
        if self.grouped {
            // GroupQueryAttention has no public properties for its sub-layers.
            return self
                .sublayers()
                .iter()
                .map(|s| match *s {
                    "attention_output" => "_output_dense".to_string(),
                    s => format!("_{s}_dense"),
                })
                .collect();
        }
        // Keras 3.0.0-3.0.2 and tf_keras name the groups after the private attributes.
        self.sublayers()
            .iter()
            .map(|s| match *s {
                "gate" => "_gate_dense|gate_dense".to_string(),
                "attention_output" => "output_dense|_output_dense".to_string(),
                s => format!("{s}_dense|_{s}_dense"),
            })
            .collect()
    }

    fn tensor_arguments(&self) -> &'static [&'static str] {
        &["query", "value", "key"]
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        self.call_steps(inputs, weights, &Map::new())
    }

    fn call_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        kwargs: &Map<String, Value>,
    ) -> Result<Vec<Step>, String> {
        self.multi_head_steps(inputs, weights, kwargs, &[])
    }

    fn input_masked_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        kwargs: &Map<String, Value>,
        masked: &[bool],
    ) -> Option<Result<Vec<Step>, String>> {
        Some(self.multi_head_steps(inputs, weights, kwargs, masked))
    }

    fn clears_input_masks(&self) -> bool {
        !self.grouped
    }
}

impl MultiHead {
    /// The steps of a call; `masked` flags the call tensors (query, value, key) whose
    /// Keras masks follow them in `inputs` (empty: none).
    fn multi_head_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        kwargs: &Map<String, Value>,
        masked: &[bool],
    ) -> Result<Vec<Step>, String> {
        let options = call_options(kwargs)?;
        let tensors = masked
            .len()
            .max(inputs.len() - masked.iter().filter(|&&m| m).count());
        let (inputs, mask_shapes) = inputs.split_at(tensors.min(inputs.len()));
        // (role, input index) of each mask.
        let masks: Vec<(usize, usize)> = masked
            .iter()
            .enumerate()
            .filter(|(_, &m)| m)
            .map(|(role, _)| role)
            .zip(tensors..)
            .collect();
        let (q, v, k) = match inputs {
            [q, v] => (*q, *v, *v),
            [q, v, k] => (*q, *v, *k),
            _ => {
                return Err(format!(
                    "is called on {} tensors; it takes query, value and an optional key",
                    inputs.len()
                ))
            }
        };
        let rank = q.len();
        if rank < 2 || v.len() != rank || k.len() != rank {
            return Err(format!(
                "needs query, value and key of one rank (batch, steps..., features), got \
                 shapes {q:?}, {v:?}, {k:?}"
            ));
        }
        if v[..rank - 1] != k[..rank - 1] {
            return Err(format!(
                "value {v:?} and key {k:?} must agree in every axis but the last"
            ));
        }
        self.check_axes(rank)?;
        if self.grouped && rank != 2 {
            return Err(format!(
                "needs query, value and key of shape [steps, features] (batch excluded), got \
                 {q:?}, {v:?}, {k:?}"
            ));
        }
        if rank > 2 && (options.causal || self.sliding_window.is_some()) {
            return Err(
                "use_causal_mask or sliding_window with more than one attention axis is not \
                 supported"
                    .into(),
            );
        }
        let (h, kd, vd) = (self.heads, self.key_dim, self.value_dim);
        let (tq, tv) = (numel(&q[..rank - 1]), numel(&v[..rank - 1]));
        let (dq, dv, dk) = (q[rank - 1], v[rank - 1], k[rank - 1]);
        // Query positions `i >= tv + window - 1` see no key at all; Keras then returns the
        // mean of the values or zeros depending on its code path.
        if let Some(w) = self.sliding_window.filter(|&w| tq >= tv + w) {
            return Err(format!(
                "option 'sliding_window'={w} with {tq} query steps and {tv} key steps leaves \
                 query steps {} (counting from 0) and later with no key to attend to, which is not supported",
                tv + w - 1
            ));
        }
        let out_dims = self.output_shape.clone().unwrap_or_else(|| vec![dq]);
        let d_out = numel(&out_dims);

        let mut w = weights.iter();
        let mut next = |bias: bool| {
            if bias && !self.use_bias {
                None
            } else {
                w.next()
            }
        };
        let (qk, qb) = (next(false), next(true));
        let (kk, kb) = (next(false), next(true));
        let gate = if self.use_gate {
            Some((next(false), next(true)))
        } else {
            None
        };
        let (vk, vb) = (next(false), next(true));
        let (ok, ob) = (next(false), next(true));
        let (Some(qk), Some(kk), Some(vk), Some(ok)) = (qk, kk, vk, ok) else {
            return Err("missing weights".into());
        };
        // 1 / sqrt(key_dim) folded into the query projection.
        let inv_sqrt = 1.0 / (kd as f64).sqrt();
        let scaled = |w: Weights| Weights {
            data: w
                .data
                .iter()
                .map(|&x| (f64::from(x) * inv_sqrt) as f32)
                .collect(),
            shape: w.shape,
        };
        let mut with_out = vec![h, vd];
        with_out.extend(&out_dims);
        let q_kernel = scaled(Self::kernel("query", qk, &[dq, h, kd], h * kd)?);
        let q_bias = Self::bias("query", qb, &[h, kd])?.map(scaled);
        let kvh = self.kv_heads;
        let k_kernel = Self::kernel("key", kk, &[dk, kvh, kd], kvh * kd)?;
        let k_bias = Self::bias("key", kb, &[kvh, kd])?;
        let v_kernel = Self::kernel("value", vk, &[dv, kvh, vd], kvh * vd)?;
        let v_bias = Self::bias("value", vb, &[kvh, vd])?;
        let o_kernel = Self::kernel("attention_output", ok, &with_out, d_out)?;
        let o_bias = Self::bias("attention_output", ob, &out_dims)?;
        let gate = match gate {
            Some((Some(gk), gb)) => Some(Op::Dense {
                kernel: Self::kernel("gate", gk, &[dq, h, vd], h * vd)?,
                bias: Self::bias("gate", gb, &[h, vd])?,
                rescale: None,
                activation: Activation::Sigmoid,
            }),
            Some((None, _)) => return Err("missing weights".into()),
            None => None,
        };
        let dense = |kernel, bias| Op::Dense {
            kernel,
            bias,
            rescale: None,
            activation: Activation::Linear,
        };

        let mut steps = Steps::default();
        // Several attention axes attend jointly: flatten them into one.
        let flat = |steps: &mut Steps, name: &str, k: usize, t: usize, d: usize| {
            if rank > 2 {
                steps.reshape(name, Source::Input(k), &[t, d])
            } else {
                Ok(Source::Input(k))
            }
        };
        let query_in = flat(&mut steps, "query_flat", 0, tq, dq)?;
        let value_in = flat(&mut steps, "value_flat", 1, tv, dv)?;
        let key_in = if inputs.len() == 3 {
            flat(&mut steps, "key_flat", 2, tv, dk)?
        } else {
            value_in
        };

        let query = steps.push(Some("query"), dense(q_kernel, q_bias), vec![query_in]);
        let key = steps.push(Some("key"), dense(k_kernel, k_bias), vec![key_in]);
        let value = steps.push(Some("value"), dense(v_kernel, v_bias), vec![value_in]);
        // [T, H * dim] -> [H, T, dim] (keys -> [H, dim, T]).
        let query = steps.reshape("query_heads", query, &[tq, h, kd])?;
        let mut query = steps.transpose("query_by_head", query, vec![1, 0, 2]);
        let key = steps.reshape("key_heads", key, &[tv, kvh, kd])?;
        let key = steps.transpose("key_by_head", key, vec![1, 2, 0]);
        let value = steps.reshape("value_heads", value, &[tv, kvh, vd])?;
        let value = steps.transpose("value_by_head", value, vec![1, 0, 2]);
        // Grouped heads: query head `u` reads key/value head `u / group`, so the query heads
        // of a group, consecutive in [H, tq, kd], are one [group * tq, kd] matrix against
        // their shared key (reshapes only rename memory).
        let group = h / kvh;
        if group > 1 {
            query = steps.reshape("query_groups", query, &[kvh, group * tq, kd])?;
        }
        let mut scores = steps.push(Some("scores"), Op::MatMul, vec![query, key]);
        if group > 1 {
            scores = steps.reshape("scores_by_head", scores, &[h, tq, tv])?;
        }
        // The Keras masks of query (`[1, tq, 1]`), value and key (`[1, 1, tv]`), ANDed.
        let mut allowed = None;
        if !masks.is_empty() {
            if rank > 2 || options.causal || self.sliding_window.is_some() {
                return Err(
                    "Keras masks on its inputs together with use_causal_mask, sliding_window                      or more than one attention axis are not supported"
                        .into(),
                );
            }
            for (n, &(role, at)) in masks.iter().enumerate() {
                let (name, shape, len) = match role {
                    0 => ("query_mask", [1, tq, 1], tq),
                    1 => ("value_mask", [1, 1, tv], tv),
                    _ => ("key_mask", [1, 1, tv], tv),
                };
                if mask_shapes.get(n).copied() != Some(&[len][..]) {
                    return Err(format!(
                        "the Keras mask of its {} has shape {:?}, expected [{len}]",
                        &name[..name.len() - 5],
                        mask_shapes.get(n)
                    ));
                }
                let m = steps.reshape(name, Source::Input(at), &shape)?;
                allowed = Some(match allowed {
                    None => m,
                    Some(prev) => steps.push(
                        Some(&format!("mask_and_{n}")),
                        Op::Merge {
                            kind: crate::ir::MergeKind::Multiply,
                        },
                        vec![prev, m],
                    ),
                });
            }
        }
        let mode = MaskMode {
            replace: self.keras3 || self.robust,
            zero: self.keras3 && (self.dropout || options.scores),
        };
        if let Some(m) = allowed {
            // (m - 1) * 1e9: 0 where allowed, -1e9 where masked.
            let bias = steps.push(
                Some("mask_bias"),
                Op::Affine {
                    center: Some(vec![1.0]),
                    scale: vec![-crate::ir::MASKED_SCORE],
                    shift: vec![0.0],
                    inner: 1,
                },
                vec![m],
            );
            if mode.replace {
                scores = steps.push(
                    Some("scores_kept"),
                    Op::Merge {
                        kind: crate::ir::MergeKind::Multiply,
                    },
                    vec![scores, m],
                );
            }
            scores = steps.push(
                Some("scores_masked"),
                Op::Merge {
                    kind: crate::ir::MergeKind::Add,
                },
                vec![scores, bias],
            );
        }
        let softmax = Op::AttentionSoftmax {
            scale: None,
            causal: options.causal,
            window: self.sliding_window,
        };
        let mut probs = steps.push(Some("softmax"), softmax, vec![scores]);
        if let (Some(m), true) = (allowed, mode.zero) {
            probs = steps.push(
                Some("softmax_masked"),
                Op::Merge {
                    kind: crate::ir::MergeKind::Multiply,
                },
                vec![probs, m],
            );
        }
        // Keras returns the scores as [heads, *query axes, *key axes].
        let returned = match options.scores {
            false => None,
            true if rank == 2 => Some(probs),
            true => {
                let mut shape = vec![h];
                shape.extend(&q[..rank - 1]);
                shape.extend(&v[..rank - 1]);
                Some(steps.reshape("attention_scores", probs, &shape)?)
            }
        };
        let grouped_probs = if group > 1 {
            steps.reshape("probs_groups", probs, &[kvh, group * tq, tv])?
        } else {
            probs
        };
        let mut context = steps.push(Some("context"), Op::MatMul, vec![grouped_probs, value]);
        if group > 1 {
            context = steps.reshape("context_heads", context, &[h, tq, vd])?;
        }
        let context = steps.transpose("context_by_step", context, vec![1, 0, 2]);
        let mut context = steps.reshape("context_flat", context, &[tq, h * vd])?;
        if let Some(gate) = gate {
            let gate = steps.push(Some("gate"), gate, vec![query_in]);
            let kind = crate::ir::MergeKind::Multiply;
            context = steps.push(Some("gated"), Op::Merge { kind }, vec![context, gate]);
        }
        let mut out_shape: Vec<usize> = q[..rank - 1].to_vec();
        out_shape.extend(&out_dims);
        if out_shape == [tq, d_out] {
            steps.push(None, dense(o_kernel, o_bias), vec![context]);
        } else {
            let out = steps.push(Some("output"), dense(o_kernel, o_bias), vec![context]);
            let target = out_shape
                .iter()
                .map(|&d| i64::try_from(d).map_err(|_| "axis too long".to_string()))
                .collect::<Result<Vec<i64>, String>>()?;
            steps.push(None, Op::Reshape { target }, vec![out]);
        }
        Ok(steps.finish(returned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keras::config::KerasVersion;
    use crate::keras::layers::{order_arguments, parse};

    fn kind(class: &str, config: &str) -> Result<Box<dyn LayerKind>, Vec<String>> {
        let mut e = LayerEntry::new(
            "att".into(),
            class.into(),
            serde_json::from_str(config).unwrap(),
        );
        e.module = Some("keras.layers".into());
        parse(&e, KerasVersion::KERAS3)
    }

    fn zeros(shape: &[usize]) -> Weights {
        Weights::new(shape.to_vec(), vec![0.0; numel(shape)]).unwrap()
    }

    fn kwargs(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap()
    }

    fn mha_weights(d: usize, h: usize, kd: usize) -> Vec<Weights> {
        vec![
            zeros(&[d, h, kd]),
            zeros(&[h, kd]),
            zeros(&[d, h, kd]),
            zeros(&[h, kd]),
            zeros(&[d, h, kd]),
            zeros(&[h, kd]),
            zeros(&[h, kd, d]),
            zeros(&[d]),
        ]
    }

    #[test]
    fn keyword_tensors_follow_the_call_signature() {
        let names = ["query", "value", "key"];
        assert_eq!(order_arguments(&names, 2, &[]).unwrap(), vec![0, 1]);
        let kw = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // mha(q, v, key=k); mha(q, value=v); mha(key=k, query=q, value=v).
        assert_eq!(
            order_arguments(&names, 2, &kw(&["key"])).unwrap(),
            vec![0, 1, 2]
        );
        assert_eq!(
            order_arguments(&names, 1, &kw(&["value"])).unwrap(),
            vec![0, 1]
        );
        assert_eq!(
            order_arguments(&names, 0, &kw(&["key", "query", "value"])).unwrap(),
            vec![1, 2, 0]
        );
        let err = order_arguments(&names, 1, &kw(&["attention_mask"])).unwrap_err();
        assert!(err.contains("'attention_mask'"), "{err}");
        let err = order_arguments(&names, 1, &kw(&["key"])).unwrap_err();
        assert!(err.contains("without its argument 'value'"), "{err}");
        let err = order_arguments(&names, 2, &kw(&["value"])).unwrap_err();
        assert!(err.contains("both by position and by keyword"), "{err}");
        let err = order_arguments(&[], 1, &kw(&["value"])).unwrap_err();
        assert!(err.contains("tensor as keyword argument 'value'"), "{err}");
    }

    #[test]
    fn mha_decomposes_into_projections_and_products() {
        let mha = kind("MultiHeadAttention", r#"{"num_heads": 2, "key_dim": 3}"#).unwrap();
        assert_eq!(
            mha.weight_groups(),
            [
                "query_dense|_query_dense",
                "key_dense|_key_dense",
                "value_dense|_value_dense",
                "output_dense|_output_dense"
            ]
        );
        let steps = mha
            .call_steps(
                &[&[5, 4], &[7, 4]],
                &mha_weights(4, 2, 3),
                &kwargs(r#"{"use_causal_mask": true}"#),
            )
            .unwrap();
        let suffixes: Vec<Option<&str>> = steps.iter().map(|s| s.suffix.as_deref()).collect();
        assert_eq!(suffixes.last(), Some(&None));
        let softmax = steps
            .iter()
            .find(|s| s.suffix.as_deref() == Some("softmax"));
        assert_eq!(
            softmax.map(|s| &s.op),
            Some(&Op::AttentionSoftmax {
                scale: None,
                causal: true,
                window: None
            })
        );
    }

    #[test]
    fn mha_options_that_are_not_supported_are_named() {
        let gated = kind(
            "MultiHeadAttention",
            r#"{"num_heads": 2, "key_dim": 3, "use_gate": true, "use_bias": false}"#,
        )
        .unwrap();
        assert_eq!(
            gated.weight_names(),
            [
                "query/kernel",
                "key/kernel",
                "gate/kernel",
                "value/kernel",
                "attention_output/kernel"
            ]
        );
        let err = kind("MultiHeadAttention", r#"{"num_heads": 2}"#).unwrap_err();
        assert!(err[0].contains("'key_dim' is missing"), "{err:?}");

        let axes = kind(
            "MultiHeadAttention",
            r#"{"num_heads": 2, "key_dim": 3, "attention_axes": [2]}"#,
        )
        .unwrap();
        let err = axes
            .steps(&[&[3, 5, 4], &[3, 5, 4]], &mha_weights(4, 2, 3))
            .unwrap_err();
        assert!(err.contains("'attention_axes'"), "{err}");
        // The default, written out, is fine.
        let default = kind(
            "MultiHeadAttention",
            r#"{"num_heads": 2, "key_dim": 3, "attention_axes": [1]}"#,
        )
        .unwrap();
        assert!(default
            .steps(&[&[5, 4], &[5, 4]], &mha_weights(4, 2, 3))
            .is_ok());

        let mha = kind("MultiHeadAttention", r#"{"num_heads": 2, "key_dim": 3}"#).unwrap();
        let call = |kw: &str| {
            mha.call_steps(&[&[5, 4], &[5, 4]], &mha_weights(4, 2, 3), &kwargs(kw))
                .unwrap_err()
        };
        assert!(call(r#"{"use_flash": true}"#).contains("'use_flash'"));
        let err = mha
            .call_steps(
                &[&[2, 5, 4], &[2, 5, 4]],
                &mha_weights(4, 2, 3),
                &kwargs(r#"{"use_causal_mask": true}"#),
            )
            .unwrap_err();
        assert!(err.contains("use_causal_mask"), "{err}");
        let window = kind(
            "MultiHeadAttention",
            r#"{"num_heads": 2, "key_dim": 3, "sliding_window": 2}"#,
        )
        .unwrap();
        assert!(window
            .steps(&[&[5, 4], &[4, 4]], &mha_weights(4, 2, 3))
            .is_ok());
        let err = window
            .steps(&[&[6, 4], &[4, 4]], &mha_weights(4, 2, 3))
            .unwrap_err();
        assert!(
            err.contains("'sliding_window'=2") && err.contains("steps 5"),
            "{err}"
        );
        let err = mha
            .steps(&[&[5, 4], &[5, 4]], &mha_weights(4, 2, 2))
            .unwrap_err();
        assert!(err.contains("query/kernel"), "{err}");
    }

    #[test]
    fn gqa_shares_key_and_value_heads_within_groups() {
        let gqa = kind(
            "GroupQueryAttention",
            r#"{"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2,
                "flash_attention": null, "dropout": 0.0}"#,
        )
        .unwrap();
        assert_eq!(
            gqa.weight_groups(),
            [
                "_query_dense",
                "_key_dense",
                "_value_dense",
                "_output_dense"
            ]
        );
        assert!(!gqa.clears_input_masks());
        let (d, kv) = (5, [zeros(&[5, 2, 3]), zeros(&[2, 3])]);
        let mut weights = vec![zeros(&[d, 4, 3]), zeros(&[4, 3])];
        weights.extend(kv.iter().cloned());
        weights.extend(kv.iter().cloned());
        weights.extend([zeros(&[4, 3, d]), zeros(&[d])]);
        let steps = gqa
            .call_steps(
                &[&[6, 5], &[7, 5]],
                &weights,
                &kwargs(r#"{"return_attention_scores": true}"#),
            )
            .unwrap();
        let op = |suffix: &str| {
            steps
                .iter()
                .find(|s| s.suffix.as_deref() == Some(suffix))
                .map(|s| s.op.clone())
        };
        // Query heads 2k and 2k + 1 read key/value head k: [2, 2 * 6, 3] x [2, 3, 7].
        assert_eq!(
            op("query_groups"),
            Some(Op::Reshape {
                target: vec![2, 12, 3]
            })
        );
        assert_eq!(
            op("scores_by_head"),
            Some(Op::Reshape {
                target: vec![4, 6, 7]
            })
        );
        assert_eq!(outputs(&steps)[1].0, Some("softmax"));
        // As many key/value heads as query heads: MultiHeadAttention's steps exactly.
        let mha_like = kind(
            "GroupQueryAttention",
            r#"{"head_dim": 3, "num_query_heads": 2, "num_key_value_heads": 2}"#,
        )
        .unwrap();
        let steps = mha_like
            .steps(&[&[6, 4], &[6, 4]], &mha_weights(4, 2, 3))
            .unwrap();
        assert!(steps
            .iter()
            .all(|s| s.suffix.as_deref() != Some("query_groups")));

        let err = kind(
            "GroupQueryAttention",
            r#"{"head_dim": 3, "num_query_heads": 3, "num_key_value_heads": 2}"#,
        )
        .unwrap_err();
        assert!(err[0].contains("'num_query_heads'=3"), "{err:?}");
        let err = kind(
            "GroupQueryAttention",
            r#"{"head_dim": 3, "num_query_heads": 2, "num_key_value_heads": 2, "attention_axes": [1]}"#,
        )
        .unwrap_err();
        assert!(err[0].contains("'attention_axes'"), "{err:?}");
        let err = mha_like
            .steps(&[&[3, 6, 4], &[3, 6, 4]], &mha_weights(4, 2, 3))
            .unwrap_err();
        assert!(err.contains("[steps, features]"), "{err}");
    }

    /// The steps marked as the call's outputs, by output index: (suffix, op).
    fn outputs(steps: &[Step]) -> Vec<(Option<&str>, &Op)> {
        let mut marked: Vec<(usize, Option<&str>, &Op)> = steps
            .iter()
            .filter_map(|s| s.output.map(|k| (k, s.suffix.as_deref(), &s.op)))
            .collect();
        marked.sort_by_key(|m| m.0);
        marked.into_iter().map(|(_, s, op)| (s, op)).collect()
    }

    #[test]
    fn return_attention_scores_adds_the_softmax_as_second_output() {
        let scores = kwargs(r#"{"return_attention_scores": true, "use_causal_mask": true}"#);
        for class in ["Attention", "AdditiveAttention"] {
            let att = kind(class, r#"{"use_scale": false}"#).unwrap();
            let steps = att.call_steps(&[&[5, 3], &[7, 3]], &[], &scores).unwrap();
            let softmax = Op::AttentionSoftmax {
                scale: None,
                causal: true,
                window: None,
            };
            assert_eq!(
                outputs(&steps),
                [(None, &Op::MatMul), (Some("softmax"), &softmax)],
                "{class}"
            );
            // Without it, nothing is marked: the last step is the only output.
            let plain = kwargs(r#"{"return_attention_scores": false}"#);
            let steps = att.call_steps(&[&[5, 3], &[7, 3]], &[], &plain).unwrap();
            assert!(outputs(&steps).is_empty());
        }

        let mha = kind("MultiHeadAttention", r#"{"num_heads": 2, "key_dim": 3}"#).unwrap();
        let steps = mha
            .call_steps(&[&[5, 4], &[7, 4]], &mha_weights(4, 2, 3), &scores)
            .unwrap();
        let marked = outputs(&steps);
        assert_eq!(marked.len(), 2);
        assert_eq!(marked[0].0, None);
        assert_eq!(marked[1].0, Some("softmax"));
        // Several attention axes: the scores are reshaped to [heads, *query, *key axes].
        let steps = mha
            .call_steps(
                &[&[3, 4, 4], &[3, 4, 4]],
                &mha_weights(4, 2, 3),
                &kwargs(r#"{"return_attention_scores": true}"#),
            )
            .unwrap();
        let marked = outputs(&steps);
        assert_eq!(marked[1].0, Some("attention_scores"));
        assert_eq!(
            marked[1].1,
            &Op::Reshape {
                target: vec![2, 3, 4, 3, 4]
            }
        );
        let err = mha
            .call_steps(
                &[&[5, 4], &[5, 4]],
                &mha_weights(4, 2, 3),
                &kwargs(r#"{"return_attention_scores": "yes"}"#),
            )
            .unwrap_err();
        assert!(err.contains("'return_attention_scores'"), "{err}");
    }

    #[test]
    fn attention_scores_by_mode() {
        let ops = |class: &str, config: &str, weights: &[Weights]| -> Vec<Op> {
            kind(class, config)
                .unwrap()
                .steps(&[&[5, 3], &[7, 3]], weights)
                .unwrap()
                .into_iter()
                .map(|s| s.op)
                .collect()
        };
        let scalar = |v: f32| Weights::new(vec![], vec![v]).unwrap();
        let dot = ops("Attention", r#"{"use_scale": true}"#, &[scalar(2.0)]);
        assert!(matches!(dot[1], Op::MatMul));
        assert!(matches!(
            &dot[2],
            Op::AttentionSoftmax {
                scale: Some(s),
                causal: false,
                window: None
            } if *s == 2.0
        ));
        let concat = ops(
            "Attention",
            r#"{"use_scale": true, "score_mode": "concat"}"#,
            &[scalar(2.0), scalar(3.0)],
        );
        assert_eq!(
            concat[1],
            Op::AdditiveScore {
                pre: Some(2.0),
                scale: None,
                post: Some(3.0)
            }
        );
        let additive = ops(
            "AdditiveAttention",
            "{}",
            &[Weights::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap()],
        );
        assert_eq!(
            additive[1],
            Op::AdditiveScore {
                pre: None,
                scale: Some(vec![1.0, 2.0, 3.0]),
                post: None
            }
        );
        let err = kind("Attention", r#"{"score_mode": "general"}"#).unwrap_err();
        assert!(err[0].contains("'score_mode'"), "{err:?}");
        let att = kind("Attention", "{}").unwrap();
        let err = att.steps(&[&[5, 3]], &[]).unwrap_err();
        assert!(err.contains("[query, value]"), "{err}");
        let err = att.steps(&[&[5, 3], &[7, 4]], &[]).unwrap_err();
        assert!(err.contains("do not fit"), "{err}");
    }
}
