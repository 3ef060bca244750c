//! The real-time pattern: a stateful network stepped once per sample, here a gate that
//! follows the loudness of a signal, as an audio plugin's `process` callback would run it on
//! each block the host hands over. Nothing is allocated after start-up.
//!
//! The same block also goes through `Rnn::process` on a second network: the whole block in one
//! call, faster, with the same bits (checked on every block).
//!
//! `cargo run --release --example streaming`

use elman::nalgebra::{self, SVector, vector};
use elman::{Readout, Rnn, RnnCell, sigmoid};

/// One input (the sample's magnitude), four hidden units with slow and fast decays, one output.
const CELL: RnnCell<1, 4> = RnnCell::from_row_major(
    [[2.0], [2.0], [-1.0], [0.5]],
    [
        [0.95, 0.0, 0.0, 0.0],
        [0.0, 0.6, 0.0, 0.0],
        [0.0, 0.0, 0.9, 0.0],
        [0.1, 0.1, 0.1, 0.5],
    ],
    [0.0, 0.0, 0.0, -0.2],
);
const HEAD: Readout<4, 1> = Readout::from_row_major([[4.0, 2.0, -2.0, 1.0]], [-2.0]);

/// What a host calls for every block of samples: the gate's opening for each one.
fn process(rnn: &mut Rnn<1, 4, 1>, input: &[f32], gate: &mut [f32]) {
    for (sample, g) in input.iter().zip(gate.iter_mut()) {
        let y = rnn.step(&vector![sample.abs()]);
        *g = sigmoid(&y)[0];
    }
}

/// Samples per block, as a host would hand them over.
const BLOCK: usize = 64;

/// The same for a whole block at once: `Rnn::process` runs it in one call of the kernel, the
/// state kept in registers from one sample to the next.
fn process_block(rnn: &mut Rnn<1, 4, 1>, input: &[f32; BLOCK], gate: &mut [f32; BLOCK]) {
    let xs: [SVector<f32, 1>; BLOCK] = core::array::from_fn(|n| vector![input[n].abs()]);
    let mut ys = [SVector::<f32, 1>::zeros(); BLOCK];
    rnn.process(&xs, &mut ys);
    for (g, y) in gate.iter_mut().zip(&ys) {
        *g = sigmoid(y)[0];
    }
}

fn main() {
    let (mut rnn, mut block_rnn) = (Rnn::new(CELL, HEAD), Rnn::new(CELL, HEAD));
    let (mut input, mut gate, mut block_gate) = ([0.0_f32; BLOCK], [0.0_f32; BLOCK], [0.0; BLOCK]);
    println!("block  loudness  gate (mean over the block)");
    for block in 0..16 {
        // A burst of tone in blocks 3 to 8, silence around it.
        let level = if (3..9).contains(&block) { 0.8 } else { 0.0 };
        for (n, s) in input.iter_mut().enumerate() {
            #[expect(clippy::cast_precision_loss, reason = "sample indices")]
            let phase = (block * BLOCK + n) as f32 * 0.2;
            *s = level * phase.sin();
        }
        process(&mut rnn, &input, &mut gate);
        process_block(&mut block_rnn, &input, &mut block_gate);
        #[expect(clippy::float_cmp, reason = "the same bits, on purpose")]
        let same = gate == block_gate;
        assert!(same, "block {block}: process and step disagree");
        #[expect(clippy::cast_precision_loss, reason = "a block length")]
        let mean = gate.iter().sum::<f32>() / BLOCK as f32;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "0 to 40"
        )]
        let bar = "#".repeat((mean * 40.0).round().clamp(0.0, 40.0) as usize);
        println!("{block:>5}  {level:>8.1}  {mean:.3} {bar}");
    }
}
