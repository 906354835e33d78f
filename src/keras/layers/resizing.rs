//! The image-size layers: `Resizing`, `CenterCrop` and `RandomCrop` (at inference), as a
//! `Slice` (crop) or `Pad` (`NAME/crop`, `NAME/pad`) and an IR `Resize` (TensorFlow's
//! resize with half-pixel centres, bilinear or nearest, any size up or down), as Keras
//! computes them on the TensorFlow backend:
//!
//! - `Resizing` (Keras 3 `keras/src/backend/tensorflow/image.py` `resize`; tf_keras
//!   `image_preprocessing.py`): `crop_to_aspect_ratio` first takes the largest centred
//!   window of the target's aspect ratio, `pad_to_aspect_ratio` (Keras 3) pads the input
//!   with `fill_value` the same amount on both sides of one axis, then `tf.image.resize`.
//! - `CenterCrop`: a centred crop when the input is at least as large on both axes, else
//!   `smart_resize` (crop to the target's aspect ratio, then bilinear resize).
//! - `RandomCrop`: Keras 3 returns its input unchanged at inference (whatever its size);
//!   tf_keras always `smart_resize`s it.
//!
//! A resize to the input's own size is no node (TensorFlow copies the input). Crop
//! arithmetic follows each version's code: float32 where TensorFlow computes it on
//! tensors, Python floats in Keras 3's `smart_resize` (static shapes), and the crop at
//! least one pixel except in tf_keras's `smart_resize`.
//! `channels_first` puts the nodes between transposes when they resize (see `spatial`);
//! crops and pads alone work on the channels-first axes directly.

use serde_json::Value;

use super::spatial::{self, Layout};
use super::{chain, single, LayerKind, Options, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{Op, ResizeMethod, Weights};
use crate::keras::config::KerasVersion;

/// How the centred window of the target's aspect ratio is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arithmetic {
    /// On TensorFlow tensors: int32 products, float32 quotients, at least one pixel
    /// (Keras 3 `Resizing`).
    Float32,
    /// Python floats on static shapes, at least one pixel (Keras 3 `smart_resize`).
    Float64,
    /// float32 with no lower bound (tf_keras `smart_resize`).
    Float32Unbounded,
}

/// What the layer does before resizing to `height` x `width`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fit {
    /// Resize the whole input.
    Stretch,
    /// The centred window of the target's aspect ratio, then resize.
    Crop(Arithmetic),
    /// Pad to the target's aspect ratio with `fill_value`, then resize (Keras 3).
    Pad(f32),
    /// Crop the centre when the input is at least as large on both axes, else like
    /// `Crop` (CenterCrop).
    CropOrResize(Arithmetic),
    /// The input unchanged (Keras 3 RandomCrop at inference).
    Unchanged,
}

#[derive(Debug)]
struct ImageSize {
    height: usize,
    width: usize,
    method: ResizeMethod,
    fit: Fit,
    layout: Layout,
}

/// Parses `Resizing`, `CenterCrop` or `RandomCrop`.
pub(super) fn parse(
    class: &str,
    options: &mut Options,
    version: KerasVersion,
) -> Option<Box<dyn LayerKind>> {
    let keras3 = version.major >= 3;
    let height = spatial::positive(options, "height", None);
    let width = spatial::positive(options, "width", None);
    let channels_first = spatial::channels_first(options);
    let smart = if keras3 {
        Arithmetic::Float64
    } else {
        Arithmetic::Float32Unbounded
    };
    let mut method = ResizeMethod::Bilinear;
    let fit = match class {
        "Resizing" => {
            method = interpolation(options)?;
            resizing_fit(options, keras3)?
        }
        "CenterCrop" => Fit::CropOrResize(smart),
        _ => {
            // RandomCrop: the seed and the generator only matter in training.
            options.ignore(&["seed", "rng_type"]);
            if keras3 {
                Fit::Unchanged
            } else {
                Fit::Crop(smart)
            }
        }
    };
    Some(Box::new(ImageSize {
        height: height?,
        width: width?,
        method,
        fit,
        layout: Layout {
            channels_first: channels_first?,
            spatial: 2,
        },
    }))
}

/// `interpolation`: bilinear or nearest.
fn interpolation(options: &mut Options) -> Option<ResizeMethod> {
    match options.get("interpolation") {
        None => Some(ResizeMethod::Bilinear),
        Some(Value::String(s)) if s == "bilinear" => Some(ResizeMethod::Bilinear),
        Some(Value::String(s)) if s == "nearest" => Some(ResizeMethod::Nearest),
        Some(other) => {
            options.problems.push(format!(
                "option 'interpolation'={} is not supported (only \"bilinear\" and \"nearest\")",
                esc(&other.to_string())
            ));
            None
        }
    }
}

