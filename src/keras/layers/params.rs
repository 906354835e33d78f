//! Per-channel parameters (BatchNormalization, Normalization, Rescaling) broadcast to the
//! IR's `Affine` form: values repeat every `inner` elements over a block of `channels`.

use serde_json::Value;

use crate::ir::{checked_numel, numel, MAX_TENSOR_ELEMENTS};

/// A constant from a config: a number, nested lists of numbers, or a Keras
/// `{"class_name": "__numpy__", "config": {"value": ...}}` object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConstArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl ConstArray {
    pub fn parse(value: &Value) -> Result<Self, String> {
        let value = match value {
            Value::Object(obj)
                if obj.get("class_name").and_then(Value::as_str) == Some("__numpy__") =>
            {
                obj.get("config")
                    .and_then(|c| c.get("value"))
                    .ok_or("a '__numpy__' value without 'value'")?
            }
            other => other,
        };
        let mut shape = Vec::new();
        let mut probe = value;
        while let Value::Array(items) = probe {
            shape.push(items.len());
            if shape.len() > 8 {
                return Err("array has too many dimensions".into());
            }
            match items.first() {
                Some(first) => probe = first,
                None => break,
            }
        }
        if checked_numel(&shape).is_none() {
            return Err("array is too large".into());
        }
        let mut data = Vec::with_capacity(numel(&shape));
        flatten(value, &shape, &mut data)?;
        Ok(ConstArray { shape, data })
    }

    pub fn scalar(v: f32) -> Self {
        ConstArray {
            shape: vec![],
            data: vec![v],
        }
    }
}

fn flatten(value: &Value, shape: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
    match (value, shape.split_first()) {
        (Value::Array(items), Some((&len, rest))) if items.len() == len => {
            for item in items {
                flatten(item, rest, out)?;
            }
            Ok(())
        }
        (v, None) => {
            let f = match v {
                Value::Number(n) => n.as_f64().ok_or("not a number")?,
                Value::String(s) => super::super::nonfinite(s).ok_or_else(|| {
                    format!("'{}' is not a number", crate::error::escape_for_message(s))
                })?,
                other => return Err(format!("expected a number, got {other}")),
            };
            out.push(f as f32);
            Ok(())
        }
        _ => Err("array is ragged (rows of different lengths)".into()),
    }
}

/// A parameter laid out over the full input shape (batch excluded), with size 1 on the
/// axes it is broadcast over.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FullParam {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl FullParam {
    /// NumPy broadcasting of `array` against an input of `input` shape (batch excluded):
    /// dimensions align from the right; a leading batch dimension must be 1.
    pub fn numpy(array: &ConstArray, input: &[usize]) -> Result<Self, String> {
        let mut dims = array.shape.clone();
        while dims.len() > input.len() {
            if dims.first() != Some(&1) {
                return Err(format!(
                    "a value of shape {:?} does not broadcast to input shape {input:?}",
                    array.shape
                ));
            }
            dims.remove(0);
        }
        let mut shape = vec![1; input.len() - dims.len()];
        shape.extend(dims);
        Self::checked(shape, array.data.clone(), input)
    }

    /// A parameter whose dimensions belong to `axes` (sorted IR axes), aligned from the
    /// right as Keras's Normalization does (`expanded_shape[keep_axis[-i]] = shape[-i]`).
    pub fn on_axes(array: &ConstArray, axes: &[usize], input: &[usize]) -> Result<Self, String> {
        if array.shape.len() > axes.len() {
            return Err(format!(
                "a value of shape {:?} has more dimensions than the {} kept axes",
                array.shape,
                axes.len()
            ));
        }
        let mut shape = vec![1; input.len()];
        for (dim, &axis) in array.shape.iter().rev().zip(axes.iter().rev()) {
            if let Some(slot) = shape.get_mut(axis) {
                *slot = *dim;
            }
        }
        Self::checked(shape, array.data.clone(), input)
    }

    fn checked(shape: Vec<usize>, data: Vec<f32>, input: &[usize]) -> Result<Self, String> {
        let fits =
            shape.len() == input.len() && shape.iter().zip(input).all(|(&p, &d)| p == 1 || p == d);
        if !fits || numel(&shape) != data.len() {
            return Err(format!(
                "a value of shape {shape:?} does not broadcast to input shape {input:?}"
            ));
        }
        Ok(FullParam { shape, data })
    }
}

/// Parameters in `Affine` form: one value per channel of the block, and the stride.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub values: Vec<Vec<f32>>,
    pub inner: usize,
}

