//! `RnnCell::step` (carried state), `RnnCell::run_with` on each backend, and `RnnBank::step` /
//! `step_unit_major` of the working tree (`B`)
//! against another revision of the crate (`A`, built as `elman_a`), in one process: 15 rounds,
//! A and B interleaved in each, the best round of each kept. On a noisy machine this compares
//! two versions far more reliably than two bench runs. Then, within `B` and the same way, the
//! pairs of `benches/realtime.rs`: `Rnn::process` against per-step calls over 1024 inputs.
//! The `process` group times `Rnn::process` and `Rnn::step` with a readout of 2 outputs, `A`
//! and `B` interleaved; the `heads` group the same with 4, 7, 8, 10, 15 and 16 outputs.
//! The `denormal` group times, for `A` and `B` interleaved, steps and banks with subnormal
//! inputs, states and weights and a decaying input sequence, each over its normal twin. The
//! `tanh` group times the fast tanh of the AVX2+FMA and 512-bit backends, `A` and `B`
//! interleaved: over a buffer, and through a chain of dependent evaluations. The `bf16` group
//! times the bf16-pair cell's step, `A` and `B` interleaved, and within `B` over the f32 step,
//! the weight-read floors and the widening floor; the `half` group the same of the binary16
//! cell. Run through `scripts/ab.sh REV`.

use std::hint::black_box;
use std::time::Instant;

use elman::nalgebra::{SMatrix, SVector};

const ROUNDS: usize = 15;

/// The benches' cell: a fixed hash scaled by `1/√(I+H)`.
macro_rules! cell {
    ($krate:ident, $i:expr, $h:expr) => {{
        let scale = 1.0 / (($i + $h) as f32).sqrt();
        let value = |r: usize, c: usize, salt: usize| {
            (((r * 7919 + c * 104_729 + salt) % 2001) as f32 / 1000.0 - 1.0) * scale
        };
        $krate::RnnCell::<$i, $h>::new(
            SMatrix::from_fn(|r, c| value(r, c, 1)),
            SMatrix::from_fn(|r, c| value(r, c, 2)),
            SVector::from_fn(|r, c| value(r, c, 3)),
        )
    }};
}

/// Nanoseconds per call of `f`, over `reps` calls (each result handed to `black_box`).
fn time<R>(mut f: impl FnMut() -> R, reps: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..reps {
        black_box(f());
    }
    start.elapsed().as_nanos() as f64 / reps as f64
}

/// `len` copies of `value` from a 64-byte boundary, as in benches/support (`Aligned`): a buffer
/// with room to start there, and the offset of that start.
fn aligned(len: usize, value: f32) -> (Vec<f32>, usize) {
    let buffer = vec![value; len + 16];
    let offset = buffer.as_ptr().align_offset(64).min(16);
    (buffer, offset)
}

/// `fn $name(cell, xs) -> h`: 64 dependent steps of a `$krate` cell (an `RnnCell`, or the
/// `$cell` named) from a zero state, as a function of its own.
macro_rules! steps_fn {
    ($name:ident, $krate:ident, $i:expr, $h:expr) => {
        steps_fn!($name, $krate, RnnCell, $i, $h);
    };
    ($name:ident, $krate:ident, $cell:ident, $i:expr, $h:expr) => {
        /// `step`, or `step_with` the backend if there is one.
        #[inline(never)]
        fn $name(
            cell: &$krate::$cell<$i, $h>,
            xs: &[SVector<f32, $i>],
            backend: Option<$krate::Backend>,
        ) -> SVector<f32, $h> {
            let h0 = black_box(SVector::<f32, $h>::zeros());
            let mut h = h0;
            match backend {
                None => {
                    for x in xs.iter().cycle().take(64) {
                        h = cell.step(black_box(x), &h);
                    }
                }
                Some(backend) => {
                    for x in xs.iter().cycle().take(64) {
                        h = cell.step_with(backend, black_box(x), &h);
                    }
                }
            }
            h
        }
    };
}

