//! The real-time layer, each question one group so that its ratios come from one run:
//!
//! - `bank/{I}x{H}/n{N}`: `RnnBank::step` (inputs per stream) and `RnnBank::step_unit_major` (inputs
//!   already unit-major) against `N` separate `Rnn`s stepped in a loop, per stream-step, beside
//!   two floors of the same step:
//!   - throughput: `N·H·(I+H)` multiply-adds at the register-resident peak (`floor/fma`) plus
//!     `N·H` fast tanh evaluations at their buffer throughput (`floor/tanh`), summed;
//!   - latency (`floor/chain`): one step's dependent chain, `H` multiply-adds and a fast tanh,
//!     each iteration starting from the last one's result, as each bank step starts from the
//!     states of the one before. A bank step takes at least the larger of the two.
//! - `block/{I}x{H}/t{T}`: `Rnn::process` over `T` inputs against `T` calls of `Rnn::step`.
//! - `subnormal/{I}x{H}`: a step from normal operands against the same step with subnormal
//!   inputs, a subnormal state and subnormal weights; `decay/{I}x{H}`: `Rnn::step` over inputs
//!   that decay through the subnormals to zero against ordinary inputs; `subnormal/bank/..`:
//!   the same for a bank of streams. The flush (`elman::flush`) should make each pair equal.
//!
//! `cargo bench --bench realtime`

use std::hint::black_box;

mod support;

use criterion::{BenchmarkId, Criterion, Throughput};
use elman::kernel::probe;
use elman::nalgebra::{SMatrix, SVector};
use elman::{Backend, Readout, Rnn, RnnBank, RnnCell};

fn readout<const H: usize>() -> Readout<H, 2> {
    Readout::new(SMatrix::from_element(0.1), SVector::zeros())
}

fn bank<const I: usize, const H: usize, const N: usize>(c: &mut Criterion) {
    let cell = support::cell::<I, H>();
    let size = format!("{I}x{H}/n{N}");
    let mut group = c.benchmark_group(format!("bank/{size}"));
    group.throughput(Throughput::Elements(N as u64));
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let xs: [SVector<f32, I>; N] =
        core::array::from_fn(|s| SVector::from_element((s % 7) as f32 / 3.5 - 1.0));

    let mut bank: RnnBank<I, H, N> = RnnBank::new(cell.clone());
    group.bench_function(BenchmarkId::new("bank", &size), |b| {
        b.iter(|| {
            bank.step(black_box(&xs));
        });
    });
    let lanes: [[f32; N]; I] = core::array::from_fn(|k| core::array::from_fn(|s| xs[s][k]));
    group.bench_function(BenchmarkId::new("bank lanes", &size), |b| {
        b.iter(|| {
            bank.step_unit_major(black_box(&lanes));
        });
    });
    let mut separate: Vec<Rnn<I, H, 2>> =
        (0..N).map(|_| Rnn::new(cell.clone(), readout())).collect();
    group.bench_function(BenchmarkId::new("separate", &size), |b| {
        b.iter(|| {
            for (rnn, x) in separate.iter_mut().zip(black_box(&xs)) {
                // The state update alone, as the bank does (no readout).
                let h = rnn.cell().step(x, rnn.state());
                rnn.set_state(h);
            }
        });
    });
    let best = Backend::best();
    let multiply_adds = N * H * (I + H);
    group.bench_function(BenchmarkId::new("floor/fma", &size), |b| {
        b.iter(|| probe::fma_burst(best, multiply_adds, black_box(0.5)));
    });
    let values = support::Aligned::new(&vec![0.25_f32; N * H]);
    let mut out = support::Aligned::new(&vec![0.0_f32; N * H]);
    group.bench_function(BenchmarkId::new("floor/tanh", &size), |b| {
        b.iter(|| best.tanh_into(black_box(values.as_slice()), out.as_mut_slice()));
    });
    let mut carried = 0.5_f32;
    group.bench_function(BenchmarkId::new("floor/chain", &size), |b| {
        b.iter(|| {
            carried = probe::floor_chain(best, 1, H, 0, carried);
            carried
        });
    });
    group.finish();
}

