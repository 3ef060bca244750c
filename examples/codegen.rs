//! Turns a PyTorch `state_dict` (safetensors) holding a one-layer `nn.RNN` and an `nn.Linear`
//! into Rust source with the weights as `static` items, so that a model compiles into the
//! binary: no file, no loader, no allocator, shapes checked by the compiler.
//!
//! `cargo run --release --example codegen -- model.safetensors NAME [rnn-prefix head-prefix] [--relu] > model.rs`
//!
//! The file does not record the layer's non-linearity: the cell is tanh, or ReLU with `--relu`
//! (for `nn.RNN(..., nonlinearity='relu')`). A file with more than one layer, or a
//! bidirectional one, is refused with the reason.
//!
//! Then, in the program: `include!("model.rs");` and
//! `let mut rnn = elman::Rnn::new(NAME_CELL.clone(), NAME_HEAD.clone());`, or for a large model
//! (see the `elman::in_place` docs), built in place on the heap:
//! `let mut rnn = elman::Rnn::new_boxed(&NAME_CELL, &NAME_HEAD);`.

use std::process::ExitCode;

use elman::torch::{LoadError, StateDict};
use elman::{Relu, Tanh};

const USAGE: &str = "usage: codegen MODEL.safetensors NAME [RNN_PREFIX HEAD_PREFIX] [--relu]";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let relu = args.iter().any(|a| a == "--relu");
    args.retain(|a| a != "--relu");
    let (path, name, rnn, head) = match args.as_slice() {
        [path, name] => (path, name, "rnn", "head"),
        [path, name, rnn, head] => (path, name, rnn.as_str(), head.as_str()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let source = StateDict::read(path).and_then(|state| {
        if relu {
            state.rust_statics_with::<Relu>(rnn, head, name)
        } else {
            state.rust_statics_with::<Tanh>(rnn, head, name)
        }
    });
    match source {
        Ok(source) => {
            print!("{source}");
            eprintln!(
                "codegen: {name}_CELL is a {} cell (the file does not say; {})",
                if relu { "ReLU" } else { "tanh" },
                if relu {
                    "without --relu it is tanh"
                } else {
                    "pass --relu for nonlinearity='relu'"
                }
            );
            ExitCode::SUCCESS
        }
        Err(error @ (LoadError::ExtraLayer { .. } | LoadError::Unused { .. })) => {
            eprintln!("codegen: {path}: {error} (codegen writes one-layer, one-direction models)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("codegen: {path}: {error}");
            ExitCode::FAILURE
        }
    }
}