/// `crop_to_aspect_ratio`, `pad_to_aspect_ratio`, `fill_mode`, `fill_value` and
/// `antialias` of `Resizing`.
fn resizing_fit(options: &mut Options, keras3: bool) -> Option<Fit> {
    let crop = options.bool("crop_to_aspect_ratio", false);
    let pad = options.bool("pad_to_aspect_ratio", false);
    match options.get("fill_mode") {
        None => {}
        Some(Value::String(s)) if s == "constant" => {}
        Some(other) => options.problems.push(format!(
            "option 'fill_mode'={} is not supported (Keras's TensorFlow backend only pads \
             with a constant)",
            esc(&other.to_string())
        )),
    }
    let fill = options.f64("fill_value", 0.0) as f32;
    options.only(
        "antialias",
        &Value::Bool(false),
        " (antialiased resizing is not implemented)",
    );
    if crop && pad {
        options.problems.push(
            "options 'crop_to_aspect_ratio' and 'pad_to_aspect_ratio' cannot both be true".into(),
        );
        return None;
    }
    Some(if crop {
        Fit::Crop(if keras3 {
            Arithmetic::Float32
        } else {
            Arithmetic::Float32Unbounded
        })
    } else if pad {
        Fit::Pad(fill)
    } else {
        Fit::Stretch
    })
}

/// `int(len * target_a / target_b)` in the version's floats.
fn scaled(len: usize, target_a: usize, target_b: usize, arith: Arithmetic) -> usize {
    let product = len.saturating_mul(target_a);
    match arith {
        Arithmetic::Float64 => (product as f64 / target_b as f64) as usize,
        Arithmetic::Float32 | Arithmetic::Float32Unbounded => {
            (product as f32 / target_b as f32) as usize
        }
    }
}

/// `int((a - b) / 2)` in the version's floats (the same for the small sizes here).
fn half(diff: usize, arith: Arithmetic) -> usize {
    match arith {
        Arithmetic::Float64 => (diff as f64 / 2.0) as usize,
        Arithmetic::Float32 | Arithmetic::Float32Unbounded => (diff as f32 / 2.0) as usize,
    }
}

/// The centred window of the target's aspect ratio: `(start, length)` per spatial axis.
fn aspect_crop(
    h: usize,
    w: usize,
    target: (usize, usize),
    arith: Arithmetic,
) -> Result<[(usize, usize); 2], String> {
    let (th, tw) = target;
    let floor = usize::from(arith != Arithmetic::Float32Unbounded);
    let ch = scaled(w, th, tw, arith).min(h).max(floor);
    let cw = scaled(h, tw, th, arith).min(w).max(floor);
    if ch == 0 || cw == 0 {
        return Err(format!(
            "cropping a {h}x{w} input to the aspect ratio of {th}x{tw} leaves no pixel"
        ));
    }
    Ok([(half(h - ch, arith), ch), (half(w - cw, arith), cw)])
}

/// Keras 3's `pad_to_aspect_ratio`: the same padding on both sides of each axis.
fn aspect_pad(h: usize, w: usize, target: (usize, usize)) -> Result<[usize; 2], String> {
    let (th, tw) = target;
    let arith = Arithmetic::Float32;
    let ph = scaled(w, th, tw, arith).max(h);
    let pw = scaled(h, tw, th, arith).max(w);
    let pads = [half(ph - h, arith), half(pw - w, arith)];
    if pads[0] > 0 && pads[1] > 0 {
        // Keras's second concatenation would fail on the first one's new height.
        return Err(format!(
            "padding a {h}x{w} input to the aspect ratio of {th}x{tw} pads both axes, which \
             Keras cannot do"
        ));
    }
    Ok(pads)
}

