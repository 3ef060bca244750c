//! The output layer and its readings: softmax, log-softmax, sigmoid, arg-max, one-hot.

#![allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    reason = "tests compare exact values on purpose and index with small integers"
)]

mod common;

use common::U;
use elman::bidirectional::read_out;
use elman::nalgebra::{SVector, vector};
use elman::strategies::{cell, input, matrix, readout, state};
use elman::{
    Backend, Readout, Rnn, argmax, log_softmax, one_hot, one_hot_argmax, reference, sigmoid,
    softmax,
};
use proptest::prelude::*;

const EPS: f64 = f32::EPSILON as f64;

fn sum<const N: usize>(p: &SVector<f32, N>) -> f64 {
    p.iter().map(|&v| f64::from(v)).sum()
}

/// `max_i (y_i + c) − c − y_i` as applied by f32 rounding: how far adding `c` moved each logit
/// relative to the others.
fn shift_error<const N: usize>(y: &SVector<f32, N>, c: f32) -> f64 {
    y.iter()
        .map(|&v| (f64::from(v + c) - (f64::from(v) + f64::from(c))).abs())
        .fold(0.0, f64::max)
}

/// `u·(max − min)`: the most the rounding of `y_i − max` can move a shifted logit.
fn spread_error<const N: usize>(y: &SVector<f32, N>) -> f64 {
    U * f64::from(y.max() - y.min())
}

macro_rules! softmax_at {
    ($name:ident, $n:literal) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(256))]

                #[test]
                fn sums_to_one_and_lies_in_unit_interval(y in matrix::<$n, 1>(20.0)) {
                    let p = softmax(&y);
                    prop_assert!((sum(&p) - 1.0).abs() <= 1e-6, "{p:?}");
                    prop_assert!(p.iter().all(|&v| v > 0.0 && v <= 1.0), "{p:?}");
                }

                #[test]
                fn huge_logits_stay_finite(y in matrix::<$n, 1>(1e30)) {
                    let p = softmax(&y);
                    prop_assert!(p.iter().all(|v| v.is_finite()), "{p:?}");
                    prop_assert!((sum(&p) - 1.0).abs() <= 1e-6, "{p:?}");
                    prop_assert!(log_softmax(&y).iter().all(|v| !v.is_nan()));
                }

                #[test]
                fn keeps_the_argmax(y in matrix::<$n, 1>(10.0)) {
                    let p = softmax(&y);
                    let k = argmax(&y);
                    // The largest logit has the largest probability ...
                    prop_assert_eq!(p[k], p.max());
                    // ... and unless the top two logits are within rounding of each other,
                    // the arg-max is the same.
                    let mut sorted: Vec<f32> = y.iter().copied().collect();
                    sorted.sort_by(|a, b| b.total_cmp(a));
                    if sorted.len() < 2 || sorted[0] - sorted[1] > 1e-5 {
                        prop_assert_eq!(argmax(&p), k);
                    }
                }

                #[test]
                fn invariant_to_a_constant(y in matrix::<$n, 1>(10.0), c in -10.0f32..10.0) {
                    let shifted = y.add_scalar(c);
                    // Adding c moved each logit by at most d relative to exact, and each softmax
                    // rounds `y_i − max` by at most u·(max − min): every exponent is off by at
                    // most e = d + r(y) + r(y + c), so each probability by a factor within
                    // e^{±2e}, plus 4 roundings (exp, sum, divide) on each side.
                    let e = shift_error(&y, c) + spread_error(&y) + spread_error(&shifted);
                    let (p, q) = (softmax(&y), softmax(&shifted));
                    for i in 0..$n {
                        let pi = f64::from(p[i]);
                        let tol = pi * ((2.0 * e).exp_m1() + 8.0 * U) + f64::from(f32::MIN_POSITIVE);
                        prop_assert!((pi - f64::from(q[i])).abs() <= tol, "{p:?} vs {q:?}");
                    }
                }

                #[test]
                fn log_softmax_is_log_of_softmax(y in matrix::<$n, 1>(10.0)) {
                    let (p, l) = (softmax(&y), log_softmax(&y));
                    for i in 0..$n {
                        // exp(l) and p are both within a few roundings of the exact value
                        // (exp of l adds |l|·u through l's own rounding).
                        let tol = f64::from(p[i]) * (8.0 * U + f64::from(l[i].abs()) * 2.0 * U);
                        let diff = (f64::from(l[i]).exp() - f64::from(p[i])).abs();
                        prop_assert!(diff <= tol, "{l:?} vs {p:?}");
                    }
                }
            }
        }
    };
}

