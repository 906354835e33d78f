//! The `keras2src` command line: parse, call the library, print the error chain, exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keras2src::{
    interp, Error, Lang, Model, Options, ScratchPlacement, SelfTest, WeightsPlacement,
};

/// Turn a trained Keras model into self-contained, dependency-free Rust or C++ source.
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
    /// Write Rust or C++ source for a model.
    ///
    /// Example: keras2src generate model.keras --lang rust -o src/model.rs
    Generate {
        #[command(flatten)]
        source: ModelArgs,
        /// Output language.
        #[arg(long, value_enum)]
        lang: LangArg,
        /// Module (Rust) or namespace (C++, may be nested like a::b) name. Default: the
        /// output file's stem, else `model`.
        #[arg(long)]
        name: Option<String>,
        /// Output file; stdout when absent. Written atomically (temp file, then rename).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Write nothing; exit 1 if OUTPUT (or its weights file) differs from what would be
        /// generated (for CI).
        #[arg(long, requires = "output")]
        check: bool,
        /// `file` puts the weights beside OUTPUT, so large models compile in seconds: Rust
        /// in NAME.weights.bin (read with include_bytes!), C++ in NAME.hpp.weights.bin
        /// (read with the assembler's .incbin); `auto` does so above 262,144 floats
        /// (1 MiB). Without -o, weights are always inline.
        #[arg(long, value_enum, default_value = "auto")]
        weights: WeightsArg,
        /// Where `predict` gets its working memory (SCRATCH_LEN floats): `stack` (a local
        /// array), `caller` (no `predict`: pass it to `predict_with_scratch`) or `static`
        /// (one static buffer: no stack, not reentrant). Default: `stack`, unless predict's
        /// arrays exceed 256 KiB: then `caller` in Rust, `static` in C++ (said on stderr).
        #[arg(long, value_enum)]
        scratch: Option<ScratchArg>,
        /// C++ only: add `extern "C"` entry points NAME_predict, NAME_predict_with_scratch
        /// (and NAME_selftest) with size macros, so C code can call the model. One C++ file
        /// defines KERAS2SRC_NAME_IMPLEMENTATION (NAME upper-cased) before including the
        /// header to compile them.
        #[arg(long)]
        extern_c: bool,
        /// Add a self-test on one Keras input/output pair read from FILE
        /// ({"inputs": [[...], ...], "outputs": [[...], ...]}, one flat list per model input
        /// and output): Rust a #[cfg(test)] test, C++ a `selftest()` function.
        #[arg(long, value_name = "FILE")]
        emit_test: Option<PathBuf>,
    },
    /// Print the layers with output shapes, parameters and MACs, and the totals: parameters,
    /// flash bytes for weights, RAM bytes for working memory.
    Inspect {
        #[command(flatten)]
        source: ModelArgs,
    },
    /// Run the model with the reference interpreter on inputs from a JSON file and print the
    /// outputs as JSON. Input file: {"inputs": [[...flat values of input 0...], ...]}, or a
    /// bare list for a one-input model.
    Predict {
        #[command(flatten)]
        source: ModelArgs,
        /// JSON file with the inputs.
        #[arg(long)]
        input: PathBuf,
        /// Also print every layer's output, to find the first layer that disagrees with Keras.
        #[arg(long)]
        trace: bool,
    },
}

/// The model to read, as every command takes it.
#[derive(Args)]
struct ModelArgs {
    /// The model file.
    model: PathBuf,
    /// Architecture JSON (from `model.to_json()`) when MODEL is a bare weights file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The shape of a model input without the batch dimension, like `50,8`, giving sizes
    /// to the dimensions the model leaves open (None), such as a sequence length. Repeat
    /// for several inputs, in input order.
    #[arg(long = "input-shape", value_name = "SHAPE")]
    input_shapes: Vec<String>,
}

