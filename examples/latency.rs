//! Tail latency with carried state: p50, p99, p99.9 and max per step of `RnnCell::step` at
//! (I, H) = (1, 16) and (64, 128), and of `Rnn::step` (state update and readout) at (1, 16),
//! over 4 million steps each.
//!
//! `cargo run --release --example latency`
//!
//! The clock costs about 20 ns to read and ticks in coarse steps, more than a small step takes,
//! so steps are timed in batches of 32 consecutive steps and each batch's time is divided by 32:
//! the percentiles are over 125 000 batches, and a single slow step shows as 1/32 of its delay.

use std::hint::black_box;
use std::time::Instant;

use elman::nalgebra::{SMatrix, SVector};
use elman::{Readout, Rnn, RnnCell};

const BATCH: usize = 32;
const STEPS: usize = 4_000_000;

/// Sorts the per-step times and prints their percentiles.
fn print_percentiles(what: &str, mut per_step: Vec<f64>) {
    per_step.sort_by(f64::total_cmp);
    let at = |q: f64| {
        #[expect(clippy::cast_precision_loss, reason = "a count of samples")]
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "an index"
        )]
        let i = ((per_step.len() - 1) as f64 * q).round() as usize;
        per_step[i]
    };
    let (p50, p99, p999, max) = (at(0.5), at(0.99), at(0.999), at(1.0));
    println!(
        "{what:<24} p50 {p50:>7.2} ns  p99 {p99:>7.2} ns  p99.9 {p999:>7.2} ns  max {max:>9.2} ns  \
         p99.9/p50 {:.2}",
        p999 / p50
    );
}

/// `Rnn::step` at (1, 16), with a 4-class readout.
fn report_rnn() {
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let cell: RnnCell<1, 16> = RnnCell::new(
        SMatrix::from_fn(|r, _| (r % 5) as f32 / 5.0 - 0.4),
        SMatrix::from_fn(|r, c| (((r * 5 + c * 9) % 13) as f32 / 13.0 - 0.5) / 4.0),
        SVector::zeros(),
    );
    let mut rnn = Rnn::new(
        cell,
        Readout::<16, 4>::new(SMatrix::from_element(0.1), SVector::zeros()),
    );
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let xs: Vec<SVector<f32, 1>> = (0..BATCH)
        .map(|t| SVector::from_element((t % 7) as f32 / 3.5 - 1.0))
        .collect();
    for _ in 0..STEPS / 10 / BATCH {
        for x in &xs {
            black_box(rnn.step(black_box(x)));
        }
    }
    let mut per_step = Vec::with_capacity(STEPS / BATCH);
    for _ in 0..STEPS / BATCH {
        let start = Instant::now();
        for x in &xs {
            black_box(rnn.step(black_box(x)));
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "a batch takes well under 2^52 ns"
        )]
        per_step.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    print_percentiles("Rnn::step (1, 16)", per_step);
}

fn report<const I: usize, const H: usize>() {
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let cell: Box<RnnCell<I, H>> = Box::new(RnnCell::new(
        SMatrix::from_fn(|r, c| ((r * 7 + c * 3) % 11) as f32 / 11.0 - 0.5),
        SMatrix::from_fn(|r, c| (((r * 5 + c * 9) % 13) as f32 / 13.0 - 0.5) / (H as f32).sqrt()),
        SVector::from_fn(|r, _| (r % 3) as f32 * 0.1),
    ));
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let xs: Vec<SVector<f32, I>> = (0..BATCH)
        .map(|t| SVector::from_fn(|k, _| ((t * 3 + k) % 7) as f32 / 3.5 - 1.0))
        .collect();
    let mut h = SVector::<f32, H>::zeros();
    // Warm up: caches, branch predictors, clock frequency.
    for _ in 0..STEPS / 10 / BATCH {
        for x in &xs {
            h = cell.step(black_box(x), &h);
        }
    }
    let mut per_step: Vec<f64> = Vec::with_capacity(STEPS / BATCH);
    for _ in 0..STEPS / BATCH {
        let start = Instant::now();
        for x in &xs {
            h = cell.step(black_box(x), &h);
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "a batch takes well under 2^52 ns"
        )]
        per_step.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    black_box(h);
    print_percentiles(&format!("RnnCell::step ({I}, {H})"), per_step);
}

fn main() {
    println!("{}", elman::kernel::build_info());
    println!("{STEPS} steps per size, timed in batches of {BATCH}");
    report::<1, 16>();
    report::<64, 128>();
    report_rnn();
}
