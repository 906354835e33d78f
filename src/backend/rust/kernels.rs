//! One Rust function per layer. Bodies are written as Rust text with constant sizes
//! baked in, parsed by syn (so a mistake here fails loudly, never silently).

use proc_macro2::TokenStream;
use quote::ToTokens;

use super::dialect::Rust;
use crate::backend::printer::{index, Printer};
use crate::ir::WeightsDtype;
use crate::lower::loops::Ix;
use crate::lower::{Layer, WeightArray, WeightId};

/// How the generated code reads a weight.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    pub weights: &'a [WeightArray],
    /// Weights live in `NAME.weights.bin`, read through accessor functions.
    pub in_file: bool,
}

impl Access<'_> {
    /// Element `index` of a 1-D array, or `[row][index]` of a 2-D one, as an f32 (the
    /// weights file's accessors widen compressed values themselves).
    pub fn read(&self, id: WeightId, row: Option<&Ix>, at: &Ix) -> String {
        let w = &self.weights[id];
        if self.in_file {
            let flat = crate::backend::flat_index(w, row, at);
            format!("weights::{}({})", w.ident, index(&flat))
        } else {
            let name = w.ident.to_ascii_uppercase();
            widen(
                w.dtype,
                match row {
                    Some(r) => format!("weights::{name}[{}][{}]", index(r), index(at)),
                    None => format!("weights::{name}[{}]", index(at)),
                },
            )
        }
    }

    /// Element `index` (or `[row][index]`) of weight parameter `k`, of `w`'s dims.
    pub fn read_param(&self, k: usize, w: &WeightArray, row: Option<&Ix>, at: &Ix) -> String {
        if self.in_file {
            let flat = crate::backend::flat_index(w, row, at);
            let at = match w.dtype {
                WeightsDtype::F32 => "at",
                WeightsDtype::F16 => "at_f16",
                WeightsDtype::Int8 => "at_i8",
                WeightsDtype::Q8 => "at_q8",
                WeightsDtype::I32 => "at_i32",
            };
            format!("weights::{at}(weight{k}, {})", index(&flat))
        } else {
            widen(
                w.dtype,
                match row {
                    Some(r) => format!("weight{k}[{}][{}]", index(r), index(at)),
                    None => format!("weight{k}[{}]", index(at)),
                },
            )
        }
    }

    /// The type of a weight parameter of `w`'s dims: a reference to the array, or in a
    /// weights file to its bytes (a fixed length, so that reads in range need no check).
    pub fn param_type(&self, w: &WeightArray) -> String {
        let ty = element_type(w.dtype);
        match w.dims[..] {
            _ if self.in_file => format!("&[u8; {}]", crate::backend::stored_bytes(w)),
            [rows, cols] => format!("&[[{ty}; {cols}]; {rows}]"),
            _ => format!("&[{ty}; {}]", w.data.len()),
        }
    }
}

/// The Rust type a weight is stored as.
pub fn element_type(dtype: WeightsDtype) -> &'static str {
    match dtype {
        WeightsDtype::F32 => "f32",
        WeightsDtype::F16 => "u16",
        WeightsDtype::Int8 | WeightsDtype::Q8 => "i8",
        WeightsDtype::I32 => "i32",
    }
}

/// A stored element as the f32 it stands for (an int8 value before its scale).
fn widen(dtype: WeightsDtype, element: String) -> String {
    match dtype {
        // Integer kernels widen what they read themselves.
        WeightsDtype::F32 | WeightsDtype::Q8 | WeightsDtype::I32 => element,
        WeightsDtype::F16 => format!("weights::half({element})"),
        WeightsDtype::Int8 => format!("f32::from({element})"),
    }
}

/// `out_of_line`: `#[inline(never)]`, the weights as parameters (see
/// [`crate::backend::INLINE_LAYERS_MAX`]).
pub fn layer_fn(layer: &Layer, access: Access, out_of_line: bool) -> Result<TokenStream, String> {
    let out_len = layer.output.len;
    let w = |id: WeightId, row: Option<&Ix>, index: &Ix| {
        if out_of_line {
            access.read_param(id, &access.weights[layer.weights[id]], row, index)
        } else {
            access.read(id, row, index)
        }
    };
    let names = &layer.input_names;
    let params: Vec<String> = names
        .iter()
        .zip(&layer.inputs)
        .map(|(name, arg)| {
            let ty = crate::backend::rust_type(arg.dtype);
            format!("{name}: &[{ty}; {}]", arg.len)
        })
        .collect();
    let printer = Printer {
        dialect: &Rust,
        inputs: names,
        weight: &w,
    };
    let body = printer.text(&layer.body, 1);
    // Index loops read clearer than iterator chains where strides are involved. The layout
    // is prettyplease's, which rustfmt would redo: `rustfmt::skip` keeps `cargo fmt` away.
    let inline = if out_of_line {
        "#[inline(never)]\n"
    } else {
        ""
    };
    let allow = format!("#[rustfmt::skip]\n{inline}\
                 #[allow(clippy::needless_range_loop, clippy::manual_memcpy, clippy::too_many_arguments)]\n");
    let work = layer
        .workspace
        .map(|w| format!(", work: &mut [f32; {}]", w.len))
        .unwrap_or_default();
    let weights: String = layer
        .weights
        .iter()
        .enumerate()
        .map(|(k, &id)| format!(", weight{k}: {}", access.param_type(&access.weights[id])))
        .collect();
    let text = format!(
        "/// {comment}\n{allow}fn {name}({params}, output: &mut [{out_ty}; {out_len}]{work}{weights}) {{\n{body}\n}}",
        comment = layer.comment,
        out_ty = crate::backend::rust_type(layer.output.dtype),
        name = layer.ident,
        params = params.join(", "),
    );
    syn::parse_str::<syn::ItemFn>(&text)
        .map(|item| item.into_token_stream())
        .map_err(|e| format!("the Rust backend built invalid code ({e}):\n{text}"))
}
