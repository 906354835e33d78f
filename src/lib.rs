//! keras2src: a trained Keras model in, self-contained Rust, C++ or C source out.
//!
//! The pipeline, one module per phase:
//! 1. [`keras`] / [`interchange`] read a model file into the [`ir`] graph (the only code
//!    that knows Keras), checking shapes and collecting every unsupported layer at once;
//! 2. [`passes`] fold BatchNorm, fuse activations and plan the working memory;
//! 3. [`lower`] makes the decisions both backends share (kernels, weight arrays);
//! 4. [`backend`] prints them as Rust, C++ or C;
//!
//! and [`interp`] runs the IR directly, as the reference for tests, `predict` and `--trace`.

pub mod backend;
pub mod error;
mod generator;
pub mod interp;
pub mod ir;
pub mod keras;
/// keras2src's JSON interchange format (read by the [`keras`] frontend).
pub use keras::interchange;
pub mod lower;
pub mod naming;
mod options;
pub mod passes;
pub mod samples;
mod summary;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use generator::Generator;
pub use ir::WeightsDtype;
pub use options::{
    IoSample, Options, Quantization, ScratchPlacement, SelfTest, Tune, WeightsPlacement,
    STACK_SCRATCH_LIMIT, WEIGHTS_FILE_THRESHOLD,
};
pub use summary::{LayerRow, Summary};

use sha2::{Digest, Sha256};

/// The language to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Cpp,
    /// C99: one stb-style header.
    C,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Cpp => "cpp",
            Lang::C => "c",
        }
    }
}

/// Generated source, and the weights file that goes beside it (name, bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub source: String,
    pub weights_file: Option<(String, Vec<u8>)>,
    /// What keras2src decided on the user's behalf (such as moving a large working memory
    /// off the stack), for stderr; the header comment says it too.
    pub notes: Vec<String>,
}

impl Generated {
    /// The files for a source written to `path`: the source, then the weights file beside it.
    pub fn files(&self, path: &Path) -> Vec<(PathBuf, &[u8])> {
        let mut files = vec![(path.to_path_buf(), self.source.as_bytes())];
        if let Some((name, bytes)) = &self.weights_file {
            files.push((path.with_file_name(name), bytes));
        }
        files
    }

    /// Writes [`Generated::files`] atomically, the weights first so that a source file never
    /// refers to a missing weights file; returns their paths.
    pub fn write(&self, path: &Path) -> Result<Vec<PathBuf>> {
        let files = self.files(path);
        for (p, bytes) in files.iter().rev() {
            write_atomically(p, bytes)?;
        }
        Ok(files.into_iter().map(|(p, _)| p).collect())
    }
}

/// A model read from disk, as Keras defines it (before any pass).
#[derive(Debug, Clone)]
pub struct Model {
    pub graph: ir::Graph,
    /// SHA-256 of the model file (and of the architecture JSON, when one was given).
    pub sha256: Vec<String>,
    /// The model file, for error messages only (never written into generated code).
    pub path: PathBuf,
    /// The architecture JSON given with a bare weights file, read again for streaming.
    pub config: Option<PathBuf>,
    /// Shapes given for the model's inputs (`--input-shape`), part of the options.
    pub input_shapes: Vec<Vec<usize>>,
}

impl Model {
    /// Reads a model file; `config` is the architecture JSON for a bare weights file.
    pub fn load(path: &Path, config: Option<&Path>) -> Result<Model> {
        Model::load_with_shapes(path, config, &[])
    }

    /// [`Model::load`], with sizes for the dimensions the model leaves open (`None`, such
    /// as a sequence length): `input_shapes[k]` is the whole shape of input `k` without
    /// the batch dimension.
    pub fn load_with_shapes(
        path: &Path,
        config: Option<&Path>,
        input_shapes: &[Vec<usize>],
    ) -> Result<Model> {
        let bytes = read(path)?;
        let config_bytes = config.map(read).transpose()?;
        let graph = keras::load_bytes_with_shapes(
            path,
            &bytes,
            config.zip(config_bytes.as_deref()),
            input_shapes,
        )?;
        check_integer_inputs(&graph, path)?;
        let mut sha256 = vec![hex_sha256(&bytes)];
        sha256.extend(config_bytes.as_deref().map(hex_sha256));
        Ok(Model {
            graph,
            sha256,
            path: path.to_path_buf(),
            config: config.map(Path::to_path_buf),
            input_shapes: input_shapes.to_vec(),
        })
    }

