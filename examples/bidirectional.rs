//! Tagging a whole sequence with a bidirectional RNN: each step's tag reads the inputs before it
//! (the forward direction) and after it (the backward direction), as
//! `nn.RNN(bidirectional=True)` + `nn.Linear(2H, O)` compute it.
//!
//! A model trained in PyTorch loads with `StateDict::bidirectional` (feature `std`); here the
//! weights are written by hand so that the example runs anywhere.
//!
//! Run: `cargo run --release --example bidirectional`

use elman::bidirectional::{BiStack2, BiStates, Bidirectional, read_out};
use elman::nalgebra::{self, SVector, vector};
use elman::{Readout, RnnCell, argmax};

fn main() {
    // One input per step, 2 units per direction: outputs of 4 values.
    let first: Bidirectional<1, 2, 4> = Bidirectional::new(
        RnnCell::from_row_major([[1.5], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0, 0.1]),
        RnnCell::from_row_major([[1.0], [0.5]], [[0.4, 0.1], [0.1, 0.4]], [0.0, -0.1]),
    );
    let second: Bidirectional<4, 2, 4> = Bidirectional::new(
        RnnCell::from_row_major(
            [[0.5, 0.0, 0.5, 0.0], [0.0, 0.5, 0.0, 0.5]],
            [[0.3; 2]; 2],
            [0.0; 2],
        ),
        RnnCell::from_row_major(
            [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]],
            [[0.2; 2]; 2],
            [0.0; 2],
        ),
    );
    let stack: BiStack2<1, 2, 4> = BiStack2::new(first, [second]);
    // Three tags from the last layer's 4 values per step.
    let head: Readout<4, 3> = Readout::from_row_major(
        [
            [1.0, 0.0, 1.0, 0.0],
            [0.0, 1.0, 0.0, 1.0],
            [-1.0, -1.0, -1.0, -1.0],
        ],
        [0.0, 0.0, 0.5],
    );

    let xs: Vec<SVector<f32, 1>> = [0.0, 1.0, 1.0, 0.0, -1.0, -1.0, 0.0, 0.5]
        .iter()
        .map(|&x| vector![x])
        .collect();
    // The caller owns every buffer: nothing below allocates.
    let mut out = vec![SVector::<f32, 4>::zeros(); xs.len()];
    let mut scratch = out.clone();
    let mut logits = vec![SVector::<f32, 3>::zeros(); xs.len()];
    let h_n = stack.run(&xs, &BiStates::ZERO, &mut scratch, &mut out);
    read_out(&head, &out, &mut logits);

    for (t, (x, y)) in xs.iter().zip(&logits).enumerate() {
        println!("step {t}: input {:5.2} -> tag {}", x[0], argmax(y));
    }
    // PyTorch's h_n: layer 0 forward, layer 0 backward, layer 1 forward, layer 1 backward.
    for (k, h) in h_n.iter().enumerate() {
        println!("h_n[{k}] = {:?}", h.as_slice());
    }
}
