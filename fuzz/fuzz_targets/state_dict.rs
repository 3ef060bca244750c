//! Any bytes through the loader: parsing, every tensor's conversion, cells, stacks and readouts
//! of several sizes and namings. Loading must return a value or a `LoadError`, never panic.

#![no_main]

use elman::stack::Rnn2;
use elman::torch::{Layer, StateDict};
use elman::{Relu, RnnCell};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(state) = StateDict::from_bytes(data) else {
        return;
    };
    let names: Vec<String> = state.names().map(str::to_owned).collect();
    for name in &names {
        let _ = state.values(name);
        let _ = state.shape(name);
    }
    let _ = state.rnn_cell::<3, 2>("rnn", 0);
    let _ = state.rnn_cell::<1, 16>("rnn", 1);
    let _ = state.rnn_cell_with::<3, 2, Relu>("cell", Layer::Cell);
    let _ = state.rnn_cell::<3, 2>("", Layer::Cell);
    let _ = state.rnn::<RnnCell<3, 2>>("rnn");
    let _ = state.rnn::<Rnn2<3, 2>>("rnn");
    let _ = state.readout::<2, 4>("head");
    let _ = state.readout::<16, 3>("head");
    let _ = state.expect_layers("rnn", 1);
});
