//! `elman::keras` against real Keras 3 (torch backend): `SimpleRNN` + `Dense` models exported
//! by `scripts/keras_to_safetensors.py` with the outputs Keras computed
//! (`scripts/export_keras_fixtures.py`). Each step from Keras's previous state is within the
//! cell's per-step error budget; the logits within `2·γ(H+1)·S_y`, as `tests/parity.rs` derives
//! them.

#![cfg(feature = "std")]
#![allow(
    clippy::cast_precision_loss,
    reason = "fixtures hold f32 values written as JSON numbers"
)]

mod common;

use common::{check_logits, series};
use elman::keras::{Head, KerasError, KerasModel};
use elman::nalgebra::SVector;
use elman::torch::LoadError;
use elman::{Activation, Relu, Tanh};
use serde_json::Value;

fn case(name: &str) -> (KerasModel, Value) {
    let base = format!("tests/fixtures/keras/{name}");
    let model = KerasModel::read(format!("{base}.safetensors")).expect("the fixture reads");
    let text = std::fs::read_to_string(format!("{base}.json")).expect("the fixture");
    (model, serde_json::from_str(&text).expect("json"))
}

fn parity<const I: usize, const H: usize, const O: usize, A: Activation>(name: &str) {
    let (model, case) = case(name);
    let layer = model.simple_rnn::<I, H, A>("simple_rnn").expect("loads");
    let (readout, head) = model.dense::<H, O>("dense").expect("loads");
    assert_eq!(head, Head::Linear);
    let xs = series::<I>(&case["xs"]);
    let hs = series::<H>(&case["hs"]);
    let ys = series::<O>(&case["ys"]);
    // Keras's t-th output reads xs[t], or xs[T − 1 − t] going backwards.
    let input = |t: usize| {
        if layer.go_backwards {
            &xs[xs.len() - 1 - t]
        } else {
            &xs[t]
        }
    };
    let x_max = xs.iter().map(SVector::amax).fold(1.0_f32, f32::max);
    let budget = layer.cell.error_budget(x_max, 1.0).per_step;
    let (mut previous, mut worst) = (SVector::zeros(), 0.0_f32);
    for (t, h) in hs.iter().enumerate() {
        let gap = (layer.cell.step(input(t), &previous) - h).amax();
        assert!(gap <= budget, "{name} step {t}: {gap:e} over {budget:e}");
        worst = worst.max(gap);
        previous = *h;
    }
    check_logits(name, &readout, &hs, &ys);
    // The whole sequence, free-running, in Keras's order.
    let mut ours = vec![SVector::zeros(); hs.len()];
    layer.run_sequence(&xs, &mut ours);
    let drift = ours
        .iter()
        .zip(&hs)
        .map(|(a, b)| (a - b).amax())
        .fold(0.0_f32, f32::max);
    println!("{name}: worst step {worst:e}, free-running {drift:e}");
}

#[test]
fn simple_rnn_tanh() {
    parity::<3, 4, 2, Tanh>("simple_rnn_i3_h4_o2");
}

#[test]
fn simple_rnn_relu() {
    parity::<2, 8, 3, Relu>("simple_rnn_relu_i2_h8_o3");
}

#[test]
fn simple_rnn_without_bias_over_300_steps() {
    parity::<5, 16, 4, Tanh>("simple_rnn_no_bias_i5_h16_o4");
}

#[test]
fn go_backwards_reads_the_sequence_last_to_first() {
    parity::<3, 4, 2, Tanh>("simple_rnn_backwards_i3_h4_o2");
    let (model, _) = case("simple_rnn_backwards_i3_h4_o2");
    // A network streams first to last: a backwards layer is refused there, by name.
    let err = model
        .network::<3, 4, 2, Tanh>("simple_rnn", "dense")
        .expect_err("backwards");
    assert!(
        matches!(&err, KerasError::Config { layer, key: "go_backwards", .. } if layer == "simple_rnn"),
        "{err:?}"
    );
}

#[test]
fn a_network_loads_in_one_call_and_steps_as_keras() {
    let (model, case) = case("simple_rnn_i3_h4_o2");
    let mut net = model
        .network::<3, 4, 2, Tanh>("simple_rnn", "dense")
        .expect("loads");
    assert_eq!(net.head, Head::Linear);
    // The network is the layer and the readout loaded apart (checked against Keras above),
    // to the bit.
    let layer = model.simple_rnn::<3, 4, Tanh>("simple_rnn").expect("loads");
    let (readout, _) = model.dense::<4, 2>("dense").expect("loads");
    let xs = series::<3>(&case["xs"]);
    let mut h = SVector::zeros();
    for x in &xs {
        h = layer.cell.step(x, &h);
        assert_eq!(net.rnn.step(x), readout.logits(&h));
    }
}

#[test]
fn what_the_crate_cannot_run_is_an_error_naming_the_layer() {
    let (model, _) = case("simple_rnn_relu_i2_h8_o3");
    let err = model
        .simple_rnn::<2, 8, Tanh>("simple_rnn")
        .expect_err("relu as tanh");
    assert!(
        matches!(&err, KerasError::Config { key: "activation", found, .. } if found == "relu"),
        "{err:?}"
    );
    let err = model
        .simple_rnn::<2, 8, Relu>("dense")
        .expect_err("a Dense");
    assert!(
        matches!(&err, KerasError::Layer { found: Some(found), .. } if found == "Dense"),
        "{err:?}"
    );
    // An absent layer: the error lists the file's (Keras names a second model's layers
    // `simple_rnn_1`, `dense_1`, …).
    let err = model.simple_rnn::<2, 8, Relu>("lstm").expect_err("absent");
    assert!(
        matches!(&err, KerasError::Layer { found: None, present, .. } if present == &["dense (Dense)", "simple_rnn (SimpleRNN)"]),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("its layers: dense (Dense), simple_rnn (SimpleRNN)"),
        "{err}"
    );
    let err = model
        .simple_rnn::<3, 8, Relu>("simple_rnn")
        .expect_err("sizes");
    assert!(
        matches!(&err, KerasError::Load(LoadError::Shape { name, .. }) if name == "simple_rnn/kernel"),
        "{err:?}"
    );
    // A PyTorch state dict is not a Keras export.
    let torch = std::fs::read("tests/fixtures/torch/seed_tanh_i3_h2.safetensors").expect("file");
    assert!(matches!(
        KerasModel::from_bytes(&torch),
        Err(KerasError::NotKeras { .. })
    ));
}
