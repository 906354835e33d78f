//! The bench models: the Keras model file, one sample's input and Keras's output.

use std::path::PathBuf;

use serde_json::Value;

/// (key, fixture) of every bench model, in report order.
pub const MODELS: [(&str, &str); 7] = [
    ("b1", "functional_mlp"),
    ("b2", "bench_cnn"),
    ("b3", "bench_lstm"),
    ("mobilenet", "mobilenet_v2"),
    ("transformer", "transformer_block"),
    ("efficientnet", "efficientnet_b0"),
    ("resnet50", "resnet50"),
];

/// Bench models too large for git: their `.keras`, `.io.json` and peer files are made by
/// `bench/export_peers.py --large` into the gitignored `bench/large/`, and the model is
/// skipped, saying so, where they are missing.
pub const LARGE: [&str; 2] = ["efficientnet_b0", "resnet50"];

/// The command that makes the large models' files.
pub const MAKE_LARGE: &str = "python bench/export_peers.py --large";

/// Bench models that also get int8 rows (`--quantize int8`, calibrated on
/// `tests/fixtures/models/<name>.calib.json`), and why LiteRT has no int8 model of one.
pub const INT8: [(&str, Option<&str>); 3] = [
    ("bench_cnn", None),
    (
        "bench_lstm",
        Some("no int8 LiteRT model: TFLite's int8 calibrator crashes on its LSTM (see tests/fixtures/make_int8_fixtures.py)"),
    ),
    ("mobilenet_v2", None),
];

/// The command that makes `bench/models/<name>.int8.tflite`.
pub const MAKE_INT8: &str = "python bench/export_peers.py --int8";

/// One bench model, ready to run.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub key: String,
    pub name: String,
    /// `tests/fixtures/models/<name>.keras` (`bench/large/` for [`LARGE`] models)
    pub keras: PathBuf,
    /// Where its peer files are: `bench/models/` (`bench/large/` for [`LARGE`] models).
    pub peer_dir: PathBuf,
    /// The input's shape without the batch dimension.
    pub input_shape: Vec<usize>,
    /// The first sample's input, flat.
    pub input: Vec<f32>,
    /// Keras's output on it, flat.
    pub expected: Vec<f32>,
    /// `tests/fixtures/models/<name>.calib.json` for an [`INT8`] model.
    pub calib: Option<PathBuf>,
}

impl Fixture {
    /// Reads `<name>.io.json`; `Err` says why the model cannot be benchmarked.
    pub fn load(key: &str, name: &str) -> Result<Fixture, String> {
        let large = LARGE.contains(&name);
        let root = crate::repo_root();
        let (dir, peer_dir) = if large {
            (root.join("bench/large"), root.join("bench/large"))
        } else {
            (
                root.join("tests/fixtures/models"),
                root.join("bench/models"),
            )
        };
        let keras = dir.join(format!("{name}.keras"));
        let io_path = dir.join(format!("{name}.io.json"));
        if !keras.exists() || !io_path.exists() {
            let how = if large {
                format!(
                    "; run `{MAKE_LARGE}` (in the fixture venv plus \
                     bench/requirements-export.txt, see bench/README.md) to create it"
                )
            } else {
                String::new()
            };
            return Err(format!(
                "{} or its .io.json is missing{how}",
                crate::shown(&keras)
            ));
        }
        let text = std::fs::read_to_string(&io_path).map_err(|e| e.to_string())?;
        let io: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let (inputs, outputs) = (&io["inputs"], &io["outputs"]);
        let ports = |v: &Value| v.as_array().map_or(0, Vec::len);
        if ports(inputs) != 1 || ports(outputs) != 1 {
            return Err("the harness runs models with one input and one output".into());
        }
        let first = |port: &Value| -> Result<Vec<f32>, String> {
            port["data"][0]
                .as_array()
                .ok_or("no sample in .io.json")?
                .iter()
                .map(|v| v.as_f64().map(|x| x as f32).ok_or("not a number".into()))
                .collect()
        };
        let input_shape = inputs[0]["shape"]
            .as_array()
            .ok_or("no input shape in .io.json")?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize).ok_or("bad input shape"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Fixture {
            key: key.into(),
            name: name.into(),
            keras,
            peer_dir,
            input_shape,
            input: first(&inputs[0])?,
            expected: first(&outputs[0])?,
            calib: INT8
                .iter()
                .any(|(n, _)| *n == name)
                .then(|| dir.join(format!("{name}.calib.json"))),
        })
    }

    /// The peer models beside the harness: `bench/models/<name>.<ext>` (listed even when
    /// missing, to say so), and `<name>.fused.<ext>` when present (a recurrent layer as
    /// the format's own fused op: that engine's best case). `bench/large/` for [`LARGE`].
    pub fn peer_models(&self, ext: &str) -> Vec<PeerModel> {
        let dir = &self.peer_dir;
        let plain = PeerModel {
            variant: "",
            path: dir.join(format!("{}.{ext}", self.name)),
        };
        let fused = PeerModel {
            variant: "-fused",
            path: dir.join(format!("{}.fused.{ext}", self.name)),
        };
        let mut models = vec![plain];
        models.extend(fused.path.exists().then_some(fused));
        models
    }

    /// The int8 LiteRT model, `bench/models/<name>.int8.tflite`, or why there is none.
    pub fn int8_peer_model(&self) -> Result<PeerModel, String> {
        if let Some((_, Some(why))) = INT8.iter().find(|(n, _)| *n == self.name) {
            return Err((*why).into());
        }
        let path = self.peer_dir.join(format!("{}.int8.tflite", self.name));
        if !path.exists() {
            return Err(format!(
                "{} is missing; run `{MAKE_INT8}` (in the fixture venv, see bench/README.md)",
                crate::shown(&path)
            ));
        }
        Ok(PeerModel {
            variant: "-int8",
            path,
        })
    }

    /// Writes the input as raw little-endian f32 into `dir`, for the workers.
    pub fn write_input(&self, dir: &std::path::Path) -> Result<PathBuf, String> {
        let path = dir.join("input.f32");
        let bytes: Vec<u8> = self.input.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

/// A model file for a peer engine.
#[derive(Debug, Clone)]
pub struct PeerModel {
    /// Appended to the engine's key: `""`, `"-fused"` or `"-int8"`.
    pub variant: &'static str,
    pub path: PathBuf,
}

impl PeerModel {
    /// The engine's key and label for this model.
    pub fn name(&self, key: &str, label: &str) -> (String, String) {
        let label = match self.variant {
            "" => label.to_string(),
            "-int8" => format!("{label}, int8 model"),
            _ => format!("{label}, fused-op model"),
        };
        (format!("{key}{}", self.variant), label)
    }
}

/// Agreement with Keras: the largest absolute error, and whether every element is within
/// `1e-5 + 1e-4 |keras|`.
pub fn agreement(got: &[f32], keras: &[f32]) -> (f32, bool) {
    if got.len() != keras.len() {
        return (f32::INFINITY, false);
    }
    got.iter()
        .zip(keras)
        .fold((0.0f32, true), |(max, ok), (&g, &k)| {
            let err = (g - k).abs();
            let within = err <= 1e-5 + 1e-4 * k.abs();
            (
                if err.is_nan() {
                    f32::INFINITY
                } else {
                    max.max(err)
                },
                ok && within,
            )
        })
}
