//! The integer preprocessing layers: `CategoryEncoding`, `Discretization` and
//! `IntegerLookup` (Keras 3 `keras/src/layers/preprocessing/`, tf_keras's alike), as
//! [`Op::Encode`], [`Op::Bucketize`] and [`Op::Lookup`]. They may read an integer model
//! input; their outputs are integers held as f32 (exact below 2^24). Values Keras refuses
//! at run time (a negative index into a multi-hot encoding, a value outside the
//! vocabulary with `num_oov_indices=0`) cannot stop generated code: they encode to
//! nothing / look up to -1.

use serde_json::Value;

use super::{chain, single, LayerKind, Options, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{EncodeMode, Lookup, Op, Weights, EXACT_INTEGER_LIMIT};

/// `output_mode` of the three layers: `None` is `"int"` (no encoding).
fn output_mode(
    options: &mut Options,
    default: &str,
    int_allowed: bool,
) -> Option<Option<EncodeMode>> {
    let mode = match options.get("output_mode") {
        None => Value::String(default.into()),
        Some(v) => v.clone(),
    };
    let parsed = match mode.as_str() {
        Some("int") if int_allowed => None,
        Some("one_hot") => Some(EncodeMode::OneHot),
        Some("multi_hot" | "binary") => Some(EncodeMode::MultiHot),
        Some("count") => Some(EncodeMode::Count),
        _ => {
            options.problems.push(format!(
                "option 'output_mode'={} is not supported",
                esc(&mode.to_string())
            ));
            return None;
        }
    };
    options.only("sparse", &Value::Bool(false), " (sparse outputs)");
    Some(parsed)
}

/// The encode op for an input of shape `input`, checking what Keras supports.
fn encode_op(input: &[usize], depth: usize, mode: EncodeMode, layer: &str) -> Result<Op, String> {
    match (mode, input.len()) {
        (EncodeMode::OneHot, _) | (_, 1) => Ok(Op::Encode { depth, mode }),
        (_, 0) => Err(format!(
            "a {layer} multi-hot or count encoding of one value per sample combines the whole \
             batch in Keras, which is not supported"
        )),
        // Keras 3's CategoryEncoding declares `[..., num_tokens]` over the last axis but
        // combines over the first; Discretization declares what it computes.
        (_, _) if layer == "CategoryEncoding" || layer == "IntegerLookup" => Err(format!(
            "a {layer} multi-hot or count encoding of an input of rank {} (batch excluded) is \
             not supported: Keras combines over the first axis but declares the last",
            input.len()
        )),
        _ => Ok(Op::Encode { depth, mode }),
    }
}

/// A list of integers from a config (`vocabulary`), or what is wrong with it.
fn integers(value: &Value, what: &str) -> Result<Vec<i64>, String> {
    let items = value.as_array().ok_or_else(|| {
        format!(
            "option '{what}' must be a list of integers, got {}",
            esc(&value.to_string())
        )
    })?;
    items
        .iter()
        .map(|v| {
            v.as_i64().ok_or_else(|| {
                format!(
                    "option '{what}' must be a list of integers, got {}",
                    esc(&v.to_string())
                )
            })
        })
        .collect()
}

/// An integer as an exact f32, or an error naming it.
fn exact(v: i64, what: &str) -> Result<f32, String> {
    let f = v as f32;
    if f.abs() >= EXACT_INTEGER_LIMIT {
        return Err(format!(
            "{what} {v} is not supported: integers of 2^24 or more in magnitude are not exact \
             in the f32 values keras2src computes with"
        ));
    }
    Ok(f)
}

#[derive(Debug)]
struct CategoryEncoding {
    depth: usize,
    mode: EncodeMode,
}

pub(super) fn parse_category_encoding(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    options.ignore(&["output_mode", "sparse"]);
    let tokens = options
        .int("num_tokens")
        .or_else(|| options.int("max_tokens"));
    let mode = output_mode(options, "multi_hot", false)?;
    let depth = match tokens {
        Some(n) if n >= 1 => usize::try_from(n).ok()?,
        Some(n) => {
            options
                .problems
                .push(format!("option 'num_tokens'={n} must be at least 1"));
            return None;
        }
        None => {
            options
                .problems
                .push("option 'num_tokens' is missing".into());
            return None;
        }
    };
    Some(Box::new(CategoryEncoding { depth, mode: mode? }))
}

impl LayerKind for CategoryEncoding {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        encode_op(input, self.depth, self.mode, "CategoryEncoding")
    }
}

#[derive(Debug)]
struct Discretization {
    boundaries: Vec<f32>,
    mode: Option<EncodeMode>,
}

