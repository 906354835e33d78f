//! The firmware proof (issue 6): generated C++ for fixture models, cross-compiled for a
//! Cortex-M4F with the harness in firmware/cortex-m4/, run under QEMU (`mps2-an386`) with
//! semihosting output, must match Keras. Flash and RAM are measured per model and printed
//! as a table next to `inspect`'s figures, also written to target/firmware/report.md.
//! Each model also runs with its weights in `NAME.hpp.weights.bin`, linked into flash by
//! the header's `.incbin`, and as the C backend's header (`--lang c`, `-std=c99 -pedantic`,
//! compiled and linked by arm-none-eabi-gcc alone: no g++ in that build), whose flash and
//! RAM rows follow the C++ ones in the table.
//!
//! Instructions per predict call (issue 16): QEMU runs with `-icount shift=0`, where the
//! virtual clock advances 1 ns per instruction, and the harness reads SysTick (on the 25 MHz
//! core clock) around `PREDICT(s)`. `calibrate.c` measures the instructions per tick (40)
//! on loops of known length, the overhead of a measurement, and the count across SysTick's
//! wraps; the models are counted at `-Os` and at `-O2`, both checked against Keras.
//!
//! Skipped with a message when the ARM toolchain or QEMU is missing, except under CI (the
//! `CI` variable set), where `.ci/run` installs them and a missing tool fails the test.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::run;
use keras2src::backend::cpp::hex_float;
use keras2src::ir::InputDtype;
use keras2src::{Lang, Model, Options, ScratchPlacement, Tune, WeightsDtype, WeightsPlacement};

/// The fixtures run on the emulated board: an MLP, a CNN, an LSTM, the two models of
/// generated-samples/ (text_bilstm reads int32 tokens), and a stateful LSTM + GRU fed one
/// time step at a time through `step`, its state carried from call to call.
const MODELS: &[&str] = &[
    "seed",
    "bench_cnn",
    "bench_lstm",
    "text_bilstm",
    "transformer_block",
    "stream_lstm_gru",
];

/// At most this many samples of a fixture go into the firmware.
const MAX_SAMPLES: usize = 4;

/// Cortex-M4 with its single-precision FPU, as issue 6 gives them.
const TARGET: &[&str] = &[
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
];

/// Optimisation levels: every build at `-Os` (the flash and RAM table), one more at `-O2`
/// for the instruction count, and one at `-O2` generated with `--tune mcu`. The harness's
/// startup is always `-Os`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Opt {
    Size,
    Speed,
    Mcu,
}

impl Opt {
    fn flag(self) -> &'static str {
        match self {
            Opt::Size => "-Os",
            Opt::Speed | Opt::Mcu => "-O2",
        }
    }

    fn tune(self) -> Tune {
        match self {
            Opt::Size | Opt::Speed => Tune::Host,
            Opt::Mcu => Tune::Mcu,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Opt::Size => "-Os",
            Opt::Speed => "-O2",
            Opt::Mcu => "-O2-mcu",
        }
    }
}

/// QEMU's clock: 2^0 ns of virtual time per instruction, so SysTick's count is exact.
const ICOUNT: &[&str] = &["-icount", "shift=0"];
const COMMON: &[&str] = &[
    "-ffunction-sections",
    "-fdata-sections",
    "-Wall",
    "-Wextra",
    "-Werror",
];
const CXX: &[&str] = &["-std=c++17", "-fno-exceptions", "-fno-rtti"];
const C: &[&str] = &["-std=c11"];
/// The C backend's header, as the issue asks it to compile.
const C99: &[&str] = &["-std=c99", "-pedantic"];
/// newlib-nano only for the memcpy/memset gcc may emit; the harness has its own startup.
const LINK: &[&str] = &[
    "--specs=nano.specs",
    "--specs=nosys.specs",
    "-nostartfiles",
    "-Wl,--gc-sections",
];

const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn harness() -> PathBuf {
    repo().join("firmware/cortex-m4")
}

/// True when every tool is there; otherwise skips with a message, or fails under CI.
fn tools_installed() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut missing: Vec<String> = [
        "arm-none-eabi-gcc",
        "arm-none-eabi-g++",
        "arm-none-eabi-size",
        "arm-none-eabi-nm",
        "qemu-system-arm",
    ]
    .into_iter()
    .filter(|t| !runs(t))
    .map(str::to_string)
    .collect();
    if missing.is_empty() {
        // gcc prints the bare name back when it cannot find the library.
        let nano = Command::new("arm-none-eabi-gcc")
            .args(TARGET)
            .arg("-Os")
            .arg("-print-file-name=libc_nano.a")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if !Path::new(&nano).is_absolute() {
            missing.push("newlib-nano (libnewlib-arm-none-eabi)".into());
        }
        if !cross_cpp_headers() {
            missing.push("C++ headers (libstdc++-arm-none-eabi-newlib)".into());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!("{} not installed", missing.join(", "));
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: {message}; .ci/run installs them"
    );
    eprintln!("skipped: {message}");
    false
}

/// Whether arm-none-eabi-g++ finds `<cmath>`, which generated headers may include.
fn cross_cpp_headers() -> bool {
    let Ok(mut child) = Command::new("arm-none-eabi-g++")
        .args(["-x", "c++", "-E", "-o", "/dev/null", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let written =
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"#include <cmath>\n");
    written.is_ok() && child.wait().is_ok_and(|s| s.success())
}

/// A fixture's io.json: per input, its samples' flat values; per output, likewise.
struct Io {
    inputs: Vec<Vec<Vec<f64>>>,
    outputs: Vec<Vec<Vec<f32>>>,
    /// A stateful model's calls: whether the state is reset before each sample.
    resets: Option<Vec<bool>>,
}

fn read_io(name: &str) -> Io {
    let stream = repo().join(format!("tests/fixtures/models/{name}.stream.json"));
    if stream.exists() {
        // One sample per call, in order: the state carries from call to call.
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(stream).unwrap()).unwrap();
        let calls = &doc["calls"].as_array().unwrap()[..MAX_SAMPLES];
        let floats = |v: &serde_json::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        };
        return Io {
            inputs: vec![calls.iter().map(|c| floats(&c["inputs"])).collect()],
            outputs: vec![calls
                .iter()
                .map(|c| {
                    floats(&c["outputs"][0])
                        .into_iter()
                        .map(|v| v as f32)
                        .collect()
                })
                .collect()],
            resets: Some(
                calls
                    .iter()
                    .map(|c| c["reset"].as_bool().unwrap())
                    .collect(),
            ),
        };
    }
    let path = repo().join(format!("tests/fixtures/models/{name}.io.json"));
    let io: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tensors = |key: &str| -> Vec<Vec<Vec<f64>>> {
        io[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                t["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .take(MAX_SAMPLES)
                    .map(|s| {
                        s.as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_f64().unwrap())
                            .collect()
                    })
                    .collect()
            })
            .collect()
    };
    Io {
        inputs: tensors("inputs"),
        outputs: tensors("outputs")
            .into_iter()
            .map(|t| {
                t.into_iter()
                    .map(|s| s.into_iter().map(|v| v as f32).collect())
                    .collect()
            })
            .collect(),
        resets: None,
    }
}