    /// The input shapes a model file declares, before any is fixed: per input, its
    /// dimensions without the batch one (`None` where the model leaves one open), or `None`
    /// where the file declares no shape. `predict` fills the open ones from its values.
    pub fn declared_input_shapes(
        path: &Path,
        config: Option<&Path>,
    ) -> Result<Vec<Option<Vec<Option<usize>>>>> {
        let bytes = read(path)?;
        let config_bytes = config.map(read).transpose()?;
        keras::declared_input_shapes(path, &bytes, config.zip(config_bytes.as_deref()))
    }

    /// The graph after the inference passes.
    pub fn optimized(&self) -> ir::Graph {
        passes::optimize(self.graph.clone())
    }

    /// Whether the model has a recurrent layer (LSTM, GRU, SimpleRNN, RNN): one that could
    /// stream.
    pub fn is_recurrent(&self) -> bool {
        let recurrent = |n: &ir::Node| matches!(n.op, ir::Op::Recurrent(_));
        self.graph.nodes.iter().any(recurrent)
    }

    /// The shape of every model input (without the batch axis), in order.
    pub fn input_port_shapes(&self) -> Vec<Vec<usize>> {
        (self.graph.inputs.iter())
            .map(|i| self.graph.shape(i.tensor).to_vec())
            .collect()
    }

    /// Whether a recurrent layer is stateful: generation adds the streaming API.
    pub fn is_stateful(&self) -> bool {
        self.graph
            .nodes
            .iter()
            .any(|n| matches!(&n.op, ir::Op::Recurrent(r) if r.stateful))
    }

    /// The model's step function (see [`passes::stream`]): the files are read again with
    /// one time step (and two, for the checks), and must not have changed since the load.
    pub fn step(&self) -> Result<passes::stream::Step> {
        if !self.is_recurrent() {
            return Err(Error::Format {
                path: self.path.clone(),
                message: "cannot stream: the model has no recurrent layer (LSTM, GRU, \
                          SimpleRNN, RNN), so there is no state to carry"
                    .into(),
            });
        }
        let bytes = read(&self.path)?;
        let config_bytes = self.config.as_deref().map(read).transpose()?;
        let mut sha256 = vec![hex_sha256(&bytes)];
        sha256.extend(config_bytes.as_deref().map(hex_sha256));
        if sha256 != self.sha256 {
            return Err(Error::Format {
                path: self.path.clone(),
                message: "changed while keras2src was reading it".into(),
            });
        }
        let config = self.config.as_deref().zip(config_bytes.as_deref());
        let load = |steps| {
            keras::load_bytes_with_steps(&self.path, &bytes, config, &self.input_shapes, steps)
                .map_err(|e| Error::Format {
                    path: self.path.clone(),
                    message: format!(
                        "cannot stream: a stream reads every input as a sequence, time first, \
                         and read so with {steps} time step(s) the model fails: {}",
                        e.to_string().replace('\n', " ")
                    ),
                })
        };
        let (two, one) = (load(passes::stream::CHECK_STEPS)?, load(1)?);
        passes::stream::step_graph(&two, &one).map_err(|problems| Error::Layers {
            path: self.path.clone(),
            problems,
        })
    }

    /// Layer table and totals, as `inspect` prints them.
    pub fn summary(&self) -> Summary {
        Summary::new(&self.graph, &self.optimized())
    }

    /// Bytes of constant weights the generated code holds with kernels stored as `dtype`
    /// (each array once; int8 scales and the arrays that stay f32 included).
    pub fn flash_bytes(&self, dtype: WeightsDtype) -> Result<usize> {
        let graph = self.optimized();
        let plan = passes::plan_memory(&graph);
        let program = lower::lower_with(&graph, &plan, &backend::rust::TUNING, dtype).map_err(
            |problems| Error::Layers {
                path: self.path.clone(),
                problems,
            },
        )?;
        Ok(program.weights.iter().map(backend::stored_bytes).sum())
    }

