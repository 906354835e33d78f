//! `ReversibleEmbedding` (Keras 3): an Embedding that a call with `reverse=True` runs
//! backwards, projecting vectors onto the vocabulary: `logits = x · embeddings^T` (or
//! `x · reverse_embeddings` when `tie_weights=False`), then, with `logit_soft_cap`,
//! `tanh(logits / cap) * cap` (keras/src/layers/core/reversible_embedding.py). The usual
//! use is a language model's input and output sharing one table.

use serde_json::{Map, Value};

use super::{LayerKind, Options, Source, Step};
use crate::ir::{Activation, Op, ScalarOp, Weights};

#[derive(Debug)]
struct ReversibleEmbedding {
    input_dim: usize,
    output_dim: usize,
    tied: bool,
    soft_cap: Option<f32>,
}

pub(super) fn parse(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    options.only(
        "mask_zero",
        &false.into(),
        " (a mask on a ReversibleEmbedding)",
    );
    options.only(
        "reverse_dtype",
        &Value::Null,
        " (another dtype for the reverse call)",
    );
    let tied = options.bool("tie_weights", true);
    let soft_cap = match options.get("logit_soft_cap") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(c) if c > 0.0 && c.is_finite() => Some(c as f32),
            _ => {
                options.problems.push(format!(
                    "option 'logit_soft_cap'={v} must be a positive number"
                ));
                return None;
            }
        },
    };
    let (input_dim, output_dim) = super::embedding::table_options(options)?;
    Some(Box::new(ReversibleEmbedding {
        input_dim,
        output_dim,
        tied,
        soft_cap,
    }))
}

impl ReversibleEmbedding {
    /// The reverse call: `[*, output_dim] -> [*, input_dim]` logits.
    fn reverse(&self, weights: &[Weights]) -> Result<Vec<Step>, String> {
        let (vocabulary, dim) = (self.input_dim, self.output_dim);
        let kernel = if self.tied {
            // `x · embeddings^T`: the table transposed into Dense's `[in, out]` layout.
            let table = weights.first().ok_or("missing weight 'embeddings'")?;
            super::check_shape("embeddings", table, &[vocabulary, dim])?;
            let mut data = vec![0.0; dim * vocabulary];
            for (v, row) in table.data.chunks_exact(dim).enumerate() {
                for (d, &w) in row.iter().enumerate() {
                    data[d * vocabulary + v] = w;
                }
            }
            Weights::new(vec![dim, vocabulary], data)?
        } else {
            let kernel = weights
                .get(1)
                .ok_or("missing weight 'reverse_embeddings'")?;
            super::check_shape("reverse_embeddings", kernel, &[dim, vocabulary])?;
            kernel.clone()
        };
        let dense = Op::Dense {
            kernel,
            bias: None,
            rescale: None,
            activation: Activation::Linear,
        };
        let mut steps = vec![Step::new(None, dense, vec![Source::Input(0)])];
        if let Some(cap) = self.soft_cap {
            let scalar = |op| {
                Op::Activation(Activation::Scalar {
                    op,
                    value: cap,
                    constant_first: false,
                })
            };
            for (suffix, op) in [
                ("divide", scalar(ScalarOp::Divide)),
                ("tanh", Op::Activation(Activation::Tanh)),
                ("multiply", scalar(ScalarOp::Multiply)),
            ] {
                let from = Source::Step(steps.len() - 1);
                steps.push(Step::new(Some(suffix), op, vec![from]));
            }
        }
        Ok(steps)
    }
}

impl LayerKind for ReversibleEmbedding {
    fn weight_names(&self) -> Vec<&'static str> {
        if self.tied {
            vec!["embeddings"]
        } else {
            vec!["embeddings", "reverse_embeddings"]
        }
    }

    fn build(&self, _input: &[usize], weights: &[Weights]) -> Result<Op, String> {
        let table = weights.first().ok_or("missing weight 'embeddings'")?;
        super::check_shape("embeddings", table, &[self.input_dim, self.output_dim])?;
        Ok(Op::Embedding {
            table: table.clone(),
        })
    }

    fn call_steps(
        &self,
        inputs: &[&[usize]],
        weights: &[Weights],
        kwargs: &Map<String, Value>,
    ) -> Result<Vec<Step>, String> {
        let mut reverse = false;
        for (key, value) in kwargs {
            match (key.as_str(), value) {
                ("reverse", Value::Bool(r)) => reverse = *r,
                _ => {
                    return Err(format!(
                        "is called with keyword argument '{}'={}, which is not supported",
                        crate::error::escape_for_message(key),
                        crate::error::escape_for_message(&value.to_string())
                    ))
                }
            }
        }
        if reverse {
            self.reverse(weights)
        } else {
            self.steps(inputs, weights)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use crate::keras::config::{KerasVersion, LayerEntry};

    fn layer(config: &str) -> Result<Box<dyn LayerKind>, Vec<String>> {
        let entry = LayerEntry::new(
            "e".into(),
            "ReversibleEmbedding".into(),
            serde_json::from_str(config).unwrap(),
        );
        parse(&entry, KerasVersion { major: 3 })
    }

    #[test]
    fn reverse_is_the_transposed_table_and_other_call_arguments_are_refused() {
        let kind = layer(r#"{"input_dim": 3, "output_dim": 2}"#).unwrap();
        let table = Weights::new(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let weights = std::slice::from_ref(&table);
        let reverse: Map<String, Value> = serde_json::from_str(r#"{"reverse": true}"#).unwrap();
        let steps = kind.call_steps(&[&[2]], weights, &reverse).unwrap();
        let [Step {
            op: Op::Dense { kernel, .. },
            ..
        }] = steps.as_slice()
        else {
            panic!("{steps:?}");
        };
        assert_eq!(kernel.shape, [2, 3]);
        assert_eq!(kernel.data, [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        let other: Map<String, Value> = serde_json::from_str(r#"{"training": 1}"#).unwrap();
        let e = kind.call_steps(&[&[2]], weights, &other).unwrap_err();
        assert!(e.contains("training"), "{e}");
    }

    #[test]
    fn a_mask_and_a_bad_cap_are_refused() {
        let p = layer(r#"{"input_dim": 3, "output_dim": 2, "mask_zero": true}"#).unwrap_err();
        assert!(p[0].contains("mask_zero"), "{p:?}");
        let p = layer(r#"{"input_dim": 3, "output_dim": 2, "logit_soft_cap": -1}"#).unwrap_err();
        assert!(p[0].contains("logit_soft_cap"), "{p:?}");
    }
}
