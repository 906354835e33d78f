//! `EinsumDense` (Keras 3 `keras/src/layers/core/einsum_dense.py`, tf_keras
//! `layers/core/einsum_dense.py`): `activation(einsum(equation, x, kernel) + bias)`, for
//! the equations that are a dense layer over some axes: `ab,bc->ac`, `abc,cd->abd`,
//! `abc,cde->abde` and `abcd,cde->abe` (MultiHeadAttention's projections), `...b,bc->...c`,
//! `bc...,cd->bd...`, `ibd,nd->ibn`, `i,d->id`, and any other where every axis letter is
//! exactly one of
//!
//! - free: in the input and the output, not the kernel (the batch axis is one, first in
//!   both);
//! - contracted: in the input and the kernel, not the output;
//! - new: in the kernel and the output, not the input.
//!
//! Such a layer is `Transpose` (free axes first, `NAME/input_order`, only when the
//! contracted axes are not already last) and `Reshape` (`NAME/flat`) to `[*free,
//! contracted]`, a `Dense` with the kernel reordered to `[contracted, new]` (the layer's own
//! node), `Reshape` (`NAME/unflat`) and `Transpose` (`NAME/output_order`) to the output's
//! axes, so it runs at Dense speed. Keras's bias (shaped over the output axes from the first
//! `bias_axes` letter on, 1 elsewhere) is the Dense bias when it varies only along new axes,
//! else an `Affine` (`NAME/bias`) after the output order; the activation goes into the
//! Dense unless it follows such a bias or works along an axis (`NAME/activation`).
//! Other equations (a letter on all three sides, summed input axes, repeated letters, an
//! output with no axis but the batch) are refused by name.

use serde_json::Value;

use super::{chain, single, LayerKind, Options, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{numel, Activation, Op, Weights};
use crate::keras::activation::{self, ActivationSpec};
use crate::keras::config::KerasVersion;

#[derive(Debug)]
struct EinsumDense {
    equation: Equation,
    /// `output_shape` without the batch and the elided axes; `None` where Keras infers.
    output_shape: Vec<Option<usize>>,
    bias_axes: Option<String>,
    activation: ActivationSpec,
}

/// Where the equation's `...` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elided {
    None,
    Left,
    Right,
}

/// A parsed equation `input,kernel->output` (letters only, `...` kept apart).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Equation {
    text: String,
    input: Vec<char>,
    kernel: Vec<char>,
    output: Vec<char>,
    elided: Elided,
}

fn letters(s: &str) -> Option<Vec<char>> {
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic())).then(|| s.chars().collect())
}

/// The three forms Keras accepts: `X,Y->Z`, `...X,Y->...Z` and `X...,Y->Z...` (X of at least
/// two letters).
fn parse_equation(text: &str) -> Option<Equation> {
    let (lhs, output) = text.split_once("->")?;
    let (input, kernel) = lhs.split_once(',')?;
    let (input, output, elided) = match (input.strip_prefix("..."), output.strip_prefix("...")) {
        (Some(i), Some(o)) => (i, o, Elided::Left),
        (None, None) => match (input.strip_suffix("..."), output.strip_suffix("...")) {
            (Some(i), Some(o)) if i.len() >= 2 => (i, o, Elided::Right),
            (None, None) => (input, output, Elided::None),
            _ => return None,
        },
        _ => return None,
    };
    Some(Equation {
        text: text.to_string(),
        input: letters(input)?,
        kernel: letters(kernel)?,
        output: letters(output)?,
        elided,
    })
}

