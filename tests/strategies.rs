//! `elman::strategies` draws what each strategy promises: bounded weights, contractive and
//! saturating cells, readouts, inputs and sequences of bounded length, on the heap at any size.

#![allow(
    clippy::float_cmp,
    reason = "a saturated unit is exactly ±1, compared on purpose"
)]

mod common;

use common::{FAST_TANH_ERROR, order_tolerance};
use elman::nalgebra::SVector;
use elman::strategies::{
    cell, cell_with, contractive_cell, contractive_cell_with, input, matrix, readout,
    saturating_cell, sequence, state,
};
use elman::{Activation, Backend, Relu, RnnCell, Tanh, reference};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// The largest absolute row sum of `W_hh`, in `f64` (as the error budget sums it).
fn recurrent_norm<const I: usize, const H: usize, A: Activation>(cell: &RnnCell<I, H, A>) -> f64 {
    cell.w_hh()
        .row_iter()
        .map(|row| row.iter().map(|w| f64::from(w.abs())).sum::<f64>())
        .fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cells_and_readouts_stay_in_their_bound(
        tanh in cell::<3, 5>(0.5), relu in cell_with::<4, 2, Relu>(3.0), head in readout::<5, 3>(2.0)
    ) {
        prop_assert!(tanh.w_xh().amax() <= 0.5 && tanh.w_hh().amax() <= 0.5 && tanh.bias().amax() <= 0.5);
        prop_assert!(relu.w_xh().amax() <= 3.0 && relu.w_hh().amax() <= 3.0 && relu.bias().amax() <= 3.0);
        prop_assert!(head.weight().amax() <= 2.0 && head.bias().amax() <= 2.0);
    }

    #[test]
    fn contractive_cells_are_below_their_norm(
        small in contractive_cell::<3, 7>(0.5),
        near_one in contractive_cell_with::<2, 13, Relu>(1.0, 4.0),
    ) {
        prop_assert!(recurrent_norm(&small) < 0.5);
        prop_assert!(small.w_xh().amax() <= 1.0 && small.bias().amax() <= 1.0);
        prop_assert!(recurrent_norm(&near_one) < 1.0);
        prop_assert!(near_one.w_xh().amax() <= 4.0 && near_one.bias().amax() <= 4.0);
        prop_assert!(near_one.error_budget(1.0, 1.0).sequence.is_some());
    }

    /// Every unit of a saturating cell's step, on every backend, is its bias's sign within
    /// `1 − tanh(margin)`, plus the step's rounding: the pre-activation's (`order_tolerance`
    /// without the activation, which tanh does not enlarge) and the fast tanh's.
    #[test]
    fn saturating_cells_saturate(
        cell in saturating_cell::<3, 9>(3.0), x in input::<3>(1.0), h in state::<9>()
    ) {
        let rounding = order_tolerance(&cell, &x, &h, 0.0).max() + FAST_TANH_ERROR;
        let floor = f64::from(3.0_f32).tanh() - rounding;
        for backend in Backend::available() {
            let next = cell.step_with(backend, &x, &h);
            for (j, &v) in next.iter().enumerate() {
                prop_assert!(
                    f64::from(v) * f64::from(cell.bias()[j].signum()) >= floor,
                    "{}: unit {j} is {v}, bias {}", backend.name(), cell.bias()[j]
                );
            }
        }
        let slow = reference::step(&cell, &x, &h);
        prop_assert!(slow.iter().all(|v| f64::from(v.abs()) >= floor), "{slow:?}");
    }

    /// A saturating cell stays saturated over a whole sequence: each state is again in `[-1, 1]`.
    #[test]
    fn saturating_cells_stay_saturated(cell in saturating_cell::<2, 4>(10.0), xs in sequence::<2>(1.0, 1..30)) {
        let mut h = SVector::<f32, 4>::zeros();
        for x in &xs {
            h = cell.step(x, &h);
            // Each pre-activation is 10 or more, off by its rounding (far below 1): the fast tanh
            // is exactly ±1 from 9.04 on (see `FAST_TANH_CLAMP`).
            prop_assert!(h.iter().all(|v| v.abs() == 1.0), "{h:?}");
        }
    }

    #[test]
    fn inputs_states_and_sequences_are_bounded(
        x in input::<6>(0.25), h in state::<5>(), m in matrix::<3, 4>(7.0), xs in sequence::<2>(3.0, 2..=5)
    ) {
        prop_assert!(x.amax() <= 0.25 && h.amax() <= 1.0 && m.amax() <= 7.0);
        prop_assert!((2..=5).contains(&xs.len()));
        prop_assert!(xs.iter().all(|x| x.amax() <= 3.0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4))]

    /// A cell of 385 KiB, drawn and stepped on a test thread's stack in a debug build: the
    /// strategies build it in place on the heap (built by value, it overflows the stack).
    #[test]
    fn large_cells_stay_off_the_stack(cell in contractive_cell::<128, 256>(0.9), x in input::<128>(1.0)) {
        prop_assert!(recurrent_norm(&cell) < 0.9);
        let next = cell.step(&x, &SVector::zeros());
        prop_assert!(next.iter().all(|v| v.abs() <= 1.0));
    }
}

/// Shrinking a contractive cell shrinks its weights, and keeps it contractive all the way down.
#[test]
fn shrinking_keeps_a_contractive_cell_contractive() {
    let mut runner = TestRunner::deterministic();
    let mut tree = contractive_cell::<2, 6>(0.8)
        .new_tree(&mut runner)
        .expect("a value");
    let first = recurrent_norm(&tree.current());
    let mut steps = 0;
    while tree.simplify() && steps < 10_000 {
        assert!(recurrent_norm(&tree.current()) < 0.8);
        steps += 1;
    }
    let last = tree.current();
    assert!(
        recurrent_norm(&last) <= first,
        "{} > {first}",
        recurrent_norm(&last)
    );
    assert_eq!(
        *last,
        RnnCell::<2, 6, Tanh>::default(),
        "shrinks to the zero cell"
    );
}

#[test]
#[should_panic(expected = "bound must be finite and not negative, not -1")]
fn a_negative_bound_is_named() {
    let _ = cell::<2, 3>(-1.0);
}

#[test]
#[should_panic(expected = "norm must be positive and finite, not 0")]
fn a_zero_norm_is_named() {
    let _ = contractive_cell::<2, 3>(0.0);
}

#[test]
#[should_panic(expected = "margin must be finite and not negative, not NaN")]
fn a_nan_margin_is_named() {
    let _ = saturating_cell::<2, 3>(f32::NAN);
}
