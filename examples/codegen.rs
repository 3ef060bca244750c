//! Turns a PyTorch `state_dict` (safetensors) holding a one-layer `nn.RNN` and an `nn.Linear`
//! into Rust source with the weights as `static` items, so that a model compiles into the
//! binary: no file, no loader, no allocator, shapes checked by the compiler.
//!
//! `cargo run --release --example codegen -- model.safetensors NAME [rnn-prefix head-prefix] > model.rs`
//!
//! Then, in the program: `include!("model.rs");` and
//! `let mut rnn = elman::Rnn::new(NAME_CELL.clone(), NAME_HEAD.clone());`, or for a large model
//! (see the `elman::in_place` docs), built in place on the heap:
//! `let mut rnn = elman::Rnn::new_boxed(&NAME_CELL, &NAME_HEAD);`.

use elman::torch::StateDict;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, name, rest @ ..] = args.as_slice() else {
        return Err("usage: codegen MODEL.safetensors NAME [RNN_PREFIX HEAD_PREFIX]".into());
    };
    let (rnn, head) = match rest {
        [rnn, head] => (rnn.as_str(), head.as_str()),
        _ => ("rnn", "head"),
    };
    print!("{}", StateDict::read(path)?.rust_statics(rnn, head, name)?);
    Ok(())
}
