//! Parity with PyTorch: the committed fixtures hold models and their outputs computed by
//! `torch.nn.RNN` + `torch.nn.Linear` in float32; each model is loaded through the public loader
//! and run on the reference step and on every backend's fast step.
//!
//! Tolerances, derived rather than tuned (see `elman::budget`):
//! - **each step, teacher-forced** (our step from PyTorch's previous state): within the cell's
//!   per-step error budget, `2·γ(I+H+1)·S + δ_fast + δ_ref`: both sides round a sum of
//!   `I + H + 1` terms (`γ·S` each) and evaluate tanh (`δ_fast` = 3.3e-7 for the fast tanh,
//!   `δ_ref` = 2^-23 covering `f32::tanh` and PyTorch's tanh alike);
//! - **the whole sequence, free-running** (our own state carried): each step adds at most the
//!   per-step budget (plus the rounding of two different states) to a difference the recurrence
//!   multiplies by at most `L = ‖W_hh‖∞`: `e_t ≤ ε·(1 + L + … + L^(t−1))`, capped at 2 (tanh
//!   states lie in [−1, 1]);
//! - **logits**, from PyTorch's state: `2·γ(H+1)·S_y` with `S_y = max_o Σ_k |W_hy[o,k]|·|h_k| + |b_o|`;
//! - **probabilities**: a logit error `d` moves each probability by a factor within `e^{±2d}`,
//!   plus 8 roundings on the two sides.
//!
//! Multi-layer fixtures apply the same bounds layer by layer.

#![cfg(feature = "std")]
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "sizes and indices are small; fixtures hold f32 values written as JSON numbers"
)]

mod common;

use common::U;
use elman::nalgebra::{SMatrix, SVector};
use elman::stack::Stack2;
use elman::torch::StateDict;
use elman::{Activation, Backend, Readout, Relu, Rnn2, RnnCell, Tanh, reference, softmax};
use serde_json::Value;

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .expect("an array of rows")
        .iter()
        .map(floats)
        .collect()
}

fn vector<const N: usize>(values: &[f32]) -> SVector<f32, N> {
    assert_eq!(values.len(), N, "fixture length");
    SVector::from_column_slice(values)
}

/// How a step is computed: the reference, or the fast step on a backend.
#[derive(Clone, Copy, Debug)]
enum Path {
    Reference,
    Fast(Backend),
}

fn paths() -> Vec<Path> {
    std::iter::once(Path::Reference)
        .chain(Backend::available().map(Path::Fast))
        .collect()
}

fn step<const I: usize, const H: usize, A: Activation>(
    path: Path,
    cell: &RnnCell<I, H, A>,
    x: &SVector<f32, I>,
    h: &SVector<f32, H>,
) -> SVector<f32, H> {
    match path {
        Path::Reference => reference::step(cell, x, h),
        Path::Fast(backend) => cell.step_with(backend, x, h),
    }
}

/// The free-running bound after `t` steps: `ε·(1 + L + … + L^(t−1))`, capped at `cap`.
fn drift_bound(per_step: f64, contraction: f64, t: usize, cap: f64) -> f64 {
    let mut total = 0.0;
    let mut factor = 1.0;
    for _ in 0..t {
        total += per_step * factor;
        factor *= contraction;
        if total > cap {
            return cap;
        }
    }
    total
}

/// Checks one layer against PyTorch's states for it: teacher-forced per step, then free-running.
/// Returns the worst teacher-forced difference.
fn check_layer<const I: usize, const H: usize, A: Activation>(
    name: &str,
    cell: &RnnCell<I, H, A>,
    xs: &[SVector<f32, I>],
    h0: &SVector<f32, H>,
    hs: &[SVector<f32, H>],
) -> f32 {
    let mut worst = 0.0_f32;
    for path in paths() {
        let mut carried = *h0;
        for (t, (x, expected)) in xs.iter().zip(hs).enumerate() {
            let previous = if t == 0 { h0 } else { &hs[t - 1] };
            let h_max = previous.amax().max(1.0);
            let budget = cell.error_budget(x.amax(), h_max);
            let forced = step(path, cell, x, previous);
            let diff = (forced - expected).amax();
            assert!(
                diff <= budget.per_step,
                "{name} {path:?} step {t}: teacher-forced difference {diff:e} > budget {:e}",
                budget.per_step
            );
            worst = worst.max(diff);

            carried = step(path, cell, x, &carried);
            let sequence_step = f64::from(budget.per_step) * 2.0; // ε plus the reference's rounding of two states
            let cap = if A::NAME == "tanh" {
                2.0
            } else {
                f64::INFINITY
            };
            let bound = drift_bound(sequence_step, f64::from(budget.contraction), t + 1, cap);
            let drift = f64::from((carried - expected).amax());
            assert!(
                drift <= bound,
                "{name} {path:?} step {t}: free-running drift {drift:e} > {bound:e}"
            );
        }
    }
    worst
}

