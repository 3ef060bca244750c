"""Write BENCHMARKS.md, docs/step.svg and the README's headline table from one bench run.

    python3 scripts/benchmarks.py target/criterion target/benchmarks BENCHMARKS.md docs/step.svg

Given another report than BENCHMARKS.md (a second machine's, say), it writes that report and
its picture and leaves the README alone: the README's headline is BENCHMARKS.md's.

`scripts/benchmarks.sh` runs the benches and then this script; run it alone to rewrite the
report from the estimates already in `target/criterion`. It reads criterion's
`**/new/benchmark.json` (which bench: group, function, size, elements per iteration) and, beside
it, each pass's `pass*/estimates.json` (the median time per iteration; `new/estimates.json`
where a bench has no passes), and nothing else from the run but the first `backend:` line of
the step bench's log (the backend `Backend::best()` picked) and the date and flags that
`benchmarks.sh` records. The machine comes from `/proc/cpuinfo` and `lscpu`, the compiler from
`rustc -V`.

Python with its standard library only: the report is text and the plot is an SVG written as
text, so no plotting or JSON crate joins the crate's dependencies, and the script runs without
a build, as the crate's other scripts do.
"""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

CRITERION = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
LOGS = Path(sys.argv[2] if len(sys.argv) > 2 else "target/benchmarks")
REPORT = Path(sys.argv[3] if len(sys.argv) > 3 else "BENCHMARKS.md")
SVG = Path(sys.argv[4] if len(sys.argv) > 4 else "docs/step.svg")
README = Path("README.md")

SIZES = [(3, 2), (1, 8), (1, 16), (16, 16), (32, 64), (64, 128), (128, 256)]
BANKS = [(3, 2), (1, 8), (1, 16), (16, 32)]
STREAMS = [8, 32, 128]
BACKENDS = ["portable", "avx2+fma", "avx512vl", "avx512"]
FUSED = BACKENDS[1:]


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def load():
    """Every measured bench: (group, function, size) -> median ns per element, and the spread of
    its passes (the slowest pass's median over the fastest's, and how many passes, 1 where it
    has none).

    `benchmarks.sh` saves each pass as a criterion baseline `pass1`, `pass2`, ... beside `new`;
    a bench's figure is the median of its passes' medians. A run without passes (criterion's
    `new` only) gives its one median and no spread."""
    times, spreads = {}, {}
    for meta in CRITERION.glob("**/new/benchmark.json"):
        bench = json.loads(meta.read_text())
        runs = sorted(meta.parent.parent.glob("pass*/estimates.json")) or [
            meta.parent / "estimates.json"
        ]
        medians = [json.loads(run.read_text())["median"]["point_estimate"] for run in runs]
        elements = (bench.get("throughput") or {}).get("Elements", 1)
        key = (bench["group_id"], bench["function_id"], bench.get("value_str"))
        times[key] = median(medians) / elements
        spreads[key] = (max(medians) / min(medians), len(medians))
    return times, spreads


TIMES, SPREADS = load()


def ns(group, function, size=None):
    return TIMES.get((group, function, size))


def ratio(a, b):
    return None if a is None or b is None else a / b


def fmt(v, digits=None):
    if v is None:
        return "–"
    if digits is None:
        digits = 2 if v < 10 else 1 if v < 1000 else 0
    return f"{v:.{digits}f}"


def times_fmt(v):
    return "–" if v is None else f"{v:.2f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def size_name(i, h):
    return f"({i}, {h})"


# ---------------------------------------------------------------- the machine and the run


def command(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def lscpu():
    fields = {}
    for line in command("lscpu").splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def core_name(fields):
    """AMD's core generation from the family and model numbers, where it is one this knows."""
    if fields.get("Vendor ID") != "AuthenticAMD":
        return None
    try:
        family, model = int(fields["CPU family"]), int(fields["Model"])
    except (KeyError, ValueError):
        return None
    if family == 25:
        return "Zen 4" if 0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF else "Zen 3"
    if family == 26:
        return "Zen 5"
    return None


def cpu():
    """The CPU's name, with its core where known: `AMD EPYC (Zen 4)`."""
    fields = lscpu()
    model = fields.get("Model name", "")
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M).group(1).strip() or model
    except (OSError, AttributeError):
        pass
    core = core_name(fields)
    return f"{model or 'unknown CPU'} ({core})" if core else model or "unknown CPU"


