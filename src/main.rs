//! The `keras2src` command line: parse, call the library, print the error chain, exit code.
//! What each command does is in `cli/`, one file per command.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keras2src::{Error, Model};

/// Turn a trained Keras model into self-contained, dependency-free Rust, C++ or C source.
///
/// Reads .keras (Keras 3), .h5 (Keras 2 or 3), a .weights.h5 file with its architecture
/// JSON (--config), or keras2src's own JSON interchange format.
#[derive(Parser)]
#[command(name = "keras2src", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write Rust, C++ or C source for a model.
    ///
    /// Example: keras2src generate model.keras -o src/model.rs
    Generate(GenerateArgs),
    /// Print the layers with output shapes, parameters and MACs, and the totals: parameters,
    /// flash bytes for weights, RAM bytes for working memory.
    Inspect {
        #[command(flatten)]
        source: ModelArgs,
    },
    /// Run the model with the reference interpreter on inputs from a JSON file and print the
    /// outputs as JSON.
    ///
    /// Input file: {"inputs": [input0, input1, ...]}, or for a one-input model the input
    /// alone; each input flat or nested like the input's shape (`x[0].tolist()` in Python).
    Predict(PredictArgs),
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    source: ModelArgs,
    /// Output language. Default: from OUTPUT's extension (.rs Rust; .hpp, .hh, .hxx C++; a
    /// .h header needs --lang: `cpp`, or `c` for a C99 header).
    #[arg(long, value_enum)]
    lang: Option<LangArg>,
    /// Module (Rust), namespace (C++, may be nested like a::b) or prefix (C) name.
    /// Default: the output file's stem, else `model`.
    #[arg(long)]
    name: Option<String>,
    /// Output file; stdout when absent. Written atomically (temp file, then rename).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Write nothing; exit 1 if OUTPUT (or its weights file) differs from what would be
    /// generated, printing why, a diff and the command that regenerates (for CI).
    #[arg(long, requires = "output")]
    check: bool,
    /// `file` puts the weights beside OUTPUT, so large models compile in seconds: Rust
    /// in NAME.weights.bin (read with include_bytes!), C++ in NAME.hpp.weights.bin and C
    /// in NAME.h.weights.bin (read with the assembler's .incbin); `auto` does so above
    /// 262,144 floats
    /// (1 MiB). Without -o, weights are always inline.
    #[arg(long, value_enum, default_value = "auto")]
    weights: WeightsArg,
    /// How Dense, convolution and recurrent kernels are stored: `f32` (as Keras has
    /// them), `f16` (half the flash) or `int8` (symmetric per output channel, a quarter);
    /// computed in f32 either way. With --emit-test, the header reports the error against
    /// Keras's outputs and the self-test checks the interpreter with the same weights.
    #[arg(long, value_enum, default_value = "f32")]
    weights_dtype: WeightsDtypeArg,
    /// Where `predict` gets its working memory (SCRATCH_LEN floats): `stack` (a local
    /// array), `caller` (no `predict`: pass it to `predict_with_scratch`) or `static`
    /// (one static buffer: no stack, not reentrant). Default: `stack`, unless predict's
    /// arrays exceed 256 KiB: then `caller` in Rust, `static` in C++ and C (said on
    /// stderr).
    #[arg(long, value_enum)]
    scratch: Option<ScratchArg>,
    /// C++ only: add `extern "C"` entry points NAME_predict, NAME_predict_with_scratch
    /// (and NAME_selftest) with size macros, so C code can call the model. One C++ file
    /// defines KERAS2SRC_NAME_IMPLEMENTATION (NAME upper-cased) before including the
    /// header to compile them.
    #[arg(long)]
    extern_c: bool,
    /// Add the streaming API to a recurrent model: a `State` and `step`, which consumes one
    /// time step and carries the recurrent state to the next call (`predict` stays). A
    /// model with stateful=True layers gets it without the flag.
    #[arg(long)]
    stream: bool,
    /// The core the loops are tuned for: `host` (default: x86-64 or AArch64 with SIMD) or
    /// `mcu` (C and C++ for a core without SIMD, such as Cortex-M4F: the same numbers,
    /// fewer instructions there).
    #[arg(long, value_enum, default_value = "host")]
    tune: TuneArg,
    /// Add a self-test on one Keras input/output pair read from FILE
    /// ({"inputs": [[...], ...], "outputs": [[...], ...]}, one flat list per model input
    /// and output): Rust a #[cfg(test)] test, C++ a `selftest()` function, C
    /// `NAME_selftest()`.
    #[arg(long, value_name = "FILE")]
    emit_test: Option<PathBuf>,
    #[command(flatten)]
    quantize: QuantizeArgs,
    /// Print no progress and no summary line (errors and notes still go to stderr).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct PredictArgs {
    #[command(flatten)]
    source: ModelArgs,
    /// JSON file with the inputs.
    #[arg(long)]
    input: PathBuf,
    /// Also print every layer's output, to find the first layer that disagrees with Keras:
    /// `--trace` (or `--trace=full`) its values, `--trace=summary` only its min, max and
    /// mean (for big models).
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "full",
        value_name = "MODE"
    )]
    trace: Option<TraceMode>,
    /// Trace only these layers (comma-separated names, as `inspect` lists them).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "NAME,...",
        requires = "trace"
    )]
    layers: Vec<String>,
    /// Run with the Dense, convolution and recurrent kernels compressed as `generate
    /// --weights-dtype` stores them (the values that generated code computes with).
    #[arg(long, value_enum, default_value = "f32")]
    weights_dtype: WeightsDtypeArg,
    #[command(flatten)]
    quantize: QuantizeArgs,
}

