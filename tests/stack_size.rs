//! Large models on a small stack: every way to build, load, copy, swap and step a model of
//! (128, 256), a bank of them, a stack of two and a model compiled in as `static`s, each run in a
//! thread with a 512 KiB stack, the smallest that one such cell (385 KiB) fits in with room to
//! spare. A model that passed through the stack by value, as a by-value constructor puts it
//! there (several times over in a debug build), would overflow that stack and abort the test
//! binary. `cargo test` runs them as a debug build; `cargo test --release --test stack_size`
//! as a release one.

#![cfg(feature = "std")]
#![allow(clippy::float_cmp, reason = "copies and loads are exact")]

mod common;

use common::{FAST_TANH_ERROR, TANH_ERROR, hashed, order_tolerance, safetensors_f32};
use elman::keras::KerasModel;
use elman::nalgebra::SVector;
use elman::stack::{Stack, Stack2};
use elman::torch::{LoadError, StateDict};
use elman::{
    Backend, Bank, InPlace, Layers, OnSwap, Readout, Relu, Rnn, Rnn2, RnnBank, RnnCell, Tanh,
    reference,
};

/// The stack of every thread here.
const STACK: usize = 512 * 1024;

/// The sizes: inputs, hidden units, outputs.
const I: usize = 128;
const H: usize = 256;
const O: usize = 10;

/// Runs `f` in a thread with a [`STACK`]-byte stack, passing its panic on.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let thread = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("a thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// `rows × columns` values, row-major, from `salt`.
fn values(rows: usize, columns: usize, salt: usize) -> Vec<f32> {
    (0..rows * columns).map(|k| hashed(k, salt, 0.1)).collect()
}

/// A `StateDict` holding an `nn.RNN(I, H, num_layers = layers)` under `rnn` and an
/// `nn.Linear(H, O)` under `head`; layer `k`'s tensors are [`values`] salted `10·k + 1 ..`.
fn state_dict(layers: usize) -> StateDict {
    let mut tensors = Vec::new();
    for k in 0..layers {
        let inputs = if k == 0 { I } else { H };
        let salt = 10 * k;
        tensors.extend([
            (
                format!("rnn.weight_ih_l{k}"),
                vec![H, inputs],
                values(H, inputs, salt + 1),
            ),
            (
                format!("rnn.weight_hh_l{k}"),
                vec![H, H],
                values(H, H, salt + 2),
            ),
            (format!("rnn.bias_ih_l{k}"), vec![H], values(H, 1, salt + 3)),
            (format!("rnn.bias_hh_l{k}"), vec![H], values(H, 1, salt + 4)),
        ]);
    }
    tensors.push(("head.weight".to_owned(), vec![O, H], values(O, H, 5)));
    tensors.push(("head.bias".to_owned(), vec![O], values(O, 1, 6)));
    StateDict::from_bytes(&safetensors_f32(&tensors)).expect("a valid file")
}

/// A cell and a readout, loaded from [`state_dict`] onto the heap.
fn loaded() -> (Box<RnnCell<I, H>>, Box<Readout<H, O>>) {
    let state = state_dict(1);
    let cell = state.rnn_boxed("rnn").expect("a cell");
    let mut head = Readout::zeroed_box();
    state.readout_into("head", &mut head).expect("a head");
    (cell, head)
}

/// `n` inputs, from `salt`.
fn inputs<const N: usize>(n: usize, salt: usize) -> Vec<SVector<f32, N>> {
    (0..n)
        .map(|t| SVector::from_fn(|k, _| hashed(k, salt + t, 1.0)))
        .collect()
}

/// Asserts that a step of `cell` from `h` on `x` is within rounding of the reference step.
fn near_reference<const N: usize, const M: usize>(
    cell: &RnnCell<N, M>,
    x: &SVector<f32, N>,
    h: &SVector<f32, M>,
    fast: &SVector<f32, M>,
) {
    let slow = reference::step(cell, x, h);
    let tol = order_tolerance(cell, x, h, FAST_TANH_ERROR + TANH_ERROR);
    for j in 0..M {
        let diff = (f64::from(fast[j]) - f64::from(slow[j])).abs();
        assert!(diff <= tol[j], "unit {j}: {} vs {}", fast[j], slow[j]);
    }
}

