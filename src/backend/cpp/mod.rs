//! C++ backend: one C++17 header, no heap, no exceptions, no STL containers; only
//! `<cstddef>`, `<cstdint>` and `<cmath>`. The askama template only loops and prints;
//! everything it prints is decided here or in [`crate::lower`].

mod kernels;

use askama::Template;

use crate::backend::{math, Api};
use crate::ir::InputDtype;
use crate::lower::expr::Lang;
use crate::lower::{Arg, Program};
use crate::passes::Location;
use crate::ScratchPlacement;

#[derive(Template)]
#[template(path = "cpp/model.hpp", escape = "none")]
struct Header<'a> {
    header: &'a [String],
    guard: String,
    namespace: &'a str,
    includes: Vec<&'static str>,
    /// Layer functions kept out of line: the header defines `KERAS2SRC_NOINLINE`.
    noinline: bool,
    /// With a weights file: the symbol that holds it and the `.incbin` that defines it.
    weights_blob: String,
    constants: Vec<String>,
    math: String,
    weights: Vec<String>,
    layers: Vec<String>,
    params: String,
    calls: Vec<String>,
    uses_scratch: bool,
    /// `predict` (unless the caller places the scratch) and `selftest`.
    entry_points: Vec<String>,
    /// The `extern "C"` declarations and definitions, outside the C++-only part.
    c_api: String,
}

/// Prints `program` as a C++ header in namespace `namespace` (may be nested `a::b`).
/// With `weights_file`, the weights stay in that file (little-endian f32, as
/// [`crate::backend::weights_file_bytes`] lays it out), brought in by the assembler's
/// `.incbin`; else they are literals, and `hex_weights` prints them as hex floats, which g++
/// parses about 25% faster than decimal (measured: 1.30 s against 1.74 s per million) but
/// nobody reads in a diff.
pub fn emit(
    program: &Program,
    header: &[String],
    namespace: &str,
    weights_file: Option<&str>,
    hex_weights: bool,
    api: &Api,
) -> String {
    let symbol = format!("keras2src_{}_weights", namespace.replace("::", "_"));
    let weights: Vec<String> = match weights_file {
        Some(_) => program
            .weights
            .iter()
            .zip(crate::backend::weights_file_offsets(program))
            .map(|(w, offset)| weight_pointer(w, &symbol, offset))
            .collect(),
        None => program
            .weights
            .iter()
            .map(|w| weight_array(w, hex_weights))
            .collect(),
    };
    let weights_blob = weights_file
        .map(|file| incbin(program, namespace, &symbol, file))
        .unwrap_or_default();
    let mut includes = vec!["<cstddef>"];
    let uses_math = !program.math.is_empty();
    if uses_math || program.inputs.iter().any(|i| i.dtype == InputDtype::I32) {
        includes.push("<cstdint>");
    }
    let test_values = api
        .self_test
        .iter()
        .flat_map(|t| t.inputs.iter().chain(&t.outputs).flatten());
    let non_finite = program
        .weights
        .iter()
        .flat_map(|w| &w.data)
        .chain(test_values)
        .any(|v| !v.is_finite())
        || program.layers.iter().any(|l| {
            let crate::lower::Kernel::Loops(stmts) = &l.kernel;
            crate::lower::loops::uses_non_finite(stmts)
        });
    if uses_math || non_finite {
        includes.push("<cmath>");
    }
    let noinline = crate::backend::noinline_layers(program);
    let header = Header {
        header,
        noinline,
        guard: format!(
            "KERAS2SRC_{}_HPP",
            namespace.replace("::", "_").to_ascii_uppercase()
        ),
        namespace,
        includes,
        weights_blob,
        constants: constants(program),
        math: math::cpp_source(&program.math),
        weights,
        layers: program
            .layers
            .iter()
            .map(|l| kernels::layer_fn(l, &program.weights, weights_file.is_some(), noinline))
            .collect(),
        params: params(program),
        calls: program.layers.iter().map(|l| call(program, l)).collect(),
        uses_scratch: program.scratch_len > 0,
        entry_points: entry_points(program, api),
        c_api: if api.extern_c {
            c_api(program, namespace, api)
        } else {
            String::new()
        },
    };
    // askama drops the template's final newline; C requires one.
    let mut source = header
        .render()
        .unwrap_or_else(|e| format!("#error template failed: {e}"));
    source.push('\n');
    source
}

