//! One C++ function per layer, the same loops in the same order as the Rust backend's
//! (so the two agree bit for bit without FMA contraction).

use super::dialect::Cpp;
use crate::backend::printer::Printer;
use crate::backend::CStorage;
use crate::lower::loops::Ix;
use crate::lower::{Layer, WeightArray, WeightId};

/// `in_file`: the weights are pointers into the weights file, indexed flat. `out_of_line`:
/// `KERAS2SRC_NOINLINE`, the weights as parameters (see
/// [`crate::backend::INLINE_LAYERS_MAX`]). A layer that multiply-accumulates is
/// `KERAS2SRC_DISPATCH` (see [`crate::backend::dispatch`]).
pub fn layer_fn(
    layer: &Layer,
    weights: &[WeightArray],
    in_file: bool,
    out_of_line: bool,
) -> String {
    let storage = storage();
    let read = |id: WeightId, row: Option<&Ix>, at: &Ix| {
        let (w, name) = if out_of_line {
            (&weights[layer.weights[id]], format!("weight{id}"))
        } else {
            (&weights[id], weights[id].ident.clone())
        };
        storage.read(w, &name, row, at, in_file)
    };
    let names = &layer.input_names;
    let params: Vec<String> = names
        .iter()
        .zip(&layer.inputs)
        .map(|(name, arg)| {
            let ty = crate::backend::cpp_type(arg.dtype);
            format!("const {ty}* __restrict {name}")
        })
        .collect();
    let printer = Printer {
        dialect: &Cpp,
        inputs: names,
        weight: &read,
    };
    let body = printer.text(&layer.body, 1).trim_end().to_string();
    let out_ty = crate::backend::cpp_type(layer.output.dtype);
    let work = if layer.workspace.is_some() {
        ", float* __restrict work"
    } else {
        ""
    };
    let weights: String = (layer.weights.iter().enumerate())
        .map(|(k, &id)| {
            let param = weight_param(&weights[id], k, in_file, "__restrict", &storage);
            format!(", {param}")
        })
        .collect();
    format!(
        "// {}\n{}{}inline void {}({}, {out_ty}* __restrict output{work}{weights}) noexcept {{\n{body}\n}}",
        layer.comment,
        crate::backend::dispatch(layer),
        if out_of_line { "KERAS2SRC_NOINLINE " } else { "" },
        layer.ident,
        params.join(", ")
    )
}

/// Weight parameter `k` of `w`'s dims, C++ or C (`restrict` is the language's keyword):
/// a pointer to the first row of a 2-D array, else to the first value (arrays in a weights
/// file are read flat).
pub(crate) fn weight_param(
    w: &WeightArray,
    k: usize,
    in_file: bool,
    restrict: &str,
    storage: &CStorage,
) -> String {
    let ty = if in_file {
        storage.file_type(w.dtype)
    } else {
        storage.element_type(w.dtype)
    };
    match w.dims[..] {
        [_, cols] if !in_file => format!("const {ty} (*{restrict} weight{k})[{cols}]"),
        _ => format!("const {ty}* {restrict} weight{k}"),
    }
}

/// How C++ spells compressed weights.
pub(crate) fn storage() -> CStorage {
    CStorage {
        int8: "std::int8_t",
        uint16: "std::uint16_t",
        int32: "std::int32_t",
        uint32: "std::uint32_t",
        cast: |ty, x| format!("static_cast<{ty}>({x})"),
        half: "half".into(),
    }
}