macro_rules! step_ab {
    ($i:expr, $h:expr) => {{
        let xs: Vec<SVector<f32, $i>> = (0..4)
            .map(|t| SVector::from_fn(|k, _| ((t * 31 + k * 17) % 13) as f32 / 6.5 - 1.0))
            .collect();
        let a = Box::new(cell!(elman_a, $i, $h));
        let b = Box::new(cell!(elman, $i, $h));
        let reps = 4_000_000 / ($h * ($i + $h)) + 1000;
        // 64 dependent steps per call, the state a local of the loop and returned (as in
        // `benches/step.rs`), each loop a function of its own, as a caller's would be: a state
        // captured by the timed closure, or handed to `black_box` itself, lives in memory, and
        // in one large function the register allocator may keep it on the stack; either way
        // every step's result would go through memory.
        steps_fn!(steps_a, elman_a, $i, $h);
        steps_fn!(steps_b, elman, $i, $h);
        let (ba, bb) = named_backends().unzip();
        let (mut ta, mut tb) = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            ta = ta.min(time(|| steps_a(&a, &xs, ba), reps / 64 + 1) / 64.0);
            tb = tb.min(time(|| steps_b(&b, &xs, bb), reps / 64 + 1) / 64.0);
        }
        println!(
            "step ({:3}, {:3})        A {ta:8.1}  B {tb:8.1} ns/step    B/A {:.2}",
            $i,
            $h,
            tb / ta
        );
    }};
}

/// `RnnCell::run_with` over 64 inputs on each backend both sides have (by name), `A` and `B`
/// interleaved: the sequence kernel, whose state stays in the kernel from step to step. The
/// `avx512` rows of cells below `Backend`'s narrowing size run its 8-lane sibling's kernel.
macro_rules! run_ab {
    ($i:expr, $h:expr) => {{
        let xs: Vec<SVector<f32, $i>> = (0..64)
            .map(|t| SVector::from_fn(|k, _| (((t % 4) * 31 + k * 17) % 13) as f32 / 6.5 - 1.0))
            .collect();
        let a = Box::new(cell!(elman_a, $i, $h));
        let b = Box::new(cell!(elman, $i, $h));
        let reps = (4_000_000 / ($h * ($i + $h)) + 1000) / 64 + 1;
        for backend in elman::Backend::available() {
            let Some(backend_a) =
                elman_a::Backend::available().find(|a| a.name() == backend.name())
            else {
                continue;
            };
            let (mut ta, mut tb) = (f64::MAX, f64::MAX);
            for _ in 0..ROUNDS {
                let h = SVector::zeros();
                ta = ta.min(
                    time(
                        || a.run_with(backend_a, black_box(&xs), &black_box(h)),
                        reps,
                    ) / 64.0,
                );
                tb = tb
                    .min(time(|| b.run_with(backend, black_box(&xs), &black_box(h)), reps) / 64.0);
            }
            println!(
                "run ({:3}, {:3}) {:>9}  A {ta:8.1}  B {tb:8.1} ns/step    B/A {:.2}",
                $i,
                $h,
                backend.name(),
                tb / ta
            );
        }
    }};
}

