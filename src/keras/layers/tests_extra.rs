//! Unit tests of `Identity`, the augmentation layers, `LayerScale`, `RMSNormalization`
//! and the refused preprocessing layers, on hand-written configs.

use super::*;
use crate::ir::{NormAxis, NormKind};
use crate::keras::config::KerasVersion;

const K3: KerasVersion = KerasVersion { major: 3 };

fn entry(class: &str, module: Option<&str>, config: &str) -> LayerEntry {
    let mut e = LayerEntry::new(
        "l".into(),
        class.into(),
        serde_json::from_str(config).unwrap(),
    );
    e.module = module.map(str::to_string);
    e
}

fn layer(class: &str, config: &str) -> Result<Box<dyn LayerKind>, Vec<String>> {
    parse(&entry(class, Some("keras.layers"), config), K3)
}

fn w(shape: &[usize], data: &[f32]) -> Weights {
    Weights::new(shape.to_vec(), data.to_vec()).unwrap()
}

#[test]
fn augmentation_layers_are_identities_with_their_options() {
    let kind = layer(
        "RandomRotation",
        r#"{"factor": [-0.2, 0.2], "fill_mode": "reflect", "fill_value": 0.0,
            "interpolation": "bilinear", "seed": null, "data_format": "channels_last"}"#,
    )
    .unwrap();
    assert_eq!(kind.build(&[8, 8, 3], &[]).unwrap(), Op::Identity);
    // tf_keras's options.
    assert!(layer(
        "RandomHeight",
        r#"{"factor": 0.2, "interpolation": "bilinear", "seed": null, "rng_type": "stateful"}"#
    )
    .is_ok());
    assert_eq!(
        layer("Identity", "{}").unwrap().build(&[3], &[]).unwrap(),
        Op::Identity
    );
    let err = layer("RandomFlip", r#"{"mode": "horizontal", "zoom": 2}"#).unwrap_err();
    assert!(err[0].contains("zoom"), "{err:?}");
    for class in ["RandomFlip", "RandAugment", "Solarization", "Identity"] {
        let e = entry(class, Some("keras.layers"), "{}");
        assert_eq!(loose_weight_count(&e), Some(WeightCount::all(0)), "{class}");
    }
    assert!(records_training_default("RandomZoom"));
    assert!(!records_training_default("Dropout"));
}

