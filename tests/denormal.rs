//! Denormal immunity (`elman::flush`): each flush, bit for bit, and the invariant itself,
//! checked by the CPU: on x86-64 the MXCSR register's sticky flags record whether any SSE/AVX
//! operation read a subnormal operand (DE) or rounded a result below the normal range (UE).
//! Every public path runs with subnormal and tiny inputs, states and weights and must raise
//! neither, on every backend; a control shows that the same probe sees a subnormal multiply.

#![allow(clippy::float_cmp, reason = "exact comparisons on purpose")]

use elman::nalgebra::{SMatrix, SVector};
use elman::{
    Backend, Bf16Cell, FLUSH_BELOW, HalfCell, Readout, Relu, Rnn, RnnBank, RnnCell,
    WEIGHT_FLUSH_BELOW, reference,
};
// The paths the flag-checked tests run, on x86-64 only (the MXCSR register).
#[cfg(target_arch = "x86_64")]
use elman::{Bank, Layers, Network, OnSwap, bidirectional::read_out, stack::Stack};

/// A subnormal number, a tiny normal one below the thresholds, one just below them (2^-41) and
/// the thresholds themselves (kept).
const SUBNORMAL: f32 = 1e-40;
const TINY: f32 = 1e-30;
const BELOW: f32 = FLUSH_BELOW / 2.0;

/// Values that must be stored or read as +0, and values that must be kept as they are.
const FLUSHED: [f32; 7] = [SUBNORMAL, -SUBNORMAL, TINY, -TINY, BELOW, -BELOW, -0.0];
const KEPT: [f32; 5] = [FLUSH_BELOW, -FLUSH_BELOW, 0.5, -3.0, 1e30];

#[test]
fn thresholds_keep_every_product_normal() {
    // Each nonzero operand is a multiple of 2^-63 (magnitude ≥ 2^-40), so each product is a
    // multiple of 2^-126: the bound the module docs prove from.
    assert_eq!(FLUSH_BELOW, 2.0_f32.powi(-40));
    assert_eq!(WEIGHT_FLUSH_BELOW, 2.0_f32.powi(-40));
    assert!(FLUSH_BELOW * WEIGHT_FLUSH_BELOW >= f32::MIN_POSITIVE * 2.0_f32.powi(46));
    assert!(SUBNORMAL.is_subnormal() && !TINY.is_subnormal());
}

/// A cell of `I` inputs and `H` units whose weights mix every flushed and kept value with
/// ordinary ones, and its unflushed weights (row-major) for the budget test.
fn mixed_weights<const R: usize, const C: usize>(seed: usize) -> [[f32; C]; R] {
    core::array::from_fn(|r| {
        core::array::from_fn(|c| {
            let k = r * C + c + seed;
            match k % 5 {
                0 => FLUSHED[k / 5 % FLUSHED.len()],
                1 => WEIGHT_FLUSH_BELOW * if k.is_multiple_of(2) { 1.0 } else { -1.0 },
                #[expect(clippy::cast_precision_loss, reason = "small indices")]
                _ => ((k * 37 % 23) as f32 / 23.0 - 0.5) * 0.8,
            }
        })
    })
}

fn mixed_cell<const I: usize, const H: usize>() -> RnnCell<I, H> {
    RnnCell::from_row_major(
        mixed_weights(1),
        mixed_weights(2),
        mixed_weights::<1, H>(3)[0],
    )
}

fn mixed_vector<const N: usize>(seed: usize) -> SVector<f32, N> {
    SVector::from_fn(|k, _| {
        let k = k + seed;
        match k % 3 {
            0 => FLUSHED[k / 3 % FLUSHED.len()],
            1 => KEPT[k / 3 % 2],
            #[expect(clippy::cast_precision_loss, reason = "small indices")]
            _ => (k % 11) as f32 / 11.0 - 0.4,
        }
    })
}

/// `v` with every value below `FLUSH_BELOW` in magnitude replaced by +0.
fn zeroed<const N: usize>(v: &SVector<f32, N>) -> SVector<f32, N> {
    v.map(|x| if x.abs() < FLUSH_BELOW { 0.0 } else { x })
}

fn bits<const N: usize>(v: &SVector<f32, N>) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

// ---------------------------------------------------------------------------------------------
// Weights: every constructor stores a value below the threshold as +0 and keeps the rest.

static STATIC_CELL: RnnCell<2, 2> = RnnCell::from_row_major(
    [[SUBNORMAL, -TINY], [BELOW, 0.5]],
    [[-0.0, WEIGHT_FLUSH_BELOW], [1e30, -BELOW]],
    [-SUBNORMAL, 3.0],
);
static STATIC_HEAD: Readout<2, 1> = Readout::from_row_major([[TINY, -WEIGHT_FLUSH_BELOW]], [-0.0]);

#[test]
fn const_constructors_flush_weights() {
    let w_xh = STATIC_CELL.w_xh();
    assert_eq!(
        [w_xh[(0, 0)], w_xh[(0, 1)], w_xh[(1, 0)]].map(f32::to_bits),
        [0; 3]
    );
    assert_eq!(w_xh[(1, 1)], 0.5);
    let w_hh = STATIC_CELL.w_hh();
    assert_eq!(w_hh[(0, 0)].to_bits(), 0, "-0 is stored as +0");
    assert_eq!(w_hh[(0, 1)], WEIGHT_FLUSH_BELOW);
    assert_eq!(w_hh[(1, 0)], 1e30);
    assert_eq!(w_hh[(1, 1)].to_bits(), 0);
    assert_eq!(bits(STATIC_CELL.bias()), [0, 3.0_f32.to_bits()]);
    assert_eq!(STATIC_HEAD.weight()[(0, 0)].to_bits(), 0);
    assert_eq!(STATIC_HEAD.weight()[(0, 1)], -WEIGHT_FLUSH_BELOW);
    assert_eq!(STATIC_HEAD.bias()[0].to_bits(), 0);
}