#[test]
fn built_from_row_major_arrays() {
    on_small_stack(|| {
        let (w_xh, w_hh, b) = (values(H, I, 1), values(H, H, 2), values(H, 1, 3));
        let rows_xh: Vec<[f32; I]> = w_xh.chunks(I).map(|r| r.try_into().unwrap()).collect();
        let rows_hh: Vec<[f32; H]> = w_hh.chunks(H).map(|r| r.try_into().unwrap()).collect();
        let cell = RnnCell::<I, H>::boxed_from_row_major(
            rows_xh.as_slice().try_into().unwrap(),
            rows_hh.as_slice().try_into().unwrap(),
            b.as_slice().try_into().unwrap(),
        );
        for r in 0..H {
            for c in 0..I {
                assert_eq!(cell.w_xh()[(r, c)], w_xh[r * I + c], "W_xh ({r}, {c})");
            }
            for c in 0..H {
                assert_eq!(cell.w_hh()[(r, c)], w_hh[r * H + c], "W_hh ({r}, {c})");
            }
            assert_eq!(cell.bias()[r], b[r]);
        }
        let w_hy = values(O, H, 4);
        let rows_hy: Vec<[f32; H]> = w_hy.chunks(H).map(|r| r.try_into().unwrap()).collect();
        let head = Readout::<H, O>::boxed_from_row_major(
            rows_hy.as_slice().try_into().unwrap(),
            &[0.5; O],
        );
        assert_eq!(head.weight()[(O - 1, 3)], w_hy[(O - 1) * H + 3]);
        assert_eq!(head.bias(), &SVector::<f32, O>::repeat(0.5));
        let (x, h) = (inputs::<I>(1, 7)[0], inputs::<H>(1, 8)[0]);
        near_reference(&cell, &x, &h, &cell.step(&x, &h));
    });
}

#[test]
fn zeroed_models_are_zero() {
    on_small_stack(|| {
        let (x, h) = (
            SVector::<f32, I>::repeat(1.0),
            SVector::<f32, H>::repeat(1.0),
        );
        let cell = RnnCell::<I, H>::zeroed_box();
        assert_eq!(cell.step(&x, &h), SVector::<f32, H>::zeros());
        let mut rnn = Rnn::<I, H, O>::zeroed_box();
        assert_eq!(rnn.step(&x), SVector::<f32, O>::zeros());
        assert_eq!(rnn.state(), &SVector::<f32, H>::zeros());
        let bank = RnnBank::<I, H, 9>::zeroed_box();
        assert!(bank.states().iter().flatten().all(|&v| v == 0.0));
        let net = Stack2::<I, H>::zeroed_box();
        assert_eq!(net.upper.w_hh(), RnnCell::<H, H>::zeroed_box().w_hh());
        let mut net = Rnn2::<I, H, O>::zeroed_box();
        assert_eq!(net.step(&x), SVector::<f32, O>::zeros());
        let bank = Bank::<Stack2<I, H>, I, H, 9>::zeroed_box();
        assert!(bank.output_states().iter().flatten().all(|&v| v == 0.0));
    });
}

#[test]
fn loaded_in_place() {
    on_small_stack(|| {
        let state = state_dict(1);
        let (w_ih, w_hh) = (values(H, I, 1), values(H, H, 2));
        let (b_ih, b_hh) = (values(H, 1, 3), values(H, 1, 4));
        let cell: Box<RnnCell<I, H>> = state.rnn_boxed("rnn").expect("a cell");
        for r in 0..H {
            assert_eq!(cell.w_xh()[(r, I - 1)], w_ih[r * I + I - 1], "row {r}");
            assert_eq!(cell.w_hh()[(r, 1)], w_hh[r * H + 1], "row {r}");
            assert_eq!(cell.bias()[r], b_ih[r] + b_hh[r], "row {r}");
        }
        let mut again = RnnCell::zeroed_box();
        state.rnn_cell_into("rnn", 0, &mut again).expect("a cell");
        assert_eq!(again, cell);
        let mut relu = RnnCell::<I, H, Relu>::zeroed_box();
        state
            .rnn_cell_into("rnn", 0, &mut relu)
            .expect("a relu cell");
        assert_eq!(relu.w_hh(), cell.w_hh());
        let mut head = Readout::<H, O>::zeroed_box();
        state.readout_into("head", &mut head).expect("a head");
        assert_eq!(head.weight()[(2, H - 1)], values(O, H, 5)[2 * H + H - 1]);
        // Two layers are one too many for a cell: nothing is written.
        let mut untouched = RnnCell::<I, H>::zeroed_box();
        let err = state_dict(2).rnn_into("rnn", &mut *untouched).unwrap_err();
        assert!(
            matches!(err, LoadError::ExtraLayer { layer: 1, .. }),
            "{err:?}"
        );
        assert_eq!(untouched.w_hh(), RnnCell::<I, H>::zeroed_box().w_hh());
    });
}

