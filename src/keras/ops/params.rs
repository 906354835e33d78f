//! An operation's arguments by name: the call's tensors (as placeholders), constants, and
//! the Keras 3 constructor options, each read at most once; whatever is left unread is
//! reported as unsupported.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::escape_for_message as esc;
use crate::ir::{numel, Weights};
use crate::keras::config::TENSOR_KEY;

/// An argument value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    /// The call's tensor #k.
    Tensor(usize),
    /// A number or boolean.
    Scalar(f32),
    /// A constant array (`__numpy__`, or a nested list in a tf.keras node).
    Array(Weights),
}

pub(crate) struct Params<'a> {
    /// The shapes of the call's tensors (batch excluded).
    pub shapes: &'a [&'a [usize]],
    values: BTreeMap<String, Value>,
    used: std::collections::BTreeSet<String>,
}

impl<'a> Params<'a> {
    pub fn new(shapes: &'a [&'a [usize]]) -> Self {
        Params {
            shapes,
            values: BTreeMap::new(),
            used: Default::default(),
        }
    }

    /// Sets an argument; the first value given for a name wins.
    pub fn insert(&mut self, name: &str, value: Value) {
        self.values.entry(name.to_string()).or_insert(value);
    }

    /// The raw value; `null` counts as absent.
    pub fn raw(&mut self, name: &str) -> Option<Value> {
        self.used.insert(name.to_string());
        self.values.get(name).filter(|v| !v.is_null()).cloned()
    }

    /// A tensor, number or constant array.
    pub fn arg(&mut self, name: &str) -> Result<Option<Arg>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => to_arg(&v, self.shapes.len()).map(Some).ok_or_else(|| {
                format!("argument '{name}'={} is not supported", esc(&v.to_string()))
            }),
        }
    }

    /// A required tensor argument: its index among the call's tensors.
    pub fn tensor(&mut self, name: &str) -> Result<usize, String> {
        match self.arg(name)? {
            Some(Arg::Tensor(k)) => Ok(k),
            Some(_) => Err(format!(
                "argument '{name}' is a constant; a tensor is supported"
            )),
            None => Err(format!("argument '{name}' is missing")),
        }
    }

    /// A list of tensors (`concatenate([a, b])`).
    pub fn tensors(&mut self, name: &str) -> Result<Vec<usize>, String> {
        let value = self
            .raw(name)
            .ok_or_else(|| format!("argument '{name}' is missing"))?;
        let items = match &value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        items
            .iter()
            .map(|v| match to_arg(v, self.shapes.len()) {
                Some(Arg::Tensor(k)) => Ok(k),
                _ => Err(format!(
                    "argument '{name}' holds a constant; only tensors are supported"
                )),
            })
            .collect()
    }

    pub fn int(&mut self, name: &str) -> Result<Option<i64>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                format!(
                    "argument '{name}' must be an integer, got {}",
                    esc(&v.to_string())
                )
            }),
        }
    }

    /// An integer or a list of integers; `None` when absent.
    pub fn ints(&mut self, name: &str) -> Result<Option<Vec<i64>>, String> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let items: Vec<Value> = match &v {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        items
            .iter()
            .map(Value::as_i64)
            .collect::<Option<Vec<i64>>>()
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "argument '{name}' must be integers, got {}",
                    esc(&v.to_string())
                )
            })
    }

    pub fn bool(&mut self, name: &str, default: bool) -> Result<bool, String> {
        match self.raw(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(format!(
                "argument '{name}' must be true or false, got {}",
                esc(&v.to_string())
            )),
        }
    }

    pub fn number(&mut self, name: &str) -> Result<Option<f32>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(v) => match scalar(&v) {
                Some(x) => Ok(Some(x)),
                None => Err(format!(
                    "argument '{name}' must be a number, got {}",
                    esc(&v.to_string())
                )),
            },
        }
    }

    /// Requires an argument to be absent or equal to `allowed`.
    pub fn only(&mut self, name: &str, allowed: &Value) -> Result<(), String> {
        match self.raw(name) {
            Some(v) if v != *allowed => Err(format!(
                "argument '{name}'={} is not supported",
                esc(&v.to_string())
            )),
            _ => Ok(()),
        }
    }

    /// Fails on arguments nothing read.
    pub fn finish(&self) -> Result<(), String> {
        match self
            .values
            .iter()
            .find(|(k, v)| !self.used.contains(*k) && !v.is_null())
        {
            Some((k, v)) => Err(format!(
                "argument '{}'={} is not supported",
                esc(k),
                esc(&v.to_string())
            )),
            None => Ok(()),
        }
    }
}

/// A tensor placeholder's index.
pub(crate) fn placeholder(value: &Value, tensors: usize) -> Option<usize> {
    let k = value.get(TENSOR_KEY)?.as_u64()?;
    usize::try_from(k).ok().filter(|&k| k < tensors)
}

fn scalar(value: &Value) -> Option<f32> {
    match value {
        Value::Number(n) => n.as_f64().map(|f| f as f32),
        Value::Bool(b) => Some(f32::from(u8::from(*b))),
        _ => None,
    }
}

fn to_arg(value: &Value, tensors: usize) -> Option<Arg> {
    if let Some(k) = placeholder(value, tensors) {
        return Some(Arg::Tensor(k));
    }
    if let Some(x) = scalar(value) {
        return Some(Arg::Scalar(x));
    }
    let data = match value {
        Value::Object(obj)
            if obj.get("class_name").and_then(Value::as_str) == Some("__numpy__") =>
        {
            let config = obj.get("config")?;
            let dtype = config
                .get("dtype")
                .and_then(Value::as_str)
                .unwrap_or("float32");
            if !dtype.starts_with("float") && !dtype.starts_with("int") && dtype != "bool" {
                return None;
            }
            config.get("value")?
        }
        Value::Array(_) => value,
        _ => return None,
    };
    let mut shape = Vec::new();
    let mut flat = Vec::new();
    nested(data, 0, &mut shape, &mut flat)?;
    if numel(&shape) != flat.len() {
        return None;
    }
    Some(match Weights::new(shape, flat) {
        Ok(w) if w.shape.is_empty() => Arg::Scalar(w.data[0]),
        Ok(w) => Arg::Array(w),
        Err(_) => return None,
    })
}

/// Reads a nested list of numbers, row-major, checking it is rectangular.
fn nested(value: &Value, depth: usize, shape: &mut Vec<usize>, flat: &mut Vec<f32>) -> Option<()> {
    if depth > 8 || flat.len() > 1 << 24 {
        return None;
    }
    match value {
        Value::Array(items) => {
            match shape.get(depth) {
                Some(&n) if n != items.len() => return None,
                Some(_) => {}
                // A new axis once values were read: the list is ragged.
                None if !flat.is_empty() => return None,
                None => shape.push(items.len()),
            }
            for item in items {
                nested(item, depth + 1, shape, flat)?;
            }
            Some(())
        }
        other => {
            if shape.len() != depth {
                return None;
            }
            flat.push(scalar(other)?);
            Some(())
        }
    }
}