softmax_at!(one, 1);
softmax_at!(two, 2);
softmax_at!(five, 5);
softmax_at!(seventeen, 17);
softmax_at!(sixty_four, 64);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `σ(x) = (1 + tanh(x/2)) / 2`, against the identity evaluated in f64 (whose cancellation
    /// near `tanh = −1` costs it an absolute `2^-52`), and against the logistic in f64. The
    /// f32 sigmoid is 3 roundings and one `exp` (≤ 1 ulp) from exact, so within `2ε` relative;
    /// where `exp` underflows into subnormals only an absolute floor of `f32::MIN_POSITIVE`
    /// holds.
    #[test]
    fn sigmoid_is_half_tanh_shifted(x in -100.0f32..100.0) {
        let s = f64::from(sigmoid(&SVector::<f32, 1>::new(x))[0]);
        let identity = f64::midpoint(1.0, (f64::from(x) / 2.0).tanh());
        prop_assert!((s - identity).abs() <= 2.0 * EPS * identity + 2.0 * f64::EPSILON,
            "sigmoid({x}) = {s}, (1 + tanh(x/2))/2 = {identity}");
        let logistic = 1.0 / (1.0 + (-f64::from(x)).exp());
        prop_assert!((s - logistic).abs() <= 2.0 * EPS * logistic + f64::from(f32::MIN_POSITIVE),
            "sigmoid({x}) = {s}, logistic {logistic}");
    }

    /// softmax([a, 0])₀ = σ(a): each side is within 2ε (relative) of `1 / (1 + e^{−a})`.
    #[test]
    fn two_class_softmax_is_sigmoid(a in -80.0f32..80.0) {
        let p = f64::from(softmax(&vector![a, 0.0])[0]);
        let s = f64::from(sigmoid(&SVector::<f32, 1>::new(a))[0]);
        prop_assert!((p - s).abs() <= 4.0 * EPS * p.max(s) + f64::from(f32::MIN_POSITIVE),
            "softmax {p} vs sigmoid {s}");
    }

    /// The readout's logits are the reference product, within the rounding of a sum of H + 1
    /// terms in two orders.
    #[test]
    fn readout_logits_equal_reference(
        head in readout::<13, 5>(3.0), h in state::<13>()
    ) {
        logits_match(&head, &h)?;
    }

    /// The same with more than 8 outputs (two partial sums instead of eight).
    #[test]
    fn wide_readout_logits_equal_reference(
        head in readout::<21, 11>(3.0), h in state::<21>()
    ) {
        logits_match(&head, &h)?;
    }

    /// The readout's order of sums, bit for bit, for output counts on each side of the one
    /// where its loop changes form (fewer than 4 outputs: a group's columns four values at a
    /// time), with and without columns left over after the groups.
    #[test]
    fn readout_sums_in_order(
        one in readout::<19, 1>(3.0), h19 in state::<19>(),
        two in readout::<64, 2>(3.0), h64 in state::<64>(),
        three in readout::<37, 3>(3.0), h37 in state::<37>(),
        four in readout::<21, 4>(3.0), h21 in state::<21>(),
        nine in readout::<13, 9>(3.0), h13 in state::<13>(),
    ) {
        sums_in_order(&one, &h19)?;
        sums_in_order(&two, &h64)?;
        sums_in_order(&three, &h37)?;
        sums_in_order(&four, &h21)?;
        sums_in_order(&nine, &h13)?;
    }

    /// [`read_out`] of a bidirectional sequence, row by row in the readout's order of sums,
    /// each row with a value below the flush threshold: with 3 outputs (the caller's loop) and
    /// from 4 (the best backend's entry), on each side of 8 outputs. Whether that value is
    /// flushed seldom shows beside the other products; `read_out_flushes_each_row` checks it.
    #[test]
    fn read_out_rows_in_order(
        three in readout::<37, 3>(3.0), four in readout::<21, 4>(3.0),
        ten in readout::<13, 10>(3.0), sixteen in readout::<96, 16>(3.0),
        eleven in readout::<33, 11>(3.0), fifteen in readout::<64, 15>(3.0),
        seven in readout::<41, 7>(3.0),
        thirteen in readout::<97, 13>(3.0), six in readout::<130, 6>(3.0),
        rows37 in prop::collection::vec(state::<37>(), 0..9),
        rows21 in prop::collection::vec(state::<21>(), 0..9),
        rows13 in prop::collection::vec(state::<13>(), 0..9),
        rows96 in prop::collection::vec(state::<96>(), 0..9),
        rows33 in prop::collection::vec(state::<33>(), 0..9),
        rows64 in prop::collection::vec(state::<64>(), 0..9),
        rows41 in prop::collection::vec(state::<41>(), 0..9),
        rows97 in prop::collection::vec(state::<97>(), 0..9),
        rows130 in prop::collection::vec(state::<130>(), 0..9),
    ) {
        read_out_in_order(&three, rows37)?;
        read_out_in_order(&four, rows21)?;
        read_out_in_order(&ten, rows13)?;
        read_out_in_order(&sixteen, rows96)?;
        // From 32 to 64 units, 7 and 9 to 15 outputs: each column one masked vector there.
        read_out_in_order(&eleven, rows33)?;
        read_out_in_order(&fifteen, rows64)?;
        read_out_in_order(&seven, rows41)?;
        // Above 64 units: 13 outputs (one masked 512-bit vector a column there) and 6 (one
        // masked 256-bit vector).
        read_out_in_order(&thirteen, rows97)?;
        read_out_in_order(&six, rows130)?;
    }

    /// A network's logits, on every backend, in the readout's order of sums: from 4 outputs
    /// the readout runs in the backend's entry ([`Rnn::step`], [`Rnn::process`] with its
    /// projections hoisted from 8 inputs and 32 KiB of weights, [`Rnn::process_last`]).
    #[test]
    fn network_logits_in_order_on_every_backend(
        small in cell::<3, 13>(1.0), head10 in readout::<13, 10>(3.0),
        wide in cell::<9, 96>(1.0), head16 in readout::<96, 16>(3.0),
        mid in cell::<3, 33>(1.0), head11 in readout::<33, 11>(3.0), head7 in readout::<33, 7>(3.0),
        large in cell::<3, 97>(1.0), head14 in readout::<97, 14>(3.0), head6 in readout::<97, 6>(3.0),
        x3 in input::<3>(2.0), x9 in input::<9>(2.0),
    ) {
        for backend in Backend::available() {
            network_in_order(Rnn::new((*small).clone(), head4_of(&head10)), backend, &x3)?;
            network_in_order(Rnn::new((*small).clone(), (*head10).clone()), backend, &x3)?;
            network_in_order(Rnn::new((*wide).clone(), (*head16).clone()), backend, &x9)?;
            network_in_order(Rnn::new((*mid).clone(), (*head11).clone()), backend, &x3)?;
            network_in_order(Rnn::new((*mid).clone(), (*head7).clone()), backend, &x3)?;
            process_each_in_order(Rnn::new((*mid).clone(), (*head11).clone()), backend, &x3)?;
            process_each_in_order(Rnn::new((*mid).clone(), (*head7).clone()), backend, &x3)?;
            // Above 64 units, where the 512-bit backend reads 14 and 6 outputs with masked
            // vectors.
            network_in_order(Rnn::new((*large).clone(), (*head14).clone()), backend, &x3)?;
            process_each_in_order(Rnn::new((*large).clone(), (*head6).clone()), backend, &x3)?;
        }
    }
}

