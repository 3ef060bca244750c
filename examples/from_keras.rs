//! A Keras 3 `SimpleRNN` + `Dense` model, exported with `scripts/keras_to_safetensors.py`, run
//! sample by sample.
//!
//! `cargo run --example from_keras [-- model.safetensors]`

use elman::keras::{Head, KerasModel};
use elman::nalgebra::SVector;
use elman::softmax;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fixtures/keras/simple_rnn_i3_h4_o2.safetensors".to_owned());
    let model = KerasModel::read(&path)?;
    // The layers by their Keras names; the sizes are checked against the file.
    let mut net = model.network::<3, 4, 2, elman::Tanh>("simple_rnn", "dense")?;
    for t in 0..5_u8 {
        let x = SVector::from([f32::from(t).cos(), -0.5, 0.25]);
        let logits = net.rnn.step(&x);
        let output = match net.head {
            Head::Linear => logits,
            Head::Softmax => softmax(&logits),
            Head::Sigmoid => elman::sigmoid(&logits),
        };
        println!("step {t}: {:?}", output.as_slice());
    }
    println!("loaded from {path}");
    Ok(())
}
