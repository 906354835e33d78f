#!/usr/bin/env python3
"""Compares a generated model's outputs (one number per line) with an io.json from
scripts/applications.py: within the DESIGN bound of Keras (|got - keras| <= 1e-5 + 1e-4
|keras|), and, where not, how far ours and Keras's float32 results each are from the
float64 computation of the same model. Prints one table cell. No dependencies."""

import json
import sys


def outside(got, ref):
    return sum(1 for g, r in zip(got, ref) if not abs(g - r) <= 1e-5 + 1e-4 * abs(r))


def main():
    io = json.load(open(sys.argv[1]))
    got = [float(line) for line in open(sys.argv[2]) if line.strip()]
    keras32, keras64 = io["outputs"][0], io["outputs_f64"][0]
    if len(got) != len(keras32):
        print(f"fail: {len(got)} outputs, Keras has {len(keras32)}")
        return
    n = outside(got, keras32)
    if n == 0:
        print("pass")
        return
    ours64, theirs64 = outside(got, keras64), outside(keras32, keras64)
    verdict = "float32 noise" if ours64 <= theirs64 else "FAIL"
    print(f"{verdict}: {n}/{len(got)} outside vs Keras; vs float64: ours {ours64}, Keras {theirs64}")


if __name__ == "__main__":
    main()
