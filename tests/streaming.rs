//! Streaming (`State`, `step`): feeding a sequence one time step at a time equals Keras.
//!
//! Two kinds of reference: stateful models Keras called batch after batch, carrying the
//! state, with `reset_states()` between two streams (`NAME.stream.json`, written by
//! make_fixtures.py), and ordinary recurrent models given `--stream`, each sample a stream
//! of its own, against Keras's `predict` on the whole sequence. A sequence output is checked
//! at every step, a last-step output at the end of each call; the first call of a stream
//! is also checked through `predict`. Rust, C++ and C each build one program for all cases,
//! at the same time; C must give C++'s bits.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use common::{close, io_samples, run, run_all, work_dir};
use keras2src::ir::InputDtype;
use keras2src::{interp, Lang, Model, Options};

const FIXTURES: &str = "tests/fixtures/models";

/// One call of a stream: its input (the whole call's sequence, flat) and Keras's output.
struct Call {
    reset: bool,
    input: Vec<f32>,
    output: Vec<f32>,
}

struct Case {
    ident: String,
    model: Model,
    /// Whether the model is generated with `--stream` (the others are stateful).
    flag: bool,
    calls: Vec<Call>,
    steps: usize,
    integer: bool,
}

fn model_path(name: &str) -> String {
    let k3 = format!("{FIXTURES}/{name}.keras");
    if Path::new(&k3).exists() {
        k3
    } else {
        format!("{FIXTURES}/{name}.k2.h5")
    }
}

/// A stateful model and its recorded calls.
fn stateful(name: &str) -> Case {
    let model = Model::load(Path::new(&model_path(name)), None).unwrap();
    assert!(model.is_stateful(), "{name} has no stateful layer");
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/{name}.stream.json")).unwrap(),
    )
    .unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        let values = v.as_array().unwrap().iter();
        values.map(|x| x.as_f64().unwrap() as f32).collect()
    };
    let calls = doc["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Call {
            reset: c["reset"].as_bool().unwrap(),
            input: floats(&c["inputs"]),
            output: floats(&c["outputs"][0]),
        })
        .collect();
    case(name, model, false, calls)
}

/// An ordinary recurrent model given `--stream`: each Keras sample is a stream of one call.
fn flagged(name: &str) -> Case {
    let model = Model::load(Path::new(&model_path(name)), None).unwrap();
    assert!(!model.is_stateful());
    let io_path = model_path(name)
        .replace(".keras", ".io.json")
        .replace(".k2.h5", ".k2.io.json");
    let io: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(io_path).unwrap()).unwrap();
    let (inputs, outputs) = (io_samples(&io, "inputs"), io_samples(&io, "outputs"));
    let calls = inputs
        .into_iter()
        .zip(outputs)
        .map(|(mut x, mut y)| Call {
            reset: true,
            input: x.swap_remove(0),
            output: y.swap_remove(0),
        })
        .collect();
    case(name, model, true, calls)
}

fn case(name: &str, model: Model, flag: bool, calls: Vec<Call>) -> Case {
    let graph = &model.graph;
    assert_eq!((graph.inputs.len(), graph.outputs.len()), (1, 1), "{name}");
    let input = &graph.inputs[0];
    Case {
        ident: name.to_string(),
        flag,
        steps: graph.shape(input.tensor)[0],
        integer: input.dtype == InputDtype::I32,
        model,
        calls,
    }
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = ["stream_lstm_gru", "stream_rnn_last", "k2_stream_lstm"]
        .into_iter()
        .map(stateful)
        .collect();
    let streamable = [
        "bench_lstm",
        "gru_acts",
        "gru_reset_after",
        "k2_gru",
        "k2_text_gru",
        "lstm_acts",
        "lstm_last",
        "lstm_seq",
        "simple_rnn_nobias",
    ];
    cases.extend(streamable.into_iter().map(flagged));
    cases
}

/// What each call's steps must give: per step, the expected values (None where Keras gives
/// no output at that step: a last-step output before the end).
fn expected(case: &Case, call: &Call, step_len: usize) -> Vec<Option<Vec<f32>>> {
    let sequence = call.output.len() == case.steps * step_len;
    assert!(sequence || call.output.len() == step_len, "{}", case.ident);
    (0..case.steps)
        .map(|t| match (sequence, t + 1 == case.steps) {
            (true, _) => Some(call.output[t * step_len..(t + 1) * step_len].to_vec()),
            (false, true) => Some(call.output.clone()),
            (false, false) => None,
        })
        .collect()
}

