//! Models exported from PyTorch to ONNX (`torch.onnx.export` of `nn.RNN` + `nn.Linear`, one
//! layer and two), run sample by sample.
//!
//! `cargo run --example from_onnx --features onnx [-- model.onnx]`

use elman::nalgebra::SVector;
use elman::onnx::{InitialState, OnnxModel};
use elman::{Rnn, Rnn2};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fixtures/onnx/torch_forward_i3_h4_o2.onnx".to_owned());
    let model = OnnxModel::read(&path)?;
    // The sizes are the model's: a file whose RNN is not 3 → 4 → 2 is an error that says so.
    let rnn = model.rnn::<3, 4, elman::Tanh>()?;
    if let InitialState::Input(name) = &rnn.initial_state {
        println!("the initial state is the graph input `{name}`: starting from zeros");
    }
    let mut net: Rnn<3, 4, 2> = model.network()?;
    for t in 0..5_u8 {
        let x = SVector::from([f32::from(t).sin(), 0.5, -0.25]);
        let logits = net.step(&x);
        println!("step {t}: logits {:?}", logits.as_slice());
    }
    println!("loaded node `{}` from {path}", rnn.node);

    // `nn.RNN(num_layers=2)` exports one RNN node per layer: it loads as a two-layer network.
    let stacked = "tests/fixtures/onnx/torch_two_layers_i3_h4_o2.onnx";
    let mut net: Rnn2<3, 4, 2> = OnnxModel::read(stacked)?.network()?;
    let logits = net.step(&SVector::from([0.5, 0.5, -0.25]));
    println!("two layers from {stacked}: logits {:?}", logits.as_slice());
    Ok(())
}