pub(super) fn parse(options: &mut Options, version: KerasVersion) -> Option<Box<dyn LayerKind>> {
    options.ignore(&[
        "kernel_initializer",
        "bias_initializer",
        "kernel_regularizer",
        "bias_regularizer",
        "kernel_constraint",
        "bias_constraint",
        "lora_alpha",
    ]);
    options.only(
        "lora_rank",
        &Value::Null,
        " (merge the LoRA weights into the kernel before saving)",
    );
    options.only("quantization_config", &Value::Null, " (quantized layer)");
    options.only(
        "gptq_unpacked_column_size",
        &Value::Null,
        " (GPTQ-quantized layer)",
    );
    let equation = match options.get("equation") {
        Some(Value::String(text)) => match parse_equation(text) {
            Some(e) => Some(e),
            None => {
                options.problems.push(format!(
                    "option 'equation'=\"{}\" is not supported: Keras accepts only the forms \
                     X,Y->Z, ...X,Y->...Z and X...,Y->Z...",
                    esc(text)
                ));
                None
            }
        },
        Some(other) => {
            options.problems.push(format!(
                "option 'equation'={} must be a string",
                esc(&other.to_string())
            ));
            None
        }
        None => {
            options.problems.push("option 'equation' is missing".into());
            None
        }
    };
    let output_shape = match options.get("output_shape") {
        None => {
            options
                .problems
                .push("option 'output_shape' is missing".into());
            None
        }
        Some(v) => {
            let items: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                single => vec![single],
            };
            let dims: Option<Vec<Option<usize>>> = items
                .iter()
                .map(|d| match d {
                    Value::Null => Some(None),
                    d => d
                        .as_u64()
                        .filter(|&n| n > 0)
                        .and_then(|n| usize::try_from(n).ok())
                        .map(Some),
                })
                .collect();
            if dims.is_none() {
                options.problems.push(format!(
                    "option 'output_shape'={} must be positive integers or nulls",
                    esc(&v.to_string())
                ));
            }
            dims
        }
    };
    let bias_axes = match options.get("bias_axes") {
        None => Some(None),
        Some(Value::String(s)) if s.chars().all(|c| c.is_ascii_alphabetic()) => {
            Some(Some(s.clone()))
        }
        Some(other) => {
            options.problems.push(format!(
                "option 'bias_axes'={} must be letters of the output",
                esc(&other.to_string())
            ));
            None
        }
    };
    let activation = match options.get("activation") {
        None => ActivationSpec::linear(),
        Some(v) => match activation::parse(v, version) {
            Ok(a) => a,
            Err(e) => {
                options.problems.push(e);
                return None;
            }
        },
    };
    let equation = equation?;
    let bias_axes = bias_axes?;
    if let Some(axes) = &bias_axes {
        if let Some(c) = axes.chars().find(|c| !equation.output.contains(c)) {
            options.problems.push(format!(
                "option 'bias_axes'=\"{}\" names '{c}', which is not in the output of \
                 equation \"{}\"",
                esc(axes),
                esc(&equation.text)
            ));
            return None;
        }
    }
    Some(Box::new(EinsumDense {
        equation,
        output_shape: output_shape?,
        bias_axes,
        activation,
    }))
}

/// What an axis letter is to the computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Free,
    Contracted,
    New,
}

/// An axis of the input or the output: a letter, or the k-th elided axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Letter(char),
    Elided(usize),
}

/// The equation applied to an input of `input` shape (batch excluded).
#[derive(Debug)]
struct Plan {
    /// Per-sample input and output axes, with their lengths.
    input: Vec<(Label, usize)>,
    output: Vec<(Label, usize)>,
    /// The kernel letters with the length Keras gives each.
    kernel: Vec<(char, usize)>,
}

impl EinsumDense {
    fn refuse(&self, why: &str) -> String {
        format!(
            "equation \"{}\" is not supported: {why}",
            esc(&self.equation.text)
        )
    }