/// The harness's startup code, compiled once into `dir`.
fn startup(dir: &Path) -> PathBuf {
    let startup = dir.join("startup.o");
    run(Command::new("arm-none-eabi-gcc")
        .args(TARGET)
        .arg("-Os")
        .args(C)
        .args(COMMON)
        .arg("-c")
        .arg(harness().join("startup.c"))
        .arg("-o")
        .arg(&startup));
    startup
}

/// The header's file name: model.hpp (C++) or model.h (C).
fn header(lang: Lang) -> &'static str {
    match lang {
        Lang::C => "model.h",
        _ => "model.hpp",
    }
}

/// model.cpp / model.c: the one file that compiles the model's C entry points (C++'s
/// `extern "C"` ones, or the C header's definitions).
fn model_source(name: &str, lang: Lang) -> String {
    format!(
        "// The model's C entry points, for the firmware harness.\n\
         #define KERAS2SRC_{}_IMPLEMENTATION\n#include \"{}\"\n",
        name.to_ascii_uppercase(),
        header(lang)
    )
}

/// samples.h: the inputs as exact literals, the output buffers and `PREDICT(s)`.
fn samples_h(name: &str, model: &Model, io: &Io, lang: Lang) -> String {
    let graph = &model.graph;
    let count = io.inputs[0].len();
    // The header in C: the C++ one's `extern "C"` part, or the C one's declarations,
    // declare `NAME_predict`.
    let mut h = format!(
        "/* Samples for the firmware harness, generated by tests/firmware.rs. */\n\
         #include <stdint.h>\n\n#include \"{}\"\n\n",
        header(lang)
    );
    let mut args = Vec::new();
    for (k, (input, samples)) in graph.inputs.iter().zip(&io.inputs).enumerate() {
        let (ty, literal): (&str, fn(f64) -> String) = match input.dtype {
            InputDtype::F32 => ("float", |v| hex_float(v as f32)),
            InputDtype::I32 => ("int32_t", |v| format!("{}", v as i32)),
            InputDtype::I8 => ("int8_t", |v| format!("{}", v as i32)),
        };
        args.push(format!("input{k}[s]"));
        let len = samples[0].len();
        writeln!(h, "static const {ty} input{k}[{count}][{len}] = {{").unwrap();
        for sample in samples {
            let values: Vec<String> = sample.iter().map(|&v| literal(v)).collect();
            writeln!(h, "    {{{}}},", values.join(", ")).unwrap();
        }
        h.push_str("};\n");
    }
    let lens: Vec<String> = io.outputs.iter().map(|o| o[0].len().to_string()).collect();
    for (k, len) in lens.iter().enumerate() {
        writeln!(h, "static float output{k}[{len}];").unwrap();
        args.push(format!("output{k}"));
    }
    let outputs: Vec<String> = (0..lens.len()).map(|k| format!("output{k}")).collect();
    if let Some(resets) = &io.resets {
        // A stream: each sample is one call of T steps through `step`, writing each step's
        // output in turn; the state lives in .bss and is reset where Keras reset it.
        let upper = name.to_ascii_uppercase();
        let steps = graph.shape(graph.inputs[0].tensor)[0];
        let flags: Vec<&str> = resets.iter().map(|&r| if r { "1" } else { "0" }).collect();
        write!(
            h,
            "\nstatic const uint8_t resets[{count}] = {{{}}};\n\
             static {name}_State state;\n\n\
             static void stream_call(uint32_t s) {{\n    \
             uint32_t t;\n    \
             if (resets[s]) {name}_reset(&state);\n    \
             for (t = 0; t < {steps}u; ++t) {{\n        \
             {name}_step(&state, input0[s] + t * {upper}_STEP_INPUT_LEN,\n                 \
             output0 + ({} > {upper}_STEP_OUTPUT_LEN ? t * {upper}_STEP_OUTPUT_LEN : 0u));\n    \
             }}\n}}\n\n\
             #define SAMPLE_COUNT {count}u\n\
             #define OUTPUT_COUNT 1u\n\
             static float *const outputs[OUTPUT_COUNT] = {{output0}};\n\
             static const uint32_t output_lens[OUTPUT_COUNT] = {{{}}};\n\n\
             #define PREDICT(s) stream_call(s)\n",
            flags.join(", "),
            lens[0],
            lens[0]
        )
        .unwrap();
        return h;
    }
    write!(
        h,
        "\n#define SAMPLE_COUNT {count}u\n\
         #define OUTPUT_COUNT {}u\n\
         static float *const outputs[OUTPUT_COUNT] = {{{}}};\n\
         static const uint32_t output_lens[OUTPUT_COUNT] = {{{}}};\n\n\
         #define PREDICT(s) {name}_predict({})\n",
        lens.len(),
        outputs.join(", "),
        lens.join(", "),
        args.join(", ")
    )
    .unwrap();
    h
}

/// Bytes per kind of allocated section.
#[derive(Debug, Default, Clone, Copy)]
struct Sizes {
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
}