/// The by-value loaders, as the README calls them, in a thread with the 2 MiB stack that
/// `std::thread::spawn` gives: each model (a (128, 256) network is 395 KiB) is loaded on the
/// heap and moved out once. Built by value from its parts, it passed through the stack at every
/// part and move, and overflowed this thread. Each model in a function of its own, so that
/// their frames do not add up.
#[test]
fn loaded_by_value_on_a_spawned_threads_stack() {
    #[inline(never)]
    fn network(cell: &RnnCell<I, H>, head: &Readout<H, O>) {
        let network: Rnn<I, H, O> = state_dict(1).network("rnn", "head").expect("a network");
        assert_eq!(network.cell(), cell);
        assert_eq!(network.readout(), head);
    }
    #[inline(never)]
    fn layers(cell: &RnnCell<I, H>) {
        let alone: RnnCell<I, H> = state_dict(1).rnn("rnn").expect("a cell");
        assert_eq!(&alone, cell);
        let layer: RnnCell<I, H> = state_dict(1).rnn_cell("rnn", 0).expect("a cell");
        assert_eq!(&layer, cell);
    }
    #[inline(never)]
    fn readout(head: &Readout<H, O>) {
        let again: Readout<H, O> = state_dict(1).readout("head").expect("a head");
        assert_eq!(&again, head);
    }
    /// The same model as a Keras `SimpleRNN` + `Dense` export (kernels transposed).
    #[inline(never)]
    fn keras(cell: &RnnCell<I, H>, head: &Readout<H, O>) {
        // Row-major `[rows, columns]` to row-major `[columns, rows]`.
        let transposed = |values: Vec<f32>, rows: usize, columns: usize| -> Vec<f32> {
            (0..rows * columns)
                .map(|n| values[(n % rows) * columns + n / rows])
                .collect()
        };
        let bias: Vec<f32> = (0..H)
            .map(|j| values(H, 1, 3)[j] + values(H, 1, 4)[j])
            .collect();
        let tensors = [
            (
                "rnn/kernel".to_owned(),
                vec![I, H],
                transposed(values(H, I, 1), H, I),
            ),
            (
                "rnn/recurrent_kernel".to_owned(),
                vec![H, H],
                transposed(values(H, H, 2), H, H),
            ),
            ("rnn/bias".to_owned(), vec![H], bias),
            (
                "dense/kernel".to_owned(),
                vec![H, O],
                transposed(values(O, H, 5), O, H),
            ),
            ("dense/bias".to_owned(), vec![O], values(O, 1, 6)),
        ];
        let metadata = [
            ("format", "keras"),
            ("keras_version", "3.15.1"),
            ("rnn.class", "SimpleRNN"),
            ("rnn.activation", "tanh"),
            ("rnn.use_bias", "true"),
            ("rnn.go_backwards", "false"),
            ("rnn.return_sequences", "true"),
            ("rnn.stateful", "false"),
            ("rnn.unroll", "false"),
            ("dense.class", "Dense"),
            ("dense.activation", "linear"),
            ("dense.use_bias", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let bytes = common::safetensors_f32_with(&tensors, Some(metadata.into()));
        let model = KerasModel::from_bytes(&bytes).expect("a Keras export");
        let network = model
            .network::<I, H, O, Tanh>("rnn", "dense")
            .expect("a network");
        // Compared as booleans: a failure would print 400 KiB of weights.
        assert!(network.rnn.readout() == head, "the Dense layer");
        assert!(network.rnn.cell().w_xh() == cell.w_xh(), "the kernel");
        assert!(
            network.rnn.cell().w_hh() == cell.w_hh(),
            "the recurrent kernel"
        );
        // The bias is summed here as the PyTorch loader folds it, the same sum.
        assert!(network.rnn.cell().bias() == cell.bias(), "the bias");
    }
    let thread = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let (cell, head) = loaded();
            network(&cell, &head);
            layers(&cell);
            readout(&head);
            keras(&cell, &head);
        })
        .expect("a thread");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn networks_copied_and_swapped() {
    on_small_stack(|| {
        let (cell, head) = loaded();
        let mut rnn = Rnn::new_boxed(&cell, &head);
        assert_eq!(rnn.cell(), &*cell);
        assert_eq!(rnn.readout(), &*head);
        let xs = inputs::<I>(3, 20);
        for x in &xs {
            rnn.step(x);
        }
        let mut copy = rnn.clone_boxed();
        assert_eq!(copy, rnn);
        let mut other = Rnn::zeroed_box();
        other.copy_from(&rnn);
        assert_eq!(other, rnn);
        assert_eq!(copy.step(&xs[0]), rnn.step(&xs[0]));

        // Swapped in from references: the state kept, or reset to the initial one.
        let zero_cell = RnnCell::zeroed_box();
        let state = *rnn.state();
        rnn.swap_weights_from(&zero_cell, &head, OnSwap::KeepState);
        assert_eq!(rnn.cell(), &*zero_cell);
        assert_eq!(rnn.state(), &state);
        rnn.set_initial_state(SVector::repeat(0.25));
        assert_eq!(rnn.state(), &SVector::<f32, H>::repeat(0.25));
        rnn.swap_weights_from(&cell, &head, OnSwap::Reset);
        assert_eq!(rnn.cell(), &*cell);
        assert_eq!(rnn.state(), &SVector::<f32, H>::repeat(0.25));
    });
}

#[test]
fn every_step_path_on_every_backend() {
    on_small_stack(|| {
        let (cell, head) = loaded();
        let mut rnn = Rnn::new_boxed(&cell, &head);
        // Two hoisted blocks of 8 steps and 3 more.
        let xs = inputs::<I>(19, 30);
        let h0 = inputs::<H>(1, 60)[0];
        for backend in Backend::available() {
            let name = backend.name();
            let mut h = h0;
            for x in &xs {
                let next = cell.step_with(backend, x, &h);
                near_reference(&cell, x, &h, &next);
                h = next;
            }
            assert_eq!(cell.run_with(backend, &xs, &h0), h, "{name}: run");

            rnn.set_backend(backend);
            rnn.set_initial_state(h0);
            let mut stepped = vec![SVector::zeros(); xs.len()];
            for (x, y) in xs.iter().zip(&mut stepped) {
                *y = rnn.step(x);
            }
            assert_eq!(rnn.state(), &h, "{name}: Rnn::step is the cell's step");
            rnn.reset();
            let mut ys = vec![SVector::zeros(); xs.len()];
            rnn.process(&xs, &mut ys);
            let after_process = *rnn.state();
            rnn.reset();
            let last = rnn.process_last(&xs);
            assert_eq!(last, ys.last().copied(), "{name}: process_last");
            assert_eq!(rnn.state(), &after_process, "{name}: process_last's state");
            // The hoisted steps sum in another order: within rounding of the steps (a bound
            // that `tests/realtime.rs` derives; 1e-4 is far above it and far below any error).
            for (t, (a, b)) in ys.iter().zip(&stepped).enumerate() {
                assert!((a - b).amax() < 1e-4, "{name}: process step {t}");
            }
        }
    });
}

/// A bank of `N` streams of the loaded cell on every backend, each stream within rounding of
/// the cell alone, through both input layouts, and its copies.
fn bank<const N: usize>() {
    on_small_stack(|| {
        let (cell, head) = loaded();
        let mut bank = RnnBank::<I, H, N>::new_boxed(&cell);
        let xs: Vec<SVector<f32, I>> = inputs::<I>(N, 40);
        let xs: &[SVector<f32, I>; N] = xs.as_slice().try_into().unwrap();
        let lanes: Vec<[f32; N]> = (0..I).map(|k| core::array::from_fn(|s| xs[s][k])).collect();
        let lanes: &[[f32; N]; I] = lanes.as_slice().try_into().unwrap();
        for backend in Backend::available() {
            bank.set_backend(backend);
            bank.reset();
            bank.step(xs);
            for (s, x) in xs.iter().enumerate() {
                near_reference(&cell, x, &SVector::zeros(), &bank.state(s));
            }
            let mut by_lanes = bank.clone_boxed();
            by_lanes.reset();
            by_lanes.step_unit_major(lanes);
            assert_eq!(by_lanes.states(), bank.states(), "{}", backend.name());
            let mut copy = RnnBank::zeroed_box();
            copy.copy_from(&bank);
            assert_eq!(copy, bank);
            assert_eq!(bank.outputs(&head)[N - 1], head.logits(&bank.state(N - 1)));
        }
    });
}

#[test]
fn bank_of_8() {
    bank::<8>();
}

#[test]
fn bank_of_11() {
    bank::<11>();
}

#[test]
fn two_layer_stack() {
    on_small_stack(|| {
        let state = state_dict(2);
        let net: Box<Stack2<I, H>> = state.rnn_boxed("rnn").expect("two layers");
        let lower: Box<RnnCell<I, H>> = RnnCell::zeroed_box();
        let mut upper: Box<RnnCell<H, H>> = RnnCell::zeroed_box();
        state.rnn_cell_into("rnn", 1, &mut upper).expect("layer 1");
        assert_eq!(net.upper, *upper);
        let mut built: Box<Stack2<I, H>> = Stack::new_boxed(&lower, &upper);
        built.copy_from(&net);
        assert_eq!(built, net);
        let copy = net.clone_boxed();
        let (mut a, mut b) = (Stack2::<I, H>::ZERO_STATE, Stack2::<I, H>::ZERO_STATE);
        let backend = Backend::best();
        let head = Readout::<H, O>::zeroed_box();
        let mut network = Rnn2::new_boxed(&net, &head);
        let mut bank = Bank::<Stack2<I, H>, I, H, 3>::new_boxed(&net);
        let xs = inputs::<I>(3, 50);
        for x in &xs {
            let (h0, h1) = a;
            net.advance(backend, x, &mut a);
            let lower_h = net.lower.step(x, &h0);
            assert_eq!(a.1, net.upper.step(&lower_h, &h1));
            copy.advance(backend, x, &mut b);
            assert_eq!(b, a);
            network.step(x);
            assert_eq!(network.state(), &a);
        }
        // The same network processes the sequence from the start, in one call.
        let mut boxed = network.clone_boxed();
        boxed.reset();
        let mut ys = vec![SVector::<f32, O>::zeros(); xs.len()];
        boxed.process(&xs, &mut ys);
        assert_eq!(boxed.state(), &a);
        // Three streams of the stack, one step each: each layer of each stream is its cell's
        // step, the upper one's from the lower one's new state.
        bank.step(&[xs[0], xs[1], xs[2]]);
        for (s, x) in xs[..3].iter().enumerate() {
            let (h0, h1) = bank.state(s);
            near_reference(&net.lower, x, &SVector::zeros(), &h0);
            near_reference(&net.upper, &h0, &SVector::zeros(), &h1);
        }
    });
}

/// `R × C` values row-major, in `const` context: the arrays a generated source spells out.
const fn rows<const R: usize, const C: usize>(salt: usize) -> [[f32; C]; R] {
    let mut rows = [[0.0; C]; R];
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < C {
            rows[r][c] = hashed(r * C + c, salt, 0.1);
            c += 1;
        }
        r += 1;
    }
    rows
}

