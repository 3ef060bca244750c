//! The in-place ways (`InPlace`, the `boxed` constructors, `swap_weights_from`, the `_into` and
//! `_boxed` loaders) give the models the by-value ways give, at sizes small enough for both; and
//! the all-zero bytes that `zeroed_box` allocates are each type's zero model (what its
//! `unsafe impl Zeroable` promises). `tests/stack_size.rs` runs them at (128, 256) on a small
//! stack.

#![cfg(feature = "std")]
#![allow(clippy::float_cmp, reason = "copies and loads are exact")]

mod common;

use common::safetensors_f32;
use elman::nalgebra::{SVector, vector};
use elman::stack::{Stack, Stack2};
use elman::torch::{LoadError, StateDict};
use elman::{Backend, InPlace, OnSwap, Readout, Relu, Rnn, RnnBank, RnnCell};

const W_XH: [[f32; 3]; 2] = [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]];
const W_HH: [[f32; 2]; 2] = [[0.5, -0.25], [0.125, 0.75]];
const B: [f32; 2] = [0.05, -0.1];
const W_HY: [[f32; 2]; 4] = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]];
const B_Y: [f32; 4] = [0.0, 0.1, 0.2, 0.3];

fn cell() -> RnnCell<3, 2> {
    RnnCell::from_row_major(W_XH, W_HH, B)
}

fn head() -> Readout<2, 4> {
    Readout::from_row_major(W_HY, B_Y)
}

fn xs() -> [SVector<f32, 3>; 3] {
    [
        vector![1.0, 0.0, -1.0],
        vector![0.5, 0.25, 0.0],
        vector![-1.0, 2.0, 0.5],
    ]
}

#[test]
fn zeroed_boxes_are_the_zero_models() {
    assert_eq!(*RnnCell::<3, 2>::zeroed_box(), RnnCell::default());
    assert_eq!(*RnnCell::<3, 2, Relu>::zeroed_box(), RnnCell::default());
    assert_eq!(*Readout::<2, 4>::zeroed_box(), Readout::default());
    let zero_rnn = Rnn::new(RnnCell::default(), Readout::default());
    let rnn = Rnn::<3, 2, 4>::zeroed_box();
    assert_eq!(*rnn, zero_rnn);
    // No backend chosen: printed as the best one, named.
    assert_eq!(format!("{rnn:?}"), format!("{zero_rnn:?}"));
    let best = format!("backend: best ({})", Backend::best().name());
    assert!(format!("{rnn:?}").contains(&best), "{rnn:?}");
    let chosen = zero_rnn.clone().with_backend(Backend::PORTABLE);
    assert!(
        format!("{chosen:?}").contains("backend: portable"),
        "{chosen:?}"
    );
    let bank = RnnBank::<3, 2, 5>::zeroed_box();
    assert_eq!(*bank, RnnBank::new(RnnCell::default()));
    assert_eq!(
        format!("{bank:?}"),
        format!("{:?}", RnnBank::<3, 2, 5>::new(RnnCell::default()))
    );
    assert_eq!(
        *Stack2::<3, 2>::zeroed_box(),
        Stack::new(RnnCell::default(), RnnCell::default())
    );
    // A zeroed bank steps as a new one: stream by stream, the cell alone.
    let mut bank = RnnBank::<3, 2, 3>::zeroed_box();
    bank.copy_from(&RnnBank::new(cell()));
    bank.step(&xs());
    for (s, x) in xs().iter().enumerate() {
        assert!((bank.state(s) - cell().step(x, &SVector::zeros())).amax() < 1e-6);
    }
}

