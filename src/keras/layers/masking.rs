//! `Masking`: zeroes the time steps whose features all equal `mask_value` and makes the
//! Keras mask (`any(x != mask_value)` over the last axis) that recurrent layers consume
//! (see `keras/src/layers/core/masking.py`).

use serde_json::{Map, Value};

use super::{LayerKind, MaskSource, Options, Source, Step};
use crate::error::escape_for_message as esc;
use crate::ir::{MergeKind, Op, Weights};

#[derive(Debug)]
struct Masking {
    value: f32,
}

pub(super) fn parse(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let value = match options.get("mask_value") {
        None => Some(0.0),
        Some(v) => match v.as_f64() {
            Some(x) if (x as f32).is_finite() => Some(x as f32),
            _ => {
                options.problems.push(format!(
                    "option 'mask_value'={v} is not supported (a finite number is)"
                ));
                None
            }
        },
    };
    Some(Box::new(Masking { value: value? }))
}

impl LayerKind for Masking {
    fn weight_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn mask_source(&self) -> Option<MaskSource> {
        Some(MaskSource::Step(0))
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        let input = super::single(inputs)?;
        let [lead @ .., _] = input else {
            return Err(format!("needs an input of rank 2 or more, got {input:?}"));
        };
        if lead.is_empty() {
            return Err(format!("needs an input of rank 2 or more, got {input:?}"));
        }
        let mut target: Vec<i64> = lead.iter().map(|&d| d as i64).collect();
        target.push(1);
        Ok(vec![
            Step::new(
                Some("mask"),
                Op::SequenceMask {
                    value: self.value,
                    reduce_last: true,
                },
                vec![Source::Input(0)],
            ),
            Step::new(
                Some("mask_column"),
                Op::Reshape { target },
                vec![Source::Step(0)],
            ),
            Step::new(
                None,
                Op::Merge {
                    kind: MergeKind::Multiply,
                },
                vec![Source::Input(0), Source::Step(1)],
            ),
        ])
    }
}

/// Keras 3's `not_equal(x, c)` op layer with a number `c` (the mask of an Embedding with
/// `mask_zero`, or the first half of a Masking layer's): 1.0 where `x != c`.
#[derive(Debug)]
pub(super) struct NotEqual;