    /// The graph after the inference passes with every kernel replaced by the values the
    /// generated code computes with when kernels are stored as `dtype` (see
    /// [`ir::quant`]): what the interpreter runs to model that code.
    pub fn dequantized(&self, dtype: WeightsDtype) -> Result<ir::Graph> {
        ir::quant::dequantized(&self.optimized(), dtype).map_err(|problems| Error::Layers {
            path: self.path.clone(),
            problems,
        })
    }

    /// The model quantized to int8 as `q` says (see [`passes::quantize`]), with its accuracy
    /// on the calibration and check samples.
    pub fn quantized(&self, q: &Quantization) -> Result<Quantized> {
        let float = passes::quantize::prepare(self.graph.clone());
        let bad = |message: String| Error::Format {
            path: self.path.clone(),
            message: format!("calibration: {message}"),
        };
        let ranges = passes::quantize::calibrate(&float, &q.calibration).map_err(bad)?;
        let graph = passes::quantize::quantize(&float, &ranges, q.int8_io).map_err(|problems| {
            Error::Layers {
                path: self.path.clone(),
                problems,
            }
        })?;
        // The accuracy is measured with float ports either way.
        let measured = if q.int8_io {
            passes::quantize::quantize(&float, &ranges, false).map_err(|problems| {
                Error::Layers {
                    path: self.path.clone(),
                    problems,
                }
            })?
        } else {
            graph.clone()
        };
        let accuracy = |samples: &[Vec<Vec<f32>>]| -> Result<Option<QuantAccuracy>> {
            if samples.is_empty() {
                return Ok(None);
            }
            let mut a = QuantAccuracy {
                samples: samples.len(),
                ..QuantAccuracy::default()
            };
            let mut agree = 0;
            for sample in samples {
                let run = |g: &ir::Graph| {
                    interp::run(g, sample)
                        .map(|v| interp::outputs(g, &v))
                        .map_err(bad)
                };
                let (f, i) = (run(&float)?, run(&measured)?);
                let error = measure_error(&i, &f, &f);
                a.max_abs_error = a.max_abs_error.max(error.vs_float);
                a.magnitude = a.magnitude.max(error.magnitude);
                let last = f.last().map(Vec::len).unwrap_or(0);
                let classes = graph
                    .outputs
                    .last()
                    .map_or(0, |o| graph.shape(o.tensor).last().copied().unwrap_or(0));
                if classes >= 2 && last == classes {
                    let argmax = |v: &[f32]| {
                        (0..v.len()).fold(0, |best, k| if v[k] > v[best] { k } else { best })
                    };
                    agree += usize::from(argmax(&f[f.len() - 1]) == argmax(&i[i.len() - 1]));
                    a.top1 = Some(agree as f32 / samples.len() as f32);
                }
            }
            Ok(Some(a))
        };
        Ok(Quantized {
            calibration: accuracy(&q.calibration)?.ok_or_else(|| bad("no samples".into()))?,
            check: accuracy(&q.check)?,
            graph,
        })
    }

    /// [`Model::quantized`] for generation: refuses what a quantized model cannot have.
    fn quantized_for(&self, q: &Quantization, options: &Options) -> Result<Quantized> {
        let refuse = |what: &str| {
            Err(Error::Usage(format!(
                "--quantize int8 {what} (see the README's Quantization section)"
            )))
        };
        if options.weights_dtype != WeightsDtype::F32 {
            return refuse("stores its own int8 kernels: drop --weights-dtype");
        }
        if options.stream || self.is_stateful() {
            return refuse("has no streaming form yet: drop --stream (and stateful layers)");
        }
        self.quantized(q)
    }