def machine():
    """The CPU and its setting: name, family and model, logical CPUs, hypervisor, caches."""
    fields = lscpu()
    parts = [cpu()]
    if fields.get("CPU family"):
        parts.append(f"family {fields['CPU family']} model {fields.get('Model', '?')}")
    if fields.get("CPU(s)"):
        vm = f" under {fields['Hypervisor vendor']}" if fields.get("Hypervisor vendor") else ""
        parts.append(f"{fields['CPU(s)']} logical CPUs{vm}")
    caches = [f"{name} {fields[key]}" for key, name in [("L1d cache", "L1d"), ("L2 cache", "L2"), ("L3 cache", "L3")] if fields.get(key)]
    if caches:
        parts.append(", ".join(caches))
    return "; ".join(parts)


def vcpus():
    fields = lscpu()
    if not fields.get("CPU(s)"):
        return ""
    vm = f" under {fields['Hypervisor vendor']}" if fields.get("Hypervisor vendor") else ""
    return f", {fields['CPU(s)']} logical CPUs{vm}"


def rustc_version():
    """`rustc -V` without the commit hash: `rustc 1.95.0 (2026-04-14)`."""
    version = command("rustc", "-V").strip()
    return re.sub(r"\(\w+ (\d{4}-\d\d-\d\d)\)", r"(\1)", version) or "unknown"


def logged(name, default=""):
    path = LOGS / name
    return path.read_text().strip() if path.exists() else default


def passes_line():
    """How many passes the figures are the median of, and how far the passes of one bench lay
    apart: the middle bench's spread and the widest."""
    counts = sorted({n for _, n in SPREADS.values()})
    if counts == [1]:
        return "one: each figure is one criterion median"
    spreads = sorted(SPREADS.items(), key=lambda item: item[1][0])
    (group, function, size), (widest, _) = spreads[-1]
    name = function if size is None or group.endswith(size) else f"{function}/{size}"
    passes = "–".join(str(n) for n in counts)
    return (f"{passes}, each figure the median of its bench's passes; the passes of a bench lay"
            f" {(median([s for _, (s, _) in spreads]) - 1) * 100:.1f} % apart at the median"
            f" (slowest over fastest), the widest {(widest - 1) * 100:.0f} % (`{group}`"
            f" `{name}`)")


def backend_line():
    for line in logged("step.log").splitlines():
        if line.startswith("backend:"):
            return line.removeprefix("backend: ").strip()
    return "not recorded"


def flags():
    rustflags = logged("rustflags")
    if rustflags:
        return f"`RUSTFLAGS=\"{rustflags}\"`"
    return "default build (no `RUSTFLAGS`: the x86-64 baseline, SSE2; the backends are picked at run time)"


# ---------------------------------------------------------------- the tables


def step_group(i, h):
    return f"step/{i}x{h}", f"{i}x{h}"


def headline():
    """The README's table: each row a ratio of two members of one group."""
    rows = []
    for i, h in [(3, 2), (1, 16), (32, 64), (128, 256)]:
        g, s = step_group(i, h)
        step, naive = ns(g, "step", s), ns(g, "naive", s)
        rows.append([f"`RnnCell::step` {size_name(i, h)}", "naive nalgebra step", fmt(step), fmt(naive), times_fmt(ratio(naive, step))])
    g, s = step_group(128, 256)
    pairs, step = ns(g, "step_bf16", s), ns(g, "step", s)
    rows.append(["`Bf16Cell::step` (128, 256)", "the f32 `RnnCell::step`", fmt(pairs), fmt(step), times_fmt(ratio(step, pairs))])
    for i, h, n in [(3, 2, 32), (1, 16, 32), (16, 32, 128)]:
        g = s = f"{i}x{h}/n{n}"
        bank, separate = ns(f"bank/{g}", "bank", s), ns(f"bank/{g}", "separate", s)
        rows.append([f"`RnnBank` {size_name(i, h)}, {n} streams, per stream", f"{n} separate cells", fmt(bank), fmt(separate), times_fmt(ratio(separate, bank))])
    fast, libm = ns("tanh/throughput", best_backend(), "4096"), ns("tanh/throughput", "f32::tanh", "4096")
    rows.append(["fast tanh, per value (`Backend::tanh_into`)", "`f32::tanh`", fmt(fast), fmt(libm), times_fmt(ratio(libm, fast))])
    for row in rows:
        row[-1] = row[-1] if row[-1] == "–" else row[-1] + "×"
    return table(["elman", "against", "elman, ns", "the other, ns", "speed-up"], rows)


