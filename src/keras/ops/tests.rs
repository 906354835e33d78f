//! Unit tests of operation nodes: recognition by module and config, arguments, IR ops.

use serde_json::{json, Map, Value};

use super::*;
use crate::ir::{Activation, Op};
use crate::keras::layers::Source;

const K3: KerasVersion = KerasVersion { major: 3 };
const K2: KerasVersion = KerasVersion { major: 2 };

fn entry(class: &str, module: Option<&str>, config: Value) -> LayerEntry {
    let mut e = LayerEntry::new(
        "node".into(),
        class.into(),
        config.as_object().cloned().unwrap_or_default(),
    );
    e.module = module.map(str::to_string);
    e
}

fn tensor(k: usize) -> Value {
    json!({ "__tensor__": k })
}

fn steps(
    e: &LayerEntry,
    version: KerasVersion,
    shapes: &[&[usize]],
    args: Vec<Value>,
) -> Result<Vec<Step>, String> {
    let kind = parse(e, version).map_err(|p| p.join("; "))?;
    kind.operation_steps(shapes, &args, &Map::new())
        .expect("an operation")
}

#[test]
fn an_operation_is_never_the_layer_of_the_same_name() {
    // Keras 3 `x + 3.0`: module keras.src.ops.numpy.
    let op = entry("Add", Some("keras.src.ops.numpy"), json!({"name": "add"}));
    assert!(is_operation(&op, K3));
    // The merge layer.
    let layer = entry(
        "Add",
        Some("keras.layers"),
        json!({"name": "add", "trainable": true, "dtype": "float32"}),
    );
    assert!(!is_operation(&layer, K3));
    // Keras 3 legacy .h5 drops the module: a layer config always has `trainable`.
    let mut h5_op = entry("Add", None, json!({"name": "add"}));
    h5_op.calls.push(crate::keras::config::Call {
        args: vec![tensor(0), json!(3.0)],
        ..Default::default()
    });
    assert!(is_operation(&h5_op, K3));
    let h5_layer = entry("Add", None, json!({"name": "add", "trainable": true}));
    assert!(!is_operation(&h5_layer, K3));
    // Hand-written JSON without either: the merge layer's call takes one list.
    let mut bare = entry("Add", None, json!({"name": "add"}));
    bare.calls.push(crate::keras::config::Call {
        args: vec![json!([tensor(0), tensor(1)])],
        ..Default::default()
    });
    assert!(!is_operation(&bare, K3));
    bare.calls[0].args = vec![tensor(0), json!(3.0)];
    assert!(is_operation(&bare, K3));
    // Keras 2 files have no operations but TF op layers.
    assert!(!is_operation(&h5_op, K2));
    let tf = entry(
        "TFOpLambda",
        Some("tf_keras.src.layers.core.tf_op_layer"),
        json!({"function": "math.add"}),
    );
    assert!(is_operation(&tf, K2));
    // `keras.activations.relu` is an operation `ReLU`, not the ReLU layer.
    let relu = entry(
        "ReLU",
        Some("keras.src.activations.activations"),
        json!({"negative_slope": 0.0}),
    );
    assert!(is_operation(&relu, K3));
}

#[test]
fn constants_stay_where_they_were_written() {
    let add = entry("Add", Some("keras.src.ops.numpy"), json!({"name": "add"}));
    let s = steps(&add, K3, &[&[4]], vec![tensor(0), json!(3.0)]).unwrap();
    assert_eq!(
        s[0].op,
        Op::Activation(Activation::Scalar {
            op: ScalarOp::Add,
            value: 3.0,
            constant_first: false
        })
    );
    let sub = entry("Subtract", Some("keras.src.ops.numpy"), json!({}));
    let s = steps(&sub, K3, &[&[4]], vec![json!(1.5), tensor(0)]).unwrap();
    assert_eq!(
        s[0].op,
        Op::Activation(Activation::Scalar {
            op: ScalarOp::Subtract,
            value: 1.5,
            constant_first: true
        })
    );
    // Two tensors: the merge with broadcasting.
    let s = steps(&sub, K3, &[&[4, 3], &[3]], vec![tensor(0), tensor(1)]).unwrap();
    assert_eq!(s[0].inputs, [Source::Input(0), Source::Input(1)]);
    // A numpy constant aligned with the input; one over the batch axis is refused.
    let mul = entry("Multiply", Some("keras.src.ops.numpy"), json!({}));
    let c = json!({"class_name": "__numpy__", "config": {"value": [[1.0, 2.0, 3.0]], "dtype": "float32"}});
    let s = steps(&mul, K3, &[&[4, 3]], vec![tensor(0), c]).unwrap();
    assert!(matches!(&s[0].op, Op::ConstMerge { constant, .. } if constant.shape == [1, 3]));
    let c =
        json!({"class_name": "__numpy__", "config": {"value": [[1.0], [2.0]], "dtype": "float32"}});
    assert!(steps(&mul, K3, &[&[3]], vec![tensor(0), c])
        .unwrap_err()
        .contains("batch"));
}

