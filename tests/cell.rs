//! Constructors and the step, checked against values worked out by hand.

#![allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    reason = "tests compare exact values on purpose and index with small integers"
)]

use elman::nalgebra::{SMatrix, SVector, matrix, vector};
use elman::{Relu, RnnCell, Tanh, reference};

/// A non-square row-major `W_xh` and a square, non-symmetric `W_hh`: a transpose anywhere
/// changes the result.
const CELL: RnnCell<3, 2> = RnnCell::from_row_major(
    [[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]],
    [[0.7, -0.8], [0.9, 0.25]],
    [0.05, -0.15],
);

#[test]
fn row_major_constructor_matches_a_step_by_hand() {
    let x = vector![1.0, 2.0, 3.0];
    let h = vector![0.5, -1.0];
    // Row 1: 0.1·1 + 0.2·2 + 0.3·3 + 0.7·0.5 − 0.8·(−1) + 0.05 = 1.4 + 1.15 + 0.05 = 2.6
    // Row 2: −0.4·1 + 0.5·2 − 0.6·3 + 0.9·0.5 + 0.25·(−1) − 0.15 = −1.2 + 0.2 − 0.15 = −1.15
    let expected = [2.6_f64.tanh(), (-1.15_f64).tanh()];
    for step in [
        CELL.step(&x, &h),
        reference::step_concatenated(&CELL, &x, &h),
        reference::step(&CELL, &x, &h),
    ] {
        for j in 0..2 {
            assert!(
                (f64::from(step[j]) - expected[j]).abs() < 1e-6,
                "{step:?} vs {expected:?}"
            );
        }
    }
}

#[test]
fn row_major_is_not_nalgebras_column_order() {
    assert_eq!(CELL.w_xh(), &matrix![0.1, 0.2, 0.3; -0.4, 0.5, -0.6]);
    assert_eq!(CELL.w_hh(), &matrix![0.7, -0.8; 0.9, 0.25]);
    assert_eq!(CELL.bias(), &vector![0.05, -0.15]);
}

#[test]
fn concatenated_form_splits_into_the_seed_blocks() {
    // W = [A B; C D]: A, C meet x (3 columns), B, D meet h (2 columns).
    let w = matrix![
        1.0, 2.0, 3.0, 4.0, 5.0;
        6.0, 7.0, 8.0, 9.0, 10.0
    ];
    let cell = RnnCell::<3, 2>::from_concatenated(w, vector![0.0, 0.0]);
    assert_eq!(cell.w_xh(), &matrix![1.0, 2.0, 3.0; 6.0, 7.0, 8.0]);
    assert_eq!(cell.w_hh(), &matrix![4.0, 5.0; 9.0, 10.0]);
    assert_eq!(cell.concatenated::<5>(), w);
    let rows = RnnCell::<3, 2>::from_concatenated_row_major(
        [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]],
        [0.0, 0.0],
    );
    assert_eq!(rows, cell);
}

#[test]
fn sizes_past_typenum_range_construct_from_concatenated() {
    // `from_concatenated` takes its matrix and returns the cell by value, and the test holds
    // both: at (128, 256) 384 and 385 KiB, several copies of each in a debug build's frames,
    // beyond a test thread's 2 MiB. What this test checks is that by-value constructor, so it
    // gets a thread with room for them (the in-place ways are `tests/stack_size.rs`'s).
    let big_stack = std::thread::Builder::new().stack_size(16 << 20);
    let test = big_stack.spawn(|| {
        // 64 + 128 = 192 and 128 + 256 = 384 columns: beyond typenum's 127.
        let w = SMatrix::<f32, 128, 192>::from_fn(|r, c| (r * 192 + c) as f32);
        let cell = RnnCell::<64, 128>::from_concatenated(w, SVector::zeros());
        assert_eq!(cell.w_hh()[(5, 7)], (5 * 192 + 64 + 7) as f32);
        assert_eq!(cell.concatenated::<192>(), w);

        let w = Box::new(SMatrix::<f32, 256, 384>::from_fn(|r, c| (r + c) as f32));
        let cell = Box::new(RnnCell::<128, 256>::from_concatenated(*w, SVector::zeros()));
        assert_eq!(cell.w_xh()[(3, 127)], 130.0);
        assert_eq!(cell.w_hh()[(3, 0)], 131.0);
    });
    if let Err(panic) = test.expect("a thread").join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn relu_cell_uses_relu() {
    let cell: RnnCell<1, 2, Relu> =
        RnnCell::from_row_major([[1.0], [-1.0]], [[0.0; 2]; 2], [0.0; 2]);
    assert_eq!(
        cell.step(&vector![2.0], &SVector::zeros()),
        vector![2.0, 0.0]
    );
    let tanh: RnnCell<1, 2, Tanh> = cell.clone().with_activation();
    let h = tanh.step(&vector![2.0], &SVector::zeros());
    let exact = 2.0_f64.tanh();
    assert!((f64::from(h[0]) - exact).abs() <= f64::from(elman::FAST_TANH_MAX_ABS_ERROR));
    assert_eq!(h[1], -h[0]);
}

#[test]
fn nan_input_poisons_the_step() {
    let h = CELL.step(&vector![f32::NAN, 0.0, 0.0], &SVector::zeros());
    assert!(h.iter().all(|v| v.is_nan()), "{h:?}");
}
