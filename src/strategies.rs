//! [proptest](mod@proptest) strategies for models of your sizes: a property of your own code,
//! checked over every cell of a class, in one line.
//!
//! Enabled by the `proptest` feature, in the crate that holds the tests:
//!
//! ```toml
//! [dev-dependencies]
//! elman = { version = "0.1", features = ["proptest"] }
//! proptest = "1"
//! ```
//!
//! | strategy | draws |
//! | --- | --- |
//! | [`cell`], [`cell_with`] | any cell: every weight and bias in `[-bound, bound]` |
//! | [`contractive_cell`], [`contractive_cell_with`] | a cell with `‖W_hh‖∞ < norm`: every row of `W_hh` sums, in absolute value, below `norm` |
//! | [`saturating_cell`] | a tanh cell whose every unit is within `1 − tanh(margin)` of ±1 after a step from an input in `[-1, 1]` |
//! | [`readout`] | any readout: every weight and bias in `[-bound, bound]` |
//! | [`matrix`], [`input`], [`state`] | matrices and vectors of bounded values; a state in `[-1, 1]`, where tanh keeps it |
//! | [`sequence`] | sequences of inputs, of a length in a range |
//!
//! The sizes are the type's, given as `::<I, H>` (the activation is [`Tanh`]; the `_with`
//! strategies take it as a third parameter):
//!
//! ```
//! use elman::strategies::{contractive_cell, sequence};
//! use elman::nalgebra::SVector;
//! use proptest::prelude::*;
//!
//! // Two states run through the same inputs come closer, by `‖W_hh‖∞ < 0.9` per step, up to
//! // each step's rounding (its error budget, for each of the two).
//! proptest!(|(cell in contractive_cell::<3, 8>(0.9), xs in sequence::<3>(1.0, 1..20))| {
//!     let rounding = 2.0 * cell.error_budget(1.0, 1.0).per_step;
//!     let (mut a, mut b) = (SVector::<f32, 8>::from_element(1.0), SVector::from_element(-1.0));
//!     for x in &xs {
//!         let distance = (a - b).amax();
//!         (a, b) = (cell.step(x, &a), cell.step(x, &b));
//!         prop_assert!((a - b).amax() <= 0.9 * distance + rounding);
//!     }
//! });
//! ```
//!
//! # Shapes of the values
//!
//! Cells and readouts come boxed (`Box<RnnCell<I, H>>`, `Box<Readout<H, O>>`), written in place
//! on the heap from the weights proptest draws (and shrinks) in vectors: a model of a real size
//! built by value overflows a test thread's stack in a debug build (a `RnnCell<128, 256>` is
//! 385 KiB; see [`in_place`](crate::in_place)). A box is used as the model itself
//! (`cell.step(..)`, `&cell` where a `&RnnCell` is expected); `*cell` moves it out where a
//! constructor takes a model by value. Matrices, vectors and sequences come by value.
//!
//! The weights are stored as the in-place constructors store them, so weights below
//! [`WEIGHT_FLUSH_BELOW`](crate::WEIGHT_FLUSH_BELOW) are stored as zero, as in every cell.
//!
//! Each strategy shrinks its values towards zero (the contraction of a contractive cell too), so
//! a failure is reported on the smallest weights proptest finds.
//!
//! # Without `std`
//!
//! The feature needs an allocator (the boxes, proptest's own vectors) but not `std`: it builds
//! with `default-features = false`.
//!
//! # Panics
//!
//! Every strategy checks its arguments when it is built (not when it draws): a bound or margin
//! that is negative, infinite or NaN, or a norm that is not positive and finite, panics, naming
//! the argument.

use alloc::boxed::Box;
use alloc::vec::Vec;

use nalgebra::{SMatrix, SVector};
use proptest::collection::{SizeRange, vec};
use proptest::prelude::*;

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::readout::Readout;

/// Any tanh cell of these sizes: every weight of `W_xh`, `W_hh` and `b` uniform in
/// `[-bound, bound]`. See [`cell_with`] for another activation.
///
/// ```
/// use elman::strategies::{cell, input, state};
/// use proptest::prelude::*;
///
/// // A tanh cell's state stays in [-1, 1], whatever its weights.
/// proptest!(|(cell in cell::<3, 8>(4.0), x in input::<3>(10.0), h in state::<8>())| {
///     prop_assert!(cell.step(&x, &h).iter().all(|v| v.abs() <= 1.0));
/// });
/// ```
///
/// # Panics
///
/// If `bound` is negative, infinite or NaN.
pub fn cell<const I: usize, const H: usize>(
    bound: f32,
) -> impl Strategy<Value = Box<RnnCell<I, H, Tanh>>> {
    cell_with::<I, H, Tanh>(bound)
}