    /// The self-test of a quantized model: the `--emit-test` sample's outputs as the
    /// quantized interpreter computes them (the generated code's integer arithmetic is the
    /// same), within the f32 bound (the float layers around the int8 ones).
    fn int8_self_test(
        &self,
        graph: &ir::Graph,
        test: &SelfTest,
        options: &Options,
    ) -> Result<SelfTest> {
        if options.quantize.as_ref().is_some_and(|q| q.int8_io) {
            return Err(Error::Usage(
                "--emit-test with --int8-io is not supported yet: generate the self-test \
                 with float ports (without --int8-io)"
                    .into(),
            ));
        }
        let outputs = interp::run(graph, &test.inputs)
            .map(|values| interp::outputs(graph, &values))
            .map_err(|message| Error::Format {
                path: test.path.clone(),
                message,
            })?;
        Ok(SelfTest {
            outputs,
            abs: None,
            ..test.clone()
        })
    }

    /// Generates source for `lang` with every weight inline; `name` is the module name, C++
    /// namespace or C prefix.
    pub fn generate(&self, lang: Lang, name: &str) -> Result<String> {
        let options = Options {
            weights: WeightsPlacement::Inline,
            ..Options::new(lang, name)
        };
        Ok(self.generate_with(&options)?.source)
    }

