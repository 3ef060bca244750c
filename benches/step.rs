//! Step latency with carried state: `step`, `step_concatenated` and the reference, one group
//! per size, so the ratios within a group come from one run.
//!
//! `cargo bench --bench step`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use elman::nalgebra::{SMatrix, SVector};
use elman::{RnnCell, reference};

/// Dependent steps per timed iteration: each step reads the state the previous one wrote.
const T: usize = 64;

/// A cell with weights of modest size (scaled so that tanh neither saturates nor vanishes).
fn cell<const I: usize, const H: usize>() -> RnnCell<I, H> {
    #[expect(clippy::cast_precision_loss, reason = "small sizes")]
    let scale = 1.0 / ((I + H) as f32).sqrt();
    let value = |r: usize, c: usize, salt: usize| {
        #[expect(clippy::cast_precision_loss, reason = "a hash folded into [-1, 1)")]
        let v = ((r * 7919 + c * 104_729 + salt) % 2001) as f32 / 1000.0 - 1.0;
        v * scale
    };
    RnnCell::new(
        SMatrix::from_fn(|r, c| value(r, c, 1)),
        SMatrix::from_fn(|r, c| value(r, c, 2)),
        SVector::from_fn(|r, c| value(r, c, 3)),
    )
}

fn inputs<const I: usize>() -> Vec<SVector<f32, I>> {
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    (0..T)
        .map(|t| SVector::from_fn(|k, _| ((t * 31 + k * 17) % 13) as f32 / 6.5 - 1.0))
        .collect()
}

fn bench_size<const I: usize, const H: usize>(c: &mut Criterion) {
    let cell = cell::<I, H>();
    let xs = inputs::<I>();
    let mut group = c.benchmark_group(format!("step/{I}x{H}"));
    group.throughput(Throughput::Elements(T as u64));
    let size = format!("{I}x{H}");

    group.bench_function(BenchmarkId::new("step", &size), |b| {
        b.iter(|| {
            let mut h = black_box(SVector::<f32, H>::zeros());
            for x in &xs {
                h = cell.step(black_box(x), &h);
            }
            h
        });
    });
    group.bench_function(BenchmarkId::new("step_concatenated", &size), |b| {
        b.iter(|| {
            let mut h = black_box(SVector::<f32, H>::zeros());
            for x in &xs {
                h = cell.step_concatenated(black_box(x), &h);
            }
            h
        });
    });
    group.bench_function(BenchmarkId::new("reference", &size), |b| {
        b.iter(|| {
            let mut h = black_box(SVector::<f32, H>::zeros());
            for x in &xs {
                h = reference::step(&cell, black_box(x), &h);
            }
            h
        });
    });
    group.finish();
}

fn steps(c: &mut Criterion) {
    bench_size::<3, 2>(c);
    bench_size::<1, 8>(c);
    bench_size::<1, 16>(c);
    bench_size::<16, 16>(c);
    bench_size::<32, 64>(c);
    bench_size::<64, 128>(c);
    bench_size::<128, 256>(c);
}

criterion_group!(benches, steps);
criterion_main!(benches);