/// Any cell of these sizes with the activation `A`: every weight of `W_xh`, `W_hh` and `b`
/// uniform in `[-bound, bound]`.
///
/// ```
/// use elman::strategies::{cell_with, input, state};
/// use elman::Relu;
/// use proptest::prelude::*;
///
/// proptest!(|(cell in cell_with::<3, 8, Relu>(1.0), x in input::<3>(1.0), h in state::<8>())| {
///     prop_assert!(cell.step(&x, &h).iter().all(|&v| v >= 0.0));
/// });
/// ```
///
/// # Panics
///
/// If `bound` is negative, infinite or NaN.
pub fn cell_with<const I: usize, const H: usize, A: Activation>(
    bound: f32,
) -> impl Strategy<Value = Box<RnnCell<I, H, A>>> {
    (
        values(bound, "bound", H * I),
        values(bound, "bound", H * H),
        values(bound, "bound", H),
    )
        .prop_map(|(w_xh, w_hh, b)| boxed_cell(&w_xh, &w_hh, &b))
}

/// A tanh cell of these sizes that contracts its state: `‖W_hh‖∞ < norm`, every row of `W_hh`
/// sums, in absolute value, below `norm`; `W_xh` and `b` uniform in `[-1, 1]`. See
/// [`contractive_cell_with`] for other activations and input weights.
///
/// tanh is 1-Lipschitz, so with `norm ≤ 1` one step brings two states closer, by `norm` at
/// least, and [`error_budget`](RnnCell::error_budget) bounds the error over a whole sequence
/// ([`ErrorBudget::sequence`](crate::ErrorBudget::sequence) is `Some`).
///
/// `W_hh` is drawn uniform in `[-1, 1]`, then scaled so that its norm is a value drawn in
/// `[0, norm)`.
///
/// ```
/// use elman::strategies::contractive_cell;
/// use proptest::prelude::*;
///
/// proptest!(|(cell in contractive_cell::<3, 8>(0.9))| {
///     let budget = cell.error_budget(1.0, 1.0);
///     prop_assert!(budget.contraction < 0.9);
///     prop_assert!(budget.sequence.is_some());
/// });
/// ```
///
/// # Panics
///
/// If `norm` is not positive and finite.
pub fn contractive_cell<const I: usize, const H: usize>(
    norm: f32,
) -> impl Strategy<Value = Box<RnnCell<I, H, Tanh>>> {
    contractive_cell_with::<I, H, Tanh>(norm, 1.0)
}

/// A cell of these sizes with the activation `A` and `‖W_hh‖∞ < norm` (every row of `W_hh`
/// sums, in absolute value, below `norm`), with `W_xh` and `b` uniform in `[-bound, bound]`.
///
/// tanh and ReLU are both 1-Lipschitz: with `norm ≤ 1` either cell contracts its state, as
/// [`contractive_cell`] says.
///
/// ```
/// use elman::strategies::{contractive_cell_with, input, state};
/// use elman::Relu;
/// use proptest::prelude::*;
///
/// // A ReLU cell with ‖W_hh‖∞ < 0.5 moves a state by at most half its change, up to each
/// // step's rounding (its error budget).
/// proptest!(|(
///     cell in contractive_cell_with::<2, 6, Relu>(0.5, 3.0),
///     x in input::<2>(1.0),
///     (a, b) in (state::<6>(), state::<6>()),
/// )| {
///     let rounding = 2.0 * cell.error_budget(1.0, 1.0).per_step;
///     let moved = (cell.step(&x, &a) - cell.step(&x, &b)).amax();
///     prop_assert!(moved <= 0.5 * (a - b).amax() + rounding);
/// });
/// ```
///
/// # Panics
///
/// If `norm` is not positive and finite, or `bound` is negative, infinite or NaN.
pub fn contractive_cell_with<const I: usize, const H: usize, A: Activation>(
    norm: f32,
    bound: f32,
) -> impl Strategy<Value = Box<RnnCell<I, H, A>>> {
    assert!(
        norm.is_finite() && norm > 0.0,
        "norm must be positive and finite, not {norm}"
    );
    (
        values(bound, "bound", H * I),
        values(1.0, "bound", H * H),
        values(bound, "bound", H),
        0.0..norm,
    )
        .prop_map(move |(w_xh, mut w_hh, b, target)| {
            scale_rows_below::<H>(&mut w_hh, target, norm);
            boxed_cell(&w_xh, &w_hh, &b)
        })
}

