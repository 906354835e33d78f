//! What `keras2src generate` (and [`crate::Generator`]) can be asked for, beyond the model.

use std::path::{Path, PathBuf};

use crate::ir::WeightsDtype;
use crate::{Error, Lang, Result};

/// Every generation option; [`Options::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub lang: Lang,
    /// The Rust module / C++ namespace name (C++ may nest: `a::b`) / C prefix.
    pub name: String,
    pub weights: WeightsPlacement,
    /// Where `predict` gets its working memory; `None` decides by size
    /// ([`ScratchPlacement::automatic`]).
    pub scratch: Option<ScratchPlacement>,
    /// C++ only: `extern "C"` entry points `NAME_predict`, ... for C callers.
    pub extern_c: bool,
    /// A self-test on one Keras input/output pair (`--emit-test FILE`).
    pub self_test: Option<SelfTest>,
    /// Adds the streaming API (`State`, `step`) to a recurrent model (`--stream`); a model
    /// with stateful layers gets it without asking.
    pub stream: bool,
    /// The core the loops are tuned for (`--tune`).
    pub tune: Tune,
    /// How kernels are stored (`--weights-dtype`; see [`crate::ir::quant`]).
    pub weights_dtype: WeightsDtype,
    /// Full int8 (`--quantize int8`; see [`crate::passes::quantize`]).
    pub quantize: Option<Quantization>,
}

/// What post-training int8 quantization needs: samples to calibrate on, and whether the
/// ports are int8.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantization {
    /// Per sample, the values of each model input (`--calibrate`).
    pub calibration: Vec<Vec<Vec<f32>>>,
    /// More samples the accuracy is reported on (`--check-samples`), not calibrated on.
    pub check: Vec<Vec<Vec<f32>>>,
    /// int8 inputs and outputs (`--int8-io`), their parameters exported as constants.
    pub int8_io: bool,
}

/// The core generated loops are tuned for; the numbers are the same for every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tune {
    /// A desktop or server CPU with SIMD (x86-64, AArch64).
    Host,
    /// A microcontroller core without SIMD (Cortex-M4F, M7): C and C++ only.
    Mcu,
}

impl Tune {
    pub fn as_str(self) -> &'static str {
        match self {
            Tune::Host => "host",
            Tune::Mcu => "mcu",
        }
    }
}

impl Options {
    /// `lang` named `name`, weights and working memory placed by size, nothing extra.
    pub fn new(lang: Lang, name: &str) -> Options {
        Options {
            lang,
            name: name.to_string(),
            weights: WeightsPlacement::Auto,
            scratch: None,
            extern_c: false,
            self_test: None,
            stream: false,
            tune: Tune::Host,
            weights_dtype: WeightsDtype::F32,
            quantize: None,
        }
    }
}

/// Where generated code keeps its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsPlacement {
    /// Literals in the source, one array row per line (reviewable as a diff).
    Inline,
    /// A file beside the source, read at compile time: Rust's `NAME.weights.bin` with
    /// `include_bytes!`, C++'s `NAME.hpp.weights.bin` and C's `NAME.h.weights.bin` with the
    /// assembler's `.incbin`.
    File,
    /// A file above [`WEIGHTS_FILE_THRESHOLD`] floats, else inline.
    Auto,
}

/// Weights above this many floats go to a file under [`WeightsPlacement::Auto`]: measured
/// here, rustc needs about 10 s and 700 MB per million inline floats, and 4.2 s for
/// MobileNetV2 0.35 (400k floats); g++ -O2 88 s and 7.0 GB for ResNet50's 23.6 M (3.3 s
/// and 123 MB from the file).
pub const WEIGHTS_FILE_THRESHOLD: usize = 262_144;

/// Where `predict` gets its working memory (`SCRATCH_LEN` floats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchPlacement {
    /// A local array in `predict`: reentrant, costs the scratch in stack.
    Stack,
    /// No `predict`: the caller passes the buffer to `predict_with_scratch`.
    Caller,
    /// One `static` buffer shared by every call: no stack, not reentrant.
    Static,
}

/// `predict` keeps its arrays (working memory and outputs) on the stack only up to this
/// many bytes when the placement is left to keras2src: 256 KiB fits the stacks programs
/// usually get (8 MiB for a Linux main thread, 2 MiB for a Rust thread, 1 MiB on Windows,
/// 512 KiB for a macOS thread) with room for the caller; ResNet50's 9.6 MB (224×224) does
/// not.
pub const STACK_SCRATCH_LIMIT: usize = 262_144;

impl ScratchPlacement {
    /// The placement when the user names none: the stack when `predict`'s arrays
    /// (`stack_bytes`) fit [`STACK_SCRATCH_LIMIT`]; above it, Rust leaves the buffer to the
    /// caller (`static` would need `unsafe`, and an atomic that thumbv6m lacks) and C++ and
    /// C use a static buffer (`predict` stays; not reentrant). Returns the placement and,
    /// when it is not the stack, why, for stderr and the header comment.
    pub fn automatic(lang: Lang, stack_bytes: usize) -> (ScratchPlacement, Option<String>) {
        if stack_bytes <= STACK_SCRATCH_LIMIT {
            return (ScratchPlacement::Stack, None);
        }
        let (placement, what) = match lang {
            Lang::Rust => (
                ScratchPlacement::Caller,
                "no `predict`: call `predict_with_scratch` with a buffer of SCRATCH_LEN floats",
            ),
            Lang::Cpp | Lang::C => (
                ScratchPlacement::Static,
                "`predict` uses one static buffer and is not reentrant",
            ),
        };
        let note = format!(
            "predict would put {stack_bytes} bytes on the stack (working memory and outputs), \
             over the {STACK_SCRATCH_LIMIT}-byte limit: generated with --scratch {} ({what}); \
             pass --scratch stack|caller|static to choose",
            placement.as_str()
        );
        (placement, Some(note))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScratchPlacement::Stack => "stack",
            ScratchPlacement::Caller => "caller",
            ScratchPlacement::Static => "static",
        }
    }
}