/// The step of a half-size cell (`Bf16Cell` for the `bf16` group, `HalfCell` for `half`), `A`
/// and `B` interleaved; then, per round within `B`, its step over the f32 cell's, over the
/// weight-read floors (all the weights' bytes, and half of them) and over the widening floor
/// (`probe::$widen`), the median of the rounds.
macro_rules! half_ab {
    ($cell:ident, $widen:ident, $label:expr, $i:expr, $h:expr) => {{
        let xs: Vec<SVector<f32, $i>> = (0..4)
            .map(|t| SVector::from_fn(|k, _| ((t * 31 + k * 17) % 13) as f32 / 6.5 - 1.0))
            .collect();
        let a = Box::new(elman_a::$cell::from_cell(&cell!(elman_a, $i, $h)).unwrap());
        let b = Box::new(elman::$cell::from_cell(&cell!(elman, $i, $h)).unwrap());
        let f = Box::new(cell!(elman, $i, $h));
        // Calls of 64 steps (or of 64 weight reads) per timing.
        let calls = (4_000_000 / ($h * ($i + $h)) + 1000) / 64 + 1;
        steps_fn!(steps_a, elman_a, $cell, $i, $h);
        steps_fn!(steps_b, elman, $cell, $i, $h);
        steps_fn!(steps_f32, elman, $i, $h);
        let (ba, bb) = named_backends().unzip();
        let best = bb.unwrap_or_else(elman::Backend::best);
        let len = ($h * ($i + $h) as usize).next_multiple_of(64);
        let (buffer, offset) = aligned(len, 0.5);
        let weights = &buffer[offset..offset + len];
        let read = |values: &[f32]| {
            let mut total = 0.0;
            for _ in 0..64 {
                total += elman::kernel::probe::stream_sum(best, black_box(values));
            }
            total
        };
        let (mut ta, mut tb) = (f64::MAX, f64::MAX);
        let widen = || {
            let mut total = 0.0;
            for _ in 0..64 {
                total += elman::kernel::probe::$widen(best, black_box(&b));
            }
            total
        };
        let (mut over_f32, mut over_half, mut over_full, mut over_widen) =
            (vec![], vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            ta = ta.min(time(|| steps_a(&a, &xs, ba), calls) / 64.0);
            let tb_round = time(|| steps_b(&b, &xs, bb), calls) / 64.0;
            let f32_round = time(|| steps_f32(&f, &xs, bb), calls) / 64.0;
            let half_round = time(|| read(&weights[..len / 2]), calls) / 64.0;
            let full_round = time(|| read(weights), calls) / 64.0;
            let widen_round = time(widen, calls) / 64.0;
            tb = tb.min(tb_round);
            over_f32.push(tb_round / f32_round);
            over_half.push(tb_round / half_round);
            over_full.push(f32_round / full_round);
            over_widen.push(tb_round / widen_round);
        }
        println!(
            "{:4} ({:3}, {:3})        A {ta:8.1}  B {tb:8.1} ns/step    B/A {:.2}   B: {0} / f32 {:.2}, {0} / half read {:.2}, {0} / widen {:.2}, f32 / read {:.2} (medians of rounds)",
            $label,
            $i,
            $h,
            tb / ta,
            median(over_f32),
            median(over_half),
            median(over_widen),
            median(over_full)
        );
    }};
}

macro_rules! bank_ab {
    ($i:expr, $h:expr, $n:expr) => {{
        let xs: [SVector<f32, $i>; $n] =
            core::array::from_fn(|s| SVector::from_element((s % 7) as f32 / 3.5 - 1.0));
        let lanes: [[f32; $n]; $i] = core::array::from_fn(|k| core::array::from_fn(|s| xs[s][k]));
        let (backend_a, backend) = bank_backends();
        let mut a = Box::new(
            elman_a::RnnBank::<$i, $h, $n>::new(cell!(elman_a, $i, $h)).with_backend(backend_a),
        );
        let mut b =
            Box::new(elman::RnnBank::<$i, $h, $n>::new(cell!(elman, $i, $h)).with_backend(backend));
        let reps = 2_000_000 / ($n * $h);
        let (mut ta, mut tb, mut la, mut lb) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        // The throughput floor of benches/realtime.rs: the multiply-adds at the register-resident
        // peak plus the tanh evaluations at their buffer throughput, on the banks' backend.
        let multiply_adds = $n * $h * ($i + $h) as usize;
        let ((mut values, vs), (mut out, os)) = (aligned($n * $h, 0.25), aligned($n * $h, 0.0));
        let values = &mut values[vs..vs + $n * $h];
        let out = &mut out[os..os + $n * $h];
        let (mut fma, mut tanh) = (f64::MAX, f64::MAX);
        let mut carried = 0.5_f32;
        // Per round, the bank over the floors timed right after it: on this machine the speed
        // drifts in phases, and the best rounds of two things can come from different phases.
        let (mut step_over, mut lanes_over, mut lanes_over_chain) = (vec![], vec![], vec![]);
        for _ in 0..ROUNDS {
            ta = ta.min(time(|| a.step(black_box(&xs)), reps));
            let tb_round = time(|| b.step(black_box(&xs)), reps);
            la = la.min(time(|| a.step_unit_major(black_box(&lanes)), reps));
            let lb_round = time(|| b.step_unit_major(black_box(&lanes)), reps);
            let fma_round = time(|| { black_box(elman::kernel::probe::fma_burst(backend, multiply_adds, black_box(0.5))); }, reps);
            let tanh_round = time(|| backend.tanh_into(black_box(&*values), &mut *out), reps);
            let chain_round = time(|| carried = elman::kernel::probe::floor_chain(backend, 1, $h, 0, carried), reps);
            step_over.push(tb_round / (fma_round + tanh_round));
            lanes_over.push(lb_round / (fma_round + tanh_round));
            lanes_over_chain.push(lb_round / chain_round);
            (tb, lb) = (tb.min(tb_round), lb.min(lb_round));
            (fma, tanh) = (fma.min(fma_round), tanh.min(tanh_round));
        }
        let n = f64::from($n);
        println!(
            "bank ({:2}, {:2}) N = {:3}  A {:8.2}  B {:8.2} ns/stream  B/A {:.2}   lanes: A {:6.2}  B {:6.2}  B/A {:.2}   B over floor, best over best (median of rounds): step {:.2} ({:.2}), lanes {:.2} ({:.2}); lanes over chain floor ({:.2})",
            $i, $h, $n, ta / n, tb / n, tb / ta, la / n, lb / n, lb / la,
            tb / (fma + tanh), median(step_over), lb / (fma + tanh), median(lanes_over),
            median(lanes_over_chain)
        );
    }};
}

