//! The real-time layer: `Rnn` against the cell it wraps, block processing against stepping,
//! `RnnBank` streams against single cells, and the flush of tiny states.

#![allow(clippy::float_cmp, reason = "exact comparisons on purpose")]

mod common;

use common::{FAST_TANH_ERROR, cell, order_tolerance};
use elman::kernel::FLUSH_BELOW;
use elman::nalgebra::{SMatrix, SVector, vector};
use elman::strategies::{readout, sequence};
use elman::{Backend, OnSwap, Readout, Relu, Rnn, RnnBank, RnnCell, Tanh, fast_tanh_fused};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `Rnn::step` is the cell's step and the readout's logits.
    #[test]
    fn rnn_is_cell_plus_readout(
        cell in cell::<3, 7, Tanh>(), head in readout::<7, 4>(1.0), xs in sequence::<3>(2.0, 0..40)
    ) {
        rnn_matches_cell(&cell, &head, &xs)?;
    }

    /// The same with at most 4 units, whose state goes to the kernel packed in two registers:
    /// `Rnn::step`'s from the network, written back over it, `step`'s from the caller, checked
    /// for tiny values first.
    #[test]
    fn rnn_is_cell_plus_readout_packed(
        cell in cell::<3, 2, Tanh>(), head in readout::<2, 4>(1.0), xs in sequence::<3>(2.0, 0..40),
        four in cell::<1, 4, Tanh>(), head_four in readout::<4, 4>(1.0), ys in sequence::<1>(2.0, 0..40),
    ) {
        rnn_matches_cell(&cell, &head, &xs)?;
        rnn_matches_cell(&four, &head_four, &ys)?;
    }

    /// The same with 5 to 16 units, whose `step` passes the state in four packed pairs of
    /// registers and takes the new one back through memory (the 7 units above too), with two
    /// vectors of input.
    #[test]
    fn rnn_is_cell_plus_readout_split(
        cell in cell::<16, 16, Tanh>(), head in readout::<16, 4>(1.0), xs in sequence::<16>(2.0, 0..40),
        twelve in cell::<2, 12, Tanh>(), head_twelve in readout::<12, 4>(1.0), ys in sequence::<2>(2.0, 0..40),
    ) {
        rnn_matches_cell(&cell, &head, &xs)?;
        rnn_matches_cell(&twelve, &head_twelve, &ys)?;
    }

    /// Block processing (input projections hoisted) against stepping: the same map summed in
    /// another order. Each step differs by at most `ε = 2·γ(I+H+1)·S + 2·δ_fast` from the same
    /// state, and a difference in the state is multiplied by at most `L = ‖W_hh‖∞ < 1`: the
    /// states stay within `ε / (1 − L)`, the logits within `‖W_hy‖∞` times that plus their own
    /// rounding.
    #[test]
    fn blocks_match_steps(
        cell in common::contractive::<9, 7>(), head in readout::<7, 4>(1.0), xs in sequence::<9>(2.0, 0..40)
    ) {
        blocks_match::<9, 7>(&cell, &head, &xs)?;
    }

    /// The same with two chunks of hidden units (13), whose states `process` carries as
    /// arrays (one chunk's, as its vector).
    #[test]
    fn blocks_match_steps_two_chunks(
        cell in common::contractive::<3, 13>(), head in readout::<13, 4>(1.0), xs in sequence::<3>(2.0, 0..40)
    ) {
        blocks_match::<3, 13>(&cell, &head, &xs)?;
    }

    /// The same with one block of 5 chunks (40 units), where `process` pipelines its steps:
    /// each step's input sums issued right after the previous step's activation.
    #[test]
    fn blocks_match_steps_pipelined(
        cell in common::contractive::<5, 40>(), head in readout::<40, 4>(1.0), xs in sequence::<5>(2.0, 0..24)
    ) {
        blocks_match::<5, 40>(&cell, &head, &xs)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The same at a size whose weights (35 KiB) exceed 32 KiB, where `process` hoists.
    #[test]
    fn hoisted_blocks_match_steps(
        cell in common::contractive::<9, 90>(), head in readout::<90, 4>(1.0), xs in sequence::<9>(2.0, 0..20)
    ) {
        blocks_match::<9, 90>(&cell, &head, &xs)?;
    }

    /// The same where the recurrence's blocks end on an overlapping chunk (129 units): every
    /// other hoisted step sweeps the columns backward, and each shape of block does both.
    #[test]
    fn hoisted_blocks_match_steps_overlapping(
        cell in common::contractive::<8, 129>(), head in readout::<129, 4>(1.0), xs in sequence::<8>(2.0, 0..19)
    ) {
        blocks_match::<8, 129>(&cell, &head, &xs)?;
    }
}

