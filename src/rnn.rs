//! A stateful network: a cell, a readout and the hidden state they carry, for stepping one
//! input at a time (an audio sample, a control tick) or whole blocks.
//!
//! ```text
//! h ← A(W_xh·x + W_hh·h + b)      the state, owned by the network
//! y = W_hy·h + b_y                 what `step` returns
//! ```

use nalgebra::SVector;

/// Steps whose input projections [`Rnn::process`] computes together.
const HOIST: usize = 8;

/// The input size from which [`Rnn::process`] hoists the input projections (below it, the
/// extra pass costs more than reading `W_xh` once per step).
const HOIST_FROM_INPUTS: usize = 8;

/// The weight size (bytes of `W_xh` and `W_hh`) from which [`Rnn::process`] hoists: above a
/// typical 32 KiB L1 data cache, a step reads its weights from L2, and reading `W_xh` once per
/// 8 steps saves more than the extra pass costs. Below it (e.g. (32, 64), 24 KiB) the weights
/// stay in L1 and hoisting was measured slower than stepping.
const HOIST_FROM_BYTES: usize = 32 * 1024;

/// Whether [`Rnn::process`] hoists the input projections of an `(I, H)` cell.
const fn hoists(i: usize, h: usize) -> bool {
    i >= HOIST_FROM_INPUTS && h * (i + h) * size_of::<f32>() > HOIST_FROM_BYTES
}

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::flush::flush_state;
use crate::in_place::{InPlace, copy_pod, impl_zeroable};
use crate::kernel::{Backend, BackendChoice};
use crate::readout::Readout;

/// What happens to the hidden state when new weights are swapped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnSwap {
    /// Keep the current state: the new weights continue from it.
    KeepState,
    /// Go back to the initial state.
    Reset,
}

/// A vanilla RNN with its output layer and its state: `step` advances one input and returns
/// the logits.
///
/// Everything lives inline (no heap): an `Rnn` can be a `static`, and swapping weights copies
/// them into place.
///
/// ```
/// use elman::{Readout, Rnn, RnnCell, softmax};
/// use elman::nalgebra::vector;
///
/// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]);
/// let readout: Readout<2, 2> = Readout::from_row_major([[1.0, 0.0], [0.0, 1.0]], [0.0; 2]);
/// let mut rnn = Rnn::new(cell, readout);
/// for sample in [0.5, 0.25, -1.0] {
///     let y = rnn.step(&vector![sample]);
///     let p = softmax(&y);
///     assert!((p.sum() - 1.0).abs() < 1e-6);
/// }
/// rnn.reset();
/// assert_eq!(rnn.state(), &vector![0.0, 0.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Rnn<const I: usize, const H: usize, const O: usize, A = Tanh> {
    cell: RnnCell<I, H, A>,
    readout: Readout<H, O>,
    state: SVector<f32, H>,
    initial: SVector<f32, H>,
    backend: BackendChoice,
}

impl<const I: usize, const H: usize, const O: usize, A: Activation> Rnn<I, H, O, A> {
    /// A network with a zero initial state, stepping on [`Backend::best`].
    #[must_use]
    pub const fn new(cell: RnnCell<I, H, A>, readout: Readout<H, O>) -> Self {
        Self::with_initial_state(
            cell,
            readout,
            SVector::from_array_storage(nalgebra::ArrayStorage([[0.0; H]])),
        )
    }

    /// A network starting from (and resetting to) a given or learned initial state `h0`.
    /// Values of `h0` below [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude are stored as +0.
    #[must_use]
    pub const fn with_initial_state(
        cell: RnnCell<I, H, A>,
        readout: Readout<H, O>,
        h0: SVector<f32, H>,
    ) -> Self {
        let h0 = flush_state(h0);
        Self {
            cell,
            readout,
            state: h0,
            initial: h0,
            backend: BackendChoice::BEST,
        }
    }