/// The bank group's backend, on both sides: `AB_BACKEND` (a `Backend::name`, such as
/// `avx2+fma`) if set, else `Backend::best`. Panics if either side has no backend of that name.
fn bank_backends() -> (elman_a::Backend, elman::Backend) {
    named_backends().unwrap_or_else(|| {
        let b = elman::Backend::best();
        let a = elman_a::Backend::available()
            .find(|a| a.name() == b.name())
            .unwrap_or_else(|| panic!("side A has no backend named {}", b.name()));
        (a, b)
    })
}

/// The backend `AB_BACKEND` names, on each side (the step, bf16 and half groups then call
/// `step_with` it, and the process and heads groups' networks run on it); `None` when it is
/// unset.
fn named_backends() -> Option<(elman_a::Backend, elman::Backend)> {
    let name = std::env::var("AB_BACKEND").ok()?;
    let b = elman::Backend::available()
        .find(|b| b.name() == name)
        .unwrap_or_else(|| panic!("AB_BACKEND={name}: no backend of that name on this CPU"));
    let a = elman_a::Backend::available()
        .find(|a| a.name() == name)
        .unwrap_or_else(|| panic!("side A has no backend named {name}"));
    Some((a, b))
}

/// The median of `values` (the upper one of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

macro_rules! block_pair {
    ($i:expr, $h:expr) => {{
        let xs: Vec<SVector<f32, $i>> = (0..1024)
            .map(|t| SVector::from_element((t % 13) as f32 / 6.5 - 1.0))
            .collect();
        let head = elman::Readout::<$h, 2>::new(SMatrix::from_element(0.1), SVector::zeros());
        let mut rnn = Box::new(elman::Rnn::new(cell!(elman, $i, $h), head));
        let mut ys = vec![SVector::<f32, 2>::zeros(); xs.len()];
        let (mut per_step, mut block) = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            per_step = per_step.min(time(
                || {
                    for (x, y) in xs.iter().zip(ys.iter_mut()) {
                        *y = rnn.step(black_box(x));
                    }
                },
                4,
            ));
            block = block.min(time(|| rnn.process(black_box(&xs), &mut ys), 4));
        }
        println!(
            "B: process ({:3}, {:3}), T = 1024: per-step {:8.1}  process {:8.1} ns/step  per-step/process {:.2}",
            $i, $h, per_step / 1024.0, block / 1024.0, per_step / block
        );
    }};
}

