//! The cell's algebra: the split form, the concatenated form and the reference are one map.

#![allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    reason = "tests compare exact values on purpose and index with small integers"
)]

mod common;

use common::{FAST_TANH_ERROR, TANH_ERROR, assert_within, cell, input, order_tolerance};
use elman::nalgebra::{SMatrix, SVector};
use elman::strategies::state;
use elman::{Backend, Relu, RnnCell, Tanh, reference};
use proptest::prelude::*;

/// One set of properties for one size, so every size runs the same checks.
macro_rules! algebra_at {
    ($name:ident, $i:literal, $h:literal, $cases:literal) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases($cases))]

                #[test]
                fn split_equals_concatenated(
                    cell in cell::<$i, $h, Tanh>(), x in input::<$i>(), h in state::<$h>()
                ) {
                    // step: the fast tanh; step_concatenated: f32::tanh.
                    let tol = order_tolerance(&cell, &x, &h, FAST_TANH_ERROR + TANH_ERROR);
                    assert_within(&cell.step(&x, &h), &reference::step_concatenated(&cell, &x, &h), &tol)?;
                }

                #[test]
                fn step_equals_reference(
                    cell in cell::<$i, $h, Tanh>(), x in input::<$i>(), h in state::<$h>()
                ) {
                    let tol = order_tolerance(&cell, &x, &h, FAST_TANH_ERROR + TANH_ERROR);
                    let slow = reference::step(&cell, &x, &h);
                    for backend in Backend::available() {
                        assert_within(&cell.step_with(backend, &x, &h), &slow, &tol)?;
                    }
                    assert_within(&cell.step(&x, &h), &slow, &tol)?;
                }

                #[test]
                fn concatenated_equals_reference(
                    cell in cell::<$i, $h, Tanh>(), x in input::<$i>(), h in state::<$h>()
                ) {
                    let tol = order_tolerance(&cell, &x, &h, 2.0 * TANH_ERROR);
                    let slow = reference::step(&cell, &x, &h);
                    assert_within(&reference::step_concatenated(&cell, &x, &h), &slow, &tol)?;
                }

                #[test]
                fn relu_step_equals_reference_and_is_nonnegative(
                    cell in cell::<$i, $h, Relu>(), x in input::<$i>(), h in state::<$h>()
                ) {
                    let tol = order_tolerance(&cell, &x, &h, 0.0);
                    for backend in Backend::available() {
                        let fast = cell.step_with(backend, &x, &h);
                        assert_within(&fast, &reference::step(&cell, &x, &h), &tol)?;
                        assert_within(&fast, &reference::step_concatenated(&cell, &x, &h), &tol)?;
                        prop_assert!(fast.iter().all(|&v| v >= 0.0), "{fast:?}");
                    }
                }

                #[test]
                fn tanh_step_stays_in_unit_interval(
                    cell in cell::<$i, $h, Tanh>(), x in input::<$i>(), h in state::<$h>()
                ) {
                    let next = cell.step(&x, &h);
                    prop_assert!(next.iter().all(|v| (-1.0..=1.0).contains(v)), "{next:?}");
                }

                #[test]
                fn concatenated_round_trips(cell in cell::<$i, $h, Tanh>()) {
                    let w: SMatrix<f32, $h, { $i + $h }> = cell.concatenated();
                    prop_assert_eq!(&RnnCell::<$i, $h>::from_concatenated(w, *cell.bias()), &*cell);
                }

                #[test]
                fn zero_cell_keeps_zero_state(x in input::<$i>()) {
                    let zero = RnnCell::<$i, $h>::default();
                    prop_assert_eq!(zero.step(&x, &SVector::zeros()), SVector::<f32, $h>::zeros());
                    let relu = RnnCell::<$i, $h, Relu>::default();
                    prop_assert_eq!(relu.step(&x, &SVector::zeros()), SVector::<f32, $h>::zeros());
                }
            }
        }
    };
}

algebra_at!(seed_3x2, 3, 2, 256);
algebra_at!(one_by_one, 1, 1, 256);
algebra_at!(odd_7x13, 7, 13, 128);
algebra_at!(large_64x128, 64, 128, 24);
