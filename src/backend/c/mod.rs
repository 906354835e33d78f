//! C backend: one C99 header, stb-style, for firmware that is C only (a C compiler that is
//! certified or mandated, MISRA shops, Zephyr modules). No heap, no VLAs, nothing to link;
//! only `<stddef.h>`, `<stdint.h>` and `<math.h>` (for `NAN`, `INFINITY` and `sqrtf`).
//!
//! The declarations and the `NAME_INPUT_LEN`-style macros are always seen; the definitions
//! (weights, one `static` function per layer, `NAME_predict`, `NAME_predict_with_scratch`,
//! `NAME_selftest`) only in the one C file that defines `KERAS2SRC_NAME_IMPLEMENTATION`
//! (NAME upper-cased) before including it. C has no namespaces: every identifier the
//! header defines starts with NAME and an underscore (the layer and weight names come
//! from the Namer, so they stay clear of the entry points and the math runtime).
//!
//! The kernels are printed by the backends' shared walker ([`crate::backend::printer`])
//! with the C dialect, from the program lowered as for C++ (the same compilers, so
//! [`crate::backend::cpp::TUNING`]): the same loops in the same order as Rust and C++,
//! and the math runtime is C++'s algorithms in C (`math/runtime.h`), so the three agree
//! bit for bit without FMA contraction. Like the C++ backend, a writer.

mod dialect;
pub use dialect::float as float_literal;

use dialect::C;

use crate::backend::math;
use crate::backend::printer::Printer;
use crate::backend::CStorage;
use crate::ir::{InputDtype, WeightsDtype};
use crate::lower::loops::Ix;
use crate::lower::{Entry, Layer, Port, Program, Stream, WeightArray, WeightId};
use crate::{Generated, Result, ScratchPlacement, SelfTest};

/// What the header offers besides the model itself.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The leading comment's lines.
    pub header: &'a [String],
    /// The prefix of every identifier (a C identifier); upper-cased for macros.
    pub name: &'a str,
    /// The weights stay in this file (little-endian f32, as
    /// [`crate::backend::weights_file_bytes`] lays it out), brought in by the assembler's
    /// `.incbin`, instead of literals.
    pub weights_file: Option<&'a str>,
    /// Inline weights as hex floats (as the C++ backend's, for parse speed).
    pub hex_weights: bool,
    pub scratch: ScratchPlacement,
    /// A `NAME_selftest()` on this sample (`--emit-test`).
    pub self_test: Option<&'a SelfTest>,
}

/// Prints `program` as a C header (and its weights file).
pub fn emit(program: &Program, options: &Options) -> Result<Generated> {
    let name = options.name;
    let upper = name.to_ascii_uppercase();
    let mut out = String::new();
    for line in options.header {
        out.push_str(if line.is_empty() { "//\n" } else { "// " });
        if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&declarations(program, options));
    let implementation = format!("KERAS2SRC_{upper}_IMPLEMENTATION");
    let implemented = format!("KERAS2SRC_{upper}_IMPLEMENTED");
    out.push_str(&format!(
        "\n// The definitions, in the one C file that defines {implementation} before\n\
         // including this header.\n\
         #if defined({implementation}) && !defined({implemented})\n\
         #define {implemented}\n\
         #ifdef __cplusplus\n\
         #error \"compile the definitions of {name} as C (--lang cpp writes C++)\"\n\
         #endif\n\n"
    ));
    for include in includes(program, options) {
        out.push_str(&format!("#include {include}\n"));
    }
    if program.out_of_line() {
        out.push_str(crate::backend::NOINLINE);
    }
    out.push_str(crate::backend::DISPATCH);
    if options.scratch != ScratchPlacement::Caller {
        // `NAME_predict` and `NAME_step` declare their working memory.
        out.push_str(crate::backend::ALIGNED);
    }
    let mut item = |text: &str| {
        out.push('\n');
        out.push_str(text);
        out.push('\n');
    };
    if let Some(file) = options.weights_file {
        item(&incbin(program, name, file));
    }
    let math = !program.math.is_empty();
    if math {
        item(crate::backend::NO_TRAPPING_MATH.trim());
        item(math::c_source(&program.math, name).trim_end());
    }
    if program.int8 {
        item(math::int8_c_source(name).trim_end());
    }
    if crate::backend::stores(program, WeightsDtype::F16) {
        item(&crate::backend::c_half(
            &format!("KERAS2SRC_HELPER static inline float {name}_half(uint16_t bits)"),
            "memcpy",
            "uint32_t",
        ));
    }
    let symbol = weights_symbol(name);
    for (w, offset) in program
        .weights
        .iter()
        .zip(crate::backend::weights_file_offsets(program))
    {
        item(&match options.weights_file {
            Some(_) => weight_pointer(w, name, &symbol, offset),
            None => weight_array(w, name, options.hex_weights),
        });
    }
    let entries = std::iter::once(&program.predict).chain(program.step.iter().map(|s| &s.entry));
    for e in entries {
        for (i, layer) in e.layers.iter().enumerate() {
            if layer.kernel == i {
                item(&layer_fn(
                    layer,
                    &program.weights,
                    name,
                    options.weights_file.is_some(),
                    program.out_of_line(),
                ));
            }
        }
    }
    item(&entry_fn(
        program,
        &program.predict,
        name,
        "void {name}_predict_with_scratch",
    ));
    if let Some(step) = &program.step {
        item(&entry_fn(
            program,
            &step.entry,
            name,
            "// The step's layers: the model's inputs and the state before, to its outputs and \
             the\n// state after.\nstatic void {name}_step_layers",
        ));
    }
    for f in entry_points(program, options) {
        item(&f);
    }
    if math {
        item(crate::backend::NO_TRAPPING_MATH_END.trim());
    }
    out.push_str(&format!("\n#endif  // {implementation}\n"));
    Ok(Generated {
        source: out,
        weights_file: options.weights_file.map(|file| {
            (
                file.to_string(),
                crate::backend::weights_file_bytes(program),
            )
        }),
        notes: Vec::new(),
    })
}