fn options(case: &Case, lang: Lang) -> Options {
    Options {
        stream: case.flag,
        scratch: Some(keras2src::ScratchPlacement::Stack),
        weights: keras2src::WeightsPlacement::Inline,
        ..Options::new(lang, &case.ident)
    }
}

fn literal_list(values: &[f32], integer: bool, lang: Lang) -> String {
    let text: Vec<String> = values
        .iter()
        .map(|&v| match (integer, lang) {
            (true, _) => (v as i32).to_string(),
            (false, Lang::Rust) => common::rust_literal(v),
            (false, _) => keras2src::backend::cpp::float_literal(v),
        })
        .collect();
    text.join(", ")
}

/// The Rust program: for each case and call, one line of every step's outputs, then (on
/// a stream's first call) one line of `predict`'s.
fn rust_program(cases: &[Case], dir: &Path) -> Command {
    let mut src = String::from("#![deny(warnings)]\n");
    let mut main = String::new();
    for case in cases {
        let generated = case
            .model
            .generate_with(&options(case, Lang::Rust))
            .unwrap();
        std::fs::write(dir.join(format!("{}.rs", case.ident)), &generated.source).unwrap();
        writeln!(src, "mod {0} {{ include!(\"{0}.rs\"); }}", case.ident).unwrap();
        let ty = if case.integer { "i32" } else { "f32" };
        writeln!(main, "    {{\n        use {} as m;", case.ident).unwrap();
        writeln!(main, "        let mut state = m::State::new();").unwrap();
        for call in &case.calls {
            let values = literal_list(&call.input, case.integer, Lang::Rust);
            writeln!(
                main,
                "        let input: [{ty}; m::INPUT_LEN] = [{values}];\n        \
                 if {} {{ state.reset(); }}\n        \
                 let mut line = std::vec::Vec::new();\n        \
                 for t in 0..{} {{\n            \
                 let x: &[{ty}; m::STEP_INPUT_LEN] = input[t * m::STEP_INPUT_LEN..(t + 1) * m::STEP_INPUT_LEN].try_into().unwrap();\n            \
                 line.extend(m::step(&mut state, x));\n        }}\n        \
                 print(&line);",
                call.reset, case.steps
            )
            .unwrap();
            if call.reset {
                writeln!(main, "        print(&m::predict(&input));").unwrap();
            }
        }
        writeln!(main, "    }}").unwrap();
    }
    write!(
        src,
        "fn print(values: &[f32]) {{\n    \
         let text: std::vec::Vec<std::string::String> = values.iter().map(|v| format!(\"{{v:?}}\")).collect();\n    \
         println!(\"{{}}\", text.join(\" \"));\n}}\n\nfn main() {{\n{main}}}\n"
    )
    .unwrap();
    std::fs::write(dir.join("stream_rust.rs"), src).unwrap();
    let mut cmd = Command::new("rustc");
    cmd.args(["--edition=2021", "-O", "-o"])
        .arg(dir.join("stream_rust"))
        .arg(dir.join("stream_rust.rs"));
    cmd
}

