//! Rust backend: one module file, `no_std`, no `alloc`, no `unsafe`, no dependencies.
//! Code is built with `quote!` and formatted by prettyplease; the weight rows are laid out
//! by us (one row per line) in a module after it. The output is a fixed point of rustfmt
//! (editions 2021 and 2024): every item whose layout depends on the model (layer functions,
//! `predict*`, names, math, weights) is `#[rustfmt::skip]`, the rest is printed as rustfmt
//! prints it, so `cargo fmt --check` and `keras2src generate --check` agree.

mod dialect;
pub use dialect::float as float_literal;
mod kernels;

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::backend::math;
use crate::ir::{InputDtype, WeightsDtype};
use crate::lower::loops::Unroll;
use crate::lower::{Arg, Blocking, Entry, Port, Program, Stream, Tuning};
use crate::passes::Location;
use crate::ScratchPlacement;
use crate::{Error, Generated, Result, SelfTest};

/// How lowering tunes loops for rustc. The blocking, measured on MobileNetV2 (alpha 0.35,
/// 96x96), sum of per-layer best times, Zen 4 (shared, noisy: +-10%), in us as rustc -O / rustc -O -C target-cpu=native / g++ -O2
/// / g++ -O3 -march=native (before blocking: 1180 / 776 / 1930 / 1562):
///   2 x 16: 806 / 360 / - / -
///   4 x 16: 871 / 317 / 1611 / 918 (another run: 919 / 372)
///   4 x 32: 920 / 575 / 1580 / 690 (depthwise not yet blocked)
///   2 x 32: 937 / 546 / 1400 / 664
///   2 x 64: - / - / 1426 / 668;  4 x 64: - / - / 2229 / 773;  1 x 64: - / - / 1453 / 590
/// and on the 3x3 conv 13x13x16 -> 11x11x32 of B2 (rustc -O / native): before 28.5 /
/// 15.3, 2 x 16: 34 / 16.1, 4 x 16: 61-92 / 16.3 (spills the 16 SSE registers).
/// rustc keeps a block in registers while it fully unrolls it (about 64 products per
/// channel); larger blocks fall back to worse loops (depthwise 4 x 32: 3-10x slower).
/// On the large models (whole model, rustc -O -C target-cpu=native, best of 12, Zen 4,
/// 2026-12-07), ResNet50 in ms: 2 x 16 116, 4 x 16 96, 6 x 16 96, 8 x 16 120, 12 x 16
/// 110, 2 x 32 175, 4 x 32 111; with a row's remainder as one block, 6 x 16 gives ResNet50
/// 82 ms, EfficientNetB0 16.8 ms (2 x 16: 18.8), MobileNetV2 299 us (2 x 16: 356).
pub const TUNING: Tuning = Tuning {
    blocking: Blocking {
        pixels: 6,
        filters: 16,
        channels: 1,
        pool_channels: 1,
        rows: 2,
        tile: crate::lower::TILE,
        pack: false,
    },
    short_loops: Unroll::Compiler,
};

/// What the Rust module offers besides the model itself.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// The leading comment's lines.
    pub header: &'a [String],
    /// The weights go to this file (read with `include_bytes!`, relative to the module)
    /// instead of inline literals.
    pub weights_file: Option<&'a str>,
    pub scratch: ScratchPlacement,
    /// A `#[cfg(test)]` module checking this sample (`--emit-test`).
    pub self_test: Option<&'a SelfTest>,
}

/// Prints `program` as a Rust module (and its weights file). An `Err` is a bug in this
/// backend (code that does not parse), never bad user input.
pub fn emit(program: &Program, options: &Options) -> Result<Generated> {
    emit_source(program, options).map_err(Error::Internal)
}