#[test]
fn every_constructor_flushes_weights() {
    let values: Vec<f32> = FLUSHED.iter().chain(&KEPT).copied().collect();
    let expected: Vec<u32> = FLUSHED
        .iter()
        .map(|_| 0)
        .chain(KEPT.iter().map(|v| v.to_bits()))
        .collect();
    let n = values.len();
    assert_eq!(n, 12);
    let w = SMatrix::<f32, 12, 12>::from_fn(|r, c| values[(r + c) % n]);
    let expect = |m: &SMatrix<f32, 12, 12>| {
        for r in 0..12 {
            for c in 0..12 {
                assert_eq!(m[(r, c)].to_bits(), expected[(r + c) % n], "({r}, {c})");
            }
        }
    };
    let b = SVector::<f32, 12>::from_fn(|k, _| values[k]);
    let cell: RnnCell<12, 12> = RnnCell::new(w, w, b);
    expect(cell.w_xh());
    expect(cell.w_hh());
    assert_eq!(bits(cell.bias()), expected);
    let relu: RnnCell<12, 12, Relu> = cell.clone().with_activation();
    expect(relu.w_hh());
    let joined = SMatrix::<f32, 12, 24>::from_fn(|r, c| values[(r + c % 12) % n]);
    let cell: RnnCell<12, 12> = RnnCell::from_concatenated(joined, b);
    expect(cell.w_xh());
    expect(cell.w_hh());
    let rows: [[f32; 24]; 12] = core::array::from_fn(|r| core::array::from_fn(|c| joined[(r, c)]));
    let cell: RnnCell<12, 12> = RnnCell::from_concatenated_row_major(rows, b.into());
    expect(cell.w_xh());
    let head: Readout<12, 12> = Readout::new(w, b);
    expect(head.weight());
    assert_eq!(bits(head.bias()), expected);
    // The in-place ways store through the same flush.
    let square: [[f32; 12]; 12] = core::array::from_fn(|r| core::array::from_fn(|c| w[(r, c)]));
    let bias: [f32; 12] = b.into();
    let mut cell: RnnCell<12, 12> = RnnCell::default();
    cell.set_row_major(&square, &square, &bias);
    expect(cell.w_xh());
    expect(cell.w_hh());
    assert_eq!(bits(cell.bias()), expected);
    let mut head: Readout<12, 12> = Readout::default();
    head.set_row_major(&square, &bias);
    expect(head.weight());
    assert_eq!(bits(head.bias()), expected);
    #[cfg(feature = "std")]
    {
        let cell = RnnCell::<12, 12>::boxed_from_row_major(&square, &square, &bias);
        expect(cell.w_hh());
        let head = Readout::<12, 12>::boxed_from_row_major(&square, &bias);
        expect(head.weight());
    }
}

#[test]
fn nan_and_infinite_weights_are_kept() {
    let cell: RnnCell<1, 2> =
        RnnCell::from_row_major([[f32::NAN], [f32::INFINITY]], [[0.0; 2]; 2], [0.0; 2]);
    assert!(cell.w_xh()[(0, 0)].is_nan());
    assert_eq!(cell.w_xh()[(1, 0)], f32::INFINITY);
}

/// Weights of both signs: a finite input gives finite states, a NaN one NaN states.
fn nan_test_cell<const I: usize, const H: usize>() -> RnnCell<I, H> {
    RnnCell::new(
        SMatrix::from_fn(|r, c| if (r + c) % 3 == 0 { 0.5 } else { -0.25 }),
        SMatrix::from_element(0.01),
        SVector::zeros(),
    )
}

/// A NaN pre-activation stays NaN through the activation and the flush after it, whose
/// comparison must count NaN as kept: every unit of a step whose input is NaN, on the 8-lane
/// kernel and the 16-lane one (from 128 units, or 32 on a CPU that runs 512-bit operations
/// whole), on every backend, with either activation.
fn nan_passes_the_flush<const I: usize, const H: usize>() {
    let tanh_cell: RnnCell<I, H> = nan_test_cell();
    let relu_cell: RnnCell<I, H, Relu> = tanh_cell.clone().with_activation();
    let x = SVector::<f32, I>::from_element(f32::NAN);
    for backend in Backend::available() {
        let h = SVector::zeros();
        let tanh = tanh_cell.step_with(backend, &x, &h);
        let relu = relu_cell.step_with(backend, &x, &h);
        let name = backend.name();
        assert!(
            tanh.iter().all(|v| v.is_nan()),
            "({I}, {H}) tanh {name}: {tanh:?}"
        );
        assert!(
            relu.iter().all(|v| v.is_nan()),
            "({I}, {H}) relu {name}: {relu:?}"
        );
    }
}

/// The flush after the activation at its threshold: a pre-activation of exactly
/// `±FLUSH_BELOW` is kept (the fast tanh returns it), half of it becomes +0, on the 8-lane and
/// 16-lane kernels and every backend.
fn flush_at_the_threshold<const H: usize>() {
    // Even units: z = ±FLUSH_BELOW from the bias. Odd units: z = 0.5 · FLUSH_BELOW from the
    // input (kept on entry, at the threshold), below it.
    let kept = |r: usize| match r % 4 {
        0 => FLUSH_BELOW,
        2 => -FLUSH_BELOW,
        _ => 0.0,
    };
    let cell: RnnCell<1, H> = RnnCell::new(
        SMatrix::from_fn(|r, _| if r % 2 == 1 { 0.5 } else { 0.0 }),
        SMatrix::zeros(),
        SVector::from_fn(|r, _| kept(r)),
    );
    let x = SVector::from_element(FLUSH_BELOW);
    for backend in Backend::available() {
        let h = cell.step_with(backend, &x, &SVector::zeros());
        for (r, value) in h.iter().enumerate() {
            assert_eq!(
                value.to_bits(),
                kept(r).to_bits(),
                "unit {r} of {H}, {}",
                backend.name()
            );
        }
    }
}