/// One sample's values per model input and Keras's per output.
pub type IoSample = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// One sample and Keras's outputs for it, compiled into a self-test.
#[derive(Debug, Clone, PartialEq)]
pub struct SelfTest {
    /// Flat values per model input (token ids for integer inputs).
    pub inputs: Vec<Vec<f32>>,
    /// Flat values per model output, as Keras computed them.
    pub outputs: Vec<Vec<f32>>,
    /// The file, for error messages.
    pub path: PathBuf,
    /// Every sample the file holds, `(inputs, outputs)` per port, the first being
    /// `inputs` and `outputs`: `--weights-dtype` measures its error on all of them.
    pub samples: Vec<IoSample>,
    /// The absolute term of the bound when not [`SelfTest::ABS`]: with compressed kernels,
    /// twice the error measured against Keras, rounded up (literal text, like `9e-3`).
    pub abs: Option<String>,
}

impl SelfTest {
    /// The bound every self-test checks, DESIGN.md's: `|got - keras| <= ABS + REL *
    /// |keras|`, as literal text each language reads (C++ adds its `f`).
    pub const ABS: &'static str = "1e-5";
    pub const REL: &'static str = "1e-4";

    /// The absolute term of this self-test's bound.
    pub fn abs(&self) -> &str {
        self.abs.as_deref().unwrap_or(Self::ABS)
    }

    /// Reads `{"inputs": [...], "outputs": [...]}`: one entry per model input and output,
    /// each a flat list of numbers, or an object whose `"data"` is one (or a list of
    /// samples, of which the first is taken; the fixtures' `.io.json` files are this).
    pub fn read(path: &Path) -> Result<SelfTest> {
        let bad = |message: String| Error::Format {
            path: path.to_path_buf(),
            message,
        };
        let doc = crate::read_json(path)?;
        // Per port, its samples.
        let ports = |key: &str| -> Result<Vec<Vec<Vec<f32>>>> {
            let list = doc.get(key).and_then(|v| v.as_array()).ok_or_else(|| {
                bad(format!(
                    "expected an object with \"{key}\": a list with one entry per model {}",
                    key.trim_end_matches('s')
                ))
            })?;
            list.iter()
                .enumerate()
                .map(|(k, entry)| {
                    flat_samples(entry).ok_or_else(|| {
                        bad(format!(
                            "{key}[{k}] must be a flat list of numbers, or an object whose \
                             \"data\" is one or a list of them"
                        ))
                    })
                })
                .collect()
        };
        let (inputs, outputs) = (ports("inputs")?, ports("outputs")?);
        // The samples every port has (a flat list is one sample).
        let count = inputs
            .iter()
            .chain(&outputs)
            .map(Vec::len)
            .min()
            .unwrap_or(0);
        let sample = |ports: &[Vec<Vec<f32>>], s: usize| -> Vec<Vec<f32>> {
            ports.iter().map(|p| p[s].clone()).collect()
        };
        let samples: Vec<_> = (0..count)
            .map(|s| (sample(&inputs, s), sample(&outputs, s)))
            .collect();
        let first = |ports: &[Vec<Vec<f32>>]| -> Vec<Vec<f32>> {
            ports
                .iter()
                .map(|p| p.first().cloned().unwrap_or_default())
                .collect()
        };
        Ok(SelfTest {
            inputs: first(&inputs),
            outputs: first(&outputs),
            path: path.to_path_buf(),
            samples,
            abs: None,
        })
    }

    /// Checks the sample against the model's ports: counts and lengths.
    pub(crate) fn check(&self, inputs: &[usize], outputs: &[usize]) -> Result<()> {
        for (what, got, want) in [
            ("inputs", &self.inputs, inputs),
            ("outputs", &self.outputs, outputs),
        ] {
            let lens: Vec<usize> = got.iter().map(Vec::len).collect();
            if lens != want {
                return Err(Error::Format {
                    path: self.path.clone(),
                    message: format!(
                        "the self-test {what} have {lens:?} values per port; the model's \
                         {what} have {want:?}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A flat list of numbers, or `{"data": flat}` or `{"data": [flat, ...]}`: the samples.
fn flat_samples(entry: &serde_json::Value) -> Option<Vec<Vec<f32>>> {
    let numbers = |v: &serde_json::Value| -> Option<Vec<f32>> {
        v.as_array()?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect()
    };
    let data = match entry {
        serde_json::Value::Object(o) => o.get("data")?,
        other => other,
    };
    let list = data.as_array()?;
    match list.first() {
        // Samples: the first must be numbers; the others count up to the first that is not
        // (a NaN written by Python as null).
        Some(first) if first.is_array() => Some(
            std::iter::once(numbers(first)?)
                .chain(list[1..].iter().map_while(numbers))
                .collect(),
        ),
        _ => Some(vec![numbers(data)?]),
    }
}