/// `read_out` of `rows` (their second value set below the flush threshold) against
/// [`in_order`] of each row.
fn read_out_in_order<const H: usize, const O: usize>(
    head: &Readout<H, O>,
    mut rows: Vec<SVector<f32, H>>,
) -> Result<(), TestCaseError> {
    for (t, row) in rows.iter_mut().enumerate() {
        row[1 % H] = elman::FLUSH_BELOW * (t as f32 / 8.0 - 0.5);
    }
    let mut ys = vec![SVector::from_element(f32::NAN); rows.len()];
    read_out(head, &rows, &mut ys);
    for (row, y) in rows.iter().zip(&ys) {
        in_order(head, row, y)?;
    }
    Ok(())
}

/// `read_out` with a zero bias of rows that are zero but for one value: +0 in every output where
/// that value is below the flush threshold (a missed flush leaves its product), the product
/// where it is the threshold itself.
fn flushes_each_row<const H: usize, const O: usize>() {
    let head = Readout::<H, O>::from_row_major([[1.0; H]; O], [0.0; O]);
    let rows: Vec<SVector<f32, H>> = [
        elman::FLUSH_BELOW / 2.0,
        -elman::FLUSH_BELOW / 2.0,
        1e-40,
        elman::FLUSH_BELOW,
    ]
    .iter()
    .map(|&v| SVector::from_fn(|k, _| if k == H / 2 { v } else { 0.0 }))
    .collect();
    let mut ys = vec![SVector::<f32, O>::from_element(f32::NAN); rows.len()];
    read_out(&head, &rows, &mut ys);
    for (t, y) in ys[..3].iter().enumerate() {
        assert!(
            y.iter().all(|v| v.to_bits() == 0),
            "row {t}, {O} outputs: {y:?}"
        );
    }
    assert_eq!(
        ys[3],
        SVector::<f32, O>::from_element(elman::FLUSH_BELOW),
        "{O} outputs"
    );
}