macro_rules! process_ab {
    ($i:expr, $h:expr) => {
        process_ab!($i, $h, 2)
    };
    ($i:expr, $h:expr, $o:expr) => {{
        let xs: Vec<SVector<f32, $i>> = (0..1024)
            .map(|t| SVector::from_element((t % 13) as f32 / 6.5 - 1.0))
            .collect();
        let head_a = elman_a::Readout::<$h, $o>::new(SMatrix::from_element(0.1), SVector::zeros());
        let head_b = elman::Readout::<$h, $o>::new(SMatrix::from_element(0.1), SVector::zeros());
        let mut a = Box::new(elman_a::Rnn::new(cell!(elman_a, $i, $h), head_a));
        let mut b = Box::new(elman::Rnn::new(cell!(elman, $i, $h), head_b));
        // On `AB_BACKEND`'s backend if set, else on each side's `Backend::best`.
        if let Some((backend_a, backend_b)) = named_backends() {
            a.set_backend(backend_a);
            b.set_backend(backend_b);
        }
        let mut ys = vec![SVector::<f32, $o>::zeros(); xs.len()];
        let (mut ta, mut tb, mut sa, mut sb) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            ta = ta.min(time(|| a.process(black_box(&xs), &mut ys), 4));
            tb = tb.min(time(|| b.process(black_box(&xs), &mut ys), 4));
            // The same inputs through `Rnn::step`, one call per input, the state in the network.
            sa = sa.min(time(|| for (x, y) in xs.iter().zip(ys.iter_mut()) { *y = a.step(black_box(x)); }, 4));
            sb = sb.min(time(|| for (x, y) in xs.iter().zip(ys.iter_mut()) { *y = b.step(black_box(x)); }, 4));
        }
        println!(
            "process ({:3}, {:3}), O = {:2}, T = 1024  A {:8.1}  B {:8.1} ns/step  B/A {:.2}   Rnn::step: A {:8.1}  B {:8.1} ns/step  B/A {:.2}",
            $i,
            $h,
            $o,
            ta / 1024.0,
            tb / 1024.0,
            tb / ta,
            sa / 1024.0,
            sb / 1024.0,
            sb / sa
        );
    }};
}

/// The cell of `cell!` with every other weight subnormal.
macro_rules! tiny_cell {
    ($krate:ident, $i:expr, $h:expr) => {{
        let c = cell!($krate, $i, $h);
        let tiny = f32::MIN_POSITIVE / 64.0;
        $krate::RnnCell::<$i, $h>::new(
            SMatrix::from_fn(|r, k| {
                if (r + k) % 2 == 0 {
                    tiny
                } else {
                    c.w_xh()[(r, k)]
                }
            }),
            SMatrix::from_fn(|r, k| {
                if (r + k) % 2 == 0 {
                    tiny
                } else {
                    c.w_hh()[(r, k)]
                }
            }),
            *c.bias(),
        )
    }};
}

/// For `A` and `B` in turn, interleaved: a step from normal operands and the same step with a
/// subnormal input, a subnormal state and subnormal weights; `Rnn::step` over 1500 inputs
/// decaying as `0.9^t` against 1500 ordinary ones; each case over its normal twin.
macro_rules! denormal_ab {
    ($i:expr, $h:expr) => {{
        let tiny = f32::MIN_POSITIVE / 64.0;
        let (x, tx) = (SVector::<f32, $i>::from_element(0.5), SVector::<f32, $i>::from_element(tiny));
        let (h, th) = (SVector::<f32, $h>::from_element(0.25), SVector::<f32, $h>::from_element(tiny));
        let reps = 4_000_000 / ($h * ($i + $h)) + 1000;
        let decaying: Vec<SVector<f32, $i>> =
            (0..1500).map(|t| SVector::from_element(0.9_f32.powi(t))).collect();
        let ordinary: Vec<SVector<f32, $i>> =
            (0..1500).map(|t| SVector::from_element((t % 13) as f32 / 6.5 - 1.0)).collect();
        // Borrowed by both sides' closures.
        let (ordinary, decaying) = (&ordinary, &decaying);
        macro_rules! side {
            ($krate:ident) => {{
                let cell = Box::new(cell!($krate, $i, $h));
                let tiny_cell = Box::new(tiny_cell!($krate, $i, $h));
                let head = $krate::Readout::<$h, 4>::new(SMatrix::from_element(0.1), SVector::zeros());
                let mut rnn = Box::new($krate::Rnn::new(cell!($krate, $i, $h), head));
                let mut times = [f64::MAX; 6];
                move |times_out: &mut [f64; 6]| {
                    let t = [
                        time(|| cell.step(black_box(&x), black_box(&h)), reps),
                        time(|| cell.step(black_box(&tx), black_box(&h)), reps),
                        time(|| cell.step(black_box(&x), black_box(&th)), reps),
                        time(|| tiny_cell.step(black_box(&x), black_box(&h)), reps),
                        time(|| { rnn.reset(); for x in ordinary { black_box(rnn.step(black_box(x))); } }, 3) / 1500.0,
                        time(|| { rnn.reset(); for x in decaying { black_box(rnn.step(black_box(x))); } }, 3) / 1500.0,
                    ];
                    for (best, now) in times.iter_mut().zip(t) {
                        *best = best.min(now);
                    }
                    *times_out = times;
                }
            }};
        }
        let (mut a, mut b) = (side!(elman_a), side!(elman));
        let (mut ta, mut tb) = ([0.0; 6], [0.0; 6]);
        for _ in 0..ROUNDS {
            a(&mut ta);
            b(&mut tb);
        }
        for (name, t) in [("A", ta), ("B", tb)] {
            println!(
                "{name}: denormal ({:3}, {:3}): step {:8.1} ns; over it: subnormal input {:6.2}, subnormal state {:6.2}, tiny weights {:6.2}; Rnn::step decaying {:8.1} over ordinary {:8.1} ns: {:6.2}",
                $i, $h, t[0], t[1] / t[0], t[2] / t[0], t[3] / t[0], t[5], t[4], t[5] / t[4]
            );
        }
    }};
}

