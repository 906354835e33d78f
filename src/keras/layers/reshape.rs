//! `Flatten`, `Reshape`, `Permute` and `RepeatVector`: the same data under a new shape or
//! axis order. `Flatten` of channels-first data moves the channel axis last first (a
//! `Transpose` node `NAME/to_channels_last`), as Keras's Flatten does.

use super::spatial::{self, to_channels_last};
use super::{chain, single, LayerKind, Options, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct Flatten {
    channels_first: bool,
}

#[derive(Debug)]
struct Reshape {
    target: Vec<i64>,
}

pub(super) fn parse_flatten(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let channels_first = match options.get("data_format").and_then(|v| v.as_str()) {
        None | Some("channels_last") => false,
        Some("channels_first") => true,
        Some(other) => {
            options.problems.push(format!(
                "option 'data_format'='{}' is not supported",
                crate::error::escape_for_message(other)
            ));
            return None;
        }
    };
    Some(Box::new(Flatten { channels_first }))
}

pub(super) fn parse_reshape(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let Some(target) = options.int_list("target_shape") else {
        if options.problems.is_empty() {
            options
                .problems
                .push("option 'target_shape' is missing".into());
        }
        return None;
    };
    if target.iter().any(|&d| d < -1 || d == 0) || target.iter().filter(|&&d| d == -1).count() > 1 {
        options.problems.push(format!(
            "option 'target_shape'={target:?} is not a valid shape"
        ));
        return None;
    }
    Some(Box::new(Reshape { target }))
}

impl LayerKind for Flatten {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = single(inputs)?;
        let flatten = (None, Op::Reshape { target: vec![-1] });
        Ok(if self.channels_first && input.len() > 1 {
            let spatial = input.len() - 1;
            chain(
                1,
                vec![
                    (Some("to_channels_last"), to_channels_last(spatial)),
                    flatten,
                ],
            )
        } else {
            chain(1, vec![flatten])
        })
    }
}

impl LayerKind for Reshape {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, _input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        Ok(Op::Reshape {
            target: self.target.clone(),
        })
    }
}

#[derive(Debug)]
struct Permute {
    /// Keras `dims`: 1-based over the axes after the batch.
    dims: Vec<i64>,
}

#[derive(Debug)]
struct RepeatVector {
    times: usize,
}

pub(super) fn parse_permute(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let Some(dims) = options.int_list("dims") else {
        if options.problems.is_empty() {
            options.problems.push("option 'dims' is missing".into());
        }
        return None;
    };
    let mut sorted = dims.clone();
    sorted.sort_unstable();
    if !sorted.iter().copied().eq(1..=dims.len() as i64) {
        options.problems.push(format!(
            "option 'dims'={} is not a permutation of 1..={}",
            esc(&format!("{dims:?}")),
            dims.len()
        ));
        return None;
    }
    Some(Box::new(Permute { dims }))
}

pub(super) fn parse_repeat_vector(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let times = spatial::positive(options, "n", None)?;
    Some(Box::new(RepeatVector { times }))
}

impl LayerKind for Permute {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        if input.len() != self.dims.len() {
            return Err(format!(
                "dims {:?} do not fit an input of shape {input:?}",
                self.dims
            ));
        }
        let perm = self
            .dims
            .iter()
            .map(|&d| usize::try_from(d - 1).map_err(|_| "invalid dims".to_string()))
            .collect::<Result<_, _>>()?;
        Ok(Op::Transpose { perm })
    }
}

impl LayerKind for RepeatVector {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        if input.len() != 1 {
            return Err(format!("expects a vector per sample, got shape {input:?}"));
        }
        Ok(Op::Repeat { times: self.times })
    }
}