/// What the link map says about the model: the input sections of model.o that survived
/// `--gc-sections`, and the library members that define what model.o leaves undefined.
struct MapReport {
    model: Sizes,
    libraries: Sizes,
    /// The library symbols model.o refers to (`memset`, `sqrtf`).
    library_symbols: Vec<String>,
}

/// One input section of the link: (section, size, file).
type InputSection = (String, u64, String);

/// `undefined`: the symbols model.o leaves undefined (`nm -u`).
fn read_map(map: &str, undefined: &[String]) -> MapReport {
    // "Archive member included to satisfy reference by file (symbol)": a member's line,
    // then the file that first referred to it: (member, file).
    let mut pulled_by: Vec<(String, String)> = Vec::new();
    let mut lines = map.lines();
    for line in lines.by_ref() {
        if line.starts_with("Discarded input sections") {
            break;
        }
        if !line.starts_with(' ') && line.contains(".a(") {
            pulled_by.push((line.trim().to_string(), String::new()));
        } else if let Some(last) = pulled_by.last_mut().filter(|l| l.1.is_empty()) {
            last.1 = line.split_whitespace().next().unwrap_or("").to_string();
        }
    }
    // Input sections: " .text.name  0xADDR  0xSIZE  file", the name alone on its line when
    // long, then the symbols they define ("  0xADDR  name"). Output sections start in
    // column 0; discarded sections were listed before this.
    let mut sections: Vec<InputSection> = Vec::new();
    let mut defined_in: Vec<(String, String)> = Vec::new();
    let mut pending: Option<String> = None;
    for line in lines.skip_while(|l| !l.starts_with("Linker script and memory map")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let starts_input = line.starts_with(' ') && !line.starts_with("  ");
        let (section, rest) = if starts_input && fields.len() == 1 {
            pending = Some(fields[0].to_string());
            continue;
        } else if starts_input {
            (fields[0].to_string(), &fields[1..])
        } else if let Some(section) = pending.take() {
            (section, &fields[..])
        } else {
            if let (Some(file), [address, symbol]) = (sections.last(), &fields[..]) {
                if address.starts_with("0x") {
                    defined_in.push((symbol.to_string(), file.2.clone()));
                }
            }
            continue;
        };
        let [address, size, file] = rest else {
            continue;
        };
        let size = size
            .strip_prefix("0x")
            .and_then(|s| u64::from_str_radix(s, 16).ok());
        if let (true, Some(size)) = (address.starts_with("0x"), size) {
            sections.push((section, size, file.to_string()));
        }
    }
    // The model's members: those defining its undefined symbols, and what they pull in.
    let mut members: Vec<String> = defined_in
        .iter()
        .filter(|(symbol, _)| undefined.contains(symbol))
        .map(|(_, file)| file.clone())
        .collect();
    members.dedup();
    loop {
        let before = members.len();
        for (member, by) in &pulled_by {
            if members.contains(by) && !members.contains(member) {
                members.push(member.clone());
            }
        }
        if members.len() == before {
            break;
        }
    }
    let mut report = MapReport {
        model: Sizes::default(),
        libraries: Sizes::default(),
        library_symbols: undefined.to_vec(),
    };
    for (section, size, file) in &sections {
        let sizes = if file == "model.o" {
            &mut report.model
        } else if members.contains(file) {
            &mut report.libraries
        } else {
            continue;
        };
        let kind = |prefix: &str| section == prefix || section.starts_with(&format!("{prefix}."));
        if kind(".text") || kind(".ARM.exidx") || kind(".ARM.extab") {
            sizes.text += size;
        } else if kind(".rodata") {
            sizes.rodata += size;
        } else if kind(".data") {
            sizes.data += size;
        } else if kind(".bss") || section == "COMMON" {
            sizes.bss += size;
        }
    }
    report
}

/// The symbols `object` leaves undefined.
fn undefined_symbols(object: &Path) -> Vec<String> {
    run(Command::new("arm-none-eabi-nm").arg("-u").arg(object))
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect()
}

/// The whole image's allocated sections, from `arm-none-eabi-size -A`.
fn image_sizes(elf: &Path) -> Sizes {
    let text = run(Command::new("arm-none-eabi-size").arg("-A").arg(elf));
    let mut sizes = Sizes::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [section, size, _] = fields[..] else {
            continue;
        };
        let Ok(size) = size.parse::<u64>() else {
            continue;
        };
        match section {
            ".text" | ".ARM.exidx" | ".init_array" => sizes.text += size,
            ".rodata" => sizes.rodata += size,
            ".data" => sizes.data += size,
            ".bss" => sizes.bss += size,
            _ => {}
        }
    }
    sizes
}

/// Runs the firmware under QEMU; returns its output and the run time. Semihosting writes to
/// an explicit stdio chardev: without one, QEMU 7.2 sends it to stderr.
fn run_qemu(elf: &Path) -> (String, Duration) {
    let start = Instant::now();
    let mut child = Command::new("qemu-system-arm")
        .args(["-M", "mps2-an386", "-display", "none", "-monitor", "none"])
        .args(ICOUNT)
        .args(["-serial", "none", "-chardev", "stdio,id=semihost"])
        .args([
            "-semihosting-config",
            "enable=on,target=native,chardev=semihost",
        ])
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-arm starts");
    // Read the pipes on threads, so that a chatty program cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > QEMU_TIMEOUT {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "{} hung: killed after {QEMU_TIMEOUT:?}; output so far:\n{}",
                elf.display(),
                out.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        status.success(),
        "{} exited with {status}:\n{out}{err}",
        elf.display()
    );
    (out, elapsed)
}

/// Per sample: every output float, in output order; the peak stack; SysTick's ticks.
struct Output {
    outputs: Vec<Vec<f32>>,
    stacks: Vec<u64>,
    ticks: Vec<u64>,
}

