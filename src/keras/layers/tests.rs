//! Unit tests of layer conversion on hand-written configs.

use super::*;
use crate::ir::Activation;
use crate::keras::config::KerasVersion;

const K3: KerasVersion = KerasVersion { major: 3 };

fn entry(class: &str, config: &str) -> LayerEntry {
    let mut e = LayerEntry::new(
        "l".into(),
        class.into(),
        serde_json::from_str(config).unwrap(),
    );
    e.module = Some("keras.layers".into());
    e
}

fn w(shape: &[usize], data: &[f32]) -> Weights {
    Weights::new(shape.to_vec(), data.to_vec()).unwrap()
}

#[test]
fn dense_checks_kernel_shape() {
    let kind = parse(&entry("Dense", r#"{"units": 2, "activation": "relu"}"#), K3).unwrap();
    assert_eq!(kind.weight_names(), ["kernel", "bias"]);
    let op = kind
        .build(&[3], &[w(&[3, 2], &[0.; 6]), w(&[2], &[0.; 2])])
        .unwrap();
    assert!(matches!(op, Op::Dense { activation, .. } if activation == Activation::relu()));
    let err = kind
        .build(&[4], &[w(&[3, 2], &[0.; 6]), w(&[2], &[0.; 2])])
        .unwrap_err();
    assert!(err.contains("kernel"), "{err}");
}

#[test]
fn unknown_options_are_named() {
    let err = parse(&entry("Dense", r#"{"units": 2, "frobnicate": 1}"#), K3).unwrap_err();
    assert!(err[0].contains("frobnicate"), "{err:?}");
    let err = parse(&entry("BatchNormalization", r#"{"renorm": true}"#), K3).unwrap_err();
    assert!(err[0].contains("renorm"), "{err:?}");
    let err = parse(&entry("Dense", r#"{"units": 2, "activation": "zap"}"#), K3).unwrap_err();
    assert!(err[0].contains("zap"), "{err:?}");
}

#[test]
fn batchnorm_follows_tensorflow() {
    let kind = parse(
        &entry("BatchNormalization", r#"{"axis": -1, "epsilon": 0.001}"#),
        K3,
    )
    .unwrap();
    let op = kind
        .build(
            &[2],
            &[
                w(&[2], &[2.0, 1.0]),
                w(&[2], &[0.5, 0.0]),
                w(&[2], &[1.0, -1.0]),
                w(&[2], &[4.0, 0.0]),
            ],
        )
        .unwrap();
    let Op::Affine {
        center,
        scale,
        shift,
        inner,
    } = op
    else {
        panic!()
    };
    assert_eq!(center, None);
    assert_eq!(inner, 1);
    let inv0 = 1.0f32 / (4.0f32 + 0.001).sqrt() * 2.0;
    assert_eq!(scale[0], inv0);
    assert_eq!(shift[0], 0.5 - 1.0 * inv0);
}

#[test]
fn batchnorm_on_first_axis_has_stride() {
    let kind = parse(
        &entry(
            "BatchNormalization",
            r#"{"axis": 1, "center": false, "scale": false}"#,
        ),
        K3,
    )
    .unwrap();
    assert_eq!(kind.weight_names(), ["moving_mean", "moving_variance"]);
    let op = kind
        .build(&[2, 5], &[w(&[2], &[0.0, 0.0]), w(&[2], &[1.0, 1.0])])
        .unwrap();
    assert!(matches!(op, Op::Affine { inner: 5, ref scale, .. } if scale.len() == 2));
}

#[test]
fn normalization_from_config_and_invert() {
    let kind = parse(
        &entry(
            "Normalization",
            r#"{"axis": -1, "mean": [1.0, 2.0], "variance": [4.0, 0.0], "invert": false}"#,
        ),
        K3,
    )
    .unwrap();
    assert!(kind.weight_names().is_empty());
    let Op::Affine {
        center,
        scale,
        shift,
        inner,
    } = kind.build(&[3, 2], &[]).unwrap()
    else {
        panic!()
    };
    assert_eq!(center, Some(vec![1.0, 2.0]));
    assert_eq!(scale, vec![0.5, 1e7]);
    assert_eq!(shift, vec![0.0, 0.0]);
    assert_eq!(inner, 1);
    let kind = parse(
        &entry("Normalization", r#"{"axis": null, "invert": true}"#),
        K3,
    )
    .unwrap();
    assert_eq!(kind.weight_names(), ["mean", "variance", "count"]);
    let Op::Affine {
        center,
        scale,
        shift,
        ..
    } = kind
        .build(&[3], &[w(&[], &[1.0]), w(&[], &[9.0]), w(&[], &[10.0])])
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((center, scale, shift), (None, vec![3.0], vec![1.0]));
}

#[test]
fn softmax_axes() {
    let kind = parse(&entry("Softmax", r#"{"axis": [1]}"#), K3).unwrap();
    let op = kind.build(&[4, 5], &[]).unwrap();
    assert_eq!(
        op,
        Op::Activation(Activation::Axis {
            func: crate::ir::AxisFn::Softmax,
            axis: 0
        })
    );
    let kind = parse(&entry("Softmax", r#"{"axis": 0}"#), K3).unwrap();
    assert!(kind.build(&[4], &[]).unwrap_err().contains("batch"));
    assert!(parse(&entry("Softmax", r#"{"axis": [1, 2]}"#), K3).is_err());
}

#[test]
fn prelu_shared_axes() {
    let kind = parse(&entry("PReLU", r#"{"shared_axes": [1, 2]}"#), K3).unwrap();
    assert!(kind
        .build(&[4, 4, 3], &[w(&[1, 1, 3], &[0.1, 0.2, 0.3])])
        .is_ok());
    assert!(kind
        .build(&[4, 4, 3], &[w(&[4, 4, 3], &[0.0; 48])])
        .is_err());
}

#[test]
fn rescaling_scalars_and_lists() {
    let kind = parse(&entry("Rescaling", r#"{"scale": 0.5, "offset": -1}"#), K3).unwrap();
    assert_eq!(
        kind.build(&[2, 3], &[]).unwrap(),
        Op::Affine {
            center: None,
            scale: vec![0.5],
            shift: vec![-1.0],
            inner: 1
        }
    );
    let kind = parse(
        &entry("Rescaling", r#"{"scale": {"class_name": "__numpy__", "config": {"value": [1, 2, 3], "dtype": "float32"}}, "offset": 0.0}"#),
        K3,
    )
    .unwrap();
    assert_eq!(
        kind.build(&[2, 3], &[]).unwrap(),
        Op::Affine {
            center: None,
            scale: vec![1., 2., 3.],
            shift: vec![0., 0., 0.],
            inner: 1
        }
    );
    assert!(kind.build(&[3, 2], &[]).is_err());
}

#[test]
fn custom_and_unknown_classes() {
    let mut e = entry("MyLayer", "{}");
    e.registered_name = Some("my_pkg>MyLayer".into());
    let err = parse(&e, K3).unwrap_err();
    assert!(
        err[0].contains("custom") && err[0].contains("my_pkg>MyLayer"),
        "{err:?}"
    );
    let err = parse(&entry("Conv9D", "{}"), K3).unwrap_err();
    assert!(err[0].contains("Conv9D"), "{err:?}");
    let err = parse(&entry("Dense", r#"{"units": 2, "dtype": {"class_name": "QuantizedDTypePolicy", "config": {"name": "int8_from_float32"}}}"#), K3)
        .unwrap_err();
    assert!(err[0].contains("quantized"), "{err:?}");
}
