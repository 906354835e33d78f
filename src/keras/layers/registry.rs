//! Frontend: the one table of the Keras layer classes keras2src knows. Each row is a layer
//! family's facts: its class names, how its config is parsed (or why it is refused), how
//! many weights it stores when it fails to parse, and what it does with a Keras mask.
//! Adding a layer is one row here plus its file in `layers/`.
//!
//! Classes of one family whose mask policies differ (`Conv1D` drops a mask in Keras 3,
//! `Conv2D` never meets one) are separate rows with the same parser.

use serde_json::Value;

use super::{
    activations, adaptive_pooling, attention, batchnorm, conv, conv_lstm, conv_transpose, dense,
    einsum_dense, embedding, identity, layer_norm, layer_scale, masking, merge, normalization,
    padding, pooling, prelu, preprocessing, recurrent, rescaling, reshape, resizing,
    reversible_embedding, time_distributed, upsampling, LayerKind, Options, WeightCount,
};
use crate::keras::config::{self, KerasVersion, LayerEntry};

/// The class names of a row.
pub(crate) enum Classes {
    /// These names.
    Named(&'static [&'static str]),
    /// The class of each `(class, options)` entry of a table (the augmentation layers).
    Keyed(&'static [(&'static str, &'static [&'static str])]),
}

impl Classes {
    fn contains(&self, class: &str) -> bool {
        match self {
            Classes::Named(names) => names.contains(&class),
            Classes::Keyed(table) => table.iter().any(|(c, _)| *c == class),
        }
    }

    fn names(&self) -> Vec<&'static str> {
        match self {
            Classes::Named(names) => names.to_vec(),
            Classes::Keyed(table) => table.iter().map(|(c, _)| *c).collect(),
        }
    }
}

/// How a row's layers are parsed.
pub(crate) enum Parse {
    /// Reads the config (through [`Options`]) into a layer; `None` when it is invalid, with
    /// the problems left in the options.
    Layer(fn(&LayerEntry, &mut Options, KerasVersion) -> Option<Box<dyn LayerKind>>),
    /// Refused whatever the config says; the reason, given the class.
    Refused(fn(&str) -> String),
}

/// What a layer does with a Keras mask that reaches it (see `keras::mask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskPolicy {
    /// Its [`LayerKind`] decides: it makes a mask, consumes one (recurrent layers,
    /// GlobalAveragePooling1D, MultiHeadAttention), or a mask reaching it is refused.
    Own,
    /// Passes the mask on unchanged, step by step (the layer sets `supports_masking` in
    /// Keras 3 and tf_keras and does not read the mask at inference).
    Passes,
    /// Keras 3 computes it without the mask and its output carries none (it does not set
    /// `supports_masking`; tf_keras raises an error for it, so its files cannot contain
    /// the pattern).
    DroppedInKeras3,
    /// A merge: the output mask is computed from the inputs' masks (Keras 3: OR when every
    /// input has one; tf_keras: AND of those given); the layer does not read them.
    Merges,
}

/// One layer family.
pub(crate) struct LayerRow {
    pub classes: Classes,
    pub parse: Parse,
    /// A best-effort weight count from the class and config alone, for a layer that fails
    /// to parse (so that legacy weights can still be matched by position); `None` when it
    /// cannot be known.
    pub weights: fn(&LayerEntry) -> Option<WeightCount>,
    pub mask: MaskPolicy,
}

const fn row(
    classes: &'static [&'static str],
    parse: fn(&LayerEntry, &mut Options, KerasVersion) -> Option<Box<dyn LayerKind>>,
    weights: fn(&LayerEntry) -> Option<WeightCount>,
    mask: MaskPolicy,
) -> LayerRow {
    LayerRow {
        classes: Classes::Named(classes),
        parse: Parse::Layer(parse),
        weights,
        mask,
    }
}

const fn refused(
    classes: &'static [&'static str],
    why: fn(&str) -> String,
    weights: fn(&LayerEntry) -> Option<WeightCount>,
) -> LayerRow {
    LayerRow {
        classes: Classes::Named(classes),
        parse: Parse::Refused(why),
        weights,
        mask: MaskPolicy::Own,
    }
}

use MaskPolicy::{DroppedInKeras3, Merges, Own, Passes};

