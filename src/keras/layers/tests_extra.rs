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
