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

/// The ops of one call on inputs of the given shapes, with their name suffixes.
fn steps_of(class: &str, config: &str, inputs: &[&[usize]], weights: &[Weights]) -> Vec<Step> {
    let kind = parse(&entry(class, config), K3).unwrap();
    kind.steps(inputs, weights).unwrap()
}

fn problems_of(class: &str, config: &str) -> Vec<String> {
    parse(&entry(class, config), K3).unwrap_err()
}

#[test]
fn conv_same_and_causal_padding_are_explicit() {
    let kernel = w(&[4, 2, 3], &[0.0; 24]);
    let steps = steps_of(
        "Conv1D",
        r#"{"filters": 3, "kernel_size": [4], "strides": [2], "padding": "same", "use_bias": false}"#,
        &[&[9, 2]],
        std::slice::from_ref(&kernel),
    );
    let [Step {
        suffix: None,
        op: Op::Conv { window, groups, .. },
        ..
    }] = &steps[..]
    else {
        panic!("{steps:?}")
    };
    // out ceil(9 / 2) = 5; pad (5 - 1) * 2 + 4 - 9 = 3: one before, two after.
    assert_eq!((window.padding.clone(), *groups), (vec![(1, 2)], 1));
    let steps = steps_of(
        "Conv1D",
        r#"{"filters": 3, "kernel_size": 4, "dilation_rate": 2, "padding": "causal", "use_bias": false}"#,
        &[&[9, 2]],
        &[kernel],
    );
    let Op::Conv { window, .. } = &steps[0].op else {
        panic!()
    };
    assert_eq!(window.padding, vec![(6, 0)]);
}

#[test]
fn depthwise_kernel_becomes_grouped() {
    let data: Vec<f32> = (0..18).map(|i| i as f32).collect();
    let steps = steps_of(
        "DepthwiseConv2D",
        r#"{"kernel_size": [1, 3], "depth_multiplier": 2, "activation": "relu"}"#,
        &[&[4, 5, 3]],
        &[w(&[1, 3, 3, 2], &data), w(&[6], &[0.0; 6])],
    );
    let Op::Conv {
        kernel,
        groups,
        activation,
        ..
    } = &steps[0].op
    else {
        panic!()
    };
    assert_eq!(kernel.shape, vec![1, 3, 1, 6]);
    assert_eq!(kernel.data, data);
    assert_eq!((*groups, activation), (3, &Activation::relu()));
}

#[test]
fn separable_conv_is_depthwise_then_pointwise() {
    let steps = steps_of(
        "SeparableConv1D",
        r#"{"filters": 4, "kernel_size": 3, "depth_multiplier": 2, "activation": "tanh"}"#,
        &[&[8, 3]],
        &[
            w(&[3, 3, 2], &[0.0; 18]),
            w(&[1, 6, 4], &[0.0; 24]),
            w(&[4], &[0.0; 4]),
        ],
    );
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].suffix.as_deref(), Some("depthwise"));
    assert_eq!(steps[1].suffix, None);
    assert_eq!(steps[1].inputs, vec![Source::Step(0)]);
    let Op::Conv {
        bias,
        activation,
        groups,
        ..
    } = &steps[0].op
    else {
        panic!()
    };
    assert_eq!((bias, activation, *groups), (&None, &Activation::Linear, 3));
    let Op::Conv {
        kernel,
        bias,
        activation,
        window,
        ..
    } = &steps[1].op
    else {
        panic!()
    };
    assert_eq!(kernel.shape, vec![1, 6, 4]);
    assert!(bias.is_some());
    assert_eq!(*activation, Activation::Tanh);
    assert_eq!(window.size, vec![1]);
}

#[test]
fn channels_first_conv_is_wrapped_and_moves_the_softmax_axis() {
    let steps = steps_of(
        "Conv2D",
        r#"{"filters": 2, "kernel_size": 1, "data_format": "channels_first", "activation": "softmax", "use_bias": false}"#,
        &[&[3, 4, 5]],
        &[w(&[1, 1, 3, 2], &[0.0; 6])],
    );
    let names: Vec<Option<&str>> = steps.iter().map(|s| s.suffix.as_deref()).collect();
    assert_eq!(
        names,
        vec![Some("to_channels_last"), None, Some("to_channels_first")]
    );
    assert_eq!(
        steps[0].op,
        Op::Transpose {
            perm: vec![1, 2, 0]
        }
    );
    assert_eq!(
        steps[2].op,
        Op::Transpose {
            perm: vec![2, 0, 1]
        }
    );
    // Keras's axis -1 of the channels-first output is the width: axis 1 channels-last.
    let Op::Conv { activation, .. } = &steps[1].op else {
        panic!()
    };
    assert_eq!(
        *activation,
        Activation::Axis {
            func: crate::ir::AxisFn::Softmax,
            axis: 1
        }
    );
}

