//! bf16 column pairs: the pair encoding checked exhaustively over ranges of f32 bit patterns
//! against a brute-force search, `Bf16Cell` against the f32 cell of its effective weights (the
//! same bits on every backend, through every path), and the rounding's bound against the f32
//! model, measured on the PyTorch fixtures.

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "sizes and indices are small; fixtures hold f32 values written as JSON numbers"
)]
#![allow(
    clippy::float_cmp,
    reason = "the roundings are compared exactly: distances in f64 of f32 values are exact"
)]

mod common;

use common::{boxed_cell, zeroed};
use elman::bf16::{Bf16Pair, NotFinite};
use elman::nalgebra::{SMatrix, SVector};
use elman::{Backend, Bf16Cell, RnnCell, Tanh, WEIGHT_FLUSH_BELOW};

/// `2^-8·(1 + 2^-8)`: the relative rounding bound of both columns (see `Bf16Cell`).
const RELATIVE: f64 = (1.0 / 256.0) * (1.0 + 1.0 / 256.0);
/// `2^-40·(1 + 2^-7)`: the absolute term, for odd weights near zero.
const ABSOLUTE: f64 = (1.0 / 1_099_511_627_776.0) * (1.0 + 1.0 / 128.0);

/// Whether `v` may be a weight: 0, or finite and at least `WEIGHT_FLUSH_BELOW` in magnitude.
fn allowed(v: f32) -> bool {
    v == 0.0 || (v.is_finite() && v.abs() >= WEIGHT_FLUSH_BELOW)
}

/// The bf16 nearest to `w` (flushed first), by search: the largest finite one beyond its
/// range, ties to an even pattern.
fn brute_bf16(w: f32) -> u16 {
    let w = if w.abs() < WEIGHT_FLUSH_BELOW { 0.0 } else { w };
    let truncated = (w.to_bits() >> 16) as u16;
    let mut best: Option<(f64, u16)> = None;
    for step in [-1_i16, 0, 1] {
        let candidate = truncated.wrapping_add_signed(step);
        let value = f32::from_bits(u32::from(candidate) << 16);
        if !value.is_finite() {
            continue;
        }
        let d = (f64::from(value) - f64::from(w)).abs();
        best = match best {
            Some((bd, b)) if bd < d || (bd == d && b & 1 == 0) => Some((bd, b)),
            _ => Some((d, candidate)),
        };
    }
    best.expect("a candidate").1
}

/// The distance from `w` (flushed) to the nearest allowed f32 whose low half is `lo`, by
/// search over every high half of `w`'s sign (the opposite sign is never nearer).
fn brute_odd_distance(w: f32, lo: u16) -> f64 {
    let w = if w.abs() < WEIGHT_FLUSH_BELOW { 0.0 } else { w };
    let sign = w.to_bits() & 0x8000_0000;
    let mut best = f64::INFINITY;
    for hi in 0..0x8000_u32 {
        let value = f32::from_bits(sign | hi << 16 | u32::from(lo));
        if allowed(value) {
            best = best.min((f64::from(value) - f64::from(w)).abs());
        }
    }
    best
}

/// The pair's two weights against a brute-force search: the even one the nearest bf16, the
/// odd one at the nearest distance among the allowed values with the even one's bits, both
/// allowed (0 or at least `WEIGHT_FLUSH_BELOW`), both within the stated bound.
fn check_pair(even: f32, odd: f32, search_odd: bool) {
    let pair = Bf16Pair::new(even, odd).expect("finite");
    let lo = (pair.to_bits() & 0xFFFF) as u16;
    assert_eq!(lo, brute_bf16(even), "even {even:e}");
    assert_eq!(pair.even().to_bits(), u32::from(lo) << 16);
    assert!(
        allowed(pair.even()) && allowed(pair.odd()),
        "{even:e} {odd:e}"
    );
    let flushed = |w: f32| if w.abs() < WEIGHT_FLUSH_BELOW { 0.0 } else { w };
    let (e, o) = (flushed(even), flushed(odd));
    let de = (f64::from(pair.even()) - f64::from(e)).abs();
    let d_odd = (f64::from(pair.odd()) - f64::from(o)).abs();
    assert!(de <= RELATIVE * f64::from(e.abs()), "even {even:e}: {de:e}");
    assert!(
        d_odd <= RELATIVE * f64::from(o.abs()) + ABSOLUTE,
        "odd {odd:e} beside {even:e}: {d_odd:e}"
    );
    if o != 0.0 {
        assert_eq!(
            pair.odd().is_sign_negative(),
            o.is_sign_negative(),
            "{odd:e}"
        );
    }
    if search_odd {
        assert_eq!(
            d_odd,
            brute_odd_distance(odd, lo),
            "odd {odd:e} beside {even:e}"
        );
    }
}

