//! The fast tanh against `f32::tanh`: throughput over a 4096-value buffer and latency through a
//! dependent chain, on every backend this CPU runs.
//!
//! `cargo bench --bench tanh`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use elman::{Backend, fast_tanh, fast_tanh_fused};

const N: usize = 4096;
/// Dependent evaluations per timed iteration of the latency chain.
const CHAIN: usize = 256;

fn inputs() -> Vec<f32> {
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    (0..N).map(|i| (i as f32 / N as f32) * 12.0 - 6.0).collect()
}

fn throughput(c: &mut Criterion) {
    let xs = inputs();
    let mut group = c.benchmark_group("tanh/throughput");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(BenchmarkId::new("f32::tanh", N), |b| {
        let mut buf = xs.clone();
        b.iter(|| {
            buf.copy_from_slice(black_box(&xs));
            for v in &mut buf {
                *v = v.tanh();
            }
            black_box(&buf);
        });
    });
    group.bench_function(BenchmarkId::new("fast_tanh (scalar loop)", N), |b| {
        let mut buf = xs.clone();
        b.iter(|| {
            buf.copy_from_slice(black_box(&xs));
            for v in &mut buf {
                *v = fast_tanh(*v);
            }
            black_box(&buf);
        });
    });
    for backend in Backend::available() {
        group.bench_function(BenchmarkId::new(backend.name(), N), |b| {
            let mut buf = xs.clone();
            b.iter(|| {
                buf.copy_from_slice(black_box(&xs));
                backend.tanh_in_place(&mut buf);
                black_box(&buf);
            });
        });
    }
    group.finish();
}

/// `v ← tanh(v·w + c)`: each evaluation waits for the one before.
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
    for backend in Backend::available() {
        group.bench_function(backend.name(), |b| {
            b.iter(|| {
                let (w, k) = (black_box(1.5_f32), black_box(0.25_f32));
                let mut v = [black_box(0.1_f32); 8];
                for _ in 0..CHAIN {
                    for x in &mut v {
                        *x = *x * w + k;
                    }
                    backend.tanh_in_place(&mut v);
                }
                v
            });
        });
    }
    group.finish();
}

criterion_group!(benches, throughput, latency);
criterion_main!(benches);
