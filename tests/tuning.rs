//! `--tune mcu` changes which values sit in registers, never what is computed: the C of a
//! range of fixtures (dense, convolutions of every kind, the fused convolution + pooling,
//! recurrent, attention, normalisation) built with both tunings gives the same bits, and
//! Keras's numbers. The instruction counts it is for are measured on the emulated
//! Cortex-M4 by tests/firmware.rs.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::{close, io_samples, run, run_all, work_dir};
use keras2src::{Lang, Model, Options, Tune, WeightsPlacement};

const FIXTURES: &[&str] = &[
    "seed",
    "functional_mlp",
    "dense_3d",
    "bench_cnn",
    "conv2d_same",
    "conv2d_strides",
    "conv2d_dilation",
    "conv2d_groups",
    "conv1d_causal",
    "depthwise_conv2d",
    "separable_conv2d",
    "conv2d_transpose",
    "resnet_small",
    "mobilenet_v2",
    "time_distributed_cnn",
    "bench_lstm",
    "gru_acts",
    "lstm_seq",
    "transformer_block",
    "layernorm_plain",
    "maxpool2d_same",
];

struct Fixture {
    name: String,
    model: Model,
    inputs: Vec<Vec<f32>>,
    /// Per sample, every output's values in turn.
    outputs: Vec<Vec<f32>>,
    /// Values per output.
    lens: Vec<usize>,
}

fn fixture(name: &str) -> Fixture {
    let dir = Path::new("tests/fixtures/models");
    let model = Model::load(&dir.join(format!("{name}.keras")), None).unwrap();
    let io: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{name}.io.json"))).unwrap(),
    )
    .unwrap();
    let (mut inputs, outputs) = (io_samples(&io, "inputs"), io_samples(&io, "outputs"));
    assert!(inputs.iter().all(|s| s.len() == 1), "{name}: one input");
    Fixture {
        name: name.to_string(),
        model,
        inputs: inputs.iter_mut().map(|s| s.swap_remove(0)).collect(),
        lens: outputs[0].iter().map(Vec::len).collect(),
        outputs: outputs.into_iter().map(|s| s.concat()).collect(),
    }
}

/// A C program running every fixture's samples through its header generated with `tune`,
/// printing one line of outputs per sample.
fn program(fixtures: &[Fixture], dir: &Path, tune: Tune) -> Command {
    let label = match tune {
        Tune::Host => "host",
        Tune::Mcu => "mcu",
    };
    let mut src = String::from("#include <stdio.h>\n");
    let mut main = String::new();
    for f in fixtures {
        let name = format!("{}_{label}", f.name);
        let options = Options {
            tune,
            weights: WeightsPlacement::Inline,
            scratch: Some(keras2src::ScratchPlacement::Static),
            ..Options::new(Lang::C, &name)
        };
        let generated = f.model.generate_with(&options).unwrap();
        std::fs::write(dir.join(format!("{name}.h")), &generated.source).unwrap();
        let upper = name.to_uppercase();
        writeln!(
            src,
            "#define KERAS2SRC_{upper}_IMPLEMENTATION\n#include \"{name}.h\""
        )
        .unwrap();
        let outs: Vec<String> = (0..f.lens.len()).map(|k| format!("out{k}")).collect();
        writeln!(main, "    {{").unwrap();
        for (out, len) in outs.iter().zip(&f.lens) {
            writeln!(main, "        static float {out}[{len}];").unwrap();
        }
        let prints: String = outs
            .iter()
            .zip(&f.lens)
            .map(|(out, len)| format!("print({out}, {len}); "))
            .collect();
        for sample in &f.inputs {
            let values: Vec<String> = sample
                .iter()
                .map(|&v| keras2src::backend::cpp::float_literal(v))
                .collect();
            writeln!(
                main,
                "        {{\n            static const float in[{}] = {{{}}};\n            \
                 {name}_predict(in, {});\n            {prints}printf(\"\\n\");\n        }}",
                sample.len(),
                values.join(", "),
                outs.join(", ")
            )
            .unwrap();
        }
        writeln!(main, "    }}").unwrap();
    }
    write!(
        src,
        "static void print(const float* v, size_t n) {{\n    size_t i;\n    \
         for (i = 0; i < n; ++i) printf(\" %.9g\", (double)v[i]);\n}}\n\nint main(void) {{\n{main}    return 0;\n}}\n"
    )
    .unwrap();
    let file = dir.join(format!("tune_{label}.c"));
    std::fs::write(&file, src).unwrap();
    let mut cmd = Command::new("gcc");
    cmd.args([
        "-std=c99",
        "-O2",
        "-ffp-contract=off",
        "-Wall",
        "-Wextra",
        "-Werror",
    ])
    .arg("-o")
    .arg(dir.join(format!("tune_{label}")))
    .arg(&file)
    .arg("-lm");
    cmd
}

#[test]
fn mcu_tuning_gives_the_same_bits_as_the_default() {
    let fixtures: Vec<Fixture> = FIXTURES.iter().map(|n| fixture(n)).collect();
    let dir = work_dir("tuning");
    run_all(vec![
        program(&fixtures, &dir.path, Tune::Host),
        program(&fixtures, &dir.path, Tune::Mcu),
    ]);
    let [host, mcu] =
        ["tune_host", "tune_mcu"].map(|exe| run(&mut Command::new(dir.path.join(exe))));
    assert_eq!(host, mcu, "--tune mcu changed the outputs");
    let mut lines = mcu.lines();
    for f in &fixtures {
        for (s, want) in f.outputs.iter().enumerate() {
            let got: Vec<f32> = lines
                .next()
                .unwrap()
                .split_whitespace()
                .map(|v| v.parse().unwrap())
                .collect();
            assert_eq!(got.len(), want.len(), "{}", f.name);
            let ok = got.iter().zip(want).all(|(&g, &w)| close(g, w));
            assert!(ok, "{} sample {s}: {got:?} vs Keras {want:?}", f.name);
        }
    }
}

#[test]
fn mcu_tuning_is_for_c_and_cpp() {
    let model = Model::load(Path::new("tests/fixtures/models/seed.keras"), None).unwrap();
    let options = Options {
        tune: Tune::Mcu,
        ..Options::new(Lang::Rust, "m")
    };
    let err = model.generate_with(&options).unwrap_err().to_string();
    assert!(err.contains("--tune mcu is for C and C++"), "{err}");
}