/// Every Keras layer class keras2src knows, one row per family.
pub(crate) const REGISTRY: &[LayerRow] = &[
    row(&["Dense"], |_, o, v| dense::parse(o, v), with_bias, Passes),
    row(
        &["Activation", "ReLU", "LeakyReLU", "ELU"],
        |e, o, v| activations::parse(&e.class, o, v),
        no_weights,
        Passes,
    ),
    row(
        &["Softmax"],
        |e, o, v| activations::parse(&e.class, o, v),
        no_weights,
        Own,
    ),
    row(&["PReLU"], |_, o, _| prelu::parse(o), one_weight, Own),
    row(
        &["BatchNormalization"],
        |_, o, _| batchnorm::parse(o),
        batchnorm_weights,
        Own,
    ),
    row(
        &["Normalization"],
        |_, o, _| normalization::parse(o),
        normalization_weights,
        Own,
    ),
    row(
        &["LayerNormalization"],
        |_, o, _| layer_norm::parse_layer_norm(o),
        layer_norm_weights,
        Passes,
    ),
    row(
        &["UnitNormalization"],
        |_, o, v| layer_norm::parse_unit_norm(o, v),
        no_weights,
        Own,
    ),
    row(
        &["GroupNormalization"],
        |_, o, _| layer_norm::parse_group_norm(o),
        |e| all(flag(e, "scale") + flag(e, "center")),
        Own,
    ),
    row(
        &["RMSNormalization"],
        |_, o, _| layer_norm::parse_rms_norm(o),
        one_weight,
        Own,
    ),
    row(
        &["LayerScale"],
        |e, o, _| layer_scale::parse(e, o),
        one_weight,
        Own,
    ),
    row(
        &["Embedding"],
        |_, o, _| embedding::parse(o),
        one_weight,
        Own,
    ),
    row(
        &["ReversibleEmbedding"],
        |_, o, _| reversible_embedding::parse(o),
        |e| all(1 + usize::from(e.config.get("tie_weights") == Some(&Value::Bool(false)))),
        Own,
    ),
    row(
        &["TimeDistributed"],
        |_, o, v| time_distributed::parse(o, v),
        time_distributed::loose_weight_count,
        Own,
    ),
    row(&["Masking"], |_, o, _| masking::parse(o), no_weights, Own),
    // Keras 3 writes the masks its layers pass as these op layers.
    row(
        &["NotEqual"],
        |_, _, _| Some(Box::new(masking::NotEqual)),
        no_weights,
        Own,
    ),
    row(&["Any"], |_, o, _| masking::parse_any(o), no_weights, Own),
    row(
        &["LogicalOr", "LogicalAnd"],
        |e, _, _| {
            Some(Box::new(masking::Logical {
                or: e.class == "LogicalOr",
            }))
        },
        no_weights,
        Own,
    ),
    row(
        &["Rescaling"],
        |_, o, _| rescaling::parse(o),
        no_weights,
        Own,
    ),
    row(
        &["Flatten"],
        |_, o, _| reshape::parse_flatten(o),
        no_weights,
        DroppedInKeras3,
    ),
    row(
        &["Reshape"],
        |_, o, _| reshape::parse_reshape(o),
        no_weights,
        Own,
    ),
    row(
        &["Permute"],
        |_, o, _| reshape::parse_permute(o),
        no_weights,
        Own,
    ),
    row(
        &["RepeatVector"],
        |_, o, _| reshape::parse_repeat_vector(o),
        no_weights,
        Own,
    ),
    row(
        &["Conv1D"],
        |e, o, v| conv::parse(&e.class, o, v),
        with_bias,
        DroppedInKeras3,
    ),
    row(
        &["Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D"],
        |e, o, v| conv::parse(&e.class, o, v),
        with_bias,
        Own,
    ),
    row(
        &["SeparableConv1D", "SeparableConv2D"],
        |e, o, v| conv::parse(&e.class, o, v),
        |e| all(2 + flag(e, "use_bias")),
        Own,
    ),
    row(
        &["Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"],
        |e, o, v| conv_transpose::parse(&e.class, o, v),
        with_bias,
        Own,
    ),
    row(
        &["MaxPooling1D", "AveragePooling1D"],
        |e, o, _| pooling::parse_pool(&e.class, o),
        no_weights,
        DroppedInKeras3,
    ),
    row(
        &[
            "MaxPooling2D",
            "MaxPooling3D",
            "AveragePooling2D",
            "AveragePooling3D",
        ],
        |e, o, _| pooling::parse_pool(&e.class, o),
        no_weights,
        Own,
    ),
    row(
        &["GlobalMaxPooling1D"],
        |e, o, _| pooling::parse_global(&e.class, o),
        no_weights,
        DroppedInKeras3,
    ),
    row(
        &[
            "GlobalMaxPooling2D",
            "GlobalMaxPooling3D",
            "GlobalAveragePooling1D",
            "GlobalAveragePooling2D",
            "GlobalAveragePooling3D",
        ],
        |e, o, _| pooling::parse_global(&e.class, o),
        no_weights,
        Own,
    ),
    row(
        &["ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"],
        |e, o, _| padding::parse_zero_padding(&e.class, o),
        no_weights,
        Own,
    ),
    row(
        &["Cropping1D", "Cropping2D", "Cropping3D"],
        |e, o, _| padding::parse_cropping(&e.class, o),
        no_weights,
        Own,
    ),
    row(
        &["UpSampling1D", "UpSampling2D", "UpSampling3D"],
        |e, o, _| upsampling::parse(&e.class, o),
        no_weights,
        Own,
    ),
    row(
        &["EinsumDense"],
        |_, o, v| einsum_dense::parse(o, v),
        |e| all(1 + usize::from(present(e, "bias_axes"))),
        Own,
    ),
    row(
        &["Resizing", "CenterCrop", "RandomCrop"],
        |e, o, v| resizing::parse(&e.class, o, v),
        no_weights,
        Own,
    ),
    row(
        &[
            "AdaptiveAveragePooling1D",
            "AdaptiveAveragePooling2D",
            "AdaptiveAveragePooling3D",
            "AdaptiveMaxPooling1D",
            "AdaptiveMaxPooling2D",
            "AdaptiveMaxPooling3D",
        ],
        |e, o, _| adaptive_pooling::parse(&e.class, o),
        no_weights,
        Own,
    ),
    row(
        &[
            "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
        ],
        |e, o, _| merge::parse_merge(&e.class, o),
        no_weights,
        Merges,
    ),
    row(
        &["Concatenate"],
        |_, o, _| merge::parse_concatenate(o),
        no_weights,
        Own,
    ),
    row(&["Dot"], |_, o, v| merge::parse_dot(o, v), no_weights, Own),
    row(
        &["Attention", "AdditiveAttention"],
        |e, o, _| attention::parse_dense_attention(&e.class, o),
        attention::loose_weight_count,
        Own,
    ),
    row(
        &["MultiHeadAttention"],
        |_, o, v| attention::parse_multi_head(o, v),
        attention::loose_weight_count,
        Own,
    ),
    row(
        &["GroupQueryAttention"],
        |_, o, v| attention::parse_grouped_query(o, v),
        attention::loose_weight_count,
        Own,
    ),
    row(
        recurrent::CLASSES,
        |e, o, v| recurrent::parse(&e.class, o, v),
        recurrent_weights,
        Own,
    ),
    row(
        &["Bidirectional"],
        |_, o, v| recurrent::parse_bidirectional(o, v),
        recurrent_weights,
        Own,
    ),
    row(
        &["ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"],
        |e, o, v| conv_lstm::parse(&e.class, o, v),
        |e| all(conv_lstm::loose_weight_count(&e.config)),
        Own,
    ),
    row(
        &[
            "Dropout",
            "GaussianNoise",
            "GaussianDropout",
            "AlphaDropout",
            "ActivityRegularization",
            "Identity",
        ],
        |e, o, _| identity::parse(&e.class, o),
        no_weights,
        Passes,
    ),
    row(
        &["SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"],
        |e, o, _| identity::parse(&e.class, o),
        no_weights,
        Own,
    ),
    LayerRow {
        classes: Classes::Keyed(identity::AUGMENTATION),
        parse: Parse::Layer(|e, o, _| identity::parse(&e.class, o)),
        weights: no_weights,
        mask: Own,
    },
    row(
        &["CategoryEncoding"],
        |_, o, _| preprocessing::parse_category_encoding(o),
        no_weights,
        Own,
    ),
    row(
        &["Discretization"],
        |_, o, _| preprocessing::parse_discretization(o),
        |e| present(e, "bin_boundaries").then_some(WeightCount::all(0)),
        Own,
    ),
    row(
        &["IntegerLookup"],
        |_, o, _| preprocessing::parse_integer_lookup(o),
        |e| (!present(e, "idf_weights")).then_some(WeightCount::all(0)),
        Own,
    ),
    refused(
        &[
            "AutoContrast",
            "ContrastLimitedAdaptiveHistogramEqualization",
        ],
        |class| {
            format!(
                "{class} computes at inference too (a per-image contrast stretch / histogram \
                 equalisation), which is not supported"
            )
        },
        no_weights,
    ),
    refused(
        &[
            "StringLookup",
            "TextVectorization",
            "Hashing",
            "HashedCrossing",
        ],
        |class| {
            format!(
                "{class} works on strings (or hashes), which generated code cannot take as \
                 input: run it before the model and feed the model its output"
            )
        },
        unknown_weights,
    ),
    refused(
        config::MODEL_CLASSES,
        |_| {
            "a nested model without its layers in the file (a subclassed model?) is not \
             supported"
                .into()
        },
        unknown_weights,
    ),
    refused(
        &["Lambda"],
        |_| {
            "Lambda layers hold Python code, which cannot be converted: write the \
             computation with Keras layers or `keras.ops` calls on the tensors (saved as \
             operations, which are supported), or run it outside the model"
                .into()
        },
        unknown_weights,
    ),
];

