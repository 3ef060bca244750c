//! The error budget holds: per step on any cell, and over long sequences for contractive ones,
//! on every backend.

mod common;

use common::{cell, contractive, input};
use elman::nalgebra::SVector;
use elman::strategies::state;
use elman::{Backend, Relu, Tanh, reference};
use proptest::prelude::*;

fn max_diff<const H: usize>(a: &SVector<f32, H>, b: &SVector<f32, H>) -> f32 {
    (a - b).amax()
}

macro_rules! budget_at {
    ($name:ident, $i:literal, $h:literal, $cases:literal, $steps:literal) => {
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases($cases))]

                #[test]
                fn per_step(cell in cell::<$i, $h, Tanh>(), x in input::<$i>(), h in state::<$h>()) {
                    let x_max = x.amax();
                    let budget = cell.error_budget(x_max, 1.0);
                    let slow = reference::step(&cell, &x, &h);
                    for backend in Backend::available() {
                        let d = max_diff(&cell.step_with(backend, &x, &h), &slow);
                        prop_assert!(d <= budget.per_step, "{}: {d:e} > {:e}", backend.name(), budget.per_step);
                    }
                }

                #[test]
                fn per_step_relu(cell in cell::<$i, $h, Relu>(), x in input::<$i>(), h in state::<$h>()) {
                    let budget = cell.error_budget(x.amax(), h.amax());
                    let slow = reference::step(&cell, &x, &h);
                    for backend in Backend::available() {
                        let d = max_diff(&cell.step_with(backend, &x, &h), &slow);
                        prop_assert!(d <= budget.per_step, "{}: {d:e} > {:e}", backend.name(), budget.per_step);
                    }
                }

                #[test]
                fn over_a_sequence(cell in contractive::<$i, $h>(), seed in 0_u32..1000) {
                    let budget = cell.error_budget(1.0, 1.0);
                    let bound = budget.sequence.expect("‖W_hh‖∞ < 1 by construction");
                    for backend in Backend::available() {
                        let (mut fast, mut slow) = (SVector::<f32, $h>::zeros(), SVector::<f32, $h>::zeros());
                        for t in 0..$steps {
                            #[expect(clippy::cast_precision_loss, reason = "small integers")]
                            let x = SVector::<f32, $i>::from_fn(|k, _| {
                                (((seed as usize + 31 * t + 17 * k) % 97) as f32 / 48.5 - 1.0)
                            });
                            fast = cell.step_with(backend, &x, &fast);
                            slow = reference::step(&cell, &x, &slow);
                            let d = max_diff(&fast, &slow);
                            prop_assert!(d <= bound, "{} at t = {t}: {d:e} > {bound:e}", backend.name());
                        }
                    }
                }
            }
        }
    };
}

budget_at!(seed_3x2, 3, 2, 128, 1000);
budget_at!(small_1x16, 1, 16, 64, 1000);
budget_at!(odd_7x13, 7, 13, 64, 500);
budget_at!(large_64x128, 64, 128, 8, 200);
