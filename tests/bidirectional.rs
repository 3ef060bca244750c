//! Reverse and bidirectional layers: parity with PyTorch's `nn.RNN(bidirectional=True)` on the
//! fixtures `scripts/export_fixtures.py` exported (`tests/fixtures/torch/bi_*`), the bits of the
//! passes against the step, the stack against its layers, the flush on entry, the loader's
//! strictness and the absence of allocation.
//!
//! Tolerances against PyTorch, derived as `tests/parity.rs` derives them (see its header and
//! `elman::budget`), for each direction of each layer:
//! - **each step, teacher-forced** (our step from PyTorch's previous state of that direction, on
//!   PyTorch's input to the layer): within the cell's per-step budget `ε_t`;
//! - **free-running** (our own states and, above layer 0, our own inputs): the drift of a
//!   direction grows as `e_t ≤ 2ε_t + L·e_prev + ‖W_xh‖∞·d_t`, with `e_prev` the drift at the
//!   step the direction read before (`t − 1` forward, `t + 1` backward), `L = ‖W_hh‖∞` and `d_t`
//!   the drift of the layer's input at step `t` (0 for layer 0; the larger of the two halves'
//!   drifts of the layer below otherwise), capped at 2 for tanh;
//! - **logits**: `‖W_hy‖∞·e_t` plus the readout's own rounding, `2·γ(2H+1)·S_y`.

#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    reason = "sizes and indices are small; fixtures hold f32 values written as JSON numbers"
)]
#![allow(clippy::float_cmp, reason = "loads and passes are compared to the bit")]

mod common;

use elman::bidirectional::{BiStack, BiStack2, BiStates, Bidirectional, Pair, read_out};
use elman::nalgebra::{SMatrix, SVector};
use elman::{Backend, FLUSH_BELOW, Readout, RnnCell};

/// The forward and backward halves of a bidirectional output.
fn halves<const H: usize, const H2: usize>(v: &SVector<f32, H2>) -> Pair<H> {
    (v.fixed_rows::<H>(0).into(), v.fixed_rows::<H>(H).into())
}

/// Whether a cell's passes hoist the input projections (as `src/layers.rs` decides: 8 inputs or
/// more and weights above 32 KiB); the others give the step's bits.
const fn hoisted(i: usize, h: usize) -> bool {
    i >= 8 && h * (i + h) * 4 > 32 * 1024
}

/// A cell with weights and a bias from a small formula (no randomness needed).
fn cell<const I: usize, const H: usize>(seed: usize) -> RnnCell<I, H> {
    RnnCell::new(
        SMatrix::from_fn(|r, c| ((r * 7 + c * 3 + seed) % 11) as f32 * 0.05 - 0.25),
        SMatrix::from_fn(|r, c| ((r * 5 + c * 2 + seed) % 13) as f32 * 0.03 - 0.18),
        SVector::from_fn(|r, _| ((r + seed) % 5) as f32 * 0.1 - 0.2),
    )
}

fn inputs<const I: usize>(n: usize) -> Vec<SVector<f32, I>> {
    (0..n)
        .map(|t| SVector::from_fn(|k, _| ((t * 3 + k * 5) % 17) as f32 / 8.0 - 1.0))
        .collect()
}

/// The reverse pass is the forward pass over the inputs reversed, to the bit, on every
/// backend, at every length around the 8-step blocks it runs in, hoisted or not; its states
/// land at their inputs' indices.
fn reverse_is_forward_reversed<const I: usize, const H: usize>() {
    let cell = cell::<I, H>(1);
    let h0 = SVector::from_fn(|j, _| (j as f32 * 0.37).sin() * 0.5);
    for n in [0, 1, 7, 8, 9, 16, 17, 30] {
        let xs = inputs::<I>(n);
        let reversed: Vec<_> = xs.iter().rev().copied().collect();
        for backend in Backend::available() {
            let mut states = vec![SVector::zeros(); n];
            let mut forward = vec![SVector::zeros(); n];
            let last = cell.states_reverse_with(backend, &xs, &h0, &mut states);
            let expected = cell.states_with(backend, &reversed, &h0, &mut forward);
            assert_eq!(last, expected, "({I}, {H}) n = {n} {}", backend.name());
            assert_eq!(cell.run_reverse_with(backend, &xs, &h0), expected);
            forward.reverse();
            assert_eq!(states, forward, "({I}, {H}) n = {n} {}", backend.name());
            if !hoisted(I, H) {
                assert_eq!(expected, cell.run_with(backend, &reversed, &h0));
            }
        }
        assert_eq!(
            cell.run_reverse(&xs, &h0),
            cell.run_reverse_with(Backend::best(), &xs, &h0)
        );
    }
}

