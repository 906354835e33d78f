#!/usr/bin/env python3
"""Export the benchmark models to the peer engines' formats (issue 5).

For each bench model NAME it loads the committed tests/fixtures/models/NAME.keras and writes
    bench/models/NAME.onnx     Keras 3 `model.export(path, format="onnx")` (tf2onnx inside)
    bench/models/NAME.tflite   Keras 3 `model.export(path, format="litert")`, float32
both with the batch dimension fixed to 1 (tract wants concrete shapes; every other dimension
of the bench models is fixed already). The files are committed: the benchmark harness and
bench/peers.py need no TensorFlow.

How to run (from the repository root, in the fixture venv plus bench/requirements-export.txt):

    /path/to/venv/bin/python bench/export_peers.py            # every bench model
    /path/to/venv/bin/python bench/export_peers.py bench_cnn  # only some

The only deviation from plain `model.export`: tf2onnx 1.17 has no converter for TensorFlow's
Erfc, which Keras 3's exact gelu uses (transformer_block's Dense gelu:
0.5 * x * erfc(-x / sqrt(2))), so this script registers one (erfc(x) = 1 - Erf(x), ONNX Erf
is in opset 9+) before exporting. Without it tf2onnx writes an `Erfc` node that no ONNX
runtime accepts.

bench_lstm also gets bench/models/bench_lstm.fused.{onnx,tflite}: Keras 3 writes its LSTM as a
TensorFlow while loop, which tf2onnx turns into an ONNX Loop (onnxruntime runs it ~20x slower
than its LSTM kernel) and the LiteRT converter into a WHILE subgraph. A tf_keras (Keras 2) twin
of the model with the same weights is recognised by both converters as one fused op: ONNX
`LSTM` (tf2onnx.convert.from_keras) and LiteRT UNIDIRECTIONAL_SEQUENCE_LSTM
(TFLiteConverter.from_keras_model). Those are the engines' best case, so the benchmark should
time them; the plain exports stay for the record (the issue asks for `model.export`).

Reproducible, mostly: each model is exported in a fresh process with PYTHONHASHSEED=0, and the
ONNX files' node and tensor names are renumbered (canonical_names); then every .tflite file and
the ONNX files of functional_mlp, bench_cnn, mobilenet_v2 and bench_lstm.fused are
byte-identical between runs. transformer_block.onnx (tf2onnx's einsum rewrite picks different but
equivalent transposes: its choices depend on Python object ids) still varies between runs, and
bench_lstm.onnx did in one of five runs (an Identity node inside the Loop body kept or not); every
variant passes bench/check_peers.py. `--check-reproducible` exports everything twice into temporary
directories and compares.

Large bench models (issue 16): efficientnet_b0 and resnet50 are keras.applications models
(EfficientNetB0, ResNet50; 224x224x3, weights=None, classes=10) of 4.1 M and 23.6 M parameters:
16 MB and 94 MB per file format, too much for git. For them this script first builds the Keras
model itself, the way tests/fixtures/make_fixtures.py builds mobilenet_v2 (its functions:
seeded random weights, BatchNorm statistics calibrated on 8 random images, outputs checked
non-degenerate, the .keras zip normalised), and writes everything into the gitignored
bench/large/:
    bench/large/NAME.keras  NAME.io.json  NAME.onnx  NAME.tflite
They are not exported by default (they take a few minutes); name them, or `--large`:

    /path/to/venv/bin/python bench/export_peers.py --large   # efficientnet_b0 and resnet50

int8 (full post-training quantization) peers: `--int8` writes bench/models/NAME.int8.tflite for
NAME in bench_cnn and mobilenet_v2 (or the names given after it), converted by
tests/fixtures/make_int8_fixtures.py's own conversion (convert_child, imported, not copied:
from_saved_model of a batch-1 export, Optimize.DEFAULT, representative dataset = the samples of
tests/fixtures/models/NAME.calib.json in order, TFLITE_BUILTINS_INT8), with float32 input and
output (float_io=True: QUANTIZE and DEQUANTIZE ops at the ports, int8 inside), so that
bench/peers.py feeds it the same float input as every other engine. keras2src's int8 is
calibrated on the same file. bench_lstm has none: TFLite's int8 calibrator crashes on its LSTM
(see make_int8_fixtures.py). Needs only tensorflow and keras (not tf2onnx or onnx):

    /path/to/venv/bin/python bench/export_peers.py --int8
"""

