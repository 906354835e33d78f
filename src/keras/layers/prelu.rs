//! `PReLU`: `x >= 0 ? x : alpha * x`, alpha of the input's shape with 1 on `shared_axes`
//! (axes count the batch dimension, as in Keras).

use super::{check_shape, LayerKind, Options};
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct PRelu {
    shared_axes: Vec<usize>,
}

pub(super) fn parse(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    options.ignore(&["alpha_initializer", "alpha_regularizer", "alpha_constraint"]);
    let mut shared_axes = Vec::new();
    for axis in options.int_list("shared_axes").unwrap_or_default() {
        match usize::try_from(axis) {
            Ok(a) if a >= 1 => shared_axes.push(a),
            _ => {
                options.problems.push(format!(
                    "option 'shared_axes' holds {axis}; only positive axes (1 = first axis after \
                     the batch) are supported"
                ));
                return None;
            }
        }
    }
    Some(Box::new(PRelu { shared_axes }))
}

impl LayerKind for PRelu {
    fn weight_names(&self) -> Vec<&'static str> {
        vec!["alpha"]
    }

    fn build(&self, input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let mut expected = input.to_vec();
        for &axis in &self.shared_axes {
            match expected.get_mut(axis - 1) {
                Some(d) => *d = 1,
                None => {
                    return Err(format!(
                        "shared axis {axis} is out of range for input shape {input:?}"
                    ))
                }
            }
        }
        let alpha = weights.first().ok_or("missing alpha")?;
        check_shape("alpha", alpha, &expected)?;
        Ok(Op::PRelu {
            alpha: alpha.clone(),
        })
    }
}