/// The row of a layer class, if keras2src knows it.
pub(crate) fn find(class: &str) -> Option<&'static LayerRow> {
    REGISTRY.iter().find(|row| row.classes.contains(class))
}

/// What a layer of this class does with a Keras mask ([`MaskPolicy::Own`] for a class
/// not in the registry).
pub(crate) fn mask_policy(class: &str) -> MaskPolicy {
    find(class).map_or(Own, |row| row.mask)
}

/// The classes with this mask policy, in registry order.
pub(crate) fn classes_with(mask: MaskPolicy) -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|row| row.mask == mask)
        .flat_map(|row| row.classes.names())
        .collect()
}

fn all(total: usize) -> Option<WeightCount> {
    Some(WeightCount::all(total))
}

fn no_weights(_: &LayerEntry) -> Option<WeightCount> {
    all(0)
}

fn one_weight(_: &LayerEntry) -> Option<WeightCount> {
    all(1)
}

fn unknown_weights(_: &LayerEntry) -> Option<WeightCount> {
    None
}

/// A boolean option as 0 or 1 (absent or not a boolean: 1).
fn flag(entry: &LayerEntry, key: &str) -> usize {
    usize::from(
        entry
            .config
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(true),
    )
}

/// Whether an option is present and not null.
fn present(entry: &LayerEntry, key: &str) -> bool {
    entry.config.get(key).is_some_and(|v| !v.is_null())
}

