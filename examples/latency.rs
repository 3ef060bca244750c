//! Tail latency with carried state: p50, p99, p99.9 and max per step of `RnnCell::step` at
//! (I, H) = (1, 16) and (64, 128), and of `Rnn::step` (state update and readout) at (1, 16),
//! over 4 million steps each; then p99.9 / p50 of each million of them in turn, which shows
//! whether a long tail is spread over the run or comes from one stretch of it.
//!
//! `cargo run --release --example latency`
//!
//! Reading the clock costs about 20 ns, as much as a small step, so small steps are timed in
//! batches of 8 consecutive steps (about 200 ns: short enough that an interrupt or a
//! neighbour's burst lands in few of them) and large ones one by one. The clock's own cost, the
//! median of back-to-back readings measured first, is taken off each batch before dividing by
//! its size; a single slow step shows as 1/8 of its delay in a batch of 8.
//!
//! A control runs the same timing over work that is not a step: the column-chain floor of
//! (1, 16) (16 dependent multiply-adds and a fast tanh, one kernel call per step, each from the
//! last one's result), whose median is close to the step's. Its tail is the machine's: what
//! interrupts, the hypervisor and neighbours add to any code of that length in the same run.

use std::hint::black_box;
use std::time::Instant;

use elman::kernel::probe;
use elman::nalgebra::{SMatrix, SVector};
use elman::{Readout, Rnn, RnnCell};

const STEPS: usize = 4_000_000;

/// The run in parts of a million steps, each with its own percentiles.
const PASSES: usize = STEPS / 1_000_000;

/// Distinct inputs, used in turn (a power of two: the index is a mask).
const INPUTS: usize = 32;

/// Steps per timed batch for steps much shorter than the clock's cost.
const SMALL_BATCH: usize = 8;

/// The median cost of reading the clock twice back to back, in ns.
fn clock_cost() -> f64 {
    let mut costs: Vec<f64> = (0..100_000)
        .map(|_| {
            let start = Instant::now();
            #[expect(clippy::cast_precision_loss, reason = "well under 2^52 ns")]
            let ns = start.elapsed().as_nanos() as f64;
            ns
        })
        .collect();
    costs.sort_by(f64::total_cmp);
    costs[costs.len() / 2]
}

/// Times `STEPS` calls of `step(t)` in batches of `batch`, after a tenth as many untimed ones
/// (caches, branch predictors, clock frequency), and returns the time per step of each batch
/// with the clock's cost taken off.
fn time_steps(batch: usize, clock: f64, mut step: impl FnMut(usize)) -> Vec<f64> {
    for t in 0..STEPS / 10 {
        step(t);
    }
    // Filled (not only reserved) before timing, so that no page of it is first touched, and
    // faulted in by the kernel, inside a timed batch.
    let mut per_step = vec![f64::NAN; STEPS / batch];
    for (b, slot) in per_step.iter_mut().enumerate() {
        let start = Instant::now();
        for t in b * batch..(b + 1) * batch {
            step(t);
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "well under 2^52 ns; small batches"
        )]
        let (ns, n) = (start.elapsed().as_nanos() as f64, batch as f64);
        *slot = (ns - clock).max(0.0) / n;
    }
    per_step
}

/// The `q` quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    #[expect(clippy::cast_precision_loss, reason = "a count of samples")]
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "an index"
    )]
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Prints the percentiles of the per-step times, then p99.9 / p50 of each million steps in
/// turn (the timing in `PASSES` consecutive parts), which shows whether a long tail is spread
/// over the run or comes from a stretch of it.
fn print_percentiles(what: &str, per_step: &[f64]) {
    let mut sorted = per_step.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (p50, p99, p999, max) = (
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.99),
        quantile(&sorted, 0.999),
        quantile(&sorted, 1.0),
    );
    println!(
        "{what:<24} p50 {p50:>7.2} ns  p99 {p99:>7.2} ns  p99.9 {p999:>7.2} ns  max {max:>9.2} ns  \
         p99.9/p50 {:.2}",
        p999 / p50
    );
    let parts: Vec<String> = per_step
        .chunks(per_step.len().div_ceil(PASSES))
        .map(|part| {
            let mut part = part.to_vec();
            part.sort_by(f64::total_cmp);
            format!("{:.2}", quantile(&part, 0.999) / quantile(&part, 0.5))
        })
        .collect();
    println!(
        "{:<24} p99.9/p50 of each million steps: {}",
        "",
        parts.join("  ")
    );
}

/// `Rnn::step` at (1, 16), with a 4-class readout.
fn report_rnn(clock: f64) {
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
    let xs: Vec<SVector<f32, 1>> = (0..INPUTS)
        .map(|t| SVector::from_element((t % 7) as f32 / 3.5 - 1.0))
        .collect();
    let per_step = time_steps(SMALL_BATCH, clock, |t| {
        black_box(rnn.step(black_box(&xs[t % INPUTS])));
    });
    print_percentiles("Rnn::step (1, 16)", &per_step);
}

/// `RnnCell::step` at (I, H), `batch` steps per timing.
fn report<const I: usize, const H: usize>(batch: usize, clock: f64) {
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let cell: Box<RnnCell<I, H>> = Box::new(RnnCell::new(
        SMatrix::from_fn(|r, c| ((r * 7 + c * 3) % 11) as f32 / 11.0 - 0.5),
        SMatrix::from_fn(|r, c| (((r * 5 + c * 9) % 13) as f32 / 13.0 - 0.5) / (H as f32).sqrt()),
        SVector::from_fn(|r, _| (r % 3) as f32 * 0.1),
    ));
    #[expect(clippy::cast_precision_loss, reason = "small indices")]
    let xs: Vec<SVector<f32, I>> = (0..INPUTS)
        .map(|t| SVector::from_fn(|k, _| ((t * 3 + k) % 7) as f32 / 3.5 - 1.0))
        .collect();
    let mut h = SVector::<f32, H>::zeros();
    let per_step = time_steps(batch, clock, |t| {
        h = cell.step(black_box(&xs[t % INPUTS]), &h);
    });
    black_box(h);
    print_percentiles(&format!("RnnCell::step ({I}, {H})"), &per_step);
}

/// The control: the (1, 16) column-chain floor, one call per step, timed like the steps.
fn report_control(clock: f64) {
    let best = elman::Backend::best();
    let mut carried = 0.5_f32;
    let per_step = time_steps(SMALL_BATCH, clock, |_| {
        carried = probe::floor_chain(best, 1, 16, 0, black_box(carried));
    });
    black_box(carried);
    print_percentiles("control: chain (1, 16)", &per_step);
}

fn main() {
    println!("{}", elman::kernel::probe::build_info());
    let clock = clock_cost();
    println!(
        "{STEPS} steps per size; (1, 16) timed in batches of {SMALL_BATCH}, (64, 128) one by \
         one; clock cost {clock:.1} ns, taken off each batch"
    );
    report::<1, 16>(SMALL_BATCH, clock);
    report_control(clock);
    report::<64, 128>(1, clock);
    report_rnn(clock);
    report_control(clock);
}