fn parse_output(text: &str) -> Output {
    let mut outputs = Vec::new();
    let mut stacks = Vec::new();
    let mut ticks = Vec::new();
    let words = |rest: &str| -> Vec<u32> {
        rest.split_whitespace()
            .map(|w| u32::from_str_radix(w, 16).unwrap())
            .collect()
    };
    for line in text.lines() {
        let Some((label, rest)) = line.split_once(':') else {
            continue;
        };
        if label.starts_with("sample ") {
            outputs.push(words(rest).into_iter().map(f32::from_bits).collect());
        } else if label.starts_with("stack ") {
            stacks.push(u64::from(words(rest)[0]));
        } else if label.starts_with("ticks ") {
            ticks.push(u64::from(words(rest)[0]));
        }
    }
    Output {
        outputs,
        stacks,
        ticks,
    }
}

struct Row {
    name: String,
    elf: PathBuf,
    /// The QEMU run's whole output.
    text: String,
    params: usize,
    macs: usize,
    /// SysTick's ticks per predict call, per sample.
    ticks: Vec<u64>,
    inspect_flash: usize,
    inspect_ram: usize,
    model: Sizes,
    libraries: Sizes,
    library_symbols: Vec<String>,
    stack: u64,
    image: Sizes,
    compile: Duration,
    qemu: Duration,
}

/// What a build computes with: f32 with kernels stored as a dtype (`--weights-dtype`), or
/// full int8 (`--quantize int8`, calibrated on the fixture's NAME.calib.json).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Numbers {
    Stored(WeightsDtype),
    Int8,
}

impl Numbers {
    const F32: Numbers = Numbers::Stored(WeightsDtype::F32);

    fn label(self) -> &'static str {
        match self {
            Numbers::Stored(WeightsDtype::F32) => "",
            Numbers::Stored(WeightsDtype::F16) => " f16",
            Numbers::Stored(_) => " int8 weights",
            Numbers::Int8 => " full int8",
        }
    }
}

/// The quantization of a fixture, calibrated on its committed samples.
fn int8_quantization(model: &Model, name: &str) -> keras2src::Quantization {
    let calib = repo().join(format!("tests/fixtures/models/{name}.calib.json"));
    keras2src::Quantization {
        calibration: keras2src::samples::read_samples(&calib, &model.input_port_shapes()).unwrap(),
        check: Vec::new(),
        int8_io: false,
    }
}