/// The same for a bank of `N` streams: subnormal inputs, states and weights against normal
/// ones, and 1500 steps of decaying inputs against 1500 ordinary ones.
macro_rules! denormal_bank_ab {
    ($i:expr, $h:expr, $n:expr) => {{
        let tiny = f32::MIN_POSITIVE / 64.0;
        let ordinary = [SVector::<f32, $i>::from_element(0.5); $n];
        let tiny_xs = [SVector::<f32, $i>::from_element(tiny); $n];
        let decaying: Vec<[SVector<f32, $i>; $n]> = (0..1500)
            .map(|t| core::array::from_fn(|s| SVector::from_element(0.9_f32.powi(t + i32::try_from(s).expect("a stream index, below N")))))
            .collect();
        let sequence: Vec<[SVector<f32, $i>; $n]> = (0..1500)
            .map(|t| core::array::from_fn(|s| SVector::from_element(((t + s) % 13) as f32 / 6.5 - 1.0)))
            .collect();
        let (decaying, sequence) = (&decaying, &sequence);
        let reps = 2_000_000 / ($n * $h);
        macro_rules! side {
            ($krate:ident) => {{
                let mut bank = Box::new($krate::RnnBank::<$i, $h, $n>::new(cell!($krate, $i, $h)));
                let mut tiny_bank = Box::new($krate::RnnBank::<$i, $h, $n>::new(tiny_cell!($krate, $i, $h)));
                let mut times = [f64::MAX; 6];
                move |times_out: &mut [f64; 6]| {
                    let with = |bank: &mut $krate::RnnBank<$i, $h, $n>, xs: &[SVector<f32, $i>; $n], state: f32| {
                        time(|| {
                            for s in 0..$n {
                                bank.set_state(s, &SVector::from_element(state));
                            }
                            bank.step(black_box(xs));
                        }, reps)
                    };
                    let run = |bank: &mut $krate::RnnBank<$i, $h, $n>, xs: &Vec<[SVector<f32, $i>; $n]>| {
                        time(|| {
                            bank.reset();
                            for x in xs {
                                bank.step(black_box(x));
                            }
                        }, 3) / 1500.0
                    };
                    let t = [
                        with(&mut bank, &ordinary, 0.25),
                        with(&mut bank, &tiny_xs, 0.25),
                        with(&mut bank, &ordinary, tiny),
                        with(&mut tiny_bank, &ordinary, 0.25),
                        run(&mut bank, sequence),
                        run(&mut bank, decaying),
                    ];
                    for (best, now) in times.iter_mut().zip(t) {
                        *best = best.min(now);
                    }
                    *times_out = times;
                }
            }};
        }
        let (mut a, mut b) = (side!(elman_a), side!(elman));
        let (mut ta, mut tb) = ([0.0; 6], [0.0; 6]);
        for _ in 0..ROUNDS {
            a(&mut ta);
            b(&mut tb);
        }
        for (name, t) in [("A", ta), ("B", tb)] {
            println!(
                "{name}: denormal bank ({:2}, {:2}) N = {:3}: step {:8.1} ns; over it: subnormal input {:6.2}, subnormal state {:6.2}, tiny weights {:6.2}; decaying {:8.1} over ordinary {:8.1} ns/step: {:6.2}",
                $i, $h, $n, t[0], t[1] / t[0], t[2] / t[0], t[3] / t[0], t[5], t[4], t[5] / t[4]
            );
        }
    }};
}

