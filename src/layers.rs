//! The recurrent part of a network: one [`RnnCell`], or a [`Stack`](crate::stack::Stack) of
//! them as `nn.RNN(num_layers = L)`, each layer's new state the next layer's input.
//!
//! ```text
//! h0' = A(W0_xh·x   + W0_hh·h0 + b0)
//! h1' = A(W1_xh·h0' + W1_hh·h1 + b1)     …     the last layer's state is what a readout reads
//! ```
//!
//! [`Network`](crate::Network) (a streaming network: layers, readout and state) and
//! [`Bank`](crate::Bank) (many streams of one network's layers) are generic over [`Layers`], so
//! one layer and many are one design: [`Rnn`](crate::Rnn) is a [`Network`](crate::Network) of one
//! [`RnnCell`], [`Rnn2`](crate::Rnn2) one of a [`Stack2`](crate::stack::Stack2), and
//! [`RnnBank`](crate::RnnBank) a [`Bank`](crate::Bank) of one cell. Each layer steps through
//! the kernel as a cell alone does; a network of one cell processes whole sequences in the
//! kernel's sequence loop.

use core::fmt::Debug;

use nalgebra::SVector;

use crate::activation::Activation;
use crate::bf16::{Bf16Cell, PairWord};
use crate::cell::RnnCell;
use crate::f16::{F16, HalfCell};
use crate::flush::{flush, flush_state};
use crate::in_place::{InPlace, copy_pod};
use crate::kernel::{Backend, BankInput, Flushing};
use crate::kernel::{Element, Weights};
use crate::readout::Readout;
use crate::stack::LayerCount;

/// The seal: a public trait in a private module, so that [`Layers`] stays implemented by the
/// crate's layers alone.
mod sealed {
    /// Implemented by [`RnnCell`](crate::RnnCell) and [`Stack`](crate::stack::Stack).
    pub trait Sealed {}
}

impl<const I: usize, const H: usize, A: Activation> sealed::Sealed for RnnCell<I, H, A> {}
impl<const I: usize, const H: usize, A: Activation> sealed::Sealed for HalfCell<I, H, A> {}
impl<const I: usize, const H: usize, A: Activation> sealed::Sealed for Bf16Cell<I, H, A> {}
impl<L, U, const M: usize> sealed::Sealed for crate::stack::Stack<L, U, M> {}

/// One layer as the kernel reads it: [`RnnCell`] (f32 weights), [`HalfCell`] (half
/// precision) or [`Bf16Cell`] (bf16 column pairs), each a [`Layers`] of one layer through the
/// same code.
pub(crate) trait Cell<const I: usize, const H: usize> {
    /// How the weights are stored.
    type Weight: Element;
    /// The non-linearity.
    type Activation: Activation;

    /// The columns of `W_xh` and `W_hh`, and the bias.
    fn weights(&self) -> Weights<'_, I, H, Self::Weight>;
}

impl<const I: usize, const H: usize, A: Activation> Cell<I, H> for RnnCell<I, H, A> {
    type Weight = f32;
    type Activation = A;

    #[inline(always)]
    fn weights(&self) -> Weights<'_, I, H, f32> {
        (
            &self.w_xh().data.0,
            &self.w_hh().data.0,
            &self.bias().data.0[0],
        )
    }
}

impl<const I: usize, const H: usize, A: Activation> Cell<I, H> for HalfCell<I, H, A> {
    type Weight = F16;
    type Activation = A;

    #[inline(always)]
    fn weights(&self) -> Weights<'_, I, H, F16> {
        (self.w_xh_columns(), self.w_hh_columns(), self.bias())
    }
}

impl<const I: usize, const H: usize, A: Activation> Cell<I, H> for Bf16Cell<I, H, A> {
    type Weight = PairWord;
    type Activation = A;

    #[inline(always)]
    fn weights(&self) -> Weights<'_, I, H, PairWord> {
        Bf16Cell::weights(self)
    }
}