/// The part every includer sees: size macros and prototypes, in an include guard, callable
/// from C++ too (`extern "C"`).
fn declarations(p: &Program, options: &Options) -> String {
    let name = options.name;
    let upper = name.to_ascii_uppercase();
    let guard = format!("KERAS2SRC_{upper}_H");
    let mut text = format!("\n#ifndef {guard}\n#define {guard}\n\n");
    let ports = || p.predict.inputs.iter().chain(&p.predict.outputs);
    if ports().any(|port| port.dtype != InputDtype::F32) || p.predict.scratch_i8_len > 0 {
        text.push_str("#include <stdint.h>\n\n");
    }
    for (ports, what) in [(&p.predict.inputs, "Input"), (&p.predict.outputs, "Output")] {
        for port in ports.iter() {
            let dims: Vec<String> = port.shape.iter().map(|d| d.to_string()).collect();
            text.push_str(&format!(
                "// {what} `{}`, shape [{}] (batch excluded).\n",
                crate::naming::comment(&port.name),
                dims.join(", ")
            ));
            text.push_str(&format!(
                "#define {}_LEN {}\n",
                port_macro(name, port),
                port.len
            ));
            if let Some(q) = port.quant {
                let m = port_macro(name, port);
                text.push_str(&format!(
                    "// Its quantization (--int8-io): real = (q - {m}_ZERO_POINT) * {m}_SCALE.\n\
                     #define {m}_SCALE {}\n\
                     #define {m}_ZERO_POINT {}\n",
                    float_literal(q.scale),
                    q.zero_point
                ));
            }
        }
    }
    text.push_str(&format!(
        "// Working memory {name}_predict_with_scratch needs, in floats.\n\
         #define {upper}_SCRATCH_LEN {}\n\n",
        p.predict.scratch_len
    ));
    if p.predict.scratch_i8_len > 0 {
        text.push_str(&format!(
            "// Working memory for int8 values, in bytes.\n\
             #define {upper}_SCRATCH_I8_LEN {}\n\n",
            p.predict.scratch_i8_len
        ));
    }
    if let Some(step) = &p.step {
        text.push_str(&stream_declarations(p, step, name));
    }
    text.push_str("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    for (comment, signature) in prototypes(p, options) {
        text.push_str(&format!("{comment}\n{signature};\n"));
    }
    text.push_str("\n#ifdef __cplusplus\n}  // extern \"C\"\n#endif\n");
    text.push_str(&format!("\n#endif  // {guard}\n"));
    text
}

