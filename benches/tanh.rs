//! The fast tanh against `f32::tanh`: throughput over a 4096-value buffer and latency through a
//! dependent chain, on every backend this CPU runs.
//!
//! `cargo bench --bench tanh`

use std::hint::black_box;

mod support;

use criterion::{BenchmarkId, Criterion, Throughput};
use elman::kernel::probe;
use elman::{Backend, fast_tanh, fast_tanh_fused};

const N: usize = 4096;
/// Dependent evaluations per timed iteration of the latency chain.
const CHAIN: usize = 256;

fn inputs() -> Vec<f32> {
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    (0..N).map(|i| (i as f32 / N as f32) * 12.0 - 6.0).collect()
}

fn throughput(c: &mut Criterion) {
    let aligned_xs = support::Aligned::new(&inputs());
    let xs = aligned_xs.as_slice();
    let mut group = c.benchmark_group("tanh/throughput");
    group.throughput(Throughput::Elements(N as u64));
    let mut aligned_out = support::Aligned::new(&[0.0_f32; N]);
    let out = aligned_out.as_mut_slice();
    group.bench_function(BenchmarkId::new("f32::tanh", N), |b| {
        b.iter(|| {
            for (o, x) in out.iter_mut().zip(black_box(xs)) {
                *o = x.tanh();
            }
            black_box(&*out);
        });
    });
    group.bench_function(BenchmarkId::new("fast_tanh (scalar loop)", N), |b| {
        b.iter(|| {
            for (o, x) in out.iter_mut().zip(black_box(xs)) {
                *o = fast_tanh(*x);
            }
            black_box(&*out);
        });
    });
    for backend in Backend::available() {
        group.bench_function(BenchmarkId::new(backend.name(), N), |b| {
            b.iter(|| {
                backend.tanh_into(black_box(xs), out);
                black_box(&*out);
            });
        });
        // The tanh's floor on this backend that its one division sets: the division alone.
        group.bench_function(
            BenchmarkId::new(format!("{} division", backend.name()), N),
            |b| {
                b.iter(|| {
                    probe::divide_into(backend, black_box(xs), out);
                    black_box(&*out);
                });
            },
        );
    }
    group.finish();
}

/// `v ← tanh(v·w + c)`: each evaluation waits for the one before (the scalar functions), and
/// `v ← tanh(v)` in vector registers (the backends).
fn latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("tanh/latency");
    group.throughput(Throughput::Elements(CHAIN as u64));
    let chain = |f: fn(f32) -> f32| {
        move || {
            let (w, k) = (black_box(1.5_f32), black_box(0.25_f32));
            let mut v = black_box(0.1_f32);
            for _ in 0..CHAIN {
                v = f(v * w + k);
            }
            v
        }
    };
    group.bench_function("f32::tanh", |b| b.iter(chain(f32::tanh)));
    group.bench_function("fast_tanh", |b| b.iter(chain(fast_tanh)));
    group.bench_function("fast_tanh_fused", |b| b.iter(chain(fast_tanh_fused)));
    // The backends' tanh in registers: `Backend::floor_chain` with no multiply-add and no
    // addition is `v ← tanh(v)`, nothing else.
    for backend in Backend::available() {
        group.bench_function(format!("{} (tanh only)", backend.name()), |b| {
            b.iter(|| probe::floor_chain(backend, CHAIN, 0, 0, black_box(0.7)));
        });
    }
    group.finish();
}

fn main() {
    let mut c = support::criterion(500, 2000);
    throughput(&mut c);
    latency(&mut c);
    c.final_summary();
}