import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_DETERMINISTIC_OPS"] = "1"
os.environ.pop("TF_USE_LEGACY_KERAS", None)

import filecmp  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
OUT = ROOT / "bench" / "models"
BENCH_MODELS = ["functional_mlp", "bench_cnn", "bench_lstm", "mobilenet_v2", "transformer_block"]
# Built here rather than in make_fixtures.py, into the gitignored LARGE (see the docstring).
LARGE = ROOT / "bench" / "large"
LARGE_MODELS = ["efficientnet_b0", "resnet50"]
INT8_MODELS = ["bench_cnn", "mobilenet_v2"]  # --int8: NAME.int8.tflite
FUSED = ["bench_lstm"]  # also exported as NAME.fused.{onnx,tflite} from a tf_keras twin
# Config keys a Keras 3 layer shares with its tf_keras namesake (enough for the bench models).
TWIN_KEYS = {"LSTM": ["units", "activation", "recurrent_activation", "use_bias", "return_sequences",
                      "return_state", "go_backwards", "unit_forget_bias", "unroll"],
             "Dense": ["units", "activation", "use_bias"]}
PINNED = {"tensorflow": "2.21.0", "keras": "3.15.1", "tf2onnx": "1.17.0", "onnx": "1.23.2"}


def register_erfc():
    """tf2onnx handler for TensorFlow's Erfc: Erf followed by 1 - erf."""
    import numpy as np
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class Erfc:  # noqa: F841 (registered by the decorator)
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            node.type = "Erf"
            one = ctx.make_const(utils.make_name("erfc_one"), np.array(1.0, np.float32))
            ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(node.name + "_1_minus"),
                                          inputs=[one.output[0], node.output[0]])


def export_one(name, out_dir):
    """Export one model (call in a fresh process for reproducible node names)."""
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import tensorflow as tf
    import keras
    import onnx
    import tf2onnx

    found = {"tensorflow": tf.__version__, "keras": keras.__version__, "tf2onnx": tf2onnx.__version__,
             "onnx": onnx.__version__}
    if found != PINNED:
        sys.exit(f"export_peers.py: need {PINNED}, found {found}; see bench/requirements-export.txt")
    tf.config.experimental.enable_op_determinism()
    register_erfc()

    if name in LARGE_MODELS:
        build_large(name, out_dir)
    source = out_dir if name in LARGE_MODELS else FIXTURES
    model = keras.models.load_model(source / f"{name}.keras", compile=False)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        sys.exit(f"{name}: bench models have one input and one output")
    shape = (1,) + tuple(int(d) for d in model.inputs[0].shape[1:])
    # The input keeps the Keras input layer's name (ONNX input name, LiteRT signature key).
    sig = [tf.TensorSpec(shape, tf.float32, name=model.inputs[0].name)]

    onnx_path, tflite_path = out_dir / f"{name}.onnx", out_dir / f"{name}.tflite"
    model.export(str(onnx_path), format="onnx", input_signature=sig, verbose=False)
    model.export(str(tflite_path), format="litert", input_signature=sig, verbose=False)
    canonical_names(onnx_path)

    check(name, model, shape, onnx_path, tflite_path)
    if name in FUSED:
        twin = tf_keras_twin(model, shape)
        onnx_path, tflite_path = out_dir / f"{name}.fused.onnx", out_dir / f"{name}.fused.tflite"
        tf2onnx.convert.from_keras(twin, input_signature=sig, opset=15, output_path=str(onnx_path))
        tflite_path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(twin).convert())
        canonical_names(onnx_path)
        check(f"{name}.fused", model, shape, onnx_path, tflite_path,
              want_onnx_op="LSTM", want_tflite_op="UNIDIRECTIONAL_SEQUENCE_LSTM")


