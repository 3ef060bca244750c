//! Many streams at once: one small network run on 32 channels with a single call per sample,
//! each vector lane a channel. Resetting one channel leaves the others as they are.
//!
//! `cargo run --release --example bank`

use elman::nalgebra::SVector;
use elman::{Readout, RnnBank, RnnCell, argmax};

const CHANNELS: usize = 32;

/// A small network reading the trend of each channel: units 0 and 1 follow the input, unit 2 its
/// recent past.
const CELL: RnnCell<1, 3> = RnnCell::from_row_major(
    [[3.0], [-3.0], [1.0]],
    [[0.2, 0.0, -2.0], [0.0, 0.2, 2.0], [0.0, 0.0, 0.5]],
    [0.0; 3],
);
const HEAD: Readout<3, 3> = Readout::from_row_major(
    [[2.0, -1.0, 0.0], [-1.0, 2.0, 0.0], [-1.0, -1.0, 1.0]],
    [0.0, 0.0, 0.5],
);
const LABELS: [&str; 3] = ["rising", "falling", "steady"];

fn main() {
    let mut bank: RnnBank<1, 3, CHANNELS> = RnnBank::new(CELL);
    for t in 0..24 {
        // Channel c ramps up or down at its own rate; the samples of all channels side by side.
        #[expect(clippy::cast_precision_loss, reason = "small indices")]
        let samples: [f32; CHANNELS] = core::array::from_fn(|c| {
            let rate = (c as f32 - 15.5) / 64.0;
            (rate * t as f32).sin()
        });
        bank.step_unit_major(&[samples]);
        if t == 12 {
            bank.reset_stream(0);
        }
    }
    let outputs: [SVector<f32, 3>; CHANNELS] = bank.outputs(&HEAD);
    for (c, y) in outputs.iter().enumerate().step_by(4) {
        println!(
            "channel {c:>2}: {:<8} h = {:?}",
            LABELS[argmax(y)],
            bank.state(c).as_slice()
        );
    }
}