/// Recurrent layers from `I` inputs to a last layer of `H` units: one [`RnnCell`] or a
/// [`Stack`](crate::stack::Stack) of them, what a [`Network`](crate::Network) and a
/// [`Bank`](crate::Bank) run.
///
/// The trait is sealed (the cells and stacks of the crate implement it). Its public items are
/// what code generic over the number of layers needs: the state's type, the last layer's state
/// in it, and one step of all layers; the hidden ones are how networks and banks drive the
/// kernel.
///
/// ```
/// use elman::stack::{Stack, Stack2};
/// use elman::{Backend, Layers, RnnCell};
/// use elman::nalgebra::{self, SVector, vector};
///
/// let layers: Stack2<1, 2> = Stack::new(
///     RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]),
///     RnnCell::from_row_major([[0.5, 0.5], [0.0, 1.0]], [[0.25; 2]; 2], [0.1; 2]),
/// );
/// // Both layers' states, the lower one's first.
/// let mut state: (SVector<f32, 2>, SVector<f32, 2>) = Stack2::<1, 2>::ZERO_STATE;
/// layers.advance(Backend::best(), &vector![1.0], &mut state);
/// let lower = layers.lower.step(&vector![1.0], &SVector::zeros());
/// assert_eq!(state.0, lower);
/// assert_eq!(Stack2::<1, 2>::output(&state), &layers.upper.step(&lower, &SVector::zeros()));
/// ```
pub trait Layers<const I: usize, const H: usize>:
    sealed::Sealed + LayerCount + InPlace + Clone + Debug + PartialEq
{
    /// Every layer's hidden state, the lowest layer's first: `SVector<f32, H>` for one cell,
    /// `(lower, upper)` for a stack (so `((h0, h1), h2)` for three layers).
    type State: Copy + Debug + PartialEq + bytemuck::Zeroable;

    /// The hidden states of `N` streams, each layer's unit-major (`[j][s]`, unit `j` of stream
    /// `s`): `[[f32; N]; H]` for one cell, `(lower, upper)` for a stack.
    type Units<const N: usize>: Copy + Debug + PartialEq + bytemuck::Zeroable;

    /// The all-zero state.
    const ZERO_STATE: Self::State;

    /// The hidden units of the lowest layer, the one that reads the inputs.
    #[doc(hidden)]
    const INPUT_UNITS: usize;

    /// The last layer's state in `state`: what a readout reads.
    #[must_use]
    fn output(state: &Self::State) -> &SVector<f32, H>;

    /// One step of every layer on `backend`, bottom to top: each layer's state in `state` is
    /// replaced by its new one, and the layer above reads it as its input. Values of `state`
    /// below [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude read as +0, as in
    /// [`RnnCell::step`]. Allocates nothing.
    #[inline]
    fn advance(&self, backend: Backend, x: &SVector<f32, I>, state: &mut Self::State) {
        *state = Self::flushed(state);
        self.advance_flushed(backend, x, state);
    }

    /// [`advance`](Self::advance) from a state already flushed (one that a network holds).
    #[doc(hidden)]
    fn advance_flushed(&self, backend: Backend, x: &SVector<f32, I>, state: &mut Self::State);

    /// `state` with every value below `FLUSH_BELOW` in magnitude as +0.
    #[doc(hidden)]
    #[must_use]
    fn flushed(state: &Self::State) -> Self::State;

    /// Copies `source` over `target` without a copy on the stack.
    #[doc(hidden)]
    fn copy_state(target: &mut Self::State, source: &Self::State);

    /// Steps through `xs` from the flushed `state`, writing each step's logits through
    /// `readout` to `ys` (as long as `xs`).
    #[doc(hidden)]
    fn process<const O: usize>(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        state: &mut Self::State,
        readout: &Readout<H, O>,
        ys: &mut [SVector<f32, O>],
    );

    /// Steps through `xs` from the flushed `state`.
    #[doc(hidden)]
    fn process_last(&self, backend: Backend, xs: &[SVector<f32, I>], state: &mut Self::State);

    /// One step of `N` streams, one input vector per stream (as given: the kernel flushes each
    /// value as it reads it), from `previous` into `next`.
    #[doc(hidden)]
    fn bank_step_vectors<const N: usize>(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>; N],
        previous: &Self::Units<N>,
        next: &mut Self::Units<N>,
    );

    /// One step of `N` streams from `x = (inputs, flushed, transposed)`, the inputs unit-major,
    /// from `previous` into `next`. The kernel flushes each input value as it reads it, unless
    /// `flushed` says the inputs are flushed already (the states of a layer below, a caller's
    /// inputs checked, or flushed by the transposition); `transposed` says the bank transposed
    /// them from one vector per stream, just before (see `Backend::bank_step_weights`).
    #[doc(hidden)]
    fn bank_step_unit_major<const N: usize>(
        &self,
        backend: Backend,
        x: (&[[f32; N]; I], bool, bool),
        previous: &Self::Units<N>,
        next: &mut Self::Units<N>,
    );

    /// The last layer's states of `N` streams.
    #[doc(hidden)]
    fn output_units<const N: usize>(units: &Self::Units<N>) -> &[[f32; N]; H];

    /// Stream `s`'s state (zeros past the last stream).
    #[doc(hidden)]
    fn stream_state<const N: usize>(units: &Self::Units<N>, s: usize) -> Self::State;

    /// Sets stream `s`'s state, flushed (nothing past the last stream).
    #[doc(hidden)]
    fn set_stream_state<const N: usize>(units: &mut Self::Units<N>, s: usize, state: &Self::State);

    /// Sets every stream's state to zero, in place.
    #[doc(hidden)]
    fn clear_units<const N: usize>(units: &mut Self::Units<N>);

    /// Copies `source` over `target` without a copy on the stack.
    #[doc(hidden)]
    fn copy_units<const N: usize>(target: &mut Self::Units<N>, source: &Self::Units<N>);
}