#[test]
fn boxed_constructors_build_what_new_builds() {
    assert_eq!(*RnnCell::boxed_from_row_major(&W_XH, &W_HH, &B), cell());
    let relu = RnnCell::<3, 2, Relu>::boxed_from_row_major(&W_XH, &W_HH, &B);
    assert_eq!(*relu, cell().with_activation::<Relu>());
    assert_eq!(*Readout::boxed_from_row_major(&W_HY, &B_Y), head());

    let h0 = vector![0.25, -0.5];
    let mut rnn = Rnn::new_boxed(&cell(), &head());
    assert_eq!(*rnn, Rnn::new(cell(), head()));
    rnn.set_initial_state(h0);
    rnn.set_backend(Backend::PORTABLE);
    let by_value = Rnn::with_initial_state(cell(), head(), h0).with_backend(Backend::PORTABLE);
    assert_eq!(*rnn, by_value);
    assert_eq!(format!("{rnn:?}"), format!("{by_value:?}"));

    let mut bank = RnnBank::<3, 2, 9>::new_boxed(&cell());
    assert_eq!(*bank, RnnBank::new(cell()));
    for backend in Backend::available() {
        bank.set_backend(backend);
        assert_eq!(*bank, RnnBank::new(cell()).with_backend(backend));
    }

    let upper: RnnCell<2, 2> = RnnCell::from_row_major(W_HH, W_HH, B);
    let stack: Box<Stack2<3, 2>> = Stack::new_boxed(&cell(), &upper);
    assert_eq!(*stack, Stack::new(cell(), upper));
}

#[test]
fn copies_are_clones() {
    let mut rnn =
        Rnn::with_initial_state(cell(), head(), vector![0.5, 0.5]).with_backend(Backend::PORTABLE);
    rnn.step(&xs()[0]);
    let mut copy = rnn.clone_boxed();
    assert_eq!(*copy, rnn.clone());
    let mut into = Rnn::zeroed_box();
    into.copy_from(&rnn);
    assert_eq!(*into, rnn);
    for x in &xs()[1..] {
        assert_eq!(copy.step(x), rnn.step(x));
    }
    copy.reset();
    rnn.reset();
    assert_eq!(*copy, rnn, "the initial state is copied too");

    // After an odd number of steps the bank's live states are its second buffer.
    let mut bank = RnnBank::<3, 2, 3>::new(cell());
    bank.step(&xs());
    let mut copy = bank.clone_boxed();
    assert_eq!(*copy, bank.clone());
    bank.step(&xs());
    copy.step(&xs());
    assert_eq!(copy.states(), bank.states());

    let stack = Stack::<_, _, 2>::new(cell(), RnnCell::<2, 2>::from_row_major(W_HH, W_HH, B));
    assert_eq!(*stack.clone_boxed(), stack);
}

#[test]
fn swapping_from_references_is_swapping_by_value() {
    let other_cell = RnnCell::from_row_major(W_XH, [[0.0; 2]; 2], [1.0, -1.0]);
    let other_head = Readout::from_row_major([[2.0; 2]; 4], [0.0; 4]);
    for on_swap in [OnSwap::KeepState, OnSwap::Reset] {
        let mut by_value = Rnn::with_initial_state(cell(), head(), vector![0.1, 0.2]);
        for x in &xs() {
            by_value.step(x);
        }
        let mut from_refs = by_value.clone_boxed();
        by_value.swap_weights(other_cell.clone(), other_head.clone(), on_swap);
        from_refs.swap_weights_from(&other_cell, &other_head, on_swap);
        assert_eq!(*from_refs, by_value, "{on_swap:?}");
    }
}

#[test]
fn in_place_loaders_load_what_the_loaders_load() {
    let state = StateDict::read("tests/fixtures/torch/two_layers_i7_h13.safetensors").unwrap();
    let net: Box<Stack2<7, 13>> = state.rnn_boxed("rnn").expect("two layers");
    assert_eq!(*net, state.rnn::<Stack2<7, 13>>("rnn").unwrap());
    let mut head = Readout::<13, 5>::zeroed_box();
    state.readout_into("head", &mut head).expect("a head");
    assert_eq!(*head, state.readout::<13, 5>("head").unwrap());

    let path = "tests/fixtures/torch/relu_two_layers_nobias_i1_h16.safetensors";
    let state = StateDict::read(path).unwrap();
    let net: Box<Stack2<1, 16, Relu>> = state.rnn_boxed("rnn").expect("two relu layers");
    assert_eq!(*net, state.rnn::<Stack2<1, 16, Relu>>("rnn").unwrap());
    let mut upper = RnnCell::<16, 16, Relu>::zeroed_box();
    state.rnn_cell_into("rnn", 1, &mut upper).expect("layer 1");
    assert_eq!(
        *upper,
        state.rnn_cell_with::<16, 16, Relu>("rnn", 1).unwrap()
    );
}