#[test]
fn read_out_flushes_each_row() {
    flushes_each_row::<37, 3>();
    flushes_each_row::<21, 4>();
    flushes_each_row::<13, 10>();
    flushes_each_row::<96, 16>();
}

/// The first 4 outputs of `head`.
fn head4_of<const H: usize>(head: &Readout<H, 10>) -> Readout<H, 4> {
    Readout::new(
        head.weight().fixed_rows::<4>(0).into_owned(),
        head.bias().fixed_rows::<4>(0).into_owned(),
    )
}

/// `net`'s logits on `backend` by `step`, by `process` over 8 inputs (one block of hoisted
/// projections where the network hoists them) and over 1 (stepped alone), and by
/// `process_last`, each against [`in_order`] of the state it read out.
fn network_in_order<const I: usize, const H: usize, const O: usize>(
    net: Rnn<I, H, O>,
    backend: Backend,
    x: &SVector<f32, I>,
) -> Result<(), TestCaseError> {
    let mut net = net.with_backend(backend);
    let head = net.readout().clone();
    let y = net.step(x);
    in_order(&head, net.state(), &y)?;
    let xs: Vec<SVector<f32, I>> = (0..8).map(|t| x * (t as f32 / 4.0 - 1.0)).collect();
    let mut ys = vec![SVector::zeros(); xs.len()];
    net.process(&xs, &mut ys);
    in_order(&head, net.state(), &ys[7])?;
    // One input: fewer than a block, where the hoisting network steps and reads out alone.
    net.process(&xs[..1], &mut ys[..1]);
    in_order(&head, net.state(), &ys[0])?;
    let last = net.process_last(&xs).expect("eight inputs");
    in_order(&head, net.state(), &last)
}

/// `process`'s logits at every step (those read out inside the kernel's loop as well as the
/// last) against [`in_order`] at the state `step` reaches there: for a network that does not
/// hoist its input projections, where `process` has `step`'s bits.
fn process_each_in_order<const I: usize, const H: usize, const O: usize>(
    net: Rnn<I, H, O>,
    backend: Backend,
    x: &SVector<f32, I>,
) -> Result<(), TestCaseError> {
    let mut net = net.with_backend(backend);
    let mut stepped = net.clone();
    let head = net.readout().clone();
    let xs: Vec<SVector<f32, I>> = (0..8).map(|t| x * (t as f32 / 4.0 - 1.0)).collect();
    let mut ys = vec![SVector::zeros(); xs.len()];
    net.process(&xs, &mut ys);
    for (x, y) in xs.iter().zip(&ys) {
        stepped.step(x);
        in_order(&head, stepped.state(), y)?;
    }
    prop_assert_eq!(stepped.state(), net.state());
    Ok(())
}

/// `readout.logits(h)` against the order it documents ([`in_order`]).
fn sums_in_order<const H: usize, const O: usize>(
    readout: &Readout<H, O>,
    h: &SVector<f32, H>,
) -> Result<(), TestCaseError> {
    in_order(readout, h, &readout.logits(h))
}

/// `y` against `readout`'s logits of `h` in the order the readout documents, computed one value
/// at a time: `h` flushed, column `k` added into partial sum `k mod S` (`S` = 8 up to 8
/// outputs, else 2), each product rounded before its sum, the partial sums added pairwise (the
/// upper half onto the lower), then the bias added to the sum.
fn in_order<const H: usize, const O: usize>(
    readout: &Readout<H, O>,
    h: &SVector<f32, H>,
    y: &SVector<f32, O>,
) -> Result<(), TestCaseError> {
    let parts = if O <= 8 { 8 } else { 2 };
    let (w, b) = (readout.weight(), readout.bias());
    let h = h.map(|v| if v.abs() < elman::FLUSH_BELOW { 0.0 } else { v });
    let mut sums = vec![[0.0_f32; O]; parts];
    for k in 0..H {
        for (o, sum) in sums[k % parts].iter_mut().enumerate() {
            *sum += h[k] * w[(o, k)];
        }
    }
    let mut n = parts;
    while n > 1 {
        let half = n.div_ceil(2);
        for s in 0..n - half {
            let upper = sums[s + half];
            for (sum, value) in sums[s].iter_mut().zip(upper) {
                *sum += value;
            }
        }
        n = half;
    }
    for o in 0..O {
        prop_assert_eq!(
            y[o].to_bits(),
            (b[o] + sums[0][o]).to_bits(),
            "output {} of {}",
            o,
            O
        );
    }
    Ok(())
}

