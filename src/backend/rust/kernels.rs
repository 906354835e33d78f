//! One Rust function per layer. Bodies are written as Rust text with constant sizes
//! baked in, parsed by syn (so a mistake here fails loudly, never silently).

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::lower::expr::Lang;
use crate::lower::index::idx;
use crate::lower::loops::Syntax;
use crate::lower::{Kernel, Layer, Post, WeightArray, WeightId};

pub fn layer_fn(layer: &Layer, weights: &[WeightArray]) -> Result<TokenStream, String> {
    let out_len = layer.output.len;
    let w = |id: WeightId| format!("weights::{}", weights[id].ident.to_ascii_uppercase());
    let names = crate::lower::input_names(layer.inputs.len());
    let params: Vec<String> = names
        .iter()
        .zip(&layer.inputs)
        .map(|(name, arg)| format!("{name}: &[f32; {}]", arg.len))
        .collect();
    let body = match &layer.kernel {
        Kernel::Loops(stmts) => {
            let mut text = String::new();
            let syntax = Syntax {
                lang: Lang::Rust,
                inputs: &names,
                weight: &w,
            };
            syntax.print(stmts, 1, &mut text);
            text
        }
        kernel => body(kernel, &w),
    };
    // Index loops read clearer than iterator chains where strides are involved.
    let allow = match layer.kernel {
        Kernel::Loops(_) => {
            "#[allow(clippy::needless_range_loop, clippy::manual_memcpy, clippy::too_many_arguments)]\n"
        }
        Kernel::Affine { .. }
        | Kernel::Dense {
            post: Post::Loops(_),
            ..
        } => "#[allow(clippy::needless_range_loop)]\n",
        _ => "",
    };
    let text = format!(
        "/// {comment}\n{allow}fn {name}({params}, output: &mut [f32; {out_len}]) {{\n{body}\n}}",
        comment = layer.comment,
        name = layer.ident,
        params = params.join(", "),
    );
    syn::parse_str::<syn::ItemFn>(&text)
        .map(|item| item.into_token_stream())
        .map_err(|e| format!("the Rust backend built invalid code ({e}):\n{text}"))
}

fn body(kernel: &Kernel, w: &dyn Fn(WeightId) -> String) -> String {
    match kernel {
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
        Kernel::Map { expr } => format!(
            "for (y, &x) in output.iter_mut().zip(input.iter()) {{ *y = {}; }}",
            expr.print_value("x", Lang::Rust)
        ),
        Kernel::Affine {
            channels,
            inner,
            center,
            scale,
            shift,
            ..
        } => {
            let block = channels * inner;
            let i = idx(&[("c", *inner), ("k", 1)], 0);
            let x = match center {
                Some(c) => format!("(x[{i}] - {}[c])", w(*c)),
                None => format!("x[{i}]"),
            };
            format!(
                "for (x, y) in input.chunks_exact({block}).zip(output.chunks_exact_mut({block})) {{
                    for c in 0..{channels} {{ for k in 0..{inner} {{
                        y[{i}] = {x} * {s}[c] + {t}[c];
                    }} }}
                }}",
                s = w(*scale),
                t = w(*shift)
            )
        }
        Kernel::PRelu { alpha, period } => format!(
            "for (x, y) in input.chunks_exact({period}).zip(output.chunks_exact_mut({period})) {{
                for ((y, &x), &a) in y.iter_mut().zip(x.iter()).zip({a}.iter()) {{
                    *y = if x < 0.0 {{ a * x }} else {{ x }};
                }}
            }}",
            a = w(*alpha)
        ),
        Kernel::Copy => "output.copy_from_slice(input);".into(),
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
        Post::Loops(stmts) => {
            let mut text = String::new();
            let names = crate::lower::input_names(1);
            let syntax = Syntax {
                lang: Lang::Rust,
                inputs: &names,
                weight: &|_| String::new(),
            };
            syntax.print(stmts, 1, &mut text);
            text
        }
    }
}
