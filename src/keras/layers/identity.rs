//! Layers that do nothing at inference: `Identity`, the Dropout family, noise layers,
//! `ActivityRegularization`, and the random image-augmentation layers of Keras 3 and
//! tf_keras (their options only matter for training).

use super::{LayerKind, Options};
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct Identity;

/// Options of the image layers of Keras 3's `keras/src/layers/preprocessing/
/// image_preprocessing/` base class, and tf_keras's random-generator option.
const IMAGE_KEYS: &[&str] = &["data_format", "bounding_box_format", "seed", "rng_type"];

/// Image-augmentation layers that return their input unchanged when called with
/// `training=False` (Keras 3.15 `transform_images` and tf_keras `call`: a cast to the
/// layer's float dtype at most), with their options besides [`IMAGE_KEYS`]. Keras 3's
/// `Equalization` and `Solarization` compute only in training too; `AutoContrast` and
/// `ContrastLimitedAdaptiveHistogramEqualization` compute always and are not here.
pub(super) const AUGMENTATION: &[(&str, &[&str])] = &[
    ("RandomFlip", &["mode"]),
    (
        "RandomRotation",
        &["factor", "fill_mode", "fill_value", "interpolation"],
    ),
    (
        "RandomZoom",
        &[
            "height_factor",
            "width_factor",
            "fill_mode",
            "fill_value",
            "interpolation",
        ],
    ),
    (
        "RandomTranslation",
        &[
            "height_factor",
            "width_factor",
            "fill_mode",
            "fill_value",
            "interpolation",
        ],
    ),
    ("RandomContrast", &["factor", "value_range"]),
    ("RandomBrightness", &["factor", "value_range"]),
    ("RandomHue", &["factor", "value_range"]),
    ("RandomSaturation", &["factor", "value_range"]),
    ("RandomSharpness", &["factor", "value_range"]),
    ("RandomColorDegeneration", &["factor", "value_range"]),
    ("RandomInvert", &["factor", "value_range"]),
    ("RandomPosterization", &["factor", "value_range"]),
    ("RandomGrayscale", &["factor"]),
    (
        "RandomColorJitter",
        &[
            "value_range",
            "brightness_factor",
            "contrast_factor",
            "saturation_factor",
            "hue_factor",
        ],
    ),
    (
        "RandomErasing",
        &["factor", "scale", "fill_value", "value_range"],
    ),
    (
        "RandomGaussianBlur",
        &["factor", "kernel_size", "sigma", "value_range"],
    ),
    (
        "RandomShear",
        &[
            "x_factor",
            "y_factor",
            "fill_mode",
            "fill_value",
            "interpolation",
        ],
    ),
    (
        "RandomPerspective",
        &["factor", "scale", "interpolation", "fill_value"],
    ),
    (
        "RandomElasticTransform",
        &[
            "factor",
            "scale",
            "interpolation",
            "fill_mode",
            "fill_value",
            "value_range",
        ],
    ),
    (
        "Solarization",
        &["value_range", "addition_factor", "threshold_factor"],
    ),
    ("Equalization", &["bins", "value_range"]),
    ("MixUp", &["alpha"]),
    ("CutMix", &["factor"]),
    (
        "AugMix",
        &[
            "value_range",
            "num_chains",
            "chain_depth",
            "factor",
            "alpha",
            "all_ops",
            "interpolation",
        ],
    ),
    (
        "RandAugment",
        &["value_range", "num_ops", "factor", "interpolation"],
    ),
    // tf_keras only.
    ("RandomHeight", &["factor", "interpolation"]),
    ("RandomWidth", &["factor", "interpolation"]),
];

/// Whether `class` is one of the [`AUGMENTATION`] layers.
pub(super) fn is_augmentation(class: &str) -> bool {
    AUGMENTATION.iter().any(|(c, _)| *c == class)
}

pub(super) fn parse(class: &str, options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let keys: &[&str] = match class {
        "Dropout" | "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" => {
            &["rate", "noise_shape", "seed", "data_format"]
        }
        "GaussianNoise" => &["stddev", "seed"],
        "GaussianDropout" | "AlphaDropout" => &["rate", "seed", "noise_shape"],
        "ActivityRegularization" => &["l1", "l2"],
        class => match AUGMENTATION.iter().find(|(c, _)| *c == class) {
            Some((_, keys)) => {
                options.ignore(IMAGE_KEYS);
                keys
            }
            None => &[],
        },
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