/// The C++ or C program, as [`rust_program`].
fn c_program(cases: &[Case], dir: &Path, lang: Lang) -> Command {
    let cpp = lang == Lang::Cpp;
    let mut src = String::from("#include <stdio.h>\n#include <stdint.h>\n#include <string.h>\n");
    let mut main = String::new();
    for case in cases {
        let generated = case.model.generate_with(&options(case, lang)).unwrap();
        let name = &case.ident;
        let header = format!("{name}.{}", if cpp { "hpp" } else { "h" });
        std::fs::write(dir.join(&header), &generated.source).unwrap();
        if !cpp {
            writeln!(
                src,
                "#define KERAS2SRC_{}_IMPLEMENTATION",
                name.to_uppercase()
            )
            .unwrap();
        }
        writeln!(src, "#include \"{header}\"").unwrap();
        let ty = if case.integer { "int32_t" } else { "float" };
        let upper = name.to_uppercase();
        let (state_ty, reset, step, predict, in_len, step_in, step_out, out_len) = if cpp {
            (
                format!("{name}::State"),
                "state.reset();".to_string(),
                format!("{name}::step(state, "),
                format!("{name}::predict("),
                format!("{name}::kInputLen"),
                format!("{name}::kStepInputLen"),
                format!("{name}::kStepOutputLen"),
                format!("{name}::kOutputLen"),
            )
        } else {
            (
                format!("{name}_State"),
                format!("{name}_reset(&state);"),
                format!("{name}_step(&state, "),
                format!("{name}_predict("),
                format!("{upper}_INPUT_LEN"),
                format!("{upper}_STEP_INPUT_LEN"),
                format!("{upper}_STEP_OUTPUT_LEN"),
                format!("{upper}_OUTPUT_LEN"),
            )
        };
        writeln!(
            main,
            "    {{\n        {state_ty} state;\n        float line[{}][{step_out}];\n        float whole[{out_len}];\n        int t;\n        memset(&state, 0xff, sizeof state);  /* reset must clear it */",
            case.steps
        )
        .unwrap();
        for call in &case.calls {
            let values = literal_list(&call.input, case.integer, lang);
            writeln!(
                main,
                "        {{\n        static const {ty} input[{in_len}] = {{{values}}};\n        \
                 if ({}) {{ {reset} }}\n        \
                 for (t = 0; t < {}; ++t) {step}input + t * {step_in}, line[t]);\n        \
                 print(&line[0][0], {} * {step_out});",
                i32::from(call.reset),
                case.steps,
                case.steps
            )
            .unwrap();
            if call.reset {
                writeln!(
                    main,
                    "        {predict}input, whole);\n        print(whole, {out_len});"
                )
                .unwrap();
            }
            writeln!(main, "        }}").unwrap();
        }
        writeln!(main, "    }}").unwrap();
    }
    write!(
        src,
        "static void print(const float* v, size_t n) {{\n    size_t i;\n    \
         for (i = 0; i < n; ++i) printf(i ? \" %.9g\" : \"%.9g\", (double)v[i]);\n    \
         printf(\"\\n\");\n}}\n\nint main(void) {{\n{main}    return 0;\n}}\n"
    )
    .unwrap();
    let (file, exe) = if cpp {
        ("stream_cpp.cpp", "stream_cpp")
    } else {
        ("stream_c.c", "stream_c")
    };
    std::fs::write(dir.join(file), src).unwrap();
    let mut cmd = Command::new(if cpp { "g++" } else { "gcc" });
    cmd.args(if cpp {
        ["-std=c++17", "-O2", "-ffp-contract=off"]
    } else {
        ["-std=c99", "-O2", "-ffp-contract=off"]
    })
    // One copy of each layer (tests/dispatch.rs builds with dispatch).
    .args([
        "-DKERAS2SRC_NO_DISPATCH",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-o",
    ])
    .arg(dir.join(exe))
    .arg(dir.join(file))
    .arg("-lm");
    cmd
}

fn parse(text: &str) -> Vec<Vec<f32>> {
    text.lines()
        .map(|line| {
            line.split_whitespace()
                .map(|v| v.parse::<f32>().unwrap())
                .collect()
        })
        .collect()
}

/// Checks one language's lines against Keras; returns the mismatches.
fn check(cases: &[Case], lines: &[Vec<f32>], lang: &str) -> Vec<String> {
    let mut lines = lines.iter();
    let mut bad = Vec::new();
    for case in cases {
        let step_len = case.model_step_len();
        for (c, call) in case.calls.iter().enumerate() {
            let steps = lines.next().unwrap();
            assert_eq!(steps.len(), case.steps * step_len, "{lang} {}", case.ident);
            for (t, want) in expected(case, call, step_len).into_iter().enumerate() {
                let Some(want) = want else { continue };
                let got = &steps[t * step_len..(t + 1) * step_len];
                if !got.iter().zip(&want).all(|(&g, &w)| close(g, w)) {
                    bad.push(format!(
                        "{lang} {} call {c} step {t}: got {got:?}, Keras {want:?}",
                        case.ident
                    ));
                }
            }
            if call.reset {
                let whole = lines.next().unwrap();
                if !whole.iter().zip(&call.output).all(|(&g, &w)| close(g, w)) {
                    bad.push(format!("{lang} {} call {c}: predict differs", case.ident));
                }
            }
        }
    }
    assert!(lines.next().is_none(), "{lang}: extra output lines");
    bad
}

