//! `--tune mcu` changes which values sit in registers, never what is computed: the C of a
//! range of fixtures (dense, convolutions of every kind, the fused convolution + pooling,
//! recurrent, attention, normalisation) built with both tunings gives the same bits, and
//! Keras's numbers; with int8 kernels, the same bits. The instruction counts it is for are measured on the emulated
//! Cortex-M4 by tests/firmware.rs.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::{close, io_samples, run, run_all, work_dir};
use keras2src::{Lang, Model, Options, Tune, WeightsDtype, WeightsPlacement};

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
fn program(fixtures: &[Fixture], dir: &Path, tune: Tune, dtype: WeightsDtype) -> Command {
    let label = format!("{}_{}", tune.as_str(), dtype.as_str());
    let mut src = String::from("#include <stdio.h>\n");
    let mut main = String::new();
    for f in fixtures {
        let name = format!("{}_{label}", f.name);
        let options = Options {
            tune,
            weights_dtype: dtype,
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
        // Bits do not depend on the level without contraction; -O1 compiles in half the time.
        "-O1",
        "-ffp-contract=off",
        "-Wall",
        "-Wextra",
        "-Werror",
        // One copy of each layer (tests/dispatch.rs builds with dispatch): 40 s, not 110.
        "-DKERAS2SRC_NO_DISPATCH",
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
    // int8 kernels too (their scales are read per output channel, through the packing).
    let int8: Vec<Fixture> = ["seed", "dense_3d", "bench_cnn", "conv2d_same", "bench_lstm"]
        .iter()
        .map(|n| fixture(n))
        .collect();
    run_all(vec![
        program(&fixtures, &dir.path, Tune::Host, WeightsDtype::F32),
        program(&fixtures, &dir.path, Tune::Mcu, WeightsDtype::F32),
        program(&int8, &dir.path, Tune::Host, WeightsDtype::Int8),
        program(&int8, &dir.path, Tune::Mcu, WeightsDtype::Int8),
    ]);
    let outputs = ["host_f32", "mcu_f32", "host_int8", "mcu_int8"]
        .map(|label| run(&mut Command::new(dir.path.join(format!("tune_{label}")))));
    let [host, mcu, host_int8, mcu_int8] = outputs;
    assert_eq!(host, mcu, "--tune mcu changed the outputs");
    assert_eq!(
        host_int8, mcu_int8,
        "--tune mcu changed the outputs of int8 kernels"
    );
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