    /// Axis labels and lengths as Keras's `_analyze_split_string` resolves them.
    fn plan(&self, input: &[usize]) -> Result<Plan, String> {
        let eq = &self.equation;
        // Keras's input shape includes the batch axis.
        let full_rank = input.len() + 1;
        let elided = full_rank
            .checked_sub(eq.input.len())
            .filter(|&e| e == 0 || eq.elided != Elided::None)
            .ok_or_else(|| {
                format!(
                    "equation \"{}\" needs an input of rank {} (batch included), got {full_rank}",
                    esc(&eq.text),
                    eq.input.len()
                )
            })?;
        let ellipsis = (0..elided).map(Label::Elided);
        let spelled = |s: &[char]| s.iter().map(|&c| Label::Letter(c)).collect::<Vec<_>>();
        let (mut in_labels, mut out_labels): (Vec<Label>, Vec<Label>) = match eq.elided {
            Elided::Left => (
                ellipsis.clone().chain(spelled(&eq.input)).collect(),
                ellipsis.chain(spelled(&eq.output)).collect(),
            ),
            Elided::Right => (
                spelled(&eq.input)
                    .into_iter()
                    .chain(ellipsis.clone())
                    .collect(),
                spelled(&eq.output).into_iter().chain(ellipsis).collect(),
            ),
            Elided::None => (spelled(&eq.input), spelled(&eq.output)),
        };
        // The batch axis: first of both, never in the kernel.
        let batch = in_labels[0];
        if out_labels.first() != Some(&batch)
            || matches!(batch, Label::Letter(c) if eq.kernel.contains(&c))
        {
            return Err(self
                .refuse("the batch axis must come first in the output and not be in the kernel"));
        }
        in_labels.remove(0);
        out_labels.remove(0);
        if out_labels.is_empty() {
            return Err(self.refuse("an output with no axis besides the batch"));
        }
        for term in [&eq.input, &eq.kernel, &eq.output] {
            let mut seen = term.clone();
            seen.sort_unstable();
            if seen.windows(2).any(|w| w[0] == w[1]) {
                return Err(self.refuse("a letter repeated within one term"));
            }
        }
        for term in [&eq.input, &eq.kernel, &eq.output] {
            for &c in term {
                self.letter_role(c)?;
            }
        }
        let input_axes: Vec<(Label, usize)> =
            in_labels.into_iter().zip(input.iter().copied()).collect();
        let len_in = |l: Label| input_axes.iter().find(|(x, _)| *x == l).map(|a| a.1);
        // `output_shape` covers the output's letters after the batch (left-elided: its
        // letters only; right-elided: the letters before the ellipsis).
        // (A left ellipsis standing for no axis leaves the batch axis as the first letter.)
        let spelled_out: Vec<char> = if eq.elided == Elided::Left && elided > 0 {
            eq.output.clone()
        } else {
            eq.output[1..].to_vec()
        };
        if spelled_out.len() != self.output_shape.len() {
            return Err(format!(
                "option 'output_shape' has {} entries, equation \"{}\" needs {}",
                self.output_shape.len(),
                esc(&eq.text),
                spelled_out.len()
            ));
        }
        let given = |c: char| {
            spelled_out
                .iter()
                .position(|&x| x == c)
                .and_then(|i| self.output_shape[i])
        };
        let mut output = Vec::with_capacity(out_labels.len());
        for label in out_labels {
            let len = match label {
                Label::Letter(c) => len_in(label).or_else(|| given(c)),
                Label::Elided(_) => len_in(label),
            };
            let Some(len) = len else {
                return Err(format!(
                    "option 'output_shape' leaves the length of output axis '{}' unknown",
                    label_text(label)
                ));
            };
            if let (Label::Letter(c), Some(n)) = (label, len_in(label)) {
                if given(c).is_some_and(|g| g != n) {
                    return Err(format!(
                        "option 'output_shape' gives axis '{c}' length {}, the input has {n}",
                        given(c).unwrap_or(0)
                    ));
                }
            }
            output.push((label, len));
        }
        let len_out = |l: Label| output.iter().find(|(x, _)| *x == l).map(|a| a.1);
        let mut kernel = Vec::with_capacity(eq.kernel.len());
        for &c in &eq.kernel {
            let l = Label::Letter(c);
            let Some(len) = len_out(l).or_else(|| len_in(l)) else {
                return Err(self.refuse(&format!(
                    "kernel letter '{c}' is in neither the input nor the output"
                )));
            };
            kernel.push((c, len));
        }
        Ok(Plan {
            input: input_axes,
            output,
            kernel,
        })
    }

    /// The role of an axis of the input or output (elided axes are free).
    fn role(&self, plan: &Plan, label: Label) -> Result<Role, String> {
        let in_input = plan.input.iter().any(|a| a.0 == label);
        let in_output = plan.output.iter().any(|a| a.0 == label);
        let in_kernel = matches!(label, Label::Letter(c) if self.equation.kernel.contains(&c));
        self.classify(label, in_input, in_kernel, in_output)
    }

    /// The role of a letter, from the equation alone.
    fn letter_role(&self, c: char) -> Result<Role, String> {
        let eq = &self.equation;
        self.classify(
            Label::Letter(c),
            eq.input.contains(&c),
            eq.kernel.contains(&c),
            eq.output.contains(&c),
        )
    }