#[test]
fn conv_options_that_are_not_supported_are_named() {
    let err = problems_of(
        "Conv2D",
        r#"{"filters": 2, "kernel_size": 3, "padding": "reflect"}"#,
    );
    assert!(err.iter().any(|e| e.contains("'padding'")), "{err:?}");
    let err = problems_of(
        "Conv2D",
        r#"{"filters": 2, "kernel_size": 3, "padding": "causal"}"#,
    );
    assert!(err.iter().any(|e| e.contains("causal")), "{err:?}");
    let err = problems_of("Conv2D", r#"{"filters": 3, "kernel_size": 3, "groups": 2}"#);
    assert!(err.iter().any(|e| e.contains("groups")), "{err:?}");
    let err = problems_of("Conv2D", r#"{"filters": 3, "kernel_size": [3, 3, 3]}"#);
    assert!(err.iter().any(|e| e.contains("kernel_size")), "{err:?}");
    let err = problems_of("Conv2D", r#"{"kernel_size": 3, "lora_rank": 4}"#);
    assert!(err.iter().any(|e| e.contains("filters")), "{err:?}");
    assert!(err.iter().any(|e| e.contains("lora_rank")), "{err:?}");
    let err = problems_of("DepthwiseConv2D", r#"{"kernel_size": 3, "groups": 2}"#);
    assert!(err.iter().any(|e| e.contains("groups")), "{err:?}");
    let err = problems_of(
        "MaxPooling2D",
        r#"{"pool_size": 2, "data_format": "channels_middle"}"#,
    );
    assert!(err.iter().any(|e| e.contains("data_format")), "{err:?}");
    let err = problems_of("UpSampling2D", r#"{"size": 2, "interpolation": "bicubic"}"#);
    assert!(err
        .iter()
        .any(|e| e.contains("interpolation") && e.contains("bicubic")));
    let err = problems_of(
        "Conv2DTranspose",
        r#"{"filters": 2, "kernel_size": 3, "output_padding": [1]}"#,
    );
    assert!(err.iter().any(|e| e.contains("output_padding")), "{err:?}");
    let err = problems_of("Dot", r#"{"axes": [[1, 2], [1, 2]]}"#);
    assert!(err.iter().any(|e| e.contains("axes")), "{err:?}");
    let err = problems_of("Permute", r#"{"dims": [1, 1]}"#);
    assert!(err.iter().any(|e| e.contains("dims")), "{err:?}");
}

#[test]
fn conv_transpose_output_and_crop() {
    let steps = steps_of(
        "Conv2DTranspose",
        r#"{"filters": 2, "kernel_size": [4, 3], "strides": [1, 2], "padding": "same", "use_bias": false}"#,
        &[&[4, 5, 3]],
        &[w(&[4, 3, 2, 3], &[0.0; 72])],
    );
    let Op::ConvTranspose { output, crop, .. } = &steps[0].op else {
        panic!()
    };
    // Height: full 3 + 4 = 7, output 4, crop 1; width: full 8 + 3 = 11, output 10, crop 0.
    assert_eq!((output.clone(), crop.clone()), (vec![4, 10], vec![1, 0]));
}

#[test]
fn pooling_windows() {
    let steps = steps_of(
        "AveragePooling2D",
        r#"{"pool_size": [3, 2], "strides": null, "padding": "same"}"#,
        &[&[7, 5, 2]],
        &[],
    );
    let Op::Pool { kind, window } = &steps[0].op else {
        panic!()
    };
    assert_eq!(*kind, crate::ir::PoolKind::Average);
    assert_eq!(window.strides, vec![3, 2]);
    // Height: out 3, pad 3 * 3 - 7 = 2; width: out 3, pad 6 - 5 = 1.
    assert_eq!(window.padding, vec![(1, 1), (0, 1)]);
    let steps = steps_of(
        "GlobalMaxPooling2D",
        r#"{"keepdims": true, "data_format": "channels_first"}"#,
        &[&[3, 4, 5]],
        &[],
    );
    let ops: Vec<&Op> = steps.iter().map(|s| &s.op).collect();
    assert_eq!(
        ops,
        vec![
            &Op::Transpose {
                perm: vec![1, 2, 0]
            },
            &Op::GlobalPool {
                kind: crate::ir::PoolKind::Max
            },
            &Op::Reshape {
                target: vec![3, 1, 1]
            },
        ]
    );
    assert_eq!(steps[2].suffix.as_deref(), Some("keepdims"));
}

#[test]
fn padding_and_cropping_forms() {
    let pad =
        |config: &str, input: &[usize]| match &steps_of("ZeroPadding2D", config, &[input], &[])[0]
            .op
        {
            Op::Pad { padding, .. } => padding.clone(),
            other => panic!("{other:?}"),
        };
    assert_eq!(
        pad(r#"{"padding": 2}"#, &[3, 3, 1]),
        vec![(2, 2), (2, 2), (0, 0)]
    );
    assert_eq!(
        pad(r#"{"padding": [1, 3]}"#, &[3, 3, 1]),
        vec![(1, 1), (3, 3), (0, 0)]
    );
    assert_eq!(
        pad(
            r#"{"padding": [[1, 2], [0, 3]], "data_format": "channels_first"}"#,
            &[1, 3, 3]
        ),
        vec![(0, 0), (1, 2), (0, 3)]
    );
    let steps = steps_of("Cropping1D", r#"{"cropping": [1, 2]}"#, &[&[6, 2]], &[]);
    assert_eq!(
        steps[0].op,
        Op::Slice {
            begin: vec![1, 0],
            end: vec![4, 2],
            step: vec![1, 1],
        }
    );
    let kind = parse(&entry("Cropping1D", r#"{"cropping": [3, 3]}"#), K3).unwrap();
    assert!(kind
        .steps(&[&[6, 2]], &[])
        .unwrap_err()
        .contains("cropping"));
}

#[test]
fn merges_concat_and_dot_axes() {
    let steps = steps_of("Add", "{}", &[&[4, 6], &[6]], &[]);
    assert_eq!(steps[0].op, Op::Reshape { target: vec![1, 6] });
    assert_eq!(steps[0].inputs, vec![Source::Input(1)]);
    assert_eq!(steps[1].inputs, vec![Source::Input(0), Source::Step(0)]);
    let kind = parse(&entry("Subtract", "{}"), K3).unwrap();
    assert!(kind.steps(&[&[2], &[2], &[2]], &[]).is_err());
    let steps = steps_of("Concatenate", r#"{"axis": -2}"#, &[&[2, 3], &[4, 3]], &[]);
    assert_eq!(steps[0].op, Op::Concat { axis: 0 });
    let kind = parse(&entry("Concatenate", r#"{"axis": 0}"#), K3).unwrap();
    assert!(kind
        .steps(&[&[2], &[2]], &[])
        .unwrap_err()
        .contains("batch"));
    let steps = steps_of(
        "Dot",
        r#"{"axes": -1, "normalize": true}"#,
        &[&[4, 3], &[5, 3]],
        &[],
    );
    assert_eq!(
        steps[0].op,
        Op::Dot {
            axes: (1, 1),
            normalize: Some(1e7)
        }
    );
    let steps = steps_of("Dot", r#"{"axes": [1, 2]}"#, &[&[4], &[5, 4]], &[]);
    assert_eq!(
        steps[0].op,
        Op::Dot {
            axes: (0, 1),
            normalize: None
        }
    );
    let kind = parse(&entry("Dot", r#"{"axes": 0}"#), K3).unwrap();
    assert!(kind
        .steps(&[&[4], &[4]], &[])
        .unwrap_err()
        .contains("batch"));
}

#[test]
fn single_input_layers_refuse_several_inputs() {
    let kind = parse(&entry("Dense", r#"{"units": 2}"#), K3).unwrap();
    let err = kind
        .steps(&[&[3], &[3]], &[w(&[3, 2], &[0.; 6]), w(&[2], &[0.; 2])])
        .unwrap_err();
    assert!(err.contains("2 tensors"), "{err}");
}

#[test]
fn flatten_channels_first_and_permute() {
    let steps = steps_of(
        "Flatten",
        r#"{"data_format": "channels_first"}"#,
        &[&[3, 4, 5]],
        &[],
    );
    assert_eq!(
        steps[0].op,
        Op::Transpose {
            perm: vec![1, 2, 0]
        }
    );
    assert_eq!(steps[1].op, Op::Reshape { target: vec![-1] });
    let steps = steps_of(
        "Flatten",
        r#"{"data_format": "channels_first"}"#,
        &[&[7]],
        &[],
    );
    assert_eq!(steps.len(), 1);
    let steps = steps_of("Permute", r#"{"dims": [3, 1, 2]}"#, &[&[4, 5, 6]], &[]);
    assert_eq!(
        steps[0].op,
        Op::Transpose {
            perm: vec![2, 0, 1]
        }
    );
    let steps = steps_of("RepeatVector", r#"{"n": 3}"#, &[&[4]], &[]);
    assert_eq!(steps[0].op, Op::Repeat { times: 3 });
}
