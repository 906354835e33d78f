//! C++ backend: one C++17 header, no heap, no exceptions, no STL containers; only
//! `<cstddef>`, `<cstdint>` and `<cmath>`.
//!
//! A writer, as naga's backends are, not a template: the kernels are printed by the
//! shared walker ([`crate::backend::printer`]) and every other part (constants, entry
//! points, self-test, C API, `.incbin`) is decided from the program, so a template would
//! hold only the skeleton and pass pre-rendered strings through. Written here, the whole
//! header reads top to bottom in one file, and nothing can fail at render time.

mod dialect;
pub use dialect::{float as float_literal, hex_float, unroll_pragma};
pub(crate) mod kernels;

use crate::backend::{c_pointer, math};
use crate::ir::{InputDtype, WeightsDtype};
use crate::lower::loops::Unroll;
use crate::lower::{Blocking, Entry, Port, Program, Stream, Tuning};
use crate::{Generated, Result, ScratchPlacement, SelfTest};

/// How lowering tunes loops for g++. It fully unrolls filter loops of up to 16 and then
/// vectorises the channel loop as an in-order reduction (hence `Unroll::Never`);
/// wider loops stay vector loops. Convolutions sum 6 positions x 32 filters in local
/// arrays, 4 input channels per statement: each weight vector loaded serves 6 positions.
/// Whole model, g++ -O3 -march=native, best of 12 (Zen 4, 2026-12-07), pixels x filters x
/// channels, summed in place in the output, ResNet50 in ms: 1 x 64 x 8 (the tuning before)
/// 167, 2 x 64 x 8 101, 4 x 32 x 8 105, 6 x 16 x 8 102, 6 x 32 x 8 91, 6 x 64 x 8 106,
/// 8 x 32 x 4 105, 12 x 16 x 8 124, 6 x 32 x 4 85 (77 once a row's remainder became one
/// block); EfficientNetB0 22.6 -> 15.6 ms; MobileNetV2 393 -> 294 us. Then 6 x 32 x 4 in
/// local arrays instead of in place: ResNet50 77.9 -> 77.0 ms, EfficientNetB0 14.7 -> 13.6
/// ms, MobileNetV2 295 -> 275 us, and at g++ -O2 MobileNetV2 1183 -> 914 us (1055 before
/// any of this). A convolution fused with its max pooling keeps 8 channels per statement
/// (bench_cnn: 17.0 us, 19.0 at 4).
pub const TUNING: Tuning = Tuning {
    blocking: Blocking {
        pixels: 6,
        filters: 32,
        channels: 4,
        pool_channels: 8,
        rows: 8,
        tile: crate::lower::TILE,
        pack: false,
    },
    short_loops: Unroll::Never,
};

/// How lowering tunes loops for GCC on a core without SIMD (`--tune mcu`: Cortex-M4F, M7):
/// 8 filters (or Dense outputs) at a time, accumulated in a local array that fully unrolled
/// loops keep in the 32 single-precision registers, each block's weights packed to be read
/// in order through one pointer. The numbers are the default tuning's, bit for bit
/// (tests/tuning.rs). Instructions per MAC at arm-none-eabi-g++ -O2 on the emulated
/// Cortex-M4F (tests/firmware.rs), seed / bench_cnn, against the default tuning's 2.89 /
/// 2.99: Dense rows per statement 1: 2.64 / 2.22, 2: 2.51 / 2.21, 3: 2.44 / 2.20, 4: 2.41 /
/// 2.20, with seed's .text 1620, 2088, 2760 and 2928 bytes (default: 1116). Before the
/// partial-sum nests were unrolled too (they keep the default's order of additions): rows
/// 4: 2.76 / 2.25. Rows 3, taken as 2 where 2 leave no remainder statement and 3 would
/// (`dense::rows_per_pass`): 2.47 / 2.21 at 2152 bytes, meeting issue 16's 2.5 per MAC
/// within 2x the .text.
pub const MCU_TUNING: Tuning = Tuning {
    blocking: Blocking {
        pixels: 2,
        filters: 8,
        channels: 1,
        pool_channels: 1,
        rows: 3,
        tile: 8,
        pack: true,
    },
    short_loops: Unroll::Fully,
};