impl ImageSize {
    /// The ops on the image `[h, w, c]`: a crop or a pad, then the resize. Crops and pads
    /// are written for the channel axis first when `channels_at_front` (they then work on
    /// channels-first data directly; a resize needs channels last).
    fn core(
        &self,
        h: usize,
        w: usize,
        c: usize,
        channels_at_front: bool,
    ) -> Result<Vec<(Option<&str>, Op)>, String> {
        let target = (self.height, self.width);
        let place = |mut axes: Vec<usize>| {
            if channels_at_front {
                axes.rotate_right(1);
            }
            axes
        };
        let crop = |window: [(usize, usize); 2]| Op::Slice {
            begin: place(vec![window[0].0, window[1].0, 0]),
            end: place(vec![
                window[0].0 + window[0].1,
                window[1].0 + window[1].1,
                c,
            ]),
            step: vec![1; 3],
        };
        let mut ops = Vec::new();
        let mut size = (h, w);
        match self.fit {
            Fit::Unchanged => return Ok(ops),
            Fit::Stretch => {}
            Fit::CropOrResize(_) if (h, w) == target => {}
            Fit::CropOrResize(_) if h >= self.height && w >= self.width => {
                // Keras 3 floors `diff // 2`, tf_keras truncates `diff / 2`: the same here.
                let window = [
                    ((h - self.height) / 2, self.height),
                    ((w - self.width) / 2, self.width),
                ];
                ops.push((Some("crop"), crop(window)));
                size = target;
            }
            Fit::Crop(arith) | Fit::CropOrResize(arith) => {
                let window = aspect_crop(h, w, target, arith)?;
                if (window[0].1, window[1].1) != (h, w) {
                    ops.push((Some("crop"), crop(window)));
                    size = (window[0].1, window[1].1);
                }
            }
            Fit::Pad(value) => {
                let [ph, pw] = aspect_pad(h, w, target)?;
                if ph > 0 || pw > 0 {
                    let mut padding = vec![(ph, ph), (pw, pw), (0, 0)];
                    if channels_at_front {
                        padding.rotate_right(1);
                    }
                    ops.push((Some("pad"), Op::Pad { padding, value }));
                    size = (h + 2 * ph, w + 2 * pw);
                }
            }
        }
        if size != target {
            ops.push((
                None,
                Op::Resize {
                    size: vec![self.height, self.width],
                    method: self.method,
                },
            ));
        }
        Ok(ops)
    }
}