impl LayerKind for NotEqual {
    fn weight_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn operation_steps(
        &self,
        inputs: &[&[usize]],
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Option<Result<Vec<Step>, String>> {
        Some(not_equal(inputs, args, kwargs))
    }
}

/// The steps of `not_equal(x, c)`: its arguments as written, the tensor as a placeholder.
fn not_equal(
    inputs: &[&[usize]],
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Vec<Step>, String> {
    super::single(inputs)
        .map_err(|_| "not_equal of two tensors is not supported (of a tensor and a number is)")?;
    let constants: Vec<Value> = args
        .iter()
        .filter(|a| a.is_number() || a.is_boolean())
        .cloned()
        .collect();
    let value = match constants.as_slice() {
        [v] => v.as_f64().filter(|v| (*v as f32).is_finite()),
        _ => None,
    };
    let Some(value) = value else {
        return Err(format!(
            "not_equal with arguments {} is not supported (a tensor and a finite number is)",
            esc(&Value::Array(constants).to_string())
        ));
    };
    if let Some((key, _)) = kwargs.iter().find(|(_, v)| !v.is_null()) {
        return Err(format!(
            "is called with keyword argument '{}', which is not supported",
            esc(key)
        ));
    }
    Ok(vec![Step::new(
        None,
        Op::SequenceMask {
            value: value as f32,
            reduce_last: false,
        },
        vec![Source::Input(0)],
    )])
}

/// Keras 3's `logical_or(a, b)` / `logical_and(a, b)` op layers over 0/1 masks (the
/// masks Keras 3 merge layers compute), as the maximum / product.
#[derive(Debug)]
pub(super) struct Logical {
    pub or: bool,
}

impl LayerKind for Logical {
    fn weight_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn steps(&self, inputs: &[&[usize]], _weights: &[Weights]) -> Result<Vec<Step>, String> {
        if inputs.len() != 2 {
            return Err(format!("expects two tensors, got {}", inputs.len()));
        }
        let kind = if self.or {
            MergeKind::Maximum
        } else {
            MergeKind::Multiply
        };
        Ok(vec![Step::new(
            None,
            Op::Merge { kind },
            vec![Source::Input(0), Source::Input(1)],
        )])
    }
}

/// Keras 3's `any(m, axis=-1)` op layer over a 0/1 mask (a Masking layer's mask).
#[derive(Debug)]
struct AnyLast {
    axis: i64,
}

pub(super) fn parse_any(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let axis = options.int("axis");
    if options.bool("keepdims", false) {
        options
            .problems
            .push("option 'keepdims'=true is not supported".into());
        return None;
    }
    match axis {
        Some(axis) => Some(Box::new(AnyLast { axis })),
        None => {
            options
                .problems
                .push("option 'axis' is required (the last axis is supported)".into());
            None
        }
    }
}

impl LayerKind for AnyLast {
    fn weight_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        // `axis` counts the batch axis.
        let last = input.len() as i64;
        if self.axis != -1 && self.axis != last {
            return Err(format!(
                "any over axis {} is not supported (over the last axis is)",
                self.axis
            ));
        }
        // On 0/1 values, `any` is "not all equal to 0".
        Ok(Op::SequenceMask {
            value: 0.0,
            reduce_last: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use crate::keras::config::{KerasVersion, LayerEntry};

    fn kind(class: &str, config: &str) -> Result<Box<dyn LayerKind>, Vec<String>> {
        let entry = LayerEntry::new(
            "m".into(),
            class.into(),
            serde_json::from_str(config).unwrap(),
        );
        parse(&entry, KerasVersion::KERAS3)
    }

    #[test]
    fn masking_zeroes_and_makes_the_mask() {
        let masking = kind("Masking", r#"{"mask_value": -1.0}"#).unwrap();
        assert_eq!(masking.mask_source(), Some(MaskSource::Step(0)));
        let steps = masking.steps(&[&[5, 3]], &[]).unwrap();
        assert_eq!(
            steps[0].op,
            Op::SequenceMask {
                value: -1.0,
                reduce_last: true
            }
        );
        assert_eq!(steps[0].op.output_shape(&[&[5, 3]]).unwrap(), [5]);
        assert!(masking.steps(&[&[5]], &[]).is_err());
        let err = kind("Masking", r#"{"mask_value": "x"}"#).unwrap_err();
        assert!(err[0].contains("'mask_value'"), "{err:?}");
    }

    #[test]
    fn keras3_mask_ops() {
        let not_equal = kind("NotEqual", r#"{"name": "not_equal"}"#).unwrap();
        let tensor = |k: usize| serde_json::json!({ "__tensor__": k });
        let steps = |inputs: &[&[usize]], args: &[Value]| {
            not_equal
                .operation_steps(inputs, args, &Map::new())
                .expect("an operation")
        };
        let ok = steps(&[&[7]], &[tensor(0), serde_json::json!(0)]).unwrap();
        assert_eq!(
            ok[0].op,
            Op::SequenceMask {
                value: 0.0,
                reduce_last: false
            }
        );
        let err = steps(&[&[7], &[7]], &[tensor(0), tensor(1)]).unwrap_err();
        assert!(err.contains("two tensors"), "{err}");
        let err = steps(&[&[7]], &[tensor(0), serde_json::json!("a")]).unwrap_err();
        assert!(err.contains("not_equal with arguments"), "{err}");
        let any = kind("Any", r#"{"axis": -1, "keepdims": false}"#).unwrap();
        assert!(any.build(&[7, 3], &[]).is_ok());
        let any = kind("Any", r#"{"axis": 1, "keepdims": false}"#).unwrap();
        assert!(any.build(&[7, 3], &[]).unwrap_err().contains("axis 1"));
        let err = kind("Any", r#"{"axis": -1, "keepdims": true}"#).unwrap_err();
        assert!(err[0].contains("'keepdims'"), "{err:?}");
    }
}