    fn classify(
        &self,
        label: Label,
        in_input: bool,
        in_kernel: bool,
        in_output: bool,
    ) -> Result<Role, String> {
        match (in_input, in_kernel, in_output) {
            (true, false, true) => Ok(Role::Free),
            (true, true, false) => Ok(Role::Contracted),
            (false, true, true) => Ok(Role::New),
            (true, true, true) => Err(self.refuse(&format!(
                "axis '{}' is in the input, the kernel and the output (a kernel per position)",
                label_text(label)
            ))),
            (true, false, false) => Err(self.refuse(&format!(
                "input axis '{}' is summed over (it is in neither the kernel nor the output)",
                label_text(label)
            ))),
            _ => Err(self.refuse(&format!(
                "axis '{}' is only in the output",
                label_text(label)
            ))),
        }
    }

    /// Keras's bias shape: the output's letters from the first of `bias_axes` on, their
    /// length where named and 1 elsewhere, then 1 per right-elided axis. Aligned with the
    /// output's last axes.
    fn bias_shape(&self, plan: &Plan) -> Option<Vec<usize>> {
        let axes = self.bias_axes.as_ref()?;
        let eq = &self.equation;
        let first = eq.output.iter().position(|c| axes.contains(*c))?;
        let mut shape: Vec<usize> = eq.output[first..]
            .iter()
            .map(|&c| {
                if axes.contains(c) {
                    plan.output
                        .iter()
                        .find(|a| a.0 == Label::Letter(c))
                        .map_or(0, |a| a.1)
                } else {
                    1
                }
            })
            .collect();
        if eq.elided == Elided::Right {
            let elided = plan
                .output
                .iter()
                .filter(|a| matches!(a.0, Label::Elided(_)))
                .count();
            shape.extend(std::iter::repeat_n(1, elided));
        }
        Some(shape)
    }
}

fn label_text(label: Label) -> String {
    match label {
        Label::Letter(c) => c.to_string(),
        Label::Elided(k) => format!("...[{k}]"),
    }
}

