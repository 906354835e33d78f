//! `UpSampling1D/2D/3D` as IR `Upsample`: nearest (repeat) everywhere, and bilinear for
//! `UpSampling2D` (TensorFlow's resize with half-pixel centres, as both Keras versions
//! use). `channels_first` wraps the node in transposes (see `spatial`).

use super::spatial::{self, Layout};
use super::{single, LayerKind, Options, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct UpSampling {
    factors: Vec<usize>,
    bilinear: bool,
    layout: Layout,
}

pub(super) fn parse(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let rank = match class {
        "UpSampling1D" => 1,
        "UpSampling2D" => 2,
        _ => 3,
    };
    let factors = spatial::tuple(options, "size", rank, Some(vec![2; rank]));
    let bilinear = match options.get("interpolation") {
        None => Some(false),
        Some(v) if v == "nearest" => Some(false),
        Some(v) if v == "bilinear" && rank == 2 => Some(true),
        Some(v) => {
            options.problems.push(format!(
                "option 'interpolation'={} is not supported (only 'nearest' and 'bilinear')",
                esc(&v.to_string())
            ));
            None
        }
    };
    let channels_first = if rank == 1 {
        // UpSampling1D has no data_format: its input is (steps, features).
        Some(false)
    } else {
        spatial::channels_first(options)
    };
    Some(Box::new(UpSampling {
        factors: factors?,
        bilinear: bilinear?,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank,
        },
    }))
}

impl LayerKind for UpSampling {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        self.layout.channels_last(single(inputs)?)?;
        let op = Op::Upsample {
            factors: self.factors.clone(),
            bilinear: self.bilinear,
        };
        Ok(self.layout.wrap(vec![(None, op)], true))
    }
}