/// A tanh cell of these sizes that saturates: for every input with `‖x‖∞ ≤ 1` and state with
/// `‖h‖∞ ≤ 1` (every state a tanh cell reaches), each pre-activation `W_xh·x + W_hh·h + b` is
/// at least `margin` in absolute value, so each unit of the step is within
/// `1 − tanh(margin)` of ±1 (the sign of its bias), up to the fast tanh's error.
///
/// `W_xh` and `W_hh` are uniform in `[-1, 1]`; each bias outweighs its row:
/// `|b_j| = m_j + Σ_k |W_xh[j, k]| + Σ_k |W_hh[j, k]|`, with `m_j` drawn in
/// `[margin, 2·margin]` and the sign of `b_j` at random. The bound holds for the stored
/// (rounded) weights in exact arithmetic; a step in `f32` adds its rounding
/// ([`error_budget`](RnnCell::error_budget)).
///
/// ```
/// use elman::strategies::{input, saturating_cell, state};
/// use elman::FAST_TANH_MAX_ABS_ERROR;
/// use proptest::prelude::*;
///
/// proptest!(|(cell in saturating_cell::<3, 8>(4.0), x in input::<3>(1.0), h in state::<8>())| {
///     let floor = 4.0_f32.tanh() - FAST_TANH_MAX_ABS_ERROR - 1e-6;
///     prop_assert!(cell.step(&x, &h).iter().all(|v| v.abs() >= floor));
/// });
/// ```
///
/// # Panics
///
/// If `margin` is negative, infinite or NaN.
pub fn saturating_cell<const I: usize, const H: usize>(
    margin: f32,
) -> impl Strategy<Value = Box<RnnCell<I, H, Tanh>>> {
    check_bound(margin, "margin");
    (
        values(1.0, "bound", H * I),
        values(1.0, "bound", H * H),
        vec((margin..=2.0 * margin, any::<bool>()), H),
    )
        .prop_map(|(w_xh, w_hh, margins)| {
            let b: Vec<f32> = margins
                .iter()
                .enumerate()
                .map(|(j, &(m, negative))| {
                    let row = w_xh[j * I..(j + 1) * I]
                        .iter()
                        .chain(&w_hh[j * H..(j + 1) * H]);
                    let outweighs = f64::from(m) + row.map(|w| f64::from(w.abs())).sum::<f64>();
                    // Rounded up by more than f32's half ulp: the stored bias outweighs too.
                    #[expect(
                        clippy::cast_possible_truncation,
                        reason = "rounded to f32 on purpose"
                    )]
                    let magnitude = (outweighs * (1.0 + 1e-6)) as f32;
                    if negative { -magnitude } else { magnitude }
                })
                .collect();
            boxed_cell(&w_xh, &w_hh, &b)
        })
}

/// Any readout `y = W_hy·h + b_y` of these sizes: every weight and bias uniform in
/// `[-bound, bound]`.
///
/// ```
/// use elman::strategies::{readout, state};
/// use proptest::prelude::*;
///
/// proptest!(|(head in readout::<8, 4>(1.0), h in state::<8>())| {
///     prop_assert!(head.predict(&h) < 4);
/// });
/// ```
///
/// # Panics
///
/// If `bound` is negative, infinite or NaN.
pub fn readout<const H: usize, const O: usize>(
    bound: f32,
) -> impl Strategy<Value = Box<Readout<H, O>>> {
    (values(bound, "bound", O * H), values(bound, "bound", O)).prop_map(|(w_hy, b_y)| {
        let mut readout: Box<Readout<H, O>> = bytemuck::zeroed_box();
        readout.store_row_major(&w_hy, &b_y);
        readout
    })
}

