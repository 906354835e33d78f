//! One C++ function per layer, the same loops in the same order as the Rust backend's
//! (so the two agree bit for bit without FMA contraction).

use crate::lower::expr::Lang;
use crate::lower::loops::{Ix, Syntax};
use crate::lower::{Kernel, Layer, Post, WeightArray, WeightId};

pub fn layer_fn(layer: &Layer, weights: &[WeightArray]) -> String {
    let w = |id: WeightId| weights[id].ident.clone();
    let read = |id: WeightId, row: Option<&Ix>, index: &Ix| match row {
        Some(r) => format!("{}[{}][{}]", weights[id].ident, r.print(), index.print()),
        None => format!("{}[{}]", weights[id].ident, index.print()),
    };
    let names = crate::lower::input_names(layer.inputs.len());
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
    let body = match &layer.kernel {
        Kernel::Loops(stmts) => {
            let syntax = Syntax {
                lang: Lang::Cpp,
                inputs: &names,
                weight: &read,
            };
            syntax.text(stmts, 1).trim_end().to_string()
        }
        kernel => indent(&body(kernel, layer.output.len, &w)),
    };
    let work = if layer.workspace.is_some() {
        ", float* __restrict work"
    } else {
        ""
    };
    format!(
        "// {}\ninline void {}({}, float* __restrict output{work}) noexcept {{\n{body}\n}}",
        layer.comment,
        layer.ident,
        params.join(", ")
    )
}

/// Re-indents generated C++ by brace depth (the kernels contain no braces in literals).
fn indent(text: &str) -> String {
    let mut depth = 1usize;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let closes_first = usize::from(line.starts_with('}'));
        depth = depth.saturating_sub(closes_first);
        out.push(format!("{}{line}", "    ".repeat(depth)));
        let opens = line.matches('{').count();
        let closes = line.matches('}').count() - closes_first;
        depth = (depth + opens).saturating_sub(closes);
    }
    out.join("\n")
}

fn for_(var: &str, n: usize) -> String {
    format!("for (std::size_t {var} = 0; {var} < {n}; ++{var})")
}

fn body(kernel: &Kernel, out_len: usize, w: &dyn Fn(WeightId) -> String) -> String {
    match kernel {
        Kernel::Dense {
            rows,
            inputs,
            units,
            kernel,
            bias,
            post,
        } => {
            let init = match bias {
                Some(b) => format!("y[o] = {}[o];", w(*b)),
                None => "y[o] = 0.0f;".into(),
            };
            format!(
                "{r} {{
                const float* x = input + r * {inputs};
                float* y = output + r * {units};
                {o} {init}
                {i} {{
                const float xi = x[i];
                {o} y[o] += xi * {k}[i][o];
                }}
                }}
                {post}",
                r = for_("r", *rows),
                o = for_("o", *units),
                i = for_("i", *inputs),
                k = w(*kernel),
                post = post_code(post, out_len),
            )
        }
        Kernel::Loops(_) => unreachable!("printed by the loop printer"),
    }
}

fn post_code(post: &Post, out_len: usize) -> String {
    match post {
        Post::None => String::new(),
        Post::Map(expr) => format!(
            "{} {{ const float x = output[i]; output[i] = {}; }}",
            for_("i", out_len),
            expr.print_value("x", Lang::Cpp)
        ),
        Post::Loops(stmts) => Syntax::output_only(Lang::Cpp, stmts, 0),
    }
}