impl ModelArgs {
    fn load(&self) -> Result<Model, Error> {
        let shapes = self
            .input_shapes
            .iter()
            .map(|s| keras2src::parse_shape(s))
            .collect::<Result<Vec<_>, _>>()?;
        Model::load_with_shapes(&self.model, self.config.as_deref(), &shapes)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum WeightsArg {
    Inline,
    File,
    Auto,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScratchArg {
    Stack,
    Caller,
    Static,
}

#[derive(Clone, Copy, ValueEnum)]
enum LangArg {
    Rust,
    Cpp,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Generate {
            source,
            lang,
            name,
            output,
            check,
            weights,
            scratch,
            extern_c,
            emit_test,
        } => {
            let lang = match lang {
                LangArg::Rust => Lang::Rust,
                LangArg::Cpp => Lang::Cpp,
            };
            let name = name.unwrap_or_else(|| keras2src::default_name(output.as_deref()));
            let model = source.load()?;
            for note in &model.graph.notes {
                eprintln!("note: {note}");
            }
            let placement = match (weights, &output) {
                (WeightsArg::File, None) => {
                    return Err(Error::Usage(
                        "--weights file needs -o (the weights file goes beside it)".into(),
                    ))
                }
                (_, None) | (WeightsArg::Inline, _) => WeightsPlacement::Inline,
                (WeightsArg::File, Some(_)) => WeightsPlacement::File,
                (WeightsArg::Auto, Some(_)) => WeightsPlacement::Auto,
            };
            let options = Options {
                weights: placement,
                scratch: scratch.map(|scratch| match scratch {
                    ScratchArg::Stack => ScratchPlacement::Stack,
                    ScratchArg::Caller => ScratchPlacement::Caller,
                    ScratchArg::Static => ScratchPlacement::Static,
                }),
                extern_c,
                self_test: emit_test.as_deref().map(SelfTest::read).transpose()?,
                ..Options::new(lang, &name)
            };
            let generated = model.generate_with(&options)?;
            for note in &generated.notes {
                eprintln!("note: {note}");
            }
            let Some(path) = output else {
                let _ = std::io::stdout().write_all(generated.source.as_bytes());
                return Ok(ExitCode::SUCCESS);
            };
            if check {
                let stale: Vec<_> = generated
                    .files(&path)
                    .into_iter()
                    .filter(|(p, bytes)| std::fs::read(p).ok().as_deref() != Some(*bytes))
                    .collect();
                for (p, _) in &stale {
                    eprintln!("{} is stale: regenerate it", p.display());
                }
                return Ok(if stale.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            generated.write(&path)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { source } => {
            let model = source.load()?;
            print!("{}", inspect_table(&model));
            Ok(ExitCode::SUCCESS)
        }
        Command::Predict {
            source,
            input,
            trace,
        } => {
            let model = source.load()?;
            let inputs = read_inputs(&input)?;
            let graph = &model.graph;
            let values = interp::run(graph, &inputs).map_err(|message| Error::Format {
                path: input.clone(),
                message,
            })?;
            let mut doc = serde_json::Map::new();
            doc.insert(
                "outputs".into(),
                serde_json::json!(interp::outputs(graph, &values)),
            );
            if trace {
                let layers: Vec<_> = graph
                    .nodes
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "layer": n.name, "class": n.class,
                            "shape": graph.shape(n.output), "output": values[n.output],
                        })
                    })
                    .collect();
                doc.insert("trace".into(), serde_json::Value::Array(layers));
            }
            println!("{}", serde_json::Value::Object(doc));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn inspect_table(model: &Model) -> String {
    let s = model.summary();
    let mut out = format!(
        "{:<28} {:<20} {:<16} {:>12} {:>12}\n",
        "layer", "class", "output shape", "params", "MACs"
    );
    for r in &s.rows {
        let shape = format!("{:?}", r.output_shape);
        out.push_str(&format!(
            "{:<28} {:<20} {:<16} {:>12} {:>12}\n",
            keras2src::error::escape_for_message(&r.name),
            keras2src::error::escape_for_message(&r.class),
            shape,
            r.params,
            r.macs
        ));
    }
    out.push_str(&format!(
        "\nparameters: {}\nMACs: {}\nflash (weights): {} bytes\nRAM (working memory): {} bytes (without reuse: {} bytes)\n",
        s.params, s.macs, s.flash_bytes, s.ram_bytes, s.unplanned_bytes
    ));
    for note in &model.graph.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

fn read_inputs(path: &Path) -> Result<Vec<Vec<f32>>, Error> {
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let doc = keras2src::read_json(path)?;
    let lists = match &doc {
        serde_json::Value::Object(o) => o
            .get("inputs")
            .cloned()
            .ok_or_else(|| bad("expected an object with \"inputs\"".into()))?,
        serde_json::Value::Array(a) if a.iter().all(|v| v.is_number()) => {
            serde_json::Value::Array(vec![doc.clone()])
        }
        other => other.clone(),
    };
    let lists = lists
        .as_array()
        .ok_or_else(|| bad("\"inputs\" must be a list of lists of numbers".into()))?;
    lists
        .iter()
        .map(|l| {
            l.as_array()
                .and_then(|vs| vs.iter().map(|v| v.as_f64().map(|x| x as f32)).collect())
                .ok_or_else(|| bad("each input must be a flat list of numbers".into()))
        })
        .collect()
}