fn emit_source(program: &Program, options: &Options) -> Result<Generated, String> {
    let (header, weights_file) = (options.header, options.weights_file);
    let api = api(program, options.scratch, weights_file.is_some())?;
    let access = kernels::Access {
        weights: &program.weights,
        in_file: weights_file.is_some(),
    };
    let stream = match &program.step {
        Some(step) => stream_api(program, step, options.scratch, weights_file.is_some()),
        None => TokenStream::new(),
    };
    let entries = std::iter::once(&program.predict).chain(program.step.iter().map(|s| &s.entry));
    let layers = entries
        .flat_map(|e| {
            let own = e.layers.iter().enumerate().filter(|(i, l)| l.kernel == *i);
            own.map(|(_, l)| kernels::layer_fn(l, access, program.out_of_line()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let helpers = view_helpers(program);
    let file: syn::File = syn::parse2(quote! { #api #stream #(#layers)* #helpers })
        .map_err(|e| format!("the Rust backend built invalid syntax: {e}"))?;
    let mut out = String::new();
    for line in header {
        out.push_str(&format!("// {line}\n").replace("// \n", "//\n"));
    }
    out.push('\n');
    // A blank line after each top-level item, which prettyplease leaves out.
    for line in prettyplease::unparse(&file).lines() {
        out.push_str(line);
        out.push('\n');
        let top_level = !line.starts_with([' ', '/', '#']);
        if top_level && (line.ends_with('}') || line.ends_with(';')) {
            out.push('\n');
        }
    }
    if !program.math.is_empty() || program.int8 {
        out.push_str(if program.math.is_empty() {
            "/// The integer arithmetic of the int8 kernels.\n"
        } else {
            "/// Math functions for `no_std`, accurate to a few ulp over the f32 range.\n"
        });
        out.push_str("#[rustfmt::skip]\nmod math {\n    #![allow(clippy::excessive_precision, clippy::approx_constant, clippy::unreadable_literal)]\n");
        let mut source = math::rust_source(&program.math);
        if program.int8 {
            source.push_str(&math::int8_rust_source());
        }
        for line in source.lines() {
            // The runtime's functions are private items; the layer functions call them
            // from the parent module.
            let line = match line.strip_prefix("fn ") {
                Some(rest) => format!("pub(super) fn {rest}"),
                None => line.to_string(),
            };
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out.push_str("}\n\n");
    }
    if let Some(test) = options.self_test {
        out.push_str(&self_test_module(program, test, options.scratch));
    }
    let weights_file = match weights_file {
        Some(file) => {
            out.push_str(&weights_accessors(program, file));
            Some((
                file.to_string(),
                crate::backend::weights_file_bytes(program),
            ))
        }
        None => {
            out.push_str(&weights_module(program));
            None
        }
    };
    // One newline at the end, as rustfmt leaves it.
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(Generated {
        source: out,
        weights_file,
        notes: Vec::new(),
    })
}

/// The weights module for weights in a file: the bytes, whose length the compiler checks
/// against the type, and one accessor per array. The bytes are a `static`, not a `const`:
/// an rlib's metadata carries a `const`'s value into every inlinable function that reads
/// it, so VGG16's 134.6 MB of weights made a 782 MB rlib and took `rustc -C opt-level=3`
/// 29.9 s (a `static`: 404 MB, 18.4 s; issue 19). The loads fold the same: the static is
/// immutable.
///
/// Above [`crate::backend::INLINE_LAYERS_MAX`] layers the calls pass each array's bytes
/// (`array`, a fixed-length reference into the bytes: the offset is a constant, so the
/// range check folds) and the layer functions read them with `at`.
fn weights_accessors(p: &Program, file: &str) -> String {
    let total = crate::backend::weights_file_len(p);
    let (f16, i8) = (
        crate::backend::stores(p, WeightsDtype::F16),
        crate::backend::stores(p, WeightsDtype::Int8),
    );
    let (q8, i32s) = (
        crate::backend::stores(p, WeightsDtype::Q8),
        crate::backend::stores(p, WeightsDtype::I32),
    );
    let what = if q8 || i32s {
        "little-endian f32 (a quantized model's: int8 kernels, int32 biases and multipliers)"
    } else if f16 || i8 {
        "little-endian f32 (compressed kernels: f16 bits, int8)"
    } else {
        "little-endian f32"
    };
    let mut head = format!(
        "/// Model weights, {what} in `{file}` beside this file.\n#[rustfmt::skip]\nmod weights {{\n    \
         static BYTES: &[u8; {total}] = include_bytes!({file:?});\n"
    );
    if f16 {
        head.push_str(&indent(&half_fn()));
    }
    if p.out_of_line() {
        if f16 {
            head.push_str(
                "\n    /// Value `i` of an f16 array's bytes.\n    \
                 #[inline(always)]\n    pub(super) fn at_f16<const N: usize>(bytes: &[u8; N], i: usize) -> f32 {\n        \
                 match bytes.get(2 * i..2 * i + 2) {\n            \
                 Some(&[a, b]) => half(u16::from_le_bytes([a, b])),\n            \
                 _ => unreachable!(),\n        }\n    }\n",
            );
        }
        if q8 {
            head.push_str(
                "\n    /// Value `i` of a quantized model's int8 array's bytes.\n    \
                 #[inline(always)]\n    pub(super) fn at_q8<const N: usize>(bytes: &[u8; N], i: usize) -> i8 {\n        \
                 match bytes.get(i) {\n            \
                 Some(&a) => i8::from_le_bytes([a]),\n            \
                 None => unreachable!(),\n        }\n    }\n",
            );
        }
        if i32s {
            head.push_str(
                "\n    /// Value `i` of an int32 array's bytes.\n    \
                 #[inline(always)]\n    pub(super) fn at_i32<const N: usize>(bytes: &[u8; N], i: usize) -> i32 {\n        \
                 match bytes.get(4 * i..4 * i + 4) {\n            \
                 Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),\n            \
                 _ => unreachable!(),\n        }\n    }\n",
            );
        }
        if i8 {
            head.push_str(
                "\n    /// Value `i` of an int8 array's bytes.\n    \
                 #[inline(always)]\n    pub(super) fn at_i8<const N: usize>(bytes: &[u8; N], i: usize) -> f32 {\n        \
                 match bytes.get(i) {\n            \
                 Some(&a) => f32::from(i8::from_le_bytes([a])),\n            \
                 None => unreachable!(),\n        }\n    }\n",
            );
        }
        return head
            + "\n    /// The `N` bytes from `at`.\n    \
               #[inline(always)]\n    pub(super) fn array<const N: usize>(at: usize) -> &'static [u8; N] {\n        \
               match BYTES.get(at..at + N) {\n            \
               Some(bytes) => match bytes.try_into() {\n                \
               Ok(array) => array,\n                \
               Err(_) => unreachable!(),\n            },\n            \
               None => unreachable!(),\n        }\n    }\n\n    \
               /// Value `i` of an array's bytes.\n    \
               #[inline(always)]\n    pub(super) fn at<const N: usize>(bytes: &[u8; N], i: usize) -> f32 {\n        \
               match bytes.get(4 * i..4 * i + 4) {\n            \
               Some(&[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),\n            \
               _ => unreachable!(),\n        }\n    }\n}\n";
    }
    let mut out = head;
    if crate::backend::stores(p, WeightsDtype::F32) {
        out.push_str(
            "\n    #[inline(always)]\n    fn read(at: usize) -> f32 {\n        \
             match BYTES.get(at..at + 4) {\n            \
             Some(&[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),\n            \
             _ => unreachable!(),\n        }\n    }\n",
        );
    }
    if f16 {
        out.push_str(
            "\n    #[inline(always)]\n    fn read_f16(at: usize) -> f32 {\n        \
             match BYTES.get(at..at + 2) {\n            \
             Some(&[a, b]) => half(u16::from_le_bytes([a, b])),\n            \
             _ => unreachable!(),\n        }\n    }\n",
        );
    }
    if i8 {
        out.push_str(
            "\n    #[inline(always)]\n    fn read_i8(at: usize) -> f32 {\n        \
             match BYTES.get(at) {\n            \
             Some(&a) => f32::from(i8::from_le_bytes([a])),\n            \
             None => unreachable!(),\n        }\n    }\n",
        );
    }
    if q8 {
        out.push_str(
            "\n    #[inline(always)]\n    fn read_q8(at: usize) -> i8 {\n        \
             match BYTES.get(at) {\n            \
             Some(&a) => i8::from_le_bytes([a]),\n            \
             None => unreachable!(),\n        }\n    }\n",
        );
    }
    if i32s {
        out.push_str(
            "\n    #[inline(always)]\n    fn read_i32(at: usize) -> i32 {\n        \
             match BYTES.get(at..at + 4) {\n            \
             Some(&[a, b, c, d]) => i32::from_le_bytes([a, b, c, d]),\n            \
             _ => unreachable!(),\n        }\n    }\n",
        );
    }
    for (w, offset) in p
        .weights
        .iter()
        .zip(crate::backend::weights_file_offsets(p))
    {
        let (read, size, ty) = match w.dtype {
            WeightsDtype::F32 => ("read", "4 * i", "f32"),
            WeightsDtype::F16 => ("read_f16", "2 * i", "f32"),
            WeightsDtype::Int8 => ("read_i8", "i", "f32"),
            WeightsDtype::Q8 => ("read_q8", "i", "i8"),
            WeightsDtype::I32 => ("read_i32", "4 * i", "i32"),
        };
        let at = if offset == 0 {
            size.to_string()
        } else {
            format!("{offset} + {size}")
        };
        out.push_str(&format!(
            "\n    #[inline(always)]\n    pub(super) fn {}(i: usize) -> {ty} {{\n        {read}({at})\n    }}\n",
            w.ident
        ));
    }
    out.push_str("}\n");
    out
}

/// `half`: f16 bits to f32, exact (see [`crate::ir::quant::f16_to_f32`]), for a module.
fn half_fn() -> String {
    "\n/// The f32 value of f16 bits (exact; the kernels hold no infinity or NaN).\n\
     #[inline(always)]\n\
     pub(super) fn half(bits: u16) -> f32 {\n    \
     let rest = u32::from(bits & 0x7fff);\n    \
     // Both forms computed, one selected by a mask: no branch in the loops over weights.\n    \
     let subnormal = (rest as f32 * (1.0 / 16_777_216.0)).to_bits();\n    \
     let is_subnormal = 0u32.wrapping_sub(u32::from(rest < 0x0400));\n    \
     let magnitude = (subnormal & is_subnormal) | (((rest << 13) + 0x3800_0000) & !is_subnormal);\n    \
     f32::from_bits(magnitude | (u32::from(bits & 0x8000) << 16))\n}\n"
        .to_string()
}

/// `text` indented one level (blank lines stay empty).
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}

pub(crate) fn lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

fn float_ty(dtype: InputDtype) -> TokenStream {
    match dtype {
        InputDtype::F32 => quote!(f32),
        InputDtype::I32 => quote!(i32),
        InputDtype::I8 => quote!(i8),
    }
}

/// Constants, `predict` (unless the caller places the scratch) and `predict_with_scratch`.
fn api(p: &Program, scratch: ScratchPlacement, in_file: bool) -> Result<TokenStream, String> {
    let e = &p.predict;
    let single_in = e.inputs.len() == 1;
    let single_out = e.outputs.len() == 1;
    let in_const = |k: usize, what: &str| format_ident!("{}_{what}", upper(&e.inputs[k]));
    let out_const = |k: usize, what: &str| format_ident!("{}_{what}", upper(&e.outputs[k]));
    let mut consts = TokenStream::new();
    for (ports, label) in [(&e.inputs, "input"), (&e.outputs, "output")] {
        for port in ports.iter() {
            let what = format!("{label} `{}`", crate::naming::comment(&port.name));
            let shape_of = format!("{what} (batch dimension excluded)");
            consts.extend(shape_consts(&upper(port), port, &shape_of, &what));
            if let Some(q) = port.quant {
                let (scale_c, zero_c) = (
                    format_ident!("{}_SCALE", upper(port)),
                    format_ident!("{}_ZERO_POINT", upper(port)),
                );
                let doc = format!(
                    " The quantization of {what} (`--int8-io`): `real = (q - {}_ZERO_POINT) * \
                     {}_SCALE`.",
                    upper(port),
                    upper(port)
                );
                let scale: TokenStream = dialect::float(q.scale)
                    .parse()
                    .map_err(|e| format!("a scale is not a literal: {e}"))?;
                let zero = q.zero_point;
                consts.extend(quote! {
                    #[doc = #doc]
                    #[allow(dead_code, clippy::excessive_precision)]
                    pub const #scale_c: f32 = #scale;
                    #[allow(dead_code)]
                    pub const #zero_c: i32 = #zero;
                });
            }
        }
    }
    if !single_in || !single_out {
        let literal = |name: &str| -> Result<TokenStream, String> {
            crate::naming::rust_string(name)
                .parse()
                .map_err(|e| format!("an escaped name is not a literal: {e}"))
        };
        let in_names = e
            .inputs
            .iter()
            .map(|i| literal(&i.name))
            .collect::<Result<Vec<_>, _>>()?;
        let out_names = e
            .outputs
            .iter()
            .map(|o| literal(&o.name))
            .collect::<Result<Vec<_>, _>>()?;
        let (ni, no) = (lit(e.inputs.len()), lit(e.outputs.len()));
        consts.extend(quote! {
            /// The Keras names of the inputs, in argument order.
            #[rustfmt::skip]
            #[allow(dead_code)]
            pub const INPUT_NAMES: [&str; #ni] = [#(#in_names),*];
            /// The Keras names of the outputs, in result order.
            #[rustfmt::skip]
            #[allow(dead_code)]
            pub const OUTPUT_NAMES: [&str; #no] = [#(#out_names),*];
        });
    }
    let scratch_len = lit(e.scratch_len);
    consts.extend(quote! {
        /// Working memory `predict_with_scratch` needs, in f32s.
        #[allow(dead_code)]
        pub const SCRATCH_LEN: usize = #scratch_len;
    });
    // A quantized model's int8 tensors live in an arena of their own.
    let bytes = e.scratch_i8_len > 0;
    if bytes {
        let len = lit(e.scratch_i8_len);
        consts.extend(quote! {
            /// Working memory `predict_with_scratch` needs for int8 values, in bytes.
            #[allow(dead_code)]
            pub const SCRATCH_I8_LEN: usize = #len;
        });
    }

    let in_args: Vec<_> = (0..e.inputs.len()).map(|k| input_ident(e, k)).collect();
    let out_args: Vec<_> = (0..e.outputs.len()).map(|k| output_ident(e, k)).collect();
    let in_params = e.inputs.iter().enumerate().map(|(k, port)| {
        let (id, len, ty) = (&in_args[k], in_const(k, "LEN"), float_ty(port.dtype));
        quote!(#id: &[#ty; #len])
    });
    let in_params: Vec<_> = in_params.collect();
    let out_params = (0..e.outputs.len()).map(|k| {
        let (id, len) = (&out_args[k], out_const(k, "LEN"));
        let ty = float_ty(e.outputs[k].dtype);
        quote!(#id: &mut [#ty; #len])
    });
    let out_types: Vec<_> = (0..e.outputs.len())
        .map(|k| {
            let (len, ty) = (out_const(k, "LEN"), float_ty(e.outputs[k].dtype));
            quote!([#ty; #len])
        })
        .collect();
    let ret = if single_out {
        quote!(#(#out_types)*)
    } else {
        quote!((#(#out_types),*))
    };
    let ret_val = if single_out {
        quote!(#(#out_args)*)
    } else {
        quote!((#(#out_args),*))
    };
    let out_decls = (0..e.outputs.len()).map(|k| {
        let (id, len) = (&out_args[k], out_const(k, "LEN"));
        let zero = zero(e.outputs[k].dtype);
        quote!(let mut #id = [#zero; #len];)
    });
    let out_refs = out_args.iter().map(|id| quote!(&mut #id));
    let calls = e.layers.iter().map(|layer| call(p, e, layer, in_file));
    let uses_scratch = e.scratch_len > 0;
    let silence = (!uses_scratch).then(|| quote!(let _ = scratch;));
    // Lints the contractual signatures trip only for models with many inputs and outputs.
    let many_args = e.inputs.len() + e.outputs.len() + 1 > 7;
    let predict_allow = match (many_args, e.outputs.len() > 3) {
        (false, false) => quote!(#[allow(dead_code)]),
        (true, false) => quote!(#[allow(dead_code, clippy::too_many_arguments)]),
        (false, true) => quote!(#[allow(dead_code, clippy::type_complexity)]),
        (true, true) => {
            quote!(#[allow(dead_code, clippy::too_many_arguments, clippy::type_complexity)])
        }
    };
    let scratch_allow = if many_args {
        quote!(#[allow(dead_code, clippy::too_many_arguments)])
    } else {
        quote!(#[allow(dead_code)])
    };
    let predict_body = |scratch_expr: TokenStream| {
        let bytes_arg = bytes.then(|| quote!(, scratch_i8));
        quote! {
            #(#out_decls)*
            predict_with_scratch(#(#in_args,)* #(#out_refs,)* #scratch_expr #bytes_arg);
            #ret_val
        }
    };
    let predict = match scratch {
        ScratchPlacement::Stack => {
            let body = predict_body(quote!(&mut scratch));
            let bytes_decl = bytes.then(|| {
                quote! {
                    let mut scratch_i8 = [0i8; SCRATCH_I8_LEN];
                    let scratch_i8 = &mut scratch_i8;
                }
            });
            quote! {
                /// Runs the model on one sample, with its working memory on the stack.
                #[rustfmt::skip]
                #predict_allow
                pub fn predict(#(#in_params),*) -> #ret {
                    let mut scratch = [0.0f32; SCRATCH_LEN];
                    #bytes_decl
                    #body
                }
            }
        }
        ScratchPlacement::Caller => quote!(),
        ScratchPlacement::Static => {
            let body = predict_body(quote!(scratch));
            let bytes_field =
                bytes.then(|| quote!(bytes: core::cell::UnsafeCell<[i8; SCRATCH_I8_LEN]>,));
            let bytes_init =
                bytes.then(|| quote!(bytes: core::cell::UnsafeCell::new([0; SCRATCH_I8_LEN]),));
            let bytes_get =
                bytes.then(|| quote!(let scratch_i8 = unsafe { &mut *SCRATCH.bytes.get() };));
            quote! {
                /// The working memory of `predict` (`--scratch static`): one buffer for
                /// every call. `busy` makes a second call while one runs (from an interrupt
                /// or another thread) panic instead of sharing the buffer, so `floats` is
                /// only ever reached by the one call that set `busy`.
                #[allow(dead_code)]
                struct StaticScratch {
                    busy: core::sync::atomic::AtomicBool,
                    floats: core::cell::UnsafeCell<[f32; SCRATCH_LEN]>,
                    #bytes_field
                }
                // Sound: `floats` is reached only by the one `predict` call that set `busy`.
                unsafe impl Sync for StaticScratch {}
                #[allow(dead_code)]
                static SCRATCH: StaticScratch = StaticScratch {
                    busy: core::sync::atomic::AtomicBool::new(false),
                    floats: core::cell::UnsafeCell::new([0.0; SCRATCH_LEN]),
                    #bytes_init
                };
                /// Runs the model on one sample, with its working memory in a `static`:
                /// not reentrant (a call while another runs panics).
                #[rustfmt::skip]
                #predict_allow
                pub fn predict(#(#in_params),*) -> #ret {
                    use core::sync::atomic::Ordering;
                    if SCRATCH.busy.swap(true, Ordering::Acquire) {
                        panic!("predict is not reentrant (generated with --scratch static)");
                    }
                    let result = {
                        // Sound: `busy` was clear and is now set by this call alone.
                        let scratch = unsafe { &mut *SCRATCH.floats.get() };
                        #bytes_get
                        #body
                    };
                    SCRATCH.busy.store(false, Ordering::Release);
                    result
                }
            }
        }
    };
    let scratch_doc = " Runs the model with caller-provided working memory; no large stack arrays.";
    let bytes_param = bytes.then(|| quote!(scratch_i8: &mut [i8; SCRATCH_I8_LEN],));
    Ok(quote! {
        #consts
        #predict
        #[doc = #scratch_doc]
        #[rustfmt::skip]
        #scratch_allow
        pub fn predict_with_scratch(
            #(#in_params,)*
            #(#out_params,)*
            scratch: &mut [f32; SCRATCH_LEN],
            #bytes_param
        ) {
            #silence
            #(#calls)*
        }
    })
}

/// The zero of an element type, as an array initialiser.
fn zero(dtype: InputDtype) -> TokenStream {
    match dtype {
        InputDtype::F32 => quote!(0.0f32),
        InputDtype::I32 => quote!(0i32),
        InputDtype::I8 => quote!(0i8),
    }
}

/// A streaming model's `State`, `step` (unless the caller places the scratch) and
/// `step_with_scratch`, and the private function that runs the step's layers.
fn stream_api(p: &Program, s: &Stream, scratch: ScratchPlacement, in_file: bool) -> TokenStream {
    let e = &s.entry;
    // The public names follow predict's: `input`, `output0`, ...
    let step_const = |port: &Port, what: &str| format_ident!("STEP_{}_{what}", upper(port));
    let ins: Vec<_> = p
        .predict
        .inputs
        .iter()
        .map(|port| format_ident!("{}", port.ident))
        .collect();
    let outs: Vec<_> = p
        .predict
        .outputs
        .iter()
        .map(|port| format_ident!("{}", port.ident))
        .collect();
    let mut consts = TokenStream::new();
    for (label, public, ports) in [
        ("input", &p.predict.inputs, s.inputs()),
        ("output", &p.predict.outputs, s.outputs()),
    ] {
        for (name, port) in public.iter().zip(ports) {
            let what = format!(
                "one time step of {label} `{}`",
                crate::naming::comment(&port.name)
            );
            consts.extend(shape_consts(
                &format!("STEP_{}", upper(name)),
                port,
                &what,
                &what,
            ));
        }
    }
    let (state_len, scratch_len) = (lit(s.state_len()), lit(e.scratch_len));
    let slots: Vec<String> = s
        .slots
        .iter()
        .map(|slot| format!(" {};", slot.describe()))
        .collect();
    let in_params: Vec<_> = p
        .predict
        .inputs
        .iter()
        .zip(&ins)
        .map(|(port, id)| {
            let (len, ty) = (step_const(port, "LEN"), float_ty(port.dtype));
            quote!(#id: &[#ty; #len])
        })
        .collect();
    let out_lens: Vec<_> = p
        .predict
        .outputs
        .iter()
        .map(|port| step_const(port, "LEN"))
        .collect();
    let out_params = outs
        .iter()
        .zip(&out_lens)
        .map(|(id, len)| quote!(#id: &mut [f32; #len]));
    let out_params: Vec<_> = out_params.collect();
    let single_out = outs.len() == 1;
    let ret = if single_out {
        quote!(#([f32; #out_lens])*)
    } else {
        quote!((#([f32; #out_lens]),*))
    };
    let ret_val = if single_out {
        quote!(#(#outs)*)
    } else {
        quote!((#(#outs),*))
    };
    let step = (scratch != ScratchPlacement::Caller).then(|| {
        let doc = " Runs one time step, with its working memory on the stack (one step's: \
                   `STEP_SCRATCH_LEN` floats), and updates the state.";
        quote! {
            #[doc = #doc]
            #[rustfmt::skip]
            #[allow(dead_code, clippy::too_many_arguments, clippy::type_complexity)]
            pub fn step(state: &mut State, #(#in_params),*) -> #ret {
                #(let mut #outs = [0.0f32; #out_lens];)*
                let mut scratch = [0.0f32; STEP_SCRATCH_LEN];
                step_with_scratch(state, #(#ins,)* #(&mut #outs,)* &mut scratch);
                #ret_val
            }
        }
    });
    // The layers read the state before the step and write the state after it.
    let (e_ins, e_outs): (Vec<_>, Vec<_>) = (
        (0..e.inputs.len()).map(|k| input_ident(e, k)).collect(),
        (0..e.outputs.len()).map(|k| output_ident(e, k)).collect(),
    );
    let e_in_params = e.inputs.iter().zip(&e_ins).map(|(port, id)| {
        let (len, ty) = (lit(port.len), float_ty(port.dtype));
        quote!(#id: &[#ty; #len])
    });
    let e_out_params = e.outputs.iter().zip(&e_outs).map(|(port, id)| {
        let len = lit(port.len);
        quote!(#id: &mut [f32; #len])
    });
    let calls = e.layers.iter().map(|layer| call(p, e, layer, in_file));
    let silence = (e.scratch_len == 0).then(|| quote!(let _ = scratch;));
    let state_doc = format!(
        " The recurrent state a stream carries from one `step` to the next (no globals: each \
         stream has its own):{}",
        slots.concat()
    );
    quote! {
        /// Floats in a stream's `State`.
        #[allow(dead_code)]
        pub const STATE_LEN: usize = #state_len;
        #consts
        /// Working memory `step_with_scratch` needs, in f32s.
        #[allow(dead_code)]
        pub const STEP_SCRATCH_LEN: usize = #scratch_len;
        #[doc = #state_doc]
        #[derive(Clone, Debug, PartialEq)]
        #[allow(dead_code)]
        pub struct State {
            pub values: [f32; STATE_LEN],
        }
        #[rustfmt::skip]
        #[allow(dead_code)]
        impl State {
            /// A stream at its start: every state zero, as after Keras's `reset_states()`.
            pub const fn new() -> State {
                State { values: [0.0; STATE_LEN] }
            }
            /// Starts the stream again.
            pub fn reset(&mut self) {
                self.values = [0.0; STATE_LEN];
            }
        }
        impl Default for State {
            fn default() -> State {
                State::new()
            }
        }
        #step
        /// Runs one time step with caller-provided working memory, and updates the state.
        #[rustfmt::skip]
        #[allow(dead_code, clippy::too_many_arguments)]
        pub fn step_with_scratch(
            state: &mut State,
            #(#in_params,)*
            #(#out_params,)*
            scratch: &mut [f32; STEP_SCRATCH_LEN],
        ) {
            let before = state.values;
            step_layers(#(#ins,)* &before, #(#outs,)* &mut state.values, scratch);
        }
        /// The step's layers: the model's inputs and the state before, to its outputs and
        /// the state after.
        #[rustfmt::skip]
        #[allow(clippy::too_many_arguments)]
        fn step_layers(
            #(#e_in_params,)*
            #(#e_out_params,)*
            scratch: &mut [f32; STEP_SCRATCH_LEN],
        ) {
            #silence
            #(#calls)*
        }
    }
}

/// `#[cfg(test)] mod selftest`: runs the model on the `--emit-test` sample and compares
/// with Keras's outputs within the DESIGN bound. Printed by us, one port per line.
fn self_test_module(p: &Program, test: &SelfTest, scratch: ScratchPlacement) -> String {
    let floats = |values: &[f32]| {
        values
            .iter()
            .map(|&v| dialect::float(v))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (abs, rel) = (test.abs(), SelfTest::REL);
    let mut out = format!(
        "/// A self-test on the sample given to `--emit-test`: outputs within\n\
         /// `|got - keras| <= {abs} + {rel} * |keras|` of Keras's.\n\
         #[cfg(test)]\n#[rustfmt::skip]\nmod selftest {{\n    \
         #![allow(clippy::excessive_precision, clippy::approx_constant, clippy::unreadable_literal)]\n    \
         extern crate std;\n\n",
    );
    for (port, values) in p.predict.inputs.iter().zip(&test.inputs) {
        let name = upper(port);
        let ty = crate::backend::rust_type(port.dtype);
        let text = match port.dtype {
            InputDtype::F32 => floats(values),
            InputDtype::I32 | InputDtype::I8 => crate::backend::integers(values),
        };
        out.push_str(&format!(
            "    const {name}: [{ty}; super::{name}_LEN] = [{text}];\n"
        ));
    }
    let single_out = p.predict.outputs.len() == 1;
    for (port, values) in p.predict.outputs.iter().zip(&test.outputs) {
        let name = upper(port);
        out.push_str(&format!(
            "    const KERAS_{name}: [f32; super::{name}_LEN] = [{}];\n",
            floats(values)
        ));
    }
    let ins: Vec<String> = p
        .predict
        .inputs
        .iter()
        .map(|i| format!("&{}", upper(i)))
        .collect();
    let outs: Vec<String> = p.predict.outputs.iter().map(|o| o.ident.clone()).collect();
    out.push_str("\n    #[test]\n    fn matches_keras() {\n");
    if scratch == ScratchPlacement::Caller {
        for (k, o) in outs.iter().enumerate() {
            out.push_str(&format!(
                "        let mut {o} = [0.0f32; super::{}_LEN];\n",
                upper(&p.predict.outputs[k])
            ));
        }
        out.push_str(
            "        // On the heap: a large model's scratch would overflow a test thread's stack.\n        \
             let mut scratch = std::vec![0.0f32; super::SCRATCH_LEN];\n        \
             let scratch: &mut [f32; super::SCRATCH_LEN] = scratch.as_mut_slice().try_into().expect(\"SCRATCH_LEN floats\");\n",
        );
        let args: Vec<String> = ins
            .iter()
            .cloned()
            .chain(outs.iter().map(|o| format!("&mut {o}")))
            .chain(["scratch".to_string()])
            .collect();
        out.push_str(&format!(
            "        super::predict_with_scratch({});\n",
            args.join(", ")
        ));
    } else {
        let bound = if single_out {
            outs.join("")
        } else {
            format!("({})", outs.join(", "))
        };
        out.push_str(&format!(
            "        let {bound} = super::predict({});\n",
            ins.join(", ")
        ));
    }
    for (k, o) in outs.iter().enumerate() {
        out.push_str(&format!(
            "        check({k}, &{o}, &KERAS_{});\n",
            upper(&p.predict.outputs[k])
        ));
    }
    out.push_str(&format!(
        "    }}\n\n    \
         fn check(port: usize, got: &[f32], keras: &[f32]) {{\n        \
         for (i, (&g, &k)) in got.iter().zip(keras).enumerate() {{\n            \
         let close = if k.is_nan() {{ g.is_nan() }} else {{ g == k || (g - k).abs() <= {abs} + {rel} * k.abs() }};\n            \
         assert!(close, \"output {{port}}, value {{i}}: got {{g}}, Keras {{k}}\");\n        \
         }}\n    }}\n}}\n\n",
    ));
    out
}

/// `PREFIX_SHAPE` and `PREFIX_LEN` of `port`, their docs naming it as `shape_of` and
/// `values_in`.
fn shape_consts(prefix: &str, port: &Port, shape_of: &str, values_in: &str) -> TokenStream {
    let (shape_c, len_c) = (
        format_ident!("{prefix}_SHAPE"),
        format_ident!("{prefix}_LEN"),
    );
    let rank = lit(port.shape.len());
    let dims = port.shape.iter().map(|&d| lit(d));
    let len = lit(port.len);
    let doc_shape = format!(" Shape of {shape_of}.");
    let doc_len = format!(" Number of values in {values_in}.");
    quote! {
        #[doc = #doc_shape]
        #[allow(dead_code)]
        pub const #shape_c: [usize; #rank] = [#(#dims),*];
        #[doc = #doc_len]
        #[allow(dead_code)]
        pub const #len_c: usize = #len;
    }
}

/// A port's constants' prefix: `INPUT`, `OUTPUT1`.
fn upper(port: &Port) -> String {
    port.ident.to_ascii_uppercase()
}

fn input_ident(e: &Entry, k: usize) -> proc_macro2::Ident {
    format_ident!("{}", e.inputs[k].ident)
}

fn output_ident(e: &Entry, k: usize) -> proc_macro2::Ident {
    format_ident!("{}", e.outputs[k].ident)
}

/// One layer call inside `predict_with_scratch`, splitting the arena so that the output
/// borrow is disjoint from the input borrows.
fn call(p: &Program, e: &Entry, layer: &crate::lower::Layer, in_file: bool) -> TokenStream {
    let f = format_ident!("{}", e.layers[layer.kernel].ident);
    let weights = weight_args(p, layer, in_file);
    if let Some(work) = layer.workspace {
        return call_with_work(e, layer, work, weights);
    }
    match layer.output.loc {
        Location::Scratch(off) | Location::ScratchI8(off) => {
            let arena = arena(layer.output.loc);
            let end = off + layer.output.len;
            let (off_l, end_l, len_l) = (lit(off), lit(end), lit(layer.output.len));
            let in_arena = |a: &Arg| in_arena(a.loc, layer.output.loc);
            if !layer.inputs.iter().any(in_arena) {
                let args = layer.inputs.iter().map(|a| read_arg(e, a, None));
                return quote!(#f(#(#args,)* view_mut(&mut #arena[#off_l..#end_l]) #(, #weights)*););
            }
            let offset = |a: &Arg| match a.loc {
                Location::Scratch(o) | Location::ScratchI8(o) if in_arena(a) => Some(o),
                _ => None,
            };
            let below = |a: &Arg| offset(a).is_some_and(|o| o < off);
            let above = |a: &Arg| offset(a).is_some_and(|o| o >= end);
            let lo = if layer.inputs.iter().any(below) {
                quote!(lo)
            } else {
                quote!(_)
            };
            let hi = if layer.inputs.iter().any(above) {
                quote!(hi)
            } else {
                quote!(_)
            };
            let args = layer.inputs.iter().map(|a| {
                let split = in_arena(a).then_some((off, end));
                read_arg(e, a, split)
            });
            quote! {
                {
                    let (#lo, rest) = #arena.split_at_mut(#off_l);
                    let (out, #hi) = rest.split_at_mut(#len_l);
                    #f(#(#args,)* view_mut(out) #(, #weights)*);
                }
            }
        }
        Location::Output(k) => {
            let args = layer.inputs.iter().map(|a| read_arg(e, a, None));
            let out = output_ident(e, k);
            quote!(#f(#(#args,)* #out #(, #weights)*);)
        }
        Location::Input(_) => quote!(),
    }
}

/// The arena a scratch location is in: `scratch` or `scratch_i8`.
fn arena(loc: Location) -> TokenStream {
    match loc {
        Location::ScratchI8(_) => quote!(scratch_i8),
        _ => quote!(scratch),
    }
}

/// Whether `loc` is in the same arena as `other` (a scratch location).
fn in_arena(loc: Location, other: Location) -> bool {
    matches!(
        (loc, other),
        (Location::Scratch(_), Location::Scratch(_))
            | (Location::ScratchI8(_), Location::ScratchI8(_))
    )
}

/// A call of a layer that also takes working memory from the arena: the arena is split
/// into the mutable regions (output if in scratch, workspace) and the gaps between them,
/// from which the inputs are read.
fn call_with_work(
    e: &Entry,
    layer: &crate::lower::Layer,
    work: Arg,
    weights: Vec<TokenStream>,
) -> TokenStream {
    let f = format_ident!("{}", e.layers[layer.kernel].ident);
    let region = |a: &Arg| match a.loc {
        Location::Scratch(off) => Some((off, a.len)),
        _ => None,
    };
    // (offset, len, is_output), by offset.
    let mut regions: Vec<(usize, usize, bool)> = Vec::new();
    if let Some((off, len)) = region(&layer.output) {
        regions.push((off, len, true));
    }
    if let Some((off, len)) = region(&work) {
        regions.push((off, len, false));
    }
    regions.sort();
    // The arena ranges before, between and after the regions.
    let mut gaps: Vec<(usize, usize)> = Vec::new();
    let mut at = 0usize;
    for &(off, len, _) in &regions {
        gaps.push((at, off));
        at = off + len;
    }
    gaps.push((at, usize::MAX));
    let gap_of = |off: usize| {
        gaps.iter()
            .position(|&(lo, hi)| lo <= off && off < hi)
            .unwrap_or(0)
    };
    let used: Vec<bool> = (0..gaps.len())
        .map(|k| {
            layer
                .inputs
                .iter()
                .any(|a| matches!(a.loc, Location::Scratch(off) if gap_of(off) == k))
        })
        .collect();
    let gap_name = |k: usize| {
        if used[k] {
            let id = format_ident!("gap{}", k);
            quote!(#id)
        } else {
            quote!(_)
        }
    };
    let mut stmts = Vec::new();
    for (k, &(off, len, is_output)) in regions.iter().enumerate() {
        let gap = gap_name(k);
        let name = if is_output {
            format_ident!("out")
        } else {
            format_ident!("work")
        };
        let (skip, len_l) = (lit(off - gaps[k].0), lit(len));
        let rest = if k + 1 == regions.len() && !used[k + 1] {
            quote!(_)
        } else {
            quote!(rest)
        };
        if off > gaps[k].0 || used[k] {
            stmts.push(quote!(let (#gap, rest) = rest.split_at_mut(#skip);));
        }
        stmts.push(quote!(let (#name, #rest) = rest.split_at_mut(#len_l);));
    }
    if used[gaps.len() - 1] {
        let last = format_ident!("gap{}", gaps.len() - 1);
        stmts.push(quote!(let #last = rest;));
    }
    let args = layer.inputs.iter().map(|a| match a.loc {
        Location::Scratch(off) => {
            let k = gap_of(off);
            let gap = format_ident!("gap{}", k);
            let (a0, a1) = (lit(off - gaps[k].0), lit(off - gaps[k].0 + a.len));
            quote!(view(&#gap[#a0..#a1]))
        }
        _ => read_arg(e, a, None),
    });
    let out = match layer.output.loc {
        Location::Output(k) => {
            let id = output_ident(e, k);
            quote!(#id)
        }
        _ => quote!(view_mut(out)),
    };
    quote! {
        {
            let rest = &mut scratch[..];
            #(#stmts)*
            #f(#(#args,)* #out, view_mut(work) #(, #weights)*);
        }
    }
}

/// The weight arrays a call passes (see [`crate::lower::Layer::weights`]): a reference to
/// the static, or the array's bytes in the weights file.
fn weight_args(p: &Program, layer: &crate::lower::Layer, in_file: bool) -> Vec<TokenStream> {
    let offsets = in_file.then(|| crate::backend::weights_file_offsets(p));
    layer
        .weights
        .iter()
        .map(|&id| match &offsets {
            Some(offsets) => {
                let at = lit(offsets[id]);
                quote!(weights::array(#at))
            }
            None => {
                let name = format_ident!("{}", p.weights[id].ident.to_ascii_uppercase());
                quote!(&weights::#name)
            }
        })
        .collect()
}

/// An expression for a read-only input argument; `split` is the output's scratch range
/// when the arena has been split around it.
fn read_arg(e: &Entry, arg: &Arg, split: Option<(usize, usize)>) -> TokenStream {
    match (arg.loc, split) {
        (Location::Input(k), _) => {
            let id = input_ident(e, k);
            quote!(#id)
        }
        (Location::Output(k), _) => {
            let id = output_ident(e, k);
            quote!(&*#id)
        }
        (Location::Scratch(off) | Location::ScratchI8(off), None) => {
            let (a, b) = (lit(off), lit(off + arg.len));
            let arena = arena(arg.loc);
            quote!(view(&#arena[#a..#b]))
        }
        (Location::Scratch(off) | Location::ScratchI8(off), Some((start, end))) => {
            if off < start {
                let (a, b) = (lit(off), lit(off + arg.len));
                quote!(view(&lo[#a..#b]))
            } else {
                let (a, b) = (lit(off - end), lit(off - end + arg.len));
                quote!(view(&hi[#a..#b]))
            }
        }
    }
}

/// `view` / `view_mut`, each only if a call uses it (an unused one would be a warning).
fn view_helpers(p: &Program) -> TokenStream {
    let in_scratch = |a: &Arg| matches!(a.loc, Location::Scratch(_) | Location::ScratchI8(_));
    let layers = || {
        p.predict
            .layers
            .iter()
            .chain(p.step.iter().flat_map(|s| &s.entry.layers))
    };
    let reads = layers().any(|l| l.inputs.iter().any(in_scratch));
    let writes = layers().any(|l| in_scratch(&l.output) || l.workspace.is_some());
    // A quantized model's arenas hold f32 and i8.
    if p.predict.scratch_i8_len > 0 {
        let view = reads.then(|| {
            quote! {
                /// A fixed-size view of an arena slice (lengths are constants: the check folds away).
                #[inline(always)]
                fn view<T, const N: usize>(s: &[T]) -> &[T; N] {
                    match s.try_into() {
                        Ok(a) => a,
                        Err(_) => unreachable!(),
                    }
                }
            }
        });
        let view_mut = writes.then(|| {
            quote! {
                /// A fixed-size mutable view of an arena slice.
                #[inline(always)]
                fn view_mut<T, const N: usize>(s: &mut [T]) -> &mut [T; N] {
                    match s.try_into() {
                        Ok(a) => a,
                        Err(_) => unreachable!(),
                    }
                }
            }
        });
        return quote!(#view #view_mut);
    }
    let view = reads.then(|| {
        quote! {
            /// A fixed-size view of an arena slice (lengths are constants: the check folds away).
            #[inline(always)]
            fn view<const N: usize>(s: &[f32]) -> &[f32; N] {
                match s.try_into() {
                    Ok(a) => a,
                    Err(_) => unreachable!(),
                }
            }
        }
    });
    let view_mut = writes.then(|| {
        quote! {
            /// A fixed-size mutable view of an arena slice.
            #[inline(always)]
            fn view_mut<const N: usize>(s: &mut [f32]) -> &mut [f32; N] {
                match s.try_into() {
                    Ok(a) => a,
                    Err(_) => unreachable!(),
                }
            }
        }
    });
    quote!(#view #view_mut)
}

/// The weight statics, one array row per line, exactly as we lay them out.
fn weights_module(p: &Program) -> String {
    if p.weights.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "/// Model weights.\n#[rustfmt::skip]\nmod weights {\n    #![allow(clippy::excessive_precision, clippy::approx_constant, clippy::unreadable_literal)]\n",
    );
    if crate::backend::stores(p, WeightsDtype::F16) {
        out.push_str(&indent(&half_fn()));
        out.push('\n');
    }
    for w in &p.weights {
        let name = w.ident.to_ascii_uppercase();
        let ty = kernels::element_type(w.dtype);
        let fmt_row = |row: &[f32]| {
            row.iter()
                .map(|&v| match w.dtype {
                    WeightsDtype::F32 => dialect::float(v),
                    WeightsDtype::F16
                    | WeightsDtype::Int8
                    | WeightsDtype::Q8
                    | WeightsDtype::I32 => crate::backend::stored_literal(w.dtype, v),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match w.dims[..] {
            [rows, cols] => {
                out.push_str(&format!(
                    "    pub(super) static {name}: [[{ty}; {cols}]; {rows}] = [\n"
                ));
                for row in w.data.chunks(cols.max(1)) {
                    out.push_str(&format!("        [{}],\n", fmt_row(row)));
                }
                out.push_str("    ];\n");
            }
            _ => {
                out.push_str(&format!(
                    "    pub(super) static {name}: [{ty}; {}] = [\n        {},\n    ];\n",
                    w.data.len(),
                    fmt_row(&w.data)
                ));
            }
        }
    }
    out.push_str("}\n");
    out
}