#[test]
fn reverse_passes_are_forward_passes_reversed() {
    reverse_is_forward_reversed::<1, 2>();
    reverse_is_forward_reversed::<3, 13>();
    reverse_is_forward_reversed::<8, 40>();
    // Hoisted: 32 inputs, 80 units (35 KiB of weights).
    assert!(hoisted(32, 80));
    reverse_is_forward_reversed::<32, 80>();
}

/// A layer's halves are its two cells' passes; slices of other lengths run the shorter.
#[test]
fn a_layer_is_its_two_passes() {
    let layer: Bidirectional<3, 5, 10> = Bidirectional::new(cell(2), cell(3));
    let h0 = (SVector::from_element(0.25), SVector::from_element(-0.5));
    let xs = inputs::<3>(21);
    for backend in Backend::available() {
        let mut out = vec![SVector::zeros(); 21];
        let (f, b) = layer.run_with(backend, &xs, &h0, &mut out);
        let (mut forward, mut backward) = (vec![SVector::zeros(); 21], vec![SVector::zeros(); 21]);
        assert_eq!(
            f,
            layer.forward.states_with(backend, &xs, &h0.0, &mut forward)
        );
        assert_eq!(
            b,
            layer
                .backward
                .states_reverse_with(backend, &xs, &h0.1, &mut backward)
        );
        for (t, o) in out.iter().enumerate() {
            assert_eq!(halves::<5, 10>(o), (forward[t], backward[t]), "step {t}");
        }
        // A shorter output: the first 9 inputs, as if the sequence ended there.
        let mut short = vec![SVector::zeros(); 9];
        let (f, b) = layer.run_with(backend, &xs, &h0, &mut short);
        let mut expected = vec![SVector::zeros(); 9];
        assert_eq!(
            (f, b),
            layer.run_with(backend, &xs[..9], &h0, &mut expected)
        );
        assert_eq!(short, expected);
        // No input: the initial states, nothing written.
        let mut untouched = vec![SVector::from_element(7.0); 3];
        assert_eq!(layer.run_with(backend, &[], &h0, &mut untouched), h0);
        assert_eq!(untouched, vec![SVector::<f32, 10>::from_element(7.0); 3]);
    }
}

