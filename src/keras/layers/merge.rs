//! Layers over several inputs: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`,
//! `Minimum` as IR `Merge`; `Concatenate` as `Concat`; `Dot` as `Dot`.
//!
//! Merges broadcast like Keras's `Merge` layer (`keras/src/layers/merging/base_merge.py`):
//! an input of lower rank gets size-1 axes inserted right after the batch axis (a
//! `Reshape` node `NAME/expand_input_K`), then axes must agree or be 1. Keras axes count
//! the batch axis; the IR's do not. `Dot` contracts one axis of each input, as Keras's
//! `batch_dot`: the result keeps the first input's other axes, then the second's.

use super::{LayerKind, Options, Source, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{MergeKind, Op, Weights};
use crate::keras::activation::resolve_axis;
use crate::keras::config::KerasVersion;

#[derive(Debug)]
struct Merge {
    kind: MergeKind,
}

#[derive(Debug)]
struct Concatenate {
    /// Keras axis (batch counted, may be negative).
    axis: i64,
}

#[derive(Debug)]
struct Dot {
    /// Keras axes of the first and second input (batch counted, may be negative).
    axes: (i64, i64),
    /// The cap on the inverse norm, when normalizing.
    normalize: Option<f32>,
}

pub(super) fn parse_merge(class: &str, _options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let kind = match class {
        "Add" => MergeKind::Add,
        "Subtract" => MergeKind::Subtract,
        "Multiply" => MergeKind::Multiply,
        "Average" => MergeKind::Average,
        "Maximum" => MergeKind::Maximum,
        _ => MergeKind::Minimum,
    };
    Some(Box::new(Merge { kind }))
}

pub(super) fn parse_concatenate(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let axis = match options.get("axis") {
        None => -1,
        Some(v) => match v.as_i64() {
            Some(a) => a,
            None => {
                options.problems.push(format!(
                    "option 'axis'={} must be an integer",
                    esc(&v.to_string())
                ));
                return None;
            }
        },
    };
    Some(Box::new(Concatenate { axis }))
}

pub(super) fn parse_dot(
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    // Keras 3 caps 1/|x| at 1/epsilon = 1e7; Keras 2's l2_normalize takes
    // rsqrt(max(sum x^2, 1e-12)), a cap of 1e6.
    let cap = if version.major >= 3 { 1e7 } else { 1e6 };
    let normalize = options.bool("normalize", false).then_some(cap);
    let Some(value) = options.get("axes") else {
        options.problems.push("option 'axes' is missing".into());
        return None;
    };
    let axes = match value {
        serde_json::Value::Array(items) => match items.as_slice() {
            [a, b] => a.as_i64().zip(b.as_i64()),
            _ => None,
        },
        single => single.as_i64().map(|a| (a, a)),
    };
    let Some(axes) = axes else {
        options.problems.push(format!(
            "option 'axes'={} is not supported (an integer or a pair of integers)",
            esc(&value.to_string())
        ));
        return None;
    };
    Some(Box::new(Dot { axes, normalize }))
}

impl LayerKind for Merge {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        if inputs.is_empty() || (self.kind == MergeKind::Subtract && inputs.len() != 2) {
            let want = if self.kind == MergeKind::Subtract {
                "exactly 2"
            } else {
                "at least 1"
            };
            return Err(format!(
                "is called on {} tensors; this layer takes {want}",
                inputs.len()
            ));
        }
        let rank = inputs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut steps = Vec::new();
        let mut sources = Vec::with_capacity(inputs.len());
        for (k, shape) in inputs.iter().enumerate() {
            if shape.len() == rank {
                sources.push(Source::Input(k));
                continue;
            }
            let mut target = vec![1i64; rank - shape.len()];
            for &d in shape.iter() {
                target.push(i64::try_from(d).map_err(|_| "axis too long")?);
            }
            let suffix = format!("expand_input_{k}");
            steps.push(Step::new(
                Some(&suffix),
                Op::Reshape { target },
                vec![Source::Input(k)],
            ));
            sources.push(Source::Step(steps.len() - 1));
        }
        steps.push(Step::new(None, Op::Merge { kind: self.kind }, sources));
        Ok(steps)
    }
}

impl LayerKind for Concatenate {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let Some(first) = inputs.first() else {
            return Err("is called on no tensors".into());
        };
        if inputs.iter().any(|s| s.len() != first.len()) {
            return Err(format!(
                "cannot concatenate inputs of different ranks: shapes {inputs:?}"
            ));
        }
        let axis = resolve_axis(self.axis, first.len())?;
        let sources = (0..inputs.len()).map(Source::Input).collect();
        Ok(vec![Step::new(None, Op::Concat { axis }, sources)])
    }
}

impl LayerKind for Dot {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let [a, b] = inputs else {
            return Err(format!(
                "is called on {} tensors; this layer takes exactly 2",
                inputs.len()
            ));
        };
        let axes = (
            resolve_axis(self.axes.0, a.len())?,
            resolve_axis(self.axes.1, b.len())?,
        );
        let op = Op::Dot {
            axes,
            normalize: self.normalize,
        };
        Ok(vec![Step::new(
            None,
            op,
            vec![Source::Input(0), Source::Input(1)],
        )])
    }
}