pub(super) fn parse_discretization(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    // `num_bins` and `epsilon` only steer `adapt`, which wrote the boundaries.
    options.ignore(&[
        "num_bins",
        "epsilon",
        "bin_boundaries",
        "output_mode",
        "sparse",
    ]);
    let mode = output_mode(options, "int", true)?;
    let Some(value) = options.get("bin_boundaries") else {
        options.problems.push(
            "option 'bin_boundaries' is missing (a layer never adapted, or tf_keras's adapted \
             layer, which keeps its boundaries as a summary weight): not supported"
                .into(),
        );
        return None;
    };
    let boundaries: Option<Vec<f32>> = value
        .as_array()
        .and_then(|items| items.iter().map(|v| v.as_f64().map(|f| f as f32)).collect());
    let Some(boundaries) = boundaries else {
        options.problems.push(format!(
            "option 'bin_boundaries' must be a list of numbers, got {}",
            esc(&value.to_string())
        ));
        return None;
    };
    // TensorFlow's Bucketize binary-searches the (f32) boundaries, assuming them sorted.
    if boundaries.windows(2).any(|w| w[0] > w[1]) {
        options.problems.push(format!(
            "option 'bin_boundaries'={} is not sorted (Keras's result is then undefined)",
            esc(&value.to_string())
        ));
        return None;
    }
    Some(Box::new(Discretization { boundaries, mode }))
}

impl LayerKind for Discretization {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = single(inputs)?;
        let bucketize = Op::Bucketize {
            boundaries: self.boundaries.clone(),
        };
        Ok(match self.mode {
            None => chain(1, vec![(None, bucketize)]),
            Some(mode) => {
                let depth = self.boundaries.len() + 1;
                let encode = encode_op(input, depth, mode, "Discretization")?;
                chain(1, vec![(Some("bucketize"), bucketize), (None, encode)])
            }
        })
    }
}

#[derive(Debug)]
struct IntegerLookup {
    lookup: Lookup,
    /// The encoding after the lookup and its depth (`None`: `output_mode="int"`).
    encode: Option<(EncodeMode, usize)>,
}

pub(super) fn parse_integer_lookup(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    match integer_lookup(options) {
        Ok(kind) => Some(Box::new(kind)),
        Err(problem) => {
            // Empty: `output_mode` has reported it.
            if !problem.is_empty() {
                options.problems.push(problem);
            }
            None
        }
    }
}

/// `IntegerLookup`'s options (all read below; marked first so that an early error does
/// not report the rest as unsupported).
const LOOKUP_KEYS: &[&str] = &[
    "invert",
    "max_tokens",
    "num_oov_indices",
    "oov_token",
    "mask_token",
    "output_mode",
    "sparse",
    "pad_to_max_tokens",
    "vocabulary_dtype",
    "idf_weights",
    "vocabulary",
    "vocabulary_size",
    "oov_method",
    "salt",
];

