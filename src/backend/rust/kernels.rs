//! One Rust function per layer. Bodies are written as Rust text with constant sizes
//! baked in, parsed by syn (so a mistake here fails loudly, never silently).

use proc_macro2::TokenStream;
use quote::ToTokens;

use crate::ir::AxisFn;
use crate::lower::expr::Lang;
use crate::lower::index::idx;
use crate::lower::loops::Syntax;
use crate::lower::{AxisKernel, Kernel, Layer, Post, WeightArray, WeightId};

pub fn layer_fn(layer: &Layer, weights: &[WeightArray]) -> TokenStream {
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
        Kernel::Axis(_) | Kernel::Glu { .. } | Kernel::Affine { .. } => {
            "#[allow(clippy::needless_range_loop)]\n"
        }
        Kernel::Dense {
            post: Post::Axis(_),
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
    match syn::parse_str::<syn::ItemFn>(&text) {
        Ok(item) => item.into_token_stream(),
        Err(e) => panic!("the Rust backend built invalid code ({e}):\n{text}"),
    }
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
        Kernel::Axis(k) => format!("output.copy_from_slice(input);\n{}", axis_code(k)),
        Kernel::Glu { outer, half, inner } => {
            let a = idx(&[("o", 2 * half * inner), ("h", *inner), ("k", 1)], 0);
            let b = idx(
                &[("o", 2 * half * inner), ("h", *inner), ("k", 1)],
                half * inner,
            );
            let y = idx(&[("o", half * inner), ("h", *inner), ("k", 1)], 0);
            format!(
                "for o in 0..{outer} {{ for h in 0..{half} {{ for k in 0..{inner} {{
                    output[{y}] = input[{a}] * math::sigmoid_f32(input[{b}]);
                }} }} }}"
            )
        }
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
        Post::Axis(k) => axis_code(k),
    }
}

/// An activation along the middle axis of `output` viewed as `[outer, len, inner]`.
fn axis_code(k: &AxisKernel) -> String {
    let AxisKernel {
        func,
        outer,
        len,
        inner,
    } = *k;
    let at = |var: &str| idx(&[("o", len * inner), (var, inner), ("k", 1)], 0);
    let (i, j) = (at("i"), at("j"));
    let first = idx(&[("o", len * inner), ("k", 1)], 0);
    let per_slice = match func {
        AxisFn::Softmax => format!(
            "let mut m = output[{first}];
            for i in 0..{len} {{ if output[{i}] > m {{ m = output[{i}]; }} }}
            let mut sum = 0.0f32;
            for i in 0..{len} {{ let e = math::exp_f32(output[{i}] - m); output[{i}] = e; sum += e; }}
            for i in 0..{len} {{ output[{i}] /= sum; }}"
        ),
        AxisFn::LogSoftmax => format!(
            "let mut m = output[{first}];
            for i in 0..{len} {{ if output[{i}] > m {{ m = output[{i}]; }} }}
            let mut sum = 0.0f32;
            for i in 0..{len} {{ sum += math::exp_f32(output[{i}] - m); }}
            let lse = math::log_f32(sum);
            for i in 0..{len} {{ output[{i}] = output[{i}] - m - lse; }}"
        ),
        // Keras 3's sparsemax, without sorting: element i stands at sorted position
        // q = 1 + #{z_j > z_i} + #{j < i: z_j == z_i}, where the cumulative sum is c_q; it
        // is in the support when z_i - (c_q - 1) / q > 0, and Keras takes
        // tau = (sum of c_q over the support - 1) / |support| (sic).
        AxisFn::Sparsemax => format!(
            "let mut support = 0.0f32;
            let mut cumsum_sum = 0.0f32;
            for i in 0..{len} {{
                let zi = output[{i}];
                let mut greater = 0.0f32;
                let mut ties_before = 0.0f32;
                let mut above = 0.0f32;
                for j in 0..{len} {{
                    let zj = output[{j}];
                    if zj > zi {{ greater += 1.0; above += zj; }}
                    if zj == zi && j < i {{ ties_before += 1.0; }}
                }}
                let q = greater + ties_before + 1.0;
                let cumsum = above + (ties_before + 1.0) * zi;
                if zi - (cumsum - 1.0) / q > 0.0 {{ support += 1.0; cumsum_sum += cumsum; }}
            }}
            let tau = (cumsum_sum - 1.0) / support;
            for i in 0..{len} {{ let v = output[{i}] - tau; output[{i}] = if v < 0.0 {{ 0.0 }} else {{ v }}; }}"
        ),
        AxisFn::Glu => unreachable!("glu is lowered to its own kernel"),
    };
    format!("for o in 0..{outer} {{ for k in 0..{inner} {{ {per_slice} }} }}")
}
