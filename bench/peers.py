#!/usr/bin/env python3
"""Peer-engine worker for the benchmark harness (issue 5): runs one model in onnxruntime or
LiteRT and answers timing requests on stdin, one line each.

    peers.py ENGINE MODEL_PATH INPUT_PATH

ENGINE is `ort` (onnxruntime, MODEL_PATH a .onnx) or `litert` (ai-edge-litert, a .tflite).
INPUT_PATH holds one sample as raw little-endian float32, flat, row-major, channels-last,
without the batch dimension (the layout keras2src's generated predict() takes). Every bench
model has one float32 input and one output; the batch dimension is 1.

Protocol (every reply is one line, flushed):
    start            -> `ready <package> <version>`, e.g. `ready onnxruntime 1.32.0`
    `out`            -> the flat output values, space-separated (repr of each float32)
    `time N`         -> N single-sample inferences back to back; the elapsed nanoseconds
                        (time.perf_counter_ns) as one integer
    `quit` or EOF    -> exit 0
Exit codes: 3 when the engine's package cannot be imported (message on stderr), 1 on any other
failure (message on stderr), 2 on bad arguments.

Both engines run on one thread. Install: /path/to/venv/bin/pip install -r bench/requirements-peers.txt
"""

import sys
import time

try:
    import numpy as np
except ImportError as _e:  # both engines need numpy: as if the engine's package were missing
    print(f"peers.py: cannot import numpy ({_e}); pip install -r bench/requirements-peers.txt",
          file=sys.stderr, flush=True)
    sys.exit(3)

USAGE = "usage: peers.py ort|litert MODEL_PATH INPUT_PATH"


def fail(msg, code=1):
    print(f"peers.py: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


def read_input(path, shape):
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        fail(f"the model's input shape {list(shape)} is not fixed (export with batch 1)")
    shape = [int(d) for d in shape]
    x = np.fromfile(path, dtype="<f4")
    want = int(np.prod(shape[1:]))
    if shape[0] != 1 or x.size != want:
        fail(f"{path}: {x.size} floats, the model's input {shape} needs batch 1 and {want}")
    return x.reshape(shape).astype(np.float32)


class Ort:
    """onnxruntime, one thread, sequential execution, every graph optimisation.

    Timed call: `sess.run_with_iobinding` with the input and output bound once as OrtValues.
    Against plain `sess.run([out], {name: x})`, interleaved, median of 7 rounds per call (this
    2-core machine shared with other jobs, load ~5, so only the small models say much):
        functional_mlp     run 20.1 us   io_binding 11.4 us (output bound to "cpu": 10.9 us)
        bench_cnn          run 59.2 us   io_binding 47.8 us
        bench_lstm.fused   run 87.0 us   io_binding 63.9 us
        transformer_block  run 71.4 us   io_binding 56.7 us
    io_binding saves the feed dict, the output list and the numpy conversions; binding the
    output once (no allocation per call) is as fast as binding it to "cpu".
    """

    def __init__(self, model_path, input_path):
        try:
            import onnxruntime as ort
        except ImportError as e:
            fail(f"cannot import onnxruntime ({e}); pip install -r bench/requirements-peers.txt", 3)
        self.package, self.version = "onnxruntime", ort.__version__
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
        ins, outs = self.sess.get_inputs(), self.sess.get_outputs()
        if len(ins) != 1 or len(outs) != 1:
            fail(f"{model_path}: {len(ins)} inputs and {len(outs)} outputs, want 1 and 1")
        self.x = read_input(input_path, ins[0].shape)
        self.input_name, self.output_name = ins[0].name, outs[0].name
        # Input and output bound once as OrtValues: a timed call allocates nothing.
        self.binding = self.sess.io_binding()
        self.x_value = ort.OrtValue.ortvalue_from_numpy(self.x)
        self.binding.bind_ortvalue_input(self.input_name, self.x_value)
        out_shape = outs[0].shape
        if all(isinstance(d, int) for d in out_shape):
            self.y_value = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, np.float32)
            self.binding.bind_ortvalue_output(self.output_name, self.y_value)
        else:
            self.y_value = None
            self.binding.bind_output(self.output_name, "cpu")

    def output(self):
        # The same call as `time` makes.
        self.sess.run_with_iobinding(self.binding)
        if self.y_value is not None:
            return self.y_value.numpy()
        return self.binding.get_outputs()[0].numpy()

    def time(self, n):
        run, binding = self.sess.run_with_iobinding, self.binding
        t0 = time.perf_counter_ns()
        for _ in range(n):
            run(binding)
        return time.perf_counter_ns() - t0


class LiteRT:
    """ai-edge-litert Interpreter, one thread, default delegate (XNNPACK, applied to float
    models by default: `_get_ops_details()` shows the graph's ops replaced by DELEGATE nodes;
    bench_lstm keeps its WHILE loop and the ops inside it are run by the builtin kernels).
    The input is set once; `time` times `invoke()` only."""

    def __init__(self, model_path, input_path):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            fail(f"cannot import ai_edge_litert ({e}); pip install -r bench/requirements-peers.txt", 3)
        from importlib.metadata import version

        self.package, self.version = "ai-edge-litert", version("ai-edge-litert")
        self.interp = Interpreter(model_path=model_path, num_threads=1)
        self.interp.allocate_tensors()
        ins, outs = self.interp.get_input_details(), self.interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            fail(f"{model_path}: {len(ins)} inputs and {len(outs)} outputs, want 1 and 1")
        self.x = read_input(input_path, tuple(ins[0]["shape"]))
        self.interp.set_tensor(ins[0]["index"], self.x)
        self.output_index = outs[0]["index"]

    def output(self):
        self.interp.invoke()
        return self.interp.get_tensor(self.output_index)

    def time(self, n):
        invoke = self.interp.invoke
        t0 = time.perf_counter_ns()
        for _ in range(n):
            invoke()
        return time.perf_counter_ns() - t0


ENGINES = {"ort": Ort, "litert": LiteRT}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ENGINES:
        fail(USAGE, 2)
    engine, model_path, input_path = sys.argv[1:]
    try:
        peer = ENGINES[engine](model_path, input_path)
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 (any load failure: report and exit 1)
        fail(f"{engine}: cannot load {model_path}: {type(e).__name__}: {e}")
    print(f"ready {peer.package} {peer.version}", flush=True)
    for line in sys.stdin:
        words = line.split()
        try:
            if words == ["out"]:
                y = np.asarray(peer.output(), np.float32).reshape(-1)
                # str() of a numpy float32: the shortest decimal that reads back as the same
                # float32 ("0.1", "1e-05", "nan", "inf", "-inf").
                print(" ".join(str(v) for v in y), flush=True)
            elif len(words) == 2 and words[0] == "time" and words[1].isdigit():
                print(peer.time(int(words[1])), flush=True)
            elif words == ["quit"]:
                return
            else:
                fail(f"unknown request {line.strip()!r} (want `out`, `time N` or `quit`)")
        except SystemExit:
            raise
        except Exception as e:  # noqa: BLE001
            fail(f"{engine}: {line.strip()!r} failed: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
