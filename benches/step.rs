//! Step latency with carried state, one group per size, every member in the same process so the
//! ratios within a group are meaningful:
//!
//! - `step`: `RnnCell::step` (the best backend for this CPU), and `step_with` each backend;
//! - `run`: the same `T` steps through `RnnCell::run`, one call (the loop in the kernel, the
//!   state in registers from one step to the next); `run_relu` (H ≥ 32), the same with ReLU
//!   in place of tanh: the step's multiply-adds without the cost of its tanh;
//! - `step_half`, `run_half`: the same model with its weights in half precision (`HalfCell`);
//! - `step_bf16`, `run_bf16`: the same model with its weights as bf16 column pairs
//!   (`Bf16Cell`), and from H ≥ 64 `step_with/{backend}/{f32,half,bf16}` on each fused
//!   backend: the three formats' steps side by side, backend by backend, with the floors
//!   `floor/widen-half/{backend}` and `floor/widen-bf16/{backend}`: every weight of the cell
//!   read and widened to f32 as its step does, the widenings' throughput with nothing waiting
//!   on a broadcast (`probe::widen_half`), where the conversion rather than the bytes' read
//!   may set the half-size weights' floor;
//! - `user_loop`: `step` once per input from a function of the bench's crate that is not
//!   inlined, as a user's code calls it (a default build dispatches each call);
//!   `user_loop_in_place`, the same loop with `step_in_place`;
//! - `naive`: the step a user writes first with nalgebra, `(w_xh * x + w_hh * h + b).map(f32::tanh)`
//!   (the same code as `elman::reference::step`);
//! - the floors of the size (see `elman::kernel::probe`), each timed
//!   for the work of the same number of steps:
//!   - `floor/column-chain`: H dependent multiply-adds and a fast tanh per step;
//!   - `floor/column-chain-calls` (H ≤ 16): the same chain, one call of the kernel per step
//!     (`floor_chain(1, …)`, each from the last one's result): what a step that is a call, as
//!     every dispatched step is, cannot go below (a native build may inline both);
//!   - `floor/tree-chain`: one multiply-add, ⌈log2 H⌉ additions and a fast tanh per step;
//!   - `floor/fma-peak/{backend}`: H·(I+H) multiply-adds per step at the machine's
//!     register-resident peak, on each fused backend (`avx512` is the 512-bit floor);
//!   - `floor/weight-read/{backend}`: reading H·(I+H) f32 (the weights) per step from a buffer of that
//!     size, aligned as the cell's weights are: an L1 read at (32, 64) (24 KiB), an L2 read
//!     from (64, 128) on; `floor/weight-read-half/{backend}`, half the bytes, the floor of the
//!     half-precision and the bf16-pair weights.
//!
//! `cargo bench --bench step`; `RUSTFLAGS="-C target-cpu=native" cargo bench --bench step` for
//! the native build.

use std::hint::black_box;

mod support;

use criterion::{BenchmarkId, Criterion, Throughput};
use elman::kernel::probe;
use elman::nalgebra::SVector;
use elman::{Backend, Bf16Cell, HalfCell, Relu, RnnCell};

/// Dependent steps per timed iteration: each step reads the state the previous one wrote.
///
/// The loops hide their first state from the compiler (the state variable starts as a copy of a
/// value from `black_box`) and every input, but not the states in between. A variable that is
/// itself the result of `black_box` has its address handed to the optimization barrier, so the
/// compiler keeps it in memory: every step's state then went through the stack, a round trip a
/// caller's own loop does not make.
const T: usize = 64;

/// Distinct inputs, used in turn: few enough that they take a small part of L1 beside the
/// weights, as a stream of inputs arriving one per step does.
const INPUTS: usize = 4;

fn inputs<const I: usize>() -> Vec<SVector<f32, I>> {
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    (0..INPUTS)
        .map(|t| SVector::from_fn(|k, _| ((t * 31 + k * 17) % 13) as f32 / 6.5 - 1.0))
        .collect()
}

/// A user's loop over a sequence, one `step_in_place` per input.
#[inline(never)]
fn user_loop_in_place<const I: usize, const H: usize>(
    cell: &RnnCell<I, H>,
    xs: &[SVector<f32, I>],
    h0: SVector<f32, H>,
) -> SVector<f32, H> {
    let mut h = h0;
    for x in xs {
        cell.step_in_place(x, &mut h);
    }
    h
}

/// A user's loop over a sequence, one `step` per input.
#[inline(never)]
fn user_loop<const I: usize, const H: usize>(
    cell: &RnnCell<I, H>,
    xs: &[SVector<f32, I>],
    h0: SVector<f32, H>,
) -> SVector<f32, H> {
    let mut h = h0;
    for x in xs {
        h = cell.step(x, &h);
    }
    h
}

