//! Stacked networks (`nn.RNN(num_layers = 2..4)` + `nn.Linear`) as one streaming object: a
//! [`Network`] of a stack is its cells composed by hand plus the readout, to the bit, with
//! everything a one-layer [`Rnn`](elman::Rnn) has (process, state, swap, backend, in place), and a
//! [`Bank`] of a stack is independent stacked networks, one per stream.

#![cfg(feature = "std")]
#![allow(clippy::float_cmp, reason = "the same bits on purpose")]

mod common;

use common::{FAST_TANH_ERROR, assert_within, cell, order_tolerance, safetensors_f32};
use elman::nalgebra::SVector;
use elman::stack::LayerCount;
use elman::torch::StateDict;
// The stacks as a user names them, from the crate root.
use elman::{
    Backend, Bank, FLUSH_BELOW, InPlace, Layers, Network, OnSwap, Readout, Relu, Rnn2, Rnn3,
    RnnBank, RnnCell, Stack, Stack2, Stack3, Tanh,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Three layers of different sizes: 2 inputs, 9 units (more than one block of 8), 6, 4.
type Three = Layers3<2, 9, 6, 4>;

/// `n` inputs, deterministic, in `[-1, 1]`.
fn inputs<const I: usize>(n: usize, salt: usize) -> Vec<SVector<f32, I>> {
    (0..n)
        .map(|t| SVector::from_fn(|k, _| common::hashed(k, salt + 31 * t, 1.0)))
        .collect()
}

/// A readout with deterministic weights.
fn head<const H: usize, const O: usize>(salt: usize) -> Readout<H, O> {
    let w: [[f32; H]; O] =
        core::array::from_fn(|o| core::array::from_fn(|k| common::hashed(o * H + k, salt, 0.5)));
    let b: [f32; O] = core::array::from_fn(|o| common::hashed(o, salt + 1, 0.5));
    Readout::from_row_major(w, b)
}

/// Two and three layers step as their cells composed by hand, read out: the same bits on
/// every backend, through `step`, `process` and `process_last`.
fn composes_two<const I: usize, const H: usize, const O: usize, A: elman::Activation>(
    lower: &RnnCell<I, H, A>,
    upper: &RnnCell<H, H, A>,
    head: &Readout<H, O>,
) -> Result<(), TestCaseError> {
    let xs = inputs::<I>(23, 7);
    let stack: Stack2<I, H, A> = Stack::new(lower.clone(), upper.clone());
    for backend in Backend::available() {
        let mut net: Rnn2<I, H, O, A> =
            Rnn2::new(stack.clone(), head.clone()).with_backend(backend);
        let (mut a, mut b) = (SVector::<f32, H>::zeros(), SVector::<f32, H>::zeros());
        let mut by_hand = Vec::new();
        for x in &xs {
            a = lower.step_with(backend, x, &a);
            b = upper.step_with(backend, &a, &b);
            by_hand.push(head.logits(&b));
            prop_assert_eq!(net.step(x), head.logits(&b));
            prop_assert_eq!(net.state(), &(a, b));
            prop_assert_eq!(net.output_state(), &b);
        }
        net.reset();
        let mut ys = vec![SVector::<f32, O>::zeros(); xs.len()];
        net.process(&xs, &mut ys);
        prop_assert_eq!(&ys, &by_hand);
        net.reset();
        prop_assert_eq!(net.process_last(&xs), by_hand.last().copied());
        prop_assert_eq!(net.state(), &(a, b));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn two_layers_are_their_cells_composed(
        lower in cell::<3, 5, Tanh>(),
        upper in cell::<5, 5, Tanh>(),
    ) {
        composes_two(&lower, &upper, &head::<5, 4>(1))?;
    }

    #[test]
    fn two_relu_layers_are_their_cells_composed(
        lower in cell::<1, 12, Relu>(),
        upper in cell::<12, 12, Relu>(),
    ) {
        composes_two(&lower, &upper, &head::<12, 3>(2))?;
    }

    #[test]
    fn three_layers_of_other_sizes_are_their_cells_composed(
        first in cell::<2, 9, Tanh>(),
        second in cell::<9, 6, Tanh>(),
        third in cell::<6, 4, Tanh>(),
    ) {
        let readout = head::<4, 3>(3);
        let layers: Three = Stack::new(Stack::new(*first.clone(), *second.clone()), *third.clone());
        let xs = inputs::<2>(17, 9);
        for backend in Backend::available() {
            let mut net = Network::new(layers.clone(), readout.clone()).with_backend(backend);
            let (mut a, mut b, mut c) = (SVector::zeros(), SVector::zeros(), SVector::zeros());
            let mut by_hand = Vec::new();
            for x in &xs {
                a = first.step_with(backend, x, &a);
                b = second.step_with(backend, &a, &b);
                c = third.step_with(backend, &b, &c);
                by_hand.push(readout.logits(&c));
                prop_assert_eq!(net.step(x), readout.logits(&c));
                prop_assert_eq!(net.state(), &((a, b), c));
            }
            net.reset();
            let mut ys = vec![SVector::zeros(); xs.len()];
            net.process(&xs, &mut ys);
            prop_assert_eq!(&ys, &by_hand);
        }
    }

    /// Each stream of a bank of stacks is the stack stepped alone: each layer within the
    /// rounding of two summation orders of its own step, from the bank's previous states
    /// (the upper layer on the lower one's new state, as the bank feeds it). And the bank of
    /// the stack is the banks of its cells composed by hand: the same bits.
    #[test]
    fn a_bank_of_stacks_is_independent_stacked_networks(
        first in cell::<2, 9, Tanh>(),
        second in cell::<9, 6, Tanh>(),
        third in cell::<6, 4, Tanh>(),
    ) {
        // A first layer of 9 units: the inputs transposed to unit-major first.
        bank_of_stacks::<2, 9, 6, 4, 5>(&first, &second, &third)?;
        bank_of_stacks::<2, 9, 6, 4, 8>(&first, &second, &third)?;
        bank_of_stacks::<2, 9, 6, 4, 19>(&first, &second, &third)?;
    }

    /// As above, with a first layer of at most 8 units and one input per stream: the kernel
    /// gathers each stream's input itself.
    #[test]
    fn a_bank_of_stacks_gathering_its_inputs(
        first in cell::<1, 6, Tanh>(),
        second in cell::<6, 9, Tanh>(),
        third in cell::<9, 4, Tanh>(),
    ) {
        bank_of_stacks::<1, 6, 9, 4, 3>(&first, &second, &third)?;
        bank_of_stacks::<1, 6, 9, 4, 16>(&first, &second, &third)?;
    }
}

/// Three layers: `I` inputs, then `H0`, `H1` and `H2` units.
type Layers3<const I: usize, const H0: usize, const H1: usize, const H2: usize> =
    Stack<Stack<RnnCell<I, H0>, RnnCell<H0, H1>, H0>, RnnCell<H1, H2>, H1>;

fn bank_of_stacks<
    const I: usize,
    const H0: usize,
    const H1: usize,
    const H2: usize,
    const N: usize,
>(
    first: &RnnCell<I, H0>,
    second: &RnnCell<H0, H1>,
    third: &RnnCell<H1, H2>,
) -> Result<(), TestCaseError> {
    let layers: Layers3<I, H0, H1, H2> =
        Stack::new(Stack::new(first.clone(), second.clone()), third.clone());
    let readout = head::<H2, 3>(4);
    for backend in Backend::available() {
        let mut bank: Bank<_, I, H2, N> = Bank::new(layers.clone()).with_backend(backend);
        let mut unit_major = bank.clone();
        let mut banks = (
            RnnBank::<I, H0, N>::new(first.clone()).with_backend(backend),
            RnnBank::<H0, H1, N>::new(second.clone()).with_backend(backend),
            RnnBank::<H1, H2, N>::new(third.clone()).with_backend(backend),
        );
        for t in 0..8 {
            let xs: [SVector<f32, I>; N] = core::array::from_fn(|s| inputs::<I>(1, 100 * s + t)[0]);
            let before: [_; N] = core::array::from_fn(|s| bank.state(s));
            bank.step(&xs);
            let lanes: [[f32; N]; I] = core::array::from_fn(|k| core::array::from_fn(|s| xs[s][k]));
            unit_major.step_unit_major(&lanes);
            prop_assert_eq!(unit_major.states(), bank.states());
            banks.0.step(&xs);
            banks.1.step_unit_major(banks.0.states());
            banks.2.step_unit_major(banks.1.states());
            prop_assert_eq!(
                bank.states(),
                &((*banks.0.states(), *banks.1.states()), *banks.2.states())
            );
            prop_assert_eq!(bank.output_states(), banks.2.states());
            for (s, x) in xs.iter().enumerate() {
                let ((a, b), c) = bank.state(s);
                let ((a0, b0), c0) = before[s];
                let activation = 2.0 * FAST_TANH_ERROR;
                let single = first.step_with(backend, x, &a0);
                assert_within(&a, &single, &order_tolerance(first, x, &a0, activation))?;
                let single = second.step_with(backend, &a, &b0);
                assert_within(&b, &single, &order_tolerance(second, &a, &b0, activation))?;
                let single = third.step_with(backend, &b, &c0);
                assert_within(&c, &single, &order_tolerance(third, &b, &c0, activation))?;
                prop_assert_eq!(bank.outputs(&readout)[s], readout.logits(&c));
            }
        }
    }
    Ok(())
}

/// The state of every layer: set and read back (flushed as a one-layer network's is), reset to
/// the initial state, kept or reset by a weight swap.
#[test]
fn stacked_state_controls() {
    let layers: Stack3<1, 3> = Stack::new(
        Stack::new(
            RnnCell::from_row_major([[0.5], [-0.5], [1.0]], [[0.1; 3]; 3], [0.0; 3]),
            RnnCell::from_row_major([[0.3; 3]; 3], [[-0.2; 3]; 3], [0.1; 3]),
        ),
        RnnCell::from_row_major([[0.25; 3]; 3], [[0.2; 3]; 3], [0.0; 3]),
    );
    assert_eq!(Stack3::<1, 3>::COUNT, 3);
    let h0 = (
        (
            SVector::from([0.5, -0.5, 0.25]),
            SVector::from([0.1, 0.2, 0.3]),
        ),
        SVector::from([-1.0, 0.0, 1.0]),
    );
    let mut net: Rnn3<1, 3, 2> = Rnn3::with_initial_state(layers.clone(), head::<3, 2>(5), h0);
    assert_eq!(net.state(), &h0);
    assert_eq!(net.initial_state(), &h0);
    let x = SVector::from([0.75]);
    let y = net.step(&x);
    let after = *net.state();
    assert_ne!(after, h0);

    // Set and get: the state comes back as it was set, and steps on from there.
    net.set_state(h0);
    assert_eq!(net.state(), &h0);
    assert_eq!(net.step(&x), y);
    assert_eq!(net.state(), &after);
    // Values below FLUSH_BELOW are stored as +0, in every layer.
    let tiny = FLUSH_BELOW / 4.0;
    net.set_state((
        (SVector::repeat(tiny), SVector::repeat(-tiny)),
        SVector::repeat(tiny),
    ));
    let ((a, b), c) = *net.state();
    for v in a.iter().chain(&b).chain(&c) {
        assert_eq!(v.to_bits(), 0);
    }
    net.reset();
    assert_eq!(net.state(), &h0);

    // Swaps: the new weights continue from the state, or start from the initial one.
    let other: Stack3<1, 3> = Stack::new(
        Stack::new(layers.lower.lower.clone(), layers.lower.upper.clone()),
        RnnCell::from_row_major([[-0.25; 3]; 3], [[0.1; 3]; 3], [0.2; 3]),
    );
    net.step(&x);
    let running = *net.state();
    net.swap_weights(other.clone(), head::<3, 2>(6), OnSwap::KeepState);
    assert_eq!(net.state(), &running);
    assert_eq!(net.layers(), &other);
    net.swap_weights_from(&layers, &head::<3, 2>(5), OnSwap::Reset);
    assert_eq!(net.state(), &h0);
    assert_eq!(net.step(&x), y);

    // In place: a copy written over a zeroed network, and a boxed one, are equal to it.
    let mut copy = Rnn3::<1, 3, 2>::zeroed_box();
    copy.copy_from(&net);
    assert_eq!(*copy, net);
    let mut boxed = Rnn3::new_boxed(&layers, &head::<3, 2>(5));
    boxed.set_initial_state(h0);
    boxed.set_backend(Backend::PORTABLE);
    let mut portable =
        Rnn3::with_initial_state(layers, head::<3, 2>(5), h0).with_backend(Backend::PORTABLE);
    assert_eq!(boxed.step(&x), portable.step(&x));
}

/// A bank's streams of a stack: set, read, reset one or all.
#[test]
fn stacked_bank_state_controls() {
    let layers: Stack2<1, 3> = Stack::new(
        RnnCell::from_row_major([[0.5], [-0.5], [1.0]], [[0.1; 3]; 3], [0.0; 3]),
        RnnCell::from_row_major([[0.3; 3]; 3], [[-0.2; 3]; 3], [0.1; 3]),
    );
    let mut bank: Bank<Stack2<1, 3>, 1, 3, 4> = Bank::new(layers.clone());
    let h = (
        SVector::from([0.5, -0.5, 0.25]),
        SVector::from([0.1, FLUSH_BELOW / 2.0, 0.3]),
    );
    bank.set_state(2, &h);
    let (a, b) = bank.state(2);
    assert_eq!(a, h.0);
    assert_eq!((b[0], b[1].to_bits(), b[2]), (0.1, 0, 0.3));
    assert!(bank.try_set_state(4, &h).is_err());
    assert!(bank.get_state(4).is_none());
    bank.step_unit_major(&[[1.0, 2.0, 3.0, 4.0]]);
    let stream_1 = bank.state(1);
    bank.reset_stream(2);
    assert_eq!(bank.state(2), Stack2::<1, 3>::ZERO_STATE);
    assert_eq!(bank.state(1), stream_1);
    let mut copy = Bank::<Stack2<1, 3>, 1, 3, 4>::new_boxed(&layers);
    copy.copy_from(&bank);
    assert_eq!(*copy, bank);
    // Swaps: the streams go on from their states, or all start again from zero.
    let states = *bank.states();
    let mut other = layers.clone();
    other.upper = RnnCell::from_row_major([[-0.3; 3]; 3], [[0.2; 3]; 3], [0.0; 3]);
    bank.swap_weights(other.clone(), OnSwap::KeepState);
    assert_eq!((bank.states(), bank.layers()), (&states, &other));
    bank.swap_weights_from(&layers, OnSwap::Reset);
    assert_eq!(bank.layers(), &layers);
    assert!(bank.output_states().iter().flatten().all(|&v| v == 0.0));
    bank.step_unit_major(&[[1.0, 2.0, 3.0, 4.0]]);
    bank.reset();
    let fresh = Bank::<Stack2<1, 3>, 1, 3, 4>::new(layers);
    assert_eq!(bank.states(), fresh.states());
}

/// A stacked network built in `const` context, as a one-layer one can be: a model compiled in.
const LOWER: RnnCell<1, 2> =
    RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]);
