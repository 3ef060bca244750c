//! The fast step on every backend, against the reference, at hidden sizes chosen to cover each
//! shape of the kernel: fewer than 8 units (one padded chunk), multiples of 8, an overlapping last
//! chunk, blocks of 1 to 8 chunks, blocks of 12 and of 16 (the wide blocks), and several
//! blocks.

mod common;

use common::{FAST_TANH_ERROR, TANH_ERROR, boxed_cell, hashed, order_tolerance};
use elman::nalgebra::{SMatrix, SVector};
use elman::{Backend, Relu, RnnCell, Tanh, reference};

/// `R` rows of `C` deterministic values, on the heap (a large cell built by value overflows a
/// test thread's stack in a debug build).
fn rows<const R: usize, const C: usize>(salt: usize, scale: f32) -> Vec<[f32; C]> {
    (0..R)
        .map(|r| core::array::from_fn(|c| hashed(r * C + c, salt, scale)))
        .collect()
}

fn check<const I: usize, const H: usize>() {
    // Scales where tanh is mostly linear, and where it saturates.
    for scale in [0.2_f32, 3.0] {
        let (w_xh, w_hh) = (rows::<H, I>(1, scale), rows::<H, H>(2, scale));
        let b: [f32; H] = core::array::from_fn(|r| hashed(r, 3, scale));
        let x = SVector::<f32, I>::from_fn(|r, _| hashed(r, 4, 1.0));
        let h = SVector::<f32, H>::from_fn(|r, _| hashed(r, 5, 1.0));
        let tanh_cell = boxed_cell::<I, H, Tanh>(&w_xh, &w_hh, &b);
        let relu_cell = boxed_cell::<I, H, Relu>(&w_xh, &w_hh, &b);
        let tanh_tol = order_tolerance(&tanh_cell, &x, &h, FAST_TANH_ERROR + TANH_ERROR);
        let relu_tol = order_tolerance(&relu_cell, &x, &h, 0.0);
        let tanh_slow = reference::step(&tanh_cell, &x, &h);
        let relu_slow = reference::step(&relu_cell, &x, &h);
        // A short sequence: `run` and `step_in_place` give the bits of `step` called in a loop.
        let xs: Vec<SVector<f32, I>> = (0..3)
            .map(|t| SVector::from_fn(|r, _| hashed(r, 6 + t, 1.0)))
            .collect();
        for backend in Backend::available() {
            let (mut tanh_h, mut relu_h) = (h, h);
            let (mut tanh_p, mut relu_p) = (h, h);
            for x in &xs {
                tanh_h = tanh_cell.step_with(backend, x, &tanh_h);
                relu_h = relu_cell.step_with(backend, x, &relu_h);
                tanh_cell.step_in_place_with(backend, x, &mut tanh_p);
                relu_cell.step_in_place_with(backend, x, &mut relu_p);
                assert_eq!(
                    tanh_p,
                    tanh_h,
                    "({I}, {H}) tanh in place, {}",
                    backend.name()
                );
                assert_eq!(
                    relu_p,
                    relu_h,
                    "({I}, {H}) relu in place, {}",
                    backend.name()
                );
            }
            assert_eq!(
                tanh_cell.run_with(backend, &xs, &h),
                tanh_h,
                "({I}, {H}) tanh run, {}",
                backend.name()
            );
            assert_eq!(
                relu_cell.run_with(backend, &xs, &h),
                relu_h,
                "({I}, {H}) relu run, {}",
                backend.name()
            );
            assert_eq!(tanh_cell.run_with(backend, &[], &h), h);
        }
        for backend in Backend::available() {
            for (fast, slow, tol, what) in [
                (
                    tanh_cell.step_with(backend, &x, &h),
                    tanh_slow,
                    tanh_tol,
                    "tanh",
                ),
                (
                    relu_cell.step_with(backend, &x, &h),
                    relu_slow,
                    relu_tol,
                    "relu",
                ),
            ] {
                for j in 0..H {
                    let diff = (f64::from(fast[j]) - f64::from(slow[j])).abs();
                    assert!(
                        diff <= tol[j],
                        "({I}, {H}) {what} on {}, scale {scale}, unit {j}: {} vs {} (tol {:e})",
                        backend.name(),
                        fast[j],
                        slow[j],
                        tol[j]
                    );
                }
            }
        }
    }
}

macro_rules! sizes {
    ($($name:ident: $i:literal, $h:literal;)*) => {
        $(
            #[test]
            fn $name() {
                check::<$i, $h>();
            }
        )*
    };
}

sizes! {
    h1: 1, 1;
    h2: 3, 2;
    h3: 2, 3;
    h4: 6, 4;
    h5: 4, 5;
    h7: 7, 7;
    h8: 1, 8;
    h9: 3, 9;
    h15: 2, 15;
    h16: 1, 16;
    h17: 5, 17;
    h24: 16, 24;
    h29: 4, 29;
    h33: 3, 33;
    h47: 8, 47;
    h56: 2, 56;
    h64: 32, 64;
    h65: 1, 65;
    h72: 9, 72;
    h100: 10, 100;
    h128: 64, 128;
    h129: 3, 129;
    h200: 20, 200;
    h256: 128, 256;
    h300: 3, 300;
    input_0: 0, 12;
}

