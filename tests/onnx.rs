//! `elman::onnx` against onnxruntime: models built with `onnx.helper` (not by PyTorch) and
//! run by onnxruntime (`scripts/export_onnx_fixtures.py`), loaded by following the graph, and
//! the files the crate cannot run refused with an error that names the node and attribute.
//!
//! Tolerance, derived as tests/parity.rs derives its own: each step from onnxruntime's previous
//! state (teacher-forced) is within the cell's per-step error budget, whose reference term
//! (`δ_ref`, 2 ulp of tanh) stands for onnxruntime's tanh; the logits within `2·γ(H+1)·S_y`.

#![cfg(feature = "onnx")]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "fixtures hold f32 values written as JSON numbers"
)]

mod common;

use common::{check_logits, logits_bound, series};
use elman::nalgebra::SVector;
use elman::onnx::{InitialState, OnnxError, OnnxModel};
use elman::stack::{Stack2, Stack3};
use elman::{Activation, BiStates, Head, Layers, Relu, Rnn, Rnn2, RnnCell, Tanh};
use serde_json::Value;

fn case(name: &str) -> (OnnxModel, Value) {
    let base = format!("tests/fixtures/onnx/{name}");
    let model = OnnxModel::read(format!("{base}.onnx")).expect("the fixture parses");
    let text = std::fs::read_to_string(format!("{base}.json")).expect("the fixture");
    (model, serde_json::from_str(&text).expect("json"))
}

/// Loads the network, checks each step against onnxruntime's from its previous state, and the
/// logits from onnxruntime's states; returns the worst differences.
fn parity<const I: usize, const H: usize, const O: usize, A: Activation>(name: &str) -> (f32, f32) {
    let (model, case) = case(name);
    let rnn = model.rnn::<I, H, A>().expect("loads");
    let net: Rnn<I, H, O, A> = model.network().expect("loads with its readout");
    let xs = series::<I>(&case["xs"]);
    let hs = series::<H>(&case["hs"]);
    let h0 = match (&rnn.initial_state, case.get("h0")) {
        (InitialState::Input(_), Some(h0)) => series::<H>(&Value::Array(vec![h0.clone()]))[0],
        (InitialState::Input(name), None) => panic!("{name}: the fixture has no h0"),
        (InitialState::Given(h0), _) => *h0,
        (InitialState::Zeros, _) => SVector::zeros(),
    };
    let x_max = xs.iter().map(SVector::amax).fold(1.0_f32, f32::max);
    let budget = rnn.cell.error_budget(x_max, 1.0).per_step;
    let mut worst_h = 0.0_f32;
    let mut previous = h0;
    for (t, (x, h)) in xs.iter().zip(&hs).enumerate() {
        let ours = rnn.cell.step(x, &previous);
        let gap = (ours - h).amax();
        assert!(
            gap <= budget,
            "{name} step {t}: {gap:e} over the budget {budget:e}"
        );
        worst_h = worst_h.max(gap);
        previous = *h;
    }
    let worst_y = case.get("ys").map_or(0.0, |ys| {
        check_logits(name, net.readout(), &hs, &series::<O>(ys))
    });
    println!("{name}: worst state difference {worst_h:e}, worst logit difference {worst_y:e}");
    (worst_h, worst_y)
}

#[test]
fn forward_tanh_with_a_matmul_add_readout() {
    parity::<3, 4, 2, Tanh>("helper_forward_i3_h4_o2");
}

/// A (64, 128) model: within budget of onnxruntime, and loaded by value in a thread with the
/// 2 MiB stack `std::thread::spawn` gives (the network goes to the caller from the heap; built
/// from parts loaded by value, it passed through the stack at every layer and move).
#[test]
fn a_larger_model_by_value_on_a_spawned_threads_stack() {
    let thread = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            parity::<64, 128, 4, Tanh>("helper_forward_i64_h128_o4");
            let (model, _) = case("helper_forward_i64_h128_o4");
            let by_value: Rnn<64, 128, 4> = model.network().expect("loads");
            let boxed: Box<Rnn<64, 128, 4>> = model.network_boxed().expect("loads");
            // Compared as a boolean: a failure would print 100 KiB of weights.
            assert!(*boxed == by_value, "the boxed network differs");
        })
        .expect("a thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn relu() {
    parity::<2, 8, 3, Relu>("helper_relu_i2_h8_o3");
}

