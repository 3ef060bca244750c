//! Any bytes through the ONNX reader: parsing, following the graph, every tensor's conversion,
//! cells, initial states and readouts of several sizes. Reading must return a value or an
//! `OnnxError`, never panic; what loads must hold finite weights of the sizes asked for, and
//! step.

#![no_main]

use elman::nalgebra::SVector;
use elman::onnx::{InitialState, OnnxModel};
use elman::stack::{Stack2, Stack3};
use elman::{BiStates, RnnCell, Relu, Tanh};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = OnnxModel::from_bytes(data) else {
        return;
    };
    if let Ok(rnn) = model.rnn::<3, 4, Tanh>() {
        assert!(rnn.cell.w_xh().iter().chain(rnn.cell.w_hh().iter()).all(|w| w.is_finite()));
        if let InitialState::Given(h0) = rnn.initial_state {
            assert!(h0.iter().all(|v| v.is_finite()));
        }
        let h = rnn.cell.step(&SVector::from([1.0, -1.0, 0.5]), &SVector::zeros());
        assert!(h.iter().all(|v| v.abs() <= 1.0));
    }
    let _ = model.rnn::<1, 16, Relu>();
    let _ = model.rnn::<2, 8, Relu>();
    if let Ok(mut net) = model.network::<RnnCell<3, 4>, 3, 4, 2>() {
        let _ = net.step(&SVector::from([1.0, -1.0, 0.5]));
    }
    let _ = model.network::<RnnCell<5, 16>, 5, 16, 4>();
    if let Ok((bi, readout)) = model.bidirectional_network::<3, 4, 8, 2, Tanh>() {
        let xs = [SVector::from([1.0, -1.0, 0.5]); 3];
        let mut out = [SVector::zeros(); 3];
        let _ = bi.layer.run(&xs, &(SVector::zeros(), SVector::zeros()), &mut out);
        let _ = readout.logits(&out[0]);
    }
    if let Ok(rnn) = model.rnn::<3, 4, Tanh>() {
        let mut out = [SVector::zeros(); 4];
        rnn.run_sequence(&[SVector::from([0.5, 0.5, 0.5]); 4], &SVector::zeros(), &mut out);
    }
    // Stacks: chains of nodes, their initial states, their readouts.
    if let Ok(mut net) = model.network::<Stack2<3, 4>, 3, 4, 2>() {
        let _ = net.step(&SVector::from([1.0, -1.0, 0.5]));
    }
    let _ = model.layers::<Stack3<4, 8, Relu>, 4, 8>();
    let _ = model.layers::<Stack2<3, 5>, 3, 5>();
    if let Ok(stack) = model.bidirectional_stack::<3, 4, 8, 1, Tanh>() {
        let xs = [SVector::from([1.0, -1.0, 0.5]); 3];
        let (mut scratch, mut out) = ([SVector::zeros(); 3], [SVector::zeros(); 3]);
        let _ = stack.layers.run(&xs, &BiStates::ZERO, &mut scratch, &mut out);
    }
    let _ = model.bidirectional_stack::<2, 6, 12, 1, Tanh>();
    let _ = model.readout::<8, 2>();
    if let Ok((readout, head)) = model.readout_and_head::<4, 2>() {
        let _ = head.apply(&readout.logits(&SVector::from([0.5; 4])));
    }
    // Every error names what it is about.
    if let Err(e) = model.network::<RnnCell<4, 6>, 4, 6, 3>() {
        assert!(!e.to_string().is_empty());
    }
});