trait StepLen {
    fn model_step_len(&self) -> usize;
}

impl StepLen for Case {
    /// Values of the output at one step.
    fn model_step_len(&self) -> usize {
        let step = self.model.step().unwrap();
        let g = &step.graph;
        keras2src::ir::numel(g.shape(g.outputs[0].tensor))
    }
}

#[test]
fn step_by_step_equals_keras_in_every_language() {
    let cases = cases();
    let dir = work_dir("streaming");
    let commands = vec![
        rust_program(&cases, &dir.path),
        c_program(&cases, &dir.path, Lang::Cpp),
        c_program(&cases, &dir.path, Lang::C),
    ];
    run_all(commands);
    let outputs: Vec<Vec<Vec<f32>>> = ["stream_rust", "stream_cpp", "stream_c"]
        .iter()
        .map(|exe| parse(&run(&mut Command::new(dir.path.join(exe)))))
        .collect();
    let mut bad = Vec::new();
    for (lines, lang) in outputs.iter().zip(["Rust", "C++", "C"]) {
        bad.extend(check(&cases, lines, lang));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let bits = |lines: &Vec<Vec<f32>>| -> Vec<Vec<u32>> {
        lines
            .iter()
            .map(|l| l.iter().map(|v| v.to_bits()).collect())
            .collect()
    };
    assert_eq!(
        bits(&outputs[1]),
        bits(&outputs[2]),
        "C and C++ differ in bits"
    );
    // The streaming C is as clean under clang -Weverything as the rest.
    if common::have_clang() {
        let idents: Vec<&str> = cases.iter().map(|c| c.ident.as_str()).collect();
        common::clang_checks_c(&dir.path, &idents, false);
    }
}

/// The step graph through the reference interpreter, state carried by hand.
#[test]
fn the_interpreter_streams_as_keras() {
    for case in cases() {
        let step = case.model.step().unwrap();
        let step_len = case.model_step_len();
        let f = case.calls[0].input.len() / case.steps;
        let mut state = vec![0.0f32; step.state_len()];
        for (c, call) in case.calls.iter().enumerate() {
            if call.reset {
                state.iter_mut().for_each(|v| *v = 0.0);
            }
            for (t, want) in expected(&case, call, step_len).into_iter().enumerate() {
                let x = call.input[t * f..(t + 1) * f].to_vec();
                let values = interp::run(&step.graph, &[x, state.clone()]).unwrap();
                let mut out = interp::outputs(&step.graph, &values);
                state = out.pop().unwrap();
                if let Some(want) = want {
                    let ok = out[0].iter().zip(&want).all(|(&g, &w)| close(g, w));
                    assert!(
                        ok,
                        "{} call {c} step {t}: {:?} vs {want:?}",
                        case.ident, out[0]
                    );
                }
            }
        }
    }
}

/// What cannot stream is refused by layer, with the reason.
#[test]
fn models_that_cannot_stream_are_refused_by_layer() {
    let refused = [
        ("lstm_go_backwards", "'lstm' (LSTM)", "forward only"),
        (
            "lstm_pool",
            "'gap' (GlobalAveragePooling1D)",
            "across time steps",
        ),
        ("lstm_state", "'lstm' (LSTM)", "returns its states"),
        ("mask_masking_gru", "(NotEqual)", "masking"),
        (
            "text_bilstm",
            "'bilstm/backward' (Bidirectional)",
            "forward only",
        ),
        ("seed", "", "no recurrent layer"),
    ];
    for (name, layer, why) in refused {
        let model = Model::load(Path::new(&model_path(name)), None).unwrap();
        let options = Options {
            stream: true,
            ..Options::new(Lang::Rust, "m")
        };
        let err = model.generate_with(&options).unwrap_err().to_string();
        assert!(err.contains(layer) && err.contains(why), "{name}: {err}");
    }
}
