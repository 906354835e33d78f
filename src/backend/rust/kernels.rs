//! One Rust function per layer. Bodies are written as Rust text with constant sizes
//! baked in, parsed by syn (so a mistake here fails loudly, never silently).

use proc_macro2::TokenStream;
use quote::ToTokens;

use super::dialect::Rust;
use crate::backend::printer::{index, Printer};
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
    /// Element `index` of a 1-D array, or `[row][index]` of a 2-D one.
    pub fn read(&self, id: WeightId, row: Option<&Ix>, at: &Ix) -> String {
        let w = &self.weights[id];
        if self.in_file {
            let flat = crate::backend::flat_index(w, row, at);
            format!("weights::{}({})", w.ident, index(&flat))
        } else {
            let name = w.ident.to_ascii_uppercase();
            match row {
                Some(r) => format!("weights::{name}[{}][{}]", index(r), index(at)),
                None => format!("weights::{name}[{}]", index(at)),
            }
        }
    }
}

/// `noinline`: `#[inline(never)]` (see [`crate::backend::INLINE_LAYERS_MAX`]).
pub fn layer_fn(layer: &Layer, access: Access, noinline: bool) -> Result<TokenStream, String> {
    let out_len = layer.output.len;
    let w = |id: WeightId, row: Option<&Ix>, index: &Ix| access.read(id, row, index);
    let names = &layer.input_names;
    let params: Vec<String> = names
        .iter()
        .zip(&layer.inputs)
        .map(|(name, arg)| {
            let ty = match arg.dtype {
                crate::ir::InputDtype::F32 => "f32",
                crate::ir::InputDtype::I32 => "i32",
            };
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
    let inline = if noinline { "#[inline(never)]\n" } else { "" };
    let allow = format!("#[rustfmt::skip]\n{inline}\
                 #[allow(clippy::needless_range_loop, clippy::manual_memcpy, clippy::too_many_arguments)]\n");
    let work = layer
        .workspace
        .map(|w| format!(", work: &mut [f32; {}]", w.len))
        .unwrap_or_default();
    let text = format!(
        "/// {comment}\n{allow}fn {name}({params}, output: &mut [f32; {out_len}]{work}) {{\n{body}\n}}",
        comment = layer.comment,
        name = layer.ident,
        params = params.join(", "),
    );
    syn::parse_str::<syn::ItemFn>(&text)
        .map(|item| item.into_token_stream())
        .map_err(|e| format!("the Rust backend built invalid code ({e}):\n{text}"))
}