/// Special state values (NaNs, infinities, signed zeros, subnormals, the largest finite value)
/// through a step of each cell of at most 4 units, whose state goes to the kernel and back packed
/// in two `f64`s: the same bits as the same step inside `run`, which carries the state as a
/// vector, except that a NaN result is only required to be a NaN on both (which NaN an
/// operation on two NaNs returns depends on the order the compiler gives its operands).
fn special_states<const I: usize, const H: usize>() {
    let specials = [
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0xffc0_0042),
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        f32::from_bits(1),
        -f32::from_bits(0x0040_0000),
        f32::MAX,
        1e-30,
    ];
    let w_xh = SMatrix::<f32, H, I>::from_fn(|r, c| hashed(r * I + c, 7, 0.5));
    let w_hh = SMatrix::<f32, H, H>::from_fn(|r, c| hashed(r * H + c, 8, 0.5));
    let b = SVector::<f32, H>::from_fn(|r, _| hashed(r, 9, 0.5));
    let tanh_cell: RnnCell<I, H, Tanh> = RnnCell::new(w_xh, w_hh, b);
    let relu_cell: RnnCell<I, H, Relu> = tanh_cell.clone().with_activation();
    let x = SVector::<f32, I>::from_fn(|r, _| hashed(r, 10, 1.0));
    // Every NaN as one value: the quiet NaN with no payload.
    let bits = |v: SVector<f32, H>| v.map(|u| if u.is_nan() { 0x7fc0_0000 } else { u.to_bits() });
    for start in 0..specials.len() {
        let h = SVector::<f32, H>::from_fn(|r, _| specials[(start + r) % specials.len()]);
        for backend in Backend::available() {
            assert_eq!(
                bits(tanh_cell.step_with(backend, &x, &h)),
                bits(tanh_cell.run_with(backend, &[x], &h)),
                "({I}, {H}) tanh from {h:?}, {}",
                backend.name()
            );
            assert_eq!(
                bits(relu_cell.step_with(backend, &x, &h)),
                bits(relu_cell.run_with(backend, &[x], &h)),
                "({I}, {H}) relu from {h:?}, {}",
                backend.name()
            );
            let mut in_place = h;
            tanh_cell.step_in_place_with(backend, &x, &mut in_place);
            assert_eq!(
                bits(in_place),
                bits(tanh_cell.run_with(backend, &[x], &h)),
                "({I}, {H}) tanh in place from {h:?}, {}",
                backend.name()
            );
        }
    }
}

#[test]
fn special_states_small_cells() {
    special_states::<2, 1>();
    special_states::<3, 2>();
    special_states::<1, 3>();
    special_states::<6, 4>();
}

/// The divider's probe divides every value, on every backend, whatever the length (a whole
/// number of vectors, a tail, shorter than one vector, an output shorter than the input), and
/// writes nothing past the shorter slice.
#[test]
fn the_division_probe_divides_every_value() {
    for backend in Backend::available() {
        for len in [0_usize, 1, 7, 8, 16, 37, 64] {
            let input: Vec<f32> = (0..len).map(|i| hashed(i, 6, 4.0) + 5.0).collect();
            for out_len in [len, len.saturating_sub(3)] {
                let mut output = vec![f32::NAN; out_len + 2];
                elman::kernel::probe::divide_into(backend, &input, &mut output[..out_len]);
                for (i, (o, x)) in output.iter().zip(&input).take(out_len).enumerate() {
                    assert_eq!(
                        o.to_bits(),
                        (1.5 / x).to_bits(),
                        "{} at {i}",
                        backend.name()
                    );
                }
                assert!(
                    output[out_len..].iter().all(|v| v.is_nan()),
                    "{}",
                    backend.name()
                );
            }
        }
    }
}

/// The widening probes read every weight of a half-size cell once, on every backend: their sum
/// is the weights' sum, exact for these weights (multiples of 1/64 in [1, 2), whose sums stay
/// exact in f32). The bf16 cell's even columns of each pair are zero, so that its odd columns
/// widen to their bf16 values (a pair's odd weight carries its even neighbour's bits below its
/// own); a lone last column of `W_xh` (`I` odd) is not paired.
#[test]
fn the_widening_probes_read_every_weight_once() {
    fn check<const I: usize, const H: usize>() {
        let weight = |j: usize, k: usize| {
            1.0 + f32::from(u8::try_from((j * 7 + k * 3) % 64).expect("below 64")) / 64.0
        };
        let cell = RnnCell::<I, H>::new(
            SMatrix::from_fn(weight),
            SMatrix::from_fn(|j, k| weight(j, k + I)),
            SVector::zeros(),
        );
        let paired = |columns: usize, k: usize| k % 2 == 1 || k + 1 == columns;
        let odd_only = RnnCell::<I, H>::new(
            SMatrix::from_fn(|j, k| if paired(I, k) { weight(j, k) } else { 0.0 }),
            SMatrix::from_fn(|j, k| if paired(H, k) { weight(j, k + I) } else { 0.0 }),
            SVector::zeros(),
        );
        let half = elman::HalfCell::from_cell(&cell).expect("in range");
        let pairs = elman::Bf16Cell::from_cell(&odd_only).expect("finite");
        let sum = |c: &RnnCell<I, H>| c.w_xh().sum() + c.w_hh().sum();
        for backend in Backend::available() {
            let name = backend.name();
            let widened = elman::kernel::probe::widen_half(backend, &half);
            assert_eq!(widened.to_bits(), sum(&cell).to_bits(), "{name}");
            let widened = elman::kernel::probe::widen_bf16(backend, &pairs);
            assert_eq!(widened.to_bits(), sum(&odd_only).to_bits(), "{name}");
        }
    }
    check::<3, 16>();
    check::<4, 64>();
    check::<5, 128>();
}
