//! One function for layers that compute the same thing on different weights, in programs
//! of more than [`INLINE_LAYERS_MAX`] layers. Compilers optimise each layer function on
//! its own there (see [`INLINE_LAYERS_MAX`]), so the compile time grows with the number of
//! distinct functions: NASNetMobile's 662 layer functions have 136 distinct bodies once
//! the weight arrays they read are parameters (its cells repeat at the same shapes).

use std::collections::HashMap;

use super::loops::{walk, Buf, Index, Stmt, Val, Visit};
use super::{Layer, WeightArray, WeightId};

/// Above this many layer functions, each is kept out of line (`#[inline(never)]` in Rust,
/// `KERAS2SRC_NOINLINE` in C++ and C) and reads its weights through parameters, so that
/// layers equal up to their weights share one function ([`Layer::kernel`]). Each layer is called
/// once, so compilers inline them all into `predict_with_scratch`, one huge function
/// optimised in superlinear time: NASNetMobile's 662 layer functions took `rustc -C
/// opt-level=3` 408 s inlined and 92 s out of line (issue 19, BENCHMARKS.md). Small graphs
/// keep inlining: it costs them little compile time, and g++ -O3 optimises some inlined
/// kernels better (bench_cnn, 4 layer functions, at `-O3 -march=native`: 42 µs inlined,
/// 65 µs out of line, the accumulators spilled to the stack). The bench models have at
/// most 68 layer functions.
pub const INLINE_LAYERS_MAX: usize = 100;

/// Above [`INLINE_LAYERS_MAX`] layers: every layer body reads weight parameter `k` (as
/// weight id `k`), `layer.weights[k]` being the array its call passes, and layers with
/// equal bodies, weight dims and argument lengths and types call the first one's function
/// ([`Layer::kernel`]). Run on every entry of a program whose `predict` has more than
/// [`INLINE_LAYERS_MAX`] layers (see [`super::Program::out_of_line`]).
pub(super) fn share(layers: &mut [Layer], weights: &[WeightArray]) {
    // The first layer of each signature and body, by their printed form (exact: every
    // field is printed, f32 constants to the shortest text that reads back).
    let mut first: HashMap<String, usize> = HashMap::new();
    for (i, layer) in layers.iter_mut().enumerate() {
        let mut params = Params::default();
        walk(&mut layer.body, &mut params);
        layer.weights = params.ids;
        let dims: Vec<&[usize]> = layer
            .weights
            .iter()
            .map(|&w| &weights[w].dims[..])
            .collect();
        let inputs: Vec<_> = layer.inputs.iter().map(|a| (a.len, a.dtype)).collect();
        let key = format!(
            "{inputs:?} {:?} {:?} {:?} {dims:?} {:?}",
            (layer.output.len, layer.output.dtype),
            layer.workspace.map(|w| w.len),
            layer.input_names,
            layer.body
        );
        layer.kernel = *first.entry(key).or_insert(i);
    }
}

/// Renumbers the weights a body reads as parameters, in the order it first reads them.
#[derive(Default)]
struct Params {
    ids: Vec<WeightId>,
}

impl Params {
    fn param(&mut self, id: &mut WeightId) {
        *id = match self.ids.iter().position(|w| w == id) {
            Some(k) => k,
            None => {
                self.ids.push(*id);
                self.ids.len() - 1
            }
        };
    }
}

impl Visit for Params {
    fn stmt(&mut self, s: &mut Stmt) {
        if let Stmt::LetIndex {
            value: Index::Table { table, .. },
            ..
        } = s
        {
            self.param(table);
        }
    }

    fn val(&mut self, v: &mut Val) {
        if let Val::Load(Buf::W(id) | Buf::W2(id, _), _) = v {
            self.param(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::InputDtype;
    use crate::lower::loops::{Ix, Place, Unroll};
    use crate::lower::Arg;
    use crate::passes::Location;

    fn arg(len: usize) -> Arg {
        Arg {
            loc: Location::Scratch(0),
            len,
            dtype: InputDtype::F32,
        }
    }

    /// `output[i] = input[i] * w[i] + b[i]` for four elements, reading `w` and `b`.
    fn layer(w: WeightId, b: WeightId, len: usize) -> Layer {
        let i = Ix::default().plus("i", 1);
        let value = Val::load(Buf::In(0), i.clone()) * Val::load(Buf::W(w), i.clone())
            + Val::load(Buf::W(b), i.clone());
        Layer {
            ident: format!("l{w}"),
            comment: String::new(),
            body: vec![Stmt::For {
                var: "i".into(),
                count: len,
                unroll: Unroll::Compiler,
                body: vec![Place::Out(i).set(value)],
            }],
            inputs: vec![arg(len)],
            input_names: vec!["input".into()],
            output: arg(len),
            workspace: None,
            kernel: 0,
            weights: Vec::new(),
            macs: 0,
        }
    }

    fn array(dims: Vec<usize>) -> WeightArray {
        let n = dims.iter().product();
        WeightArray {
            ident: String::new(),
            dims,
            data: vec![0.0; n],
            dtype: crate::ir::WeightsDtype::F32,
        }
    }

    #[test]
    fn layers_equal_up_to_their_weights_share_a_function() {
        // Arrays 0..4 of 4 values, array 4 of 8 (another dims: another function).
        let weights: Vec<WeightArray> = (0..4)
            .map(|_| array(vec![4]))
            .chain([array(vec![8])])
            .collect();
        let pattern = [(0, 1, 4), (2, 3, 4), (1, 1, 4), (4, 1, 4), (0, 1, 8)];
        let mut layers: Vec<Layer> = (0..=INLINE_LAYERS_MAX)
            .map(|k| {
                let (w, b, len) = pattern[k % pattern.len()];
                layer(w, b, len)
            })
            .collect();
        share(&mut layers, &weights);
        let kernels: Vec<usize> = layers[..5].iter().map(|l| l.kernel).collect();
        // Layer 1 reads other arrays of the same dims: layer 0's function. Layer 2 reads
        // one array twice (one parameter), layer 3 an array of other dims, layer 4 other
        // lengths: functions of their own.
        assert_eq!(kernels, [0, 0, 2, 3, 4]);
        assert_eq!(layers[1].weights, [2, 3]);
        assert_eq!(layers[2].weights, [1]);
        assert!(layers[5..].iter().all(|l| l.kernel < 5));
        // The body reads the parameters.
        let mut reads = Params::default();
        walk(&mut layers[1].body, &mut reads);
        assert_eq!(reads.ids, [0, 1]);
    }
}