/// Checks the head's logits and probabilities from PyTorch's states. Returns the worst logit
/// difference.
fn check_head<const H: usize, const O: usize>(
    name: &str,
    head: &Readout<H, O>,
    hs: &[SVector<f32, H>],
    ys: &[Vec<f32>],
    probs: &[Vec<f32>],
) -> f32 {
    let mut worst = 0.0_f32;
    for (t, h) in hs.iter().enumerate() {
        let y = head.logits(h);
        let expected = vector::<O>(&ys[t]);
        let s: f64 = (0..O)
            .map(|o| {
                (0..H)
                    .map(|k| f64::from(head.weight()[(o, k)].abs() * h[k].abs()))
                    .sum::<f64>()
                    + f64::from(head.bias()[o].abs())
            })
            .fold(0.0, f64::max);
        let tol = 2.0 * common::gamma(H + 1) * s;
        let d = f64::from((y - expected).amax());
        assert!(
            d <= tol,
            "{name} step {t}: logits differ by {d:e} > {tol:e}"
        );
        worst = worst.max(d as f32);
        let (p, q) = (softmax(&y), vector::<O>(&probs[t]));
        for o in 0..O {
            let pt = f64::from(q[o]);
            let tol = pt * ((2.0 * tol).exp_m1() + 8.0 * U) + f64::from(f32::MIN_POSITIVE);
            assert!(
                (f64::from(p[o]) - pt).abs() <= tol,
                "{name} step {t}: p[{o}] {} vs {}",
                p[o],
                q[o]
            );
        }
    }
    worst
}

/// A one-layer oracle case: weights from the safetensors file if there is one, else written into
/// a safetensors file from the JSON (so the loader reads every case).
fn oracle_case<const I: usize, const H: usize, const O: usize, A: Activation>(json: &str) {
    let case = read_json(json);
    let bytes = match std::fs::read(json.replace(".json", ".safetensors")) {
        Ok(bytes) => bytes,
        Err(_) => common::safetensors_from_case(&case),
    };
    let state = StateDict::from_bytes(&bytes).expect("the fixture loads");
    let cell: RnnCell<I, H, A> = state.rnn_cell_with("rnn", 0).expect("the cell loads");
    let head: Readout<H, O> = state.readout("head").expect("the head loads");
    // The loader read PyTorch's row-major layout: compare with the JSON's rows.
    let w_ih = rows(&case["weight_ih"]);
    assert_eq!(
        cell.w_xh(),
        &SMatrix::<f32, H, I>::from_fn(|r, c| w_ih[r][c])
    );

    let xs: Vec<SVector<f32, I>> = rows(&case["xs"]).iter().map(|r| vector(r)).collect();
    let hs: Vec<SVector<f32, H>> = rows(&case["hs"]).iter().map(|r| vector(r)).collect();
    let h0 = vector::<H>(&floats(&case["h0"]));
    let worst_h = check_layer(json, &cell, &xs, &h0, &hs);
    let worst_y = check_head(json, &head, &hs, &rows(&case["ys"]), &rows(&case["probs"]));
    println!(
        "{json}: worst hidden-state difference {worst_h:e}, worst logit difference {worst_y:e}"
    );
}

#[test]
fn oracle_textbook() {
    oracle_case::<3, 2, 4, Tanh>("tests/fixtures/oracle/textbook_i3_h2_o4_t5.json");
}

#[test]
fn oracle_relu() {
    oracle_case::<3, 2, 4, Relu>("tests/fixtures/oracle/relu_i3_h2_o4_t5.json");
}

#[test]
fn oracle_small_with_initial_state() {
    oracle_case::<8, 16, 5, Tanh>("tests/fixtures/oracle/small_i8_h16_o5_t100_h0.json");
}

/// A series of vectors, one per row.
fn series<const N: usize>(v: &Value) -> Vec<SVector<f32, N>> {
    rows(v).iter().map(|r| vector(r)).collect()
}

/// A fixture exported by `scripts/export_fixtures.py` from real PyTorch.
struct TorchCase {
    name: String,
    case: Value,
    state: StateDict,
}

impl TorchCase {
    fn open(name: &str) -> Self {
        let base = format!("tests/fixtures/torch/{name}");
        let case = read_json(&format!("{base}.json"));
        let state = StateDict::read(format!("{base}.safetensors")).expect("the fixture loads");
        Self {
            name: name.to_owned(),
            case,
            state,
        }
    }