def best_backend():
    name = backend_line().split(" ", 1)[0]
    return name if name in BACKENDS else "avx512"


def steps_table():
    rows = []
    for i, h in SIZES:
        g, s = step_group(i, h)
        step = ns(g, "step", s)
        row = [size_name(i, h), fmt(step), fmt(ns(g, "run", s)), fmt(ns(g, "user_loop", s)), fmt(ns(g, "user_loop_in_place", s))]
        row += [fmt(ns(g, f"step_with/{b}", s)) for b in BACKENDS]
        naive = ns(g, "naive", s)
        row += [fmt(naive), times_fmt(ratio(naive, step))]
        rows.append(row)
    header = ["(I, H)", "step", "run", "user loop", "in place"] + [f"`{b}`" for b in BACKENDS] + ["naive", "naive / step"]
    return table(header, rows)


def half_table():
    """The half-size weight formats against the f32 cell of the same model, in the same group."""
    best = best_backend()
    rows = []
    for i, h in SIZES:
        g, s = step_group(i, h)
        step, half, pairs = ns(g, "step", s), ns(g, "step_half", s), ns(g, "step_bf16", s)
        read = ns(g, f"floor/weight-read-half/{best}", s)
        rows.append([size_name(i, h), fmt(step), fmt(half), fmt(pairs), fmt(ns(g, "run_half", s)), fmt(ns(g, "run_bf16", s)),
                     times_fmt(ratio(half, step)), times_fmt(ratio(pairs, step)), times_fmt(ratio(read, pairs))])
    header = ["(I, H)", "f32 `step`", "f16 `step`", "bf16 `step`", "f16 `run`", "bf16 `run`",
              "f16 / f32", "bf16 / f32", "half weight read / bf16 `step`"]
    return table(header, rows)


def half_by_backend_table():
    """`step_with` of the three formats on each fused backend, from H = 64 on."""
    rows = []
    for i, h in SIZES:
        g, s = step_group(i, h)
        for b in FUSED:
            f32 = ns(g, f"step_with/{b}/f32", s)
            if f32 is None:
                continue
            half, pairs = ns(g, f"step_with/{b}/half", s), ns(g, f"step_with/{b}/bf16", s)
            widen_half, widen_pairs = ns(g, f"floor/widen-half/{b}", s), ns(g, f"floor/widen-bf16/{b}", s)
            rows.append([size_name(i, h), f"`{b}`", fmt(f32), fmt(half), fmt(pairs), times_fmt(ratio(half, f32)), times_fmt(ratio(pairs, f32)),
                         times_fmt(ratio(half, widen_half)), times_fmt(ratio(pairs, widen_pairs)), times_fmt(ratio(widen_half, f32))])
    if not rows:
        return "(not measured in this run)"
    return table(["(I, H)", "backend", "f32", "f16", "bf16", "f16 / f32", "bf16 / f32",
                  "f16 / widen floor", "bf16 / widen floor", "f16 widen floor / f32"], rows)


def floors_table():
    rows = []
    for i, h in SIZES:
        g, s = step_group(i, h)
        row = [size_name(i, h), fmt(ns(g, "floor/column-chain", s)), fmt(ns(g, "floor/column-chain-calls", s)), fmt(ns(g, "floor/tree-chain", s))]
        row += [fmt(ns(g, f"floor/fma-peak/{b}", s)) for b in FUSED]
        row += [fmt(ns(g, f"floor/weight-read/{b}", s)) for b in FUSED]
        row += [fmt(ns(g, f"floor/weight-read-half/{b}", s)) for b in FUSED]
        rows.append(row)
    header = ["(I, H)", "column chain", "chain, a call per step", "tree chain"]
    header += [f"FMA peak `{b}`" for b in FUSED] + [f"weight read `{b}`" for b in FUSED] + [f"half weight read `{b}`" for b in FUSED]
    return table(header, rows)


