//! `ZeroPadding1D/2D/3D` as IR `Pad` and `Cropping1D/2D/3D` as IR `Slice`, with `(0, 0)`
//! / the whole axis for the channels. Both work on any axis, so `channels_first` needs
//! no transpose: the channel axis is simply first.

use super::spatial::{self, Layout};
use super::{LayerKind, Options};
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct ZeroPadding {
    padding: Vec<(usize, usize)>,
    layout: Layout,
}

#[derive(Debug)]
struct Cropping {
    cropping: Vec<(usize, usize)>,
    layout: Layout,
}

fn rank_of(class: &str) -> usize {
    match class.as_bytes().get(class.len().saturating_sub(2)) {
        Some(b'1') => 1,
        Some(b'2') => 2,
        _ => 3,
    }
}

/// The amounts of every axis of the input, the channel axis (first or last) getting
/// `(0, 0)`.
fn with_channels(layout: Layout, spatial: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut all = spatial.to_vec();
    if layout.channels_first {
        all.insert(0, (0, 0));
    } else {
        all.push((0, 0));
    }
    all
}

pub(super) fn parse_zero_padding(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let rank = rank_of(class);
    let padding = match options.get("padding") {
        None => Some(vec![(1, 1); rank]),
        Some(_) => spatial::pairs(options, "padding", rank),
    };
    let channels_first = spatial::channels_first(options);
    Some(Box::new(ZeroPadding {
        padding: padding?,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank,
        },
    }))
}

pub(super) fn parse_cropping(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let rank = rank_of(class);
    let cropping = match options.get("cropping") {
        // Keras's defaults: 1 on each side, except nothing for Cropping2D.
        None => {
            let n = usize::from(rank != 2);
            Some(vec![(n, n); rank])
        }
        Some(_) => spatial::pairs(options, "cropping", rank),
    };
    let channels_first = spatial::channels_first(options);
    Some(Box::new(Cropping {
        cropping: cropping?,
        layout: Layout {
            channels_first: channels_first?,
            spatial: rank,
        },
    }))
}

impl LayerKind for ZeroPadding {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        self.layout.channels_last(input)?;
        Ok(Op::Pad {
            padding: with_channels(self.layout, &self.padding),
            value: 0.0,
        })
    }
}

impl LayerKind for Cropping {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        self.layout.channels_last(input)?;
        let amounts = with_channels(self.layout, &self.cropping);
        let mut begin = Vec::with_capacity(input.len());
        let mut end = Vec::with_capacity(input.len());
        for (axis, (&len, &(before, after))) in input.iter().zip(&amounts).enumerate() {
            if before + after >= len {
                return Err(format!(
                    "cropping ({before}, {after}) leaves nothing of axis {} (length {len}); \
                     input shape {input:?}",
                    axis + 1
                ));
            }
            begin.push(before);
            end.push(len - after);
        }
        let step = vec![1; begin.len()];
        Ok(Op::Slice { begin, end, step })
    }
}