    /// Layer `k`'s initial state and states.
    fn layer<const H: usize>(&self, k: usize) -> (SVector<f32, H>, Vec<SVector<f32, H>>) {
        (
            vector(&floats(&self.case["h0"][k])),
            series(&self.case["hs"][k]),
        )
    }

    fn head<const H: usize, const O: usize>(&self, hs: &[SVector<f32, H>]) -> f32 {
        let head: Readout<H, O> = self.state.readout("head").expect("the head loads");
        check_head(
            &self.name,
            &head,
            hs,
            &rows(&self.case["ys"]),
            &rows(&self.case["probs"]),
        )
    }
}

/// One layer: load it with the state dict's single-cell loader and check it and the head.
fn torch_one_layer<const I: usize, const H: usize, const O: usize, A: Activation>(name: &str) {
    let fixture = TorchCase::open(name);
    let cell: RnnCell<I, H, A> = fixture
        .state
        .rnn::<RnnCell<I, H, A>>("rnn")
        .expect("one layer");
    let xs = series::<I>(&fixture.case["xs"]);
    let (h0, hs) = fixture.layer::<H>(0);
    let worst_h = check_layer(name, &cell, &xs, &h0, &hs);
    let worst_y = fixture.head::<H, O>(&hs);
    println!(
        "{name}: worst hidden-state difference {worst_h:e}, worst logit difference {worst_y:e}"
    );
}

/// `‖W‖∞`, the largest row sum of `|W|`: a Lipschitz constant of `x ↦ W·x` in the max norm.
fn row_norm<const R: usize, const C: usize>(w: &SMatrix<f32, R, C>) -> f64 {
    (0..R)
        .map(|r| (0..C).map(|c| f64::from(w[(r, c)].abs())).sum::<f64>())
        .fold(0.0, f64::max)
}

/// Two layers: load the stack; check each layer on PyTorch's input to it, then the whole
/// network (`nn.RNN(num_layers=2)` + `nn.Linear`, loaded in one call) running free against
/// PyTorch's logits.
///
/// The network's bound is derived layer by layer: layer 0's state drifts as one layer does
/// (`e0_t ≤ 2ε0_t + L0·e0_{t−1}`); layer 1's also carries layer 0's drift through its input
/// weights (`e1_t ≤ 2ε1_t + L1·e1_{t−1} + ‖W1_xh‖∞·e0_t`, the non-linearity being 1-Lipschitz);
/// the logits move by at most `‖W_hy‖∞·e1_t` plus their own rounding (as [`check_head`]).
fn torch_two_layers<const I: usize, const H: usize, const O: usize, A: Activation>(name: &str) {
    let fixture = TorchCase::open(name);
    let layers: Stack2<I, H, A> = fixture.state.rnn("rnn").expect("two layers");
    let xs = series::<I>(&fixture.case["xs"]);
    let (h0_0, hs_0) = fixture.layer::<H>(0);
    let (h0_1, hs_1) = fixture.layer::<H>(1);
    let worst_0 = check_layer(name, &layers.lower, &xs, &h0_0, &hs_0);
    let worst_1 = check_layer(name, &layers.upper, &hs_0, &h0_1, &hs_1);
    let worst_y = fixture.head::<H, O>(&hs_1);

    let mut net: Rnn2<I, H, O, A> = fixture.state.network("rnn", "head").expect("the network");
    assert_eq!(net.layers(), &layers);
    net.set_initial_state((h0_0, h0_1));
    let head = net.readout().clone();
    let torch_ys = rows(&fixture.case["ys"]);
    let (lower, upper) = (&layers.lower, &layers.upper);
    let (k1, k_y) = (row_norm(upper.w_xh()), row_norm(head.weight()));
    let cap = if A::NAME == "tanh" {
        2.0
    } else {
        f64::INFINITY
    };
    let mut worst_network = 0.0_f64;
    for backend in Backend::available() {
        net.set_backend(backend);
        net.reset();
        let mut ys = vec![SVector::<f32, O>::zeros(); xs.len()];
        net.process(&xs, &mut ys);
        let after_process = *net.state();
        net.reset();
        let (mut a, mut b) = (h0_0, h0_1);
        let (mut e0, mut e1) = (0.0_f64, 0.0_f64);
        for (t, x) in xs.iter().enumerate() {
            // The network's step is its layers' steps and its readout, to the bit, and its
            // `process` gives the same bits.
            let y = net.step(x);
            a = lower.step_with(backend, x, &a);
            b = upper.step_with(backend, &a, &b);
            assert_eq!(y, head.logits(&b), "{name} {} step {t}", backend.name());
            assert_eq!(ys[t], y, "{name} {} process, step {t}", backend.name());
            assert_eq!(net.state(), &(a, b));

            // Against PyTorch's logits, free-running.
            let (prev_0, prev_1) = if t == 0 {
                (&h0_0, &h0_1)
            } else {
                (&hs_0[t - 1], &hs_1[t - 1])
            };
            let budget_0 = lower.error_budget(x.amax(), prev_0.amax().max(1.0));
            let budget_1 = upper.error_budget(hs_0[t].amax(), prev_1.amax().max(1.0));
            e0 = (2.0 * f64::from(budget_0.per_step) + f64::from(budget_0.contraction) * e0)
                .min(cap);
            e1 = (2.0 * f64::from(budget_1.per_step)
                + f64::from(budget_1.contraction) * e1
                + k1 * e0)
                .min(cap);
            assert!(
                f64::from((a - hs_0[t]).amax()) <= e0 && f64::from((b - hs_1[t]).amax()) <= e1,
                "{name} {} step {t}: states drift beyond {e0:e} / {e1:e}",
                backend.name()
            );
            let s_y: f64 = (0..O)
                .map(|o| {
                    (0..H)
                        .map(|k| f64::from(head.weight()[(o, k)].abs() * hs_1[t][k].abs()))
                        .sum::<f64>()
                        + f64::from(head.bias()[o].abs())
                })
                .fold(0.0, f64::max);
            let bound = k_y * e1 + 2.0 * common::gamma(H + 1) * s_y;
            let d = f64::from((y - vector::<O>(&torch_ys[t])).amax());
            assert!(
                d <= bound,
                "{name} {} step {t}: logits differ from PyTorch's by {d:e} > {bound:e}",
                backend.name()
            );
            worst_network = worst_network.max(d);
        }
        assert_eq!(net.state(), &after_process, "{name} {}", backend.name());
    }
    println!(
        "{name}: worst hidden-state difference {:e} (layer 0 {worst_0:e}, layer 1 {worst_1:e}), worst logit difference {worst_y:e}, network free-running {worst_network:e}",
        worst_0.max(worst_1)
    );
}