#[test]
fn layers_that_compute_or_take_strings_are_refused_by_name() {
    let err = layer("AutoContrast", r#"{"value_range": [0, 255]}"#).unwrap_err();
    assert!(
        err[0].contains("AutoContrast") && err[0].contains("inference"),
        "{err:?}"
    );
    for class in [
        "StringLookup",
        "TextVectorization",
        "Hashing",
        "HashedCrossing",
    ] {
        let err = layer(class, "{}").unwrap_err();
        assert!(
            err[0].contains(class) && err[0].contains("before the model"),
            "{err:?}"
        );
    }
}

#[test]
fn layer_scale_only_from_convnext() {
    let config = r#"{"init_values": 1e-6, "projection_dim": 3}"#;
    for module in [
        Some("keras.src.applications.convnext"),
        Some("tf_keras.src.applications.convnext"),
        None,
    ] {
        let mut e = entry("LayerScale", module, config);
        e.registered_name = Some("LayerScale".into());
        let kind = parse(&e, K3).unwrap();
        assert_eq!(kind.weight_names(), ["gamma"]);
        let op = kind.build(&[2, 3], &[w(&[3], &[1.0, -2.0, 0.5])]).unwrap();
        assert_eq!(
            op,
            Op::Affine {
                center: None,
                scale: vec![1.0, -2.0, 0.5],
                shift: vec![0.0; 3],
                inner: 1
            }
        );
        assert!(kind.build(&[2, 4], &[w(&[3], &[1.0; 3])]).is_err());
    }
    let mut e = entry("LayerScale", Some("keras.src.models.other"), config);
    e.registered_name = Some("LayerScale".into());
    assert!(parse(&e, K3).unwrap_err()[0].contains("keras.src.models.other"));
    let mut e = entry("LayerScale", Some("my_model"), config);
    e.registered_name = Some("Custom>LayerScale".into());
    assert!(parse(&e, K3).unwrap_err()[0].contains("custom"));
}

fn ax(len: usize, reduced: bool, param_stride: usize) -> NormAxis {
    NormAxis {
        len,
        reduced,
        param_stride,
    }
}

#[test]
fn rms_norm_scale_broadcasts_as_numpy() {
    let kind = layer("RMSNormalization", r#"{"axis": [-1], "epsilon": 0.5}"#).unwrap();
    assert_eq!(kind.weight_names(), ["scale"]);
    let Op::Normalize {
        view, kind: norm, ..
    } = kind.build(&[4, 6], &[w(&[6], &[1.0; 6])]).unwrap()
    else {
        panic!()
    };
    assert_eq!(norm, NormKind::Rms { epsilon: 0.5 });
    assert_eq!(view, [ax(4, false, 0), ax(6, true, 1)]);
    // Statistics over axis 1 of [4, 6, 6], scale [6] along the last axis.
    let kind = layer("RMSNormalization", r#"{"axis": 2}"#).unwrap();
    let Op::Normalize { view, .. } = kind.build(&[4, 6, 6], &[w(&[6], &[1.0; 6])]).unwrap() else {
        panic!()
    };
    assert_eq!(view, [ax(4, false, 0), ax(6, true, 0), ax(6, false, 1)]);
    // Keras cannot multiply scale [4] into a last axis of 6 either.
    let kind = layer("RMSNormalization", r#"{"axis": 1}"#).unwrap();
    let err = kind.build(&[4, 6], &[w(&[4], &[1.0; 4])]).unwrap_err();
    assert!(err.contains("broadcast"), "{err}");
    let err = kind.build(&[4, 6], &[w(&[6], &[1.0; 6])]).unwrap_err();
    assert!(err.contains("scale"), "{err}");
}

fn lookup_of(config: &str) -> Result<Vec<Step>, String> {
    let kind = layer("IntegerLookup", config).map_err(|e| e.join("; "))?;
    kind.steps(&[&[4]], &[])
}

fn the_lookup(steps: &[Step]) -> crate::ir::Lookup {
    match &steps[0].op {
        Op::Lookup(l) => (**l).clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn integer_lookup_tables_follow_keras() {
    // The special tokens may lead the vocabulary (as get_vocabulary and the assets write it).
    for vocabulary in ["[0, -1, 12, 36]", "[12, 36]"] {
        let steps = lookup_of(&format!(
            r#"{{"vocabulary": {vocabulary}, "mask_token": 0, "num_oov_indices": 1}}"#
        ))
        .unwrap();
        assert_eq!(steps.len(), 1);
        let l = the_lookup(&steps);
        assert_eq!(l.keys, [12.0, 36.0]);
        assert_eq!(l.values, [2.0, 3.0]);
        assert_eq!(
            (l.default, l.mask, l.oov_buckets),
            (1.0, Some((0.0, 0.0)), None)
        );
    }
    // Several OOV buckets; an encoding (mask to int64's maximum, no mask index).
    let steps = lookup_of(
        r#"{"vocabulary": [5, 6], "mask_token": 0, "num_oov_indices": 3, "output_mode": "count"}"#,
    )
    .unwrap();
    let l = the_lookup(&steps);
    assert_eq!(l.values, [3.0, 4.0]);
    assert_eq!(l.oov_buckets, Some((3, 0.0)));
    assert_eq!(l.mask, Some((0.0, i64::MAX as f32)));
    assert_eq!(
        steps[1].op,
        Op::Encode {
            depth: 5,
            mode: crate::ir::EncodeMode::Count
        }
    );
    // Inverted: index -> token, 0 -> the mask token, the rest -> oov_token.
    let l = the_lookup(
        &lookup_of(r#"{"vocabulary": [5, 6], "invert": true, "mask_token": 9, "oov_token": -7}"#)
            .unwrap(),
    );
    assert_eq!((l.keys, l.values), (vec![2.0, 3.0], vec![5.0, 6.0]));
    assert_eq!((l.default, l.mask), (-7.0, Some((0.0, 9.0))));
}

#[test]
fn integer_lookup_refusals_say_why() {
    let cases = [
        (r#"{"vocabulary": null}"#, ".keras archive"),
        (r#"{"vocabulary": "/data/vocab.txt"}"#, "file outside"),
        (r#"{"vocabulary": [1, 2, 1]}"#, "repeats 1"),
        (r#"{"vocabulary": [1, 0], "mask_token": 0}"#, "mask token"),
        (r#"{"vocabulary": [16777216]}"#, "2^24"),
        (r#"{"vocabulary": [1], "output_mode": "tf_idf"}"#, "tf_idf"),
        (
            r#"{"vocabulary": [1], "invert": true, "output_mode": "one_hot"}"#,
            "invert",
        ),
        (
            r#"{"vocabulary": [1], "num_oov_indices": 2, "oov_method": "farmhash"}"#,
            "farmhash",
        ),
        (
            r#"{"vocabulary": [1, 2], "vocabulary_size": 7}"#,
            "vocabulary_size",
        ),
        (
            r#"{"vocabulary": [1], "output_mode": "multi_hot", "sparse": true}"#,
            "sparse",
        ),
    ];
    for (config, words) in cases {
        let err = lookup_of(config).unwrap_err();
        assert!(err.contains(words), "{config}: {err}");
        assert!(
            !err.contains("'vocabulary'=") || words == "2^24",
            "{config}: {err}"
        );
    }
}

#[test]
fn encodings_check_the_shapes_keras_computes() {
    let kind = layer(
        "CategoryEncoding",
        r#"{"num_tokens": 4, "output_mode": "multi_hot"}"#,
    )
    .unwrap();
    assert!(kind.build(&[3], &[]).is_ok());
    assert!(kind.build(&[2, 3], &[]).unwrap_err().contains("first axis"));
    assert!(kind.build(&[], &[]).unwrap_err().contains("batch"));
    let kind = layer(
        "CategoryEncoding",
        r#"{"num_tokens": 4, "output_mode": "one_hot"}"#,
    )
    .unwrap();
    let op = kind.build(&[2, 3], &[]).unwrap();
    assert_eq!(op.output_shape(&[&[2, 3]]).unwrap(), [2, 3, 4]);
    assert_eq!(op.output_shape(&[&[2, 1]]).unwrap(), [2, 4]);
    // Discretization declares what it computes: counts over the first axis.
    let kind = layer(
        "Discretization",
        r#"{"bin_boundaries": [0.0, 1.0], "output_mode": "count", "num_bins": null}"#,
    )
    .unwrap();
    let steps = kind.steps(&[&[2, 3]], &[]).unwrap();
    assert_eq!(steps[1].op.output_shape(&[&[2, 3]]).unwrap(), [3, 3]);
    let err = layer("Discretization", r#"{"bin_boundaries": [1.0, 0.0]}"#).unwrap_err();
    assert!(err[0].contains("not sorted"), "{err:?}");
    let err = layer(
        "Discretization",
        r#"{"num_bins": 4, "bin_boundaries": null}"#,
    )
    .unwrap_err();
    assert!(err[0].contains("bin_boundaries"), "{err:?}");
    let err = layer("CategoryEncoding", r#"{"num_tokens": 4, "sparse": true}"#).unwrap_err();
    assert!(err[0].contains("sparse"), "{err:?}");
}