/// A streaming model's macros (the state's length, one time step's ports, the step's
/// working memory) and its `NAME_State` type.
fn stream_declarations(p: &Program, s: &Stream, name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let mut text = format!(
        "// Streaming: one time step per call, the recurrent state in a {name}_State.\n\
         #define {upper}_STATE_LEN {}\n",
        s.state_len()
    );
    let ports = [
        (&p.predict.inputs, s.inputs(), "input"),
        (&p.predict.outputs, s.outputs(), "output"),
    ];
    for (public, step, label) in ports {
        for (public, port) in public.iter().zip(step) {
            let dims: Vec<String> = port.shape.iter().map(|d| d.to_string()).collect();
            text.push_str(&format!(
                "// One time step of {label} `{}`: shape [{}].\n#define {upper}_STEP_{}_LEN {}\n",
                crate::naming::comment(&port.name),
                dims.join(", "),
                public.ident.to_ascii_uppercase(),
                port.len
            ));
        }
    }
    let slots: Vec<String> = s
        .slots
        .iter()
        .map(|slot| format!("\n//   {}", slot.describe()))
        .collect();
    text.push_str(&format!(
        "// Working memory {name}_step_with_scratch needs, in floats.\n\
         #define {upper}_STEP_SCRATCH_LEN {}\n\n\
         // The recurrent state a stream carries from one step to the next (no globals: each\n\
         // stream has its own). {name}_reset starts a stream, as Keras's reset_states() does\n\
         // (so does zero-initialising it). The values:{}\n\
         typedef struct {name}_State {{\n    \
         float values[{upper}_STATE_LEN];\n\
         }} {name}_State;\n\n",
        s.entry.scratch_len,
        slots.concat()
    ));
    text
}

/// `MODEL_INPUT`, `MODEL_OUTPUT1`: a port's macro prefix.
fn port_macro(name: &str, port: &Port) -> String {
    format!("{name}_{}", port.ident).to_ascii_uppercase()
}

/// `const float* input, ..., float* output, ...`.
fn port_params(p: &Entry) -> Vec<String> {
    let inputs = p.inputs.iter().map(|port| {
        let ty = crate::backend::c_type(port.dtype);
        format!("const {ty}* {}", port.ident)
    });
    let outputs = p.outputs.iter().map(|port| {
        let ty = crate::backend::c_type(port.dtype);
        format!("{ty}* {}", port.ident)
    });
    inputs.chain(outputs).collect()
}

/// The entry points' (comment, signature), as the options make them.
fn prototypes(p: &Program, options: &Options) -> Vec<(String, String)> {
    let name = options.name;
    let upper = name.to_ascii_uppercase();
    let params = port_params(&p.predict).join(", ");
    let mut out = Vec::new();
    match options.scratch {
        ScratchPlacement::Stack => out.push((
            "// Runs the model on one sample, with working memory on the stack.".to_string(),
            format!("void {name}_predict({params})"),
        )),
        ScratchPlacement::Static => out.push((
            "// Runs the model on one sample, with working memory in a static buffer: not\n\
             // reentrant (calls must not overlap, from an interrupt or another thread)."
                .to_string(),
            format!("void {name}_predict({params})"),
        )),
        ScratchPlacement::Caller => {}
    }
    out.push((
        format!(
            "// Runs the model with caller-provided working memory ({upper}_SCRATCH_LEN floats{}).",
            if p.predict.scratch_i8_len > 0 {
                format!(", {upper}_SCRATCH_I8_LEN bytes")
            } else {
                String::new()
            }
        ),
        format!(
            "void {name}_predict_with_scratch({params}, {})",
            scratch_params(&p.predict)
        ),
    ));
    if p.step.is_some() {
        out.push((
            "// Starts a stream again: every state zero.".to_string(),
            format!("void {name}_reset({name}_State* state)"),
        ));
        if options.scratch != ScratchPlacement::Caller {
            out.push((
                "// Runs one time step, with its working memory on the stack (one step's), and\n\
                 // updates the state."
                    .to_string(),
                format!("void {name}_step({name}_State* state, {params})"),
            ));
        }
        out.push((
            format!(
                "// Runs one time step with caller-provided working memory \
                 ({upper}_STEP_SCRATCH_LEN floats),\n// and updates the state."
            ),
            format!("void {name}_step_with_scratch({name}_State* state, {params}, float* scratch)"),
        ));
    }
    if let Some(test) = options.self_test {
        let param = if options.scratch == ScratchPlacement::Caller {
            "float* scratch"
        } else {
            "void"
        };
        out.push((
            format!(
                "// Runs the model on the sample given to --emit-test: 1 when every output is\n\
                 // within |got - keras| <= {} + {} * |keras| of Keras's, else 0.",
                test.abs(),
                SelfTest::REL
            ),
            format!("int {name}_selftest({param})"),
        ));
    }
    out
}