/// Steps `rnn.step` and `cell.step_with` side by side on every backend: the same states and
/// the readout's logits of them, to the bit.
fn rnn_matches_cell<const I: usize, const H: usize>(
    cell: &RnnCell<I, H>,
    head: &Readout<H, 4>,
    xs: &[SVector<f32, I>],
) -> Result<(), TestCaseError> {
    for backend in Backend::available() {
        let mut rnn = common::boxed_rnn(cell, head, backend);
        let mut h = SVector::<f32, H>::zeros();
        for x in xs {
            let y = rnn.step(x);
            h = cell.step_with(backend, x, &h);
            prop_assert_eq!(rnn.state(), &h);
            prop_assert_eq!(y, head.logits(&h));
        }
    }
    Ok(())
}

fn blocks_match<const I: usize, const H: usize>(
    cell: &RnnCell<I, H, Tanh>,
    head: &Readout<H, 4>,
    xs: &[SVector<f32, I>],
) -> Result<(), TestCaseError> {
    {
        let s = xs
            .iter()
            .map(|x| common::magnitude(cell, x, &SVector::from_element(1.0)).max())
            .fold(0.0, f64::max);
        let l = f64::from(cell.error_budget(2.0, 1.0).contraction);
        let bound = (2.0 * common::gamma(I + H + 1) * s + 2.0 * FAST_TANH_ERROR) / (1.0 - l);
        for backend in Backend::available() {
            // On the heap: at (8, 129) copies on the stack overflow a test thread's.
            let new = || common::boxed_rnn(cell, head, backend);
            let mut rnn = new();
            let stepped: Vec<SVector<f32, 4>> = xs.iter().map(|x| rnn.step(x)).collect();
            let mut block = new();
            let mut ys = vec![SVector::<f32, 4>::zeros(); xs.len()];
            block.process(xs, &mut ys);
            // Below 8 inputs or 32 KiB of weights `process` steps, with `step`'s bits.
            if I < 8 || H * (I + H) * size_of::<f32>() <= 32 * 1024 {
                prop_assert_eq!(block.state(), rnn.state());
                prop_assert_eq!(&ys, &stepped);
            }
            let state_diff = f64::from((block.state() - rnn.state()).amax());
            prop_assert!(
                state_diff <= bound,
                "{}: {state_diff:e} > {bound:e}",
                backend.name()
            );
            let w_hy = (0..4)
                .map(|o| f64::from(head.weight().row(o).abs().sum()))
                .fold(0.0, f64::max);
            for (a, b) in ys.iter().zip(&stepped) {
                let y_bound =
                    w_hy * bound + 2.0 * common::gamma(8) * (w_hy + f64::from(head.bias().amax()));
                prop_assert!(f64::from((a - b).amax()) <= y_bound);
            }
            let mut last = new();
            prop_assert_eq!(last.process_last(xs), ys.last().copied());
            prop_assert_eq!(last.state(), block.state());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Each stream of a bank is the cell stepped alone, within the rounding of two summation
    /// orders (the bank sums each unit's terms in order, the single step in interleaved partial
    /// sums) and two evaluations of the fast tanh.
    #[test]
    fn bank_streams_are_single_cells(cell in cell::<3, 13, Tanh>(), seed in 0_u32..1000) {
        bank_matches::<3, 13, 5, _>(&cell, seed)?;
        bank_matches::<3, 13, 8, _>(&cell, seed)?;
        bank_matches::<3, 13, 19, _>(&cell, seed)?;
    }

    /// `H ≤ 8`: the kernel gathers the per-stream inputs itself.
    #[test]
    fn bank_streams_gathered(cell in cell::<3, 5, Tanh>(), seed in 0_u32..1000) {
        bank_matches::<3, 5, 3, _>(&cell, seed)?;
        bank_matches::<3, 5, 12, _>(&cell, seed)?;
        bank_matches::<3, 5, 19, _>(&cell, seed)?;
    }

    /// 8 inputs or more: transposed in 8×8 tiles, the last ones overlapping when 8 divides
    /// neither the streams nor the inputs; fewer than 8 streams, one value at a time.
    #[test]
    fn bank_streams_transposed(cell in cell::<11, 10, Tanh>(), seed in 0_u32..1000) {
        bank_matches::<11, 10, 5, _>(&cell, seed)?;
        bank_matches::<11, 10, 8, _>(&cell, seed)?;
        bank_matches::<11, 10, 21, _>(&cell, seed)?;
    }

    /// 8 inputs into one block of units: transposed too, not gathered.
    #[test]
    fn bank_streams_transposed_small(cell in cell::<8, 3, Tanh>(), seed in 0_u32..1000) {
        bank_matches::<8, 3, 16, _>(&cell, seed)?;
        bank_matches::<8, 3, 9, _>(&cell, seed)?;
    }

    /// Fewer than 8 inputs, at least 8 streams: each input picked out of the streams'
    /// consecutive values by lane selects and a permutation, for an even and an odd count.
    #[test]
    fn bank_streams_deinterleaved(cell in cell::<6, 3, Tanh>(), seed in 0_u32..1000) {
        bank_matches::<6, 3, 8, _>(&cell, seed)?;
        bank_matches::<6, 3, 13, _>(&cell, seed)?;
    }

    #[test]
    fn bank_streams_deinterleaved_odd(cell in cell::<7, 12, Tanh>(), seed in 0_u32..1000) {
        bank_matches::<7, 12, 17, _>(&cell, seed)?;
    }

    /// Fewer than 8 inputs, 16 streams per vector (on the 512-bit backend): each input picked
    /// out of the streams' consecutive values, for 2 to 7 inputs (an odd count by lane blends
    /// and one permutation, an even one by two-table permutations), with the last chunk of
    /// streams overlapping its neighbour.
    #[test]
    fn bank_streams_deinterleaved_wide(
        pair in cell::<2, 5, Tanh>(),
        three in cell::<3, 2, Tanh>(),
        four in cell::<4, 3, Tanh>(),
        five in cell::<5, 4, Tanh>(),
        seed in 0_u32..1000,
    ) {
        bank_matches::<2, 5, 16, _>(&pair, seed)?;
        bank_matches::<3, 2, 37, _>(&three, seed)?;
        bank_matches::<4, 3, 40, _>(&four, seed)?;
        bank_matches::<5, 4, 33, _>(&five, seed)?;
    }

    /// As above, 6 and 7 inputs: three pairs of vectors; seven vectors merged.
    #[test]
    fn bank_streams_deinterleaved_wide_many(
        six in cell::<6, 3, Tanh>(),
        seven in cell::<7, 5, Tanh>(),
        seed in 0_u32..1000,
    ) {
        bank_matches::<6, 3, 23, _>(&six, seed)?;
        bank_matches::<7, 5, 16, _>(&seven, seed)?;
    }

    /// A state of exactly 64 values: 16 streams per vector (on the 512-bit backend) with fewer
    /// than 8 inputs or from inputs given unit-major, 8 from 8 inputs or more that the bank
    /// transposes: the same bits either way.
    #[test]
    fn bank_streams_of_64_values(
        three in cell::<3, 2, Tanh>(),
        five in cell::<5, 4, Tanh>(),
        eight in cell::<8, 2, Tanh>(),
        seed in 0_u32..1000,
    ) {
        bank_matches::<3, 2, 32, _>(&three, seed)?;
        bank_matches::<5, 4, 16, _>(&five, seed)?;
        bank_matches::<8, 2, 32, _>(&eight, seed)?;
    }

    /// Around that boundary: 8 or 16 streams per vector, the inputs read where they are or
    /// transposed, and on the 8-lane backends, all with the same bits.
    #[test]
    fn bank_kernel_choice_keeps_the_bits(
        one in cell::<1, 2, Tanh>(),
        nine in cell::<9, 2, Tanh>(),
        single in cell::<8, 1, Tanh>(),
        seven in cell::<7, 4, Tanh>(),
        nine_four in cell::<9, 4, Tanh>(),
        eight_units in cell::<7, 8, Tanh>(),
        five_units in cell::<3, 5, Tanh>(),
        seed in 0_u32..1000,
    ) {
        bank_matches::<1, 2, 32, _>(&one, seed)?;
        bank_matches::<9, 2, 32, _>(&nine, seed)?;
        bank_matches::<8, 1, 64, _>(&single, seed)?;
        bank_matches::<7, 4, 16, _>(&seven, seed)?;
        bank_matches::<9, 4, 16, _>(&nine_four, seed)?;
        bank_matches::<7, 8, 9, _>(&eight_units, seed)?;
        bank_matches::<3, 5, 13, _>(&five_units, seed)?;
    }

    /// A bank's blocks of units depend on its number of streams (one chunk of 8 streams or
    /// several, on avx2+fma 8 units or 5 at a time); each unit's sum does not: a stream of a
    /// bank of 8 and the same stream of a bank of 24 step with the same bits, on every backend.
    #[test]
    fn bank_blocks_keep_the_bits(
        cell in cell::<5, 13, Tanh>(),
        relu in cell::<4, 16, Relu>(),
        seed in 0_u32..1000,
    ) {
        bank_streams_agree::<5, 13, Tanh>(&cell, seed)?;
        bank_streams_agree::<4, 16, Relu>(&relu, seed)?;
    }

    #[test]
    fn bank_sums_are_chains(
        cell in cell::<3, 13, Tanh>(),
        nine in cell::<2, 9, Tanh>(),
        small in cell::<3, 2, Tanh>(),
        seed in 0_u32..1000,
    ) {
        // Two pairs of chunks of streams and a last odd one that overlaps the pair before it;
        // one chunk; 5 units and 4.
        bank_chains::<3, 13, 37>(&cell, seed)?;
        bank_chains::<3, 13, 8>(&cell, seed)?;
        bank_chains::<2, 9, 16>(&nine, seed)?;
        // More than 4 chunks of 16 streams (the 512-bit backend's activation pass), the last
        // overlapping the one before it, and a last partial vector of the flattened state: 13
        // units in blocks, 2 units in one.
        bank_chains::<3, 13, 72>(&cell, seed)?;
        bank_chains::<3, 2, 73>(&small, seed)?;
    }

    #[test]
    fn bank_streams_small(cell in cell::<1, 2, Tanh>(), seed in 0_u32..1000) {
        bank_matches::<1, 2, 1, _>(&cell, seed)?;
        bank_matches::<1, 2, 32, _>(&cell, seed)?;
    }

    #[test]
    fn bank_streams_one_input_many_units(cell in cell::<1, 16, Tanh>(), seed in 0_u32..1000) {
        // More than 8 units and one input: `step` reads the inputs as the unit-major row they
        // are; 32 streams, 13 (a last chunk overlapping), 5 (padded).
        bank_matches::<1, 16, 32, _>(&cell, seed)?;
        bank_matches::<1, 16, 13, _>(&cell, seed)?;
        bank_matches::<1, 16, 5, _>(&cell, seed)?;
    }

    #[test]
    fn bank_streams_relu(cell in cell::<2, 16, Relu>(), seed in 0_u32..1000) {
        bank_matches::<2, 16, 9, _>(&cell, seed)?;
    }
}

/// Each stream's new state on each fused backend, bit for bit: each unit's sum one chain of
/// fused multiply-adds from its bias, the columns in order, then the fused fast tanh, +0 where
/// the sum is below `FLUSH_BELOW` in magnitude. Whatever the blocks of units and of streams, and
/// wherever the activation runs.
fn bank_chains<const I: usize, const H: usize, const N: usize>(
    cell: &RnnCell<I, H>,
    seed: u32,
) -> Result<(), TestCaseError> {
    for backend in Backend::available() {
        if !backend.fused() {
            continue;
        }
        let mut bank: RnnBank<I, H, N> = RnnBank::new(cell.clone()).with_backend(backend);
        for t in 0..3 {
            #[expect(clippy::cast_precision_loss, reason = "small integers")]
            let xs: [SVector<f32, I>; N] = core::array::from_fn(|s| {
                SVector::from_fn(|k, _| {
                    ((seed as usize + 5 * t + 3 * s + k) % 17) as f32 / 8.5 - 1.0
                })
            });
            let before: [SVector<f32, H>; N] = core::array::from_fn(|s| bank.state(s));
            bank.step(&xs);
            for (s, (x, h)) in xs.iter().zip(&before).enumerate() {
                for j in 0..H {
                    let mut z = cell.bias()[j];
                    for (k, x) in x.iter().enumerate() {
                        z = cell.w_xh()[(j, k)].mul_add(*x, z);
                    }
                    for (k, h) in h.iter().enumerate() {
                        z = cell.w_hh()[(j, k)].mul_add(*h, z);
                    }
                    let y = if z.abs() < FLUSH_BELOW {
                        0.0
                    } else {
                        fast_tanh_fused(z)
                    };
                    prop_assert_eq!(
                        bank.state(s)[j].to_bits(),
                        y.to_bits(),
                        "{} stream {} unit {} step {}",
                        backend.name(),
                        s,
                        j,
                        t
                    );
                }
            }
        }
    }
    Ok(())
}

/// Streams 0 to 7 and 16 to 23 of a bank of 24 (the first two chunks of streams in blocks of
/// 5 units where the backend takes them, the last in blocks of up to 8) against two banks of
/// 8, stepped from the same inputs: the same bits.
fn bank_streams_agree<const I: usize, const H: usize, A: elman::Activation>(
    cell: &RnnCell<I, H, A>,
    seed: u32,
) -> Result<(), TestCaseError> {
    for backend in Backend::available() {
        let mut eight: RnnBank<I, H, 8, A> = RnnBank::new(cell.clone()).with_backend(backend);
        let mut last: RnnBank<I, H, 8, A> = RnnBank::new(cell.clone()).with_backend(backend);
        let mut many: RnnBank<I, H, 24, A> = RnnBank::new(cell.clone()).with_backend(backend);
        for t in 0..10 {
            #[expect(clippy::cast_precision_loss, reason = "small integers")]
            let xs: [SVector<f32, I>; 24] = core::array::from_fn(|s| {
                SVector::from_fn(|k, _| {
                    ((seed as usize + 7 * t + 3 * s + k) % 13) as f32 / 6.5 - 1.0
                })
            });
            many.step(&xs);
            eight.step(&core::array::from_fn(|s| xs[s]));
            last.step(&core::array::from_fn(|s| xs[16 + s]));
            for s in 0..8 {
                for (bank, first) in [(&eight, 0), (&last, 16)] {
                    prop_assert_eq!(
                        bank.state(s).map(f32::to_bits),
                        many.state(first + s).map(f32::to_bits),
                        "{} stream {} step {}",
                        backend.name(),
                        first + s,
                        t
                    );
                }
            }
        }
    }
    Ok(())
}

fn bank_matches<const I: usize, const H: usize, const N: usize, A: elman::Activation>(
    cell: &RnnCell<I, H, A>,
    seed: u32,
) -> Result<(), TestCaseError> {
    // Each stream's sum in the same order on every fused backend, whatever the vector width and
    // the inputs' layout: the same bits.
    let mut fused: Option<[[u32; N]; H]> = None;
    for backend in Backend::available() {
        let mut bank: RnnBank<I, H, N, A> = RnnBank::new(cell.clone()).with_backend(backend);
        let mut lanes_bank = bank.clone();
        let mut alone = [SVector::<f32, H>::zeros(); N];
        for t in 0..10 {
            #[expect(clippy::cast_precision_loss, reason = "small integers")]
            let xs: [SVector<f32, I>; N] = core::array::from_fn(|s| {
                SVector::from_fn(|k, _| {
                    ((seed as usize + 7 * t + 3 * s + k) % 11) as f32 / 5.5 - 1.0
                })
            });
            let before = alone;
            bank.step(&xs);
            // The same sums from inputs given unit-major: the same bits.
            let lanes: [[f32; N]; I] = core::array::from_fn(|k| core::array::from_fn(|s| xs[s][k]));
            lanes_bank.step_unit_major(&lanes);
            prop_assert_eq!(lanes_bank.states(), bank.states());
            for s in 0..N {
                // Both from the same state (the bank's), so the bound is per step.
                let from = before[s];
                let single = cell.step_with(backend, &xs[s], &from);
                let activation = if A::NAME == "tanh" {
                    2.0 * FAST_TANH_ERROR
                } else {
                    0.0
                };
                let tol = order_tolerance(cell, &xs[s], &from, activation);
                common::assert_within(&bank.state(s), &single, &tol)?;
                alone[s] = bank.state(s);
            }
        }
        if backend.fused() {
            let bits = bank.output_states().map(|row| row.map(f32::to_bits));
            match fused {
                None => fused = Some(bits),
                Some(first) => prop_assert_eq!(first, bits, "{}", backend.name()),
            }
        }
    }
    Ok(())
}

#[test]
fn rnn_state_controls() {
    let cell: RnnCell<1, 2> =
        RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]);
    let head: Readout<2, 2> = Readout::from_row_major([[1.0, 0.0], [0.0, 1.0]], [0.0; 2]);
    let h0 = vector![0.25, -0.25];
    let mut rnn = Rnn::with_initial_state(cell.clone(), head.clone(), h0);
    assert_eq!(rnn.state(), &h0);
    let _ = rnn.step(&vector![1.0]);
    assert_ne!(rnn.state(), &h0);
    rnn.reset();
    assert_eq!(rnn.state(), &h0);
    rnn.set_state(vector![0.5, 0.5]);
    assert_eq!(rnn.state(), &vector![0.5, 0.5]);
    // Swapping weights keeps or resets the state, as asked.
    let other: RnnCell<1, 2> = RnnCell::from_row_major([[2.0], [2.0]], [[0.0; 2]; 2], [0.0; 2]);
    rnn.swap_weights(other.clone(), head.clone(), OnSwap::KeepState);
    assert_eq!(rnn.state(), &vector![0.5, 0.5]);
    assert_eq!(rnn.cell(), &other);
    rnn.swap_weights(cell, head, OnSwap::Reset);
    assert_eq!(rnn.state(), &h0);
    assert_eq!(rnn.process_last(&[]), None);
}