fn logits_match<const H: usize, const O: usize>(
    readout: &Readout<H, O>,
    h: &SVector<f32, H>,
) -> Result<(), TestCaseError> {
    let (fast, slow) = (readout.logits(h), reference::logits(readout, h));
    let (w, b) = (readout.weight(), readout.bias());
    for o in 0..O {
        let s: f64 = (0..H)
            .map(|k| f64::from(w[(o, k)].abs() * h[k].abs()))
            .sum::<f64>()
            + f64::from(b[o].abs());
        let tol = 2.0 * common::gamma(H + 1) * s;
        prop_assert!((f64::from(fast[o]) - f64::from(slow[o])).abs() <= tol);
    }
    prop_assert_eq!(readout.predict(h), argmax(&fast));
    prop_assert_eq!(readout.probabilities(h), softmax(&fast));
    Ok(())
}

#[test]
fn softmax_of_non_finite_logits() {
    let inf = f32::INFINITY;
    assert!(
        softmax(&vector![f32::NAN, 1.0, 2.0])
            .iter()
            .all(|v| v.is_nan())
    );
    assert!(
        log_softmax(&vector![1.0, f32::NAN])
            .iter()
            .all(|v| v.is_nan())
    );
    assert_eq!(
        softmax(&vector![inf, 3.0, inf, -inf]),
        vector![0.5, 0.0, 0.5, 0.0]
    );
    assert_eq!(softmax(&vector![-inf, 0.0]), vector![0.0, 1.0]);
    assert!(softmax(&vector![-inf, -inf]).iter().all(|v| v.is_nan()));
    let l = log_softmax(&vector![inf, 0.0, inf]);
    assert_eq!(l, vector![-(2.0_f32.ln()), -inf, -(2.0_f32.ln())]);
    assert_eq!(softmax(&vector![1e30, -1e30]), vector![1.0, 0.0]);
    assert_eq!(
        softmax(&vector![3.0e38, 3.0e38, -3.0e38]),
        vector![0.5, 0.5, 0.0]
    );
}

#[test]
fn sigmoid_of_extremes() {
    let s = sigmoid(&vector![
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e30,
        -1e30,
        0.0
    ]);
    assert_eq!(s.fixed_rows::<2>(0), vector![1.0, 0.0]);
    assert!(s[2].is_nan());
    assert_eq!(s.fixed_rows::<3>(3), vector![1.0, 0.0, 0.5]);
}

#[test]
fn argmax_takes_the_first_of_ties_and_reports_nan() {
    assert_eq!(argmax(&vector![1.0, 3.0, 3.0]), 1);
    assert_eq!(argmax(&vector![-1.0]), 0);
    assert_eq!(argmax(&vector![1.0, f32::NAN, 5.0]), 1);
    assert_eq!(argmax(&vector![f32::NEG_INFINITY, -1e38]), 1);
}

#[test]
fn one_hot_vectors() {
    assert_eq!(one_hot::<4>(2), Some(vector![0.0, 0.0, 1.0, 0.0]));
    assert_eq!(one_hot::<4>(4), None);
    assert_eq!(
        one_hot_argmax(&vector![0.1, -2.0, 0.3, 0.2]),
        vector![0.0, 0.0, 1.0, 0.0]
    );
}

#[test]
fn readout_row_major_is_pytorch_order() {
    // nn.Linear(2, 3).weight is [3][2]: row o holds output o's weights.
    let r: Readout<2, 3> =
        Readout::from_row_major([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [0.5, 0.0, -0.5]);
    // y = [1·1 + 2·(−1) + 0.5, 3 − 4, 5 − 6 − 0.5]
    assert_eq!(r.logits(&vector![1.0, -1.0]), vector![-0.5, -1.0, -1.5]);
    assert_eq!(r.predict(&vector![1.0, -1.0]), 0);
}
