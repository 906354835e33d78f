#!/usr/bin/env python3
"""Check bench/peers.py and the exported peer models against Keras, through the same line
protocol the benchmark harness uses.

    /path/to/peervenv/bin/python bench/check_peers.py [--time N] [--engines ort,litert] [MODEL ...]

For every bench model (default: all) and its variants (bench_lstm.fused), every engine and every sample in
tests/fixtures/models/MODEL.io.json (the inputs Keras ran), it writes the sample as raw
little-endian float32, starts `peers.py ENGINE bench/models/MODEL.{onnx,tflite} INPUT`, asks
`out` and compares with Keras's output: |got - keras| <= 1e-5 + 1e-4 * |keras| for every
value. With --time N it also asks `time N` (three times, after a warm-up) for the first sample
and prints the per-call time. Exit status 1 if any check fails; an engine whose package is
missing (peers.py exit 3) is reported and skipped.

The large bench models (efficientnet_b0, resnet50) have all their files, .io.json included, in
the gitignored bench/large/ (`bench/export_peers.py --large` makes them); they are checked when
named, or with --large.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "models"
MODELS = ROOT / "bench" / "models"
PEERS = ROOT / "bench" / "peers.py"
BENCH_MODELS = ["functional_mlp", "bench_cnn", "bench_lstm", "mobilenet_v2", "transformer_block"]
LARGE = ROOT / "bench" / "large"
LARGE_MODELS = ["efficientnet_b0", "resnet50"]
# Extra exports of a bench model (bench/models/STEM.{onnx,tflite}, see export_peers.py).
VARIANTS = {"bench_lstm": ["bench_lstm.fused"]}
EXT = {"ort": "onnx", "litert": "tflite"}
ATOL, RTOL = 1e-5, 1e-4


class Peer:
    def __init__(self, python, engine, model, input_path):
        self.p = subprocess.Popen([python, str(PEERS), engine, str(model), str(input_path)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        self.ready = self.p.stdout.readline().strip()
        if not self.ready.startswith("ready "):
            self.p.stdin.close()
            err = self.p.stderr.read().strip()
            code = self.p.wait()
            raise PeerError(code, err.splitlines()[-1] if err else f"no ready line, exit {code}")

    def ask(self, request):
        self.p.stdin.write(request + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise PeerError(self.p.wait(), self.p.stderr.read().strip())
        return line.strip()

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        code = self.p.wait()
        if code != 0:
            raise PeerError(code, self.p.stderr.read().strip())


class PeerError(Exception):
    def __init__(self, code, msg):
        super().__init__(f"exit {code}: {msg}")
        self.code = code


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=BENCH_MODELS)
    ap.add_argument("--engines", default="ort,litert")
    ap.add_argument("--time", type=int, default=0, metavar="N", help="also time N calls (first sample)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs peers.py")
    ap.add_argument("--large", action="store_true", help="also the large models in bench/large/")
    args = ap.parse_args()
    if args.large:
        args.models = list(dict.fromkeys((args.models or []) + LARGE_MODELS))

    failed, skipped = False, set()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            large = name in LARGE_MODELS
            io = json.loads(((LARGE if large else FIXTURES) / f"{name}.io.json").read_text(encoding="utf-8"))
            (inp,), (outp,) = io["inputs"], io["outputs"]
            for stem, engine in [(s, e) for s in [name] + VARIANTS.get(name, [])
                                 for e in args.engines.split(",")]:
                if engine in skipped:
                    continue
                model = (LARGE if large else MODELS) / f"{stem}.{EXT[engine]}"
                worst, worst_ratio, ready, times = 0.0, 0.0, "", []
                try:
                    for k, (x, want) in enumerate(zip(inp["data"], outp["data"])):
                        path = Path(tmp) / f"{stem}_{k}.f32"
                        np.asarray(x, "<f4").tofile(path)
                        peer = Peer(args.python, engine, model, path)
                        ready = peer.ready
                        got = np.array([float(v) for v in peer.ask("out").split()], np.float64)
                        want = np.array(want, np.float64)
                        if got.shape != want.shape:
                            raise PeerError(0, f"{got.size} output values, Keras has {want.size}")
                        err = np.abs(got - want)
                        worst = max(worst, float(err.max()))
                        worst_ratio = max(worst_ratio, float((err / (ATOL + RTOL * np.abs(want))).max()))
                        if k == 0 and args.time:
                            peer.ask(f"time {max(1, args.time // 10)}")  # warm-up
                            times = [int(peer.ask(f"time {args.time}")) / args.time / 1e3 for _ in range(3)]
                        peer.close()
                except PeerError as e:
                    if e.code == 3:
                        print(f"{engine}: skipped ({e})")
                        skipped.add(engine)
                        continue
                    print(f"{stem:18} {engine:6} FAILED: {e}")
                    failed = True
                    continue
                ok = worst_ratio <= 1.0
                failed |= not ok
                timing = f"  per call {' '.join(f'{t:.2f}' for t in times)} us" if times else ""
                print(f"{stem:18} {engine:6} {'ok  ' if ok else 'FAIL'} {len(inp['data'])} samples, "
                      f"max |err| {worst:.3g} ({worst_ratio:.3f} of the tolerance)  [{ready}]{timing}",
                      flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