impl LayerKind for ImageSize {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let shape = self.layout.channels_last(single(inputs)?)?;
        let [h, w, c] = shape[..] else {
            return Err(format!("expects an image, got shape {shape:?}"));
        };
        let mut core = self.core(h, w, c, false)?;
        let resizes = core.iter().any(|(_, op)| matches!(op, Op::Resize { .. }));
        let wrap = self.layout.channels_first && resizes;
        if self.layout.channels_first && !resizes {
            // A crop or pad alone works on the channels-first axes directly.
            core = self.core(h, w, c, true)?;
        }
        // The last node carries the layer's name.
        match core.last_mut() {
            None => return Ok(chain(1, vec![(None, Op::Identity)])),
            Some(last) => last.0 = None,
        }
        Ok(if wrap {
            self.layout.wrap(core, true)
        } else {
            chain(1, core)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspect_windows_follow_each_version() {
        // 8x7 to the aspect of 5x4: height int(7 * 5 / 4) = 8, width int(8 * 4 / 5) = 6.
        assert_eq!(
            aspect_crop(8, 7, (5, 4), Arithmetic::Float32).unwrap(),
            [(0, 8), (0, 6)]
        );
        // 9x4 to 3x6: height int(4 * 3 / 6) = 2 (start 3), width 4.
        assert_eq!(
            aspect_crop(9, 4, (3, 6), Arithmetic::Float64).unwrap(),
            [(3, 2), (0, 4)]
        );
        // tf_keras has no floor of one pixel.
        assert!(aspect_crop(1, 9, (1, 30), Arithmetic::Float32Unbounded).is_err());
        assert_eq!(
            aspect_crop(1, 9, (1, 30), Arithmetic::Float32).unwrap(),
            [(0, 1), (0, 9)]
        );
        // 6x4 padded to the aspect of 5x5: width 6, one column on each side.
        assert_eq!(aspect_pad(6, 4, (5, 5)).unwrap(), [0, 1]);
        // 6x3 to 5x5: width 6, int(3 / 2) = 1 on each side (Keras pads 5, not 6).
        assert_eq!(aspect_pad(6, 3, (5, 5)).unwrap(), [0, 1]);
    }
}

#[cfg(test)]
mod parse_tests {
    use super::super::{parse as parse_layer, LayerKind, Step};
    use super::*;
    use crate::keras::config::LayerEntry;

    fn layer(class: &str, config: &str, major: u32) -> Result<Box<dyn LayerKind>, Vec<String>> {
        let mut e = LayerEntry::new(
            "l".into(),
            class.into(),
            serde_json::from_str(config).unwrap(),
        );
        e.module = Some("keras.layers".into());
        parse_layer(&e, KerasVersion { major })
    }

    fn ops(class: &str, config: &str, major: u32, input: &[usize]) -> Vec<(Option<String>, Op)> {
        let steps: Vec<Step> = layer(class, config, major)
            .unwrap()
            .steps(&[input], &[])
            .unwrap();
        steps.into_iter().map(|s| (s.suffix, s.op)).collect()
    }

    #[test]
    fn options_that_are_not_computed_are_refused_by_name() {
        for (config, key) in [
            (
                r#"{"height": 2, "width": 2, "interpolation": "bicubic"}"#,
                "bicubic",
            ),
            (
                r#"{"height": 2, "width": 2, "antialias": true}"#,
                "'antialias'",
            ),
            (
                r#"{"height": 2, "width": 2, "fill_mode": "reflect"}"#,
                "'fill_mode'",
            ),
            (
                r#"{"height": 2, "width": 2, "crop_to_aspect_ratio": true, "pad_to_aspect_ratio": true}"#,
                "cannot both",
            ),
            (r#"{"width": 2}"#, "'height'"),
        ] {
            let err = layer("Resizing", config, 3).unwrap_err();
            assert!(err.iter().any(|e| e.contains(key)), "{config}: {err:?}");
        }
    }

    #[test]
    fn each_layer_and_version() {
        let resize = |h, w| Op::Resize {
            size: vec![h, w],
            method: ResizeMethod::Bilinear,
        };
        // Keras 3 RandomCrop: the input unchanged; tf_keras: smart_resize.
        let k3 = ops(
            "RandomCrop",
            r#"{"height": 5, "width": 4, "seed": 1}"#,
            3,
            &[8, 7, 3],
        );
        assert_eq!(k3, [(None, Op::Identity)]);
        let k2 = ops(
            "RandomCrop",
            r#"{"height": 5, "width": 4, "seed": null}"#,
            2,
            &[8, 7, 3],
        );
        assert_eq!(
            k2,
            [
                (
                    Some("crop".into()),
                    Op::Slice {
                        begin: vec![0, 0, 0],
                        end: vec![8, 6, 3],
                        step: vec![1, 1, 1],
                    }
                ),
                (None, resize(5, 4))
            ]
        );
        // CenterCrop: crop, or fit when smaller; the same size is nothing.
        let crop = ops("CenterCrop", r#"{"height": 5, "width": 4}"#, 3, &[8, 7, 3]);
        assert_eq!(
            crop,
            [(
                None,
                Op::Slice {
                    begin: vec![1, 1, 0],
                    end: vec![6, 5, 3],
                    step: vec![1, 1, 1],
                }
            )]
        );
        let fit = ops("CenterCrop", r#"{"height": 9, "width": 4}"#, 3, &[8, 7, 3]);
        assert_eq!(fit.last(), Some(&(None, resize(9, 4))));
        let same = ops("CenterCrop", r#"{"height": 8, "width": 7}"#, 3, &[8, 7, 3]);
        assert_eq!(same, [(None, Op::Identity)]);
        // channels_first: a crop alone slices the channels-first axes.
        let cf = ops(
            "CenterCrop",
            r#"{"height": 5, "width": 4, "data_format": "channels_first"}"#,
            3,
            &[3, 8, 7],
        );
        assert_eq!(
            cf,
            [(
                None,
                Op::Slice {
                    begin: vec![0, 1, 1],
                    end: vec![3, 6, 5],
                    step: vec![1, 1, 1],
                }
            )]
        );
        // A resize between transposes.
        let cf = ops(
            "Resizing",
            r#"{"height": 5, "width": 4, "data_format": "channels_first"}"#,
            3,
            &[3, 8, 7],
        );
        let suffixes: Vec<Option<&str>> = cf.iter().map(|s| s.0.as_deref()).collect();
        assert_eq!(
            suffixes,
            [Some("to_channels_last"), None, Some("to_channels_first")]
        );
        // pad_to_aspect_ratio pads with fill_value.
        let pad = ops(
            "Resizing",
            r#"{"height": 5, "width": 5, "pad_to_aspect_ratio": true, "fill_value": 0.5}"#,
            3,
            &[6, 4, 2],
        );
        assert_eq!(
            pad[0],
            (
                Some("pad".into()),
                Op::Pad {
                    padding: vec![(0, 0), (1, 1), (0, 0)],
                    value: 0.5
                }
            )
        );
    }
}