/// Three layers (an even number above the first): the ping-pong between the output and the
/// scratch still ends in the output, and each layer reads the one below.
#[test]
fn three_layers_are_their_layers() {
    let first: Bidirectional<2, 3, 6> = Bidirectional::new(cell(4), cell(5));
    let second: Bidirectional<6, 3, 6> = Bidirectional::new(cell(6), cell(7));
    let third: Bidirectional<6, 3, 6> = Bidirectional::new(cell(8), cell(9));
    let stack: elman::bidirectional::BiStack3<2, 3, 6> =
        BiStack::new(first.clone(), [second.clone(), third.clone()]);
    let xs = inputs::<2>(12);
    let mut h0 = BiStates::<3, 2>::ZERO;
    h0.upper[1].1 = SVector::from_element(0.5);
    let (mut out, mut scratch) = (vec![SVector::zeros(); 12], vec![SVector::zeros(); 12]);
    let h_n = stack.run(&xs, &h0, &mut scratch, &mut out);
    let (mut a, mut b, mut c) = (
        vec![SVector::zeros(); 12],
        vec![SVector::zeros(); 12],
        vec![SVector::zeros(); 12],
    );
    let expected = BiStates {
        first: first.run(&xs, &h0.first, &mut a),
        upper: [
            second.run(&a, &h0.upper[0], &mut b),
            third.run(&b, &h0.upper[1], &mut c),
        ],
    };
    assert_eq!(out, c);
    assert_eq!(h_n, expected);
    assert_eq!(h_n.iter().count(), 6);
    assert_eq!(h_n.iter().nth(5), Some(&expected.upper[1].1));
    assert!(h_n.layer(3).is_none());
    // A scratch shorter than the output: the shorter sequence.
    let mut short_scratch = vec![SVector::zeros(); 5];
    let short = stack.run(&xs, &h0, &mut short_scratch, &mut out);
    assert_eq!(short, stack.run(&xs[..5], &h0, &mut scratch, &mut out));
    // Two layers through the alias.
    let two: BiStack2<2, 3, 6> = BiStack::new(first, [second]);
    let _ = two.run(&xs, &BiStates::ZERO, &mut scratch, &mut out);
    assert_eq!(out, b_from(&two, &xs));
}

/// The two-layer stack's output, layer by layer.
fn b_from(stack: &BiStack2<2, 3, 6>, xs: &[SVector<f32, 2>]) -> Vec<SVector<f32, 6>> {
    let mut a = vec![SVector::zeros(); xs.len()];
    let mut b = vec![SVector::zeros(); xs.len()];
    let _ = stack.first.run(xs, &BiStates::<3, 1>::ZERO.first, &mut a);
    let _ = stack.upper[0].run(&a, &BiStates::<3, 1>::ZERO.first, &mut b);
    b
}

/// The initial states are flushed on entry: values below `FLUSH_BELOW` run as +0, to the bit,
/// in both directions, in the stack, and in the reverse pass of a cell alone.
#[test]
fn initial_states_are_flushed_on_entry() {
    let layer: Bidirectional<3, 5, 10> = Bidirectional::new(cell(2), cell(3));
    let tiny = SVector::from_fn(|j, _| {
        if j % 2 == 0 {
            FLUSH_BELOW / 4.0
        } else {
            -FLUSH_BELOW / 3.0
        }
    });
    let xs = inputs::<3>(11);
    for backend in Backend::available() {
        let (mut a, mut b) = (vec![SVector::zeros(); 11], vec![SVector::zeros(); 11]);
        let from_tiny = layer.run_with(backend, &xs, &(tiny, tiny), &mut a);
        let from_zero = layer.run_with(backend, &xs, &(SVector::zeros(), SVector::zeros()), &mut b);
        assert_eq!(from_tiny, from_zero);
        assert_eq!(a, b);
        // No input: the states come back flushed.
        assert_eq!(
            layer.run_with(backend, &[], &(tiny, tiny), &mut a),
            (SVector::zeros(), SVector::zeros())
        );
        assert_eq!(
            layer.backward.run_reverse_with(backend, &[], &tiny),
            SVector::<f32, 5>::zeros()
        );
        assert_eq!(
            layer.backward.run_reverse_with(backend, &xs, &tiny),
            layer
                .backward
                .run_reverse_with(backend, &xs, &SVector::zeros())
        );
    }
}