/// The fast tanh of 4096 values (`Backend::tanh_into`) and of a chain of 256 dependent
/// evaluations (`probe::floor_chain` with no multiply-add), on the AVX2+FMA and the 512-bit
/// backends, `A` and `B` interleaved; then, for each side, the 512-bit backend's buffer
/// throughput over the AVX2+FMA backend's.
fn tanh_ab() {
    const N: usize = 4096;
    const CHAIN: usize = 256;
    let xs: Vec<f32> = (0..N).map(|i| (i as f32 / N as f32) * 12.0 - 6.0).collect();
    let mut out = vec![0.0_f32; N];
    let pairs = [
        (
            "avx2+fma",
            elman_a::Backend::avx2_fma(),
            elman::Backend::avx2_fma(),
        ),
        (
            "avx512",
            elman_a::Backend::avx512(),
            elman::Backend::avx512(),
        ),
    ];
    let mut buffers = Vec::new();
    for (name, a, b) in pairs {
        let (Some(a), Some(b)) = (a, b) else {
            println!("tanh {name}: not on this CPU");
            continue;
        };
        let (mut ta, mut tb, mut la, mut lb) = (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            ta = ta.min(time(|| a.tanh_into(black_box(&xs), &mut out), 2000));
            tb = tb.min(time(|| b.tanh_into(black_box(&xs), &mut out), 2000));
            let chain_a = || elman_a::kernel::probe::floor_chain(a, CHAIN, 0, 0, black_box(0.7));
            let chain_b = || elman::kernel::probe::floor_chain(b, CHAIN, 0, 0, black_box(0.7));
            la = la.min(time(chain_a, 2000));
            lb = lb.min(time(chain_b, 2000));
        }
        println!(
            "tanh {name:8} {N} values  A {ta:8.1}  B {tb:8.1} ns  B/A {:.2};  chain of {CHAIN}  A {la:8.1}  B {lb:8.1} ns  B/A {:.2}",
            tb / ta,
            lb / la
        );
        buffers.push((ta, tb));
    }
    if let [(a2, b2), (a5, b5)] = buffers[..] {
        println!(
            "tanh buffer throughput, avx512 over avx2+fma: A {:.2}  B {:.2}",
            a2 / a5,
            b2 / b5
        );
    }
}

/// `$group` (a group's macro call) as a function of its own: a group builds its cells on the
/// stack before it boxes them, and in one function the frames of all the groups would add up
/// past the main thread's stack.
macro_rules! alone {
    ($group:expr) => {{
        #[inline(never)]
        fn group() {
            $group
        }
        group()
    }};
}

/// `process_ab!` of 4, 7, 8, 10, 15 and 16 outputs, each alone.
macro_rules! for_heads {
    ($i:expr, $h:expr) => {{
        alone!(process_ab!($i, $h, 4));
        alone!(process_ab!($i, $h, 7));
        alone!(process_ab!($i, $h, 8));
        alone!(process_ab!($i, $h, 10));
        alone!(process_ab!($i, $h, 15));
        alone!(process_ab!($i, $h, 16));
    }};
}