/// Full int8, as `generate` and `predict` take it.
#[derive(Args)]
struct QuantizeArgs {
    /// Quantize the whole model to int8 after training, as TensorFlow Lite does:
    /// per-channel int8 weights, per-tensor int8 activations calibrated on --calibrate's
    /// samples, integer-only kernels; layers without an int8 kernel (softmax, recurrent
    /// layers, ...) stay float. Prints the accuracy against the f32 model.
    #[arg(long, value_enum, requires = "calibrate")]
    quantize: Option<QuantizeArg>,
    /// Calibration samples: {"samples": [S, ...]}, each S an input document as `predict`
    /// reads it. Use samples like the real inputs; 100 or so is plenty (see the README).
    #[arg(long, value_name = "FILE", requires = "quantize")]
    calibrate: Option<PathBuf>,
    /// More samples (same format) to report the accuracy on, apart from calibration.
    #[arg(long, value_name = "FILE", requires = "quantize")]
    check_samples: Option<PathBuf>,
    /// `generate` only: int8 inputs and outputs (their scale and zero point exported as
    /// constants) instead of float ones.
    #[arg(long, requires = "quantize")]
    int8_io: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum QuantizeArg {
    Int8,
}

impl QuantizeArgs {
    /// The quantization the flags ask for, its samples read for a model with inputs of
    /// `shapes`.
    fn read(&self, shapes: &[Vec<usize>]) -> Result<Option<keras2src::Quantization>, Error> {
        let (Some(QuantizeArg::Int8), Some(calibrate)) = (self.quantize, &self.calibrate) else {
            return Ok(None);
        };
        let read = |p: &std::path::Path| keras2src::samples::read_samples(p, shapes);
        Ok(Some(keras2src::Quantization {
            calibration: read(calibrate)?,
            check: self
                .check_samples
                .as_deref()
                .map(read)
                .transpose()?
                .unwrap_or_default(),
            int8_io: self.int8_io,
        }))
    }
}

/// The model to read, as every command takes it.
#[derive(Args)]
struct ModelArgs {
    /// The model file.
    model: PathBuf,
    /// Architecture JSON (from `model.to_json()`) when MODEL is a bare weights file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The shape of a model input without the batch dimension, like `50,8` or `(50, 8)`,
    /// giving sizes to the dimensions the model leaves open (None), such as a sequence
    /// length. Repeat for several inputs, in input order.
    #[arg(long = "input-shape", value_name = "SHAPE")]
    input_shapes: Vec<String>,
}

impl ModelArgs {
    /// The `--input-shape` values, parsed.
    fn shapes(&self) -> Result<Vec<Vec<usize>>, Error> {
        self.input_shapes
            .iter()
            .map(|s| keras2src::parse_shape(s))
            .collect()
    }

    fn load(&self) -> Result<Model, Error> {
        Model::load_with_shapes(&self.model, self.config.as_deref(), &self.shapes()?)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum WeightsArg {
    Inline,
    File,
    Auto,
}

#[derive(Clone, Copy, ValueEnum)]
enum TuneArg {
    Host,
    Mcu,
}

#[derive(Clone, Copy, ValueEnum)]
enum WeightsDtypeArg {
    F32,
    F16,
    Int8,
}

impl WeightsDtypeArg {
    fn dtype(self) -> keras2src::WeightsDtype {
        match self {
            WeightsDtypeArg::F32 => keras2src::WeightsDtype::F32,
            WeightsDtypeArg::F16 => keras2src::WeightsDtype::F16,
            WeightsDtypeArg::Int8 => keras2src::WeightsDtype::Int8,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ScratchArg {
    Stack,
    Caller,
    Static,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LangArg {
    Rust,
    Cpp,
    C,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TraceMode {
    /// Every value of every layer's output.
    Full,
    /// Min, max and mean of every layer's output.
    Summary,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(args) => cli::generate::run(args),
        Command::Inspect { source } => cli::inspect::run(&source),
        Command::Predict(args) => cli::predict::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            cli::output::message(&format!("error: {e}"));
            ExitCode::from(2)
        }
    }
}