static ROWS_XH: [[f32; I]; H] = rows(1);
static ROWS_HH: [[f32; H]; H] = rows(2);
static ROWS_HY: [[f32; H]; O] = rows(4);

/// A (128, 256) model as `rust_statics` writes one: `from_row_major` in a `static`.
static BIG_CELL: RnnCell<I, H> = RnnCell::from_row_major(rows(1), rows(2), rows::<1, H>(3)[0]);
static BIG_HEAD: Readout<H, O> = Readout::from_row_major(rows(4), [0.0; O]);

include!("fixtures/generated/saturating_i64_h128.rs");

#[test]
fn compiled_in_statics() {
    on_small_stack(|| {
        let boxed = RnnCell::<I, H>::boxed_from_row_major(&ROWS_XH, &ROWS_HH, &rows::<1, H>(3)[0]);
        assert_eq!(*boxed, BIG_CELL);
        let head = Readout::<H, O>::boxed_from_row_major(&ROWS_HY, &[0.0; O]);
        assert_eq!(*head, BIG_HEAD);
        let mut rnn = Rnn::new_boxed(&BIG_CELL, &BIG_HEAD);
        let x = inputs::<I>(1, 70)[0];
        rnn.step(&x);
        assert_eq!(rnn.state(), &BIG_CELL.step(&x, &SVector::zeros()));

        // The committed generated source, (64, 128), against the file it came from.
        let state = StateDict::read("tests/fixtures/torch/saturating_i64_h128.safetensors")
            .expect("the fixture");
        let cell: Box<RnnCell<64, 128>> = state.rnn_boxed("rnn").expect("a cell");
        assert_eq!(*cell, LARGE_CELL);
        let mut compiled = Rnn::new_boxed(&LARGE_CELL, &LARGE_HEAD);
        let mut from_file = Rnn::new_boxed(&cell, &LARGE_HEAD);
        for x in &inputs::<64>(5, 80) {
            assert_eq!(compiled.step(x), from_file.step(x));
        }
    });
}