fn block<const I: usize, const H: usize, const T: usize>(c: &mut Criterion) {
    let mut rnn = Box::new(Rnn::new(support::cell::<I, H>(), readout::<H>()));
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let xs: Vec<SVector<f32, I>> = (0..T)
        .map(|t| SVector::from_element((t % 13) as f32 / 6.5 - 1.0))
        .collect();
    let mut ys = vec![SVector::<f32, 2>::zeros(); T];
    let size = format!("{I}x{H}/t{T}");
    let mut group = c.benchmark_group(format!("block/{size}"));
    group.throughput(Throughput::Elements(T as u64));
    group.bench_function(BenchmarkId::new("per-step", &size), |b| {
        b.iter(|| {
            for (x, y) in xs.iter().zip(ys.iter_mut()) {
                *y = rnn.step(black_box(x));
            }
        });
    });
    group.bench_function(BenchmarkId::new("process", &size), |b| {
        b.iter(|| rnn.process(black_box(&xs), &mut ys));
    });
    group.finish();
}

/// A value that is subnormal: without the flush every multiply-add that reads it takes a
/// microcode assist on many CPUs.
const SUBNORMAL: f32 = f32::MIN_POSITIVE / 64.0;

/// `m` with every other value replaced by a subnormal one.
fn half_subnormal<const R: usize, const C: usize>(m: &SMatrix<f32, R, C>) -> SMatrix<f32, R, C> {
    SMatrix::from_fn(|r, c| {
        if (r + c) % 2 == 0 {
            SUBNORMAL
        } else {
            m[(r, c)]
        }
    })
}

/// The cell of the benches with every other weight subnormal.
fn tiny_weights<const I: usize, const H: usize>() -> RnnCell<I, H> {
    let cell = support::cell::<I, H>();
    RnnCell::new(
        half_subnormal(cell.w_xh()),
        half_subnormal(cell.w_hh()),
        *cell.bias(),
    )
}

/// One step from normal operands against the same step with subnormal inputs, a subnormal
/// state, and subnormal weights (stored as zeros): each should take the normal step's time.
fn subnormal<const I: usize, const H: usize>(c: &mut Criterion) {
    let cell = support::cell::<I, H>();
    let size = format!("{I}x{H}");
    let mut group = c.benchmark_group(format!("subnormal/{size}"));
    let x = SVector::<f32, I>::from_element(0.5);
    let h = SVector::<f32, H>::from_element(0.25);
    let tiny_x = SVector::<f32, I>::from_element(SUBNORMAL);
    let tiny_h = SVector::<f32, H>::from_element(SUBNORMAL);
    assert!(SUBNORMAL.is_subnormal());
    group.bench_function(BenchmarkId::new("normal", &size), |b| {
        b.iter(|| cell.step(black_box(&x), black_box(&h)));
    });
    group.bench_function(BenchmarkId::new("subnormal input", &size), |b| {
        b.iter(|| cell.step(black_box(&tiny_x), black_box(&h)));
    });
    group.bench_function(BenchmarkId::new("subnormal state", &size), |b| {
        b.iter(|| cell.step(black_box(&x), black_box(&tiny_h)));
    });
    let tiny = Box::new(tiny_weights::<I, H>());
    group.bench_function(BenchmarkId::new("tiny weights", &size), |b| {
        b.iter(|| tiny.step(black_box(&x), black_box(&h)));
    });
    group.finish();
}

/// `Rnn::step` over 1500 inputs that decay as `0.9^t` (through the subnormals to 0, as a
/// reverb tail or a settling sensor does) against 1500 ordinary inputs, per step.
fn decay<const I: usize, const H: usize>(c: &mut Criterion) {
    const T: usize = 1500;
    let mut rnn = Box::new(Rnn::new(support::cell::<I, H>(), readout::<H>()));
    let decaying: Vec<SVector<f32, I>> = (0..T)
        .map(|t| SVector::from_element(0.9_f32.powi(i32::try_from(t).unwrap_or(i32::MAX))))
        .collect();
    assert!(decaying.iter().any(|x| x[0].is_subnormal()));
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let ordinary: Vec<SVector<f32, I>> = (0..T)
        .map(|t| SVector::from_element((t % 13) as f32 / 6.5 - 1.0))
        .collect();
    let size = format!("{I}x{H}");
    let mut group = c.benchmark_group(format!("decay/{size}"));
    group.throughput(Throughput::Elements(T as u64));
    for (name, xs) in [("ordinary", &ordinary), ("decaying", &decaying)] {
        group.bench_function(BenchmarkId::new(name, &size), |b| {
            b.iter(|| {
                rnn.reset();
                for x in xs {
                    black_box(rnn.step(black_box(x)));
                }
            });
        });
    }
    group.finish();
}