/// Steps whose input projections a cell's `process` computes together.
pub(crate) const HOIST: usize = 8;

/// The input size from which a cell's `process` hoists the input projections (below it, the
/// extra pass costs more than reading `W_xh` once per step).
const HOIST_FROM_INPUTS: usize = 8;

/// The weight size (bytes of `W_xh` and `W_hh`) from which a cell's `process` hoists: above a
/// typical 32 KiB L1 data cache, a step reads its weights from L2, and reading `W_xh` once per
/// 8 steps saves more than the extra pass costs. Below it (e.g. (32, 64), 24 KiB) the weights
/// stay in L1, where hoisting is slower than stepping.
const HOIST_FROM_BYTES: usize = 32 * 1024;

/// Whether a cell's `process` hoists the input projections of an `(I, H)` cell.
pub(crate) const fn hoists(i: usize, h: usize) -> bool {
    i >= HOIST_FROM_INPUTS && h * (i + h) * size_of::<f32>() > HOIST_FROM_BYTES
}

/// Stream `s`'s values of unit-major states, zeros past the last stream.
#[inline]
pub(crate) fn column<const H: usize, const N: usize>(
    units: &[[f32; N]; H],
    s: usize,
) -> SVector<f32, H> {
    SVector::from_fn(|j, _| units[j].get(s).copied().unwrap_or(0.0))
}

/// One cell is one layer: its state is its hidden state, and a network of it processes
/// sequences in the kernel's sequence loop (see [`Network::process`](crate::Network::process)).
impl<C, const I: usize, const H: usize> Layers<I, H> for C
where
    C: Cell<I, H> + sealed::Sealed + LayerCount + InPlace + Clone + Debug + PartialEq,
{
    type State = SVector<f32, H>;
    type Units<const N: usize> = [[f32; N]; H];

    const ZERO_STATE: Self::State = SVector::from_array_storage(nalgebra::ArrayStorage([[0.0; H]]));
    const INPUT_UNITS: usize = H;

    #[inline]
    fn output(state: &Self::State) -> &SVector<f32, H> {
        state
    }

    /// `RnnCell::step`'s arithmetic, its result written over the state (one copy; through
    /// `SVector` return values it took three).
    #[inline]
    fn advance_flushed(&self, backend: Backend, x: &SVector<f32, I>, state: &mut Self::State) {
        let [h] = &mut state.data.0;
        backend.step_in_place::<I, H, C::Activation, C::Weight>(self.weights(), &x.data.0[0], h);
    }

    #[inline]
    fn flushed(state: &Self::State) -> Self::State {
        flush_state(*state)
    }

    #[inline]
    fn copy_state(target: &mut Self::State, source: &Self::State) {
        copy_pod(target, source);
    }

    /// From 8 inputs per step on and weights larger than 32 KiB, the input projections are
    /// hoisted (`recur`); smaller cells run their steps in the kernel's sequence loop, with
    /// `step`'s bits.
    fn process<const O: usize>(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        state: &mut Self::State,
        readout: &Readout<H, O>,
        ys: &mut [SVector<f32, O>],
    ) {
        if !hoists(I, H) {
            run_and_read(self, backend, xs, state, readout, ys);
            return;
        }
        let (x_blocks, x_rest) = xs.as_chunks::<HOIST>();
        let (y_blocks, y_rest) = ys.as_chunks_mut::<HOIST>();
        for (xb, yb) in x_blocks.iter().zip(y_blocks) {
            recur(self, backend, xb, state, |t, h| {
                yb[t] = backend.logits(readout, h);
            });
        }
        for (x, y) in x_rest.iter().zip(y_rest) {
            self.advance_flushed(backend, x, state);
            *y = backend.logits(readout, state);
        }
    }

    fn process_last(&self, backend: Backend, xs: &[SVector<f32, I>], state: &mut Self::State) {
        let (blocks, rest) = if hoists(I, H) {
            xs.as_chunks::<HOIST>()
        } else {
            (&[][..], xs)
        };
        for block in blocks {
            recur(self, backend, block, state, |_, _| {});
        }
        let [h] = &mut state.data.0;
        backend.run_of::<I, H, C::Activation, (), _, C::Weight>(
            self.weights(),
            rest,
            h,
            core::iter::repeat(()),
            |_, ()| {},
        );
    }

    #[inline]
    fn bank_step_vectors<const N: usize>(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>; N],
        previous: &Self::Units<N>,
        next: &mut Self::Units<N>,
    ) {
        bank_step(self, backend, (&Flushing(xs), false), previous, next);
    }

    #[inline]
    fn bank_step_unit_major<const N: usize>(
        &self,
        backend: Backend,
        (x, flushed, transposed): (&[[f32; N]; I], bool, bool),
        previous: &Self::Units<N>,
        next: &mut Self::Units<N>,
    ) {
        if flushed {
            bank_step(self, backend, (x, transposed), previous, next);
        } else {
            bank_step(self, backend, (&Flushing(x), transposed), previous, next);
        }
    }

    #[inline]
    fn output_units<const N: usize>(units: &Self::Units<N>) -> &[[f32; N]; H] {
        units
    }

    fn stream_state<const N: usize>(units: &Self::Units<N>, s: usize) -> Self::State {
        column(units, s)
    }

    fn set_stream_state<const N: usize>(units: &mut Self::Units<N>, s: usize, state: &Self::State) {
        for (row, &v) in units.iter_mut().zip(state.iter()) {
            if let Some(slot) = row.get_mut(s) {
                *slot = flush(v);
            }
        }
    }

    fn clear_units<const N: usize>(units: &mut Self::Units<N>) {
        *units = [[0.0; N]; H];
    }

    fn copy_units<const N: usize>(target: &mut Self::Units<N>, source: &Self::Units<N>) {
        copy_pod(target, source);
    }
}

