//! Any bytes through the ONNX reader: parsing, following the graph, every tensor's conversion,
//! cells, initial states and readouts of several sizes. Reading must return a value or an
//! `OnnxError`, never panic; what loads must hold finite weights of the sizes asked for, and
//! step.

#![no_main]

use elman::nalgebra::SVector;
use elman::onnx::{InitialState, OnnxModel};
use elman::{Relu, Tanh};
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
    if let Ok(mut net) = model.network::<3, 4, 2, Tanh>() {
        let _ = net.step(&SVector::from([1.0, -1.0, 0.5]));
    }
    let _ = model.network::<5, 16, 4, Tanh>();
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
    // Every error names what it is about.
    if let Err(e) = model.network::<4, 6, 3, Tanh>() {
        assert!(!e.to_string().is_empty());
    }
});