const UPPER: RnnCell<2, 2> =
    RnnCell::from_row_major([[0.5, 0.5], [0.0, 1.0]], [[0.25; 2]; 2], [0.1; 2]);
static COMPILED_IN: Rnn2<1, 2, 1> = Rnn2::new(
    Stack::new(LOWER, UPPER),
    Readout::from_row_major([[1.0, -1.0]], [0.0]),
);

#[test]
fn a_stacked_network_can_be_a_static() {
    let mut net = COMPILED_IN.clone();
    assert_eq!(net.state(), &Stack2::<1, 2>::ZERO_STATE);
    let x = SVector::from([0.5]);
    let a = LOWER.step(&x, &SVector::zeros());
    let b = UPPER.step(&a, &SVector::zeros());
    assert_eq!(net.step(&x), COMPILED_IN.readout().logits(&b));
    assert_eq!(net.state(), &(a, b));
}

/// Code generic over the layers: the same function runs one cell and a stack.
fn last_logits<L: Layers<I, H>, const I: usize, const H: usize, const O: usize>(
    net: &mut Network<L, I, H, O>,
    xs: &[SVector<f32, I>],
) -> Option<SVector<f32, O>> {
    net.reset();
    net.process_last(xs)
}

#[test]
fn one_design_for_one_layer_and_many() {
    let lower: RnnCell<2, 4> = RnnCell::from_row_major([[0.5, -0.5]; 4], [[0.1; 4]; 4], [0.0; 4]);
    let upper: RnnCell<4, 4> = RnnCell::from_row_major([[0.25; 4]; 4], [[-0.1; 4]; 4], [0.1; 4]);
    let xs = inputs::<2>(5, 11);
    let readout = head::<4, 2>(12);
    let mut one = elman::Rnn::new(lower.clone(), readout.clone());
    let mut two = Rnn2::new(Stack::new(lower.clone(), upper.clone()), readout.clone());
    let mut h = SVector::zeros();
    for x in &xs {
        h = lower.step(x, &h);
    }
    assert_eq!(last_logits(&mut one, &xs), Some(readout.logits(&h)));
    let last_two = last_logits(&mut two, &xs);
    assert_eq!(last_two, Some(readout.logits(two.output_state())));
    assert_ne!(last_two, Some(readout.logits(&h)));
    assert_eq!(last_logits(&mut two, &[]), None);
}

