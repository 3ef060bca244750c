//! A short sequence through a cell and a readout, carrying the hidden state from step to step
//! and printing the prediction at each one.
//!
//! Run it with `cargo run --release --example sequence`.

use elman::nalgebra::{self, SVector, vector};
use elman::{Readout, RnnCell, argmax, softmax};

/// A cell that remembers the sign of its recent inputs: unit 0 follows a positive drive, unit 1
/// a negative one, each with a recurrent self-weight of 0.8.
const CELL: RnnCell<1, 2> =
    RnnCell::from_row_major([[2.0], [-2.0]], [[0.8, -0.2], [-0.2, 0.8]], [0.0, 0.0]);

/// Three classes: "rising" (unit 0 high), "falling" (unit 1 high), "flat" (neither).
const READOUT: Readout<2, 3> =
    Readout::from_row_major([[3.0, -1.0], [-1.0, 3.0], [-2.0, -2.0]], [0.0, 0.0, 1.0]);

const LABELS: [&str; 3] = ["rising", "falling", "flat"];

fn main() {
    let inputs = [
        0.9_f32, 0.7, 0.4, 0.0, 0.0, -0.3, -0.8, -1.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let mut h = SVector::<f32, 2>::zeros();
    println!(" t      x     h_t                    p(rising, falling, flat)   prediction");
    for (t, &x) in inputs.iter().enumerate() {
        h = CELL.step(&vector![x], &h);
        let y = READOUT.logits(&h);
        let p = softmax(&y);
        println!(
            "{t:>2} {x:>6.2}   [{:>8.4}, {:>8.4}]   [{:.3}, {:.3}, {:.3}]        {}",
            h[0],
            h[1],
            p[0],
            p[1],
            p[2],
            LABELS[argmax(&y)]
        );
    }
}
