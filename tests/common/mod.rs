//! Helpers shared by the integration tests: bounded proptest strategies and the rounding
//! tolerances the tests use, derived here once.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the helpers"
)]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::type_complexity,
    reason = "sizes are small integers; fixtures hold f32 values written as JSON numbers"
)]
#![allow(
    clippy::unnecessary_box_returns,
    reason = "the boxes are the point: large models built and kept on the heap, off the stack"
)]

use elman::nalgebra::SVector;
use elman::{Activation, Backend, InPlace, OnSwap, Readout, Rnn, RnnCell, Tanh, strategies};
use proptest::prelude::*;

/// The unit roundoff of f32, `u = 2^-24`: one correctly rounded operation is off by at most a
/// relative `u`.
pub const U: f64 = f32::EPSILON as f64 / 2.0;

/// Higham's `γ_n = n·u / (1 − n·u)`: a sum of `n` products computed in f32, in any order, with
/// or without fused multiply-adds, differs from the exact sum by at most `γ_n · Σ|products|`
/// (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1).
#[must_use]
pub fn gamma(n: usize) -> f64 {
    let nu = n as f64 * U;
    nu / (1.0 - nu)
}

/// What one evaluation of `f32::tanh` may be off by: 2 ulp of a value in `[-1, 1]`, whose ulp is
/// at most `2^-24` below 1 (glibc documents at most 2 ulp for `tanhf` on x86-64).
pub const TANH_ERROR: f64 = 2.0 * U;

/// What one evaluation of the fast tanh may be off by (its contract, checked over all inputs).
pub const FAST_TANH_ERROR: f64 = elman::FAST_TANH_MAX_ABS_ERROR as f64;

/// The scales the weights and inputs are drawn at: gentle, ordinary, and large enough to drive
/// tanh deep into saturation.
const SCALES: [f32; 3] = [0.1, 1.0, 4.0];

/// A zeroed model on the heap (`InPlace::zeroed_box`, which a build of the crate without `std`
/// does not have; the tests have an allocator either way).
#[must_use]
pub fn zeroed<T: InPlace>() -> Box<T> {
    bytemuck::zeroed_box()
}

/// The cell with these row-major weights, built on the heap: a large cell built by value, and
/// held by value in proptest's trees, overflows a test thread's stack in a debug build.
#[must_use]
pub fn boxed_cell<const I: usize, const H: usize, A: Activation>(
    w_xh: &[[f32; I]],
    w_hh: &[[f32; H]],
    b: &[f32],
) -> Box<RnnCell<I, H, A>> {
    let mut cell = zeroed::<RnnCell<I, H, A>>();
    let (w_xh, w_hh, b) = (w_xh.try_into(), w_hh.try_into(), b.try_into());
    cell.set_row_major(
        w_xh.expect("H rows"),
        w_hh.expect("H rows"),
        b.expect("H values"),
    );
    cell
}

/// `Rnn::new(cell, readout).with_backend(backend)`, built on the heap.
#[must_use]
pub fn boxed_rnn<const I: usize, const H: usize, const O: usize, A: Activation>(
    cell: &RnnCell<I, H, A>,
    readout: &Readout<H, O>,
    backend: Backend,
) -> Box<Rnn<I, H, O, A>> {
    let mut rnn = zeroed::<Rnn<I, H, O, A>>();
    rnn.swap_weights_from(cell, readout, OnSwap::Reset);
    rnn.set_backend(backend);
    rnn
}

/// A cell whose weights and bias are drawn at one of the [scales](SCALES), on the heap.
pub fn cell<const I: usize, const H: usize, A: Activation>()
-> impl Strategy<Value = Box<RnnCell<I, H, A>>> {
    let [gentle, ordinary, large] = SCALES.map(strategies::cell_with::<I, H, A>);
    prop_oneof![gentle, ordinary, large]
}