fn integer_lookup(options: &mut Options) -> Result<IntegerLookup, String> {
    options.ignore(LOOKUP_KEYS);
    let mode = output_mode(options, "int", true).ok_or("")?;
    let invert = options.bool("invert", false);
    let num_oov = options.int("num_oov_indices").unwrap_or(1);
    let num_oov = usize::try_from(num_oov)
        .map_err(|_| format!("option 'num_oov_indices'={num_oov} must be at least 0"))?;
    let mask_token = options.int("mask_token");
    let oov_token = options.int("oov_token").unwrap_or(-1);
    let max_tokens = options.int("max_tokens");
    let pad = options.bool("pad_to_max_tokens", false);
    let frozen_size = options.int("vocabulary_size");
    options.only("vocabulary_dtype", &Value::String("int64".into()), "");
    options.only("idf_weights", &Value::Null, " (output_mode 'tf_idf')");
    let farmhash = match options.get("oov_method") {
        None => false,
        Some(Value::String(m)) if m == "floormod" => false,
        Some(Value::String(m)) if m == "farmhash" => true,
        Some(other) => {
            return Err(format!(
                "option 'oov_method'={} is not supported",
                esc(&other.to_string())
            ))
        }
    };
    // `salt` only seeds farmhash.
    options.ignore(&["salt"]);
    if farmhash && num_oov > 1 && !invert {
        return Err(
            "option 'oov_method'='farmhash' with several num_oov_indices is not supported (a \
             string hash of each value)"
                .into(),
        );
    }
    if invert && mode.is_some() {
        return Err("option 'invert'=true needs output_mode 'int' (Keras refuses it too)".into());
    }
    let vocabulary = match options.get("vocabulary") {
        Some(v @ Value::Array(_)) => integers(v, "vocabulary")?,
        Some(Value::String(path)) => {
            return Err(format!(
                "the vocabulary is a file outside the model ('{}'), which is not supported",
                esc(path)
            ))
        }
        Some(other) => {
            return Err(format!(
                "option 'vocabulary'={} is not supported",
                esc(&other.to_string())
            ))
        }
        None => {
            return Err(
                "the vocabulary is not in the file: an adapted vocabulary is saved only \
                        in a .keras archive (assets/.../vocabulary.txt), not in .h5 or \
                        architecture JSON"
                    .into(),
            )
        }
    };
    // Keras's `set_vocabulary`: the special tokens may lead the list (as `get_vocabulary`
    // and the assets file write them), then come the tokens.
    let oov_start = usize::from(mask_token.is_some() && mode.is_none());
    let token_start = oov_start + num_oov;
    let special: Vec<i64> = std::iter::repeat_n(mask_token.unwrap_or(0), oov_start)
        .chain(std::iter::repeat_n(oov_token, num_oov))
        .collect();
    let tokens: &[i64] =
        if vocabulary.len() >= token_start && vocabulary[..token_start] == special[..] {
            &vocabulary[token_start..]
        } else {
            &vocabulary
        };
    if tokens.is_empty() {
        return Err("the vocabulary is empty".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(t) = tokens.iter().find(|t| !seen.insert(**t)) {
        return Err(format!("the vocabulary repeats {t} (Keras refuses it)"));
    }
    if let Some(m) = mask_token.filter(|m| tokens.contains(m)) {
        return Err(format!(
            "the vocabulary holds the mask token {m} (Keras refuses it)"
        ));
    }
    if invert && tokens.contains(&oov_token) {
        return Err(format!(
            "the vocabulary holds the OOV token {oov_token} (Keras refuses it)"
        ));
    }
    let size = token_start + tokens.len();
    if let Some(max) = max_tokens.filter(|&m| usize::try_from(m).is_ok_and(|m| size > m)) {
        return Err(format!(
            "the vocabulary has {size} entries, more than max_tokens={max}"
        ));
    }
    if let Some(frozen) = frozen_size.filter(|&f| usize::try_from(f) != Ok(size)) {
        return Err(format!(
            "option 'vocabulary_size'={frozen} differs from the vocabulary's {size} entries"
        ));
    }
    let index = |j: usize| (token_start + j) as f32;
    let lookup = if invert {
        Lookup {
            keys: (0..tokens.len()).map(index).collect(),
            values: tokens
                .iter()
                .map(|&t| exact(t, "vocabulary token"))
                .collect::<Result<_, _>>()?,
            default: exact(oov_token, "oov_token")?,
            mask: mask_token
                .map(|m| exact(m, "mask_token").map(|m| (0.0, m)))
                .transpose()?,
            oov_buckets: None,
        }
    } else {
        Lookup {
            keys: tokens
                .iter()
                .map(|&t| exact(t, "vocabulary token"))
                .collect::<Result<_, _>>()?,
            values: (0..tokens.len()).map(index).collect(),
            default: match num_oov {
                0 => -1.0,
                _ => oov_start as f32,
            },
            // Keras maps the mask token to index 0 (int) or to int64's maximum, which the
            // encodings ignore.
            mask: mask_token
                .map(|m| {
                    let value = if mode.is_none() { 0.0 } else { i64::MAX as f32 };
                    exact(m, "mask_token").map(|m| (m, value))
                })
                .transpose()?,
            oov_buckets: (num_oov > 1).then_some((num_oov, oov_start as f32)),
        }
    };
    if size as f32 >= EXACT_INTEGER_LIMIT {
        return Err(format!("a vocabulary of {size} entries is too large"));
    }
    let encode = match mode {
        None => None,
        Some(mode) => {
            let depth = if pad {
                let max = max_tokens.ok_or("option 'pad_to_max_tokens' needs 'max_tokens'")?;
                usize::try_from(max).map_err(|_| format!("option 'max_tokens'={max} is invalid"))?
            } else {
                size
            };
            Some((mode, depth))
        }
    };
    Ok(IntegerLookup { lookup, encode })
}

impl LayerKind for IntegerLookup {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = single(inputs)?;
        let lookup = Op::Lookup(Box::new(self.lookup.clone()));
        Ok(match self.encode {
            None => chain(1, vec![(None, lookup)]),
            Some((mode, depth)) => {
                let encode = encode_op(input, depth, mode, "IntegerLookup")?;
                chain(1, vec![(Some("lookup"), lookup), (None, encode)])
            }
        })
    }
}