#[test]
fn torch_seed_tanh() {
    torch_one_layer::<3, 2, 4, Tanh>("seed_tanh_i3_h2");
}

#[test]
fn torch_seed_relu() {
    torch_one_layer::<3, 2, 4, Relu>("seed_relu_i3_h2");
}

#[test]
fn torch_no_bias_1000_steps() {
    torch_one_layer::<1, 16, 3, Tanh>("nobias_i1_h16_t1000");
}

#[test]
fn torch_two_tanh_layers() {
    torch_two_layers::<7, 13, 5, Tanh>("two_layers_i7_h13");
}

#[test]
fn torch_relu_two_layers_no_bias() {
    torch_two_layers::<1, 16, 3, Relu>("relu_two_layers_nobias_i1_h16");
}

#[test]
fn torch_saturating_64x128() {
    torch_one_layer::<64, 128, 10, Tanh>("saturating_i64_h128");
}

/// f64, f16 and bf16 tensors load as their values converted to f32.
#[test]
fn torch_dtypes_convert_to_f32() {
    let state = StateDict::read("tests/fixtures/torch/dtypes.safetensors").expect("loads");
    let values = read_json("tests/fixtures/torch/dtypes.json");
    for tag in ["f64", "f16", "bf16"] {
        let cell: RnnCell<3, 2> = state.rnn_cell(&format!("{tag}.rnn"), 0).expect("a cell");
        let head: Readout<2, 4> = state.readout(&format!("{tag}.head")).expect("a head");
        let w_ih = rows(&values[format!("{tag}.rnn.weight_ih_l0")]);
        let w_hh = rows(&values[format!("{tag}.rnn.weight_hh_l0")]);
        let b_ih = floats(&values[format!("{tag}.rnn.bias_ih_l0")]);
        let b_hh = floats(&values[format!("{tag}.rnn.bias_hh_l0")]);
        let w_hy = rows(&values[format!("{tag}.head.weight")]);
        assert_eq!(
            cell.w_xh(),
            &SMatrix::<f32, 2, 3>::from_fn(|r, c| w_ih[r][c]),
            "{tag}"
        );
        assert_eq!(
            cell.w_hh(),
            &SMatrix::<f32, 2, 2>::from_fn(|r, c| w_hh[r][c]),
            "{tag}"
        );
        assert_eq!(
            cell.bias(),
            &SVector::<f32, 2>::from_fn(|r, _| b_ih[r] + b_hh[r]),
            "{tag}"
        );
        assert_eq!(
            head.weight(),
            &SMatrix::<f32, 4, 2>::from_fn(|r, c| w_hy[r][c]),
            "{tag}"
        );
    }
}
