//! Load a model trained in PyTorch and run it: an `nn.RNN(3, 2)` and an `nn.Linear(2, 4)` saved
//! with `safetensors.torch.save_file(model.state_dict(), path)` by `scripts/export_fixtures.py`,
//! stepped through the inputs PyTorch saw, printing each step's prediction beside PyTorch's.
//!
//! `cargo run --release --example from_pytorch [model.safetensors inputs.json]`

use elman::nalgebra::SVector;
use elman::torch::StateDict;
use elman::{Rnn, argmax, softmax};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/torch/seed_tanh_i3_h2.safetensors".into());
    let inputs = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/torch/seed_tanh_i3_h2.json".into());

    // The sizes are part of the types: a file whose tensors disagree is a LoadError naming them.
    let state = StateDict::read(&model)?;
    // The `nn.RNN` under `rnn` and the `nn.Linear` under `head`, as one network (a model with
    // `num_layers=2` loads the same way, as an `elman::Rnn2`).
    let mut rnn: Rnn<3, 2, 4> = state.network("rnn", "head")?;
    println!(
        "loaded {model}: {}",
        state.names().collect::<Vec<_>>().join(", ")
    );

    let run: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&inputs)?)?;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "f32 values written as JSON numbers"
    )]
    let as_f32 = |v: &serde_json::Value| v.as_f64().map_or(f32::NAN, |x| x as f32);
    let rows = run["xs"].as_array().ok_or("no inputs in the JSON")?;
    rnn.set_initial_state(SVector::from_iterator(
        run["h0"][0].as_array().ok_or("no h0")?.iter().map(as_f32),
    ));
    let mut agree = 0;
    println!(
        " t   x                                  p(class 0..3)                     ours  PyTorch"
    );
    for (t, row) in rows.iter().enumerate() {
        let x = SVector::<f32, 3>::from_iterator(row.as_array().ok_or("a row")?.iter().map(as_f32));
        let y = rnn.step(&x);
        let p = softmax(&y);
        let theirs = run["argmax"][t].as_u64().unwrap_or(u64::MAX);
        agree += usize::from(argmax(&y) as u64 == theirs);
        if t < 12 || t + 3 > rows.len() {
            println!(
                "{t:>2}  [{:>7.3}, {:>7.3}, {:>7.3}]  [{:.3}, {:.3}, {:.3}, {:.3}]   {}     {theirs}",
                x[0],
                x[1],
                x[2],
                p[0],
                p[1],
                p[2],
                p[3],
                argmax(&y)
            );
        } else if t == 12 {
            println!(" …");
        }
    }
    println!(
        "predictions agreeing with PyTorch: {agree} of {}",
        rows.len()
    );
    Ok(())
}