/// A bank's step with ordinary inputs, states and weights against subnormal inputs, subnormal
/// states (set through `set_state`, as a caller restoring a snapshot would) and subnormal
/// weights; then 1500 steps of decaying inputs against 1500 ordinary ones.
fn subnormal_bank<const I: usize, const H: usize, const N: usize>(c: &mut Criterion) {
    const T: usize = 1500;
    let size = format!("{I}x{H}/n{N}");
    let mut group = c.benchmark_group(format!("subnormal/bank/{size}"));
    group.throughput(Throughput::Elements(N as u64));
    let ordinary = [SVector::<f32, I>::from_element(0.5); N];
    let tiny = [SVector::<f32, I>::from_element(SUBNORMAL); N];
    let mut bank: Box<RnnBank<I, H, N>> = Box::new(RnnBank::new(support::cell::<I, H>()));
    let mut tiny_bank: Box<RnnBank<I, H, N>> = Box::new(RnnBank::new(tiny_weights::<I, H>()));
    for (name, xs, state, tiny_weights) in [
        ("normal", &ordinary, 0.25, false),
        ("subnormal input", &tiny, 0.25, false),
        ("subnormal state", &ordinary, SUBNORMAL, false),
        ("tiny weights", &ordinary, 0.25, true),
    ] {
        let bank = if tiny_weights {
            &mut tiny_bank
        } else {
            &mut bank
        };
        group.bench_function(BenchmarkId::new(name, &size), |b| {
            b.iter(|| {
                for s in 0..N {
                    bank.set_state(s, &SVector::from_element(state));
                }
                bank.step(black_box(xs));
            });
        });
    }
    group.finish();

    // 1500 steps of inputs decaying as 0.9^t (each stream a step behind the one before)
    // against 1500 ordinary ones.
    let mut group = c.benchmark_group(format!("decay/bank/{size}"));
    group.throughput(Throughput::Elements((T * N) as u64));
    let decaying: Vec<[SVector<f32, I>; N]> = (0..T)
        .map(|t| {
            core::array::from_fn(|s| {
                SVector::from_element(0.9_f32.powi(i32::try_from(t + s).unwrap_or(i32::MAX)))
            })
        })
        .collect();
    assert!(decaying.iter().any(|xs| xs[0][0].is_subnormal()));
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let ordinary: Vec<[SVector<f32, I>; N]> = (0..T)
        .map(|t| core::array::from_fn(|s| SVector::from_element(((t + s) % 13) as f32 / 6.5 - 1.0)))
        .collect();
    for (name, sequence) in [("ordinary", &ordinary), ("decaying", &decaying)] {
        group.bench_function(BenchmarkId::new(name, &size), |b| {
            b.iter(|| {
                bank.reset();
                for xs in sequence {
                    bank.step(black_box(xs));
                }
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = support::criterion(300, 1000);
    bank::<3, 2, 8>(&mut c);
    bank::<3, 2, 32>(&mut c);
    bank::<3, 2, 128>(&mut c);
    bank::<1, 8, 8>(&mut c);
    bank::<1, 8, 32>(&mut c);
    bank::<1, 8, 128>(&mut c);
    bank::<1, 16, 8>(&mut c);
    bank::<1, 16, 32>(&mut c);
    bank::<1, 16, 128>(&mut c);
    bank::<16, 32, 8>(&mut c);
    bank::<16, 32, 32>(&mut c);
    bank::<16, 32, 128>(&mut c);
    block::<64, 128, 64>(&mut c);
    block::<64, 128, 1024>(&mut c);
    block::<3, 2, 1024>(&mut c);
    block::<1, 16, 1024>(&mut c);
    block::<32, 64, 1024>(&mut c);
    block::<128, 256, 1024>(&mut c);
    subnormal::<1, 16>(&mut c);
    subnormal::<64, 128>(&mut c);
    decay::<1, 16>(&mut c);
    decay::<64, 128>(&mut c);
    subnormal_bank::<1, 16, 32>(&mut c);
    c.final_summary();
}