fn main() {
    let rev = std::env::args().nth(1).unwrap_or_default();
    println!(
        "A = {rev}, B = the working tree; {}",
        elman::kernel::probe::build_info()
    );
    // AB_ONLY=step,run,bank,process,heads,pairs,denormal,tanh,bf16,half runs only those
    // groups, each call below a function of its own (`alone!`).
    let only = std::env::var("AB_ONLY").unwrap_or_default();
    let run = |group: &str| only.is_empty() || only.split(',').any(|o| o == group);
    if run("step") {
        if let Some((_, b)) = named_backends() {
            println!("step: step_with {}", b.name());
        }
        alone!(step_ab!(3, 2));
        alone!(step_ab!(1, 8));
        alone!(step_ab!(1, 16));
        alone!(step_ab!(16, 16));
        alone!(step_ab!(24, 24));
        alone!(step_ab!(32, 32));
        alone!(step_ab!(32, 64));
        alone!(step_ab!(64, 128));
        alone!(step_ab!(128, 256));
    }
    if run("run") {
        alone!(run_ab!(3, 2));
        alone!(run_ab!(1, 8));
        alone!(run_ab!(1, 16));
        alone!(run_ab!(16, 16));
        alone!(run_ab!(9, 20));
        alone!(run_ab!(3, 33));
        alone!(run_ab!(32, 64));
    }
    if run("bank") {
        println!("bank: backend {}", bank_backends().1.name());
        alone!(bank_ab!(3, 2, 8));
        alone!(bank_ab!(3, 2, 32));
        alone!(bank_ab!(3, 2, 128));
        alone!(bank_ab!(1, 8, 8));
        alone!(bank_ab!(1, 8, 32));
        alone!(bank_ab!(1, 8, 128));
        alone!(bank_ab!(1, 16, 8));
        alone!(bank_ab!(1, 16, 32));
        alone!(bank_ab!(1, 16, 128));
        alone!(bank_ab!(16, 32, 8));
        alone!(bank_ab!(16, 32, 32));
        alone!(bank_ab!(16, 32, 128));
        alone!(bank_ab!(32, 64, 32));
        alone!(bank_ab!(64, 128, 32));
    }
    if (run("process") || run("heads"))
        && let Some((_, b)) = named_backends()
    {
        println!("process, heads: on {}", b.name());
    }
    if run("process") {
        alone!(process_ab!(3, 2));
        alone!(process_ab!(1, 4));
        alone!(process_ab!(1, 16));
        alone!(process_ab!(16, 16));
        alone!(process_ab!(32, 64));
        alone!(process_ab!(64, 128));
        alone!(process_ab!(128, 256));
    }
    if run("heads") {
        // Readouts of more outputs, on the sizes where the step is short beside them.
        for_heads!(16, 16);
        for_heads!(32, 64);
        for_heads!(64, 128);
    }
    if run("pairs") {
        // Side B alone, on `Backend::best` whatever `AB_BACKEND` says.
        alone!(block_pair!(3, 2));
        alone!(block_pair!(1, 16));
        alone!(block_pair!(32, 64));
        alone!(block_pair!(64, 128));
        alone!(block_pair!(128, 256));
    }
    if run("denormal") {
        // One size per path of a caller's state in a default build (`Backend::step_weights`):
        // by value up to 4 units, as packed pairs checked before the call to 8 and on entry
        // to 16, by address checked before the call to 48, in the kernel above.
        alone!(denormal_ab!(3, 2));
        alone!(denormal_ab!(2, 6));
        alone!(denormal_ab!(1, 16));
        alone!(denormal_ab!(24, 24));
        alone!(denormal_ab!(64, 128));
        alone!(denormal_bank_ab!(1, 16, 32));
        // Inputs transposed before the step, and flushed as they are moved.
        alone!(denormal_bank_ab!(16, 32, 32));
    }
    if run("tanh") {
        tanh_ab();
    }
    if run("bf16") {
        alone!(half_ab!(Bf16Cell, widen_bf16, "bf16", 32, 64));
        alone!(half_ab!(Bf16Cell, widen_bf16, "bf16", 64, 128));
        alone!(half_ab!(Bf16Cell, widen_bf16, "bf16", 128, 256));
    }
    if run("half") {
        alone!(half_ab!(HalfCell, widen_half, "half", 32, 64));
        alone!(half_ab!(HalfCell, widen_half, "half", 64, 128));
        alone!(half_ab!(HalfCell, widen_half, "half", 128, 256));
    }
}