/// The standard headers the definitions need: `<stdint.h>` for the math runtime, integer
/// inputs and `__GLIBC__` (which [`crate::backend::DISPATCH`] tests; `<stddef.h>` is the
/// compiler's own), `<math.h>` for the runtime's `sqrtf` and for non-finite constants.
fn includes(program: &Program, options: &Options) -> Vec<&'static str> {
    let mut includes = vec!["<stddef.h>", "<stdint.h>"];
    let non_finite = crate::backend::uses_non_finite(program, options.self_test);
    if program.math.contains(&math::MathFn::Sqrt) || non_finite {
        includes.push("<math.h>");
    }
    if crate::backend::stores(program, WeightsDtype::F16) {
        includes.push("<string.h>");
    }
    includes
}

/// One `static` function per layer; `out_of_line`: the weights as parameters (see
/// [`crate::backend::INLINE_LAYERS_MAX`]).
fn layer_fn(
    layer: &Layer,
    weights: &[WeightArray],
    name: &str,
    in_file: bool,
    out_of_line: bool,
) -> String {
    let storage = storage(name);
    let read = |id: WeightId, row: Option<&Ix>, at: &Ix| {
        let (w, array) = if out_of_line {
            (&weights[layer.weights[id]], format!("weight{id}"))
        } else {
            (&weights[id], format!("{name}_{}", weights[id].ident))
        };
        storage.read(w, &array, row, at, in_file)
    };
    let names = &layer.input_names;
    let mut params: Vec<String> = names
        .iter()
        .zip(&layer.inputs)
        .map(|(input, arg)| {
            let ty = crate::backend::c_type(arg.dtype);
            format!("const {ty}* restrict {input}")
        })
        .collect();
    let out_ty = crate::backend::c_type(layer.output.dtype);
    params.push(format!("{out_ty}* restrict output"));
    if layer.workspace.is_some() {
        params.push("float* restrict work".into());
    }
    params.extend(layer.weights.iter().enumerate().map(|(k, &id)| {
        crate::backend::cpp::kernels::weight_param(&weights[id], k, in_file, "restrict", &storage)
    }));
    let printer = Printer {
        dialect: &C { prefix: name },
        inputs: names,
        weight: &read,
    };
    let body = printer.text(&layer.body, 1);
    format!(
        "// {}\n{}static {}void {name}_{}({}) {{\n{}}}",
        layer.comment,
        crate::backend::dispatch(layer),
        if out_of_line {
            "KERAS2SRC_NOINLINE "
        } else {
            ""
        },
        layer.ident,
        params.join(", "),
        body
    )
}

/// The function that calls an entry's layers in order; `head` is what comes before its
/// parameters, with `{name}` for the model's name.
fn entry_fn(p: &Program, e: &Entry, name: &str, head: &str) -> String {
    let mut text = format!(
        "{}({}, {}) {{\n",
        head.replace("{name}", name),
        port_params(e).join(", "),
        scratch_params(e)
    );
    if e.scratch_len == 0 {
        text.push_str("    (void)scratch;\n");
    }
    for layer in &e.layers {
        let mut args: Vec<String> = layer
            .inputs
            .iter()
            .map(|a| crate::backend::c_pointer(e, a))
            .collect();
        args.push(crate::backend::c_pointer(e, &layer.output));
        if let Some(work) = &layer.workspace {
            args.push(crate::backend::c_pointer(e, work));
        }
        args.extend(
            layer
                .weights
                .iter()
                .map(|&id| format!("{name}_{}", p.weights[id].ident)),
        );
        text.push_str(&format!(
            "    {name}_{}({});\n",
            e.layers[layer.kernel].ident,
            args.join(", ")
        ));
    }
    text.push('}');
    text
}

