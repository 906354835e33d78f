//! `Embedding`: a table lookup, one row per input index. Keras casts float inputs to
//! int32 (truncation toward zero); TensorFlow raises an error on CPU for an index outside
//! `0..input_dim`. Generated code never reads out of bounds: indices are clamped to
//! `0..=input_dim - 1` (the interpreter does the same).

use serde_json::Value;

use super::{LayerKind, Options};
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct Embedding {
    input_dim: usize,
    output_dim: usize,
    mask_zero: bool,
}

pub(super) fn parse(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    // Keras 2: the sequence length, part of the input shape already.
    options.ignore(&["input_length"]);
    // The mask (index != 0) is made where a recurrent layer consumes it.
    let mask_zero = options.bool("mask_zero", false);
    let (input_dim, output_dim) = table_options(options)?;
    Some(Box::new(Embedding {
        input_dim,
        output_dim,
        mask_zero,
    }))
}

/// The options every embedding table has (Embedding, ReversibleEmbedding): `input_dim` and
/// `output_dim`, training-only ones ignored, LoRA, sparse and quantized tables refused.
pub(super) fn table_options(options: &mut Options) -> Option<(usize, usize)> {
    options.ignore(&[
        "embeddings_initializer",
        "embeddings_regularizer",
        "embeddings_constraint",
        "lora_alpha",
    ]);
    options.only("lora_rank", &Value::Null, " (LoRA adapters)");
    options.only("sparse", &false.into(), " (sparse gradients)");
    options.only(
        "quantization_config",
        &Value::Null,
        " (quantized embeddings)",
    );
    let mut dim = |key: &str| match options.int(key) {
        Some(d) if d > 0 => usize::try_from(d).ok(),
        Some(d) => {
            options
                .problems
                .push(format!("option '{key}'={d} must be positive"));
            None
        }
        None => {
            options.problems.push(format!("option '{key}' is missing"));
            None
        }
    };
    let input_dim = dim("input_dim");
    let output_dim = dim("output_dim");
    Some((input_dim?, output_dim?))
}

impl LayerKind for Embedding {
    fn weight_names(&self) -> Vec<&'static str> {
        vec!["embeddings"]
    }

    fn mask_source(&self) -> Option<super::MaskSource> {
        self.mask_zero.then_some(super::MaskSource::NonZeroInput)
    }

    fn build(&self, _input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let table = weights.first().ok_or("missing weight 'embeddings'")?;
        super::check_shape("embeddings", table, &[self.input_dim, self.output_dim])?;
        Ok(Op::Embedding {
            table: table.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use crate::keras::config::{KerasVersion, LayerEntry};

    fn problems(class: &str, config: &str) -> Vec<String> {
        let entry = LayerEntry::new(
            "e".into(),
            class.into(),
            serde_json::from_str(config).unwrap(),
        );
        parse(&entry, KerasVersion { major: 3 }).unwrap_err()
    }

    #[test]
    fn table_shape_is_checked() {
        let entry = LayerEntry::new(
            "e".into(),
            "Embedding".into(),
            serde_json::from_str(r#"{"input_dim": 4, "output_dim": 2, "input_length": 3}"#)
                .unwrap(),
        );
        let kind = parse(&entry, KerasVersion { major: 2 }).unwrap();
        let table = Weights::new(vec![4, 2], vec![0.0; 8]).unwrap();
        let op = kind.build(&[3], std::slice::from_ref(&table)).unwrap();
        assert_eq!(op.output_shape(&[&[3]]).unwrap(), [3, 2]);
        let wrong = Weights::new(vec![2, 4], vec![0.0; 8]).unwrap();
        assert!(kind
            .build(&[3], &[wrong])
            .unwrap_err()
            .contains("embeddings"));
    }

    #[test]
    fn lora_and_sparse_are_rejected() {
        let p = problems(
            "Embedding",
            r#"{"input_dim": 4, "output_dim": 2, "lora_rank": 2}"#,
        );
        assert!(p[0].contains("lora_rank"), "{p:?}");
        let p = problems(
            "Embedding",
            r#"{"input_dim": 4, "output_dim": 2, "sparse": true}"#,
        );
        assert!(p[0].contains("sparse"), "{p:?}");
        let p = problems("Embedding", r#"{"output_dim": 2}"#);
        assert!(p[0].contains("'input_dim' is missing"), "{p:?}");
        let p = problems("Masking", r#"{"mask_value": "x"}"#);
        assert!(p[0].contains("'mask_value'"), "{p:?}");
    }
}