/// Tensors to write to a file: name, shape, values.
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// A one-layer `nn.RNN(3, 2)` under `rnn` and an `nn.Linear(2, 4)` under `head`, with the
/// tensors `change` leaves.
fn broken(change: impl FnOnce(&mut Tensors)) -> StateDict {
    let mut tensors = vec![
        ("rnn.weight_ih_l0".to_owned(), vec![2, 3], vec![1.0; 6]),
        ("rnn.weight_hh_l0".to_owned(), vec![2, 2], vec![2.0; 4]),
        ("rnn.bias_ih_l0".to_owned(), vec![2], vec![3.0; 2]),
        ("rnn.bias_hh_l0".to_owned(), vec![2], vec![4.0; 2]),
        ("head.weight".to_owned(), vec![4, 2], vec![5.0; 8]),
        ("head.bias".to_owned(), vec![4], vec![6.0; 4]),
    ];
    change(&mut tensors);
    StateDict::from_bytes(&safetensors_f32(&tensors)).expect("a valid file")
}

/// Removes the tensor `name`.
fn without(name: &str) -> impl FnOnce(&mut Tensors) {
    move |tensors| tensors.retain(|(n, _, _)| n != name)
}

/// Reshapes the tensor `name` (its values kept, as many as the new shape needs).
fn reshaped(name: &str, shape: Vec<usize>) -> impl FnOnce(&mut Tensors) {
    move |tensors| {
        for (n, s, v) in tensors.iter_mut() {
            if n == name {
                v.resize(shape.iter().product(), 0.5);
                s.clone_from(&shape);
            }
        }
    }
}

/// Asserts that two loads failed with the same error.
fn same_error(into: &LoadError, by_value: &LoadError) {
    assert_eq!(into.to_string(), by_value.to_string());
}

#[test]
fn in_place_loaders_fail_as_the_loaders_fail_and_write_nothing() {
    let broken_cells = [
        broken(without("rnn.weight_hh_l0")),
        broken(without("rnn.bias_hh_l0")),
        broken(reshaped("rnn.weight_ih_l0", vec![3, 2])),
        broken(reshaped("rnn.bias_ih_l0", vec![3])),
    ];
    for state in &broken_cells {
        let mut cell = cell().clone_boxed();
        let err = state.rnn_cell_into("rnn", 0, &mut cell).unwrap_err();
        same_error(&err, &state.rnn_cell::<3, 2>("rnn", 0).unwrap_err());
        assert_eq!(*cell, self::cell(), "nothing written");
        let err = state.rnn_into("rnn", &mut *cell).unwrap_err();
        same_error(&err, &state.rnn::<RnnCell<3, 2>>("rnn").unwrap_err());
        assert_eq!(*cell, self::cell(), "nothing written");
    }
    let extra = broken(|tensors| {
        tensors.push(("rnn.weight_ih_l1".to_owned(), vec![2, 2], vec![0.0; 4]));
    });
    let mut cell = cell().clone_boxed();
    let err = extra.rnn_into("rnn", &mut *cell).unwrap_err();
    same_error(&err, &extra.rnn::<RnnCell<3, 2>>("rnn").unwrap_err());
    assert_eq!(*cell, self::cell(), "nothing written");

    for state in [
        broken(without("head.weight")),
        broken(reshaped("head.weight", vec![2, 4])),
        broken(reshaped("head.bias", vec![5])),
    ] {
        let mut readout = head().clone_boxed();
        let err = state.readout_into("head", &mut readout).unwrap_err();
        same_error(&err, &state.readout::<2, 4>("head").unwrap_err());
        assert_eq!(*readout, head(), "nothing written");
    }
}