#[test]
fn the_flush_threshold_is_kept() {
    flush_at_the_threshold::<8>();
    flush_at_the_threshold::<20>();
    flush_at_the_threshold::<128>();
}

#[test]
fn a_nan_passes_the_flush() {
    nan_passes_the_flush::<1, 8>();
    nan_passes_the_flush::<3, 20>();
    nan_passes_the_flush::<2, 128>();
    nan_passes_the_flush::<5, 137>();
}

/// The same in a bank, a stream per lane: the stream whose input is NaN, and only it, has a NaN
/// state, in banks of 8 streams per vector and of 16.
fn nan_passes_the_bank_flush<const I: usize, const H: usize, const N: usize>() {
    let cell: RnnCell<I, H> = nan_test_cell();
    for backend in Backend::available() {
        for poisoned in [0, N / 2, N - 1] {
            let mut bank: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
            let xs: [SVector<f32, I>; N] = core::array::from_fn(|s| {
                SVector::from_element(if s == poisoned { f32::NAN } else { 0.5 })
            });
            bank.step(&xs);
            for s in 0..N {
                let h = bank.state(s);
                let name = backend.name();
                if s == poisoned {
                    assert!(
                        h.iter().all(|v| v.is_nan()),
                        "stream {s} of {N}, {name}: {h:?}"
                    );
                } else {
                    assert!(
                        h.iter().all(|v| v.is_finite()),
                        "stream {s} of {N}, {name}: {h:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_nan_passes_a_bank_flush() {
    nan_passes_the_bank_flush::<3, 2, 8>();
    nan_passes_the_bank_flush::<3, 5, 37>();
    nan_passes_the_bank_flush::<1, 16, 32>();
}

#[cfg(feature = "std")]
#[test]
fn the_loader_flushes_weights() {
    use std::collections::HashMap;
    let w_ih: Vec<f32> = vec![SUBNORMAL, 0.5, -BELOW, WEIGHT_FLUSH_BELOW];
    let w_hh: Vec<f32> = vec![0.25, -TINY, 1.0, -0.0];
    let bias: Vec<f32> = vec![BELOW, 0.0];
    let bytes = |v: &Vec<f32>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let data = [
        ("rnn.weight_ih_l0", vec![2, 2], bytes(&w_ih)),
        ("rnn.weight_hh_l0", vec![2, 2], bytes(&w_hh)),
        ("rnn.bias_ih_l0", vec![2], bytes(&bias)),
        ("rnn.bias_hh_l0", vec![2], bytes(&bias)),
    ];
    let views: HashMap<String, safetensors::tensor::TensorView<'_>> = data
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("a valid tensor");
            ((*name).to_owned(), view)
        })
        .collect();
    let file = safetensors::serialize(&views, None).expect("serialized");
    let state = elman::torch::StateDict::from_bytes(&file).expect("loads");
    let cell = state.rnn_cell::<2, 2>("rnn", 0).expect("a cell");
    let mut in_place: RnnCell<2, 2> = RnnCell::default();
    state
        .rnn_cell_into("rnn", 0, &mut in_place)
        .expect("a cell, in place");
    assert_eq!(in_place, cell);
    // Row-major in the file: weight_ih = [[SUBNORMAL, 0.5], [-BELOW, WEIGHT_FLUSH_BELOW]].
    assert_eq!(cell.w_xh()[(0, 0)].to_bits(), 0);
    assert_eq!(cell.w_xh()[(0, 1)], 0.5);
    assert_eq!(cell.w_xh()[(1, 0)].to_bits(), 0);
    assert_eq!(cell.w_xh()[(1, 1)], WEIGHT_FLUSH_BELOW);
    assert_eq!(cell.w_hh()[(0, 1)].to_bits(), 0);
    assert_eq!(cell.w_hh()[(1, 1)].to_bits(), 0);
    // BELOW + BELOW = FLUSH_BELOW: the folded bias is flushed after the addition, and kept.
    assert_eq!(cell.bias()[0], 2.0 * BELOW);
}

// ---------------------------------------------------------------------------------------------
// Inputs and states: read as +0 on entry, on every backend and path, and nothing else changes.

/// `step` with tiny inputs and states gives the bits of the same step with them zeroed, and
/// the threshold itself is kept (a large weight makes it visible).
fn entry_flush<const I: usize, const H: usize>() {
    let cell = mixed_cell::<I, H>();
    // States whose flushed values fall on different units (the smallest cells have only one
    // or two).
    for seed in 1..=3 {
        entry_flush_from(&cell, &mixed_vector::<H>(seed));
    }
    let big: RnnCell<I, H> = RnnCell::from_row_major([[2.0e10; I]; H], [[0.0; H]; H], [0.0; H]);
    let at = SVector::<f32, I>::from_element(FLUSH_BELOW);
    assert!(
        big.step(&at, &SVector::zeros())[0] > 0.01,
        "the threshold is kept"
    );
    let below = SVector::<f32, I>::from_element(BELOW);
    assert_eq!(big.step(&below, &SVector::zeros())[0].to_bits(), 0);
    // One tiny input among zeros, in each lane in turn: the check finds it in whichever
    // vector of the input it falls (a missed one would add 2e10·BELOW ≈ 0.009 to every sum).
    for backend in Backend::available() {
        for j in 0..I {
            let mut x = SVector::<f32, I>::zeros();
            x[j] = BELOW;
            let step = big.step_with(backend, &x, &SVector::zeros());
            assert_eq!(
                bits(&step),
                vec![0; H],
                "{} ({I}, {H}), lane {j}",
                backend.name()
            );
            x[j] = FLUSH_BELOW;
            assert!(big.step_with(backend, &x, &SVector::zeros())[0] > 0.01);
        }
    }
}

/// One caller's state `h` through `step` and `run` on every backend: the bits of its flushed
/// copy's.
fn entry_flush_from<const I: usize, const H: usize>(cell: &RnnCell<I, H>, h: &SVector<f32, H>) {
    let (x, h) = (mixed_vector::<I>(0), *h);
    for backend in Backend::available() {
        let name = backend.name();
        let step = cell.step_with(backend, &x, &h);
        assert_eq!(
            bits(&step),
            bits(&cell.step_with(backend, &zeroed(&x), &zeroed(&h))),
            "{name} ({I}, {H})"
        );
        assert!(step.iter().all(|v| !v.is_subnormal()));
        let mut in_place = h;
        cell.step_in_place_with(backend, &x, &mut in_place);
        assert_eq!(bits(&in_place), bits(&step), "{name} in place ({I}, {H})");
        let xs = [x, mixed_vector(2), mixed_vector(3)];
        let zs = xs.map(|x| zeroed(&x));
        assert_eq!(
            bits(&cell.run_with(backend, &xs, &h)),
            bits(&cell.run_with(backend, &zs, &zeroed(&h))),
            "{name} run ({I}, {H})"
        );
    }
}

/// One tiny value in a caller's state among zeros, in each lane in turn: `step` of a cell whose
/// recurrent weights are all `weight` finds it whichever part of the state it falls in (a state
/// of 5 to 16 units goes to the kernel in four packed pairs, checked before the call up to 8
/// units and in the kernel's entry from 9, where the kernel is a call; one of 17 to 48 units
/// is checked before the kernel's call in a build where the kernel is a call; a larger one is
/// checked in the kernel, whole vectors and then the units left over), on every
/// backend; a missed one would add `weight·BELOW`, and a value of `FLUSH_BELOW` is kept.
fn state_flush_lanes_of<const H: usize>(
    what: &str,
    weight: f32,
    step: impl Fn(Backend, &SVector<f32, 1>, &SVector<f32, H>) -> SVector<f32, H>,
) {
    let x = SVector::<f32, 1>::zeros();
    for backend in Backend::available() {
        let name = backend.name();
        for j in 0..H {
            let mut h = SVector::<f32, H>::zeros();
            h[j] = BELOW;
            let flushed = step(backend, &x, &h);
            assert_eq!(
                bits(&flushed),
                vec![0; H],
                "{what} {name} H = {H}, lane {j}"
            );
            h[j] = FLUSH_BELOW;
            let kept = step(backend, &x, &h)[0];
            assert!(
                kept > 0.9 * weight * FLUSH_BELOW,
                "{what} {name} H = {H}, lane {j} kept"
            );
            // Among values of either sign at twice the threshold (kept, and none zero), where
            // a check may first compare the least magnitude with the threshold: the tiny value
            // is found as well, and the others are kept.
            let mut h = SVector::<f32, H>::from_fn(|k, _| {
                if k % 2 == 0 {
                    2.0 * FLUSH_BELOW
                } else {
                    -2.0 * FLUSH_BELOW
                }
            });
            h[j] = 0.0;
            let without = step(backend, &x, &h);
            h[j] = BELOW;
            assert_eq!(
                bits(&step(backend, &x, &h)),
                bits(&without),
                "{what} {name} H = {H}, lane {j} among kept values"
            );
            h[j] = -BELOW;
            assert_eq!(
                bits(&step(backend, &x, &h)),
                bits(&without),
                "{what} {name} H = {H}, lane {j} (negative) among kept values"
            );
        }
    }
}

/// `state_flush_lanes_of` an f32 cell: a missed value would add 2e10·BELOW ≈ 0.009.
fn state_flush_lanes<const H: usize>() {
    let big: RnnCell<1, H> = RnnCell::from_row_major([[0.0]; H], [[2.0e10; H]; H], [0.0; H]);
    state_flush_lanes_of("f32", 2.0e10, |backend, x, h| big.step_with(backend, x, h));
    state_flush_lanes_of("f32 in place", 2.0e10, |backend, x, h| {
        let mut h = *h;
        big.step_in_place_with(backend, x, &mut h);
        h
    });
}

#[test]
fn a_tiny_state_value_flushes_in_any_lane() {
    state_flush_lanes::<2>();
    state_flush_lanes::<4>();
    state_flush_lanes::<5>();
    state_flush_lanes::<7>();
    state_flush_lanes::<8>();
    state_flush_lanes::<9>();
    state_flush_lanes::<13>();
    state_flush_lanes::<16>();
    state_flush_lanes::<20>();
    state_flush_lanes::<37>();
    state_flush_lanes::<48>();
    state_flush_lanes::<49>();
    state_flush_lanes::<64>();
    state_flush_lanes::<65>();
    state_flush_lanes::<137>();
}

#[test]
fn inputs_and_states_flush_on_entry() {
    entry_flush::<3, 2>();
    entry_flush::<2, 3>();
    entry_flush::<1, 4>();
    entry_flush::<1, 16>();
    entry_flush::<16, 16>();
    entry_flush::<9, 20>();
    entry_flush::<20, 12>();
    entry_flush::<64, 128>();
}

/// `Rnn` stores its states flushed and reads inputs as the cell does, through `step` and
/// `process` (whose input projections are hoisted at (64, 128)), and the readout reads a
/// caller's tiny state as +0.
fn network_flush<const I: usize, const H: usize>() {
    let cell = mixed_cell::<I, H>();
    let head: Readout<H, 3> = Readout::from_row_major(mixed_weights(4), [0.1, -0.2, 0.0]);
    let h0 = mixed_vector::<H>(5);
    let xs: Vec<SVector<f32, I>> = (0..19).map(mixed_vector).collect();
    let zs: Vec<SVector<f32, I>> = xs.iter().map(zeroed).collect();
    for backend in Backend::available() {
        let mut rnn = Rnn::with_initial_state(cell.clone(), head.clone(), h0).with_backend(backend);
        assert_eq!(bits(rnn.state()), bits(&zeroed(&h0)));
        let mut plain =
            Rnn::with_initial_state(cell.clone(), head.clone(), zeroed(&h0)).with_backend(backend);
        let (mut ys, mut ys_plain) = (vec![SVector::zeros(); 19], vec![SVector::zeros(); 19]);
        rnn.process(&xs, &mut ys);
        plain.process(&zs, &mut ys_plain);
        assert_eq!(ys, ys_plain, "{} process", backend.name());
        rnn.set_initial_state(h0);
        assert_eq!(bits(rnn.initial_state()), bits(&zeroed(&h0)));
        rnn.set_state(h0);
        assert_eq!(bits(rnn.state()), bits(&zeroed(&h0)));
        plain.set_state(zeroed(&h0));
        assert_eq!(
            bits(&rnn.step(&xs[0])),
            bits(&plain.step(&zs[0])),
            "{}",
            backend.name()
        );
        assert_eq!(rnn.process_last(&xs), plain.process_last(&zs));
    }
    assert_eq!(
        bits(&head.logits(&h0)),
        bits(&head.logits(&zeroed(&h0))),
        "readout"
    );
}

#[test]
fn networks_flush_states_and_inputs() {
    network_flush::<3, 2>();
    network_flush::<9, 20>();
    network_flush::<64, 128>();
}

/// A bank stores its states flushed, and its steps (`step`, gathered or transposed, and
/// `step_unit_major`) from mixed inputs give the bits of the same steps from the inputs flushed
/// beforehand. (With these magnitudes a missed input flush is lost in rounding: see
/// `bank_input_flush` for that.)
fn bank_flush<const I: usize, const H: usize, const N: usize>() {
    let cell = mixed_cell::<I, H>();
    let xs: [SVector<f32, I>; N] = core::array::from_fn(mixed_vector);
    let zs = xs.map(|x| zeroed(&x));
    let lanes: [[f32; N]; I] = core::array::from_fn(|k| core::array::from_fn(|s| xs[s][k]));
    for backend in Backend::available() {
        let mut bank: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        let mut plain: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        for s in 0..N {
            let h = mixed_vector::<H>(s + 7);
            bank.set_state(s, &h);
            assert_eq!(bits(&bank.state(s)), bits(&zeroed(&h)));
            plain.set_state(s, &zeroed(&h));
        }
        bank.step(&xs);
        plain.step(&zs);
        assert_eq!(bank.states(), plain.states(), "{} step", backend.name());
        bank.step_unit_major(&lanes);
        plain.step(&zs);
        assert_eq!(bank.states(), plain.states(), "{} lanes", backend.name());
    }
}

#[test]
fn banks_flush_states_and_inputs() {
    bank_flush::<3, 2, 5>();
    bank_flush::<1, 2, 13>();
    bank_flush::<1, 8, 32>();
    bank_flush::<3, 2, 32>();
    bank_flush::<1, 16, 32>();
    bank_flush::<9, 20, 13>();
    // Transposed in 8×8 tiles, into one block of first-layer units and into several.
    bank_flush::<8, 4, 16>();
    bank_flush::<16, 32, 32>();
    // Inputs picked out of the streams' values by lane permutations, 16 streams per vector.
    bank_flush::<3, 5, 37>();
    bank_flush::<5, 4, 33>();
}

/// A cell whose input weights are ±2^38 and whose state weights are 0: a kept input of 2^-40
/// moves a pre-activation by 1/4, and an input of 2^-41 (`BELOW`) would move it by 1/8 if it
/// were read unflushed, far above rounding, so that a missed input flush shows in the states.
fn loud_input_cell<const I: usize, const H: usize>() -> RnnCell<I, H> {
    let w = 2.0_f32.powi(38);
    let w_xh =
        core::array::from_fn(|j| core::array::from_fn(|k| if (j + k) % 2 == 0 { w } else { -w }));
    RnnCell::from_row_major(w_xh, [[0.0; H]; H], [0.0; H])
}

/// Input `k` of stream `s`: `±BELOW`, `±FLUSH_BELOW`, +0 or `±SUBNORMAL`, each in every lane
/// of a tile over the streams; at most a quarter of the inputs kept, so that the sums stay
/// where tanh is far from saturated.
fn edge_input<const I: usize>(s: usize) -> SVector<f32, I> {
    SVector::from_fn(|k, _| {
        let sign = if (s + 2 * k).is_multiple_of(3) {
            -1.0
        } else {
            1.0
        };
        match (s + k) % 4 {
            0 => sign * BELOW,
            1 => sign * FLUSH_BELOW,
            2 => 0.0,
            _ => sign * SUBNORMAL,
        }
    })
}

/// Every input below the threshold reads as +0 on every bank path: `step` (gathered,
/// transposed in tiles or by selects, value by value) and `step_unit_major` (flushed by the
/// kernel, or checked first): the states equal those from the inputs flushed beforehand, where
/// one missed flush would move a state by about 1/8.
fn bank_input_flush<const I: usize, const H: usize, const N: usize>() {
    let cell = loud_input_cell::<I, H>();
    let xs: [SVector<f32, I>; N] = core::array::from_fn(edge_input);
    let zs = xs.map(|x| zeroed(&x));
    let lanes: [[f32; N]; I] = core::array::from_fn(|k| core::array::from_fn(|s| xs[s][k]));
    let zero_lanes = lanes.map(|row| row.map(|x| if x.abs() < FLUSH_BELOW { 0.0 } else { x }));
    for backend in Backend::available() {
        let name = backend.name();
        let mut bank: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        let mut plain: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        bank.step(&xs);
        plain.step(&zs);
        assert_eq!(bank.states(), plain.states(), "{name} ({I}, {H}, {N}) step");
        // The inputs do move the states: a cell that ignored them would pass the above.
        assert!(
            plain.states().as_flattened().iter().any(|x| x.abs() > 0.2),
            "{name}"
        );
        bank.step_unit_major(&lanes);
        plain.step_unit_major(&zero_lanes);
        assert_eq!(
            bank.states(),
            plain.states(),
            "{name} ({I}, {H}, {N}) lanes"
        );
    }
}

#[test]
fn banks_flush_every_input_on_every_path() {
    // Gathered by the kernel: one input, fewer than 8 streams, or lane permutations.
    bank_input_flush::<1, 2, 13>();
    bank_input_flush::<3, 2, 5>();
    bank_input_flush::<3, 5, 37>();
    bank_input_flush::<5, 4, 33>();
    // One input and more than 8 units: the row as given, checked before the step.
    bank_input_flush::<1, 16, 32>();
    bank_input_flush::<1, 12, 13>();
    // Transposed by lane selects, into one block of units and into several.
    bank_input_flush::<3, 2, 32>();
    bank_input_flush::<3, 12, 13>();
    // Transposed in 8×8 tiles (the last tile and the last 8 streams overlapping), into one
    // block of units and into several; and value by value, fewer than 8 streams.
    bank_input_flush::<8, 4, 16>();
    bank_input_flush::<9, 20, 13>();
    bank_input_flush::<16, 32, 32>();
    bank_input_flush::<12, 20, 5>();
}

/// Unit-major inputs of a first layer of more than 8 units are checked for values to flush
/// before the step (which would flush each once per block): one value below the threshold, at
/// any position of the `I·N` (including the last vector's remainder), is found and read as +0.
fn bank_input_check<const I: usize, const H: usize, const N: usize>() {
    let cell = loud_input_cell::<I, H>();
    let kept: [[f32; N]; I] = core::array::from_fn(|k| {
        core::array::from_fn(|s| match (s + k) % 3 {
            0 => FLUSH_BELOW,
            1 => -FLUSH_BELOW,
            _ => 0.0,
        })
    });
    for backend in Backend::available() {
        let mut bank: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        let mut plain: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        for position in 0..I * N {
            let (k, s) = (position / N, position % N);
            let mut lanes = kept;
            lanes[k][s] = if position % 2 == 0 { BELOW } else { -BELOW };
            let mut zero_lanes = kept;
            zero_lanes[k][s] = 0.0;
            bank.step_unit_major(&lanes);
            plain.step_unit_major(&zero_lanes);
            assert_eq!(
                bank.states(),
                plain.states(),
                "{} ({I}, {H}, {N}) input {k} of stream {s}",
                backend.name()
            );
        }
    }
}

#[test]
fn a_bank_finds_a_tiny_input_anywhere() {
    bank_input_check::<1, 16, 32>();
    bank_input_check::<3, 12, 7>();
    bank_input_check::<9, 20, 13>();
    bank_input_check::<16, 32, 32>();
}

// ---------------------------------------------------------------------------------------------
// What the flushes change, inside the error budget.

/// The fast step with the flushes against the reference without them: within `per_step`,
/// which carries `δ_flush`. With weights of 1e9 a flushed input moves a pre-activation by up to
/// 1e9 · 2^-40 ≈ 9e-4, far above rounding: the budget must account for it.
#[test]
fn the_budget_covers_the_flush() {
    let cell: RnnCell<4, 3> = RnnCell::from_row_major(
        [
            [1e9, -1e9, 5e8, 1.0],
            [2e8, 1e9, -1e9, 0.5],
            [1.0, 2.0, -1.0, 1e9],
        ],
        [[0.5, 0.1, 0.0], [0.0, 0.5, 0.2], [0.1, 0.0, 0.5]],
        [0.0, 0.1, -0.1],
    );
    let x = SVector::from([BELOW, -BELOW * 0.75, BELOW * 0.5, BELOW]);
    let h = SVector::from([0.3, -BELOW, 0.5]);
    let budget = cell.error_budget(FLUSH_BELOW, 1.0);
    let exact = reference::step(&cell, &x, &h);
    for backend in Backend::available() {
        let fast = cell.step_with(backend, &x, &h);
        let worst = (fast - exact).amax();
        assert!(worst > 1e-4, "the flush is visible: {worst}");
        assert!(
            worst <= budget.per_step,
            "{}: {worst} > {}",
            backend.name(),
            budget.per_step
        );
    }
}

/// The stored cell against the weights it was built from, in f64: within `per_step` plus
/// `weight_flush`.
#[test]
fn the_budget_covers_the_weight_flush() {
    let w_xh = mixed_weights::<16, 8>(1).map(|row| row.map(|w| w * 1e3));
    let w_hh = mixed_weights::<16, 16>(2);
    let b = mixed_weights::<1, 16>(3)[0];
    let cell: RnnCell<8, 16> = RnnCell::from_row_major(w_xh, w_hh, b);
    let x = SVector::<f32, 8>::from_element(1e3);
    let h = SVector::<f32, 16>::from_element(1.0);
    let budget = cell.error_budget(1e3, 1.0);
    let fast = cell.step(&x, &h);
    for j in 0..16 {
        let z: f64 = (0..8).map(|k| f64::from(w_xh[j][k]) * 1e3).sum::<f64>()
            + (0..16).map(|k| f64::from(w_hh[j][k])).sum::<f64>()
            + f64::from(b[j]);
        let diff = (f64::from(fast[j]) - z.tanh()).abs();
        let bound = f64::from(budget.per_step) + f64::from(budget.weight_flush);
        assert!(diff <= bound, "unit {j}: {diff} > {bound}");
    }
    assert!(budget.weight_flush > 0.0 && budget.weight_flush < 1e-8);
}

// ---------------------------------------------------------------------------------------------
// The invariant, as the CPU records it.

#[cfg(target_arch = "x86_64")]
mod flags {
    #![allow(unsafe_code, reason = "reading and clearing MXCSR's status flags")]

    use std::hint::black_box;

    /// MXCSR's sticky flags: DE, a subnormal operand was read; UE, a result underflowed.
    pub const DE: u32 = 1 << 1;
    pub const UE: u32 = 1 << 4;
    /// All six status flags (IE, DE, ZE, OE, UE, PE).
    const STATUS: u32 = 0x3F;

    fn read() -> u32 {
        let mut csr = 0_u32;
        // SAFETY: `stmxcsr` writes the 4-byte MXCSR to the address of `csr`, a valid u32.
        unsafe {
            core::arch::asm!("stmxcsr [{}]", in(reg) &raw mut csr, options(nostack, preserves_flags));
        }
        csr
    }

    fn clear() {
        let csr = read() & !STATUS;
        // SAFETY: `ldmxcsr` reads 4 bytes at the address of `csr`, a valid u32. It writes back
        // the control bits (rounding, masks, FTZ, DAZ) as they were and clears only the sticky
        // status flags, which no compiled code depends on.
        unsafe {
            core::arch::asm!("ldmxcsr [{}]", in(reg) &raw const csr, options(nostack, preserves_flags, readonly));
        }
    }

    /// The DE and UE flags that `f` raises, its input and output passed through `black_box`
    /// so that it runs between the clear and the read.
    pub fn raised<T, R>(input: T, f: impl FnOnce(T) -> R) -> u32 {
        clear();
        let out = f(black_box(input));
        black_box(out);
        read() & (DE | UE)
    }
}

/// The probe sees what it must: a multiply of a subnormal operand raises DE, a product below
/// the normal range raises UE, and ordinary arithmetic raises neither.
#[cfg(target_arch = "x86_64")]
#[test]
fn the_flag_probe_sees_subnormals() {
    assert_eq!(
        flags::raised((SUBNORMAL, 3.0_f32), |(a, b)| a * b) & flags::DE,
        flags::DE
    );
    assert_eq!(
        flags::raised((TINY, TINY), |(a, b)| a * b) & flags::UE,
        flags::UE
    );
    assert_eq!(flags::raised((0.5_f32, 3.0_f32), |(a, b)| a * b + 1.0), 0);
    // The reference step, which flushes nothing, raises them on the inputs the tests use.
    let cell = mixed_cell::<3, 2>();
    let x = SVector::from([SUBNORMAL, 0.5, TINY]);
    assert_ne!(
        flags::raised((&cell, x), |(cell, x)| reference::step(
            cell,
            &x,
            &SVector::zeros()
        )),
        0
    );
}

/// Every path with subnormal and tiny inputs, states and weights: no flag, on every backend.
#[cfg(target_arch = "x86_64")]
fn no_subnormal_arithmetic<const I: usize, const H: usize, const N: usize>() {
    let cell = mixed_cell::<I, H>();
    let head: Readout<H, 3> = Readout::from_row_major(mixed_weights(4), [TINY, -0.2, 0.0]);
    let (x, h) = (mixed_vector::<I>(0), mixed_vector::<H>(1));
    // A decaying input, 0.9^t, from 1 down through the tiny normals and the subnormals to 0.
    let decay: Vec<SVector<f32, I>> = (0..1500)
        .map(|t| SVector::from_element(0.9_f32.powi(t)))
        .collect();
    assert!(decay.iter().any(|x| x[0].is_subnormal()));
    let mut ys = vec![SVector::<f32, 3>::zeros(); decay.len()];
    let lanes: [[f32; N]; I] =
        core::array::from_fn(|k| core::array::from_fn(|s| mixed_vector::<I>(s)[k]));
    let xs: [SVector<f32, I>; N] = core::array::from_fn(mixed_vector);
    for backend in Backend::available() {
        let name = backend.name();
        let raised = |what: &str, flags: u32| assert_eq!(flags, 0, "{name} ({I}, {H}) {what}");
        // States whose tiny values fall on different units (a (3, 2) cell has two).
        for seed in 1..=3 {
            let h = mixed_vector::<H>(seed);
            raised(
                "step",
                flags::raised((x, h), |(x, h)| cell.step_with(backend, &x, &h)),
            );
        }
        raised(
            "run",
            flags::raised(&decay, |xs| cell.run_with(backend, xs, &h)),
        );
        let mut rnn = Rnn::new(cell.clone(), head.clone()).with_backend(backend);
        rnn.set_state(h);
        raised("Rnn::step", flags::raised(x, |x| rnn.step(&x)));
        raised(
            "process",
            flags::raised(&decay, |xs| rnn.process(xs, &mut ys)),
        );
        raised(
            "process_last",
            flags::raised(&decay, |xs| rnn.process_last(xs)),
        );
        raised("logits", flags::raised(h, |h| head.logits(&h)));
        let mut bank: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        for s in 0..N {
            bank.set_state(s, &mixed_vector(s + 9));
        }
        raised("bank step", flags::raised(&xs, |xs| bank.step(xs)));
        raised(
            "bank lanes",
            flags::raised(&lanes, |x| bank.step_unit_major(x)),
        );
        raised(
            "bank outputs",
            flags::raised(&head, |head| bank.outputs(head)),
        );
        let tiny: Vec<f32> = (1..=40_u8).map(|k| TINY * f32::from(k)).collect();
        let mut out = vec![0.0; 40];
        raised(
            "tanh",
            flags::raised(&tiny, |t| backend.tanh_into(t, &mut out)),
        );
    }
    masked_outputs::<I, H, 6>(&cell, x, h, &decay);
    masked_outputs::<I, H, 7>(&cell, x, h, &decay);
    masked_outputs::<I, H, 11>(&cell, x, h, &decay);
    // A bidirectional sequence's readout, 4 outputs: in the best backend's entry.
    let head4: Readout<H, 4> = Readout::from_row_major(mixed_weights(6), [TINY, -0.2, 0.0, 0.5]);
    let rows: Vec<SVector<f32, H>> = (1..=5).map(mixed_vector).collect();
    let mut ys4 = vec![SVector::<f32, 4>::zeros(); rows.len()];
    assert_eq!(
        flags::raised(&rows, |rows| read_out(&head4, rows, &mut ys4)),
        0,
        "read_out ({I}, {H})"
    );
    let stack = Stack::<_, _, H>::new(cell.clone(), mixed_cell::<H, H>());
    for backend in Backend::available() {
        let name = backend.name();
        let raised = |what: &str, flags: u32| assert_eq!(flags, 0, "{name} ({I}, {H}) {what}");
        let mut state = (h, mixed_vector::<H>(4));
        raised(
            "stack advance",
            flags::raised(x, |x| stack.advance(backend, &x, &mut state)),
        );
        // Boxed: at (64, 128) the stack is 225 KiB, and by-value moves of a debug build would
        // overflow the test thread's stack.
        let mut net = bytemuck::zeroed_box::<Network<_, I, H, 3>>();
        net.swap_weights_from(&stack, &head, OnSwap::Reset);
        net.set_backend(backend);
        net.set_state((h, mixed_vector::<H>(4)));
        raised("stacked step", flags::raised(x, |x| net.step(&x)));
        raised(
            "stacked process",
            flags::raised(&decay, |xs| net.process(xs, &mut ys)),
        );
        let mut bank = bytemuck::zeroed_box::<Bank<_, I, H, N>>();
        bank.swap_weights_from(&stack, OnSwap::Reset);
        bank.set_backend(backend);
        for s in 0..N {
            bank.set_state(s, &(mixed_vector(s + 9), mixed_vector(s + 5)));
        }
        raised("stacked bank", flags::raised(&xs, |xs| bank.step(xs)));
        raised(
            "stacked bank lanes",
            flags::raised(&lanes, |x| bank.step_unit_major(x)),
        );
    }
}

/// [`no_subnormal_arithmetic`]'s network with `O` outputs: from 32 units, with 6, 7 and 9 to 15
/// outputs (above 64 units, 6, 7, 11 and 13 to 15), the 512-bit backend reads each column out
/// as one vector with its last lanes masked (on a CPU that runs 512-bit operations whole).
#[cfg(target_arch = "x86_64")]
fn masked_outputs<const I: usize, const H: usize, const O: usize>(
    cell: &RnnCell<I, H>,
    x: SVector<f32, I>,
    h: SVector<f32, H>,
    decay: &[SVector<f32, I>],
) {
    let head: Readout<H, O> = Readout::from_row_major(mixed_weights(8), [TINY; O]);
    let mut ys = vec![SVector::<f32, O>::zeros(); decay.len()];
    for backend in Backend::available() {
        let name = backend.name();
        let raised =
            |what: &str, flags: u32| assert_eq!(flags, 0, "{name} ({I}, {H}) {O} outputs: {what}");
        let mut rnn = Rnn::new(cell.clone(), head.clone()).with_backend(backend);
        rnn.set_state(h);
        raised("Rnn::step", flags::raised(x, |x| rnn.step(&x)));
        raised(
            "process",
            flags::raised(decay, |xs| rnn.process(xs, &mut ys)),
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn no_arithmetic_meets_a_subnormal() {
    no_subnormal_arithmetic::<3, 2, 8>();
    no_subnormal_arithmetic::<1, 8, 32>();
    no_subnormal_arithmetic::<1, 16, 32>();
    no_subnormal_arithmetic::<16, 32, 32>();
    no_subnormal_arithmetic::<5, 61, 9>();
    no_subnormal_arithmetic::<64, 128, 5>();
    // The bank's other input paths: 8×8 tiles into one block of units; overlapping tiles and
    // streams into several; lane permutations of 16 streams.
    no_subnormal_arithmetic::<8, 4, 16>();
    no_subnormal_arithmetic::<9, 20, 13>();
    no_subnormal_arithmetic::<3, 5, 37>();
}

/// `state_flush_lanes_of` the f16 and bf16 cells (the same `step_weights` path with another
/// weight element): a weight of 6e4 (within f16's range; 59904 in bf16) turns a missed 2^-41
/// into 2.7e-8, far above the flush after A, so a missed flush shows in the bits.
fn narrow_weight_state_flush_lanes<const H: usize>() {
    let cell: RnnCell<1, H> = RnnCell::from_row_major([[0.0]; H], [[6.0e4; H]; H], [0.0; H]);
    let half = HalfCell::from_cell(&cell).expect("in range");
    let pairs = Bf16Cell::from_cell(&cell).expect("finite");
    state_flush_lanes_of("f16", 6.0e4, |backend, x, h| half.step_with(backend, x, h));
    state_flush_lanes_of("bf16", 6.0e4, |backend, x, h| {
        pairs.step_with(backend, x, h)
    });
}

#[test]
fn a_tiny_state_value_flushes_in_any_lane_of_narrow_weights() {
    narrow_weight_state_flush_lanes::<3>();
    narrow_weight_state_flush_lanes::<9>();
    narrow_weight_state_flush_lanes::<20>();
    narrow_weight_state_flush_lanes::<37>();
    narrow_weight_state_flush_lanes::<137>();
}