fn bench_size<const I: usize, const H: usize>(c: &mut Criterion) {
    let cell = Box::new(support::cell::<I, H>());
    let xs = inputs::<I>();
    let size = format!("{I}x{H}");
    let mut group = c.benchmark_group(format!("step/{size}"));
    group.throughput(Throughput::Elements(T as u64));

    group.bench_function(BenchmarkId::new("step", &size), |b| {
        b.iter(|| {
            let h0 = black_box(SVector::<f32, H>::zeros());
            let mut h = h0;
            for x in xs.iter().cycle().take(T) {
                h = cell.step(black_box(x), &h);
            }
            h
        });
    });
    let sequence: Vec<SVector<f32, I>> = xs.iter().cycle().take(T).copied().collect();
    group.bench_function(BenchmarkId::new("run", &size), |b| {
        b.iter(|| cell.run(black_box(&sequence), &black_box(SVector::zeros())));
    });
    // The same model with its weights in half precision: half the bytes to read per step.
    let half = Box::new(HalfCell::from_cell(&cell).expect("the bench weights are in range"));
    group.bench_function(BenchmarkId::new("step_half", &size), |b| {
        b.iter(|| {
            let h0 = black_box(SVector::<f32, H>::zeros());
            let mut h = h0;
            for x in xs.iter().cycle().take(T) {
                h = half.step(black_box(x), &h);
            }
            h
        });
    });
    group.bench_function(BenchmarkId::new("run_half", &size), |b| {
        b.iter(|| half.run(black_box(&sequence), &black_box(SVector::zeros())));
    });
    // The same model as bf16 column pairs: half the bytes, widened by a shift per two columns.
    let pairs = Box::new(Bf16Cell::from_cell(&cell).expect("the bench weights are finite"));
    group.bench_function(BenchmarkId::new("step_bf16", &size), |b| {
        b.iter(|| {
            let h0 = black_box(SVector::<f32, H>::zeros());
            let mut h = h0;
            for x in xs.iter().cycle().take(T) {
                h = pairs.step(black_box(x), &h);
            }
            h
        });
    });
    group.bench_function(BenchmarkId::new("run_bf16", &size), |b| {
        b.iter(|| pairs.run(black_box(&sequence), &black_box(SVector::zeros())));
    });
    if H >= 64 {
        formats_by_backend(&mut group, &size, (&cell, &half, &pairs), &xs);
    }
    // `step` as a user's code calls it: once per input, the state in a local variable, in a
    // function of the user's crate the compiler does not inline into the timing loop.
    group.bench_function(BenchmarkId::new("user_loop", &size), |b| {
        b.iter(|| user_loop(&cell, black_box(&sequence), black_box(SVector::zeros())));
    });
    group.bench_function(BenchmarkId::new("user_loop_in_place", &size), |b| {
        b.iter(|| user_loop_in_place(&cell, black_box(&sequence), black_box(SVector::zeros())));
    });
    if H >= 32 {
        // The same sweep with ReLU instead of tanh: what the step costs without its tanh.
        let relu: RnnCell<I, H, Relu> = (*cell).clone().with_activation();
        group.bench_function(BenchmarkId::new("run_relu", &size), |b| {
            b.iter(|| relu.run(black_box(&sequence), &black_box(SVector::zeros())));
        });
    }
    for backend in Backend::available() {
        group.bench_function(
            BenchmarkId::new(format!("step_with/{}", backend.name()), &size),
            |b| {
                b.iter(|| {
                    let h0 = black_box(SVector::<f32, H>::zeros());
                    let mut h = h0;
                    for x in xs.iter().cycle().take(T) {
                        h = cell.step_with(backend, black_box(x), &h);
                    }
                    h
                });
            },
        );
    }
    let (w_xh, w_hh, bias) = (cell.w_xh(), cell.w_hh(), cell.bias());
    group.bench_function(BenchmarkId::new("naive", &size), |b| {
        b.iter(|| {
            let h0 = black_box(SVector::<f32, H>::zeros());
            let mut h = h0;
            for x in xs.iter().cycle().take(T) {
                h = (w_xh * black_box(x) + w_hh * h + bias).map(f32::tanh);
            }
            h
        });
    });

    floors::<I, H>(&mut group, &size);
    group.finish();
}