/// A tanh cell with `‖W_hh‖∞ < 0.97`, with `W_xh` and `b` drawn at a small or a large scale
/// (large enough that the inputs alone saturate tanh), on the heap.
pub fn contractive<const I: usize, const H: usize>() -> impl Strategy<Value = Box<RnnCell<I, H>>> {
    let [small, large] =
        [0.3, 2.0].map(|s| strategies::contractive_cell_with::<I, H, Tanh>(0.97, s));
    prop_oneof![small, large]
}

/// An input drawn at one of the [scales](SCALES).
pub fn input<const N: usize>() -> impl Strategy<Value = SVector<f32, N>> {
    let [gentle, ordinary, large] = SCALES.map(strategies::input::<N>);
    prop_oneof![gentle, ordinary, large]
}

/// For each hidden unit `j`, `S_j = Σ_k |W_jk|·|[x; h]_k| + |b_j|`: the scale of the rounding
/// error of its pre-activation.
pub fn magnitude<const I: usize, const H: usize, A: Activation>(
    cell: &RnnCell<I, H, A>,
    x: &SVector<f32, I>,
    h: &SVector<f32, H>,
) -> SVector<f64, H> {
    SVector::from_fn(|j, _| {
        let wx: f64 = (0..I)
            .map(|k| f64::from(cell.w_xh()[(j, k)].abs() * x[k].abs()))
            .sum();
        let wh: f64 = (0..H)
            .map(|k| f64::from(cell.w_hh()[(j, k)].abs() * h[k].abs()))
            .sum();
        wx + wh + f64::from(cell.bias()[j].abs())
    })
}

/// How far two steps of the same cell may differ when they sum the pre-activation in different
/// orders and apply `A` through functions whose errors add up to `activation_errors` (the error
/// of one evaluation in each step).
///
/// Each pre-activation is a sum of `I + H + 1` terms (the products and the bias), so each is
/// within `γ_{I+H+1}·S_j` of the exact value; the two are within twice that of each other. tanh
/// and ReLU are 1-Lipschitz, so the outputs differ by at most that much, plus the error of each
/// evaluation of `A`.
pub fn order_tolerance<const I: usize, const H: usize, A: Activation>(
    cell: &RnnCell<I, H, A>,
    x: &SVector<f32, I>,
    h: &SVector<f32, H>,
    activation_errors: f64,
) -> SVector<f64, H> {
    magnitude(cell, x, h).map(|s| 2.0 * gamma(I + H + 1) * s + activation_errors)
}

/// Asserts `|a_j − b_j| ≤ tol_j` for every `j`, naming the first unit that breaks it.
pub fn assert_within<const N: usize>(
    a: &SVector<f32, N>,
    b: &SVector<f32, N>,
    tol: &SVector<f64, N>,
) -> Result<(), TestCaseError> {
    for j in 0..N {
        let diff = (f64::from(a[j]) - f64::from(b[j])).abs();
        prop_assert!(
            diff <= tol[j],
            "unit {j}: {} vs {} differ by {diff:e}, tolerance {:e}",
            a[j],
            b[j],
            tol[j]
        );
    }
    Ok(())
}

#[cfg(feature = "std")]
/// A safetensors file holding a one-layer oracle case's `rnn.*` and `head.*` tensors, as
/// `safetensors.torch.save_file(model.state_dict())` writes them (f32, row-major).
pub fn safetensors_from_case(case: &serde_json::Value) -> Vec<u8> {
    let tensor = |key: &str| -> (Vec<usize>, Vec<u8>) {
        let v = &case[key];
        let (shape, values): (Vec<usize>, Vec<f32>) = match v.as_array() {
            Some(items) if items.first().is_some_and(serde_json::Value::is_array) => {
                let rows: Vec<Vec<f32>> = items
                    .iter()
                    .map(|r| {
                        r.as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_f64().unwrap() as f32)
                            .collect()
                    })
                    .collect();
                (vec![rows.len(), rows[0].len()], rows.concat())
            }
            Some(items) => (
                vec![items.len()],
                items.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            ),
            None => panic!("{key} is not an array"),
        };
        (shape, values.iter().flat_map(|x| x.to_le_bytes()).collect())
    };
    let entries = [
        ("rnn.weight_ih_l0", "weight_ih"),
        ("rnn.weight_hh_l0", "weight_hh"),
        ("rnn.bias_ih_l0", "bias_ih"),
        ("rnn.bias_hh_l0", "bias_hh"),
        ("head.weight", "weight_hy"),
        ("head.bias", "bias_y"),
    ];
    let data: Vec<(String, (Vec<usize>, Vec<u8>))> = entries
        .iter()
        .map(|(name, key)| ((*name).to_owned(), tensor(key)))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(name, (shape, bytes))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("a consistent view");
            (name.clone(), view)
        })
        .collect();
    safetensors::serialize(views, None).expect("serializable")
}