#[test]
fn unsupported_operations_are_named_with_their_replacement() {
    let e = entry("Conv", Some("keras.src.ops.nn"), json!({}));
    let err = parse(&e, K3).unwrap_err().join("");
    assert!(err.contains("'Conv'") && err.contains("Conv2D"), "{err}");
    let e = entry(
        "TFOpLambda",
        Some("tf_keras.src.layers.core.tf_op_layer"),
        json!({"function": "nn.conv2d"}),
    );
    let err = parse(&e, K2).unwrap_err().join("");
    assert!(
        err.contains("tf.nn.conv2d") && err.contains("Conv2D"),
        "{err}"
    );
}

#[test]
fn arguments_nobody_reads_are_refused() {
    let mean = entry(
        "Mean",
        Some("keras.src.ops.numpy"),
        json!({"axis": 1, "keepdims": false, "where": 3}),
    );
    let err = steps(&mean, K3, &[&[4, 3]], vec![tensor(0)]).unwrap_err();
    assert!(err.contains("'where'"), "{err}");
    let mean = entry(
        "Mean",
        Some("keras.src.ops.numpy"),
        json!({"axis": null, "keepdims": false}),
    );
    let err = steps(&mean, K3, &[&[4, 3]], vec![tensor(0)]).unwrap_err();
    assert!(err.contains("batch"), "{err}");
}

#[test]
fn subscripts() {
    let item = entry("GetItem", Some("keras.src.ops.numpy"), json!({}));
    let slice = |start: Value, stop: Value, step: Value| json!({"class_name": "__slice__", "config": {"start": start, "stop": stop, "step": step}});
    let all = slice(Value::Null, Value::Null, Value::Null);
    // x[:, -3:, 1::2]
    let key = json!([
        all,
        slice(json!(-3), Value::Null, Value::Null),
        slice(json!(1), Value::Null, json!(2))
    ]);
    let s = steps(&item, K3, &[&[5, 6]], vec![tensor(0), key]).unwrap();
    assert_eq!(
        s[0].op,
        Op::Slice {
            begin: vec![2, 1],
            end: vec![5, 6],
            step: vec![1, 2]
        }
    );
    // x[..., 0] drops the last axis.
    let key = json!([{"class_name": "__ellipsis__", "config": {}}, 0]);
    let s = steps(&item, K3, &[&[5, 6]], vec![tensor(0), key]).unwrap();
    assert_eq!(s.last().unwrap().op, Op::Reshape { target: vec![5] });
    // x[0] indexes the batch axis.
    let err = steps(&item, K3, &[&[5, 6]], vec![tensor(0), json!(0)]).unwrap_err();
    assert!(err.contains("batch"), "{err}");
}

#[test]
fn hostile_split_sizes_are_refused() {
    let tf = entry(
        "TFOpLambda",
        Some("tf_keras.src.layers.core.tf_op_layer"),
        json!({"function": "split"}),
    );
    let kind = parse(&tf, K2).unwrap();
    let mut kwargs = Map::new();
    kwargs.insert("num_or_size_splits".into(), json!([i64::MAX, i64::MAX, 3]));
    kwargs.insert("axis".into(), json!(1));
    let err = kind
        .operation_steps(&[&[6, 2]], &[tensor(0)], &kwargs)
        .unwrap()
        .unwrap_err();
    assert!(err.contains("split"), "{err}");
}

#[test]
fn cumulative_ops_are_refused_where_they_would_differ() {
    let op = |class: &str, config: Value| entry(class, Some("keras.src.ops.numpy"), config);
    // Along axis 1 of the sample (axis 2 with the batch).
    let sum = op(
        "Cumsum",
        json!({"name": "cumsum", "axis": 2, "dtype": null}),
    );
    let got = steps(&sum, K3, &[&[5, 4]], vec![tensor(0)]).unwrap();
    assert!(matches!(
        got[0].op,
        Op::Cumulative {
            kind: crate::ir::CumulativeKind::Sum,
            axis: 1
        }
    ));
    // axis=None flattens the batch too.
    let flat = op(
        "Cumprod",
        json!({"name": "cumprod", "axis": null, "dtype": null}),
    );
    let err = steps(&flat, K3, &[&[5, 4]], vec![tensor(0)]).unwrap_err();
    assert!(err.contains("axis"), "{err}");
    let cast = op(
        "Cumsum",
        json!({"name": "cumsum", "axis": 1, "dtype": "int32"}),
    );
    let err = steps(&cast, K3, &[&[5, 4]], vec![tensor(0)]).unwrap_err();
    assert!(err.contains("int32"), "{err}");
    // tf.math.cumsum(x, axis=1, exclusive=True).
    let tf = entry(
        "TFOpLambda",
        Some("tf_keras.src.layers.core.tf_op_layer"),
        json!({"function": "math.cumsum"}),
    );
    let kind = parse(&tf, K2).unwrap();
    let mut kwargs = Map::new();
    kwargs.insert("axis".into(), json!(1));
    kwargs.insert("exclusive".into(), json!(true));
    let err = kind
        .operation_steps(&[&[5, 4]], &[tensor(0)], &kwargs)
        .unwrap()
        .unwrap_err();
    assert!(err.contains("exclusive"), "{err}");
}