    /// Generates source as `options` say: weights inline or in `NAME.weights.bin` (Rust
    /// reads it with `include_bytes!`, C++ with the assembler's `.incbin`), where the scratch
    /// lives, C entry points, a self-test.
    pub fn generate_with(&self, options: &Options) -> Result<Generated> {
        let (lang, name) = (options.lang, options.name.as_str());
        validate_name(lang, name)?;
        match (options.extern_c, lang) {
            (true, Lang::Rust) => {
                return Err(Error::Usage(
                    "--extern-c is for the C++ output (C firmware calls the C++ build)".into(),
                ))
            }
            (true, Lang::C) => {
                return Err(Error::Usage(
                    "--extern-c is for the C++ output: the C header's functions are C already"
                        .into(),
                ))
            }
            _ => {}
        }
        let quantized = match &options.quantize {
            Some(q) => Some(self.quantized_for(q, options)?),
            None => None,
        };
        let graph = match &quantized {
            Some(q) => q.graph.clone(),
            None => self.optimized(),
        };
        let floats = graph.weight_floats();
        let in_file = floats > 0
            && match options.weights {
                WeightsPlacement::Inline => false,
                WeightsPlacement::File => true,
                WeightsPlacement::Auto => floats > WEIGHTS_FILE_THRESHOLD,
            };
        // Rust and C++ block their loops differently, so their weights files differ: a
        // module and a header generated side by side must not overwrite each other's (both
        // would still compile, and one would compute garbage). C++ `a::b` is `a_b.hpp`.
        let weights_file = in_file.then(|| match lang {
            Lang::Rust => format!("{name}.weights.bin"),
            Lang::Cpp => format!("{}.hpp.weights.bin", name.replace("::", "_")),
            Lang::C => format!("{name}.h.weights.bin"),
        });
        let plan = passes::plan_memory(&graph);
        let tuning = match (lang, options.tune) {
            (Lang::Rust, Tune::Host) => &backend::rust::TUNING,
            // The same compilers as C++.
            (Lang::Cpp | Lang::C, Tune::Host) => &backend::cpp::TUNING,
            (Lang::Cpp | Lang::C, Tune::Mcu) => &backend::cpp::MCU_TUNING,
            (Lang::Rust, Tune::Mcu) => {
                return Err(Error::Usage(
                    "--tune mcu is for C and C++ (measured with arm-none-eabi-gcc); no \
                     Cortex-M Rust target is measured here"
                        .into(),
                ))
            }
        };
        let dtype = options.weights_dtype;
        let step = if quantized.is_none() && (options.stream || self.is_stateful()) {
            let step = self.step()?;
            let graph = passes::optimize(step.graph);
            let plan = passes::plan_memory(&graph);
            Some((graph, plan, step.slots))
        } else {
            None
        };
        let step_graph =
            step.as_ref()
                .map(|(graph, plan, slots)| lower::StepGraph { graph, plan, slots });
        let program = lower::lower_with_step(&graph, &plan, step_graph, tuning, dtype).map_err(
            |problems| Error::Layers {
                path: self.path.clone(),
                problems,
            },
        )?;
        let predict = &program.predict;
        if let Some(test) = &options.self_test {
            let lens = |ports: &[lower::Port]| ports.iter().map(|p| p.len).collect::<Vec<_>>();
            test.check(&lens(&predict.inputs), &lens(&predict.outputs))?;
        }
        // Compressed kernels: the accuracy on the samples, and a self-test bound to match.
        let (accuracy, quantized_test) = match dtype {
            WeightsDtype::F32 | WeightsDtype::Q8 | WeightsDtype::I32 => (Vec::new(), None),
            WeightsDtype::F16 | WeightsDtype::Int8 => {
                self.accuracy(&graph, dtype, options.self_test.as_ref())?
            }
        };
        // A quantized model's self-test expects the quantized interpreter's outputs.
        let quantized_test = match (&quantized, &options.self_test) {
            (Some(q), Some(test)) => Some(self.int8_self_test(&q.graph, test, options)?),
            _ => quantized_test,
        };
        let self_test_options = quantized_test.as_ref().or(options.self_test.as_ref());
        let stack_bytes =
            4 * (predict.scratch_len + predict.outputs.iter().map(|o| o.len).sum::<usize>());
        let (scratch, notes) = match options.scratch {
            Some(placement) => (placement, Vec::new()),
            None => {
                let (placement, note) = ScratchPlacement::automatic(lang, stack_bytes);
                (placement, note.into_iter().collect())
            }
        };
        let int8_notes = quantized.iter().flat_map(|q| {
            std::iter::once(q.calibration.describe("calibration"))
                .chain(q.check.as_ref().map(|c| c.describe("check")))
                .map(|line| format!("int8: {line}"))
        });
        let notes: Vec<String> = accuracy
            .into_iter()
            .chain(int8_notes)
            .chain(notes)
            .collect();
        let header = self.header(options, in_file, scratch, &notes, &program);
        let weights_file = weights_file.as_deref();
        let self_test = self_test_options;
        let generated = match lang {
            Lang::Rust => backend::rust::emit(
                &program,
                &backend::rust::Options {
                    header: &header,
                    weights_file,
                    scratch,
                    self_test,
                },
            )?,
            Lang::Cpp => backend::cpp::emit(
                &program,
                &backend::cpp::Options {
                    header: &header,
                    namespace: name,
                    weights_file,
                    // Decimal literals review well; past the file threshold, parse speed wins.
                    hex_weights: floats > WEIGHTS_FILE_THRESHOLD,
                    scratch,
                    extern_c: options.extern_c,
                    self_test,
                },
            )?,
            Lang::C => backend::c::emit(
                &program,
                &backend::c::Options {
                    header: &header,
                    name,
                    weights_file,
                    hex_weights: floats > WEIGHTS_FILE_THRESHOLD,
                    scratch,
                    self_test,
                },
            )?,
        };
        Ok(Generated { notes, ..generated })
    }