/// A kernel and, with `use_bias`, a bias.
fn with_bias(entry: &LayerEntry) -> Option<WeightCount> {
    all(1 + flag(entry, "use_bias"))
}

fn batchnorm_weights(entry: &LayerEntry) -> Option<WeightCount> {
    let trainable = flag(entry, "center") + flag(entry, "scale");
    Some(WeightCount {
        total: trainable + 2,
        trainable,
    })
}

fn normalization_weights(entry: &LayerEntry) -> Option<WeightCount> {
    Some(if present(entry, "mean") {
        WeightCount::all(0)
    } else {
        WeightCount {
            total: 3,
            trainable: 0,
        }
    })
}

fn layer_norm_weights(entry: &LayerEntry) -> Option<WeightCount> {
    let rms = entry
        .config
        .get("rms_scaling")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let scale = flag(entry, "scale") == 1 || rms;
    let center = flag(entry, "center") == 1 && !rms;
    all(usize::from(scale) + usize::from(center))
}

fn recurrent_weights(entry: &LayerEntry) -> Option<WeightCount> {
    recurrent::loose_weight_count(&entry.class, &entry.config).and_then(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_one_row() {
        let mut seen = std::collections::BTreeSet::new();
        for row in REGISTRY {
            for class in row.classes.names() {
                assert!(seen.insert(class), "{class} is in two rows");
            }
        }
        assert_eq!(mask_policy("Conv1D"), DroppedInKeras3);
        assert_eq!(mask_policy("Conv2D"), Own);
        assert_eq!(mask_policy("NoSuchLayer"), Own);
        assert_eq!(classes_with(Merges).len(), 6);
    }
}