/// Nothing allocates: the layer, the stack, the cell's passes and the readout over a sequence.
#[test]
fn runs_without_allocating() {
    let layer: Bidirectional<3, 5, 10> = Bidirectional::new(cell(2), cell(3));
    let stack: BiStack2<3, 5, 10> =
        BiStack::new(layer.clone(), [Bidirectional::new(cell(4), cell(5))]);
    let big: Bidirectional<32, 80, 160> = Bidirectional::new(cell(1), cell(2));
    let head: Readout<10, 2> = Readout::new(SMatrix::from_element(0.1), SVector::zeros());
    let xs = [SVector::<f32, 3>::from_element(0.5); 19];
    let big_xs = [SVector::<f32, 32>::from_element(0.5); 19];
    let (mut out, mut scratch, mut ys) = (
        [SVector::zeros(); 19],
        [SVector::zeros(); 19],
        [SVector::zeros(); 19],
    );
    let mut big_out = Box::new([SVector::<f32, 160>::zeros(); 19]);
    let mut states = [SVector::<f32, 5>::zeros(); 19];
    let _ = layer.run(&xs, &(SVector::zeros(), SVector::zeros()), &mut out);
    let info = allocation_counter::measure(|| {
        for backend in Backend::available() {
            let h = layer.run_with(
                backend,
                &xs,
                &(SVector::zeros(), SVector::zeros()),
                &mut out,
            );
            let h_n = stack.run_with(backend, &xs, &BiStates::ZERO, &mut scratch, &mut out);
            let _ = big.run_with(
                backend,
                &big_xs,
                &(SVector::zeros(), SVector::zeros()),
                &mut *big_out,
            );
            let _ = layer
                .forward
                .states_reverse_with(backend, &xs, &h.1, &mut states);
            let _ = layer
                .forward
                .states_with(backend, &xs, &h_n.first.0, &mut states);
            std::hint::black_box(layer.backward.run_reverse_with(backend, &xs, &h.0));
        }
        read_out(&head, &out, &mut ys);
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    std::hint::black_box((out, ys, states));
}

/// Parity with PyTorch and the loader (feature `std`: safetensors and the fixtures).
#[cfg(feature = "std")]
mod torch {
    use super::{common, halves, hoisted};
    use elman::bidirectional::{BiStack, BiStack2, BiStates, Bidirectional, Pair, read_out};
    use elman::nalgebra::{SMatrix, SVector};
    use elman::torch::{Layer, LoadError, StateDict};
    use elman::{Activation, Backend, Readout, Relu, RnnCell, Tanh, reference};
    use serde_json::Value;

    fn read_json(path: &str) -> Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn series<const N: usize>(v: &Value) -> Vec<SVector<f32, N>> {
        v.as_array()
            .expect("an array of rows")
            .iter()
            .map(|row| {
                let values: Vec<f32> = row
                    .as_array()
                    .expect("a row")
                    .iter()
                    .map(|x| x.as_f64().expect("a number") as f32)
                    .collect();
                assert_eq!(values.len(), N, "fixture row length");
                SVector::from_column_slice(&values)
            })
            .collect()
    }

    /// `‖W‖∞`, the largest row sum of `|W|`.
    fn row_norm<const R: usize, const C: usize>(w: &SMatrix<f32, R, C>) -> f64 {
        (0..R)
            .map(|r| (0..C).map(|c| f64::from(w[(r, c)].abs())).sum::<f64>())
            .fold(0.0, f64::max)
    }

    /// One direction of one layer against PyTorch: teacher-forced per step (reference and fast
    /// step), then our free-running states `ours` within the drift bound. Returns the bound at each
    /// step and the worst teacher-forced difference.
    #[allow(
        clippy::too_many_arguments,
        reason = "one direction's inputs, states and PyTorch's"
    )]
    fn check_direction<const I: usize, const H: usize, A: Activation>(
        what: &str,
        backend: Backend,
        cell: &RnnCell<I, H, A>,
        torch_inputs: &[SVector<f32, I>],
        input_drift: &[f64],
        h0: &SVector<f32, H>,
        torch: &[SVector<f32, H>],
        ours: &[SVector<f32, H>],
        reverse: bool,
    ) -> (Vec<f64>, f32) {
        let n = torch.len();
        let k_xh = row_norm(cell.w_xh());
        let cap = if A::NAME == "tanh" {
            2.0
        } else {
            f64::INFINITY
        };
        let order: Vec<usize> = if reverse {
            (0..n).rev().collect()
        } else {
            (0..n).collect()
        };
        let mut bounds = vec![0.0; n];
        let (mut e, mut worst) = (0.0_f64, 0.0_f32);
        for (i, &t) in order.iter().enumerate() {
            let previous = if i == 0 { h0 } else { &torch[order[i - 1]] };
            let x = &torch_inputs[t];
            let budget = cell.error_budget(x.amax(), previous.amax().max(1.0));
            for (path, forced) in [
                ("reference", reference::step(cell, x, previous)),
                ("fast", cell.step_with(backend, x, previous)),
            ] {
                let diff = (forced - torch[t]).amax();
                assert!(
                    diff <= budget.per_step,
                    "{what} {path} step {t}: teacher-forced difference {diff:e} > {:e}",
                    budget.per_step
                );
                worst = worst.max(diff);
            }
            e = (2.0 * f64::from(budget.per_step)
                + f64::from(budget.contraction) * e
                + k_xh * input_drift[t])
                .min(cap);
            let drift = f64::from((ours[t] - torch[t]).amax());
            assert!(
                drift <= e,
                "{what} step {t}: free-running drift {drift:e} > {e:e}"
            );
            bounds[t] = e;
        }
        (bounds, worst)
    }

    /// One bidirectional layer against PyTorch: both directions (see [`check_direction`]), and the
    /// outputs in exactly the states of the step called in a loop where the layer does not hoist.
    /// Returns the drift bound of the layer's output at each step.
    #[allow(
        clippy::too_many_arguments,
        reason = "one layer's inputs, states and PyTorch's"
    )]
    fn check_bidirectional<const I: usize, const H: usize, const H2: usize, A: Activation>(
        what: &str,
        backend: Backend,
        layer: &Bidirectional<I, H, H2, A>,
        (inputs, torch_inputs): (&[SVector<f32, I>], &[SVector<f32, I>]),
        input_drift: &[f64],
        h0: &Pair<H>,
        torch: &[SVector<f32, H2>],
        ours: &[SVector<f32, H2>],
    ) -> Vec<f64> {
        let (torch_f, torch_b): (Vec<_>, Vec<_>) = torch.iter().map(halves::<H, H2>).unzip();
        let (ours_f, ours_b): (Vec<_>, Vec<_>) = ours.iter().map(halves::<H, H2>).unzip();
        if !hoisted(I, H) {
            let mut h = h0.0;
            for (x, f) in inputs.iter().zip(&ours_f) {
                h = layer.forward.step_with(backend, x, &h);
                assert_eq!(&h, f, "{what}: the forward pass is the step's");
            }
            let mut h = h0.1;
            for (x, b) in inputs.iter().zip(&ours_b).rev() {
                h = layer.backward.step_with(backend, x, &h);
                assert_eq!(&h, b, "{what}: the backward pass is the step's");
            }
        }
        let (forward, worst_f) = check_direction(
            &format!("{what} forward"),
            backend,
            &layer.forward,
            torch_inputs,
            input_drift,
            &h0.0,
            &torch_f,
            &ours_f,
            false,
        );
        let (backward, worst_b) = check_direction(
            &format!("{what} backward"),
            backend,
            &layer.backward,
            torch_inputs,
            input_drift,
            &h0.1,
            &torch_b,
            &ours_b,
            true,
        );
        println!(
            "{what}: worst teacher-forced difference {:e}, final drift bounds {:e} / {:e}",
            worst_f.max(worst_b),
            forward.last().copied().unwrap_or(0.0),
            backward.first().copied().unwrap_or(0.0)
        );
        forward
            .iter()
            .zip(&backward)
            .map(|(f, b)| f.max(*b))
            .collect()
    }

    /// A bidirectional fixture: its JSON and its state dict.
    struct Fixture {
        case: Value,
        state: StateDict,
    }

    impl Fixture {
        fn open(name: &str) -> Self {
            let base = format!("tests/fixtures/torch/{name}");
            Self {
                case: read_json(&format!("{base}.json")),
                state: StateDict::read(format!("{base}.safetensors")).expect("the fixture loads"),
            }
        }

        /// PyTorch's states `h0` or `h_n` of layer `k`, both directions.
        fn pair<const H: usize>(&self, key: &str, k: usize) -> Pair<H> {
            let states = series::<H>(&self.case[key]);
            (states[2 * k], states[2 * k + 1])
        }

        fn states<const H: usize, const U: usize>(&self, key: &str) -> BiStates<H, U> {
            BiStates {
                first: self.pair(key, 0),
                upper: std::array::from_fn(|k| self.pair(key, k + 1)),
            }
        }
    }

    /// A fixture of `U + 1` bidirectional layers: loaded in one call, run on every backend, each
    /// layer checked against PyTorch's states on PyTorch's inputs and on its own (the stack's), the
    /// stack against its layers run one by one, `h_n`, and the head's logits.
    fn torch_case<
        const I: usize,
        const H: usize,
        const H2: usize,
        const U: usize,
        const O: usize,
        A,
    >(
        name: &str,
    ) where
        A: Activation,
    {
        let fixture = Fixture::open(name);
        let stack: BiStack<I, H, H2, U, A> = fixture.state.bidirectional("rnn").expect("the stack");
        let head: Readout<H2, O> = fixture.state.readout("head").expect("the head");
        let xs = series::<I>(&fixture.case["xs"]);
        let torch: Vec<Vec<SVector<f32, H2>>> = (0..=U)
            .map(|k| series::<H2>(&fixture.case["hs"][k]))
            .collect();
        let torch_ys = series::<O>(&fixture.case["ys"]);
        let h0: BiStates<H, U> = fixture.states("h0");
        let torch_h_n: BiStates<H, U> = fixture.states("h_n");
        // PyTorch's h_n is each direction's state after its last step.
        let last = xs.len() - 1;
        for (k, torch_k) in torch.iter().enumerate() {
            let &(f, b) = torch_h_n.layer(k).expect("a layer");
            assert_eq!((f, b), (halves(&torch_k[last]).0, halves(&torch_k[0]).1));
        }
        let t = xs.len();
        let zero = vec![0.0; t];
        for backend in Backend::available() {
            let what = |k: usize| format!("{name} {} layer {k}", backend.name());
            let (mut out, mut scratch) = (vec![SVector::zeros(); t], vec![SVector::zeros(); t]);
            let h_n = stack.run_with(backend, &xs, &h0, &mut scratch, &mut out);

            // Layer by layer, each on the outputs of ours below; the stack gives the same bits.
            let mut ours = vec![vec![SVector::<f32, H2>::zeros(); t]; U + 1];
            let first = stack.first.run_with(backend, &xs, &h0.first, &mut ours[0]);
            assert_eq!(h_n.first, first, "{}", what(0));
            let mut drift = check_bidirectional(
                &what(0),
                backend,
                &stack.first,
                (&xs, &xs),
                &zero,
                &h0.first,
                &torch[0],
                &ours[0],
            );
            for (k, layer) in stack.upper.iter().enumerate() {
                let (below, above) = ours.split_at_mut(k + 1);
                let states = layer.run_with(backend, &below[k], &h0.upper[k], &mut above[0]);
                assert_eq!(h_n.upper[k], states, "{}", what(k + 1));
                drift = check_bidirectional(
                    &what(k + 1),
                    backend,
                    layer,
                    (&below[k], &torch[k]),
                    &drift,
                    &h0.upper[k],
                    &torch[k + 1],
                    &above[0],
                );
                // The layer alone on PyTorch's inputs to it, free-running within the bound of
                // exact inputs.
                let mut alone = vec![SVector::zeros(); t];
                let _ = layer.run_with(backend, &torch[k], &h0.upper[k], &mut alone);
                let _ = check_bidirectional(
                    &format!("{} on PyTorch's inputs", what(k + 1)),
                    backend,
                    layer,
                    (&torch[k], &torch[k]),
                    &zero,
                    &h0.upper[k],
                    &torch[k + 1],
                    &alone,
                );
            }
            assert_eq!(
                out,
                ours[U],
                "{name} {}: the stack is its layers",
                backend.name()
            );
            let top = torch_h_n.layer(U).expect("the top layer");
            let ours_top = h_n.layer(U).expect("the top layer");
            assert_eq!(ours_top.0, halves::<H, H2>(&out[last]).0);
            assert_eq!(ours_top.1, halves::<H, H2>(&out[0]).1);
            let e_n = drift[last].max(drift[0]);
            let d_n = (ours_top.0 - top.0).amax().max((ours_top.1 - top.1).amax());
            assert!(f64::from(d_n) <= e_n, "{name}: h_n {d_n:e} > {e_n:e}");

            // The head on our outputs against PyTorch's logits.
            let mut ys = vec![SVector::<f32, O>::zeros(); t];
            read_out(&head, &out, &mut ys);
            let k_y = row_norm(head.weight());
            let mut worst = 0.0_f64;
            for (step, ((y, expected), h)) in ys.iter().zip(&torch_ys).zip(&torch[U]).enumerate() {
                assert_eq!(y, &head.logits(&out[step]));
                let s_y = (0..O)
                    .map(|o| {
                        (0..H2)
                            .map(|j| f64::from(head.weight()[(o, j)].abs() * h[j].abs()))
                            .sum::<f64>()
                            + f64::from(head.bias()[o].abs())
                    })
                    .fold(0.0, f64::max);
                let bound = k_y * drift[step] + 2.0 * common::gamma(H2 + 1) * s_y;
                let d = f64::from((y - expected).amax());
                assert!(d <= bound, "{name} step {step}: logits {d:e} > {bound:e}");
                worst = worst.max(d);
            }
            println!(
                "{name} {}: worst logit difference {worst:e}",
                backend.name()
            );
        }
    }

    #[test]
    fn torch_one_tanh_layer() {
        torch_case::<3, 4, 8, 0, 3, Tanh>("bi_tanh_i3_h4");
        // One layer loads as a `Bidirectional` too, the same weights.
        let fixture = Fixture::open("bi_tanh_i3_h4");
        let stack: BiStack<3, 4, 8, 0> = fixture.state.bidirectional("rnn").unwrap();
        let layer: Bidirectional<3, 4, 8> = fixture.state.bidirectional("rnn").unwrap();
        assert_eq!(stack.first, layer);
    }

    #[test]
    fn torch_one_relu_layer_without_biases() {
        torch_case::<2, 5, 10, 0, 3, Relu>("bi_relu_nobias_i2_h5");
    }

    #[test]
    fn torch_two_tanh_layers() {
        torch_case::<4, 6, 12, 1, 3, Tanh>("bi_two_layers_i4_h6");
    }

    #[test]
    fn torch_two_relu_layers_without_biases() {
        torch_case::<1, 8, 16, 1, 2, Relu>("bi_relu_two_layers_nobias_i1_h8");
    }

    #[test]
    fn torch_two_layers_1000_steps() {
        torch_case::<1, 3, 6, 1, 2, Tanh>("bi_two_layers_i1_h3_t1000");
    }

    /// The upper layer (128 inputs, 64 units) hoists its input projections in both directions.
    ///
    /// Run on a thread of 16 MiB: the model (135 KiB) is built by value (`Default`, then loaded in
    /// place), and a debug build copies it through several frames on the way, more than the
    /// test threads' 2 MiB hold.
    #[test]
    fn torch_two_hoisting_layers() {
        assert!(hoisted(128, 64) && !hoisted(8, 64));
        let thread = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(|| torch_case::<8, 64, 128, 1, 4, Tanh>("bi_two_layers_i8_h64_t20"))
            .expect("a thread");
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }

    /// A tiny state dict: `layers` bidirectional layers of 1 input and 1 unit, every weight 0.5,
    /// `extra` further names.
    fn bidirectional_file(layers: usize, reverse: bool, extra: &[&str]) -> Vec<u8> {
        let mut tensors = Vec::new();
        for k in 0..layers {
            for suffix in if reverse {
                &["", "_reverse"][..]
            } else {
                &[""][..]
            } {
                for what in ["weight_ih", "weight_hh"] {
                    let columns = if k == 0 { 1 } else { 2 };
                    let shape = if what == "weight_ih" {
                        vec![1, columns]
                    } else {
                        vec![1, 1]
                    };
                    let count = shape.iter().product();
                    tensors.push((format!("rnn.{what}_l{k}{suffix}"), shape, vec![0.5; count]));
                }
            }
        }
        for name in extra {
            tensors.push(((*name).to_owned(), vec![1, 1], vec![0.5]));
        }
        common::safetensors_f32(&tensors)
    }

    fn unused(err: &LoadError) -> Vec<String> {
        match err {
            LoadError::Unused { names, .. } => names.clone(),
            other => panic!("expected Unused, got {other:?}"),
        }
    }

    /// Loading stays strict: a bidirectional file is not a forward model, a forward file is not a
    /// bidirectional one, and a further layer or a stray tensor is named.
    #[test]
    fn the_loader_is_strict() {
        let one = StateDict::from_bytes(&bidirectional_file(1, true, &[])).unwrap();
        let layer: Bidirectional<1, 1, 2> = one.bidirectional("rnn").expect("one layer");
        assert_eq!(layer.backward.w_xh()[(0, 0)], 0.5);
        // As a forward model: the reverse halves are named, and the message says how to load them.
        let err = one.rnn::<RnnCell<1, 1>>("rnn").unwrap_err();
        assert_eq!(
            unused(&err),
            ["rnn.weight_hh_l0_reverse", "rnn.weight_ih_l0_reverse"]
        );
        assert!(
            err.to_string().contains("StateDict::bidirectional"),
            "{err}"
        );
        // The reverse direction alone, as a layer.
        let backward: RnnCell<1, 1> = one
            .rnn_cell("rnn", Layer::Reverse(0))
            .expect("the reverse cell");
        assert_eq!(backward, layer.backward);

        // A forward file: the reverse tensors are missing.
        let forward = StateDict::from_bytes(&bidirectional_file(1, false, &[])).unwrap();
        let err = forward
            .bidirectional::<Bidirectional<1, 1, 2>>("rnn")
            .unwrap_err();
        assert!(
            matches!(&err, LoadError::Missing { name, .. } if name == "rnn.weight_ih_l0_reverse"),
            "{err:?}"
        );

        // Two layers as one: the further layer, both of its directions.
        let two = StateDict::from_bytes(&bidirectional_file(2, true, &[])).unwrap();
        let err = two
            .bidirectional::<Bidirectional<1, 1, 2>>("rnn")
            .unwrap_err();
        assert!(
            matches!(err, LoadError::ExtraLayer { layer: 1, .. }),
            "{err:?}"
        );
        let stack: BiStack2<1, 1, 2> = two.bidirectional("rnn").expect("two layers");
        assert_eq!(stack.upper[0].forward.w_xh()[(0, 1)], 0.5);
        // As one forward layer: the reverse halves and the further layer are named.
        let err = two.rnn::<RnnCell<1, 1>>("rnn").unwrap_err();
        assert_eq!(
            unused(&err),
            [
                "rnn.weight_hh_l0_reverse",
                "rnn.weight_hh_l1",
                "rnn.weight_hh_l1_reverse",
                "rnn.weight_ih_l0_reverse",
                "rnn.weight_ih_l1",
                "rnn.weight_ih_l1_reverse"
            ]
        );

        // A stray tensor beside a layer.
        let stray =
            StateDict::from_bytes(&bidirectional_file(1, true, &["rnn.weight_hr_l0_reverse"]))
                .unwrap();
        let err = stray
            .bidirectional::<Bidirectional<1, 1, 2>>("rnn")
            .unwrap_err();
        assert_eq!(unused(&err), ["rnn.weight_hr_l0_reverse"]);
    }
}