def step_ratios_table():
    best = best_backend()
    rows = []
    for i, h in SIZES:
        g, s = step_group(i, h)
        step, run = ns(g, "step", s), ns(g, "run", s)
        column, tree = ns(g, "floor/column-chain", s), ns(g, "floor/tree-chain", s)
        peak, read = ns(g, f"floor/fma-peak/{best}", s), ns(g, f"floor/weight-read/{best}", s)
        relu = ns(g, "run_relu", s)
        rows.append([
            size_name(i, h),
            times_fmt(ratio(step, column)), times_fmt(ratio(run, column)),
            times_fmt(ratio(step, ns(g, "floor/column-chain-calls", s))), times_fmt(ratio(step, tree)),
            times_fmt(ratio(peak, step)), times_fmt(ratio(peak, run)), times_fmt(ratio(peak, relu)),
            times_fmt(ratio(read, step)),
        ])
    header = ["(I, H)", "step / column chain", "run / column chain", "step / call chain", "step / tree chain",
              "FMA peak / step", "FMA peak / run", "FMA peak / `run_relu`", "weight read / step"]
    return table(header, rows)


def banks_table():
    rows = []
    for i, h in BANKS:
        for n in STREAMS:
            g = s = f"{i}x{h}/n{n}"
            group = f"bank/{g}"
            bank, lanes, separate = ns(group, "bank", s), ns(group, "bank lanes", s), ns(group, "separate", s)
            fma, tanh, chain = ns(group, "floor/fma", s), ns(group, "floor/tanh", s), ns(group, "floor/chain", s)
            floor = None if fma is None or tanh is None else fma + tanh
            larger = None if floor is None or chain is None else max(floor, chain)
            rows.append([size_name(i, h), str(n), fmt(bank), fmt(lanes), fmt(separate), times_fmt(ratio(separate, bank)),
                         fmt(floor), fmt(chain), times_fmt(ratio(bank, larger)), times_fmt(ratio(lanes, larger))])
    header = ["(I, H)", "N", "`step`", "`step_unit_major`", "N separate cells", "separate / `step`",
              "throughput floor", "latency floor", "`step` / larger floor", "`step_unit_major` / larger floor"]
    return table(header, rows)


def blocks_table():
    rows = []
    for i, h, t in [(3, 2, 1024), (1, 16, 1024), (32, 64, 1024), (64, 128, 64), (64, 128, 1024), (128, 256, 1024)]:
        g = s = f"{i}x{h}/t{t}"
        per_step, process = ns(f"block/{g}", "per-step", s), ns(f"block/{g}", "process", s)
        rows.append([size_name(i, h), str(t), fmt(per_step), fmt(process), times_fmt(ratio(per_step, process))])
    return table(["(I, H)", "T", "`Rnn::step` per input", "`Rnn::process`", "per-step / `process`"], rows)


def subnormal_table():
    rows = []
    for i, h in [(1, 16), (64, 128)]:
        g = s = f"{i}x{h}"
        normal = ns(f"subnormal/{g}", "normal", s)
        row = [size_name(i, h), fmt(normal)]
        row += [times_fmt(ratio(ns(f"subnormal/{g}", name, s), normal)) for name in ["subnormal input", "subnormal state", "tiny weights"]]
        rows.append(row)
    return table(["(I, H)", "normal step ns", "subnormal input / normal", "subnormal state / normal", "subnormal weights / normal"], rows)


