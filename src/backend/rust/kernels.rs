//! One Rust function per layer. Bodies are written as Rust text with constant sizes
//! baked in, parsed by syn (so a mistake here fails loudly, never silently).

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::lower::expr::Lang;
use crate::lower::loops::{Ix, Syntax};
use crate::lower::{Kernel, Layer, Post, WeightArray, WeightId};

/// How the generated code reads a weight.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    pub weights: &'a [WeightArray],
    /// Weights live in `NAME.weights.bin`, read through accessor functions.
    pub in_file: bool,
}

impl Access<'_> {
    /// Element `index` of a 1-D array, or `[row][index]` of a 2-D one.
    pub fn read(&self, id: WeightId, row: Option<&Ix>, index: &Ix) -> String {
        let w = &self.weights[id];
        if self.in_file {
            let cols = w.dims.last().copied().unwrap_or(1);
            let flat = match row {
                Some(r) => Ix::default().add_scaled(r, cols).add_scaled(index, 1),
                None => index.clone(),
            };
            format!("weights::{}({})", w.ident, flat.print())
        } else {
            let name = w.ident.to_ascii_uppercase();
            match row {
                Some(r) => format!("weights::{name}[{}][{}]", r.print(), index.print()),
                None => format!("weights::{name}[{}]", index.print()),
            }
        }
    }

    fn var(&self, id: WeightId, var: &str) -> String {
        self.read(id, None, &Ix::default().plus(var, 1))
    }
}

pub fn layer_fn(layer: &Layer, access: Access) -> Result<TokenStream, String> {
    let out_len = layer.output.len;
    let w = |id: WeightId, row: Option<&Ix>, index: &Ix| access.read(id, row, index);
    let names = crate::lower::input_names(layer.inputs.len());
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
    let body = match &layer.kernel {
        Kernel::Loops(stmts) => {
            let syntax = Syntax {
                lang: Lang::Rust,
                inputs: &names,
                weight: &w,
            };
            syntax.text(stmts, 1)
        }
        kernel => body(kernel, access),
    };
    // Index loops read clearer than iterator chains where strides are involved.
    let allow = match layer.kernel {
        Kernel::Loops(_) => {
            "#[allow(clippy::needless_range_loop, clippy::manual_memcpy, clippy::too_many_arguments)]\n"
        }
        Kernel::Dense {
            post: Post::Loops(_),
            ..
        } => "#[allow(clippy::needless_range_loop)]\n",
        _ => "",
    };
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

fn body(kernel: &Kernel, access: Access) -> String {
    let w = |id: WeightId| format!("weights::{}", access.weights[id].ident.to_ascii_uppercase());
    match kernel {
        Kernel::Dense {
            inputs,
            units,
            kernel,
            bias,
            post,
            ..
        } if access.in_file => {
            // Index form: the accessors take flat indices.
            let init = match bias {
                Some(b) => format!(
                    "for (o, yo) in y.iter_mut().enumerate() {{ *yo = {}; }}",
                    access.var(*b, "o")
                ),
                None => "y.fill(0.0);".into(),
            };
            let k = access.read(*kernel, None, &Ix::default().plus("i", *units).plus("o", 1));
            format!(
                "for (x, y) in input.chunks_exact({inputs}).zip(output.chunks_exact_mut({units})) {{
                    {init}
                    for (i, &xi) in x.iter().enumerate() {{
                        for (o, yo) in y.iter_mut().enumerate() {{
                            *yo += xi * {k};
                        }}
                    }}
                }}
                {post}",
                post = post_code(post),
            )
        }
        Kernel::Dense {
            inputs,
            units,
            kernel,
            bias,
            post,
            ..
        } => {
            let init = match bias {
                Some(b) => format!("y.copy_from_slice(&{});", w(*b)),
                None => "y.fill(0.0);".into(),
            };
            format!(
                "for (x, y) in input.chunks_exact({inputs}).zip(output.chunks_exact_mut({units})) {{
                    {init}
                    for (&xi, row) in x.iter().zip({k}.iter()) {{
                        for (yo, &wo) in y.iter_mut().zip(row.iter()) {{
                            *yo += xi * wo;
                        }}
                    }}
                }}
                {post}",
                k = w(*kernel),
                post = post_code(post),
            )
        }
        Kernel::Loops(_) => unreachable!("printed by the loop printer"),
    }
}

fn post_code(post: &Post) -> String {
    match post {
        Post::None => String::new(),
        Post::Map(expr) => format!(
            "for y in output.iter_mut() {{ let x = *y; *y = {}; }}",
            expr.print_value("x", Lang::Rust)
        ),
        Post::Loops(stmts) => Syntax::output_only(Lang::Rust, stmts, 1),
    }
}