#[cfg(feature = "std")]
/// A safetensors file of f32 tensors `(name, shape, values)`, the values row-major.
pub fn safetensors_f32(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    safetensors_f32_with(tensors, None)
}

#[cfg(feature = "std")]
/// [`safetensors_f32`] with the header's `__metadata__` (as a Keras export writes it).
#[must_use]
pub fn safetensors_f32_with(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Vec<u8> {
    let bytes: Vec<(&String, &Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, values)| {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, data)
        })
        .collect();
    let views = bytes.iter().map(|(name, shape, data)| {
        let view =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, (*shape).clone(), data)
                .expect("a consistent view");
        ((*name).clone(), view)
    });
    safetensors::serialize(views, metadata).expect("serializable")
}

/// A deterministic value in `[-scale, scale]`, from an index and a salt (usable in `const`
/// context, for `static` weights).
#[must_use]
pub const fn hashed(i: usize, salt: usize, scale: f32) -> f32 {
    let mixed = (i.wrapping_mul(2_654_435_761) ^ salt.wrapping_mul(40_503)) % 10_007;
    (mixed as f32 / 5003.5 - 1.0) * scale
}

/// A fixture's series of vectors (a JSON array of rows of numbers).
#[cfg(feature = "std")]
pub fn series<const N: usize>(v: &serde_json::Value) -> Vec<SVector<f32, N>> {
    v.as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let values: Vec<f32> = row
                .as_array()
                .expect("a row")
                .iter()
                .map(|x| x.as_f64().expect("a number") as f32)
                .collect();
            SVector::from_column_slice(&values)
        })
        .collect()
}

/// The readout's logits of the reference's states `hs` against the reference's `ys`, within
/// `2·γ(H+1)·S_y` (`S_y` the largest row of `|W_y|·|h| + |b_y|`); returns the worst difference.
pub fn check_logits<const H: usize, const O: usize>(
    name: &str,
    readout: &Readout<H, O>,
    hs: &[SVector<f32, H>],
    ys: &[SVector<f32, O>],
) -> f32 {
    let mut worst = 0.0_f32;
    assert_eq!(hs.len(), ys.len(), "{name}: as many logits as states");
    for (h, y) in hs.iter().zip(ys) {
        let gap = (readout.logits(h) - y).amax();
        let bound = logits_bound(readout, h);
        assert!(gap <= bound, "{name} logits: {gap:e} over {bound:e}");
        worst = worst.max(gap);
    }
    worst
}

/// `2·γ(H+1)·S_y`, `S_y` the largest row of `|W_y|·|h| + |b_y|`: how far two computations of the
/// logits of `h`, in any order, with or without fused multiply-adds, can be apart.
#[must_use]
pub fn logits_bound<const H: usize, const O: usize>(
    readout: &Readout<H, O>,
    h: &SVector<f32, H>,
) -> f32 {
    let scale = (0..O)
        .map(|o| {
            (0..H)
                .map(|k| f64::from((readout.weight()[(o, k)] * h[k]).abs()))
                .sum::<f64>()
                + f64::from(readout.bias()[o].abs())
        })
        .fold(0.0, f64::max);
    (2.0 * gamma(H + 1) * scale) as f32
}
