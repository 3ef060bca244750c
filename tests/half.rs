//! Half-precision weights: the `F16` conversions against the `half` crate (every f16, and f32
//! values around every rounding boundary), `HalfCell` against the f32 cell of its rounded
//! weights (the same bits on every backend), and the rounding's bound against the f32 model,
//! measured on the PyTorch fixtures.

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "sizes and indices are small; fixtures hold f32 values written as JSON numbers"
)]

mod common;

use elman::f16::OutOfRange;
use elman::nalgebra::{SMatrix, SVector};
use elman::{Backend, F16, HalfCell, RnnCell};

#[test]
fn every_f16_widens_as_the_half_crate_does_and_rounds_back() {
    for bits in 0..=u16::MAX {
        let ours = F16::from_bits(bits).to_f32();
        let theirs = half::f16::from_bits(bits).to_f32();
        if theirs.is_nan() {
            assert!(ours.is_nan(), "{bits:#06x}");
            assert!(F16::from_f32(ours).to_f32().is_nan());
            continue;
        }
        assert_eq!(ours.to_bits(), theirs.to_bits(), "{bits:#06x}");
        assert_eq!(
            F16::from_f32(ours).to_bits(),
            bits,
            "{bits:#06x} round trip"
        );
    }
}

#[test]
fn f32_rounds_to_nearest_even_as_the_half_crate_does() {
    // Every f16 value, the midpoints to its neighbours and one f32 ulp either side of them:
    // the ties and the values just off them, in the normal and the subnormal range, up to and
    // past the overflow threshold 65520.
    let mut checked = 0;
    for bits in 0..0x7C00_u16 {
        let low = F16::from_bits(bits).to_f32();
        let high = F16::from_bits(bits + 1).to_f32();
        let middle = f32::midpoint(low, high);
        for v in [
            low,
            middle,
            f32::from_bits(middle.to_bits() - 1),
            f32::from_bits(middle.to_bits() + 1),
        ] {
            for v in [v, -v] {
                let ours = F16::from_f32(v).to_bits();
                let theirs = half::f16::from_f32(v).to_bits();
                assert_eq!(ours, theirs, "{v:e}");
                checked += 1;
            }
        }
    }
    for v in [
        65519.0_f32,
        65520.0,
        1e10,
        f32::MAX,
        f32::INFINITY,
        1e-30,
        2.0_f32.powi(-25),
    ] {
        assert_eq!(
            F16::from_f32(v).to_bits(),
            half::f16::from_f32(v).to_bits(),
            "{v:e}"
        );
    }
    assert!(checked > 200_000);
}

fn hashed(i: usize, salt: usize, scale: f32) -> f32 {
    let v = ((i * 7919 + salt * 104_729) % 2001) as f32 / 1000.0 - 1.0;
    v * scale
}

fn cell<const I: usize, const H: usize>(scale: f32) -> RnnCell<I, H> {
    RnnCell::new(
        SMatrix::from_fn(|r, c| hashed(r * I + c, 1, scale)),
        SMatrix::from_fn(|r, c| hashed(r * H + c, 2, scale)),
        SVector::from_fn(|r, _| hashed(r, 3, scale)),
    )
}

/// The kernel that runs a half cell on `backend`, named as the backend that runs an f32 cell on
/// it: the backend itself, but for the 512-bit one on a CPU that splits 512-bit operations in
/// two, which runs half cells on its 8-lane kernel at every size (`avx512vl`'s, the same kernel
/// for f32 weights below 128 units only).
fn kernel_of_half(backend: Backend) -> Backend {
    if Some(backend) == Backend::avx512() && elman::kernel::probe::avx512_whole() == Some(false) {
        Backend::avx512vl().expect("a CPU with AVX-512F has AVX-512VL's kernel")
    } else {
        backend
    }
}

