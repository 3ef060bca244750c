//! What the benches share: the cells they time and criterion's settings.

#![allow(dead_code, reason = "each bench uses part of it")]

use std::time::Duration;

use criterion::Criterion;
use elman::RnnCell;
use elman::nalgebra::{SMatrix, SVector};

/// A cell with weights of modest size, scaled by `1/√(I+H)` so that tanh neither saturates nor
/// vanishes, from a fixed hash (the same cell in every run).
pub fn cell<const I: usize, const H: usize>() -> RnnCell<I, H> {
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

/// Prints the backend and compiled target features, and returns criterion with short warm-up
/// and measurement times (the machines are shared: many short samples, ratios within a group).
///
/// `BENCH_PASSES=n` in the environment divides both times by `n` (to 1 ms at least):
/// `scripts/benchmarks.sh` runs the benches in `n` passes and takes each bench's median over
/// them.
pub fn criterion(warm_up_ms: u64, measure_ms: u64) -> Criterion {
    println!("{}", elman::kernel::probe::build_info());
    let passes = std::env::var("BENCH_PASSES")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    Criterion::default()
        .warm_up_time(Duration::from_millis((warm_up_ms / passes).max(1)))
        .measurement_time(Duration::from_millis((measure_ms / passes).max(1)))
        .configure_from_args()
}

/// A buffer of `f32` whose first value is 64-byte aligned, as a cell's weights and a bank's
/// states are (`RnnCell` is `align(64)`): in a `Vec` at a 16-byte boundary, every other 32-byte
/// load or store spans two cache lines, which slows a floor that streams through it.
pub struct Aligned {
    buffer: Vec<f32>,
    start: usize,
    len: usize,
}

impl Aligned {
    /// The values of `values`, copied into an aligned buffer.
    pub fn new(values: &[f32]) -> Self {
        let len = values.len();
        let mut buffer = vec![0.0_f32; len + 16];
        let start = buffer.as_ptr().align_offset(64).min(16);
        buffer[start..start + len].copy_from_slice(values);
        Self { buffer, start, len }
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.buffer[self.start..self.start + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.buffer[self.start..self.start + self.len]
    }
}