/// Builds the model's `lang` output (C++ with its `extern "C"` entry points, or C, built
/// with arm-none-eabi-gcc alone) with its scratch placed as `scratch` at `opt`, runs it
/// under QEMU, compares with Keras (with compressed kernels or int8, `numbers`: with the
/// interpreter computing the same numbers) and measures it.
#[allow(clippy::too_many_arguments)]
fn build_and_run(
    name: &str,
    dir: &Path,
    startup: &Path,
    lang: Lang,
    scratch: ScratchPlacement,
    weights: WeightsPlacement,
    opt: Opt,
    numbers: Numbers,
) -> Row {
    let model = Model::load(
        &repo().join(format!("tests/fixtures/models/{name}.keras")),
        None,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let io = read_io(name);
    let quantize = (numbers == Numbers::Int8).then(|| int8_quantization(&model, name));
    let dtype = match numbers {
        Numbers::Stored(dtype) => dtype,
        Numbers::Int8 => WeightsDtype::F32,
    };
    let options = Options {
        scratch: Some(scratch),
        weights,
        extern_c: lang == Lang::Cpp,
        tune: opt.tune(),
        weights_dtype: dtype,
        quantize: quantize.clone(),
        ..Options::new(lang, name)
    };
    let generated = model.generate_with(&options).unwrap();
    // The header as model.hpp (model.h), a weights file as NAME.hpp.weights.bin
    // (NAME.h.weights.bin) beside it.
    for (path, bytes) in generated.files(&dir.join(header(lang))) {
        std::fs::write(path, bytes).unwrap();
    }
    let (source, compiler, flags) = match lang {
        Lang::C => ("model.c", "arm-none-eabi-gcc", C99),
        _ => ("model.cpp", "arm-none-eabi-g++", CXX),
    };
    std::fs::write(dir.join(source), model_source(name, lang)).unwrap();
    std::fs::write(dir.join("samples.h"), samples_h(name, &model, &io, lang)).unwrap();

    let start = Instant::now();
    run(Command::new(compiler)
        .args(TARGET)
        .arg(opt.flag())
        .args(flags)
        .args(COMMON)
        // The assembler's .incbin finds a weights file on the include path.
        .arg("-I")
        .arg(dir)
        .arg("-c")
        .arg(dir.join(source))
        .arg("-o")
        .arg(dir.join("model.o")));
    run(Command::new("arm-none-eabi-gcc")
        .args(TARGET)
        .arg(opt.flag())
        .args(C)
        .args(COMMON)
        .arg("-I")
        .arg(dir)
        .arg("-I")
        .arg(harness())
        .arg("-c")
        .arg(harness().join("main.c"))
        .arg("-o")
        .arg(dir.join("main.o")));
    // Objects by bare name, so that the map names them `model.o`.
    let elf = dir.join("fw.elf");
    run(Command::new("arm-none-eabi-gcc")
        .current_dir(dir)
        .args(TARGET)
        .arg(opt.flag())
        .args(LINK)
        .arg("-T")
        .arg(harness().join("mps2-an386.ld"))
        .arg("-Wl,-Map=fw.map")
        .arg(startup)
        .args(["main.o", "model.o", "-lm", "-o", "fw.elf"]));
    let compile = start.elapsed();

    let (text, qemu) = run_qemu(&elf);
    let Output {
        outputs: got,
        stacks,
        ticks,
    } = parse_output(&text);
    // Keras's outputs; with compressed kernels or int8, the interpreter's with the same.
    let compressed = match &quantize {
        Some(q) => Some(model.quantized(q).unwrap().graph),
        None => (dtype != WeightsDtype::F32).then(|| model.dequantized(dtype).unwrap()),
    };
    let wanted: Vec<Vec<f32>> = (0..io.inputs[0].len())
        .map(|s| match &compressed {
            None => io.outputs.iter().flat_map(|o| o[s].clone()).collect(),
            Some(graph) => {
                let inputs: Vec<Vec<f32>> = io
                    .inputs
                    .iter()
                    .map(|port| port[s].iter().map(|&v| v as f32).collect())
                    .collect();
                let values = keras2src::interp::run(graph, &inputs).unwrap();
                keras2src::interp::outputs(graph, &values)
                    .into_iter()
                    .flatten()
                    .collect()
            }
        })
        .collect();
    assert_eq!(got.len(), wanted.len(), "{name}: samples printed:\n{text}");
    assert_eq!(stacks.len(), wanted.len(), "{name}: stack lines:\n{text}");
    assert_eq!(ticks.len(), wanted.len(), "{name}: ticks lines:\n{text}");
    for (s, (g, w)) in got.iter().zip(&wanted).enumerate() {
        assert_eq!(g.len(), w.len(), "{name} sample {s}: output length");
        for (i, (&g, &w)) in g.iter().zip(w).enumerate() {
            assert!(
                common::close(g, w),
                "{name} sample {s} output {i}: Cortex-M4 {g}, Keras {w}"
            );
        }
    }
    let all: Vec<f32> = got.iter().flatten().copied().collect();
    assert!(
        all.len() < 2 || all.iter().any(|v| v.to_bits() != all[0].to_bits()),
        "{name}: every output is {}: a constant cannot pass",
        all[0]
    );

    let map = read_map(
        &std::fs::read_to_string(dir.join("fw.map")).unwrap(),
        &undefined_symbols(&dir.join("model.o")),
    );
    let summary = model.summary();
    let stored = numbers.label();
    // The header's figures: `flash N bytes (weights), RAM M bytes (scratch)`.
    let figure = |what: &str| -> usize {
        let totals = |l: &&str| l.contains("bytes (weights), RAM");
        let line = generated.source.lines().find(totals).unwrap();
        let at = line.find(what).unwrap() + what.len();
        let digits: String = line[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    Row {
        name: match lang {
            Lang::C => format!("{name} (C){stored}"),
            _ => format!("{name}{stored}"),
        },
        image: image_sizes(&elf),
        elf,
        text,
        params: summary.params,
        macs: summary.macs,
        ticks,
        inspect_flash: figure("; flash "),
        inspect_ram: figure("RAM "),
        model: map.model,
        libraries: map.libraries,
        library_symbols: map.library_symbols,
        stack: stacks.into_iter().max().unwrap(),
        compile,
        qemu,
    }
}

/// One line per model: flash, then RAM with the scratch on the stack and in a static.
fn table(rows: &[&(Row, Row)]) -> String {
    let mut t = String::from(
        "| model | params | flash: inspect (weights) | flash: model .text + .rodata | \
         RAM: inspect (scratch) | RAM, `--scratch stack`: .bss + peak stack | \
         RAM, `--scratch static`: .bss + peak stack | \
         library functions the model calls: flash / RAM | whole image: flash / RAM without stack |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for (r, st) in rows {
        let libraries = if r.library_symbols.is_empty() {
            "none".to_string()
        } else {
            format!(
                "`{}`: {} / {}",
                r.library_symbols.join("`, `"),
                r.libraries.text + r.libraries.rodata + r.libraries.data,
                r.libraries.data + r.libraries.bss
            )
        };
        let ram = |r: &Row| {
            let bss = r.model.data + r.model.bss;
            format!("{bss} + {} = {}", r.stack, bss + r.stack)
        };
        writeln!(
            t,
            "| {} | {} | {} | {} + {} = {} | {} | {} | {} | {} | {} / {} |",
            r.name,
            r.params,
            r.inspect_flash,
            r.model.text,
            r.model.rodata,
            r.model.text + r.model.rodata,
            r.inspect_ram,
            ram(r),
            ram(st),
            libraries,
            r.image.text + r.image.rodata + r.image.data,
            r.image.data + r.image.bss,
        )
        .unwrap();
    }
    t
}

/// What calibrate.c measured, in SysTick ticks, and the instructions a tick derived from it.
struct Calibration {
    per_tick: u64,
    /// A measurement with nothing in it.
    empty: u64,
    /// (instructions, ticks) of the two loops.
    loops: [(u64, u64); 2],
    /// The longer loop with SysTick reloading every 4096 ticks, and the wraps it saw.
    wrapped: u64,
    wraps: u64,
}

/// Builds and runs calibrate.c twice (the runs must agree to the tick) and checks what it
/// printed: two loops of known length give the instructions per tick, the shorter loop
/// alone must match it, an empty measurement must be under a tick or so, and the longer
/// loop must count the same across 4096-tick wraps of SysTick (each wrap's handler adds
/// five instructions).
fn calibrate(dir: &Path, startup: &Path) -> Calibration {
    std::fs::create_dir(dir).unwrap();
    run(Command::new("arm-none-eabi-gcc")
        .current_dir(dir)
        .args(TARGET)
        .arg("-Os")
        .args(C)
        .args(COMMON)
        .args(LINK)
        .arg("-T")
        .arg(harness().join("mps2-an386.ld"))
        .arg(harness().join("calibrate.c"))
        .arg(startup)
        .args(["-o", "calibrate.elf"]));
    let elf = dir.join("calibrate.elf");
    let (text, _) = run_qemu(&elf);
    let (again, _) = run_qemu(&elf);
    assert_eq!(text, again, "calibrate.c: two runs differ");
    // "label N: ticks", N and ticks in hex.
    let lines: Vec<(String, u64, u64)> = text
        .lines()
        .filter_map(|line| {
            let (head, ticks) = line.split_once(": ")?;
            let (label, n) = head.split_once(' ')?;
            Some((
                label.to_string(),
                u64::from_str_radix(n, 16).ok()?,
                u64::from_str_radix(ticks, 16).ok()?,
            ))
        })
        .collect();
    let get = |label: &str| -> Vec<(u64, u64)> {
        lines
            .iter()
            .filter(|l| l.0 == label)
            .map(|l| (l.1, l.2))
            .collect()
    };
    let (empty, loops, wrap, wraps) = (get("empty"), get("loop"), get("wrap"), get("wraps"));
    let ([(_, empty)], [short, long], [(_, wrapped)], [(_, wraps)]) =
        (&empty[..], &loops[..], &wrap[..], &wraps[..])
    else {
        panic!("calibrate.c printed:\n{text}");
    };
    // Each loop iteration is two instructions (`subs`, `bne`).
    let loops = [(2 * short.0, short.1), (2 * long.0, long.1)];
    let (instructions, ticks) = (
        loops[1].0 - loops[0].0,
        loops[1].1.saturating_sub(loops[0].1),
    );
    assert!(
        ticks > 0,
        "calibrate.c: SysTick does not count (QEMU without -icount?):\n{text}"
    );
    let per_tick = (instructions + ticks / 2) / ticks;
    // Each measurement is exact to a tick: the difference of two to two ticks.
    assert!(
        per_tick > 0 && (per_tick * ticks).abs_diff(instructions) <= 2 * per_tick,
        "calibrate.c: {instructions} instructions in {ticks} ticks:\n{text}"
    );
    assert!(*empty <= 1, "calibrate.c: an empty measurement:\n{text}");
    assert!(
        (per_tick * loops[0].1).abs_diff(loops[0].0) <= 2 * per_tick,
        "calibrate.c: the short loop:\n{text}"
    );
    assert!(
        *wraps >= 2 && wrapped.abs_diff(loops[1].1) <= 1 + wraps,
        "calibrate.c: across wraps:\n{text}"
    );
    Calibration {
        per_tick,
        empty: *empty,
        loops,
        wrapped: *wrapped,
        wraps: *wraps,
    }
}

/// Instructions per predict call over the samples: (fewest, most).
fn instructions(row: &Row, calibration: &Calibration) -> (u64, u64) {
    let count = |t: &u64| calibration.per_tick * t.saturating_sub(calibration.empty);
    let counts: Vec<u64> = row.ticks.iter().map(count).collect();
    (*counts.iter().min().unwrap(), *counts.iter().max().unwrap())
}

/// One line per model: instructions per predict call and per MAC at -Os, -O2 and -O2
/// with `--tune mcu`, and the model's .text of each; then the goals of issue 16 with
/// pass / fail.
fn icount_table(rows: &[(Row, (Row, Row))], calibration: &Calibration) -> String {
    let mut t = String::from(
        "| model | MACs | instructions per predict, `-Os` | per MAC, `-Os` | \
         instructions per predict, `-O2` | per MAC, `-O2` | model .text `-Os` / `-O2` (ratio) | \
         `--tune mcu -O2`: instructions | per MAC | .text |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let count = |(min, max): (u64, u64)| {
        if min == max {
            format!("{max}")
        } else {
            format!("{min}–{max}")
        }
    };
    let mut goals = Vec::new();
    for (size, (speed, mcu)) in rows {
        let (os, o2, o2_mcu) = (
            instructions(size, calibration),
            instructions(speed, calibration),
            instructions(mcu, calibration),
        );
        let per_mac = |n: u64| n as f64 / size.macs as f64;
        let ratio = speed.model.text as f64 / size.model.text as f64;
        writeln!(
            t,
            "| {} | {} | {} | {:.2} | {} | {:.2} | {} / {} ({ratio:.2}) | {} | {:.2} | {} |",
            size.name,
            size.macs,
            count(os),
            per_mac(os.1),
            count(o2),
            per_mac(o2.1),
            size.model.text,
            speed.model.text,
            count(o2_mcu),
            per_mac(o2_mcu.1),
            mcu.model.text,
        )
        .unwrap();
        if ["seed", "bench_cnn"].contains(&size.name.as_str()) {
            let pass = if per_mac(o2_mcu.1) <= 2.5 {
                "pass"
            } else {
                "FAIL"
            };
            goals.push(format!(
                "{}: ≤ 2.5 instructions per MAC at `-O2` (`--tune mcu`): {:.2}, {pass} \
                 (default tuning: {:.2})",
                size.name,
                per_mac(o2_mcu.1),
                per_mac(o2.1)
            ));
        }
        if size.name == "seed" {
            // Against the `-O2` build it replaces.
            let growth = mcu.model.text as f64 / speed.model.text as f64;
            let pass = if growth <= 2.0 { "pass" } else { "FAIL" };
            goals.push(format!(
                "seed: `--tune mcu -O2` .text ≤ 2× the default `-O2` one: {} / {} bytes = \
                 {growth:.2}×, {pass}",
                mcu.model.text, speed.model.text
            ));
        }
    }
    let c = calibration;
    write!(
        t,
        "\nInstructions per predict call over the samples (a range when the code path \
         depends on the data); per MAC divides the most by `inspect`'s MACs (the \
         total, after passes). Counted by SysTick under `qemu-system-arm -icount shift=0`, \
         {} instructions a tick, exact to a tick: calibrate.c's loops of {} and {} \
         instructions took {} and {} ticks, an empty measurement {} (subtracted), the longer \
         loop with SysTick wrapping every 4096 ticks ({} wraps) {}; two runs of calibrate.c, \
         and two of bench_cnn at `-O2`, printed the same counts. Goals (issue 16):\n\n- {}\n",
        c.per_tick,
        c.loops[0].0,
        c.loops[1].0,
        c.loops[0].1,
        c.loops[1].1,
        c.empty,
        c.wraps,
        c.wrapped,
        goals.join("\n- ")
    )
    .unwrap();
    t
}

#[test]
fn cortex_m4_matches_keras_and_reports_flash_and_ram() {
    if !tools_installed() {
        return;
    }
    let work = common::work_dir("firmware");
    let startup = startup(&work.path);
    let calibration = calibrate(&work.path.join("calibrate"), &startup);
    let mut rows = Vec::new();
    let mut c_rows = Vec::new();
    let mut speeds = Vec::new();
    for name in MODELS {
        let build_lang =
            |lang: Lang, scratch: ScratchPlacement, weights: WeightsPlacement, opt: Opt| {
                let file = if weights == WeightsPlacement::File {
                    "-file"
                } else {
                    ""
                };
                let dir = work.path.join(format!(
                    "{name}-{}-{}{file}{}",
                    lang.as_str(),
                    scratch.as_str(),
                    opt.label()
                ));
                std::fs::create_dir(&dir).unwrap();
                build_and_run(
                    name,
                    &dir,
                    &startup,
                    lang,
                    scratch,
                    weights,
                    opt,
                    Numbers::F32,
                )
            };
        let build = |scratch, weights, opt| build_lang(Lang::Cpp, scratch, weights, opt);
        // The `-O2` builds and the C ones on another core while the C++ `-Os` ones run.
        let ((speed, mcu), c, (stack, fixed, file)) = std::thread::scope(|threads| {
            let speed = threads.spawn(|| {
                let [speed, mcu] = [Opt::Speed, Opt::Mcu]
                    .map(|opt| build(ScratchPlacement::Stack, WeightsPlacement::Inline, opt));
                let c = [ScratchPlacement::Stack, ScratchPlacement::Static].map(|scratch| {
                    build_lang(Lang::C, scratch, WeightsPlacement::Inline, Opt::Size)
                });
                ((speed, mcu), c)
            });
            let size = (
                build(ScratchPlacement::Stack, WeightsPlacement::Inline, Opt::Size),
                build(
                    ScratchPlacement::Static,
                    WeightsPlacement::Inline,
                    Opt::Size,
                ),
                build(ScratchPlacement::Static, WeightsPlacement::File, Opt::Size),
            );
            let (speed, c) = speed
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (speed, c, size)
        });
        // The weights from the file are in model.o's .rodata (flash), as inline ones are.
        assert!(
            file.model.rodata >= file.inspect_flash as u64 && file.model.bss == fixed.model.bss,
            "{name}: weights file: {:?}, inline: {:?}",
            file.model,
            fixed.model
        );
        // `--scratch static` moves the working memory from the stack to .bss, in both
        // languages (predict's: a stream's step keeps its one step's scratch on the stack).
        let [c_stack, c_fixed] = c;
        let predicts = read_io(name).resets.is_none();
        for (stack, fixed) in [(&stack, &fixed), (&c_stack, &c_fixed)]
            .into_iter()
            .filter(|_| predicts)
        {
            let scratch = stack.inspect_ram as u64;
            assert!(
                stack.model.bss < scratch && fixed.model.bss >= scratch,
                "{}",
                stack.name
            );
            assert!(
                fixed.stack + scratch <= stack.stack,
                "{}: static scratch on the stack",
                stack.name
            );
        }
        // Every MAC takes at least a multiply instruction.
        for row in [&stack, &speed, &mcu] {
            assert!(
                instructions(row, &calibration).0 >= row.macs as u64,
                "{name}: {:?} ticks for {} MACs",
                row.ticks,
                row.macs
            );
        }
        speeds.push((speed, mcu));
        rows.push((stack, fixed));
        c_rows.push((c_stack, c_fixed));
    }
    // The count is the same on another run.
    let (cnn, _) = speeds.iter().find(|(r, _)| r.name == "bench_cnn").unwrap();
    assert_eq!(
        run_qemu(&cnn.elf).0,
        cnn.text,
        "bench_cnn at -O2: a second run differs"
    );
    // Each model's C rows under its C++ ones.
    let both: Vec<&(Row, Row)> = rows.iter().zip(&c_rows).flat_map(|(a, b)| [a, b]).collect();
    let table = table(&both);
    let counts: Vec<(Row, (Row, Row))> = rows.into_iter().map(|(s, _)| s).zip(speeds).collect();
    let icount = icount_table(&counts, &calibration);
    let times: Vec<String> = counts
        .iter()
        .map(|(r, (o2, _))| {
            format!(
                "{}: build {:.2} s, QEMU {:.2} s (`-O2`: {:.2} s, {:.2} s)",
                r.name,
                r.compile.as_secs_f64(),
                r.qemu.as_secs_f64(),
                o2.compile.as_secs_f64(),
                o2.qemu.as_secs_f64()
            )
        })
        .collect();
    let report = format!(
        "Cortex-M4F (`mps2-an386` under QEMU), `{} -Os`, bytes:\n\n{table}\n\
         Instructions, `--scratch stack`, at `-Os` and `-O2`:\n\n{icount}\n{}\n",
        TARGET.join(" "),
        times.join("; ")
    );
    eprintln!("{report}");
    let out = repo().join("target/firmware");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("report.md"), &report).unwrap();
}

/// `--weights-dtype` on the board: seed and bench_lstm as C with f32, f16 and int8 kernels
/// (inline, `-Os`), each checked against the interpreter with the same kernels, and the
/// model's flash (`.text + .rodata` of model.o after the link) printed and shrinking, with
/// the time per call (SysTick ticks; widening each weight where it is loaded costs time:
/// f16 about 4x, int8 about 1.7x here).
#[test]
fn cortex_m4_runs_compressed_kernels() {
    if !tools_installed() {
        return;
    }
    let work = common::work_dir("firmware-dtype");
    let startup = startup(&work.path);
    let mut report = String::from(
        "| model (C, -Os) | inspect flash (weights) | model .text + .rodata | SysTick ticks per predict (most) |\n|---|---|---|---|\n",
    );
    for name in ["seed", "bench_lstm"] {
        let mut flash = Vec::new();
        for dtype in WeightsDtype::ALL {
            let dir = work.path.join(format!("{name}-{}", dtype.as_str()));
            std::fs::create_dir(&dir).unwrap();
            let row = build_and_run(
                name,
                &dir,
                &startup,
                Lang::C,
                ScratchPlacement::Stack,
                WeightsPlacement::Inline,
                Opt::Size,
                Numbers::Stored(dtype),
            );
            let bytes = row.model.text + row.model.rodata;
            writeln!(
                report,
                "| {} | {} | {bytes} | {} |",
                row.name,
                row.inspect_flash,
                row.ticks.iter().max().unwrap()
            )
            .unwrap();
            flash.push(bytes);
        }
        assert!(
            flash[1] < flash[0] && flash[2] < flash[1],
            "{name}: .text + .rodata by dtype {flash:?}"
        );
    }
    eprintln!("{report}");
}

/// The models of issue 17 on the board as C++ at `-O2`: f32, f16 and int8 kernels
/// (`--weights-dtype`), and full int8 (`--quantize int8`), each checked against the
/// interpreter computing the same numbers. Flash, RAM and instructions per call go to
/// target/firmware/int8.md. Full int8 must shrink bench_cnn's flash to at most 0.3x its
/// f32 build's; its instruction count against the f32 build is reported (the goal: fewer).
/// The same int8 header also compiles for a Cortex-M0 (no FPU, no DSP extension) with
/// `--int8-io`, and its seed calls no float routine there: integer arithmetic only.
#[test]
fn cortex_m4_runs_int8() {
    if !tools_installed() {
        return;
    }
    let work = common::work_dir("firmware-int8");
    let startup = startup(&work.path);
    let calibration = calibrate(&work.path.join("calibrate"), &startup);
    let all = [
        Numbers::F32,
        Numbers::Stored(WeightsDtype::F16),
        Numbers::Stored(WeightsDtype::Int8),
        Numbers::Int8,
    ];
    let mut report = String::from(
        "| model (C++, `--tune mcu`, `-O2`) | flash: weights (header) | flash: model .text + .rodata | \
         RAM: scratch (header) | instructions per predict | per MAC | vs f32 |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut goals = Vec::new();
    let mut failures = Vec::new();
    // MobileNetV2's f16 and int8-weight builds took a third of this test's time (f16 runs
    // 147 M instructions a call under QEMU): they run only with KERAS2SRC_FIRMWARE_ALL.
    let every_row = std::env::var_os("KERAS2SRC_FIRMWARE_ALL").is_some();
    for name in ["seed", "bench_cnn", "bench_lstm", "mobilenet_v2"] {
        let numbers = if name == "mobilenet_v2" && !every_row {
            vec![Numbers::F32, Numbers::Int8]
        } else {
            all.to_vec()
        };
        let rows: Vec<Row> = std::thread::scope(|threads| {
            let handles: Vec<_> = numbers
                .iter()
                .enumerate()
                .map(|(k, &numbers)| {
                    let (work, startup) = (&work, &startup);
                    threads.spawn(move || {
                        let dir = work.path.join(format!("{name}-{k}"));
                        std::fs::create_dir(&dir).unwrap();
                        build_and_run(
                            name,
                            &dir,
                            startup,
                            Lang::Cpp,
                            ScratchPlacement::Static,
                            WeightsPlacement::Inline,
                            Opt::Mcu,
                            numbers,
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let flash = |r: &Row| r.model.text + r.model.rodata;
        let most = |r: &Row| instructions(r, &calibration).1;
        for r in &rows {
            writeln!(
                report,
                "| {} | {} | {} | {} | {} | {:.2} | {:.2}× |",
                r.name,
                r.inspect_flash,
                flash(r),
                r.inspect_ram,
                most(r),
                most(r) as f64 / r.macs as f64,
                most(r) as f64 / most(&rows[0]) as f64,
            )
            .unwrap();
        }
        // f32 first, full int8 last.
        let (f32_row, int8_row) = (&rows[0], &rows[rows.len() - 1]);
        let ratio = flash(int8_row) as f64 / flash(f32_row) as f64;
        // bench_lstm's LSTM stays float (README, "Quantization"): only its head shrinks.
        if name != "bench_lstm"
            && (ratio >= 1.0 || int8_row.inspect_flash * 3 >= f32_row.inspect_flash)
        {
            failures.push(format!(
                "{name}: full int8 flash {} vs f32 {}",
                flash(int8_row),
                flash(f32_row)
            ));
        }
        if name == "bench_cnn" {
            if ratio > 0.3 {
                failures.push(format!("bench_cnn: int8 flash {ratio:.2}x f32's"));
            }
            let speed = most(int8_row) as f64 / most(f32_row) as f64;
            goals.push(format!(
                "bench_cnn full int8: flash {} / {} bytes = {ratio:.2}× the f32 build's \
                 (goal ≤ 0.3×: pass); instructions {} / {} = {speed:.2}× (goal < 1×: {})",
                flash(int8_row),
                flash(f32_row),
                most(int8_row),
                most(f32_row),
                if speed < 1.0 { "pass" } else { "FAIL" }
            ));
        }
    }
    // Cortex-M0: the seed with int8 ports compiles to integer code only.
    let m0 = work.path.join("m0");
    std::fs::create_dir(&m0).unwrap();
    let model = Model::load(&repo().join("tests/fixtures/models/seed.keras"), None).unwrap();
    let options = Options {
        quantize: Some(keras2src::Quantization {
            int8_io: true,
            ..int8_quantization(&model, "seed")
        }),
        ..Options::new(Lang::C, "seed")
    };
    model
        .generate_with(&options)
        .unwrap()
        .write(&m0.join("model.h"))
        .unwrap();
    std::fs::write(m0.join("model.c"), model_source("seed", Lang::C)).unwrap();
    run(Command::new("arm-none-eabi-gcc")
        .args(["-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft", "-O2"])
        .args(C99)
        .args(COMMON)
        .arg("-c")
        .arg(m0.join("model.c"))
        .arg("-o")
        .arg(m0.join("model.o")));
    let calls = undefined_symbols(&m0.join("model.o"));
    let float: Vec<&String> = calls
        .iter()
        .filter(|s| {
            ["__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_ui2f"]
                .iter()
                .any(|p| s.starts_with(p))
        })
        .collect();
    assert!(
        float.is_empty(),
        "int8 seed on Cortex-M0 calls float routines: {float:?}"
    );
    goals.push(format!(
        "Cortex-M0 (`-mcpu=cortex-m0 -mfloat-abi=soft`), seed `--quantize int8 --int8-io`: \
         compiles, calls {} (no float routine)",
        if calls.is_empty() {
            "nothing".to_string()
        } else {
            format!("`{}`", calls.join("`, `"))
        }
    ));
    let report = format!(
        "Cortex-M4F (`mps2-an386` under QEMU, `-icount`), C++ generated with `--tune mcu`, at `-O2`, `--scratch static`:\n\n\
         {report}\n- {}\n",
        goals.join("\n- ")
    );
    eprintln!("{report}");
    let out = repo().join("target/firmware");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("int8.md"), &report).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