/// Expands parameters (all over the same `input` shape) into the `Affine` layout: the block
/// spans from the first to the last axis where any parameter varies; values repeat over
/// axes inside the block where they do not vary, and over the `inner` axes after it.
pub(crate) fn to_block(params: &[&FullParam], input: &[usize]) -> Result<Block, String> {
    let varies = |axis: usize| {
        params
            .iter()
            .any(|p| p.shape.get(axis).is_some_and(|&d| d > 1))
    };
    let axes: Vec<usize> = (0..input.len()).filter(|&a| varies(a)).collect();
    let (first, last) = match (axes.first(), axes.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => {
            // Every parameter is a single value.
            return Ok(Block {
                values: params.iter().map(|p| p.data.clone()).collect(),
                inner: 1,
            });
        }
    };
    let block = &input[first..=last];
    let channels = numel(block);
    if channels > MAX_TENSOR_ELEMENTS {
        return Err("parameters are too large".into());
    }
    let inner = numel(&input[last + 1..]);
    let values = params
        .iter()
        .map(|p| {
            let mut out = Vec::with_capacity(channels);
            let mut index = vec![0usize; block.len()];
            for _ in 0..channels {
                // Row-major offset into the parameter, with broadcast axes fixed at 0.
                let mut offset = 0;
                for (k, &i) in index.iter().enumerate() {
                    let dim = p.shape[first + k];
                    offset = offset * dim + if dim == 1 { 0 } else { i };
                }
                out.push(p.data[offset]);
                for k in (0..block.len()).rev() {
                    index[k] += 1;
                    if index[k] < block[k] {
                        break;
                    }
                    index[k] = 0;
                }
            }
            out
        })
        .collect();
    Ok(Block { values, inner })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(shape: &[usize], data: &[f32]) -> FullParam {
        FullParam {
            shape: shape.to_vec(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn last_axis() {
        let b = to_block(&[&full(&[1, 3], &[1., 2., 3.])], &[2, 3]).unwrap();
        assert_eq!(b.values, vec![vec![1., 2., 3.]]);
        assert_eq!(b.inner, 1);
    }

    #[test]
    fn first_axis_has_inner_stride() {
        let b = to_block(&[&full(&[2, 1, 1], &[1., 2.])], &[2, 4, 5]).unwrap();
        assert_eq!(b.values, vec![vec![1., 2.]]);
        assert_eq!(b.inner, 20);
    }

    #[test]
    fn non_contiguous_axes_are_expanded() {
        // Varies on axes 0 and 2 of [2, 2, 3]: the block is the whole shape.
        let p = full(&[2, 1, 3], &[1., 2., 3., 4., 5., 6.]);
        let b = to_block(&[&p], &[2, 2, 3]).unwrap();
        assert_eq!(
            b.values,
            vec![vec![1., 2., 3., 1., 2., 3., 4., 5., 6., 4., 5., 6.]]
        );
        assert_eq!(b.inner, 1);
    }

    #[test]
    fn scalars_and_mixed() {
        let s = full(&[1, 1], &[7.]);
        let v = full(&[1, 3], &[1., 2., 3.]);
        let b = to_block(&[&s, &v], &[4, 3]).unwrap();
        assert_eq!(b.values, vec![vec![7., 7., 7.], vec![1., 2., 3.]]);
        let b = to_block(&[&s], &[4, 3]).unwrap();
        assert_eq!(b.values, vec![vec![7.]]);
    }

    #[test]
    fn const_arrays() {
        let v: Value = serde_json::from_str("[[1, 2], [3, \"nan\"]]").unwrap();
        let a = ConstArray::parse(&v).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        assert!(a.data[3].is_nan());
        let v: Value = serde_json::from_str("[[1, 2], [3]]").unwrap();
        assert!(ConstArray::parse(&v).is_err());
        let v: Value = serde_json::from_str("2.5").unwrap();
        assert_eq!(ConstArray::parse(&v).unwrap(), ConstArray::scalar(2.5));
    }

    #[test]
    fn numpy_and_axes_alignment() {
        let a = ConstArray {
            shape: vec![4],
            data: vec![1., 2., 3., 4.],
        };
        // NumPy aligns to the last axis; Normalization to the kept axis.
        assert!(FullParam::numpy(&a, &[4, 5]).is_err());
        assert_eq!(
            FullParam::on_axes(&a, &[0], &[4, 5]).unwrap().shape,
            vec![4, 1]
        );
        assert_eq!(FullParam::numpy(&a, &[5, 4]).unwrap().shape, vec![1, 4]);
    }
}