/// The half cell steps and runs with the bits of the f32 cell of its (rounded) weights, on
/// every backend: the kernel widens each weight exactly and does the same f32 arithmetic.
fn same_bits_as_widened<const I: usize, const H: usize>() {
    let original = cell::<I, H>(1.5 / ((I + H) as f32).sqrt());
    let half = HalfCell::from_cell(&original).expect("in range");
    let widened = half.widened();
    let xs: Vec<SVector<f32, I>> = (0..5)
        .map(|t| SVector::from_fn(|r, _| hashed(r, 10 + t, 1.0)))
        .collect();
    let h = SVector::<f32, H>::from_fn(|r, _| hashed(r, 9, 0.9));
    for backend in Backend::available() {
        let kernel = kernel_of_half(backend);
        for x in &xs {
            assert_eq!(
                half.step_with(backend, x, &h),
                widened.step_with(kernel, x, &h),
                "({I}, {H}) step on {}",
                backend.name()
            );
            let mut in_place = h;
            half.step_in_place_with(backend, x, &mut in_place);
            assert_eq!(
                in_place,
                half.step_with(backend, x, &h),
                "({I}, {H}) step in place on {}",
                backend.name()
            );
        }
        assert_eq!(
            half.run_with(backend, &xs, &h),
            widened.run_with(kernel, &xs, &h),
            "({I}, {H}) run on {}",
            backend.name()
        );
    }
}

#[test]
fn half_cells_step_with_the_bits_of_their_widened_cells() {
    same_bits_as_widened::<3, 2>();
    same_bits_as_widened::<1, 8>();
    same_bits_as_widened::<2, 15>();
    same_bits_as_widened::<1, 16>();
    same_bits_as_widened::<16, 32>();
    same_bits_as_widened::<5, 47>();
    same_bits_as_widened::<32, 64>();
    same_bits_as_widened::<3, 72>();
    same_bits_as_widened::<8, 128>();
    same_bits_as_widened::<2, 133>();
}

#[test]
fn a_weight_beyond_half_range_is_an_error_that_names_it() {
    let mut w_hh = SMatrix::<f32, 3, 3>::zeros();
    w_hh[(2, 1)] = 70_000.0;
    let cell: RnnCell<1, 3> = RnnCell::new(SMatrix::zeros(), w_hh, SVector::zeros());
    assert_eq!(
        HalfCell::from_cell(&cell),
        Err(OutOfRange {
            matrix: "w_hh",
            row: 2,
            column: 1,
            value: 70_000.0
        })
    );
    // The largest finite f16 and what rounds to it are in range.
    w_hh[(2, 1)] = 65_519.0;
    let cell: RnnCell<1, 3> = RnnCell::new(SMatrix::zeros(), w_hh, SVector::zeros());
    assert!(HalfCell::from_cell(&cell).is_ok());
}

/// On random cells, one step of the half model is within `δ_half` plus both models' error
/// budgets of the f32 model's, and the bound is no looser than 2^-11 of the weights allows.
#[test]
fn one_step_stays_within_the_rounding_bound() {
    fn check<const I: usize, const H: usize>(scale: f32) {
        let original = cell::<I, H>(scale);
        let half = HalfCell::from_cell(&original).expect("in range");
        let rounding = half.rounding(&original, 1.0, 1.0);
        let budgets = original.error_budget(1.0, 1.0).per_step
            + half.widened().error_budget(1.0, 1.0).per_step;
        // The a-priori form: 2^-11 of the row sums, plus 2^-25 per term.
        let row_sums = (0..H)
            .map(|j| original.w_xh().row(j).abs().sum() + original.w_hh().row(j).abs().sum())
            .fold(0.0_f32, f32::max);
        let a_priori = row_sums / 2048.0 + (I + H) as f32 / 33_554_432.0;
        assert!(
            rounding.per_step <= a_priori * 1.000_01,
            "{} vs {a_priori}",
            rounding.per_step
        );
        for t in 0..50 {
            let x = SVector::<f32, I>::from_fn(|r, _| hashed(r, 100 + t, 1.0));
            let h = SVector::<f32, H>::from_fn(|r, _| hashed(r, 200 + t, 1.0));
            let gap = (half.step(&x, &h) - original.step(&x, &h)).amax();
            assert!(
                gap <= rounding.per_step + budgets,
                "({I}, {H}) t {t}: {gap:e}"
            );
        }
    }
    check::<3, 2>(0.9);
    check::<8, 16>(0.4);
    check::<64, 128>(0.2);
}