#[test]
fn no_bias_and_an_initial_state_initializer_over_300_steps() {
    parity::<5, 16, 4, Tanh>("helper_no_bias_h0_i5_h16_o4");
    let (model, _) = case("helper_no_bias_h0_i5_h16_o4");
    let rnn = model.rnn::<5, 16, Tanh>().expect("loads");
    assert!(matches!(rnn.initial_state, InitialState::Given(_)));
}

#[test]
fn an_initial_state_graph_input_is_the_callers() {
    parity::<4, 6, 3, Tanh>("helper_input_h0_i4_h6_o3");
    let (model, _) = case("helper_input_h0_i4_h6_o3");
    let rnn = model.rnn::<4, 6, Tanh>().expect("loads");
    assert_eq!(rnn.initial_state, InitialState::Input("h0".to_owned()));
}

#[test]
fn zeros_computed_in_the_graph_are_a_zero_state() {
    parity::<3, 5, 2, Tanh>("helper_zeros_i3_h5_o2");
    let (model, _) = case("helper_zeros_i3_h5_o2");
    assert_eq!(
        model.rnn::<3, 5, Tanh>().expect("loads").initial_state,
        InitialState::Zeros
    );
}

#[test]
fn half_precision_weights_cast_to_float() {
    parity::<3, 4, 2, Tanh>("helper_f16_weights_i3_h4_o2");
}

