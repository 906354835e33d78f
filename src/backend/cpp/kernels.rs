//! One C++ function per layer, the same loops in the same order as the Rust backend's
//! (so the two agree bit for bit without FMA contraction).

use super::dialect::Cpp;
use crate::backend::printer::{index, Printer};
use crate::lower::loops::Ix;
use crate::lower::{Layer, WeightArray, WeightId};

/// `in_file`: the weights are pointers into the weights file, indexed flat. `noinline`:
/// `KERAS2SRC_NOINLINE` (see [`crate::backend::INLINE_LAYERS_MAX`]).
pub fn layer_fn(layer: &Layer, weights: &[WeightArray], in_file: bool, noinline: bool) -> String {
    let read = |id: WeightId, row: Option<&Ix>, at: &Ix| {
        let w = &weights[id];
        match row {
            _ if in_file => {
                let flat = crate::backend::flat_index(w, row, at);
                format!("{}[{}]", w.ident, index(&flat))
            }
            Some(r) => format!("{}[{}][{}]", w.ident, index(r), index(at)),
            None => format!("{}[{}]", w.ident, index(at)),
        }
    };
    let names = &layer.input_names;
    let params: Vec<String> = names
        .iter()
        .zip(&layer.inputs)
        .map(|(name, arg)| {
            let ty = match arg.dtype {
                crate::ir::InputDtype::F32 => "float",
                crate::ir::InputDtype::I32 => "std::int32_t",
            };
            format!("const {ty}* __restrict {name}")
        })
        .collect();
    let printer = Printer {
        dialect: &Cpp,
        inputs: names,
        weight: &read,
    };
    let body = printer.text(&layer.body, 1).trim_end().to_string();
    let work = if layer.workspace.is_some() {
        ", float* __restrict work"
    } else {
        ""
    };
    format!(
        "// {}\n{}inline void {}({}, float* __restrict output{work}) noexcept {{\n{body}\n}}",
        layer.comment,
        if noinline { "KERAS2SRC_NOINLINE " } else { "" },
        layer.ident,
        params.join(", ")
    )
}
