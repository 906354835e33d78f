#!/usr/bin/env python3
"""Fit the polynomial coefficients used by src/backend/math/runtime.{rs,hpp}.

Needs mpmath (`pip install mpmath`). Not part of the build: run it only to
regenerate or check the constants. Each polynomial is a minimax (Remez)
approximation in a chosen weighted norm; the coefficients are then rounded to
f32 one at a time, lowest degree first, refitting the remaining ones after
each rounding, so the final f32 polynomial stays close to minimax.
Prints every coefficient as the shortest decimal that round-trips to its f32.
"""
import struct

from mpmath import mp, mpf, matrix, lu_solve, cos, pi, sqrt, exp, expm1, log, erf, erfc, tanh

mp.dps = 40


def f32(v):
    return mpf(struct.unpack("f", struct.pack("f", float(v)))[0])


def shortest(v):
    b = struct.pack("f", float(v))
    for d in range(1, 10):
        s = "%.*e" % (d - 1, struct.unpack("f", b)[0])
        if struct.pack("f", float(s)) == b:
            m, e = s.split("e")
            return repr(float(s)) if -5 < int(e) < 8 else s.replace("e-0", "e-").replace("e+0", "e")
    raise AssertionError


def remez(f, w, a, b, n, fixed, iters=15, grid=600):
    """Minimise max |w(x) (sum c_j x^j - f(x))| on [a, b] over the c_j not in `fixed`."""
    free = [j for j in range(n) if j not in fixed]
    m = len(free)
    g = lambda x: f(x) - sum(v * x**j for j, v in fixed.items())
    xs = [(a + b) / 2 - (b - a) / 2 * cos(pi * i / m) for i in range(m + 1)]
    pts = [a + (b - a) * mpf(i) / grid for i in range(grid + 1)]
    best = None
    for _ in range(iters):
        A = matrix(m + 1, m + 1)
        rhs = matrix(m + 1, 1)
        for i, x in enumerate(xs):
            for k, j in enumerate(free):
                A[i, k] = x**j
            A[i, m] = (-1) ** i / w(x)
            rhs[i] = g(x)
        sol = lu_solve(A, rhs)
        c = dict(fixed)
        for k, j in enumerate(free):
            c[j] = sol[k]
        es = [w(x) * (sum(c[j] * x**j for j in range(n)) - f(x)) for x in pts]
        err = max(abs(e) for e in es)
        if best is None or err < best[1]:
            best = (c, err)
        segs, cur = [], [0]
        for i in range(1, len(pts)):
            if (es[i] >= 0) == (es[cur[0]] >= 0):
                cur.append(i)
            else:
                segs.append(cur)
                cur = [i]
        segs.append(cur)
        ext = [max(s, key=lambda i: abs(es[i])) for s in segs]
        while len(ext) > m + 1:
            ext.pop(0 if abs(es[ext[0]]) < abs(es[ext[-1]]) else -1)
        if len(ext) < m + 1:
            break
        xs = [pts[i] for i in ext]
    return best[0]


def fit(name, f, w, a, b, n, note):
    fixed = {}
    for j in range(n):
        fixed[j] = f32(remez(f, w, a, b, n, fixed)[j])
    c = [fixed[j] for j in range(n)]
    pts = [a + (b - a) * mpf(i) / 4000 for i in range(4001)]
    err = max(abs(w(x) * (sum(cj * x**j for j, cj in enumerate(c)) - f(x))) for x in pts)
    print(f"// {name}: {note}; max weighted error {float(err):.3g}")
    for j, cj in enumerate(c):
        print(f"const {name}{j}: f32 = {shortest(cj)};")
    print()


small = mpf(10) ** -12

# exp, expm1: e^r - 1 = r + r^2 (1/2 + r S(r)) on |r| <= ln2/2 (+ margin); relative error of S.
S = lambda r: (expm1(r) - r - r**2 / 2) / r**3 if abs(r) > small else mpf(1) / 6 + r / 24
fit("EXP", S, lambda r: 1 / S(r), -mpf("0.3467"), mpf("0.3467"), 5, "(e^r - 1 - r - r^2/2)/r^3, |r| <= 0.3467, relative")

# log, log1p: log(1+f) = 2s + s z P(z), s = f/(2+f), z = s^2, relative error of P.
def P(z):
    if z < small:
        return mpf(2) / 3 + 2 * z / 5
    s = sqrt(z)
    return (log((1 + s) / (1 - s)) - 2 * s) / s / z
zmax = ((sqrt(2) - 1) / (sqrt(2) + 1)) ** 2 * mpf("1.01")
fit("LG", P, lambda z: 1 / P(z), mpf(0), zmax, 4, "(log((1+s)/(1-s)) - 2s)/s^3, z = s^2 <= 0.0297, relative")

# tanh, |x| < log(3)/2: tanh(x) = x + x u S(u), u = x^2; relative error of S.
S = lambda u: (tanh(sqrt(u)) / sqrt(u) - 1) / u if u > mpf(10) ** -8 else -mpf(1) / 3 + 2 * u / 15
fit("TH", S, lambda u: -1 / S(u), mpf(0), mpf("0.5493062") ** 2 * mpf("1.001"), 5, "(tanh(x)/x - 1)/x^2 in u = x^2 <= 0.302, relative")

# erf, |x| < 1: erf(x) = x + x T(x^2); error of T weighted by x/erf(x) (relative error of erf).
T = lambda u: (erf(sqrt(u)) / sqrt(u) - 1) if u > small else 2 / sqrt(pi) * (1 - u / 3) - 1
W = lambda u: sqrt(u) / erf(sqrt(u)) if u > small else sqrt(pi) / 2
fit("ET", T, W, mpf(0), mpf(1), 7, "erf(x)/x - 1 in u = x^2 <= 1, relative to erf")

# erf, 1 <= x <= 4: erfc(x) = exp(-x^2) R(x), fitted in t = x - 2.5, absolute error of erfc.
R = lambda t: erfc(t + mpf("2.5")) * exp((t + mpf("2.5")) ** 2)
fit("ER", R, lambda t: exp(-((t + mpf("2.5")) ** 2)), -mpf("1.5"), mpf("1.5"), 9, "erfc(x) e^(x^2) in t = x - 2.5, |t| <= 1.5, absolute error of erfc")