/// A state decaying by exactly half per step (tanh(z) = z below 2^-12) halves exactly until it
/// falls under `FLUSH_BELOW`, then is exactly zero: the flush changes nothing above it, and no
/// state is ever subnormal.
#[test]
fn tiny_states_flush_to_zero_and_nothing_else_changes() {
    let cell: RnnCell<1, 3> = RnnCell::new(
        SMatrix::zeros(),
        SMatrix::identity() * 0.5,
        SVector::zeros(),
    );
    let relu: RnnCell<1, 3, Relu> = cell.clone().with_activation();
    for backend in Backend::available() {
        // tanh: the state halves (tanh is the identity there) until it is flushed to +0.
        halve_to_zero(
            backend,
            |h| cell.step_with(backend, &vector![0.0], h),
            f32::abs,
        );
        // ReLU: the same for positive values; negative ones are +0 at once.
        halve_to_zero(
            backend,
            |h| relu.step_with(backend, &vector![0.0], h),
            |half| half,
        );
    }
}

/// Steps a state whose every value halves from `[4e-4, -3e-4, 2e-5]` until it is zero, checking
/// that each value is the exact half while `kept(half) ≥ FLUSH_BELOW`, and +0 otherwise.
fn halve_to_zero(
    backend: Backend,
    mut step: impl FnMut(&SVector<f32, 3>) -> SVector<f32, 3>,
    kept: impl Fn(f32) -> f32,
) {
    let mut h = vector![4e-4, -3e-4, 2e-5];
    let mut steps = 0;
    while h != SVector::<f32, 3>::zeros() {
        let next = step(&h);
        for j in 0..3 {
            let half = h[j] * 0.5;
            if kept(half) >= FLUSH_BELOW {
                assert_eq!(next[j], half, "{} step {steps}", backend.name());
            } else {
                assert_eq!(next[j].to_bits(), 0, "{} step {steps}", backend.name());
            }
            assert!(!next[j].is_subnormal());
        }
        h = next;
        steps += 1;
        assert!(steps < 200, "the state never reached zero");
    }
}