    /// The same network stepping on `backend` ([`Backend::PORTABLE`] for results that are the
    /// same bits on every machine).
    #[must_use]
    pub const fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = BackendChoice::of(backend);
        self
    }

    #[inline]
    fn backend(&self) -> Backend {
        self.backend.backend()
    }

    /// One input: advances the state and returns the logits `W_hy·h + b_y` (take
    /// [`softmax`](crate::softmax), [`sigmoid`](crate::sigmoid) or [`argmax`](crate::argmax) of
    /// them for a reading). Allocates nothing.
    #[inline]
    pub fn step(&mut self, x: &SVector<f32, I>) -> SVector<f32, O> {
        self.advance(self.backend(), x);
        self.readout.logits_of_clean(&self.state)
    }

    /// `RnnCell::step`'s arithmetic, its result written over the state (one copy; through
    /// `SVector` return values it took three at (32, 64), 6 % of the step).
    #[inline]
    fn advance(&mut self, backend: Backend, x: &SVector<f32, I>) {
        let cell = &self.cell;
        let [state] = &mut self.state.data.0;
        *state = backend.step_arrays::<I, H, A, false>(
            &cell.w_xh().data.0,
            &cell.w_hh().data.0,
            &cell.bias().data.0[0],
            &x.data.0[0],
            state,
        );
    }

    /// Many-to-many: steps through `xs` and writes each step's logits to `ys[t]`, for `t` below
    /// the shorter of the two. Allocates nothing.
    ///
    /// From 8 inputs per step on (`I ≥ 8`) and weights larger than 32 KiB (an L1 data cache),
    /// the input projections `W_xh·x_t + b` are computed 8 steps at a time before the
    /// recurrence, each weight of `W_xh` read once for the 8 (input-projection hoisting), and
    /// the recurrence then adds `W_hh·h`, sweeping the columns of `W_hh` backward in every
    /// other step so that each step starts on the columns the one before read last, which L1
    /// still holds. The README's table gives what `cargo bench --bench realtime` and
    /// `scripts/ab.sh` measured. Smaller cells are not hoisted (with few input columns the extra
    /// pass has little to save, and weights that stay in L1 cost nothing to read again): their
    /// steps run as [`RnnCell::run`] runs them, many per call of the kernel with the state kept
    /// in registers, and give `step`'s bits. The hoisted sums are rounded in other orders than
    /// [`step`](Self::step)'s, so the two agree within the rounding of two summation orders
    /// (`tests/realtime.rs` bounds it), not to the bit.
    pub fn process(&mut self, xs: &[SVector<f32, I>], ys: &mut [SVector<f32, O>]) {
        let n = xs.len().min(ys.len());
        let (xs, ys) = (&xs[..n], &mut ys[..n]);
        let backend = self.backend();
        if !hoists(I, H) {
            self.run_and_read(backend, xs, ys);
            return;
        }
        let (x_blocks, x_rest) = xs.as_chunks::<HOIST>();
        let (y_blocks, y_rest) = ys.as_chunks_mut::<HOIST>();
        for (xb, yb) in x_blocks.iter().zip(y_blocks) {
            self.recur(xb, |t, rnn| yb[t] = rnn.readout.logits_of_clean(&rnn.state));
        }
        for (x, y) in x_rest.iter().zip(y_rest) {
            self.advance(backend, x);
            *y = self.readout.logits_of_clean(&self.state);
        }
    }

    /// Many-to-one: steps through `xs` (with the hoisting of [`process`](Self::process)) and
    /// returns the logits after the last one (`None` for no input, the state untouched). The
    /// readout runs once.
    pub fn process_last(&mut self, xs: &[SVector<f32, I>]) -> Option<SVector<f32, O>> {
        let (blocks, rest) = if hoists(I, H) {
            xs.as_chunks::<HOIST>()
        } else {
            (&[][..], xs)
        };
        for block in blocks {
            self.recur(block, |_, _| {});
        }
        let backend = self.backend();
        self.state = self.cell.run_with(backend, rest, &self.state);
        (!xs.is_empty()).then(|| self.readout.logits_of_clean(&self.state))
    }

    /// `process` without hoisting: the steps run through the kernel in one call (the backend
    /// chosen once, the state kept in registers from one step to the next), each state read
    /// out as it comes. With `step`'s bits.
    fn run_and_read(
        &mut self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        ys: &mut [SVector<f32, O>],
    ) {
        let (cell, readout) = (&self.cell, &self.readout);
        let weights = (cell.w_xh(), cell.w_hh(), cell.bias());
        let [state] = &mut self.state.data.0;
        backend.run::<I, H, A, _, _>(
            weights,
            xs,
            state,
            ys.iter_mut(),
            // Inlined into the kernel's loop, readout and all (`partial_logits` is
            // `inline(always)` too): called, the readout makes the compiler spill the state
            // around every call, back onto the chain from one step to the next.
            #[inline(always)]
            |h, y| {
                *y = readout.logits_of_clean(&SVector::from(*h));
            },
        );
    }

    /// `HOIST` steps: their input projections at once, then the recurrence, calling `after(t)`
    /// once step `t`'s state is in place.
    ///
    /// The recurrence sweeps the columns of `W_hh` first to last in even steps and last to first
    /// in odd ones. `W_hh` is larger than L1 here, so a sweep in one direction only would find
    /// none of it there (the least recently read column is always the next one); turned around,
    /// each step starts on the columns the step before read last, which L1 still holds.
    fn recur(&mut self, xs: &[SVector<f32, I>; HOIST], mut after: impl FnMut(usize, &Self)) {
        let backend = self.backend();
        let mut projections = [[0.0; H]; HOIST];
        backend.project::<I, H, HOIST>(self.cell.w_xh(), self.cell.bias(), xs, &mut projections);
        let w_hh = &self.cell.w_hh().data.0;
        for (t, u) in projections.iter().enumerate() {
            let [h] = &mut self.state.data.0;
            *h = if t % 2 == 0 {
                backend.step_arrays::<0, H, A, false>(&[], w_hh, u, &[], h)
            } else {
                backend.step_arrays::<0, H, A, true>(&[], w_hh, u, &[], h)
            };
            after(t, self);
        }
    }

    /// The hidden state.
    #[must_use]
    pub const fn state(&self) -> &SVector<f32, H> {
        &self.state
    }

    /// Replaces the hidden state. Values below [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude
    /// are stored as +0: the state a network holds is always one its steps can read without
    /// meeting a subnormal number.
    pub const fn set_state(&mut self, h: SVector<f32, H>) {
        self.state = flush_state(h);
    }

    /// Goes back to the initial state.
    pub const fn reset(&mut self) {
        self.state = self.initial;
    }

    /// The initial state that [`reset`](Self::reset) returns to.
    #[must_use]
    pub const fn initial_state(&self) -> &SVector<f32, H> {
        &self.initial
    }

    /// The cell.
    #[must_use]
    pub const fn cell(&self) -> &RnnCell<I, H, A> {
        &self.cell
    }

    /// The readout.
    #[must_use]
    pub const fn readout(&self) -> &Readout<H, O> {
        &self.readout
    }

    /// Swaps in new weights while running: they are copied into place (nothing is allocated),
    /// and the state is kept or reset as `on_swap` says.
    pub fn swap_weights(
        &mut self,
        cell: RnnCell<I, H, A>,
        readout: Readout<H, O>,
        on_swap: OnSwap,
    ) {
        self.cell = cell;
        self.readout = readout;
        if on_swap == OnSwap::Reset {
            self.reset();
        }
    }
}