#[cfg(feature = "std")]
mod fixtures {
    use super::*;
    use crate::common::series;
    use elman::torch::StateDict;
    use serde_json::Value;

    fn read(name: &str) -> (Value, StateDict) {
        let base = format!("tests/fixtures/torch/{name}");
        let text = std::fs::read_to_string(format!("{base}.json")).expect("the fixture");
        let case = serde_json::from_str(&text).expect("json");
        let state = StateDict::read(format!("{base}.safetensors")).expect("the fixture loads");
        (case, state)
    }

    /// The PyTorch model in f32 and rounded to half precision, each stepping from PyTorch's
    /// states (teacher-forced) and free-running over the whole sequence: the gap between the
    /// two stays within the rounding's bound plus both models' error budgets.
    fn check<const I: usize, const H: usize>(name: &str) {
        let (case, state) = read(name);
        let original: RnnCell<I, H> = state.rnn::<RnnCell<I, H>>("rnn").expect("one layer");
        let half = HalfCell::from_cell(&original).expect("in range");
        let xs = series::<I>(&case["xs"]);
        let hs = series::<H>(&case["hs"][0]);
        let h0 = series::<H>(&serde_json::json!([case["h0"][0]]))[0];
        let x_max = xs.iter().map(SVector::amax).fold(0.0_f32, f32::max);
        let rounding = half.rounding(&original, x_max, 1.0);
        let (budget, budget_half) = (
            original.error_budget(x_max, 1.0),
            half.widened().error_budget(x_max, 1.0),
        );
        let mut worst_step = 0.0_f32;
        let mut previous = h0;
        for (x, h) in xs.iter().zip(&hs) {
            let gap = (half.step(x, &previous) - original.step(x, &previous)).amax();
            assert!(gap <= rounding.per_step + budget.per_step + budget_half.per_step);
            worst_step = worst_step.max(gap);
            previous = *h;
        }
        let (mut a, mut b, mut worst_run) = (h0, h0, 0.0_f32);
        for x in &xs {
            (a, b) = (half.step(x, &a), original.step(x, &b));
            worst_run = worst_run.max((a - b).amax());
        }
        if let (Some(drift), Some(s), Some(sh)) =
            (rounding.sequence, budget.sequence, budget_half.sequence)
        {
            assert!(worst_run <= drift + s + sh, "{name}: {worst_run:e}");
        }
        println!(
            "{name}: half against f32, one step {worst_step:e} (bound {:e}), over {} steps \
             {worst_run:e} (bound {:?})",
            rounding.per_step,
            xs.len(),
            rounding.sequence
        );
    }

    #[test]
    fn seed_tanh() {
        check::<3, 2>("seed_tanh_i3_h2");
    }

    #[test]
    fn no_bias_1000_steps() {
        check::<1, 16>("nobias_i1_h16_t1000");
    }

    #[test]
    fn saturating_64x128() {
        check::<64, 128>("saturating_i64_h128");
    }
}

/// Networks, banks and stacks of half cells: the bits of the same built from the widened
/// cells, through every path (a step, a sequence hoisted or not, a bank's two input layouts).
mod networks {
    use super::*;
    use elman::stack::Stack;
    use elman::{Bank, Network, Readout};

    fn readout<const H: usize, const O: usize>() -> Readout<H, O> {
        Readout::new(
            SMatrix::from_fn(|r, c| hashed(r * H + c, 7, 0.3)),
            SVector::from_fn(|r, _| hashed(r, 8, 0.3)),
        )
    }

