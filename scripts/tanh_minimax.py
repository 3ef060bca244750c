"""Derive the coefficients of elman's fast tanh.

    tanh(x) ≈ R(x) = x · P(x²) / Q(x²)   on [0, C],   P, Q of degree 4 in t = x²

a [9/8] odd/even rational with P(0) = Q(0) = 1, so that R is exact to first order at 0. The
coefficients minimise max |R(x) − tanh(x)| on [0, C] (the minimax problem), found by the Remez
exchange algorithm in 50-digit arithmetic (mpmath): on a reference of 9 points R − tanh must
equioscillate, R(x_i) − tanh(x_i) = (−1)^i E, a system solved by Newton's method; the reference
is then moved to the extrema of the error and the two steps repeat until the extrema are all
equal to |E| within 0.1 %. The start is a linearised least-squares fit.

Run: python scripts/tanh_minimax.py   (pinned requirements: scripts/requirements-tanh.txt)
It prints the f32 coefficients for src/tanh.rs, the minimax error E in exact arithmetic, and
the error of the rational with the coefficients rounded to f32, still in exact arithmetic.
The error of the f32 evaluation is measured by the exhaustive test over all 2^32 inputs
(tests/tanh_exhaustive.rs), not here.
"""

import mpmath
import numpy as np

mpmath.mp.dps = 50
C = mpmath.mpf(9)  # beyond it tanh rounds to 1 in f32 within 1 − tanh(9) = 3.05e-8
N = 4  # degree in t of P and of Q
UNKNOWNS = 2 * N  # p1..p4, q1..q4 (p0 = q0 = 1)


def rational(p, q, x):
    t = x * x
    return x * mpmath.polyval(list(reversed([1] + p)), t) / mpmath.polyval(list(reversed([1] + q)), t)


def error(p, q, x):
    return rational(p, q, x) - mpmath.tanh(x)


def start():
    """Least squares on x·P(t) − tanh(x)·Q(t) ≈ 0, in scaled t/C², then unscaled."""
    x = np.linspace(1e-3, float(C), 4000)
    s = (x / float(C)) ** 2
    f = np.tanh(x)
    a = np.hstack([x[:, None] * s[:, None] ** np.arange(1, N + 1), -f[:, None] * s[:, None] ** np.arange(1, N + 1)])
    c, *_ = np.linalg.lstsq(a, f - x, rcond=None)
    scale = [float(C) ** (2 * k) for k in range(1, N + 1)]
    return [mpmath.mpf(c[k]) / scale[k] for k in range(N)], [mpmath.mpf(c[N + k]) / scale[k] for k in range(N)]


def solve(reference, p, q, e):
    """Newton on R(x_i) − tanh(x_i) = (−1)^i E for p, q, E."""

    def equations(*v):
        pp, qq, ee = list(v[:N]), list(v[N : 2 * N]), v[2 * N]
        return [error(pp, qq, xi) - (-1) ** i * ee for i, xi in enumerate(reference)]

    v = mpmath.findroot(equations, p + q + [e], tol=mpmath.mpf(10) ** -40, maxsteps=200)
    v = [v[i] for i in range(2 * N + 1)]
    return v[:N], v[N : 2 * N], v[2 * N]


def extrema(p, q):
    """The local extrema of the error on [0, C] (C included), refined by golden-section search."""
    grid = [C * mpmath.mpf(k) / 4000 for k in range(1, 4001)]
    values = [error(p, q, x) for x in grid]
    found = []
    for k in range(1, len(grid) - 1):
        if (values[k] - values[k - 1]) * (values[k + 1] - values[k]) <= 0:
            sign = 1 if values[k] > 0 else -1
            x = mpmath.findroot(lambda x: mpmath.diff(lambda y: error(p, q, y), x), grid[k])
            if not (0 < x < C):
                x = grid[k]
            found.append((x, error(p, q, x), sign))
    found.append((C, values[-1], 1 if values[-1] > 0 else -1))
    return found


def alternating(points):
    """Of each run of same-sign extrema keep the largest; keep the last 2N+1."""
    chosen = []
    for x, v, s in points:
        if chosen and chosen[-1][2] == s:
            if abs(v) > abs(chosen[-1][1]):
                chosen[-1] = (x, v, s)
        else:
            chosen.append((x, v, s))
    while len(chosen) > UNKNOWNS + 1:
        # Drop the smaller end.
        chosen = chosen[1:] if abs(chosen[0][1]) < abs(chosen[-1][1]) else chosen[:-1]
    return chosen


def main():
    p, q = start()
    points = alternating(extrema(p, q))
    e = mpmath.mpf(0)
    for iteration in range(30):
        reference = [x for x, _, _ in points]
        if len(reference) != UNKNOWNS + 1:
            raise SystemExit(f"{len(reference)} alternating extrema, need {UNKNOWNS + 1}")
        e = abs(error(p, q, reference[-1])) * (1 if points[0][2] > 0 else -1)
        p, q, e = solve(reference, p, q, e)
        points = alternating(extrema(p, q))
        spread = max(abs(v) for _, v, _ in points) / abs(e) - 1
        print(f"iteration {iteration}: E = {mpmath.nstr(abs(e), 6)}, extrema within {float(spread):.2e} of E")
        if spread < 1e-3:
            break

    p32 = [np.float32(float(v)) for v in [1] + p]
    q32 = [np.float32(float(v)) for v in [1] + q]
    print(f"\nminimax error E (exact coefficients, exact arithmetic): {mpmath.nstr(abs(e), 6)}")
    for name, cs in (("P", p32), ("Q", q32)):
        for k, v in enumerate(cs):
            print(f"{name}{k} = {float(v)!r:<24} // {float(v).hex()}")
    pm = [mpmath.mpf(float(v)) for v in p32[1:]]
    qm = [mpmath.mpf(float(v)) for v in q32[1:]]
    worst = max((abs(error(pm, qm, C * mpmath.mpf(k) / 100000)), C * k / 100000) for k in range(100001))
    print(f"max |R − tanh| with the f32 coefficients, exact arithmetic: {mpmath.nstr(worst[0], 6)} at x = {mpmath.nstr(worst[1], 8)}")


if __name__ == "__main__":
    main()
