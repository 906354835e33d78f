//! Generation from a build script: [`Generator`] carries every option of `keras2src
//! generate` and writes the output atomically into a directory (`OUT_DIR`).

use std::path::{Path, PathBuf};

use crate::{Error, Lang, Model, Options, Result, ScratchPlacement, SelfTest, WeightsPlacement};

/// Generates a model's source at build time.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use keras2src::{Generator, Lang};
///
/// let out_dir = std::env::temp_dir().join("keras2src-doc-generator");
/// std::fs::create_dir_all(&out_dir)?;
/// let written = Generator::from_path("tests/fixtures/models/seed.keras")?
///     .lang(Lang::Rust)
///     .name("model")
///     .write_to(&out_dir)?;
/// assert_eq!(written, vec![out_dir.join("model.rs")]);
/// # Ok(())
/// # }
/// ```
///
/// In `build.rs`, write to `OUT_DIR` and include the module:
/// `mod model { include!(concat!(env!("OUT_DIR"), "/model.rs")); }`. Run from a build
/// script (`OUT_DIR` set), [`Generator::write_to`] prints `cargo:rerun-if-changed` for
/// the model file (and the architecture JSON), and a `cargo:warning` for what it decided
/// on the user's behalf (a working memory too large for the stack).
#[derive(Debug, Clone)]
pub struct Generator {
    model: PathBuf,
    config: Option<PathBuf>,
    input_shapes: Vec<Vec<usize>>,
    options: Options,
    /// The `--emit-test` sample file, read when generating.
    self_test: Option<PathBuf>,
}

impl Generator {
    /// A generator for the model file at `model` (checked to exist): Rust, named `model`,
    /// weights placed as `--weights auto` places them.
    pub fn from_path(model: impl AsRef<Path>) -> Result<Generator> {
        let model = model.as_ref().to_path_buf();
        std::fs::metadata(&model).map_err(|source| Error::Io {
            path: model.clone(),
            source,
        })?;
        Ok(Generator {
            model,
            config: None,
            input_shapes: Vec::new(),
            options: Options::new(Lang::Rust, "model"),
            self_test: None,
        })
    }

    /// The architecture JSON for a bare `.weights.h5` (`--config`).
    pub fn config(mut self, path: impl AsRef<Path>) -> Generator {
        self.config = Some(path.as_ref().to_path_buf());
        self
    }

    /// The whole shape of the next input without the batch dimension (`--input-shape`).
    pub fn input_shape(mut self, shape: &[usize]) -> Generator {
        self.input_shapes.push(shape.to_vec());
        self
    }

    pub fn lang(mut self, lang: Lang) -> Generator {
        self.options.lang = lang;
        self
    }

    /// The Rust module / C++ namespace name / C prefix (`--name`; C++ may nest: `a::b`).
    pub fn name(mut self, name: &str) -> Generator {
        self.options.name = name.to_string();
        self
    }

    /// Where generated Rust keeps its weights (`--weights`).
    pub fn weights(mut self, weights: WeightsPlacement) -> Generator {
        self.options.weights = weights;
        self
    }

    /// Where `predict` gets its working memory (`--scratch`; by default, by size:
    /// [`ScratchPlacement::automatic`]).
    pub fn scratch(mut self, scratch: ScratchPlacement) -> Generator {
        self.options.scratch = Some(scratch);
        self
    }

    /// C++: `extern "C"` entry points `NAME_predict`, ... (`--extern-c`).
    pub fn extern_c(mut self, extern_c: bool) -> Generator {
        self.options.extern_c = extern_c;
        self
    }

    /// How kernels are stored (`--weights-dtype`: f32, f16, or int8 per output channel; see
    /// [`crate::ir::quant`]).
    pub fn weights_dtype(mut self, dtype: crate::WeightsDtype) -> Generator {
        self.options.weights_dtype = dtype;
        self
    }

    /// The core the loops are tuned for (`--tune`).
    pub fn tune(mut self, tune: crate::Tune) -> Generator {
        self.options.tune = tune;
        self
    }

    /// The streaming API, `State` and `step` (`--stream`; stateful models get it anyway).
    pub fn stream(mut self, stream: bool) -> Generator {
        self.options.stream = stream;
        self
    }

    /// A self-test on the Keras input/output pair in `path` (`--emit-test`).
    pub fn emit_test(mut self, path: impl AsRef<Path>) -> Generator {
        self.self_test = Some(path.as_ref().to_path_buf());
        self
    }

    /// The output file's name: `NAME.rs`, `NAME.hpp` or `NAME.h`, `::` written as `_`.
    pub fn file_name(&self) -> String {
        let stem = self.options.name.replace("::", "_");
        match self.options.lang {
            Lang::Rust => format!("{stem}.rs"),
            Lang::Cpp => format!("{stem}.hpp"),
            Lang::C => format!("{stem}.h"),
        }
    }

    /// Reads the model and generates the source, writing nothing.
    pub fn generate(&self) -> Result<crate::Generated> {
        let model =
            Model::load_with_shapes(&self.model, self.config.as_deref(), &self.input_shapes)?;
        let options = Options {
            self_test: self.self_test.as_deref().map(SelfTest::read).transpose()?,
            ..self.options.clone()
        };
        model.generate_with(&options)
    }

    /// Generates into `dir` (the source, and a Rust weights file when there is one), as
    /// [`crate::Generated::write`] writes them; returns the paths written.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        if std::env::var_os("OUT_DIR").is_some() {
            let inputs = std::iter::once(&self.model).chain(&self.config);
            for input in inputs.chain(&self.self_test) {
                println!("cargo:rerun-if-changed={}", input.display());
            }
        }
        let generated = self.generate()?;
        if std::env::var_os("OUT_DIR").is_some() {
            // A build script's stderr is hidden; cargo shows warnings.
            for note in &generated.notes {
                println!("cargo:warning=keras2src: {note}");
            }
        }
        generated.write(&dir.as_ref().join(self.file_name()))
    }
}