    fn network_bits<const I: usize, const H: usize>() {
        let half =
            HalfCell::from_cell(&cell::<I, H>(1.0 / ((I + H) as f32).sqrt())).expect("in range");
        let xs: Vec<SVector<f32, I>> = (0..19)
            .map(|t| SVector::from_fn(|r, _| hashed(r, 20 + t, 1.0)))
            .collect();
        let mut a: Network<HalfCell<I, H>, I, H, 3> = Network::new(half.clone(), readout());
        // On the kernel the half cells run on.
        let kernel = kernel_of_half(Backend::best());
        let mut b: Network<RnnCell<I, H>, I, H, 3> =
            Network::new(half.widened(), readout()).with_backend(kernel);
        for x in &xs {
            assert_eq!(a.step(x), b.step(x), "({I}, {H}) step");
        }
        let (mut ya, mut yb) = (
            vec![SVector::zeros(); xs.len()],
            vec![SVector::zeros(); xs.len()],
        );
        a.process(&xs, &mut ya);
        b.process(&xs, &mut yb);
        assert_eq!(ya, yb, "({I}, {H}) process");
        assert_eq!(
            a.process_last(&xs),
            b.process_last(&xs),
            "({I}, {H}) process_last"
        );
    }

    #[test]
    fn a_network_of_half_cells_has_the_bits_of_the_widened_one() {
        network_bits::<3, 2>();
        network_bits::<1, 16>();
        // Hoisted input projections (8 inputs or more, weights above 32 KiB in f32).
        network_bits::<64, 128>();
        // Two (8, 256) networks take more than a debug test thread's 2 MiB of stack.
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(network_bits::<8, 256>)
            .expect("a thread")
            .join()
            .expect("(8, 256)");
    }

    #[test]
    fn a_bank_and_a_stack_of_half_cells_have_the_bits_of_the_widened_ones() {
        let lower = HalfCell::from_cell(&cell::<3, 16>(0.4)).expect("in range");
        let upper = HalfCell::from_cell(&cell::<16, 8>(0.3)).expect("in range");
        let half = Stack::<_, _, 16>::new(lower.clone(), upper.clone());
        let widened = Stack::<_, _, 16>::new(lower.widened(), upper.widened());
        let mut a: Network<_, 3, 8, 3> = Network::new(half.clone(), readout());
        let mut b: Network<_, 3, 8, 3> = Network::new(widened.clone(), readout());
        let mut bank_a: Bank<_, 3, 8, 20> = Bank::new(half);
        let mut bank_b: Bank<_, 3, 8, 20> = Bank::new(widened);
        for t in 0..6 {
            let x = SVector::from_fn(|r, _| hashed(r, 40 + t, 1.0));
            assert_eq!(a.step(&x), b.step(&x), "stack step {t}");
            let xs: [SVector<f32, 3>; 20] =
                core::array::from_fn(|s| SVector::from_fn(|r, _| hashed(r * 20 + s, 60 + t, 1.0)));
            bank_a.step(&xs);
            bank_b.step(&xs);
            assert_eq!(bank_a.states(), bank_b.states(), "bank step {t}");
            let unit_major: [[f32; 20]; 3] =
                core::array::from_fn(|k| core::array::from_fn(|s| xs[s][k]));
            bank_a.step_unit_major(&unit_major);
            bank_b.step_unit_major(&unit_major);
            assert_eq!(bank_a.states(), bank_b.states(), "bank unit-major step {t}");
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn a_pytorch_model_loads_as_half_cells_in_one_call() {
        let state =
            elman::torch::StateDict::read("tests/fixtures/torch/two_layers_i7_h13.safetensors")
                .expect("the fixture loads");
        let half: Network<elman::stack::Stack<HalfCell<7, 13>, HalfCell<13, 13>, 13>, 7, 13, 5> =
            state.network("rnn", "head").expect("in range");
        let f32_net: elman::Rnn2<7, 13, 5> = state.network("rnn", "head").expect("loads");
        let lower = HalfCell::from_cell(&f32_net.layers().lower).expect("in range");
        assert_eq!(&half.layers().lower, &lower);
    }
}