/// `float* scratch`, and the int8 arena of a quantized model.
fn scratch_params(e: &Entry) -> &'static str {
    if e.scratch_i8_len > 0 {
        "float* scratch, int8_t* scratch_i8"
    } else {
        "float* scratch"
    }
}

fn call_args(p: &Program) -> Vec<String> {
    let ports = p.predict.inputs.iter().chain(&p.predict.outputs);
    ports.map(|port| port.ident.clone()).collect()
}

/// `NAME_predict` as the scratch placement makes it, and `NAME_selftest` with
/// `--emit-test`.
fn entry_points(p: &Program, options: &Options) -> Vec<String> {
    let name = options.name;
    let upper = name.to_ascii_uppercase();
    let (params, args) = (port_params(&p.predict).join(", "), call_args(p).join(", "));
    let bytes = p.predict.scratch_i8_len > 0;
    let buffer = format!(
        "float scratch[{upper}_SCRATCH_LEN > 0 ? {upper}_SCRATCH_LEN : 1] KERAS2SRC_ALIGNED;"
    );
    let mut out = Vec::new();
    let storage = match options.scratch {
        ScratchPlacement::Stack => Some(""),
        ScratchPlacement::Static => Some("static "),
        ScratchPlacement::Caller => None,
    };
    if let Some(storage) = storage {
        let (bytes_decl, bytes_arg) = if bytes {
            (
                format!("\n    {storage}int8_t scratch_i8[{upper}_SCRATCH_I8_LEN];"),
                ", scratch_i8",
            )
        } else {
            (String::new(), "")
        };
        out.push(format!(
            "void {name}_predict({params}) {{\n    \
             {storage}{buffer}{bytes_decl}\n    \
             {name}_predict_with_scratch({args}, scratch{bytes_arg});\n}}"
        ));
    }
    if p.step.is_some() {
        let ins = p.predict.inputs.iter().map(|port| port.ident.as_str());
        let outs = p.predict.outputs.iter().map(|port| port.ident.as_str());
        let layer_args: Vec<&str> = ins
            .chain(["before"])
            .chain(outs)
            .chain(["state->values", "scratch"])
            .collect();
        out.push(format!(
            "void {name}_reset({name}_State* state) {{\n    \
             size_t i;\n    \
             for (i = 0; i < {upper}_STATE_LEN; ++i) state->values[i] = 0.0f;\n}}"
        ));
        out.push(format!(
            "void {name}_step_with_scratch({name}_State* state, {params}, float* scratch) {{\n    \
             float before[{upper}_STATE_LEN];\n    \
             size_t i;\n    \
             for (i = 0; i < {upper}_STATE_LEN; ++i) before[i] = state->values[i];\n    \
             {name}_step_layers({});\n}}",
            layer_args.join(", ")
        ));
        if options.scratch != ScratchPlacement::Caller {
            out.push(format!(
                "void {name}_step({name}_State* state, {params}) {{\n    \
                 float scratch[{upper}_STEP_SCRATCH_LEN > 0 ? {upper}_STEP_SCRATCH_LEN : 1] KERAS2SRC_ALIGNED;\n    \
                 {name}_step_with_scratch(state, {args}, scratch);\n}}"
            ));
        }
    }
    if let Some(test) = options.self_test {
        out.push(self_test(p, name, test, options.scratch));
    }
    out
}