def tanh_tables():
    libm = ns("tanh/throughput", "f32::tanh", "4096")
    rows = [["`f32::tanh`", fmt(libm, 3), "1"]]
    for name, label in [("fast_tanh (scalar loop)", "`fast_tanh` in a scalar loop")] + [(b, f"`Backend::tanh_into`, `{b}`") for b in BACKENDS]:
        v = ns("tanh/throughput", name, "4096")
        if v is not None:
            rows.append([label, fmt(v, 3), times_fmt(ratio(libm, v))])
    throughput = table(["throughput", "ns per value", "× `f32::tanh`"], rows)
    # The division's floor: each backend's tanh against its division alone, and the most a
    # backend's tanh could gain over the `avx2+fma` one's if it ran at its divider's pace.
    avx2 = ns("tanh/throughput", "avx2+fma", "4096")
    rows = []
    for b in BACKENDS:
        tanh, divide = ns("tanh/throughput", b, "4096"), ns("tanh/throughput", f"{b} division", "4096")
        if tanh is not None and divide is not None:
            rows.append([f"`{b}`", fmt(tanh, 3), fmt(divide, 3), fmt(ratio(tanh, divide)),
                         fmt(ratio(avx2, tanh)), fmt(ratio(avx2, divide))])
    if rows:
        note = ("The tanh's one division, timed alone over the same buffer (`probe::divide_into`): a floor\n"
                "under the tanh's throughput, whatever its other operations. The last column is the most a\n"
                "backend's tanh could gain over the `avx2+fma` one's if the division were all its work.")
        header = ["backend", "`tanh_into` ns per value", "the division alone", "tanh / division",
                  "`avx2+fma` tanh / this tanh", "`avx2+fma` tanh / this division"]
        throughput += "\n\n" + note + "\n\n" + table(header, rows)
    rows = []
    for name, label in [("f32::tanh", "`f32::tanh` (with one multiply-add)"), ("fast_tanh", "`fast_tanh` (with one multiply-add)"),
                        ("fast_tanh_fused", "`fast_tanh_fused` (with one multiply-add)")] + [(f"{b} (tanh only)", f"`{b}`, in registers") for b in BACKENDS]:
        v = ns("tanh/latency", name)
        if v is not None:
            rows.append([label, fmt(v)])
    latency = table(["latency (a dependent chain)", "ns per evaluation"], rows)
    return throughput, latency


# ---------------------------------------------------------------- the plot

SERIES = [  # (function, label, colour, dash)
    ("step", "step", "#1f77b4", None),
    ("run", "run (a sequence in one call)", "#2ca02c", None),
    ("step_bf16", "step, bf16 weight pairs", "#9467bd", None),
    ("naive", "naive nalgebra step", "#d62728", None),
    ("floor/column-chain", "floor: column chain (latency)", "#7f7f7f", "2 3"),
    ("floor/fma-peak/avx2+fma", "floor: FMA peak, avx2+fma", "#ff7f0e", "6 3"),
    ("floor/fma-peak/avx512vl", "floor: FMA peak, avx512vl", "#bcbd22", "6 3"),
    ("floor/fma-peak/avx512", "floor: FMA peak, avx512", "#8c564b", "6 3"),
    ("floor/weight-read/avx2+fma", "floor: weight read, avx2+fma", "#ff7f0e", "2 2"),
    ("floor/weight-read/avx512vl", "floor: weight read, avx512vl", "#bcbd22", "2 2"),
    ("floor/weight-read/avx512", "floor: weight read, avx512", "#8c564b", "2 2"),
]


