//! Embedding indices and integer inputs end to end: out-of-range indices are clamped the
//! same way by the interpreter and by the generated Rust and C++; integer inputs are
//! accepted only by index layers.

mod common;

use std::path::{Path, PathBuf};

use common::{run_both, Case};
use keras2src::{interp, Lang, Model};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/models")
        .join(name)
}

fn interp_outputs(model: &Model, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let graph = model.optimized();
    let values = interp::run(&graph, inputs).unwrap();
    interp::outputs(&graph, &values)
}

#[test]
fn out_of_range_indices_are_clamped_everywhere() {
    let int_model = Model::load(&fixture("embedding_functional.keras"), None).unwrap();
    let float_model = Model::load(&fixture("k2_embedding_float.k2.h5"), None).unwrap();
    // Indices beyond both ends, and for the float input NaN, infinities and fractions.
    let int_samples = vec![
        vec![
            vec![-7.0, 0.0, 11.0, 12.0, 1_000_000.0],
            vec![0.5, -0.5, 1.0],
        ],
        vec![
            vec![3.0, -1.0, 2_147_483_647.0, 5.0, 6.0],
            vec![0.0, 0.0, 0.0],
        ],
    ];
    let float_samples = vec![
        vec![vec![-3.5, -0.9, 0.9, 10.99, 11.0, 1e30]],
        vec![vec![
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            2.5,
            7.0,
            1e9,
        ]],
    ];
    // The clamped equivalents, which Keras itself accepts.
    let int_clamped = [[0.0, 0.0, 11.0, 11.0, 11.0], [3.0, 0.0, 11.0, 5.0, 6.0]];
    let float_clamped = [
        [0.0, 0.0, 0.0, 10.0, 10.0, 10.0],
        [0.0, 10.0, 0.0, 2.0, 7.0, 10.0],
    ];
    for (s, sample) in int_samples.iter().enumerate() {
        let clamped = vec![int_clamped[s].to_vec(), sample[1].clone()];
        assert_eq!(
            interp_outputs(&int_model, sample),
            interp_outputs(&int_model, &clamped)
        );
    }
    for (s, sample) in float_samples.iter().enumerate() {
        assert_eq!(
            interp_outputs(&float_model, sample),
            interp_outputs(&float_model, &[float_clamped[s].to_vec()])
        );
    }
    let want: Vec<Vec<Vec<Vec<f32>>>> = vec![
        int_samples
            .iter()
            .map(|s| interp_outputs(&int_model, s))
            .collect(),
        float_samples
            .iter()
            .map(|s| interp_outputs(&float_model, s))
            .collect(),
    ];
    let cases = vec![
        Case {
            ident: "clamp_int".into(),
            model: int_model,
            samples: int_samples,
            weights: keras2src::WeightsPlacement::Inline,
        },
        Case {
            ident: "clamp_float".into(),
            model: float_model,
            samples: float_samples,
            weights: keras2src::WeightsPlacement::File,
        },
    ];
    let dir = common::work_dir("clamp");
    let (rust, cpp) = run_both(&cases, &dir.path);
    for (c, case_want) in want.iter().enumerate() {
        for (s, w) in case_want.iter().enumerate() {
            for (k, out) in w.iter().enumerate() {
                for (i, &v) in out.iter().enumerate() {
                    assert!(
                        common::close(rust[c][s][k][i], v),
                        "Rust case {c} sample {s}"
                    );
                    assert_eq!(rust[c][s][k][i].to_bits(), cpp[c][s][k][i].to_bits());
                }
            }
        }
    }
}

#[test]
fn integer_inputs_have_integer_types_in_the_api() {
    let model = Model::load(&fixture("embedding_functional.keras"), None).unwrap();
    let rust = model.generate(Lang::Rust, "m").unwrap();
    assert!(
        rust.contains(
            "pub fn predict(\n    input0: &[i32; INPUT0_LEN],\n    input1: &[f32; INPUT1_LEN],"
        ),
        "{rust}"
    );
    assert!(rust.contains("fn embedding(input: &[i32; 5], output: &mut [f32; 20])"));
    let cpp = model.generate(Lang::Cpp, "m").unwrap();
    assert!(cpp.contains("#include <cstdint>"));
    assert!(cpp.contains(
        "inline void predict(const std::int32_t* input0, const float* input1, float* output)"
    ));
    assert!(cpp.contains("inline void embedding(const std::int32_t* __restrict input"));
}

#[test]
fn integer_inputs_feed_only_index_layers() {
    // The same model with the float input declared int32: a Dense would read it.
    let path = fixture("embedding_functional.interchange.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for layer in doc["model"]["config"]["layers"].as_array_mut().unwrap() {
        if layer["config"]["name"] == "feats" {
            layer["config"]["dtype"] = "int32".into();
        }
    }
    let dir = common::work_dir("int-input");
    let file = dir.path.join("int_feats.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let err = Model::load(&file, None).unwrap_err().to_string();
    assert!(
        err.contains("dense") && err.contains("reads the integer input 'feats'"),
        "{err}"
    );
    assert!(!err.contains("'ids'"), "{err}");
}