/// An `R × C` matrix with every entry uniform in `[-bound, bound]`.
///
/// ```
/// use elman::strategies::matrix;
/// use proptest::prelude::*;
///
/// proptest!(|(w in matrix::<2, 3>(0.5))| {
///     prop_assert!(w.amax() <= 0.5);
/// });
/// ```
///
/// # Panics
///
/// If `bound` is negative, infinite or NaN.
pub fn matrix<const R: usize, const C: usize>(
    bound: f32,
) -> impl Strategy<Value = SMatrix<f32, R, C>> {
    values(bound, "bound", R * C).prop_map(|v| SMatrix::from_column_slice(&v))
}

/// An input of `N` values, each uniform in `[-bound, bound]`.
///
/// ```
/// use elman::strategies::input;
/// use proptest::prelude::*;
///
/// proptest!(|(x in input::<3>(2.0))| {
///     prop_assert!(x.amax() <= 2.0);
/// });
/// ```
///
/// # Panics
///
/// If `bound` is negative, infinite or NaN.
pub fn input<const N: usize>(bound: f32) -> impl Strategy<Value = SVector<f32, N>> {
    matrix::<N, 1>(bound)
}

/// A hidden state of `H` values in `[-1, 1]`: every state a tanh cell reaches from a state in
/// that range.
///
/// ```
/// use elman::strategies::state;
/// use proptest::prelude::*;
///
/// proptest!(|(h in state::<8>())| {
///     prop_assert!(h.amax() <= 1.0);
/// });
/// ```
pub fn state<const H: usize>() -> impl Strategy<Value = SVector<f32, H>> {
    input::<H>(1.0)
}

/// A sequence of inputs of `I` values each uniform in `[-bound, bound]`, its length drawn from
/// `len` (`0..40`, `1..=8`, or an exact `usize`).
///
/// ```
/// use elman::strategies::sequence;
/// use proptest::prelude::*;
///
/// proptest!(|(xs in sequence::<3>(1.0, 1..20))| {
///     prop_assert!((1..20).contains(&xs.len()));
///     prop_assert!(xs.iter().all(|x| x.amax() <= 1.0));
/// });
/// ```
///
/// # Panics
///
/// If `bound` is negative, infinite or NaN.
pub fn sequence<const I: usize>(
    bound: f32,
    len: impl Into<SizeRange>,
) -> impl Strategy<Value = Vec<SVector<f32, I>>> {
    vec(input::<I>(bound), len)
}

/// Panics, naming the argument, unless `0 ≤ value < ∞`.
fn check_bound(value: f32, name: &str) {
    assert!(
        value.is_finite() && value >= 0.0,
        "{name} must be finite and not negative, not {value}"
    );
}

/// `n` values uniform in `[-bound, bound]`.
fn values(bound: f32, name: &str, n: usize) -> impl Strategy<Value = Vec<f32>> + use<> {
    check_bound(bound, name);
    vec(-bound..=bound, n)
}

/// The cell with these row-major weights (`H·I`, `H·H` and `H` values), written in place on the
/// heap: the weights are held in vectors and the cell is never on the stack.
fn boxed_cell<const I: usize, const H: usize, A: Activation>(
    w_xh: &[f32],
    w_hh: &[f32],
    b: &[f32],
) -> Box<RnnCell<I, H, A>> {
    let mut cell: Box<RnnCell<I, H, A>> = bytemuck::zeroed_box();
    cell.store_row_major(w_xh, w_hh, b);
    cell
}

/// The largest absolute row sum of the `H × H` row-major matrix `w`, summed as
/// [`error_budget`](RnnCell::error_budget) sums it (in `f64`).
fn row_norm<const H: usize>(w: &[f32]) -> f64 {
    w.chunks(H.max(1))
        .map(|row| row.iter().map(|v| f64::from(v.abs())).sum::<f64>())
        .fold(0.0, f64::max)
}

/// Scales the `H × H` row-major matrix `w` to the norm `target` (`< norm`), then on down until
/// its norm, as rounded to `f32`, is below `norm`.
fn scale_rows_below<const H: usize>(w: &mut [f32], target: f32, norm: f32) {
    let current = row_norm::<H>(w);
    if current > 0.0 {
        #[expect(clippy::cast_possible_truncation, reason = "a scale factor, rounded")]
        let factor = (f64::from(target) / current) as f32;
        for v in w.iter_mut() {
            *v *= factor;
        }
    }
    while row_norm::<H>(w) >= f64::from(norm) {
        for v in w.iter_mut() {
            *v *= 1.0 - f32::EPSILON * 64.0;
        }
    }
}
