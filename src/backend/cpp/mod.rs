//! C++ backend: one C++17 header, no heap, no exceptions, no STL containers; only
//! `<cstddef>`, `<cstdint>` and `<cmath>`. The askama template only loops and prints;
//! everything it prints is decided here or in [`crate::lower`].

mod kernels;

use askama::Template;

use crate::backend::math;
use crate::ir::InputDtype;
use crate::lower::expr::Lang;
use crate::lower::{Arg, Program};
use crate::passes::Location;

#[derive(Template)]
#[template(path = "cpp/model.hpp", escape = "none")]
struct Header<'a> {
    header: &'a [String],
    guard: String,
    namespace: &'a str,
    includes: Vec<&'static str>,
    constants: Vec<String>,
    math: String,
    weights: Vec<String>,
    layers: Vec<String>,
    params: String,
    call_args: String,
    calls: Vec<String>,
    uses_scratch: bool,
}

/// Prints `program` as a C++ header in namespace `namespace` (may be nested `a::b`).
/// `hex_weights` prints weights as hex floats, which g++ parses about 25% faster than
/// decimal (measured: 1.30 s against 1.74 s per million) but nobody reads in a diff.
pub fn emit(program: &Program, header: &[String], namespace: &str, hex_weights: bool) -> String {
    let weights: Vec<String> = program
        .weights
        .iter()
        .map(|w| weight_array(w, hex_weights))
        .collect();
    let mut includes = vec!["<cstddef>"];
    let uses_math = !program.math.is_empty();
    if uses_math || program.inputs.iter().any(|i| i.dtype == InputDtype::I32) {
        includes.push("<cstdint>");
    }
    let non_finite = program
        .weights
        .iter()
        .any(|w| w.data.iter().any(|v| !v.is_finite()))
        || program.layers.iter().any(|l| {
            let crate::lower::Kernel::Loops(stmts) = &l.kernel;
            crate::lower::loops::uses_non_finite(stmts)
        });
    if uses_math || non_finite {
        includes.push("<cmath>");
    }
    let header = Header {
        header,
        guard: format!(
            "KERAS2SRC_{}_HPP",
            namespace.replace("::", "_").to_ascii_uppercase()
        ),
        namespace,
        includes,
        constants: constants(program),
        math: math::cpp_source(&program.math),
        weights,
        layers: program
            .layers
            .iter()
            .map(|l| kernels::layer_fn(l, &program.weights))
            .collect(),
        params: params(program),
        call_args: call_args(program),
        calls: program.layers.iter().map(|l| call(program, l)).collect(),
        uses_scratch: program.scratch_len > 0,
    };
    header
        .render()
        .unwrap_or_else(|e| format!("#error template failed: {e}\n"))
}

fn port_name(prefix: &str, single: bool, k: usize) -> String {
    if single {
        prefix.to_string()
    } else {
        format!("{prefix}{k}")
    }
}

fn constants(p: &Program) -> Vec<String> {
    let mut out = Vec::new();
    for (ports, prefix) in [(&p.inputs, "Input"), (&p.outputs, "Output")] {
        let single = ports.len() == 1;
        for (k, port) in ports.iter().enumerate() {
            let base = format!("k{}", port_name(prefix, single, k));
            let dims: Vec<String> = port.shape.iter().map(|d| d.to_string()).collect();
            out.push(format!(
                "// {prefix} `{}`, shape [{}] (batch excluded).",
                crate::naming::comment(&port.name),
                dims.join(", ")
            ));
            out.push(format!("constexpr std::size_t {base}Len = {};", port.len));
            out.push(format!(
                "constexpr std::size_t {base}Shape[{}] = {{{}}};",
                dims.len().max(1),
                if dims.is_empty() {
                    "1".into()
                } else {
                    dims.join(", ")
                }
            ));
        }
        if !single || p.inputs.len() != 1 || p.outputs.len() != 1 {
            let names: Vec<String> = ports
                .iter()
                .map(|port| crate::naming::cpp_string(&port.name))
                .collect();
            out.push(format!(
                "inline constexpr const char* k{prefix}Names[{}] = {{{}}};",
                names.len(),
                names.join(", ")
            ));
        }
    }
    out.push("// Working memory predict_with_scratch needs, in floats.".into());
    out.push(format!(
        "constexpr std::size_t kScratchLen = {};",
        p.scratch_len
    ));
    out
}

fn params(p: &Program) -> String {
    let mut params = Vec::new();
    for (k, port) in p.inputs.iter().enumerate() {
        let ty = match port.dtype {
            InputDtype::F32 => "float",
            InputDtype::I32 => "std::int32_t",
        };
        params.push(format!(
            "const {ty}* {}",
            port_name("input", p.inputs.len() == 1, k)
        ));
    }
    for k in 0..p.outputs.len() {
        params.push(format!(
            "float* {}",
            port_name("output", p.outputs.len() == 1, k)
        ));
    }
    params.join(", ")
}

fn call_args(p: &Program) -> String {
    let ins = (0..p.inputs.len()).map(|k| port_name("input", p.inputs.len() == 1, k));
    let outs = (0..p.outputs.len()).map(|k| port_name("output", p.outputs.len() == 1, k));
    ins.chain(outs).collect::<Vec<_>>().join(", ")
}

fn place(arg: &Arg, inputs: usize, outputs: usize) -> String {
    match arg.loc {
        Location::Input(k) => port_name("input", inputs == 1, k),
        Location::Output(k) => port_name("output", outputs == 1, k),
        Location::Scratch(0) => "scratch".into(),
        Location::Scratch(off) => format!("scratch + {off}"),
    }
}

fn call(p: &Program, layer: &crate::lower::Layer) -> String {
    let (ni, no) = (p.inputs.len(), p.outputs.len());
    let mut args: Vec<String> = layer.inputs.iter().map(|a| place(a, ni, no)).collect();
    args.push(place(&layer.output, ni, no));
    if let Some(work) = &layer.workspace {
        args.push(place(work, ni, no));
    }
    format!("detail::{}({});", layer.ident, args.join(", "))
}

fn weight_array(w: &crate::lower::WeightArray, hex: bool) -> String {
    let literal = |v: f32| {
        if hex {
            crate::lower::expr::hex_float(v)
        } else {
            Lang::Cpp.float(v)
        }
    };
    let fmt_row = |row: &[f32]| {
        row.iter()
            .map(|&v| literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match w.dims[..] {
        [rows, cols] => {
            let body: Vec<String> = w
                .data
                .chunks(cols.max(1))
                .map(|row| format!("    {{{}}},", fmt_row(row)))
                .collect();
            format!(
                "inline constexpr float {}[{rows}][{cols}] = {{\n{}\n}};",
                w.ident,
                body.join("\n")
            )
        }
        _ => format!(
            "inline constexpr float {}[{}] = {{\n    {}\n}};",
            w.ident,
            w.data.len(),
            fmt_row(&w.data)
        ),
    }
}