    /// The leading comment: tool, source hash, options and totals; never a path or a time.
    fn header(
        &self,
        options: &Options,
        weights_in_file: bool,
        scratch: ScratchPlacement,
        decisions: &[String],
        program: &lower::Program,
    ) -> Vec<String> {
        let s = self.summary();
        let dtype = options.weights_dtype;
        let flash_bytes = match dtype {
            WeightsDtype::F32 if options.quantize.is_none() => s.flash_bytes,
            _ => program.weights.iter().map(backend::stored_bytes).sum(),
        };
        let ram_bytes = match options.quantize {
            None => s.ram_bytes,
            Some(_) => 4 * program.predict.scratch_len + program.predict.scratch_i8_len,
        };
        let mut lines = vec![
            format!(
                "@generated by keras2src {} from a Keras model. Do not edit.",
                env!("CARGO_PKG_VERSION")
            ),
            format!("source sha256: {}", self.sha256.join(" + ")),
            format!(
                "options: --lang {} --name {}{}{}{}{}{}{}{}{}{}",
                options.lang.as_str(),
                options.name,
                if weights_in_file { " --weights file" } else { "" },
                self.input_shapes
                    .iter()
                    .map(|shape| format!(" --input-shape {}", shape_text(shape)))
                    .collect::<String>(),
                match scratch {
                    ScratchPlacement::Stack => String::new(),
                    other => format!(" --scratch {}", other.as_str()),
                },
                if options.extern_c { " --extern-c" } else { "" },
                if options.stream { " --stream" } else { "" },
                match options.tune {
                    Tune::Host => "",
                    Tune::Mcu => " --tune mcu",
                },
                match dtype {
                    WeightsDtype::F32 => String::new(),
                    other => format!(" --weights-dtype {}", other.as_str()),
                },
                match &options.quantize {
                    None => "",
                    Some(q) if q.int8_io => " --quantize int8 --int8-io",
                    Some(_) => " --quantize int8",
                },
                // The sample is in the code; its file's path is not.
                if options.self_test.is_some() {
                    " --emit-test"
                } else {
                    ""
                },
            ),
            format!(
                "{} layers, {} parameters, {} MACs; flash {} bytes (weights), RAM {} bytes (scratch)",
                s.rows.len(),
                s.params,
                s.macs,
                flash_bytes,
                ram_bytes
            ),
        ];
        if let Some(step) = &program.step {
            lines.push(format!(
                "streaming: state {} floats ({} bytes), step scratch {} floats",
                step.state_len(),
                4 * step.state_len(),
                step.entry.scratch_len
            ));
        }
        lines.extend(
            self.graph
                .notes
                .iter()
                .chain(decisions)
                .map(|n| format!("note: {}", naming::comment(n))),
        );
        lines
    }
}

impl Model {
    /// With kernels stored as `dtype`: a note on the accuracy on the self-test's samples
    /// (the float and the compressed interpreter, and Keras's outputs), and the self-test
    /// the code should pass: Keras's outputs, within twice the measured error.
    fn accuracy(
        &self,
        graph: &ir::Graph,
        dtype: WeightsDtype,
        test: Option<&SelfTest>,
    ) -> Result<(Vec<String>, Option<SelfTest>)> {
        let name = dtype.as_str();
        let Some(test) = test else {
            return Ok((
                vec![format!(
                    "kernels stored as {name}: accuracy not measured (give --emit-test SAMPLE \
                     to measure it against Keras's outputs)"
                )],
                None,
            ));
        };
        let compressed =
            ir::quant::dequantized(graph, dtype).map_err(|problems| Error::Layers {
                path: self.path.clone(),
                problems,
            })?;
        let run = |g: &ir::Graph, inputs: &[Vec<f32>]| {
            interp::run(g, inputs)
                .map(|values| interp::outputs(g, &values))
                .map_err(|message| Error::Format {
                    path: test.path.clone(),
                    message,
                })
        };
        // Every sample of the file shaped as the first (which `check` has matched with
        // the model's ports).
        let lens = |ports: &[Vec<f32>]| ports.iter().map(Vec::len).collect::<Vec<_>>();
        let first = (test.inputs.clone(), test.outputs.clone());
        let samples: Vec<&options::IoSample> = std::iter::once(&first)
            .chain(test.samples.iter().skip(1))
            .filter(|(i, o)| lens(i) == lens(&test.inputs) && lens(o) == lens(&test.outputs))
            .collect();
        let mut error = ErrorReport::default();
        for (inputs, keras) in &samples {
            let (float, quantized) = (run(graph, inputs)?, run(&compressed, inputs)?);
            error = error.max(measure_error(&quantized, &float, keras));
        }
        // The figures come from the interpreter, whose math is the platform's: two
        // significant digits, so that the output does not depend on the platform's libm
        // (nor does the self-test's bound, rounded up to one).
        let abs = bound_literal(2.0 * error.vs_keras);
        let lines = vec![
            format!(
                "kernels stored as {name}: max |error| {:.1e} against Keras's outputs on the \
                 {} --emit-test sample{} ({:.1e} against the f32 model; outputs up to {:.1e})",
                error.vs_keras,
                samples.len(),
                if samples.len() == 1 { "" } else { "s" },
                error.vs_float,
                error.magnitude,
            ),
            format!(
                "the self-test allows |got - keras| <= {abs} + {} * |keras| (twice that \
                 error, rounded up)",
                SelfTest::REL
            ),
        ];
        let expected = SelfTest {
            abs: Some(abs),
            ..test.clone()
        };
        Ok((lines, Some(expected)))
    }
}

