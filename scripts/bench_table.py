"""Turn the estimates of the last `cargo bench --bench step` / `--bench tanh` run into the
README's tables: nanoseconds per step (or per value) and the ratios within each group.

Run after the benches: python3 scripts/bench_table.py [target/criterion]
Only the Python standard library is needed. Every figure comes from criterion's mean estimate
of one run; the ratios compare members of the same group, measured in the same process.
"""

import json
import math
import sys
from pathlib import Path

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
T = 64  # dependent steps per iteration in benches/step.rs
N = 4096  # values per iteration in the tanh throughput bench
CHAIN = 256  # dependent evaluations per iteration in the tanh latency bench
SIZES = [(3, 2), (1, 8), (1, 16), (16, 16), (32, 64), (64, 128), (128, 256)]


def mean(*parts):
    path = ROOT.joinpath(*parts, "new", "estimates.json")
    if not path.exists():
        return None
    return json.loads(path.read_text())["mean"]["point_estimate"]


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None else a / b


def steps():
    print("| (I, H) | step ns | portable ns | naive ns | naive / step | column-chain floor ns | step / column-chain | tree-chain floor ns | step / tree-chain | FMA-peak floor ns | FMA-peak / step | L2-read floor ns | L2-read / step |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, h in SIZES:
        g, s = f"step_{i}x{h}", f"{i}x{h}"
        per = lambda name: None if mean(g, name, s) is None else mean(g, name, s) / T
        step, portable, naive = per("step"), per("step_with_portable"), per("naive")
        column, tree, peak, l2 = per("floor_column-chain"), per("floor_tree-chain"), per("floor_fma-peak"), per("floor_l2-read")
        print(
            f"| ({i}, {h}) | {fmt(step)} | {fmt(portable)} | {fmt(naive)} | {fmt(ratio(naive, step), 2)} | "
            f"{fmt(column)} | {fmt(ratio(step, column), 2)} | {fmt(tree)} | {fmt(ratio(step, tree), 2)} | "
            f"{fmt(peak)} | {fmt(ratio(peak, step), 2)} | {fmt(l2)} | {fmt(ratio(l2, step), 2)} |"
        )


def tanh():
    libm = mean("tanh_throughput", "f32__tanh", str(N))
    print("| tanh throughput | ns per value | × f32::tanh |")
    print("| --- | --- | --- |")
    for d in sorted(p for p in (ROOT / "tanh_throughput").iterdir() if p.is_dir() and p.name != "report"):
        v = mean("tanh_throughput", d.name, str(N))
        print(f"| {d.name} | {fmt(None if v is None else v / N, 3)} | {fmt(ratio(libm, v), 1)} |")
    print()
    print("| tanh latency (dependent chain) | ns per evaluation |")
    print("| --- | --- |")
    for d in sorted(p for p in (ROOT / "tanh_latency").iterdir() if p.is_dir() and p.name != "report"):
        v = mean("tanh_latency", d.name)
        print(f"| {d.name} | {fmt(None if v is None else v / CHAIN, 2)} |")


if __name__ == "__main__":
    steps()
    print()
    tanh()