#[test]
fn what_the_crate_cannot_run_is_an_error_naming_node_and_attribute() {
    let (bidirectional, _) = case("helper_bidirectional_i3_h4");
    let err = bidirectional
        .rnn::<3, 4, Tanh>()
        .expect_err("bidirectional");
    assert!(
        matches!(&err, OnnxError::Unsupported { node, what, .. } if node == "rnn0" && what == "attribute direction"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"bidirectional\""), "{err}");
    // A reverse node loads as a cell, but not as a network, which streams first to last.
    let (reverse, _) = case("helper_reverse_i3_h4_o2");
    let err = reverse
        .network::<RnnCell<3, 4>, 3, 4, 2>()
        .expect_err("reverse network");
    assert!(
        matches!(&err, OnnxError::Unsupported { what, .. } if what == "attribute direction"),
        "{err:?}"
    );
    let (clip, _) = case("helper_clip_i3_h4_o2");
    let err = clip.rnn::<3, 4, Tanh>().expect_err("clip");
    assert!(
        matches!(&err, OnnxError::Unsupported { what, .. } if what == "attribute clip"),
        "{err:?}"
    );
    // The file's activation is not the cell type's.
    let (relu, _) = case("helper_relu_i2_h8_o3");
    let err = relu.rnn::<2, 8, Tanh>().expect_err("relu as tanh");
    assert!(
        matches!(&err, OnnxError::Activation { found, .. } if found == "Relu"),
        "{err:?}"
    );
    let (tanh, _) = case("helper_forward_i3_h4_o2");
    assert!(matches!(
        tanh.rnn::<3, 4, Relu>(),
        Err(OnnxError::Activation { .. })
    ));
    // Sizes that disagree with the file.
    let err = tanh.rnn::<3, 5, Tanh>().expect_err("hidden size");
    assert!(
        matches!(&err, OnnxError::HiddenSize { node, expected: 5, found: 4 } if node == "rnn0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "node `rnn0` has hidden_size 4; the cell type's H is 5"
    );
    let err = tanh.rnn::<2, 4, Tanh>().expect_err("input size");
    assert!(
        matches!(&err, OnnxError::Shape { name, expected, found } if name == "onnx::RNN_W_7" && expected == &[1, 4, 2] && found == &[1, 4, 3]),
        "{err:?}"
    );
    let err = tanh
        .network::<RnnCell<3, 4>, 3, 4, 3>()
        .expect_err("readout size");
    assert!(matches!(&err, OnnxError::Shape { .. }), "{err:?}");
}

#[test]
fn bytes_that_are_not_a_model_are_malformed() {
    for bytes in [&b"not a model"[..], &[0xFF; 64], &[]] {
        assert!(matches!(
            OnnxModel::from_bytes(bytes),
            Err(OnnxError::Malformed { .. })
        ));
    }
    let good = std::fs::read("tests/fixtures/onnx/helper_forward_i3_h4_o2.onnx").expect("file");
    for end in (0..good.len()).step_by(37) {
        // A truncated file parses or not, and never loads another model silently: whatever
        // loads is refused or has the sizes asked for.
        if let Ok(model) = OnnxModel::from_bytes(&good[..end]) {
            let _ = model.network::<RnnCell<3, 4>, 3, 4, 2>();
        }
    }
    let missing = OnnxModel::read("tests/fixtures/onnx/no_such_file.onnx");
    assert!(matches!(missing, Err(OnnxError::Io { .. })));
}

/// `torch.onnx.export` (the `TorchScript` exporter) of `nn.RNN` + `nn.Linear`, called as `rnn(x)`:
/// no `initial_h` initializer but zeros computed by `Shape → Gather → Unsqueeze → Concat →
/// Expand`, the readout as `MatMul` (weight transposed) + `Add` (bias first), generated names.
#[test]
fn torch_onnx_export_called_without_a_state() {
    parity::<3, 4, 2, Tanh>("torch_forward_i3_h4_o2");
    parity::<2, 8, 3, Relu>("torch_relu_i2_h8_o3");
    let (model, _) = case("torch_forward_i3_h4_o2");
    assert_eq!(
        model.rnn::<3, 4, Tanh>().expect("loads").initial_state,
        InitialState::Zeros
    );
}

/// The same, called as `rnn(x, h0)`: the initial state is a graph input, the caller's.
#[test]
fn torch_onnx_export_with_a_state_input() {
    parity::<5, 16, 4, Tanh>("torch_h0_input_i5_h16_o4");
    let (model, _) = case("torch_h0_input_i5_h16_o4");
    assert!(matches!(
        model.rnn::<5, 16, Tanh>().expect("loads").initial_state,
        InitialState::Input(_)
    ));
}

/// A reverse RNN (built with `onnx.helper`, with an initial state): each step, taken last to
/// first from onnxruntime's later state, within the per-step budget; the whole sequence
/// through `run_sequence` in the node's output order.
#[test]
fn a_reverse_rnn_runs_its_sequence_last_to_first() {
    let (model, case) = case("helper_reverse_i3_h4_o2");
    let rnn = model.rnn::<3, 4, Tanh>().expect("loads");
    assert!(rnn.reverse);
    let InitialState::Given(h0) = rnn.initial_state else {
        panic!("the fixture's initial state is an initializer");
    };
    let xs = series::<3>(&case["xs"]);
    let hs = series::<4>(&case["hs"]);
    let x_max = xs.iter().map(SVector::amax).fold(1.0_f32, f32::max);
    let budget = rnn.cell.error_budget(x_max, 1.0).per_step;
    for t in (0..xs.len()).rev() {
        let previous = hs.get(t + 1).copied().unwrap_or(h0);
        let gap = (rnn.cell.step(&xs[t], &previous) - hs[t]).amax();
        assert!(gap <= budget, "step {t}: {gap:e} over {budget:e}");
    }
    let mut out = vec![SVector::zeros(); xs.len()];
    rnn.run_sequence(&xs, &h0, &mut out);
    // Free-running, the same steps in the same order: each state is the step of the one
    // after it, to the bit.
    for t in (0..xs.len()).rev() {
        let previous = out.get(t + 1).copied().unwrap_or(h0);
        assert_eq!(out[t], rnn.cell.step(&xs[t], &previous));
    }
}

/// A bidirectional node: each direction's step within the per-step budget of onnxruntime's
/// output, taken from its previous state (the forward one from step `t − 1`, the backward one
/// from step `t + 1`), and the layer's whole run within the drift bound of each direction.
fn bidirectional_parity<const I: usize, const H: usize, const H2: usize>(
    name: &str,
) -> (
    Vec<SVector<f32, H2>>,
    elman::onnx::OnnxBidirectional<I, H, H2, Tanh>,
) {
    let (model, case) = case(name);
    let bi = model.bidirectional::<I, H, H2, Tanh>().expect("loads");
    let xs = series::<I>(&case["xs"]);
    let hs = series::<H2>(&case["hs"]);
    let h0 = match &bi.initial_state {
        InitialState::Given(pair) => *pair,
        InitialState::Zeros => (SVector::zeros(), SVector::zeros()),
        InitialState::Input(name) => panic!("{name}: the fixtures give their state"),
    };
    let half = |v: &SVector<f32, H2>, d: usize| SVector::<f32, H>::from_fn(|j, _| v[d * H + j]);
    let x_max = xs.iter().map(SVector::amax).fold(1.0_f32, f32::max);
    let n = xs.len();
    for (d, cell) in [&bi.layer.forward, &bi.layer.backward]
        .into_iter()
        .enumerate()
    {
        let budget = cell.error_budget(x_max, 1.0).per_step;
        for t in 0..n {
            let previous = match (d, t) {
                (0, 0) => h0.0,
                (0, _) => half(&hs[t - 1], 0),
                (_, t) if t + 1 == n => h0.1,
                (_, t) => half(&hs[t + 1], 1),
            };
            let gap = (cell.step(&xs[t], &previous) - half(&hs[t], d)).amax();
            assert!(
                gap <= budget,
                "{name} direction {d} step {t}: {gap:e} over {budget:e}"
            );
        }
    }
    let mut out = vec![SVector::zeros(); n];
    let h_n = bi.layer.run(&xs, &h0, &mut out);
    assert_eq!(h_n, (half(&out[n - 1], 0), half(&out[0], 1)));
    (out, bi)
}

#[test]
fn a_bidirectional_rnn_built_with_onnx_helper() {
    let (model, _) = case("helper_bidirectional_i3_h4");
    // As one direction's cell it is refused, by name.
    let err = model.rnn::<3, 4, Tanh>().expect_err("bidirectional");
    assert!(
        matches!(&err, OnnxError::Unsupported { what, .. } if what == "attribute direction"),
        "{err:?}"
    );
    bidirectional_parity::<3, 4, 8>("helper_bidirectional_i3_h4");
}

/// `torch.onnx.export` of `nn.RNN(bidirectional=True)` + `nn.Linear(2H, O)`: the output goes
/// through `Transpose` and `Reshape` to `[h_fwd; h_bwd]`, then `MatMul` + `Add`.
#[test]
fn torch_onnx_export_of_a_bidirectional_rnn_with_a_readout() {
    let (model, case) = case("torch_bidirectional_i3_h4_o2");
    let (_, readout) = model
        .bidirectional_network::<3, 4, 8, 2, Tanh>()
        .expect("loads with its readout");
    let (_, _) = bidirectional_parity::<3, 4, 8>("torch_bidirectional_i3_h4_o2");
    check_logits(
        "torch_bidirectional_i3_h4_o2",
        &readout,
        &series::<8>(&case["hs"]),
        &series::<2>(&case["ys"]),
    );
}

#[test]
fn a_gemm_readout() {
    parity::<3, 4, 2, Tanh>("helper_gemm_i3_h4_o2");
}

/// onnxruntime runs no layout-1 (batch-first) RNN; the layout changes only the inputs' and
/// outputs' axes, so the file loads the same model as its layout-0 twin (same weights).
#[test]
fn a_batch_first_layout_loads_the_same_model() {
    let (batch_first, _) = case("helper_layout1_i3_h4_o2");
    let (twin, _) = case("helper_forward_i3_h4_o2");
    let a = batch_first
        .network::<RnnCell<3, 4>, 3, 4, 2>()
        .expect("loads");
    let b = twin.network::<RnnCell<3, 4>, 3, 4, 2>().expect("loads");
    assert_eq!(a.cell(), b.cell());
    assert_eq!(a.readout(), b.readout());
}

/// Direction `d` of one layer (`cell`) against the reference's run of that layer alone: each
/// step from the reference's previous state (the forward direction's from step `t − 1`, the
/// backward one's from step `t + 1`) and with the reference's input to the layer, within the
/// cell's per-step budget. `out[t]` is the layer's output `[h_fwd; h_bwd]` (or `h`) at `t`.
fn check_direction<const I: usize, const H: usize, const H2: usize, A: Activation>(
    name: &str,
    cell: &RnnCell<I, H, A>,
    d: usize,
    xs: &[SVector<f32, I>],
    out: &[SVector<f32, H2>],
    h0: SVector<f32, H>,
) {
    let half = |v: &SVector<f32, H2>| SVector::<f32, H>::from_fn(|j, _| v[d * H + j]);
    let x_max = xs.iter().map(SVector::amax).fold(1.0_f32, f32::max);
    let h_max = out
        .iter()
        .map(SVector::amax)
        .fold(h0.amax().max(1.0), f32::max);
    let budget = cell.error_budget(x_max, h_max).per_step;
    let n = xs.len();
    assert_eq!(out.len(), n, "{name}: one output per input");
    for t in 0..n {
        let previous = match (d, t) {
            (0, 0) => h0,
            (0, _) => half(&out[t - 1]),
            (_, t) if t + 1 == n => h0,
            (_, t) => half(&out[t + 1]),
        };
        let gap = (cell.step(&xs[t], &previous) - half(&out[t])).amax();
        assert!(
            gap <= budget,
            "{name} direction {d} step {t}: {gap:e} over {budget:e}"
        );
    }
}

/// Rows `k·n ..` of the fixture's flattened `h0` (`[layers·dirs, 1, H]`) as states.
fn h0_rows<const H: usize>(case: &Value, first: usize, n: usize) -> Vec<SVector<f32, H>> {
    let flat: Vec<f32> = case["h0"]
        .as_array()
        .expect("h0")
        .iter()
        .map(|v| v.as_f64().expect("a number") as f32)
        .collect();
    flat.chunks_exact(H)
        .skip(first)
        .take(n)
        .map(SVector::from_column_slice)
        .collect()
}

/// `torch.onnx.export` of `nn.RNN(num_layers=2)` + `nn.Linear`: one `RNN` node per layer, the
/// upper reading the lower's output through a `Squeeze`, each layer's zeros computed in the
/// graph. Each layer against PyTorch's run of it alone, the readout against onnxruntime, and
/// the network as those layers stepped in order, to the bit.
#[test]
fn torch_onnx_export_of_two_stacked_layers() {
    let name = "torch_two_layers_i3_h4_o2";
    let (model, case) = case(name);
    let loaded = model.layers::<Stack2<3, 4>, 3, 4>().expect("loads");
    assert_eq!(loaded.initial_state, InitialState::Zeros);
    assert_eq!(loaded.nodes.len(), 2);
    let xs = series::<3>(&case["xs"]);
    let lower = series::<4>(&case["layers"][0]);
    let upper = series::<4>(&case["layers"][1]);
    check_direction(name, &loaded.layers.lower, 0, &xs, &lower, SVector::zeros());
    check_direction(
        name,
        &loaded.layers.upper,
        0,
        &lower,
        &upper,
        SVector::zeros(),
    );
    let mut net: Rnn2<3, 4, 2> = model.network().expect("loads with its readout");
    check_logits(name, net.readout(), &upper, &series::<2>(&case["ys"]));
    let (mut h0, mut h1) = (SVector::zeros(), SVector::zeros());
    for x in &xs {
        h0 = loaded.layers.lower.step(x, &h0);
        h1 = loaded.layers.upper.step(&h0, &h1);
        assert_eq!(net.step(x), net.readout().logits(&h1));
    }
}

/// Three ReLU layers called with a state: each layer's `initial_h` is a `Slice` of the graph
/// input `h0`, the caller's, at the layer's rows.
#[test]
fn torch_onnx_export_of_three_layers_with_a_state_input() {
    let name = "torch_three_layers_relu_h0_i4_h8_o3";
    let (model, case) = case(name);
    let loaded = model.layers::<Stack3<4, 8, Relu>, 4, 8>().expect("loads");
    assert_eq!(loaded.initial_state, InitialState::Input("h0".to_owned()));
    let h0 = h0_rows::<8>(&case, 0, 3);
    let xs = series::<4>(&case["xs"]);
    let outs: Vec<Vec<SVector<f32, 8>>> = (0..3).map(|k| series::<8>(&case["layers"][k])).collect();
    check_direction(name, &loaded.layers.lower.lower, 0, &xs, &outs[0], h0[0]);
    check_direction(
        name,
        &loaded.layers.lower.upper,
        0,
        &outs[0],
        &outs[1],
        h0[1],
    );
    check_direction(name, &loaded.layers.upper, 0, &outs[1], &outs[2], h0[2]);
    let net = model
        .network::<Stack3<4, 8, Relu>, 4, 8, 3>()
        .expect("loads with its readout");
    check_logits(name, net.readout(), &outs[2], &series::<3>(&case["ys"]));
    // The caller's state is not in the file: the network starts from zeros until it is set.
    assert_eq!(
        net.initial_state(),
        &<Stack3<4, 8, Relu> as Layers<4, 8>>::ZERO_STATE
    );
}

/// `torch.onnx.export` of `nn.RNN(bidirectional=True, num_layers=2)`: the upper node reads the
/// lower's `[h_fwd; h_bwd]` through `Transpose` and `Reshape`. Each direction of each layer
/// against PyTorch, the readout against onnxruntime, and the stack as its layers run in turn.
fn bidirectional_stack_parity<const I: usize, const H: usize, const H2: usize, const O: usize>(
    name: &str,
) -> elman::onnx::OnnxBiStack<I, H, H2, 1, Tanh> {
    let (model, case) = case(name);
    let stack = model
        .bidirectional_stack::<I, H, H2, 1, Tanh>()
        .expect("loads");
    let h0 = match &stack.initial_state {
        InitialState::Zeros => BiStates::ZERO,
        InitialState::Input(input) => {
            assert_eq!(input, "h0");
            let rows = h0_rows::<H>(&case, 0, 4);
            BiStates {
                first: (rows[0], rows[1]),
                upper: [(rows[2], rows[3])],
            }
        }
        InitialState::Given(states) => *states,
    };
    let xs = series::<I>(&case["xs"]);
    let lower = series::<H2>(&case["layers"][0]);
    let upper = series::<H2>(&case["layers"][1]);
    let layers = &stack.layers;
    for (d, cell) in [&layers.first.forward, &layers.first.backward]
        .into_iter()
        .enumerate()
    {
        let h0 = if d == 0 { h0.first.0 } else { h0.first.1 };
        check_direction(name, cell, d, &xs, &lower, h0);
    }
    for (d, cell) in [&layers.upper[0].forward, &layers.upper[0].backward]
        .into_iter()
        .enumerate()
    {
        let h0 = if d == 0 { h0.upper[0].0 } else { h0.upper[0].1 };
        check_direction(name, cell, d, &lower, &upper, h0);
    }
    let readout = model.readout::<H2, O>().expect("the readout");
    check_logits(name, &readout, &upper, &series::<O>(&case["ys"]));
    let n = xs.len();
    let (mut scratch, mut out) = (vec![SVector::zeros(); n], vec![SVector::zeros(); n]);
    layers.run(&xs, &h0, &mut scratch, &mut out);
    let (mut first, mut top) = (vec![SVector::zeros(); n], vec![SVector::zeros(); n]);
    layers.first.run(&xs, &h0.first, &mut first);
    layers.upper[0].run(&first, &h0.upper[0], &mut top);
    assert_eq!(out, top);
    stack
}

#[test]
fn torch_onnx_export_of_two_bidirectional_layers() {
    let stack = bidirectional_stack_parity::<3, 4, 8, 2>("torch_bidirectional_two_layers_i3_h4_o2");
    assert_eq!(stack.initial_state, InitialState::Zeros);
    let stack =
        bidirectional_stack_parity::<2, 6, 12, 3>("torch_bidirectional_two_layers_h0_i2_h6_o3");
    assert_eq!(stack.initial_state, InitialState::Input("h0".to_owned()));
}

/// A chain of another number of layers than the type asks for, forward layers from
/// bidirectional nodes, RNNs that are not one chain, an RNN fed by an operator the crate does
/// not run, and a `Transpose` that reorders the output: each refused, naming what.
#[test]
fn graphs_that_are_not_the_stack_asked_for_are_refused() {
    let (two, _) = case("torch_two_layers_i3_h4_o2");
    for err in [
        two.rnn::<3, 4, Tanh>()
            .map(|_| ())
            .expect_err("one layer of two"),
        two.network::<RnnCell<3, 4>, 3, 4, 2>()
            .map(|_| ())
            .expect_err("one layer"),
        two.layers::<Stack3<3, 4>, 3, 4>()
            .map(|_| ())
            .expect_err("three layers"),
    ] {
        assert!(
            matches!(&err, OnnxError::Layers { nodes, .. } if nodes.len() == 2),
            "{err:?}"
        );
        assert!(err.to_string().contains("2 RNN layers"), "{err}");
    }
    let (bi, _) = case("torch_bidirectional_two_layers_i3_h4_o2");
    let err = bi
        .layers::<Stack2<3, 4>, 3, 4>()
        .expect_err("bidirectional as forward");
    assert!(
        matches!(&err, OnnxError::Unsupported { what, .. } if what == "attribute direction"),
        "{err:?}"
    );
    let err = bi
        .bidirectional_stack::<3, 4, 8, 0, Tanh>()
        .expect_err("one of two");
    assert!(
        matches!(&err, OnnxError::Layers { expected: 1, .. }),
        "{err:?}"
    );
    let (stack, _) = case("torch_two_layers_i3_h4_o2");
    let err = stack
        .bidirectional_stack::<3, 4, 8, 1, Tanh>()
        .expect_err("forward as bidirectional");
    assert!(
        matches!(&err, OnnxError::Unsupported { what, .. } if what == "attribute direction"),
        "{err:?}"
    );

    let (two_rnns, case_json) = case("helper_two_rnns_i3_h4");
    assert_eq!(case_json["expect"], "ManyRnns");
    let err = two_rnns.rnn::<3, 4, Tanh>().expect_err("two RNNs");
    assert!(
        matches!(&err, OnnxError::ManyRnns { nodes } if nodes == &["rnn_a", "rnn_b"]),
        "{err:?}"
    );
    let (relu_fed, _) = case("helper_fed_by_relu_i3_h4");
    let err = relu_fed.rnn::<3, 4, Tanh>().expect_err("fed by a Relu");
    assert!(
        matches!(&err, OnnxError::Unsupported { node, what, detail } if node == "rnn0" && what == "input X" && detail.contains("relu0")),
        "{err:?}"
    );
    let (transposed, _) = case("helper_reordering_transpose_i3_h4_o2");
    transposed
        .bidirectional::<3, 4, 8, Tanh>()
        .expect("the layer itself loads");
    let err = transposed.readout::<8, 2>().expect_err("reordered output");
    assert!(
        matches!(&err, OnnxError::Unsupported { what, detail, .. } if what == "output Y" && detail.contains("swap")),
        "{err:?}"
    );
}

/// Two layers built with `onnx.helper` (not by PyTorch): one initializer holds both layers'
/// initial states, which `Slice` nodes cut per layer; each layer against onnxruntime's output
/// for it, and the network starts from those states.
#[test]
fn stacked_layers_from_rows_of_one_initial_state_constant() {
    let name = "helper_two_layers_sliced_h0_i3_h5_o2";
    let (model, case) = case(name);
    let loaded = model.layers::<Stack2<3, 5>, 3, 5>().expect("loads");
    let h0 = h0_rows::<5>(&case, 0, 2);
    assert_eq!(loaded.initial_state, InitialState::Given((h0[0], h0[1])));
    assert_eq!(loaded.nodes, ["layer0", "layer1"]);
    let xs = series::<3>(&case["xs"]);
    let lower = series::<5>(&case["layers"][0]);
    let upper = series::<5>(&case["layers"][1]);
    check_direction(name, &loaded.layers.lower, 0, &xs, &lower, h0[0]);
    check_direction(name, &loaded.layers.upper, 0, &lower, &upper, h0[1]);
    let net: Rnn2<3, 5, 2> = model.network().expect("loads with its readout");
    assert_eq!(net.initial_state(), &(h0[0], h0[1]));
    check_logits(name, net.readout(), &upper, &series::<2>(&case["ys"]));
}

/// `nn.RNN(batch_first=True)`: torch puts a `Transpose` (`perm [1, 0, 2]`) before the RNN and
/// after its squeezed output, which moves no step's values; the model loads and matches.
#[test]
fn torch_onnx_export_of_a_batch_first_rnn() {
    parity::<3, 4, 2, Tanh>("torch_batch_first_i3_h4_o2");
}

/// A classifier of whole sequences, `head(y[-1]).softmax(-1)`: the last step (`Gather` of
/// index −1 on the time axis), a `Gemm` and a `Softmax`. `network` refuses to drop the softmax;
/// `readout_and_head` loads it as [`Head::Softmax`], and the last step's probabilities match
/// onnxruntime's within the logits' bound `δ_z` (both sides' rounding) carried through the
/// softmax: `|∂p_i/∂z_j| ≤ 1/4`, so each probability moves by at most `(O/4)·δ_z` (`δ_z/2`
/// here), plus the two softmaxes' own rounding, `16ε`.
#[test]
fn torch_onnx_export_of_a_last_step_softmax_classifier() {
    let name = "torch_last_step_softmax_i3_h4_o2";
    let (model, case) = case(name);
    let err = model
        .network::<RnnCell<3, 4>, 3, 4, 2>()
        .expect_err("the softmax is not the network's");
    assert!(
        matches!(&err, OnnxError::Unsupported { node, what, .. } if node == "/Softmax" && what == "operator after the readout"),
        "{err:?}"
    );
    assert!(err.to_string().contains("readout_and_head"), "{err}");
    let (readout, head) = model.readout_and_head::<4, 2>().expect("loads");
    assert_eq!(head, Head::Softmax);
    let rnn = model.rnn::<3, 4, Tanh>().expect("loads");
    let xs = series::<3>(&case["xs"]);
    let hs = series::<4>(&case["hs"]);
    check_direction(name, &rnn.cell, 0, &xs, &hs, SVector::zeros());
    let last = hs[hs.len() - 1];
    let probabilities = series::<2>(&Value::Array(vec![case["probabilities"].clone()]))[0];
    let logits_bound = logits_bound(&readout, &last);
    let bound = 0.5 * logits_bound + 16.0 * f32::EPSILON;
    let gap = (head.apply(&readout.logits(&last)) - probabilities).amax();
    assert!(gap <= bound, "{name}: probabilities {gap:e} over {bound:e}");
}

/// A head of two layers (`Linear → ReLU → Linear`): the loader finds the first `Linear` as the
/// readout, and refuses the file rather than drop the rest, naming the `Relu`.
#[test]
fn operators_after_the_readout_are_refused() {
    let (model, case) = case("torch_two_heads_i3_h4_o2");
    assert_eq!(case["expect"], "Unsupported");
    for err in [
        model
            .network::<RnnCell<3, 4>, 3, 4, 2>()
            .map(|_| ())
            .unwrap_err(),
        model.readout_and_head::<4, 2>().map(|_| ()).unwrap_err(),
    ] {
        assert!(
            matches!(&err, OnnxError::Unsupported { node, what, detail } if node == "/Relu" && what == "operator after the readout" && detail.starts_with("Relu")),
            "{err:?}"
        );
    }
}
