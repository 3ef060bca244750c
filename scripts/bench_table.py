"""Turn the estimates of the last `cargo bench --bench step` / `--bench tanh` run into the
README's tables: nanoseconds per step (or per value) and the ratios within each group.

Run after the benches: python3 scripts/bench_table.py [target/criterion] [step|tanh|realtime]
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
    print("| (I, H) | step ns | run ns | portable ns | naive ns | naive / step | column-chain floor ns | step / column-chain | run / column-chain | column chain, a call per step ns | step / that | tree-chain floor ns | step / tree-chain | FMA-peak floor ns | FMA-peak / step | FMA-peak / run | FMA-peak / run with ReLU | weight-read floor ns | weight-read / step |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, h in SIZES:
        g, s = f"step_{i}x{h}", f"{i}x{h}"
        per = lambda name: None if mean(g, name, s) is None else mean(g, name, s) / T
        step, portable, naive = per("step"), per("step_with_portable"), per("naive")
        column, tree, peak, read = per("floor_column-chain"), per("floor_tree-chain"), per("floor_fma-peak"), per("floor_weight-read")
        calls, run, relu = per("floor_column-chain-calls"), per("run"), per("run_relu")
        print(
            f"| ({i}, {h}) | {fmt(step)} | {fmt(run)} | {fmt(portable)} | {fmt(naive)} | {fmt(ratio(naive, step), 2)} | "
            f"{fmt(column)} | {fmt(ratio(step, column), 2)} | {fmt(ratio(run, column), 2)} | {fmt(calls)} | {fmt(ratio(step, calls), 2)} | "
            f"{fmt(tree)} | {fmt(ratio(step, tree), 2)} | "
            f"{fmt(peak)} | {fmt(ratio(peak, step), 2)} | {fmt(ratio(peak, run), 2)} | {fmt(ratio(peak, relu), 2)} | {fmt(read)} | {fmt(ratio(read, step), 2)} |"
        )


def tanh():
    if not (ROOT / "tanh_throughput").exists():
        return
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


def realtime():
    banks = [(3, 2), (1, 8), (1, 16), (16, 32)]
    print("| (I, H) | N | bank ns / stream-step | bank, step_lanes | separate ns / stream-step | separate / bank | floor ns (FMA + tanh) | bank / floor | step_lanes / floor | chain floor ns | step_lanes / larger floor |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, h in banks:
        for n in (8, 32, 128):
            g, s = f"bank_{i}x{h}_n{n}", f"{i}x{h}_n{n}"
            per = lambda name: None if mean(g, name, s) is None else mean(g, name, s) / n
            bank, lanes, separate = per("bank"), per("bank lanes"), per("separate")
            fma, tanh_ = per("floor_fma"), per("floor_tanh")
            floor = None if fma is None or tanh_ is None else fma + tanh_
            chain = per("floor_chain")
            larger = None if floor is None or chain is None else max(floor, chain)
            print(f"| ({i}, {h}) | {n} | {fmt(bank, 2)} | {fmt(lanes, 2)} | {fmt(separate, 2)} | {fmt(ratio(separate, bank), 2)} | {fmt(floor, 2)} | {fmt(ratio(bank, floor), 2)} | {fmt(ratio(lanes, floor), 2)} | {fmt(chain, 2)} | {fmt(ratio(lanes, larger), 2)} |")
    print()
    print("| block | per-step calls ns / step | process ns / step | per-step / process |")
    print("| --- | --- | --- | --- |")
    for i, h, t in [(64, 128, 64), (64, 128, 1024), (3, 2, 1024), (1, 16, 1024), (32, 64, 1024), (128, 256, 1024)]:
        g, s = f"block_{i}x{h}_t{t}", f"{i}x{h}_t{t}"
        a, b = mean(g, "per-step", s), mean(g, "process", s)
        a, b = (None if a is None else a / t), (None if b is None else b / t)
        print(f"| ({i}, {h}), T = {t} | {fmt(a, 1)} | {fmt(b, 1)} | {fmt(ratio(a, b), 2)} |")
    print()
    print("| step from | (1, 16) ns | (64, 128) ns |")
    print("| --- | --- | --- |")
    for name in ("normal state", "subnormal state"):
        vals = [mean(f"subnormal_{i}x{h}", name.replace(" ", "_"), f"{i}x{h}") or mean(f"subnormal_{i}x{h}", name, f"{i}x{h}") for i, h in [(1, 16), (64, 128)]]
        print(f"| {name} | {fmt(vals[0], 1)} | {fmt(vals[1], 1)} |")


if __name__ == "__main__":
    which = sys.argv[2] if len(sys.argv) > 2 else "all"
    if which in ("all", "step"):
        steps()
        print()
    if which in ("all", "tanh"):
        tanh()
        print()
    if which in ("all", "realtime"):
        realtime()