#[test]
fn the_even_weight_is_the_nearest_bf16_over_whole_binades() {
    // Every f32 bit pattern of the binades [2^-2, 2) (both signs) as the even weight, and the
    // binades at the flush threshold and at the top of the range: every rounding case of the
    // low 16 bits, the carries into the next binade, and the saturation at the largest finite.
    let ranges = [
        (0.25_f32.to_bits(), 2.0_f32.to_bits()),
        (
            WEIGHT_FLUSH_BELOW.to_bits() - 0x1_0000,
            (2.0 * WEIGHT_FLUSH_BELOW).to_bits(),
        ),
        (2.0_f32.powi(127).to_bits(), f32::MAX.to_bits() + 1),
    ];
    let mut checked = 0_u64;
    for (from, to) in ranges {
        for bits in (from..to).step_by(7) {
            for w in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let pair = Bf16Pair::new(w, 0.0).expect("finite");
                assert_eq!((pair.to_bits() & 0xFFFF) as u16, brute_bf16(w), "{w:e}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000_000, "{checked}");
}

#[test]
fn the_odd_weight_is_the_nearest_with_its_partners_low_bits() {
    // Odd weights over every 97th bit pattern of whole binades, each beside even weights
    // whose bf16 bits sweep the low half (0, small, large, all ones), with a brute-force
    // search of the nearest on a sample.
    let partners = [
        0.0_f32,
        1.0,
        -0.5,
        0.1,
        1.0e-3,
        3.0e38,
        -7.7e-12,
        0.992_187_5,
    ];
    let ranges = [
        (0.5_f32.to_bits(), 4.0_f32.to_bits()),
        (
            WEIGHT_FLUSH_BELOW.to_bits() - 0x2_0000,
            (4.0 * WEIGHT_FLUSH_BELOW).to_bits(),
        ),
        (2.0_f32.powi(126).to_bits(), f32::MAX.to_bits() + 1),
    ];
    let mut checked = 0_u64;
    for (from, to) in ranges {
        for (n, bits) in (from..to).step_by(97).enumerate() {
            for odd in [f32::from_bits(bits), -f32::from_bits(bits)] {
                for (p, &even) in partners.iter().enumerate() {
                    check_pair(even, odd, (n + p) % 4093 == 0);
                    checked += 1;
                }
            }
        }
    }
    // Zeros and values at the boundaries, searched.
    for even in partners {
        for odd in [
            0.0,
            -0.0,
            WEIGHT_FLUSH_BELOW,
            -WEIGHT_FLUSH_BELOW,
            f32::MAX,
            f32::MIN,
            1e-45,
        ] {
            check_pair(even, odd, true);
        }
    }
    assert!(checked > 1_000_000, "{checked}");
}

#[test]
fn zero_weights_stay_zero_beside_a_zero_partner() {
    let pair = Bf16Pair::new(0.0, 0.0).expect("finite");
    assert_eq!(pair.to_bits(), 0);
    // −0 is stored as +0, so that its partner can be exactly 0 too.
    assert_eq!(Bf16Pair::new(-0.0, 0.0).expect("finite").to_bits(), 0);
    // Beside a nonzero partner, a zero odd weight is the smallest allowed value.
    let pair = Bf16Pair::new(1.0, 0.0).expect("finite");
    assert!(pair.odd() >= WEIGHT_FLUSH_BELOW && f64::from(pair.odd()) <= ABSOLUTE);
}

#[test]
fn a_weight_that_is_not_finite_is_an_error_that_names_it() {
    let mut w_hh = SMatrix::<f32, 3, 3>::zeros();
    w_hh[(2, 1)] = f32::INFINITY;
    let cell: RnnCell<1, 3> = RnnCell::new(SMatrix::zeros(), w_hh, SVector::zeros());
    assert_eq!(
        Bf16Cell::from_cell(&cell),
        Err(NotFinite {
            matrix: "w_hh",
            row: 2,
            column: 1,
            value: f32::INFINITY
        })
    );
    let mut pairs = Bf16Cell::from_cell(&RnnCell::<1, 3>::new(
        SMatrix::zeros(),
        SMatrix::identity(),
        SVector::zeros(),
    ))
    .expect("finite");
    let before = pairs.clone();
    assert!(pairs.set_from_cell(&cell).is_err());
    assert_eq!(pairs, before, "unchanged on an error");
    assert_eq!(Bf16Pair::new(1.0, f32::NAN), None);
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

/// The pair cell steps and runs with the bits of the f32 cell of its effective weights, on
/// every backend, forward (a step, a sequence) and, through a network's hoisted sequences,
/// backward.
fn same_bits_as_widened<const I: usize, const H: usize>() {
    // On the heap: the three cells of (5, 260) by value overflow a test thread's stack in a
    // debug build.
    let scale = 1.5 / ((I + H) as f32).sqrt();
    let w_xh: Vec<[f32; I]> = (0..H)
        .map(|r| core::array::from_fn(|c| hashed(r * I + c, 1, scale)))
        .collect();
    let w_hh: Vec<[f32; H]> = (0..H)
        .map(|r| core::array::from_fn(|c| hashed(r * H + c, 2, scale)))
        .collect();
    let b: Vec<f32> = (0..H).map(|r| hashed(r, 3, scale)).collect();
    let original = boxed_cell::<I, H, Tanh>(&w_xh, &w_hh, &b);
    let mut pairs = zeroed::<Bf16Cell<I, H>>();
    pairs.set_from_cell(&original).expect("finite");
    let mut widened = zeroed::<RnnCell<I, H>>();
    *widened = pairs.widened();
    let xs: Vec<SVector<f32, I>> = (0..5)
        .map(|t| SVector::from_fn(|r, _| hashed(r, 10 + t, 1.0)))
        .collect();
    let h = SVector::<f32, H>::from_fn(|r, _| hashed(r, 9, 0.9));
    for backend in Backend::available() {
        let (mut state, mut in_place) = (h, h);
        for x in &xs {
            assert_eq!(
                pairs.step_with(backend, x, &h),
                widened.step_with(backend, x, &h),
                "({I}, {H}) step on {}",
                backend.name()
            );
            state = pairs.step_with(backend, x, &state);
            pairs.step_in_place_with(backend, x, &mut in_place);
            assert_eq!(
                in_place,
                state,
                "({I}, {H}) step in place on {}",
                backend.name()
            );
        }
        let run = pairs.run_with(backend, &xs, &h);
        assert_eq!(
            run,
            widened.run_with(backend, &xs, &h),
            "({I}, {H}) run on {}",
            backend.name()
        );
        assert_eq!(
            run,
            state,
            "({I}, {H}) run against steps on {}",
            backend.name()
        );
    }
}

#[test]
fn pair_cells_step_with_the_bits_of_their_widened_cells() {
    same_bits_as_widened::<3, 2>();
    same_bits_as_widened::<1, 8>();
    same_bits_as_widened::<2, 15>();
    same_bits_as_widened::<1, 16>();
    same_bits_as_widened::<16, 32>();
    same_bits_as_widened::<5, 47>();
    same_bits_as_widened::<32, 64>();
    same_bits_as_widened::<3, 72>();
    same_bits_as_widened::<64, 128>();
    same_bits_as_widened::<7, 131>();
    same_bits_as_widened::<4, 256>();
    same_bits_as_widened::<5, 260>();
}

#[test]
fn set_from_cell_writes_what_from_cell_builds() {
    let original = cell::<5, 9>(0.7);
    let mut pairs = Bf16Cell::from_cell(&cell::<5, 9>(0.1)).expect("finite");
    pairs.set_from_cell(&original).expect("finite");
    assert_eq!(pairs, Bf16Cell::from_cell(&original).expect("finite"));
}

/// On random cells, one step of the pair model is within `δ` plus both models' error budgets
/// of the f32 model's, and the bound is no looser than the a-priori one.
#[test]
fn one_step_stays_within_the_rounding_bound() {
    fn check<const I: usize, const H: usize>(scale: f32) {
        let original = cell::<I, H>(scale);
        let pairs = Bf16Cell::from_cell(&original).expect("finite");
        let rounding = pairs.rounding(&original, 1.0, 1.0);
        let budgets = original.error_budget(1.0, 1.0).per_step
            + pairs.widened().error_budget(1.0, 1.0).per_step;
        let row_sums = (0..H)
            .map(|j| original.w_xh().row(j).abs().sum() + original.w_hh().row(j).abs().sum())
            .fold(0.0_f32, f32::max);
        let a_priori = f64::from(row_sums) * RELATIVE + (I + H) as f64 * ABSOLUTE;
        assert!(
            f64::from(rounding.per_step) <= a_priori * 1.000_01,
            "{} vs {a_priori}",
            rounding.per_step
        );
        for t in 0..50 {
            let x = SVector::<f32, I>::from_fn(|r, _| hashed(r, 100 + t, 1.0));
            let h = SVector::<f32, H>::from_fn(|r, _| hashed(r, 200 + t, 1.0));
            let gap = (pairs.step(&x, &h) - original.step(&x, &h)).amax();
            assert!(
                gap <= rounding.per_step + budgets,
                "({I}, {H}) t {t}: {gap:e}"
            );
        }
    }
    check::<3, 2>(0.9);
    check::<7, 16>(0.4);
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

    /// The PyTorch model in f32 and as bf16 pairs, each stepping from PyTorch's states
    /// (teacher-forced) and free-running over the whole sequence: the gap between the two stays
    /// within the rounding's bound plus both models' error budgets.
    fn check<const I: usize, const H: usize>(name: &str) {
        let (case, state) = read(name);
        let original: RnnCell<I, H> = state.rnn::<RnnCell<I, H>>("rnn").expect("one layer");
        let pairs = Bf16Cell::from_cell(&original).expect("finite");
        let xs = series::<I>(&case["xs"]);
        let hs = series::<H>(&case["hs"][0]);
        let h0 = series::<H>(&serde_json::json!([case["h0"][0]]))[0];
        let x_max = xs.iter().map(SVector::amax).fold(0.0_f32, f32::max);
        let rounding = pairs.rounding(&original, x_max, 1.0);
        let (budget, budget_pairs) = (
            original.error_budget(x_max, 1.0),
            pairs.widened().error_budget(x_max, 1.0),
        );
        let mut worst_step = 0.0_f32;
        let mut previous = h0;
        for (x, h) in xs.iter().zip(&hs) {
            let gap = (pairs.step(x, &previous) - original.step(x, &previous)).amax();
            assert!(gap <= rounding.per_step + budget.per_step + budget_pairs.per_step);
            worst_step = worst_step.max(gap);
            previous = *h;
        }
        let (mut a, mut b, mut worst_run) = (h0, h0, 0.0_f32);
        for x in &xs {
            (a, b) = (pairs.step(x, &a), original.step(x, &b));
            worst_run = worst_run.max((a - b).amax());
        }
        if let (Some(drift), Some(s), Some(sp)) =
            (rounding.sequence, budget.sequence, budget_pairs.sequence)
        {
            assert!(worst_run <= drift + s + sp, "{name}: {worst_run:e}");
        }
        println!(
            "{name}: bf16 pairs against f32, one step {worst_step:e} (bound {:e}), over {} \
             steps {worst_run:e} (bound {:?})",
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

/// Networks, banks and stacks of pair cells: the bits of the same built from the widened
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
        let pairs =
            Bf16Cell::from_cell(&cell::<I, H>(1.0 / ((I + H) as f32).sqrt())).expect("finite");
        let xs: Vec<SVector<f32, I>> = (0..19)
            .map(|t| SVector::from_fn(|r, _| hashed(r, 20 + t, 1.0)))
            .collect();
        let mut a: Network<Bf16Cell<I, H>, I, H, 3> = Network::new(pairs.clone(), readout());
        let mut b: Network<RnnCell<I, H>, I, H, 3> = Network::new(pairs.widened(), readout());
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
    fn a_network_of_pair_cells_has_the_bits_of_the_widened_one() {
        network_bits::<3, 2>();
        network_bits::<1, 16>();
        // Hoisted input projections (8 inputs or more, weights above 32 KiB in f32), whose
        // recurrence sweeps backward as well as forward: even and odd numbers of columns.
        network_bits::<64, 128>();
        network_bits::<9, 135>();
    }

    #[test]
    fn a_bank_and_a_stack_of_pair_cells_have_the_bits_of_the_widened_ones() {
        let lower = Bf16Cell::from_cell(&cell::<3, 16>(0.4)).expect("finite");
        let upper = Bf16Cell::from_cell(&cell::<16, 9>(0.3)).expect("finite");
        let pairs = Stack::<_, _, 16>::new(lower.clone(), upper.clone());
        let widened = Stack::<_, _, 16>::new(lower.widened(), upper.widened());
        let mut a: Network<_, 3, 9, 3> = Network::new(pairs.clone(), readout());
        let mut b: Network<_, 3, 9, 3> = Network::new(widened.clone(), readout());
        let mut bank_a: Bank<_, 3, 9, 20> = Bank::new(pairs);
        let mut bank_b: Bank<_, 3, 9, 20> = Bank::new(widened);
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
    fn a_pytorch_model_loads_as_pair_cells_in_one_call() {
        let state =
            elman::torch::StateDict::read("tests/fixtures/torch/two_layers_i7_h13.safetensors")
                .expect("the fixture loads");
        let pairs: Network<elman::stack::Stack<Bf16Cell<7, 13>, Bf16Cell<13, 13>, 13>, 7, 13, 5> =
            state.network("rnn", "head").expect("finite");
        let f32_net: elman::Rnn2<7, 13, 5> = state.network("rnn", "head").expect("loads");
        let lower = Bf16Cell::from_cell(&f32_net.layers().lower).expect("finite");
        let upper = Bf16Cell::from_cell(&f32_net.layers().upper).expect("finite");
        assert_eq!(&pairs.layers().lower, &lower);
        assert_eq!(&pairs.layers().upper, &upper);
    }
}
