#!/usr/bin/env python3
"""Compares a generated model's outputs (one number per line) with an io.json from
scripts/applications.py, against the DESIGN bound |got - keras| <= 1e-5 + 1e-4 |keras|.
Prints one table cell: `pass`, or how many outputs are outside and by how much (the worst
error as a multiple of the bound), next to the same measure for Keras's own result under
XLA (two float32 implementations of one model) and how far ours and Keras's float32 result
are from the same model computed in float64. No dependencies."""

import json
import sys


def bound(ref):
    return 1e-5 + 1e-4 * abs(ref)


def worst(got, ref):
    """The largest error as a multiple of the bound."""
    return max(abs(g - r) / bound(r) for g, r in zip(got, ref))


def main():
    io = json.load(open(sys.argv[1]))
    got = [float(line) for line in open(sys.argv[2]) if line.strip()]
    keras32, keras64 = io["outputs"][0], io["outputs_f64"][0]
    if len(got) != len(keras32):
        print(f"FAIL: {len(got)} outputs, Keras has {len(keras32)}")
        return
    outside = sum(1 for g, r in zip(got, keras32) if not abs(g - r) <= bound(r))
    if outside == 0:
        print("pass")
        return
    xla = io.get("outputs_xla", [None])[0]
    xla_outside = "" if xla is None else (
        f"; Keras under XLA {sum(1 for g, r in zip(xla, keras32) if not abs(g - r) <= bound(r))}"
        f" outside (worst {worst(xla, keras32):.1f}x)")
    print(f"{outside}/{len(got)} outside (worst {worst(got, keras32):.1f}x the bound){xla_outside}; "
          f"from float64: ours {worst(got, keras64):.1f}x, Keras {worst(keras32, keras64):.1f}x")


if __name__ == "__main__":
    main()