/// Built, copied and swapped in place: see [`InPlace`].
impl<const I: usize, const H: usize, const O: usize, A: Activation> Rnn<I, H, O, A> {
    /// A network on the heap from a cell and a readout, as [`new`](Self::new) builds one: they
    /// are copied into place, and the network is never on the stack, whatever its size.
    ///
    /// ```
    /// use elman::{InPlace, Readout, Rnn, RnnCell};
    /// use elman::nalgebra::SVector;
    ///
    /// let cell = RnnCell::<64, 128>::zeroed_box();
    /// let head: Readout<128, 4> = Readout::default();
    /// let mut rnn = Rnn::new_boxed(&cell, &head);
    /// assert_eq!(rnn.step(&SVector::zeros()), SVector::<f32, 4>::zeros());
    /// ```
    #[cfg(feature = "std")]
    #[must_use]
    pub fn new_boxed(cell: &RnnCell<I, H, A>, readout: &Readout<H, O>) -> Box<Self> {
        let mut rnn = Self::zeroed_box();
        rnn.swap_weights_from(cell, readout, OnSwap::Reset);
        rnn
    }

    /// [`swap_weights`](Self::swap_weights) from references: the weights are copied into place
    /// and never pass through the stack, whatever their size.
    pub fn swap_weights_from(
        &mut self,
        cell: &RnnCell<I, H, A>,
        readout: &Readout<H, O>,
        on_swap: OnSwap,
    ) {
        self.cell.copy_from(cell);
        self.readout.copy_from(readout);
        if on_swap == OnSwap::Reset {
            self.reset();
        }
    }

    /// Makes `h0` the initial state and resets to it: what
    /// [`with_initial_state`](Self::with_initial_state) builds, in place.
    pub const fn set_initial_state(&mut self, h0: SVector<f32, H>) {
        let h0 = flush_state(h0);
        self.initial = h0;
        self.state = h0;
    }

    /// Steps on `backend` from now on: [`with_backend`](Self::with_backend), in place.
    pub const fn set_backend(&mut self, backend: Backend) {
        self.backend = BackendChoice::of(backend);
    }
}

impl<const I: usize, const H: usize, const O: usize, A> InPlace for Rnn<I, H, O, A> {
    fn copy_from(&mut self, source: &Self) {
        self.cell.copy_from(&source.cell);
        self.readout.copy_from(&source.readout);
        copy_pod(&mut self.state, &source.state);
        copy_pod(&mut self.initial, &source.initial);
        self.backend = source.backend;
    }
}

impl_zeroable!(impl[const I: usize, const H: usize, const O: usize, A] for Rnn<I, H, O, A> {
    Rnn { cell, readout, state, initial, backend } => cell, readout, state, initial, backend
});