use crate::lower::port_ident as port_name;

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
    port_params(p, "std::int32_t").join(", ")
}

/// `const float* input, ..., float* output, ...`, integer inputs as `int_type`.
fn port_params(p: &Program, int_type: &str) -> Vec<String> {
    let mut params = Vec::new();
    for (k, port) in p.inputs.iter().enumerate() {
        let ty = match port.dtype {
            InputDtype::F32 => "float",
            InputDtype::I32 => int_type,
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
    params
}

/// `predict` as the scratch placement makes it, and `selftest` with `--emit-test`.
fn entry_points(p: &Program, api: &Api) -> Vec<String> {
    let (params, args) = (params(p), call_args(p));
    let mut out = Vec::new();
    match api.scratch {
        ScratchPlacement::Stack => out.push(format!(
            "// Runs the model on one sample, with working memory on the stack.\n\
             inline void predict({params}) noexcept {{\n    \
             float scratch[kScratchLen > 0 ? kScratchLen : 1];\n    \
             predict_with_scratch({args}, scratch);\n}}"
        )),
        ScratchPlacement::Caller => {}
        ScratchPlacement::Static => out.push(format!(
            "// Runs the model on one sample, with working memory in a static buffer: not\n\
             // reentrant (calls must not overlap, from an interrupt or another thread).\n\
             inline void predict({params}) noexcept {{\n    \
             static float scratch[kScratchLen > 0 ? kScratchLen : 1];\n    \
             predict_with_scratch({args}, scratch);\n}}"
        )),
    }
    if let Some(test) = api.self_test {
        out.push(self_test(p, test, api.scratch));
    }
    out
}

/// `selftest()`: the `--emit-test` sample through the model, compared with Keras's outputs
/// within the DESIGN bound (NaN must stay NaN).
fn self_test(p: &Program, test: &crate::SelfTest, scratch: ScratchPlacement) -> String {
    let floats = |values: &[f32]| {
        values
            .iter()
            .map(|&v| Lang::Cpp.float(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (single_in, single_out) = (p.inputs.len() == 1, p.outputs.len() == 1);
    let mut data = Vec::new();
    let mut args = Vec::new();
    for (k, (port, values)) in p.inputs.iter().zip(&test.inputs).enumerate() {
        let name = format!("kSelftest{}", port_name("Input", single_in, k));
        let (ty, text) = match port.dtype {
            InputDtype::F32 => ("float", floats(values)),
            InputDtype::I32 => (
                "std::int32_t",
                values
                    .iter()
                    .map(|&v| (v as i32).to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        data.push(format!(
            "    static constexpr {ty} {name}[{}] = {{{text}}};",
            values.len().max(1)
        ));
        args.push(name);
    }
    let mut checks = Vec::new();
    let mut outputs = Vec::new();
    for (k, values) in test.outputs.iter().enumerate() {
        let port = port_name("Output", single_out, k);
        data.push(format!(
            "    static constexpr float kKeras{port}[{}] = {{{}}};",
            values.len().max(1),
            floats(values)
        ));
        let out = port_name("output", single_out, k);
        outputs.push(format!("    float {out}[k{port}Len];"));
        args.push(out.clone());
        checks.push(format!("close({out}, kKeras{port}, k{port}Len)"));
    }
    let (param, call) = match scratch {
        ScratchPlacement::Caller => (
            "float* scratch",
            format!("predict_with_scratch({}, scratch);", args.join(", ")),
        ),
        _ => ("", format!("predict({});", args.join(", "))),
    };
    format!(
        "// Runs the model on the sample given to --emit-test: true when every output is\n\
         // within |got - keras| <= 1e-5 + 1e-4 * |keras| of Keras's.\n\
         inline bool selftest({param}) noexcept {{\n\
         {}\n\
         {}\n    \
         {call}\n    \
         const auto close = [](const float* got, const float* keras, std::size_t n) {{\n        \
         for (std::size_t i = 0; i < n; ++i) {{\n            \
         const float g = got[i], k = keras[i];\n            \
         const float bound = 1e-5f + 1e-4f * (k < 0 ? -k : k);\n            \
         const bool ok = k != k ? g != g : (g == k || (g > k ? g - k : k - g) <= bound);\n            \
         if (!ok) return false;\n        \
         }}\n        \
         return true;\n    \
         }};\n    \
         return {};\n}}",
        data.join("\n"),
        outputs.join("\n"),
        checks.join(" && ")
    )
}

/// The `extern "C"` block: size macros and `NAME_predict`-style declarations that C and
/// C++ files see, and their definitions in the one C++ file that defines
/// `KERAS2SRC_NAME_IMPLEMENTATION`.
fn c_api(p: &Program, namespace: &str, api: &Api) -> String {
    let prefix = namespace.replace("::", "_");
    let upper = prefix.to_ascii_uppercase();
    let implementation = format!("KERAS2SRC_{upper}_IMPLEMENTATION");
    let mut text = format!(
        "// C entry points (--extern-c), for C and C++ callers. Exactly one C++ file defines\n\
         // {implementation} before including this header, which compiles them there.\n"
    );
    if p.inputs.iter().any(|i| i.dtype == InputDtype::I32) {
        text.push_str("#include <stdint.h>\n");
    }
    text.push('\n');
    for (ports, prefix_c) in [(&p.inputs, "INPUT"), (&p.outputs, "OUTPUT")] {
        for (k, port) in ports.iter().enumerate() {
            let port_c = port_name(prefix_c, ports.len() == 1, k);
            text.push_str(&format!("#define {upper}_{port_c}_LEN {}\n", port.len));
        }
    }
    text.push_str(&format!(
        "#define {upper}_SCRATCH_LEN {}\n\n",
        p.scratch_len
    ));
    // C parameter declarations; the C++ call passes each one's name on.
    let mut params = port_params(p, "int32_t");
    let scratch = "float* scratch".to_string();
    let caller = api.scratch == ScratchPlacement::Caller;
    let mut functions: Vec<CFunction> = Vec::new();
    if !caller {
        functions.push(CFunction::new("void", "predict", params.clone()));
    }
    params.push(scratch.clone());
    functions.push(CFunction::new("void", "predict_with_scratch", params));
    if api.self_test.is_some() {
        let params = if caller { vec![scratch] } else { Vec::new() };
        functions.push(CFunction::new("int", "selftest", params));
    }
    text.push_str("#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
    for f in &functions {
        text.push_str(&format!("{};\n", f.signature(&prefix)));
    }
    text.push_str("#ifdef __cplusplus\n}  // extern \"C\"\n#endif\n\n");
    text.push_str(&format!(
        "#if defined(__cplusplus) && defined({implementation})\n"
    ));
    for f in &functions {
        let args: Vec<&str> = f
            .params
            .iter()
            .filter_map(|p| p.rsplit(' ').next())
            .collect();
        let call = format!("{namespace}::{}({})", f.name, args.join(", "));
        let body = match f.ret {
            "int" => format!("return {call} ? 1 : 0;"),
            _ => format!("{call};"),
        };
        text.push_str(&format!(
            "extern \"C\" {} {{\n    {body}\n}}\n",
            f.signature(&prefix)
        ));
    }
    text.push_str(&format!("#endif  // {implementation}"));
    text
}

/// A C entry point: it calls the namespace's function of the same name.
struct CFunction {
    ret: &'static str,
    name: &'static str,
    /// C declarations, `const float* input`.
    params: Vec<String>,
}

impl CFunction {
    fn new(ret: &'static str, name: &'static str, params: Vec<String>) -> CFunction {
        CFunction { ret, name, params }
    }

    fn signature(&self, prefix: &str) -> String {
        let params = if self.params.is_empty() {
            "void".to_string()
        } else {
            self.params.join(", ")
        };
        format!("{} {prefix}_{}({params})", self.ret, self.name)
    }
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

/// The declaration of the weights file's symbol and, for GCC and Clang on ELF targets, the
/// top-level `asm` that defines it with `.incbin`: aligned, read-only, in a COMDAT group (one
/// copy however many translation units include the header; `.ifndef` for `-flto`, which
/// assembles them together), its length checked by the assembler.
fn incbin(p: &Program, namespace: &str, symbol: &str, file: &str) -> String {
    let floats: usize = p.weights.iter().map(|w| w.data.len()).sum();
    let bytes = 4 * floats;
    let upper = namespace.replace("::", "_").to_ascii_uppercase();
    let path = format!("KERAS2SRC_{upper}_WEIGHTS_PATH");
    let external = format!("KERAS2SRC_{upper}_WEIGHTS_EXTERNAL");
    let asm_lines = [
        format!(".ifndef {symbol}"),
        format!(".pushsection .rodata.{symbol},\\\"aG\\\",%progbits,{symbol},comdat"),
        format!(".weak {symbol}"),
        format!(".type {symbol}, %object"),
        ".balign 64".to_string(),
        format!("{symbol}:"),
        format!(".incbin \\\"\" {path} \"\\\""),
        format!(".if . - {symbol} != {bytes}"),
        format!(
            ".error \\\"\" {path} \" does not hold the {bytes} bytes this header expects: \
             regenerate both together\\\""
        ),
        ".endif".to_string(),
        format!(".size {symbol}, . - {symbol}"),
        ".popsection".to_string(),
        ".endif".to_string(),
    ];
    let asm: Vec<String> = asm_lines
        .iter()
        .map(|line| format!("    \"{line}\\n\""))
        .collect();
    format!(
        "// The weights: {bytes} bytes of little-endian f32 in {file}, brought in when this\n\
         // header is compiled (no loading at run time) by the assembler's .incbin, for GCC and\n\
         // Clang on ELF targets. The assembler looks for {path}\n\
         // (default \"{file}\") in its working directory and the -I directories GCC passes on;\n\
         // with Clang or in a -flto link, define {path} as the file's path.\n\
         // Other toolchains: define {external} and the symbol\n\
         // {symbol} yourself (keras2src's README shows how), or generate\n\
         // with --weights inline.\n\
         #if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)\n\
         static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, \"{file} holds little-endian floats\");\n\
         #endif\n\
         extern \"C\" const float {symbol}[{floats}];\n\
         #ifndef {external}\n\
         #ifndef {path}\n\
         #define {path} \"{file}\"\n\
         #endif\n\
         #if defined(__GNUC__) && defined(__ELF__)\n\
         __asm__(\n{}\n);\n\
         #else\n\
         #error \"{file}: .incbin needs GCC or Clang on an ELF target; define {external} and the symbol {symbol} (see keras2src's README), or generate with --weights inline\"\n\
         #endif\n\
         #endif  // {external}\n",
        asm.join("\n")
    )
}

/// A weight array read from the weights file: a pointer into its symbol, indexed flat.
fn weight_pointer(w: &crate::lower::WeightArray, symbol: &str, offset: usize) -> String {
    let dims: Vec<String> = w.dims.iter().map(|d| format!("[{d}]")).collect();
    let at = if offset == 0 {
        format!("::{symbol}")
    } else {
        format!("::{symbol} + {offset}")
    };
    format!(
        "// {}{}, row-major.\ninline constexpr const float* {} = {at};",
        w.ident,
        dims.concat(),
        w.ident
    )
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