/// One bank step of a cell from inputs in either layout (`transposed` if the bank just
/// transposed them to unit-major): the kernel gathers a vector's streams' input `k` at a time.
#[inline]
fn bank_step<C: Cell<I, H>, const I: usize, const H: usize, const N: usize>(
    cell: &C,
    backend: Backend,
    (x, transposed): (&impl BankInput<I, N>, bool),
    previous: &[[f32; N]; H],
    next: &mut [[f32; N]; H],
) {
    backend.bank_step_weights::<I, H, N, C::Activation, _, C::Weight>(
        cell.weights(),
        (x, transposed),
        previous,
        next,
    );
}

/// A cell's `process` without hoisting: the steps run through the kernel in one call (the
/// backend chosen once, the state kept in registers from one step to the next), each state read
/// out as it comes. With `step`'s bits.
fn run_and_read<C: Cell<I, H>, const I: usize, const H: usize, const O: usize>(
    cell: &C,
    backend: Backend,
    xs: &[SVector<f32, I>],
    state: &mut SVector<f32, H>,
    readout: &Readout<H, O>,
    ys: &mut [SVector<f32, O>],
) {
    let [h] = &mut state.data.0;
    backend.run_each::<I, H, C::Activation, _, _, C::Weight>(
        cell.weights(),
        xs,
        h,
        ys.iter_mut(),
        crate::kernel::ReadOut(readout),
    );
}

/// `HOIST` steps of a cell: their input projections at once, then the recurrence, calling
/// `after(t, h)` once step `t`'s state `h` is in place.
///
/// The recurrence sweeps the columns of `W_hh` first to last in even steps and last to first
/// in odd ones. `W_hh` is larger than L1 here, so a sweep in one direction only would find
/// none of it there (the least recently read column is always the next one); turned around,
/// each step starts on the columns the step before read last, which L1 still holds.
pub(crate) fn recur<C: Cell<I, H>, const I: usize, const H: usize>(
    cell: &C,
    backend: Backend,
    xs: &[SVector<f32, I>; HOIST],
    state: &mut SVector<f32, H>,
    mut after: impl FnMut(usize, &SVector<f32, H>),
) {
    let (w_xh, w_hh, b) = cell.weights();
    let mut projections = [[0.0; H]; HOIST];
    backend.project_weights::<I, H, HOIST, C::Weight>(w_xh, b, xs, &mut projections);
    for (t, u) in projections.iter().enumerate() {
        let [h] = &mut state.data.0;
        let w = (&[], w_hh, u);
        *h = if t % 2 == 0 {
            backend.step_of::<0, H, C::Activation, false, C::Weight>(w, &[], h)
        } else {
            backend.step_of::<0, H, C::Activation, true, C::Weight>(w, &[], h)
        };
        after(t, state);
    }
}