/// `step_with` of the f32, half-precision and bf16-pair cells of one model, on each fused
/// backend.
fn formats_by_backend<const I: usize, const H: usize>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: &str,
    (cell, half, pairs): (&RnnCell<I, H>, &HalfCell<I, H>, &Bf16Cell<I, H>),
    xs: &[SVector<f32, I>],
) {
    fn steps<const I: usize, const H: usize>(
        b: &mut criterion::Bencher<'_>,
        xs: &[SVector<f32, I>],
        step: impl Fn(&SVector<f32, I>, &SVector<f32, H>) -> SVector<f32, H>,
    ) {
        b.iter(|| {
            let h0 = black_box(SVector::<f32, H>::zeros());
            let mut h = h0;
            for x in xs.iter().cycle().take(T) {
                h = step(black_box(x), &h);
            }
            h
        });
    }
    for backend in Backend::available().filter(|b| b.fused()) {
        let name = backend.name();
        group.bench_function(
            BenchmarkId::new(format!("step_with/{name}/f32"), size),
            |b| {
                steps(b, xs, |x, h| cell.step_with(backend, x, h));
            },
        );
        group.bench_function(
            BenchmarkId::new(format!("step_with/{name}/half"), size),
            |b| {
                steps(b, xs, |x, h| half.step_with(backend, x, h));
            },
        );
        group.bench_function(
            BenchmarkId::new(format!("step_with/{name}/bf16"), size),
            |b| {
                steps(b, xs, |x, h| pairs.step_with(backend, x, h));
            },
        );
        // The widening floors: every weight read and widened as the step does, per step.
        let id = BenchmarkId::new(format!("floor/widen-half/{name}"), size);
        group.bench_function(id, |b| {
            b.iter(|| {
                (0..T)
                    .map(|_| probe::widen_half(backend, black_box(half)))
                    .sum::<f32>()
            });
        });
        let id = BenchmarkId::new(format!("floor/widen-bf16/{name}"), size);
        group.bench_function(id, |b| {
            b.iter(|| {
                (0..T)
                    .map(|_| probe::widen_bf16(backend, black_box(pairs)))
                    .sum::<f32>()
            });
        });
    }
}

/// The floors of the size (see the module docs).
fn floors<const I: usize, const H: usize>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: &str,
) {
    let best = Backend::best();
    let depth = H.next_power_of_two().trailing_zeros() as usize;
    group.bench_function(BenchmarkId::new("floor/column-chain", size), |b| {
        b.iter(|| probe::floor_chain(best, T, H, 0, black_box(0.3)));
    });
    if H <= 16 {
        group.bench_function(BenchmarkId::new("floor/column-chain-calls", size), |b| {
            b.iter(|| {
                let seed: f32 = black_box(0.3);
                let mut carried = seed;
                for _ in 0..T {
                    carried = probe::floor_chain(best, 1, H, 0, carried);
                }
                carried
            });
        });
    }
    group.bench_function(BenchmarkId::new("floor/tree-chain", size), |b| {
        b.iter(|| probe::floor_chain(best, T, 1, depth, black_box(0.3)));
    });
    // The throughput floors on each fused backend: the 8-lane ones' and, where the CPU has
    // it, the 512-bit one's.
    for backend in Backend::available().filter(|b| b.fused()) {
        let name = backend.name();
        if H >= 16 {
            let multiply_adds = H * (I + H) * T;
            group.bench_function(
                BenchmarkId::new(format!("floor/fma-peak/{name}"), size),
                |b| {
                    b.iter(|| probe::fma_burst(backend, multiply_adds, black_box(0.5)));
                },
            );
        }
        if H >= 64 {
            // Aligned as the cell's weights are: from a buffer at a 16-byte boundary, the
            // (32, 64) read took 1.7 times as long.
            let weights = support::Aligned::new(&vec![0.5_f32; (H * (I + H)).next_multiple_of(64)]);
            let id = BenchmarkId::new(format!("floor/weight-read/{name}"), size);
            group.bench_function(id, |b| {
                b.iter(|| {
                    let mut total = 0.0;
                    for _ in 0..T {
                        total += probe::stream_sum(backend, black_box(weights.as_slice()));
                    }
                    total
                });
            });
            // The bytes of the half-precision and bf16-pair weights: half as many.
            let halves = &weights.as_slice()[..weights.as_slice().len() / 2];
            let id = BenchmarkId::new(format!("floor/weight-read-half/{name}"), size);
            group.bench_function(id, |b| {
                b.iter(|| {
                    let mut total = 0.0;
                    for _ in 0..T {
                        total += probe::stream_sum(backend, black_box(halves));
                    }
                    total
                });
            });
        }
    }
}

fn main() {
    let mut c = support::criterion(500, 2000);
    bench_size::<3, 2>(&mut c);
    bench_size::<1, 8>(&mut c);
    bench_size::<1, 16>(&mut c);
    bench_size::<16, 16>(&mut c);
    bench_size::<32, 64>(&mut c);
    bench_size::<64, 128>(&mut c);
    bench_size::<128, 256>(&mut c);
    c.final_summary();
}