/// A quantized model (see [`Model::quantized`]).
#[derive(Debug, Clone)]
pub struct Quantized {
    pub graph: ir::Graph,
    /// The int8 model against the f32 model on the calibration samples...
    pub calibration: QuantAccuracy,
    /// ... and on the check samples, if given.
    pub check: Option<QuantAccuracy>,
}

/// How far a quantized model's outputs are from the f32 model's (both in the interpreter).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QuantAccuracy {
    pub samples: usize,
    pub max_abs_error: f32,
    /// The largest |f32 output|, for scale.
    pub magnitude: f32,
    /// For a classifier (the last output has a class axis), how often the int8 model's top
    /// class is the f32 model's.
    pub top1: Option<f32>,
}

impl QuantAccuracy {
    /// One line: `max |error| 1.2e-2 (outputs up to 9.9e-1), top-1 agreement 100% on 64
    /// calibration samples`.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "max |error| {:.1e} against the f32 model (outputs up to {:.1e}){} on {} {what} \
             sample{}",
            self.max_abs_error,
            self.magnitude,
            self.top1
                .map(|t| format!(", top-1 agreement {:.1}%", 100.0 * t))
                .unwrap_or_default(),
            self.samples,
            if self.samples == 1 { "" } else { "s" }
        )
    }
}

/// Largest absolute differences between outputs (NaN-aware: both NaN counts as 0).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct ErrorReport {
    /// The compressed model against Keras.
    pub vs_keras: f32,
    /// The compressed model against the f32 model (same interpreter).
    pub vs_float: f32,
    /// The f32 interpreter against Keras.
    pub float_vs_keras: f32,
    /// The largest |Keras output|.
    pub magnitude: f32,
}

impl ErrorReport {
    /// The larger of each figure (NaN wins).
    pub fn max(self, other: ErrorReport) -> ErrorReport {
        let max = |a: f32, b: f32| if b.is_nan() || b > a { b } else { a };
        ErrorReport {
            vs_keras: max(self.vs_keras, other.vs_keras),
            vs_float: max(self.vs_float, other.vs_float),
            float_vs_keras: max(self.float_vs_keras, other.float_vs_keras),
            magnitude: max(self.magnitude, other.magnitude),
        }
    }
}

/// `x` (at least 1e-5) rounded up to one significant digit, as a literal every language
/// reads (`9e-3`).
fn bound_literal(x: f32) -> String {
    let x = f64::from(x).max(1e-5);
    let mut exponent = x.log10().floor() as i32;
    let mut digit = (x / 10f64.powi(exponent)).ceil() as i32;
    if digit >= 10 {
        digit = 1;
        exponent += 1;
    }
    format!("{}e{exponent}", digit.max(1))
}

/// Measures `quantized` (outputs per port) against `float` and `keras`.
pub(crate) fn measure_error(
    quantized: &[Vec<f32>],
    float: &[Vec<f32>],
    keras: &[Vec<f32>],
) -> ErrorReport {
    let max_diff = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| {
                if x.is_nan() && y.is_nan() {
                    0.0
                } else {
                    (x - y).abs()
                }
            })
            .fold(0f32, |m, d| if d.is_nan() || d > m { d } else { m })
    };
    ErrorReport {
        vs_keras: max_diff(quantized, keras),
        vs_float: max_diff(quantized, float),
        float_vs_keras: max_diff(float, keras),
        magnitude: keras.iter().flatten().fold(0f32, |m, v| m.max(v.abs())),
    }
}