def make_fixtures():
    """tests/fixtures/make_fixtures.py as a module (it checks the pinned versions on import)."""
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "tests" / "fixtures" / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_large(name, out_dir):
    """Writes out_dir/NAME.keras and NAME.io.json for a large bench model: make_fixtures.py's
    make_k3 steps for mobilenet_v2 (seed from the name, random weights, BatchNorm statistics
    calibrated, non-degenerate outputs, normalised zip, reload must give the same outputs), but
    only the .keras file and 2 samples. classes=10 (not 1000) with the head's kernel scaled by
    2, so that the softmax is far from uniform and differs between samples."""
    import keras
    import numpy as np

    mf = make_fixtures()
    keras.backend.clear_session()
    seed = mf.fixture_seed(name)
    keras.utils.set_random_seed(seed)
    rng = np.random.RandomState(seed)
    shape = (224, 224, 3)
    if name == "efficientnet_b0":
        model = keras.applications.EfficientNetB0(weights=None, input_shape=shape, classes=10)
        low, high = 0.0, 255.0  # its own Rescaling(1/255) and Normalization come first: pixels in
    elif name == "resnet50":
        model = keras.applications.ResNet50(weights=None, input_shape=shape, classes=10)
        low, high = -1.0, 1.0
    else:
        sys.exit(f"export_peers.py: no recipe for large model {name}")
    # randomize_weights leaves Normalization alone: EfficientNetB0's keeps mean 0, variance 1.
    mf.randomize_weights(model, rng, {"predictions": 2.0})
    xs = [rng.uniform(low, high, (2,) + shape).astype(np.float32)]
    mf.calibrate_batchnorm(model, rng.uniform(low, high, (8,) + shape).astype(np.float32), rng)
    ys = mf.run(model, xs)
    mf.check_nondegenerate(name, ys)
    mf._check_softmax_varies(name, ys)
    path = out_dir / f"{name}.keras"
    model.save(str(path))
    mf.normalize_keras_zip(path)
    mf.write_io(out_dir / f"{name}.io.json", model, xs, ys)
    mf.assert_same(name, ".keras", ys, mf.run(keras.models.load_model(path, compile=False), xs))
    print(f"{name}: {model.count_params()} parameters, {path.stat().st_size} B keras, outputs "
          f"{np.round(ys[0], 3).tolist()}", flush=True)


def canonical_names(path):
    """Rename every node and every tensor but the model's input and output, in the order a walk
    of the graph meets them (n0, n1, ... and t0, t1, ...), and sort initializers and value_info
    by the new names. tf2onnx names some tensors after Python object ids (its einsum rewriter)
    and numbers nodes from a counter whose order depends on set iteration, so without this two
    exports differ in names only. Graph inputs that no node reads are dropped."""
    import onnx

    m = onnx.load(str(path))
    # Drop graph inputs that no node reads: tf2onnx folds EfficientNetB0's Normalization (its
    # mean and variance, tensors Keras captured) into constants but leaves their placeholders
    # behind as two more inputs of shape [1, 1, 1, 3].
    used = set()

    def reads(g):
        for n in g.node:
            used.update(n.input)
            for a in n.attribute:
                for sub in list(a.graphs) + ([a.g] if a.HasField("g") else []):
                    reads(sub)

    reads(m.graph)
    inputs = [v for v in m.graph.input if v.name in used]
    del m.graph.input[:]
    m.graph.input.extend(inputs)
    keep = {v.name for v in m.graph.input} | {v.name for v in m.graph.output}
    names, counter = {}, [0]

    def new(name):
        if name == "" or name in keep:
            return name
        if name not in names:
            names[name] = f"t{len(names)}"
        return names[name]

    def walk(g):
        for v in g.input:
            v.name = new(v.name)
        for n in g.node:
            n.input[:] = [new(i) for i in n.input]
            for a in n.attribute:
                for sub in list(a.graphs) + ([a.g] if a.HasField("g") else []):
                    walk(sub)
            n.output[:] = [new(o) for o in n.output]
            n.name = f"n{counter[0]}"
            counter[0] += 1
        for v in g.output:
            v.name = new(v.name)
        for t in g.initializer:
            t.name = new(t.name)
        for v in g.value_info:
            v.name = new(v.name)
        for field in (g.initializer, g.value_info):
            items = sorted(field, key=lambda x: int(x.name[1:]) if x.name[1:].isdigit() else -1)
            del field[:]
            field.extend(items)

    walk(m.graph)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def tf_keras_twin(model, shape):
    """The same chain of layers built with tf_keras (Keras 2), with the same weights."""
    import tf_keras

    x = h = tf_keras.Input(shape[1:], batch_size=shape[0], name=model.inputs[0].name)
    for layer in model.layers[1:]:
        cls = type(layer).__name__
        cfg = layer.get_config()
        h = getattr(tf_keras.layers, cls)(name=layer.name, **{k: cfg[k] for k in TWIN_KEYS[cls]})(h)
    twin = tf_keras.Model(x, h, name=model.name)
    for layer in model.layers[1:]:
        twin.get_layer(layer.name).set_weights(layer.get_weights())
    return twin