/// What the header offers besides the model itself.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The leading comment's lines.
    pub header: &'a [String],
    /// The namespace (may be nested, `a::b`).
    pub namespace: &'a str,
    /// The weights stay in this file (little-endian f32, as
    /// [`crate::backend::weights_file_bytes`] lays it out), brought in by the assembler's
    /// `.incbin`, instead of literals.
    pub weights_file: Option<&'a str>,
    /// Inline weights as hex floats, which g++ parses about 25% faster than decimal
    /// (measured: 1.30 s against 1.74 s per million) but nobody reads in a diff.
    pub hex_weights: bool,
    pub scratch: ScratchPlacement,
    /// `extern "C"` entry points named `NAME_predict`, ...
    pub extern_c: bool,
    /// A `selftest()` on this sample (`--emit-test`).
    pub self_test: Option<&'a SelfTest>,
}

/// Prints `program` as a C++ header (and its weights file).
pub fn emit(program: &Program, options: &Options) -> Result<Generated> {
    let namespace = options.namespace;
    let symbol = format!("keras2src_{}_weights", namespace.replace("::", "_"));
    let guard = format!(
        "KERAS2SRC_{}_HPP",
        namespace.replace("::", "_").to_ascii_uppercase()
    );
    let mut out = String::new();
    for line in options.header {
        out.push_str(if line.is_empty() { "//\n" } else { "// " });
        if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&format!("\n#ifndef {guard}\n#define {guard}\n"));
    if options.extern_c {
        out.push_str("\n#ifdef __cplusplus\n");
    }
    out.push('\n');
    for include in includes(program, options) {
        out.push_str(&format!("#include {include}\n"));
    }
    if program.int8 {
        // The DSP extension's intrinsics, for `detail::dot_i8`.
        out.push_str(math::DSP_INCLUDE);
    }
    let noinline = program.out_of_line();
    if noinline {
        out.push_str(crate::backend::NOINLINE);
    }
    out.push_str(crate::backend::DISPATCH);
    if options.scratch != ScratchPlacement::Caller {
        // `predict` and `step` declare their working memory.
        out.push_str(crate::backend::ALIGNED);
    }
    if let Some(file) = options.weights_file {
        out.push('\n');
        out.push_str(&incbin(program, namespace, &symbol, file));
    }
    let math = !program.math.is_empty();
    if math {
        out.push_str(crate::backend::NO_TRAPPING_MATH);
    }
    out.push_str(&format!("\nnamespace {namespace} {{\n\n"));
    for line in constants(program) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(step) = &program.step {
        for line in stream_constants(program, step) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str("\nnamespace detail {\n");
    let mut item = |text: &str| {
        out.push('\n');
        out.push_str(text);
        out.push('\n');
    };
    if !program.math.is_empty() {
        item(&math::cpp_source(&program.math));
    }
    if program.int8 {
        item(math::int8_cpp_source().trim_end());
    }
    if crate::backend::stores(program, WeightsDtype::F16) {
        item(&crate::backend::c_half(
            "KERAS2SRC_HELPER inline float half(std::uint16_t bits) noexcept",
            "std::memcpy",
            "std::uint32_t",
        ));
    }
    for (w, offset) in program
        .weights
        .iter()
        .zip(crate::backend::weights_file_offsets(program))
    {
        item(&match options.weights_file {
            Some(_) => weight_pointer(w, &symbol, offset),
            None => weight_array(w, options.hex_weights),
        });
    }
    let entries = std::iter::once(&program.predict).chain(program.step.iter().map(|s| &s.entry));
    for e in entries {
        for (i, layer) in e.layers.iter().enumerate() {
            if layer.kernel == i {
                item(&kernels::layer_fn(
                    layer,
                    &program.weights,
                    options.weights_file.is_some(),
                    noinline,
                ));
            }
        }
    }
    if let Some(step) = &program.step {
        item(&entry_fn(
            program,
            &step.entry,
            "// The step's layers: the model's inputs and the state before, to its outputs and the\n\
             // state after.\n",
            "step_layers",
        ));
        item(&step_values(program));
    }
    out.push_str("\n}  // namespace detail\n\n");
    out.push_str(&entry_fn(
        program,
        &program.predict,
        "// Runs the model with caller-provided working memory (kScratchLen floats).\n",
        "predict_with_scratch",
    ));
    for f in entry_points(program, options) {
        out.push_str(&format!("\n{f}\n"));
    }
    out.push_str(&format!("\n}}  // namespace {namespace}\n"));
    if math {
        out.push_str(crate::backend::NO_TRAPPING_MATH_END);
    }
    if options.extern_c {
        out.push_str(&format!(
            "\n#endif  // __cplusplus\n\n{}\n",
            c_api(program, options)
        ));
    }
    out.push_str(&format!("\n#endif  // {guard}\n"));
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

/// The standard headers the model needs: `<cmath>` for the math runtime and for
/// non-finite constants (`INFINITY`, `NAN`).
fn includes(program: &Program, options: &Options) -> Vec<&'static str> {
    let mut includes = vec!["<cstddef>"];
    let uses_math = !program.math.is_empty();
    let compressed = program.weights.iter().any(|w| w.dtype != WeightsDtype::F32);
    if uses_math
        || compressed
        || program.int8
        || program
            .predict
            .inputs
            .iter()
            .any(|i| i.dtype == InputDtype::I32)
    {
        includes.push("<cstdint>");
    }
    if uses_math || crate::backend::uses_non_finite(program, options.self_test) {
        includes.push("<cmath>");
    }
    if crate::backend::stores(program, WeightsDtype::F16) {
        includes.push("<cstring>");
    }
    includes
}

/// A port's name in C++ constants: `Input`, `Output1`.
fn capitalized(port: &Port) -> String {
    let mut chars = port.ident.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn constants(p: &Program) -> Vec<String> {
    let mut out = Vec::new();
    for (ports, prefix) in [(&p.predict.inputs, "Input"), (&p.predict.outputs, "Output")] {
        for port in ports.iter() {
            let base = format!("k{}", capitalized(port));
            let dims: Vec<String> = port.shape.iter().map(|d| d.to_string()).collect();
            out.push(format!(
                "// {prefix} `{}`, shape [{}] (batch excluded).",
                crate::naming::comment(&port.name),
                dims.join(", ")
            ));
            out.push(format!("constexpr std::size_t {base}Len = {};", port.len));
            if let Some(q) = port.quant {
                out.push(format!(
                    "// Its quantization (--int8-io): real = ({base}ZeroPoint - q) * {base}Scale."
                ));
                out.push(format!(
                    "constexpr float {base}Scale = {};",
                    float_literal(q.scale)
                ));
                out.push(format!(
                    "constexpr std::int32_t {base}ZeroPoint = {};",
                    q.zero_point
                ));
            }
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
        if p.predict.inputs.len() != 1 || p.predict.outputs.len() != 1 {
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
        p.predict.scratch_len
    ));
    if p.predict.scratch_i8_len > 0 {
        out.push("// Working memory for int8 values, in bytes.".into());
        out.push(format!(
            "constexpr std::size_t kScratchI8Len = {};",
            p.predict.scratch_i8_len
        ));
    }
    out
}

fn params(p: &Program) -> String {
    port_params(&p.predict, crate::backend::cpp_type).join(", ")
}

/// `const float* input, ..., float* output, ...`, each element type as `ty` spells it
/// (C++'s, or C's for the `extern "C"` declarations).
fn port_params(p: &Entry, ty: fn(InputDtype) -> &'static str) -> Vec<String> {
    let inputs = p
        .inputs
        .iter()
        .map(|port| format!("const {}* {}", ty(port.dtype), port.ident));
    let outputs = p
        .outputs
        .iter()
        .map(|port| format!("{}* {}", ty(port.dtype), port.ident));
    inputs.chain(outputs).collect()
}

/// A streaming model's constants: the state's length, one time step's ports, the step's
/// working memory.
fn stream_constants(p: &Program, s: &Stream) -> Vec<String> {
    let mut out = vec![
        String::new(),
        "// Streaming: one time step per call, the recurrent state in a State.".into(),
        format!("constexpr std::size_t kStateLen = {};", s.state_len()),
    ];
    let ports = [
        (&p.predict.inputs, s.inputs(), "input"),
        (&p.predict.outputs, s.outputs(), "output"),
    ];
    for (public, step, label) in ports {
        for (name, port) in public.iter().zip(step) {
            let dims: Vec<String> = port.shape.iter().map(|d| d.to_string()).collect();
            out.push(format!(
                "// One time step of {label} `{}`: shape [{}].",
                crate::naming::comment(&port.name),
                dims.join(", ")
            ));
            out.push(format!(
                "constexpr std::size_t kStep{}Len = {};",
                capitalized(name),
                port.len
            ));
        }
    }
    out.push("// Working memory step_with_scratch needs, in floats.".into());
    out.push(format!(
        "constexpr std::size_t kStepScratchLen = {};",
        s.entry.scratch_len
    ));
    out
}

/// `detail::step_values`: one step on the state's values, which `step_with_scratch` and
/// the C entry points call.
fn step_values(p: &Program) -> String {
    let params = port_params(&p.predict, crate::backend::cpp_type).join(", ");
    let ins = p.predict.inputs.iter().map(|port| port.ident.as_str());
    let outs = p.predict.outputs.iter().map(|port| port.ident.as_str());
    let layer_args: Vec<&str> = ins
        .chain(["before"])
        .chain(outs)
        .chain(["state", "scratch"])
        .collect();
    format!(
        "inline void step_values(float* state, {params}, float* scratch) noexcept {{\n    \
         float before[kStateLen];\n    \
         for (std::size_t i = 0; i < kStateLen; ++i) before[i] = state[i];\n    \
         step_layers({});\n\
         }}",
        layer_args.join(", ")
    )
}

/// `State` and `step_with_scratch`, and `step` unless the caller places the scratch.
fn stream_entry_points(p: &Program, s: &Stream, scratch: ScratchPlacement) -> Vec<String> {
    let slots: Vec<String> = s
        .slots
        .iter()
        .map(|slot| format!("\n//   {}", slot.describe()))
        .collect();
    let params = port_params(&p.predict, crate::backend::cpp_type).join(", ");
    let args = call_args(p);
    let mut out = vec![
        format!(
            "// The recurrent state a stream carries from one step to the next (no globals: each\n\
             // stream has its own). `State state{{}};` starts a stream, as after Keras's\n\
             // reset_states(); so does reset(). The values:{}\n\
             struct State {{\n    \
             float values[kStateLen];\n\n    \
             void reset() noexcept {{\n        \
             for (std::size_t i = 0; i < kStateLen; ++i) values[i] = 0.0f;\n    \
             }}\n\
             }};",
            slots.concat()
        ),
        format!(
            "// Runs one time step with caller-provided working memory (kStepScratchLen floats),\n\
             // and updates the state.\n\
             inline void step_with_scratch(State& state, {params}, float* scratch) noexcept {{\n    \
             detail::step_values(state.values, {args}, scratch);\n\
             }}"
        ),
    ];
    if scratch != ScratchPlacement::Caller {
        out.push(format!(
            "// Runs one time step, with its working memory on the stack (one step's), and updates\n\
             // the state.\n\
             inline void step(State& state, {params}) noexcept {{\n    \
             float scratch[kStepScratchLen > 0 ? kStepScratchLen : 1] KERAS2SRC_ALIGNED;\n    \
             step_with_scratch(state, {args}, scratch);\n\
             }}"
        ));
    }
    out
}

/// `predict` as the scratch placement makes it, and `selftest` with `--emit-test`.
fn entry_points(p: &Program, api: &Options) -> Vec<String> {
    let (params, args) = (params(p), call_args(p));
    let mut out = Vec::new();
    let (bytes, bytes_arg) = if p.predict.scratch_i8_len > 0 {
        (
            "\n    {storage}std::int8_t scratch_i8[kScratchI8Len];",
            ", scratch_i8",
        )
    } else {
        ("", "")
    };
    match api.scratch {
        ScratchPlacement::Stack => out.push(format!(
            "// Runs the model on one sample, with working memory on the stack.\n\
             inline void predict({params}) noexcept {{\n    \
             float scratch[kScratchLen > 0 ? kScratchLen : 1] KERAS2SRC_ALIGNED;{}\n    \
             predict_with_scratch({args}, scratch{bytes_arg});\n}}",
            bytes.replace("{storage}", "")
        )),
        ScratchPlacement::Caller => {}
        ScratchPlacement::Static => out.push(format!(
            "// Runs the model on one sample, with working memory in a static buffer: not\n\
             // reentrant (calls must not overlap, from an interrupt or another thread).\n\
             inline void predict({params}) noexcept {{\n    \
             static float scratch[kScratchLen > 0 ? kScratchLen : 1] KERAS2SRC_ALIGNED;{}\n    \
             predict_with_scratch({args}, scratch{bytes_arg});\n}}",
            bytes.replace("{storage}", "static ")
        )),
    }
    if let Some(step) = &p.step {
        out.extend(stream_entry_points(p, step, api.scratch));
    }
    if let Some(test) = api.self_test {
        out.push(self_test(p, test, api.scratch));
    }
    out
}

/// `selftest()`: the `--emit-test` sample through the model, compared with Keras's outputs
/// within the DESIGN bound (NaN must stay NaN).
fn self_test(p: &Program, test: &SelfTest, scratch: ScratchPlacement) -> String {
    let floats = |values: &[f32]| {
        values
            .iter()
            .map(|&v| dialect::float(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (abs, rel) = (test.abs(), SelfTest::REL);
    let mut data = Vec::new();
    let mut args = Vec::new();
    for (port, values) in p.predict.inputs.iter().zip(&test.inputs) {
        let name = format!("kSelftest{}", capitalized(port));
        let ty = crate::backend::cpp_type(port.dtype);
        let text = match port.dtype {
            InputDtype::F32 => floats(values),
            InputDtype::I32 | InputDtype::I8 => crate::backend::integers(values),
        };
        data.push(format!(
            "    static constexpr {ty} {name}[{}] = {{{text}}};",
            values.len().max(1)
        ));
        args.push(name);
    }
    let mut checks = Vec::new();
    let mut outputs = Vec::new();
    for (output, values) in p.predict.outputs.iter().zip(&test.outputs) {
        let port = capitalized(output);
        data.push(format!(
            "    static constexpr float kKeras{port}[{}] = {{{}}};",
            values.len().max(1),
            floats(values)
        ));
        let out = output.ident.clone();
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
         // within |got - keras| <= {abs} + {rel} * |keras| of Keras's.\n\
         inline bool selftest({param}) noexcept {{\n\
         {}\n\
         {}\n    \
         {call}\n    \
         const auto close = [](const float* got, const float* keras, std::size_t n) {{\n        \
         for (std::size_t i = 0; i < n; ++i) {{\n            \
         const float g = got[i], k = keras[i];\n            \
         const float bound = {abs}f + {rel}f * (k < 0 ? -k : k);\n            \
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
fn c_api(p: &Program, api: &Options) -> String {
    let namespace = api.namespace;
    let prefix = namespace.replace("::", "_");
    let upper = prefix.to_ascii_uppercase();
    let implementation = format!("KERAS2SRC_{upper}_IMPLEMENTATION");
    let mut text = format!(
        "// C entry points (--extern-c), for C and C++ callers. Exactly one C++ file defines\n\
         // {implementation} before including this header, which compiles them there.\n"
    );
    let ports = || p.predict.inputs.iter().chain(&p.predict.outputs);
    if ports().any(|port| port.dtype != InputDtype::F32) || p.predict.scratch_i8_len > 0 {
        text.push_str("#include <stdint.h>\n");
    }
    text.push('\n');
    for port in ports() {
        let port_c = port.ident.to_ascii_uppercase();
        text.push_str(&format!("#define {upper}_{port_c}_LEN {}\n", port.len));
        if let Some(q) = port.quant {
            text.push_str(&format!(
                "#define {upper}_{port_c}_SCALE {}\n#define {upper}_{port_c}_ZERO_POINT {}\n",
                float_literal(q.scale),
                q.zero_point
            ));
        }
    }
    text.push_str(&format!(
        "#define {upper}_SCRATCH_LEN {}\n",
        p.predict.scratch_len
    ));
    if p.predict.scratch_i8_len > 0 {
        text.push_str(&format!(
            "#define {upper}_SCRATCH_I8_LEN {}\n",
            p.predict.scratch_i8_len
        ));
    }
    text.push('\n');
    // C parameter declarations; the C++ call passes each one's name on.
    let mut params = port_params(&p.predict, crate::backend::c_type);
    let scratch = "float* scratch".to_string();
    let caller = api.scratch == ScratchPlacement::Caller;
    let mut functions: Vec<CFunction> = Vec::new();
    if !caller {
        functions.push(CFunction::new("void", "predict", params.clone()));
    }
    params.push(scratch.clone());
    if p.predict.scratch_i8_len > 0 {
        params.push("int8_t* scratch_i8".into());
    }
    functions.push(CFunction::new("void", "predict_with_scratch", params));
    if api.self_test.is_some() {
        let params = if caller { vec![scratch] } else { Vec::new() };
        functions.push(CFunction::new("int", "selftest", params));
    }
    // The streaming entry points: (signature, body).
    let mut stream: Vec<(String, String)> = Vec::new();
    if let Some(step) = &p.step {
        text.push_str(&format!("#define {upper}_STATE_LEN {}\n", step.state_len()));
        for (public, port) in p.predict.inputs.iter().zip(step.inputs()) {
            let port_c = public.ident.to_ascii_uppercase();
            text.push_str(&format!("#define {upper}_STEP_{port_c}_LEN {}\n", port.len));
        }
        for (public, port) in p.predict.outputs.iter().zip(step.outputs()) {
            let port_c = public.ident.to_ascii_uppercase();
            text.push_str(&format!("#define {upper}_STEP_{port_c}_LEN {}\n", port.len));
        }
        text.push_str(&format!(
            "#define {upper}_STEP_SCRATCH_LEN {}\n\n\
             // A stream's recurrent state ({namespace}::State's values); zero starts a stream.\n\
             typedef struct {prefix}_State {{\n    float values[{upper}_STATE_LEN];\n}} {prefix}_State;\n\n",
            step.entry.scratch_len
        ));
        let ports = port_params(&p.predict, crate::backend::c_type).join(", ");
        let args = call_args(p);
        stream.push((
            format!("void {prefix}_reset({prefix}_State* state)"),
            format!("for (int i = 0; i < {upper}_STATE_LEN; ++i) state->values[i] = 0.0f;"),
        ));
        if !caller {
            stream.push((
                format!("void {prefix}_step({prefix}_State* state, {ports})"),
                format!(
                    "float scratch[{namespace}::kStepScratchLen > 0 ? {namespace}::kStepScratchLen : 1] KERAS2SRC_ALIGNED;\n    \
                     {namespace}::detail::step_values(state->values, {args}, scratch);"
                ),
            ));
        }
        stream.push((
            format!(
                "void {prefix}_step_with_scratch({prefix}_State* state, {ports}, float* scratch)"
            ),
            format!("{namespace}::detail::step_values(state->values, {args}, scratch);"),
        ));
    }
    text.push_str("#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
    for f in &functions {
        text.push_str(&format!("{};\n", f.signature(&prefix)));
    }
    for (signature, _) in &stream {
        text.push_str(&format!("{signature};\n"));
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
    for (signature, body) in &stream {
        text.push_str(&format!("extern \"C\" {signature} {{\n    {body}\n}}\n"));
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

/// `float* scratch`, and the int8 arena of a quantized model.
fn scratch_params(e: &Entry) -> &'static str {
    if e.scratch_i8_len > 0 {
        "float* scratch, std::int8_t* scratch_i8"
    } else {
        "float* scratch"
    }
}

fn call_args(p: &Program) -> String {
    let ports = p.predict.inputs.iter().chain(&p.predict.outputs);
    ports
        .map(|port| port.ident.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The function that calls an entry's layers in order: `NAME(ports..., scratch)`.
fn entry_fn(p: &Program, e: &Entry, comment: &str, name: &str) -> String {
    let mut out = format!(
        "{comment}inline void {name}({}, {}) noexcept {{\n",
        port_params(e, crate::backend::cpp_type).join(", "),
        scratch_params(e)
    );
    if e.scratch_len == 0 {
        out.push_str("    (void)scratch;\n");
    }
    for layer in &e.layers {
        out.push_str(&format!("    {}\n", call(p, e, layer)));
    }
    out.push_str("}\n");
    out
}

fn call(p: &Program, e: &Entry, layer: &crate::lower::Layer) -> String {
    let mut args: Vec<String> = layer.inputs.iter().map(|a| c_pointer(e, a)).collect();
    args.push(c_pointer(e, &layer.output));
    if let Some(work) = &layer.workspace {
        args.push(c_pointer(e, work));
    }
    args.extend(
        layer
            .weights
            .iter()
            .map(|&id| format!("detail::{}", p.weights[id].ident)),
    );
    format!(
        "detail::{}({});",
        e.layers[layer.kernel].ident,
        args.join(", ")
    )
}

/// The declaration of the weights file's symbol and, for GCC and Clang on ELF targets, the
/// top-level `asm` that defines it with `.incbin`: aligned, read-only, in a COMDAT group (one
/// copy however many translation units include the header; `.ifndef` for `-flto`, which
/// assembles them together), its length checked by the assembler.
fn incbin(p: &Program, namespace: &str, symbol: &str, file: &str) -> String {
    use crate::backend::incbin;
    let bytes = crate::backend::weights_file_len(p);
    let floats = bytes / 4;
    let upper = namespace.replace("::", "_").to_ascii_uppercase();
    let (path, external) = incbin::macros(&upper);
    format!(
        "{}#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)\n\
         static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, \"{file} holds little-endian floats\");\n\
         #endif\n\
         extern \"C\" const float {symbol}[{floats}];\n{}\n",
        incbin::comment(file, bytes, &path, &external, symbol, &crate::backend::file_holds(p)),
        incbin::definition(file, bytes, &path, &external, symbol),
    )
}

/// A weight array read from the weights file: a pointer into its symbol, indexed flat.
/// `offset` is in bytes. A compressed array is read through a character pointer (which
/// may read the bytes of the file's float array).
fn weight_pointer(w: &crate::lower::WeightArray, symbol: &str, offset: usize) -> String {
    let dims: Vec<String> = w.dims.iter().map(|d| format!("[{d}]")).collect();
    let what = crate::backend::file_comment(w.dtype);
    let declaration = match w.dtype {
        WeightsDtype::F32 => {
            let at = if offset == 0 {
                format!("::{symbol}")
            } else {
                format!("::{symbol} + {}", offset / 4)
            };
            format!("inline constexpr const float* {} = {at};", w.ident)
        }
        WeightsDtype::F16 | WeightsDtype::Int8 | WeightsDtype::Q8 | WeightsDtype::I32 => {
            let ty = kernels::storage().file_type(w.dtype);
            format!(
                "inline const {ty}* const {} = reinterpret_cast<const {ty}*>(::{symbol}) + {offset};",
                w.ident
            )
        }
    };
    format!(
        "// {}{}{what}, row-major.\n{declaration}",
        w.ident,
        dims.concat(),
    )
}

fn weight_array(w: &crate::lower::WeightArray, hex: bool) -> String {
    let literal = if hex {
        dialect::hex_float
    } else {
        dialect::float
    };
    let init = crate::backend::array_initializer(w, literal);
    let ty = kernels::storage().element_type(w.dtype);
    format!("inline constexpr {ty} {}{init}", w.ident)
}
