#!/usr/bin/env python3
"""Builds every keras.applications architecture with random weights (realistic BatchNorm
statistics, as the fixtures do) and writes, for each, NAME.keras and NAME.io.json into OUT
(default target/applications): one sample, Keras's output, the same model's output
computed in float64, and Keras's output when XLA compiles the model (a second float32
implementation of the same model, which shows how far two correct ones drift apart).
scripts/applications.sh then generates, compiles and runs them. Needs the fixture venv
(tests/fixtures/requirements.txt).

Usage: applications.py [OUT] [NAME...]
       applications.py --xla OUT STEM...   (adds the XLA outputs to existing io.json files)
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("fixtures", ROOT / "tests/fixtures/make_fixtures.py")
fx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fx)  # pins the versions, quiets TensorFlow
keras, np = fx.keras, fx.np
A = keras.applications

# name: (constructor, input size, extra arguments); sizes are the smallest each accepts
# or small enough to compile quickly.
ARCHITECTURES = {
    "MobileNet": (A.MobileNet, 96, dict(alpha=0.5)),
    "MobileNetV2": (A.MobileNetV2, 96, dict(alpha=0.5)),
    "MobileNetV3Small": (A.MobileNetV3Small, 96, {}),
    "MobileNetV3Large": (A.MobileNetV3Large, 96, {}),
    "EfficientNetB0": (A.EfficientNetB0, 64, {}),
    "EfficientNetB1": (A.EfficientNetB1, 64, {}),
    "EfficientNetB2": (A.EfficientNetB2, 64, {}),
    "EfficientNetV2B0": (A.EfficientNetV2B0, 64, {}),
    "ResNet50": (A.ResNet50, 64, {}),
    "ResNet50V2": (A.ResNet50V2, 64, {}),
    "DenseNet121": (A.DenseNet121, 64, {}),
    "InceptionV3": (A.InceptionV3, 75, {}),
    "Xception": (A.Xception, 71, {}),
    "NASNetMobile": (A.NASNetMobile, 224, {}),
    "ConvNeXtTiny": (A.ConvNeXtTiny, 32, {}),
    "VGG16": (A.VGG16, 32, {}),
}


def build(name, top):
    ctor, size, extra = ARCHITECTURES[name]
    keras.backend.clear_session()
    seed = fx.fixture_seed(name + ("_top" if top else "_notop"))
    keras.utils.set_random_seed(seed)
    rng = np.random.RandomState(seed)
    shape = (size, size, 3)
    if top:
        model = ctor(input_shape=shape, weights=None, classes=10, **extra)
    else:
        model = ctor(input_shape=shape, weights=None, include_top=False, pooling="avg", **extra)
    fx.randomize_weights(model, rng)
    # Inputs as the models expect them before their own preprocessing (0..255 pixels).
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers):
        fx.calibrate_batchnorm(model, rng.uniform(0.0, 255.0, (4,) + shape).astype(np.float32), rng)
    x = rng.uniform(0.0, 255.0, (1,) + shape).astype(np.float32)
    y = model.predict(x, verbose=0)
    return model, x, y


def float64_outputs(model, x):
    """The same model and weights computed in float64: the reference that shows how far
    Keras's own float32 result is from the exact one."""
    config = json.loads(model.to_json())

    def widen(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                node["config"]["name"] = "float64"
            for v in node.values():
                widen(v)
        elif isinstance(node, list):
            for v in node:
                widen(v)
    widen(config)
    wide = keras.models.model_from_json(json.dumps(config))
    wide.set_weights([w.astype("float64") for w in model.get_weights()])
    return wide.predict(x.astype("float64"), verbose=0)


def xla_outputs(model, x):
    """Keras's float32 result through XLA instead of TensorFlow's default kernels."""
    import tensorflow as tf
    return tf.function(lambda t: model(t, training=False), jit_compile=True)(x).numpy()


def add_xla(out, stems):
    for stem in stems:
        io_path = out / f"{stem}.io.json"
        io = json.loads(io_path.read_text())
        model = keras.models.load_model(out / f"{stem}.keras")
        x = np.array(io["inputs"][0], dtype=np.float32).reshape((1,) + model.input_shape[1:])
        io["outputs_xla"] = [xla_outputs(model, x)[0].flatten().tolist()]
        io_path.write_text(json.dumps(io))
        print(f"{stem}: XLA outputs added", flush=True)


def main():
    if sys.argv[1:2] == ["--xla"]:
        add_xla(Path(sys.argv[2]), sys.argv[3:])
        return
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/applications"
    names = sys.argv[2:] or list(ARCHITECTURES)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        for top in (True, False):
            t0 = time.time()
            model, x, y = build(name, top)
            stem = f"{name}_{'top' if top else 'notop'}"
            model.save(out / f"{stem}.keras")
            y64 = float64_outputs(model, x)
            io = {"inputs": [x[0].flatten().tolist()], "outputs": [y[0].flatten().tolist()],
                  "outputs_f64": [y64[0].flatten().tolist()],
                  "outputs_xla": [xla_outputs(model, x)[0].flatten().tolist()]}
            (out / f"{stem}.io.json").write_text(json.dumps(io))
            spread = float(np.std(y))
            print(f"{stem}: {model.count_params()} parameters, output std {spread:.3g}, "
                  f"{time.time() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