/// Integer inputs are for index layers (Embedding, CategoryEncoding, Discretization,
/// IntegerLookup), which read them directly; a float layer reading one would need a cast
/// the backends do not emit.
fn check_integer_inputs(graph: &ir::Graph, path: &Path) -> Result<()> {
    let problems: Vec<error::LayerProblem> = graph
        .inputs
        .iter()
        .filter(|i| i.dtype == ir::InputDtype::I32)
        .flat_map(|i| graph.consumers(i.tensor).into_iter().map(move |n| (i, n)))
        .filter(|&(_, n)| {
            !matches!(
                graph.nodes[n].op,
                ir::Op::Embedding { .. }
                    | ir::Op::Encode { .. }
                    | ir::Op::Bucketize { .. }
                    | ir::Op::Lookup(_)
                    | ir::Op::SequenceMask {
                        reduce_last: false,
                        ..
                    }
            )
        })
        .map(|(input, n)| error::LayerProblem {
            layer: graph.nodes[n].name.clone(),
            class: graph.nodes[n].class.clone(),
            message: format!(
                "reads the integer input '{}'; integer inputs are supported only for index \
                 layers (Embedding, CategoryEncoding, Discretization, IntegerLookup; declare \
                 the input as float32)",
                error::escape_for_message(&input.name)
            ),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Layers {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// Reads a JSON file, with errors that name it.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        message: format!("not JSON: {e}"),
    })
}

/// `50,8`: a shape as `--input-shape` takes it.
pub fn shape_text(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `--input-shape` text into a shape: `50,8`, or as Python writes it, `(50, 8)`,
/// `[50, 8]`, `(50,)`.
pub fn parse_shape(text: &str) -> Result<Vec<usize>> {
    let shown = error::escape_for_message(text);
    let trimmed = text.trim();
    let inner = [('(', ')'), ('[', ']')]
        .iter()
        .find_map(|&(open, close)| trimmed.strip_prefix(open)?.strip_suffix(close))
        .unwrap_or(trimmed);
    let inner = inner.trim();
    // Python's one-element tuple `(50,)` ends with a comma.
    let inner = inner.strip_suffix(',').unwrap_or(inner);
    let dims: Vec<&str> = inner.split(',').map(str::trim).collect();
    if dims.contains(&"None") {
        return Err(Error::Usage(format!(
            "--input-shape '{shown}' has a None: give every dimension a size (None is what \
             --input-shape replaces), without the batch dimension, like (50, 8)"
        )));
    }
    dims.iter()
        .map(|d| d.parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            Error::Usage(format!(
                "--input-shape '{shown}' is not a list of positive sizes like 50,8 or (50, 8)"
            ))
        })
}

/// Names must be identifiers (C++ namespaces may nest with `::`; a C prefix starts with a
/// letter, as file-scope names starting with `_` are the implementation's).
fn validate_name(lang: Lang, name: &str) -> Result<()> {
    let ident_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let ok = match lang {
        Lang::Rust => ident_ok(name),
        Lang::Cpp => name.split("::").all(ident_ok),
        Lang::C => ident_ok(name) && name.starts_with(|c: char| c.is_ascii_alphabetic()),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--name '{}' is not a valid {} identifier",
            error::escape_for_message(name),
            lang.as_str()
        )))
    }
}

/// The default name: the output file's stem made into an identifier, else `model`.
pub fn default_name(output: Option<&Path>) -> String {
    let stem = output
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str())
        .map(|s| s.split('.').next().unwrap_or(s))
        .unwrap_or("model");
    let mut name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "model_");
    }
    name
}

fn read(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        let saved_model = path.join("saved_model.pb").is_file();
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: if saved_model {
                keras::SAVED_MODEL_HINT.to_string()
            } else {
                "is a directory: give the model file (.keras, .h5, .weights.h5 with --config, \
                 or interchange .json)"
                    .to_string()
            },
        });
    }
    std::fs::read(path).map_err(|source| Error::Io {
        path: PathBuf::from(path),
        source,
    })
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes to a temporary file beside `path`, then renames it over `path`, so readers never
/// see half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