def check(name, model, shape, onnx_path, tflite_path, want_onnx_op=None, want_tflite_op=None):
    """A valid ONNX graph of standard ops with the fixed shape, no initializer stored twice, no
    TF (Flex) op in the LiteRT file, and both agree with Keras (the ONNX file is checked by
    bench/check_peers.py, which runs it in onnxruntime)."""
    import numpy as np
    import onnx
    import tensorflow as tf

    m = onnx.load(str(onnx_path))
    onnx.checker.check_model(m)
    bad = sorted({n.op_type for n in m.graph.node if n.domain not in ("", "ai.onnx")})
    if bad:
        sys.exit(f"{onnx_path.name}: non-standard ops {bad}")
    dims = [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input]
    if dims != [list(shape)]:
        sys.exit(f"{onnx_path.name}: input shape {dims}, want {list(shape)}")
    raw = [bytes(t.raw_data) for t in m.graph.initializer if len(t.raw_data) > 64]
    if len(raw) != len(set(raw)):
        sys.exit(f"{onnx_path.name}: duplicate initializers")

    x = np.random.RandomState(0).standard_normal(shape).astype(np.float32)
    want = np.asarray(model(x, training=False)).reshape(-1)
    # Without the default (XNNPACK) delegate, so that the op list shows the file's own ops.
    interp = tf.lite.Interpreter(model_path=str(tflite_path), num_threads=1,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.
                                 BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    details = interp.get_input_details()
    if [list(d["shape"]) for d in details] != [list(shape)]:
        sys.exit(f"{tflite_path.name}: input shape {[list(d['shape']) for d in details]}, want {list(shape)}")
    interp.set_tensor(details[0]["index"], x)
    interp.invoke()
    got = interp.get_tensor(interp.get_output_details()[0]["index"]).reshape(-1)
    err = float(np.abs(got - want).max())
    if err > 1e-4:
        sys.exit(f"{tflite_path.name}: max error {err} against Keras")
    ops = {op["op_name"] for op in interp._get_ops_details()}
    if any(o.startswith("Flex") or o == "DELEGATE" for o in ops):
        sys.exit(f"{tflite_path.name}: TF (Flex) ops {sorted(ops)}")
    if want_onnx_op and want_onnx_op not in {n.op_type for n in m.graph.node}:
        sys.exit(f"{onnx_path.name}: no {want_onnx_op} op")
    if want_tflite_op and want_tflite_op not in ops:
        sys.exit(f"{tflite_path.name}: no {want_tflite_op} op: {sorted(ops)}")
    print(f"{name}: {onnx_path.stat().st_size} B onnx (opset {m.opset_import[0].version}), "
          f"{tflite_path.stat().st_size} B tflite (max |tflite - keras| {err:.2g})", flush=True)


def export_int8(name, out_dir):
    """NAME.int8.tflite through make_int8_fixtures.convert_child with float I/O (call in a
    fresh process: the conversion may crash, and TFLite's calibrator keeps global state)."""
    import json

    spec = importlib.util.spec_from_file_location("make_int8_fixtures",
                                                  ROOT / "tests" / "fixtures" / "make_int8_fixtures.py")
    int8 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(int8)  # checks its tensorflow and keras pins
    import numpy as np
    import tensorflow as tf

    int8.TMP.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.int8.tflite"
    int8.convert_child(name, "int8", path, float_io=True)
    interp = tf.lite.Interpreter(model_path=str(path), num_threads=1,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.
                                 BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    (i,), (o,) = interp.get_input_details(), interp.get_output_details()
    if i["dtype"] != np.float32 or o["dtype"] != np.float32:
        sys.exit(f"{path.name}: input {i['dtype']}, output {o['dtype']}, want float32")
    ops = sorted({op["op_name"] for op in interp._get_ops_details()})
    if any(op.startswith("Flex") for op in ops) or "QUANTIZE" not in ops:
        sys.exit(f"{path.name}: ops {ops}")
    io = json.loads((FIXTURES / f"{name}.io.json").read_text())
    xs = np.array(io["inputs"][0]["data"], np.float32).reshape([-1] + io["inputs"][0]["shape"])
    want = np.array(io["outputs"][0]["data"], np.float32).reshape(len(xs), -1)
    err = 0.0
    for x, w in zip(xs, want):
        interp.set_tensor(i["index"], x[None])
        interp.invoke()
        err = max(err, float(np.abs(interp.get_tensor(o["index"]).reshape(-1) - w).max()))
    print(f"{name}: {path.stat().st_size} B int8 tflite, float32 I/O, ops {', '.join(ops)} "
          f"(max |int8 tflite - keras| {err:.3g} on the {len(xs)} samples of {name}.io.json)", flush=True)


def export_all(names, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        # A fixed hash seed: tf2onnx's graph rewrites iterate over sets of names.
        subprocess.run([sys.executable, __file__, "--one", name, str(out_dir)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": "0"})


def out_dir(name):
    """Where a model's peer files go: bench/models, or bench/large for the large models."""
    return LARGE if name in LARGE_MODELS else OUT


def main():
    args = sys.argv[1:]
    if args[:1] == ["--one"]:
        export_one(args[1], Path(args[2]))
        return
    if args[:1] == ["--one-int8"]:
        export_int8(args[1], Path(args[2]))
        return
    if args[:1] == ["--int8"]:
        names = args[1:] or INT8_MODELS
        unknown = [n for n in names if n not in INT8_MODELS]
        if unknown:
            sys.exit(f"export_peers.py: no int8 peer for {unknown}; known: {INT8_MODELS}")
        for name in names:
            subprocess.run([sys.executable, __file__, "--one-int8", name, str(OUT)], check=True,
                           env={**os.environ, "PYTHONHASHSEED": "0"})
        return
    if args[:1] == ["--large"]:
        args = LARGE_MODELS + args[1:]
    if args[:1] == ["--check-reproducible"]:
        names = args[1:] or BENCH_MODELS
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            export_all(names, Path(a))
            export_all(names, Path(b))
            stems = names + [f"{n}.fused" for n in names if n in FUSED]
            files = [f"{n}.{e}" for n in stems for e in ("onnx", "tflite")]
            files += [f"{n}.{e}" for n in names if n in LARGE_MODELS for e in ("keras", "io.json")]
            same, diff, err = filecmp.cmpfiles(a, b, files, shallow=False)
            committed = [f for f in files if (out_dir(f.split(".")[0]) / f).exists()
                         and filecmp.cmp(Path(a) / f, out_dir(f.split(".")[0]) / f, shallow=False)]
        print(f"identical between two runs: {len(same)}/{len(files)} {diff + err or ''}")
        print(f"identical to bench/models or bench/large: {len(committed)}/{len(files)}")
        sys.exit(0 if not diff and not err else 1)
    unknown = [n for n in args if n not in BENCH_MODELS + LARGE_MODELS]
    if unknown:
        sys.exit(f"export_peers.py: unknown bench models {unknown}; known: {BENCH_MODELS + LARGE_MODELS}")
    for name in args or BENCH_MODELS:
        export_all([name], out_dir(name))


if __name__ == "__main__":
    main()
