//! `Rescaling`: `x * scale + offset`, scale and offset scalars or arrays broadcast as NumPy
//! does (channels-last).

use super::params::{to_block, ConstArray, FullParam};
use super::{LayerKind, Options};
use crate::ir::{Op, Weights};

#[derive(Debug)]
struct Rescaling {
    scale: ConstArray,
    offset: ConstArray,
}

pub(super) fn parse(options: &mut Options) -> Option<Box<dyn LayerKind>> {
    let mut read = |key: &str, default: f32| match options.get(key).map(ConstArray::parse) {
        None => Some(ConstArray::scalar(default)),
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            options.problems.push(format!("option '{key}': {e}"));
            None
        }
    };
    let scale = read("scale", 1.0);
    let offset = read("offset", 0.0);
    if !options.problems.is_empty() {
        return None;
    }
    if options.get("scale").is_none() {
        options.problems.push("option 'scale' is missing".into());
        return None;
    }
    Some(Box::new(Rescaling {
        scale: scale?,
        offset: offset?,
    }))
}

impl LayerKind for Rescaling {
    fn weight_names(&self) -> Vec<&'static str> {
        vec![]
    }

    fn build(&self, input: &[usize], _weights: &[Weights]) -> Result<Op, String> {
        let scale = FullParam::numpy(&self.scale, input)?;
        let offset = FullParam::numpy(&self.offset, input)?;
        let block = to_block(&[&scale, &offset], input)?;
        let mut values = block.values.into_iter();
        Ok(Op::Affine {
            center: None,
            scale: values.next().unwrap_or_default(),
            shift: values.next().unwrap_or_default(),
            inner: block.inner,
        })
    }
}