def svg(title):
    width, height = 900, 540
    left, right, top, bottom = 70, 290, 40, 100
    weights = {size: size[1] * (size[0] + size[1]) for size in SIZES}
    points = {}
    for function, *_ in SERIES:
        line = []
        for size in SIZES:
            g, s = step_group(*size)
            v = ns(g, function, s)
            if v is not None:
                line.append((weights[size], v))
        if line:
            points[function] = line
    values = [v for line in points.values() for _, v in line]
    if not values:
        return None
    y_lo = 10 ** math.floor(math.log10(min(values)))
    y_hi = 10 ** math.ceil(math.log10(max(values)))
    x_lo, x_hi = math.log10(min(weights.values())) - 0.15, math.log10(max(weights.values())) + 0.15
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(w):
        return left + (math.log10(w) - x_lo) / (x_hi - x_lo) * plot_w

    def y(v):
        return top + (1 - (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14">{escape(title)}</text>']
    decade = y_lo
    while decade <= y_hi * 1.0001:
        for m in range(1, 10):
            v = decade * m
            if v > y_hi * 1.0001:
                break
            colour = "#cccccc" if m == 1 else "#eeeeee"
            out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{colour}"/>')
        out.append(f'<text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">{decade:g}</text>')
        decade *= 10
    for size, w in weights.items():
        out.append(f'<line x1="{x(w):.1f}" x2="{x(w):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eeeeee"/>')
        label_y = top + plot_h + 14
        out.append(f'<text x="{x(w) + 4:.1f}" y="{label_y}" text-anchor="end" '
                   f'transform="rotate(-35 {x(w) + 4:.1f} {label_y})">{size_name(*size)} · {w}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333333"/>')
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 14}" text-anchor="middle">(I, H) and weights H·(I+H), log scale</text>')
    out.append(f'<text transform="translate(18 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">ns per step, log scale</text>')
    legend_y = top + 8
    for function, label, colour, dash in SERIES:
        line = points.get(function)
        if not line:
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        width_attr = 2.5 if dash is None else 2
        path = " ".join(f"{'M' if k == 0 else 'L'}{x(w):.1f},{y(v):.1f}" for k, (w, v) in enumerate(line))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{width_attr}"{dash_attr}/>')
        if dash is None:
            out += [f'<circle cx="{x(w):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>' for w, v in line]
        lx = left + plot_w + 16
        out.append(f'<line x1="{lx}" x2="{lx + 28}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="{width_attr}"{dash_attr}/>')
        out.append(f'<text x="{lx + 34}" y="{legend_y + 4}">{escape(label)}</text>')
        legend_y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- the report

METHOD = """\
Each bench group answers one question, and its members run in the same process one after the
other, so the ratios within a group come from the same run of the same machine; the figures are
criterion's median time per iteration divided by the work in it (a step, a stream-step, a value).
The benches run in passes (every bench once, then every bench again, each pass a share of the
run's time; the `passes` row above says how many) and each figure is the median of its bench's
passes: a neighbour's burst on the shared machine slows one pass of a bench, not the figure. The
two members of a ratio are each such a median, so they may come from different passes of the
same run. The machine's speed still drifts between runs: compare the ratios more than the
nanoseconds, and take a single figure as one run's, not as a constant.

The step benches carry the state through 64 dependent steps per iteration, as `step` called in a
loop (`step`, and `user loop` from a function the compiler does not inline, as a user's code calls
it; `in place`, that loop with `step_in_place`), as one call of `RnnCell::run` (`run`), and as the
step a user writes first with nalgebra,
`(w_xh * x + w_hh * h + b).map(f32::tanh)` (`naive`). Beside them, the floors of each size
(`benches/step.rs`, with `elman::kernel::probe`), timed for the work of the same number of steps:

- *column chain*: `H` dependent multiply-adds and a fast tanh per step, the chain a
  column-broadcast step waits on; *chain, a call per step*: the same with one call of the kernel
  per step, what any step that is a call cannot go below (`H ≤ 16`); *tree chain*: one
  multiply-add, `⌈log2 H⌉` additions and a fast tanh, the shortest chain any step can have;
- *FMA peak*: the step's `H·(I+H)` multiply-adds at the register-resident peak of each fused
  backend;
- *weight read*: reading the step's `H·(I+H)` weights from a buffer of that size, aligned as the
  cell's are, on each fused backend (from L1 at (32, 64), from L2 above); *half weight read*: half
  the bytes, the floor of the half-precision weights.

The bank benches (`benches/realtime.rs`) time one step of `N` streams per iteration, per stream,
against `N` separate cells stepped in a loop and two floors: the *throughput floor*, the
`N·H·(I+H)` multiply-adds at the FMA peak plus the `N·H` fast tanh evaluations at their buffer
throughput; and the *latency floor*, one step's chain of `H` multiply-adds and a fast tanh, which
every bank step waits for whatever `N`. The tanh benches (`benches/tanh.rs`) time a 4096-value
buffer (throughput) and a chain of dependent evaluations (latency)."""


def main_report():
    return REPORT.resolve() == Path("BENCHMARKS.md").resolve()


def picture_link():
    return os.path.relpath(SVG, REPORT.parent)


def regenerate():
    if main_report():
        return ("Regenerate this file, `docs/step.svg` and the README's table with"
                " `scripts/benchmarks.sh`\n(`BENCH_RUN=0 scripts/benchmarks.sh` rewrites them"
                " from the last run's estimates).")
    return (f"Regenerate this file and `{SVG}` with `BENCH_REPORT={REPORT} BENCH_SVG={SVG}"
            " scripts/benchmarks.sh`\non the machine it names (with `BENCH_RUN=0`, from the"
            " last run's estimates).")


def report():
    throughput, latency = tanh_tables()
    return f"""# Benchmarks

<!-- Generated by scripts/benchmarks.sh (scripts/benchmarks.py); edits here are overwritten. -->

{regenerate()}
`RUSTFLAGS="-C target-cpu=native" scripts/benchmarks.sh` measures a native build instead, where
the kernel may inline into its callers; the flags row says which build a report is.

| | |
| --- | --- |
| CPU | {machine()} |
| compiler | {rustc_version()} |
| flags | {flags()} |
| backend | {backend_line()} |
| passes | {passes_line()} |
| date | {logged("date", "unknown")} |

## Method

{METHOD}

## Headline

{headline()}

## Step: ns per step against model size

![ns per step against model size, with the floors]({picture_link()})

{steps_table()}

`step_with` runs each backend explicitly; `step` is the backend `Backend::best()` picks.

### The floors, ns per step

{floors_table()}

### The step against its floors

A ratio below 1 over a chain floor is possible: the step splits its sum into interleaved partial
sums, which shortens the chain the state waits on. The floors on the right use the backend
`Backend::best()` picks.

{step_ratios_table()}

## Half-size weights: ns per step

The same model stepped with its weights as f32 (`RnnCell`), IEEE binary16 (`HalfCell`, a
conversion per multiply-add) and bf16 column pairs (`Bf16Cell`, a shift per two columns), each
`step` called in a loop as above; the floor is the half weight read of the backend
`Backend::best()` picks.

{half_table()}

`step_with` of each format on each fused backend, over the f32 step and over the format's
widening floor (`floor/widen-half`, `floor/widen-bf16`: every weight read and widened as the step
does, with nothing waiting on a broadcast). Where the widening floor itself is above 0.6 of the
f32 step, the conversion, not the bytes read, is what keeps that format from halving the step.

{half_by_backend_table()}

## Many streams: ns per stream-step

`step` takes one input vector per stream, `step_unit_major` the inputs unit-major.

{banks_table()}

## Blocks: ns per step

{blocks_table()}

## Subnormal operands

A step from subnormal inputs, states and weights against the same step from normal ones (the
flush keeps every multiply-add's operands normal).

{subnormal_table()}

## The fast tanh

{throughput}

{latency}
"""


def update_readme():
    if not README.exists():
        return
    text = README.read_text()
    start, end = "<!-- benchmarks:headline -->", "<!-- /benchmarks:headline -->"
    if start not in text or end not in text:
        return
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    rustc = rustc_version().split(" (")[0]
    lead = (f"{cpu()}{vcpus()}; {rustc}; {flags().split(' (')[0]}; {logged('date', 'unknown')}."
            "\nMedians of one run of `scripts/benchmarks.sh`, in ns per step, per stream-step or per value.")
    block = f"{start}\n{lead}\n\n{headline()}\n{end}"
    README.write_text(before + block + after)


def main():
    title = f"elman: ns per step, {cpu()}, {logged('date', '')}".rstrip(", ")
    picture = svg(title)
    if picture is not None:
        SVG.parent.mkdir(parents=True, exist_ok=True)
        SVG.write_text(picture)
    REPORT.write_text(report())
    if main_report():
        update_readme()
        print(f"wrote {REPORT}, {SVG} and the headline table of {README}")
    else:
        print(f"wrote {REPORT} and {SVG}")


if __name__ == "__main__":
    main()