/// `NAME_selftest()`: the `--emit-test` sample through the model, compared with Keras's
/// outputs within the DESIGN bound (NaN must stay NaN).
fn self_test(p: &Program, name: &str, test: &SelfTest, scratch: ScratchPlacement) -> String {
    let floats = |values: &[f32]| {
        let text: Vec<String> = values.iter().map(|&v| float_literal(v)).collect();
        text.join(", ")
    };
    let (abs, rel) = (test.abs(), SelfTest::REL);
    let mut lines = Vec::new();
    let mut args = Vec::new();
    for (port, values) in p.predict.inputs.iter().zip(&test.inputs) {
        let ty = crate::backend::c_type(port.dtype);
        let text = match port.dtype {
            InputDtype::F32 => floats(values),
            InputDtype::I32 | InputDtype::I8 => crate::backend::integers(values),
        };
        let var = format!("sample_{}", port.ident);
        lines.push(format!(
            "static const {ty} {var}[{}] = {{{text}}};",
            values.len().max(1)
        ));
        args.push(var);
    }
    let mut checks = Vec::new();
    for (port, values) in p.predict.outputs.iter().zip(&test.outputs) {
        let keras = format!("keras_{}", port.ident);
        lines.push(format!(
            "static const float {keras}[{}] = {{{}}};",
            values.len().max(1),
            floats(values)
        ));
        let len = format!("{}_LEN", port_macro(name, port));
        lines.push(format!("float {}[{len}];", port.ident));
        args.push(port.ident.clone());
        checks.push((port.ident.clone(), keras, len));
    }
    lines.push("size_t i;".into());
    let (param, call) = match scratch {
        ScratchPlacement::Caller => (
            "float* scratch",
            format!("{name}_predict_with_scratch({}, scratch);", args.join(", ")),
        ),
        _ => ("void", format!("{name}_predict({});", args.join(", "))),
    };
    lines.push(call);
    for (got, keras, len) in checks {
        lines.push(format!(
            "for (i = 0; i < {len}; ++i) {{\n        \
             const float g = {got}[i], k = {keras}[i];\n        \
             const float bound = {abs}f + {rel}f * (k < 0.0f ? -k : k);\n        \
             if (k != k ? g == g : !(g == k || (g > k ? g - k : k - g) <= bound)) {{\n            \
             return 0;\n        \
             }}\n    \
             }}"
        ));
    }
    lines.push("return 1;".into());
    format!(
        "int {name}_selftest({param}) {{\n    {}\n}}",
        lines.join("\n    ")
    )
}

/// The weights file's symbol.
fn weights_symbol(name: &str) -> String {
    format!("keras2src_{name}_weights")
}

/// The declaration of the weights file's symbol and its `.incbin` definition, as the C++
/// backend's ([`crate::backend::incbin`]), with C's `#if` for C++'s `static_assert`.
fn incbin(p: &Program, name: &str, file: &str) -> String {
    use crate::backend::incbin;
    let symbol = weights_symbol(name);
    let bytes = crate::backend::weights_file_len(p);
    let floats = bytes / 4;
    let (path, external) = incbin::macros(&name.to_ascii_uppercase());
    let little_endian = "defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
                         __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__";
    format!(
        "{}#if {little_endian}\n\
         #error \"{file} holds little-endian floats\"\n\
         #endif\n\
         extern const float {symbol}[{floats}];\n{}",
        incbin::comment(
            file,
            bytes,
            &path,
            &external,
            &symbol,
            &crate::backend::file_holds(p)
        ),
        incbin::definition(file, bytes, &path, &external, &symbol),
    )
}

/// A weight array read from the weights file: a pointer into its symbol, indexed flat.
/// `offset` is in bytes. A compressed array is read through a character pointer (which
/// may read the bytes of the file's float array).
fn weight_pointer(w: &WeightArray, name: &str, symbol: &str, offset: usize) -> String {
    let dims: Vec<String> = w.dims.iter().map(|d| format!("[{d}]")).collect();
    let (what, ty, at) = match w.dtype {
        WeightsDtype::F32 => (
            "",
            "float",
            if offset == 0 {
                symbol.to_string()
            } else {
                format!("{symbol} + {}", offset / 4)
            },
        ),
        WeightsDtype::F16 | WeightsDtype::Int8 | WeightsDtype::Q8 | WeightsDtype::I32 => {
            let ty = storage(name).file_type(w.dtype);
            let what = crate::backend::file_comment(w.dtype);
            (what, ty, format!("(const {ty}*){symbol} + {offset}"))
        }
    };
    format!(
        "// {}{}{what}, row-major.\nstatic const {ty}* const {name}_{} = {at};",
        w.ident,
        dims.concat(),
        w.ident
    )
}

/// How C spells compressed weights.
fn storage(name: &str) -> CStorage {
    CStorage {
        int8: "int8_t",
        uint16: "uint16_t",
        int32: "int32_t",
        uint32: "uint32_t",
        cast: |ty, x| format!("({ty})({x})"),
        half: format!("{name}_half"),
    }
}

fn weight_array(w: &WeightArray, name: &str, hex: bool) -> String {
    let literal = if hex {
        crate::backend::cpp::hex_float
    } else {
        float_literal
    };
    let init = crate::backend::array_initializer(w, literal);
    let ty = storage(name).element_type(w.dtype);
    format!("static const {ty} {name}_{}{init}", w.ident)
}
