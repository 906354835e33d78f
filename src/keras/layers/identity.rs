//! Layers that do nothing at inference: the Dropout family, noise layers and
//! `ActivityRegularization` (their options only matter for training).

use super::{LayerKind, Options};
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct Identity;

pub(super) fn parse(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let keys: &[&str] = match class {
        "Dropout" | "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" => {
            &["rate", "noise_shape", "seed", "data_format"]
        }
        "GaussianNoise" => &["stddev", "seed"],
        "GaussianDropout" | "AlphaDropout" => &["rate", "seed", "noise_shape"],
        "ActivityRegularization" => &["l1", "l2"],
        _ => &[],
    };
    options.ignore(keys);
    Some(Box::new(Identity))
}

impl LayerKind for Identity {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, _input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        Ok(Op::Identity)
    }
}