#[test]
fn bank_state_controls() {
    let cell: RnnCell<1, 2> =
        RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]);
    let mut bank: RnnBank<1, 2, 3> = RnnBank::new(cell);
    bank.step_unit_major(&[[1.0, 2.0, 3.0]]);
    assert_eq!(bank.states()[0][1], bank.state(1)[0]);
    bank.set_state(2, &vector![0.5, 0.25]);
    assert_eq!(bank.state(2), vector![0.5, 0.25]);
    bank.reset_stream(1);
    assert_eq!(bank.state(1), SVector::<f32, 2>::zeros());
    assert_ne!(bank.state(0), SVector::<f32, 2>::zeros());
    let head: Readout<2, 1> = Readout::from_row_major([[1.0, 1.0]], [0.0]);
    let ys = bank.outputs(&head);
    assert_eq!(ys[2], vector![0.75]);
    bank.reset();
    assert_eq!(bank.states(), &[[0.0; 3]; 2]);
}

/// Banks that compare equal print alike, whichever of their two state buffers is live: the
/// `Debug` form shows the live states, as `states` gives them, and nothing of the bank's
/// workings.
#[test]
fn equal_banks_print_alike() {
    let cell: RnnCell<1, 2> = RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0]; 2], [0.0; 2]);
    let mut stepped: RnnBank<1, 2, 3> = RnnBank::new(cell.clone());
    stepped.step_unit_major(&[[1.0, 2.0, 3.0]]);
    // The same states, set into the buffer a new bank reads.
    let mut set: RnnBank<1, 2, 3> = RnnBank::new(cell);
    for s in 0..3 {
        set.set_state(s, &stepped.state(s));
    }
    assert_eq!(stepped, set);
    let printed = format!("{stepped:?}");
    assert_eq!(printed, format!("{set:?}"));
    assert!(
        printed.contains(&format!("states: {:?}", stepped.states())),
        "{printed}"
    );
    for internal in ["current", "inputs", "Scratch"] {
        assert!(!printed.contains(internal), "{printed}");
    }
}