fn to_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// Row-major strides.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// `data` of `shape` with its axes reordered: output axis `k` is input axis `perm[k]`.
fn permute(data: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let st = strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; perm.len()];
    for _ in 0..numel(&out_shape) {
        let from: usize = idx.iter().zip(perm).map(|(&i, &p)| i * st[p]).sum();
        out.push(data[from]);
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            if idx[k] < out_shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// `bias` of `shape` (aligned with the last axes of `target`, 1 where it broadcasts)
/// expanded to all of `target`'s last `shape.len()` axes.
fn broadcast_tail(bias: &[f32], shape: &[usize], target: &[usize]) -> Vec<f32> {
    let tail = &target[target.len() - shape.len()..];
    (0..numel(tail))
        .map(|i| bias[crate::ir::broadcast_index(i, shape, tail)])
        .collect()
}

impl LayerKind for EinsumDense {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.bias_axes.is_some() {
            vec!["kernel", "bias"]
        } else {
            vec!["kernel"]
        }
    }

    fn steps(&self, inputs: &[&[usize]], weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = single(inputs)?;
        let plan = self.plan(input)?;
        let mut free = Vec::new();
        let mut contracted = Vec::new();
        for (k, &(label, _)) in plan.input.iter().enumerate() {
            match self.role(&plan, label)? {
                Role::Free => free.push(k),
                Role::Contracted => contracted.push(k),
                Role::New => {}
            }
        }
        let mut new = Vec::new();
        for (k, &(label, _)) in plan.output.iter().enumerate() {
            if self.role(&plan, label)? == Role::New {
                new.push(k);
            }
        }
        let kernel_shape: Vec<usize> = plan.kernel.iter().map(|k| k.1).collect();
        let kernel = weights.first().ok_or("missing kernel")?;
        super::check_shape("kernel", kernel, &kernel_shape)?;

        // Kernel axes reordered to [contracted in input order, new in output order].
        let kernel_axis = |label: Label| {
            plan.kernel
                .iter()
                .position(|k| Label::Letter(k.0) == label)
                .unwrap_or(0)
        };
        let perm: Vec<usize> = contracted
            .iter()
            .map(|&k| kernel_axis(plan.input[k].0))
            .chain(new.iter().map(|&k| kernel_axis(plan.output[k].0)))
            .collect();
        let rows: usize = contracted.iter().map(|&k| plan.input[k].1).product();
        let new_dims: Vec<usize> = new.iter().map(|&k| plan.output[k].1).collect();
        let units = numel(&new_dims);
        let dense_kernel = Weights::new(
            vec![rows, units],
            permute(&kernel.data, &kernel_shape, &perm),
        )?;

        let out_shape: Vec<usize> = plan.output.iter().map(|a| a.1).collect();
        // The bias: folded into the Dense when it varies along new axes only.
        let mut dense_bias = None;
        let mut bias_affine = None;
        if let Some(bias_shape) = self.bias_shape(&plan) {
            let bias = weights.get(1).ok_or("missing bias")?;
            super::check_shape("bias", bias, &bias_shape)?;
            let offset = out_shape.len() - bias_shape.len();
            let varies_on_free = bias_shape
                .iter()
                .enumerate()
                .any(|(i, &n)| n > 1 && !new.contains(&(offset + i)));
            let full = broadcast_tail(&bias.data, &bias_shape, &out_shape);
            if varies_on_free {
                bias_affine = Some(full);
            } else {
                // Over the output's tail in output order, constant along its free axes:
                // pick the new axes (in output order, as the Dense lays them out).
                let tail = &out_shape[offset..];
                let tail_strides = strides(tail);
                let new_strides: Vec<usize> = new
                    .iter()
                    .map(|&k| k.checked_sub(offset).map_or(0, |t| tail_strides[t]))
                    .collect();
                let vector: Vec<f32> = (0..units)
                    .map(|u| {
                        let mut rest = u;
                        let mut at = 0;
                        for (d, &n) in new_dims.iter().enumerate().rev() {
                            at += (rest % n) * new_strides[d];
                            rest /= n;
                        }
                        full[at]
                    })
                    .collect();
                dense_bias = Some(Weights::new(vec![units], vector)?);
            }
        }

        let resolved = self.activation.resolve(&out_shape)?;
        let (dense_activation, last_activation) = match resolved {
            a @ Activation::Axis { .. } => (Activation::Linear, Some(a)),
            a if bias_affine.is_some() && !a.is_linear() => (Activation::Linear, Some(a)),
            a => (a, None),
        };

        let mut ops: Vec<(Option<&str>, Op)> = Vec::new();
        // [*free, *contracted], then [*free, rows].
        let order: Vec<usize> = free.iter().chain(&contracted).copied().collect();
        if order.iter().enumerate().any(|(i, &k)| i != k) {
            ops.push((Some("input_order"), Op::Transpose { perm: order }));
        }
        let free_dims: Vec<usize> = free.iter().map(|&k| plan.input[k].1).collect();
        let flat: Vec<usize> = free_dims.iter().copied().chain([rows]).collect();
        let arranged: Vec<usize> = free
            .iter()
            .chain(&contracted)
            .map(|&k| plan.input[k].1)
            .collect();
        if flat != arranged {
            ops.push((
                Some("flat"),
                Op::Reshape {
                    target: to_i64(&flat),
                },
            ));
        }
        ops.push((
            None,
            Op::Dense {
                kernel: dense_kernel,
                bias: dense_bias,
                rescale: None,
                activation: dense_activation,
            },
        ));
        // [*free, units] -> [*free, *new] -> output order.
        let produced: Vec<usize> = free_dims.iter().chain(&new_dims).copied().collect();
        if produced != [&free_dims[..], &[units]].concat() {
            ops.push((
                Some("unflat"),
                Op::Reshape {
                    target: to_i64(&produced),
                },
            ));
        }
        // Output axis k comes from produced axis position_of(k).
        let produced_labels: Vec<Label> = free
            .iter()
            .map(|&k| plan.input[k].0)
            .chain(new.iter().map(|&k| plan.output[k].0))
            .collect();
        let out_perm: Vec<usize> = plan
            .output
            .iter()
            .map(|a| produced_labels.iter().position(|&l| l == a.0).unwrap_or(0))
            .collect();
        if out_perm.iter().enumerate().any(|(i, &k)| i != k) {
            ops.push((Some("output_order"), Op::Transpose { perm: out_perm }));
        }
        if let Some(shift) = bias_affine {
            let channels = shift.len();
            ops.push((
                Some("bias"),
                Op::Affine {
                    center: None,
                    scale: vec![1.0; channels],
                    shift,
                    inner: 1,
                },
            ));
        }
        if let Some(a) = last_activation {
            ops.push((Some("activation"), Op::Activation(a)));
        }
        Ok(chain(1, ops))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse as parse_layer, LayerKind, Step};
    use super::*;
    use crate::keras::config::LayerEntry;

    fn layer(config: &str, version: u32) -> Result<Box<dyn LayerKind>, Vec<String>> {
        let mut e = LayerEntry::new(
            "l".into(),
            "EinsumDense".into(),
            serde_json::from_str(config).unwrap(),
        );
        e.module = Some("keras.layers".into());
        parse_layer(&e, KerasVersion { major: version })
    }

    fn w(shape: &[usize]) -> Weights {
        let n = numel(shape);
        Weights::new(shape.to_vec(), (0..n).map(|i| i as f32).collect()).unwrap()
    }

    fn steps(config: &str, input: &[usize], weights: &[Weights]) -> Result<Vec<Step>, String> {
        layer(config, 3).unwrap().steps(&[input], weights)
    }

    fn suffixes(steps: &[Step]) -> Vec<Option<&str>> {
        steps.iter().map(|s| s.suffix.as_deref()).collect()
    }

    #[test]
    fn equations_in_keras_forms() {
        let e = parse_equation("...b,bc->...c").unwrap();
        assert_eq!((e.input, e.elided), (vec!['b'], Elided::Left));
        let e = parse_equation("bc...,cd->bd...").unwrap();
        assert_eq!((e.output, e.elided), (vec!['b', 'd'], Elided::Right));
        assert!(parse_equation("ab,bc->ac").is_some());
        for bad in [
            "ab,bc",
            "ab->ac",
            "a...b,bc->ac",
            "...ab,bc->ac",
            "b...,bc->c...",
            "a1,bc->ac",
        ] {
            assert!(parse_equation(bad).is_none(), "{bad}");
        }
        let err = layer(r#"{"equation": "ab,bc", "output_shape": 3}"#, 3).unwrap_err();
        assert!(err[0].contains("\"ab,bc\""), "{err:?}");
    }

    #[test]
    fn mha_projections_are_a_dense_and_reshapes() {
        // Query projection: [T, d] -> [T, H, k] with bias [H, k].
        let config =
            r#"{"equation": "abc,cde->abde", "output_shape": [null, 2, 3], "bias_axes": "de"}"#;
        let s = steps(config, &[5, 4], &[w(&[4, 2, 3]), w(&[2, 3])]).unwrap();
        assert_eq!(suffixes(&s), [None, Some("unflat")]);
        let Op::Dense { kernel, bias, .. } = &s[0].op else {
            panic!("{:?}", s[0].op)
        };
        assert_eq!(kernel.shape, [4, 6]);
        assert_eq!(bias.as_ref().map(|b| b.data.clone()), Some(w(&[6]).data));
        assert_eq!(
            s[1].op,
            Op::Reshape {
                target: vec![5, 2, 3]
            }
        );
        // Output projection: [T, H, v] -> [T, d].
        let config =
            r#"{"equation": "abcd,cde->abe", "output_shape": [null, 4], "bias_axes": "e"}"#;
        let s = steps(config, &[5, 2, 3], &[w(&[2, 3, 4]), w(&[4])]).unwrap();
        assert_eq!(suffixes(&s), [Some("flat"), None]);
        assert_eq!(s[0].op, Op::Reshape { target: vec![5, 6] });
    }

    #[test]
    fn kernels_are_reordered_to_contracted_then_new() {
        // ibd,nd->ibn: kernel [n, d] is used as [d, n].
        let config = r#"{"equation": "ibd,nd->ibn", "output_shape": [null, 2]}"#;
        let s = steps(config, &[4, 3], &[w(&[2, 3])]).unwrap();
        assert_eq!(suffixes(&s), [None]);
        let Op::Dense { kernel, .. } = &s[0].op else {
            panic!()
        };
        assert_eq!(kernel.shape, [3, 2]);
        assert_eq!(kernel.data, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        // Contracted axes in the middle: the input is transposed first, the output after.
        let config = r#"{"equation": "abcd,ce->abed", "output_shape": [null, 6, null]}"#;
        let s = steps(config, &[3, 4, 5], &[w(&[4, 6])]).unwrap();
        assert_eq!(
            suffixes(&s),
            [Some("input_order"), None, Some("output_order")]
        );
        assert_eq!(
            s[0].op,
            Op::Transpose {
                perm: vec![0, 2, 1]
            }
        );
        assert_eq!(
            s[2].op,
            Op::Transpose {
                perm: vec![0, 2, 1]
            }
        );
    }

    #[test]
    fn biases_fold_or_follow() {
        let config = |axes: &str| {
            format!(
                r#"{{"equation": "abc,cde->abde", "output_shape": [4, 3, 2], "bias_axes": "{axes}", "activation": "relu"}}"#
            )
        };
        // Only along d ([3, 1]): folded, broadcast over e.
        let s = steps(&config("d"), &[4, 5], &[w(&[5, 3, 2]), w(&[3, 1])]).unwrap();
        let Op::Dense {
            bias, activation, ..
        } = &s[0].op
        else {
            panic!()
        };
        assert_eq!(bias.as_ref().unwrap().data, [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(*activation, Activation::relu());
        // Along the free axis b too: an Affine after the reshape, then the activation.
        let s = steps(&config("be"), &[4, 5], &[w(&[5, 3, 2]), w(&[4, 1, 2])]).unwrap();
        assert_eq!(
            suffixes(&s),
            [None, Some("unflat"), Some("bias"), Some("activation")]
        );
        let Op::Affine { shift, .. } = &s[2].op else {
            panic!()
        };
        assert_eq!(shift.len(), 24);
        assert_eq!(&shift[..8], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 2.0, 3.0]);
        let err = steps(&config("d"), &[4, 5], &[w(&[5, 3, 2]), w(&[3])]).unwrap_err();
        assert!(err.contains("'bias'") && err.contains("[3, 1]"), "{err}");
        // A softmax works along the output's last axis, after the reshape.
        let config = r#"{"equation": "abc,cde->abde", "output_shape": [null, 3, 2], "activation": "softmax"}"#;
        let s = steps(config, &[4, 5], &[w(&[5, 3, 2])]).unwrap();
        assert_eq!(suffixes(&s), [None, Some("unflat"), Some("activation")]);
    }

    #[test]
    fn other_equations_and_options_are_refused_by_name() {
        let refused = |eq: &str, input: &[usize], kernel: &[usize]| {
            let config = format!(r#"{{"equation": "{eq}", "output_shape": [null, 3]}}"#);
            steps(&config, input, &[w(kernel)]).unwrap_err()
        };
        let err = refused("abc,bcd->acd", &[2, 3], &[2, 3, 3]);
        assert!(
            err.contains("\"abc,bcd->acd\"") && err.contains("axis 'c'"),
            "{err}"
        );
        let err = refused("abc,cd->ad", &[2, 3], &[3, 3]);
        assert!(err.contains("summed"), "{err}");
        let err = refused("abb,bd->ad", &[2, 2], &[2, 3]);
        assert!(err.contains("repeated"), "{err}");
        let err = steps(
            r#"{"equation": "ab,b->a", "output_shape": []}"#,
            &[3],
            &[w(&[3])],
        )
        .unwrap_err();
        assert!(err.contains("no axis besides the batch"), "{err}");
        let err = layer(
            r#"{"equation": "ab,bc->ac", "output_shape": 3, "lora_rank": 2}"#,
            3,
        )
        .unwrap_err();
        assert!(err[0].contains("'lora_rank'"), "{err:?}");
        let err = layer(
            r#"{"equation": "ab,bc->ac", "output_shape": 3, "bias_axes": "x"}"#,
            3,
        )
        .unwrap_err();
        assert!(err[0].contains("'x'"), "{err:?}");
        // tf_keras's config parses the same way.
        assert!(layer(r#"{"equation": "ab,bc->ac", "output_shape": [3]}"#, 2).is_ok());
    }
}
