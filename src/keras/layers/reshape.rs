//! `Flatten` and `Reshape`: the same data under a new shape.

use super::{LayerKind, Options};
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

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        if self.channels_first && input.len() > 1 {
            return Err(
                "data_format='channels_first' with a multi-dimensional input needs a transpose, \
                 which is not supported"
                    .into(),
            );
        }
        Ok(Op::Reshape { target: vec![-1] })
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