/// A stream index past the last stream has no silent value: the checked forms say so and
/// change nothing, the indexing forms panic as slice indexing does.
#[test]
fn bank_streams_out_of_range() {
    let cell: RnnCell<1, 2> = RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0]; 2], [0.0; 2]);
    let mut bank: RnnBank<1, 2, 3> = RnnBank::new(cell);
    bank.step_unit_major(&[[1.0, 2.0, 3.0]]);
    let before = *bank.states();
    assert_eq!(bank.get_state(2), Some(bank.state(2)));
    assert_eq!(bank.get_state(3), None);
    let err = bank.try_set_state(3, &vector![0.5, 0.5]).unwrap_err();
    assert_eq!((err.stream, err.streams), (3, 3));
    assert_eq!(
        err.to_string(),
        "stream 3 does not exist: the bank has 3 streams"
    );
    assert_eq!(bank.try_reset_stream(3), Err(err));
    assert_eq!(bank.states(), &before, "nothing changed");
    assert!(bank.try_set_state(2, &vector![0.5, 0.5]).is_ok());
    assert_eq!(bank.state(2), vector![0.5, 0.5]);
    for (name, result) in [
        (
            "state",
            std::panic::catch_unwind(|| bank.state(3)).map(|_| ()),
        ),
        (
            "set_state",
            std::panic::catch_unwind(|| bank.clone().set_state(7, &vector![0.0, 0.0])),
        ),
        (
            "reset_stream",
            std::panic::catch_unwind(|| bank.clone().reset_stream(3)),
        ),
    ] {
        let payload = result.expect_err(name);
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(
            message.starts_with("stream ")
                && message.ends_with("does not exist: the bank has 3 streams"),
            "{name}: {message}"
        );
    }
}

/// Banks with no inputs, no units or no streams step without panicking, on every backend and
/// through every input path (gathered, transposed, unit-major).
#[test]
fn degenerate_banks_step() {
    fn check<const I: usize, const H: usize, const N: usize>() {
        for backend in Backend::available() {
            let mut bank: RnnBank<I, H, N> = RnnBank::new(RnnCell::default()).with_backend(backend);
            bank.step(&[SVector::from_element(0.5); N]);
            bank.step_unit_major(&[[0.5; N]; I]);
            // Zero weights: every state stays tanh(0) = 0.
            assert!(bank.states().iter().flatten().all(|&v| v == 0.0));
        }
    }
    check::<0, 9, 10>();
    check::<0, 2, 3>();
    check::<3, 0, 9>();
    check::<9, 9, 0>();
    check::<3, 2, 0>();
    check::<1, 0, 0>();
}
