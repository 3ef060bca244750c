//! Weights compiled into the binary: the committed sources in `tests/fixtures/generated/` are
//! what `StateDict::rust_statics` generates today, they compile, and the statics they define are
//! the models the loader reads from the same files, bit for bit, with the same outputs.

#![cfg(feature = "std")]

use elman::nalgebra::SVector;
use elman::torch::StateDict;
use elman::{Activation, InPlace, Readout, Relu, Rnn, RnnCell, Tanh};

include!("fixtures/generated/seed_tanh_i3_h2.rs");
include!("fixtures/generated/seed_relu_i3_h2.rs");
include!("fixtures/generated/saturating_i64_h128.rs");

fn same_as_loaded<const I: usize, const H: usize, const O: usize, A: Activation>(
    fixture: &str,
    name: &str,
    cell: &RnnCell<I, H, A>,
    head: &Readout<H, O>,
) {
    let path = format!("tests/fixtures/torch/{fixture}.safetensors");
    let state = StateDict::read(&path).expect("loads");
    // The committed source is up to date.
    let generated = state
        .rust_statics_with::<A>("rnn", "head", name)
        .expect("generates");
    let committed = std::fs::read_to_string(format!("tests/fixtures/generated/{fixture}.rs"))
        .expect("committed");
    let relu = if A::NAME == "relu" { " --relu" } else { "" };
    assert_eq!(
        generated, committed,
        "regenerate with: cargo run --example codegen -- {path} {name}{relu}"
    );
    // The statics are the loaded model, and run the same. Loaded and copied in place: the
    // (64, 128) model built by value, several times over, overflows a test thread's stack in a
    // debug build.
    let loaded_cell: Box<RnnCell<I, H, A>> = state.rnn_boxed("rnn").expect("a cell");
    let mut loaded_head = Readout::<H, O>::zeroed_box();
    state
        .readout_into("head", &mut loaded_head)
        .expect("a head");
    assert_eq!(cell, &*loaded_cell);
    assert_eq!(head, &*loaded_head);
    let mut compiled = Rnn::new_boxed(cell, head);
    let mut from_file = Rnn::new_boxed(&loaded_cell, &loaded_head);
    for t in 0..50 {
        #[expect(clippy::cast_precision_loss, reason = "small integers")]
        let x = SVector::<f32, I>::from_fn(|k, _| ((t * 7 + k * 3) % 17) as f32 / 8.5 - 1.0);
        assert_eq!(compiled.step(&x), from_file.step(&x));
    }
}

#[test]
fn seed_model_compiled_in() {
    same_as_loaded("seed_tanh_i3_h2", "SEED", &SEED_CELL, &SEED_HEAD);
}

#[test]
fn large_model_compiled_in() {
    same_as_loaded("saturating_i64_h128", "LARGE", &LARGE_CELL, &LARGE_HEAD);
}

#[test]
fn relu_model_compiled_in() {
    same_as_loaded(
        "seed_relu_i3_h2",
        "SEED_RELU",
        &SEED_RELU_CELL,
        &SEED_RELU_HEAD,
    );
}

/// The file does not record the non-linearity: the tanh source of a ReLU model's weights is
/// another model, which is why `codegen` takes `--relu`.
#[test]
fn tanh_and_relu_sources_differ_in_type_only() {
    let state = StateDict::read("tests/fixtures/torch/seed_relu_i3_h2.safetensors").expect("loads");
    let relu = state
        .rust_statics_with::<Relu>("rnn", "head", "M")
        .expect("generates");
    let tanh = state
        .rust_statics_with::<Tanh>("rnn", "head", "M")
        .expect("generates");
    assert!(relu.contains("elman::RnnCell<3, 2, elman::Relu>"));
    assert!(tanh.contains("elman::RnnCell<3, 2>"));
    assert_eq!(
        relu.replace(", elman::Relu", "")
            .replace(", nonlinearity='relu'", ""),
        tanh
    );
}

/// A bidirectional file: the backward half named, not the head's width that follows from it.
#[test]
fn bidirectional_file_names_its_backward_half() {
    let state = StateDict::read("tests/fixtures/torch/bi_tanh_i3_h4.safetensors").expect("loads");
    let error = state
        .rust_statics("rnn", "head", "M")
        .expect_err("two directions");
    assert!(
        matches!(&error, elman::torch::LoadError::Unused { names, .. } if names.iter().all(|n| n.ends_with("_reverse"))),
        "{error}"
    );
}