/// A three-layer `nn.RNN` + `nn.Linear` state dict loads as one network, by value and in place;
/// each layer is what the single-layer loader reads.
#[test]
fn three_layers_load_as_one_network() {
    let mut tensors = Vec::new();
    for k in 0..3 {
        let i = if k == 0 { 2 } else { 5 };
        for (what, shape) in [
            ("weight_ih", vec![5, i]),
            ("weight_hh", vec![5, 5]),
            ("bias_ih", vec![5]),
            ("bias_hh", vec![5]),
        ] {
            let n = shape.iter().product();
            let values = (0..n)
                .map(|j| common::hashed(j, 10 * k + what.len(), 0.5))
                .collect();
            tensors.push((format!("rnn.{what}_l{k}"), shape, values));
        }
    }
    tensors.push((
        "head.weight".to_owned(),
        vec![3, 5],
        (0..15).map(|j| common::hashed(j, 99, 0.5)).collect(),
    ));
    tensors.push(("head.bias".to_owned(), vec![3], vec![0.1, -0.2, 0.3]));
    let state = StateDict::from_bytes(&safetensors_f32(&tensors)).expect("a valid file");

    let net: Rnn3<2, 5, 3> = state.network("rnn", "head").expect("three layers");
    let layers = net.layers();
    assert_eq!(
        layers.lower.lower,
        state.rnn_cell::<2, 5>("rnn", 0).unwrap()
    );
    assert_eq!(
        layers.lower.upper,
        state.rnn_cell::<5, 5>("rnn", 1).unwrap()
    );
    assert_eq!(layers.upper, state.rnn_cell::<5, 5>("rnn", 2).unwrap());
    assert_eq!(net.readout(), &state.readout::<5, 3>("head").unwrap());
    let boxed: Box<Rnn3<2, 5, 3>> = state.network_boxed("rnn", "head").expect("in place");
    assert_eq!(*boxed, net);
    // Two layers of it is not the model saved: the third is named.
    let err = state
        .network::<Stack2<2, 5>, 2, 5, 3>("rnn", "head")
        .unwrap_err();
    assert!(
        matches!(err, elman::torch::LoadError::ExtraLayer { layer: 2, .. }),
        "{err}"
    );
    assert!(
        state
            .network_boxed::<Stack2<2, 5>, 2, 5, 3>("rnn", "head")
            .is_err()
    );
}
