//! A stateful network: recurrent layers, a readout and the hidden state they carry, for
//! stepping one input at a time (an audio sample, a control tick) or whole blocks.
//!
//! ```text
//! h ← layers(x, h)             every layer's state, owned by the network (one cell: A(W_xh·x + W_hh·h + b))
//! y = W_hy·h_last + b_y        what `step` returns, from the last layer's state
//! ```
//!
//! One design for one layer and many: [`Network<L, I, H, O>`] runs any [`Layers`] `L`, and
//! [`Rnn`] (one [`RnnCell`]: `nn.RNN` + `nn.Linear`), [`Rnn2`], [`Rnn3`] and [`Rnn4`]
//! (`nn.RNN(num_layers = 2..4)` + `nn.Linear`) name its common forms.

use nalgebra::SVector;

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::in_place::{InPlace, impl_zeroable};
use crate::kernel::{Backend, BackendChoice};
use crate::layers::Layers;
use crate::readout::Readout;
use crate::stack::{Stack2, Stack3, Stack4};

/// What happens to the hidden state when new weights are swapped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnSwap {
    /// Keep the current state: the new weights continue from it.
    KeepState,
    /// Go back to the initial state.
    Reset,
}

/// Recurrent layers `L` (from `I` inputs to a last layer of `H` units), their readout to `O`
/// logits and their state: `step` advances one input and returns the logits.
///
/// `L` is one [`RnnCell`] ([`Rnn`]) or a [`Stack`](crate::stack::Stack) of them ([`Rnn2`],
/// [`Rnn3`], [`Rnn4`], or any [`Stack`](crate::stack::Stack) whose sizes chain): everything
/// below works the same for both, the state being every layer's ([`Layers::State`]).
///
/// Everything lives inline (no heap): a network can be a `static`, and swapping weights copies
/// them into place.
///
/// ```
/// use elman::stack::Stack;
/// use elman::{Readout, Rnn2, RnnCell};
/// use elman::nalgebra::{self, SVector, vector};
///
/// let lower: RnnCell<1, 2> = RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]);
/// let upper: RnnCell<2, 2> = RnnCell::from_row_major([[0.5, 0.5], [0.0, 1.0]], [[0.25; 2]; 2], [0.1; 2]);
/// let head: Readout<2, 3> = Readout::from_row_major([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0; 3]);
/// let mut net: Rnn2<1, 2, 3> = Rnn2::new(Stack::new(lower.clone(), upper.clone()), head.clone());
/// let y = net.step(&vector![0.5]);
/// // The lower layer's new state is the upper layer's input; the readout reads the upper one.
/// let h0 = lower.step(&vector![0.5], &SVector::zeros());
/// let h1 = upper.step(&h0, &SVector::zeros());
/// assert_eq!(net.state(), &(h0, h1));
/// assert_eq!(y, head.logits(&h1));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Network<L, const I: usize, const H: usize, const O: usize>
where
    L: Layers<I, H>,
{
    layers: L,
    readout: Readout<H, O>,
    state: L::State,
    initial: L::State,
    backend: BackendChoice,
}

/// A vanilla RNN with its output layer and its state, `nn.RNN` + `nn.Linear`: a [`Network`] of
/// one [`RnnCell`]. `step` advances one input and returns the logits.
///
/// ```
/// use elman::{Readout, Rnn, RnnCell, softmax};
/// use elman::nalgebra::{self, vector};
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
pub type Rnn<const I: usize, const H: usize, const O: usize, A = Tanh> =
    Network<RnnCell<I, H, A>, I, H, O>;

/// `nn.RNN(num_layers=2)` + `nn.Linear`: a [`Network`] of a [`Stack2`]. Its state is the two
/// layers' `(h0, h1)`.
pub type Rnn2<const I: usize, const H: usize, const O: usize, A = Tanh> =
    Network<Stack2<I, H, A>, I, H, O>;

/// `nn.RNN(num_layers=3)` + `nn.Linear`: a [`Network`] of a [`Stack3`]. Its state is
/// `((h0, h1), h2)`.
pub type Rnn3<const I: usize, const H: usize, const O: usize, A = Tanh> =
    Network<Stack3<I, H, A>, I, H, O>;

/// `nn.RNN(num_layers=4)` + `nn.Linear`: a [`Network`] of a [`Stack4`]. Its state is
/// `(((h0, h1), h2), h3)`.
pub type Rnn4<const I: usize, const H: usize, const O: usize, A = Tanh> =
    Network<Stack4<I, H, A>, I, H, O>;

impl<L: Layers<I, H>, const I: usize, const H: usize, const O: usize> Network<L, I, H, O> {
    /// A network with a zero initial state, stepping on [`Backend::best`].
    #[must_use]
    pub const fn new(layers: L, readout: Readout<H, O>) -> Self {
        Self {
            layers,
            readout,
            state: L::ZERO_STATE,
            initial: L::ZERO_STATE,
            backend: BackendChoice::BEST,
        }
    }

    /// A network starting from (and resetting to) a given or learned initial state `h0` (every
    /// layer's, as [`state`](Self::state) gives it). Values of `h0` below
    /// [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude are stored as +0.
    #[must_use]
    pub fn with_initial_state(layers: L, readout: Readout<H, O>, h0: L::State) -> Self {
        let h0 = L::flushed(&h0);
        Self {
            layers,
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

    /// One input: advances the state (every layer, bottom to top) and returns the logits
    /// `W_hy·h + b_y` of the last layer's state (take [`softmax`](crate::softmax),
    /// [`sigmoid`](crate::sigmoid) or [`argmax`](crate::argmax) of them for a reading).
    /// Allocates nothing.
    // Always inlined: the layers' step is a trait method, which rustc's own inliner cannot
    // see through in this generic body, and LLVM then judged the whole step too large to
    // inline into a caller's loop; called, a small network's step pays the call and the
    // state's trip through memory on every input.
    #[inline(always)]
    pub fn step(&mut self, x: &SVector<f32, I>) -> SVector<f32, O> {
        let backend = self.backend();
        self.layers.advance_flushed(backend, x, &mut self.state);
        backend.logits(&self.readout, L::output(&self.state))
    }

    /// Many-to-many: steps through `xs` and writes each step's logits to `ys[t]`, for `t` below
    /// the shorter of the two. Allocates nothing.
    ///
    /// One cell ([`Rnn`]) runs its steps many per call of the kernel, the state kept in
    /// registers, with the bits of [`step`](Self::step). From 8 inputs per step on (`I ≥ 8`)
    /// and weights larger than 32 KiB (an L1 data cache), the input projections `W_xh·x_t + b`
    /// are computed 8 steps at a time before the recurrence, each weight of `W_xh` read once for
    /// the 8 (input-projection hoisting), and the recurrence then adds `W_hh·h`, sweeping the
    /// columns of `W_hh` backward in every other step so that each step starts on the columns
    /// the one before read last, which L1 still holds. Smaller cells are not hoisted (with few
    /// input columns the extra pass has little to save, and weights that stay in L1 cost
    /// nothing to read again). The hoisted sums are rounded in other orders than
    /// [`step`](Self::step)'s, so the two agree within the rounding of two summation orders
    /// (`tests/realtime.rs` bounds it), not to the bit.
    ///
    /// A stack steps its layers one after the other at each step, with `step`'s bits.
    pub fn process(&mut self, xs: &[SVector<f32, I>], ys: &mut [SVector<f32, O>]) {
        let n = xs.len().min(ys.len());
        let backend = self.backend();
        self.layers.process(
            backend,
            &xs[..n],
            &mut self.state,
            &self.readout,
            &mut ys[..n],
        );
    }

    /// Many-to-one: steps through `xs` (as [`process`](Self::process) does) and returns the
    /// logits after the last one (`None` for no input, the state untouched). The readout runs
    /// once.
    pub fn process_last(&mut self, xs: &[SVector<f32, I>]) -> Option<SVector<f32, O>> {
        let backend = self.backend();
        self.layers.process_last(backend, xs, &mut self.state);
        (!xs.is_empty()).then(|| backend.logits(&self.readout, L::output(&self.state)))
    }

    /// The hidden state: every layer's ([`Layers::State`]), `SVector<f32, H>` for one cell.
    #[must_use]
    pub const fn state(&self) -> &L::State {
        &self.state
    }

    /// The last layer's state, the one the readout reads (the whole state for one cell).
    #[must_use]
    pub fn output_state(&self) -> &SVector<f32, H> {
        L::output(&self.state)
    }

    /// Replaces the hidden state. Values below [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude
    /// are stored as +0: the state a network holds is always one its steps can read without
    /// meeting a subnormal number.
    pub fn set_state(&mut self, h: L::State) {
        self.state = L::flushed(&h);
    }

    /// Goes back to the initial state.
    pub const fn reset(&mut self) {
        self.state = self.initial;
    }

    /// The initial state that [`reset`](Self::reset) returns to.
    #[must_use]
    pub const fn initial_state(&self) -> &L::State {
        &self.initial
    }

    /// The recurrent layers.
    #[must_use]
    pub const fn layers(&self) -> &L {
        &self.layers
    }

    /// The readout.
    #[must_use]
    pub const fn readout(&self) -> &Readout<H, O> {
        &self.readout
    }

    /// Swaps in new weights while running: they are copied into place (nothing is allocated),
    /// and the state is kept or reset as `on_swap` says.
    pub fn swap_weights(&mut self, layers: L, readout: Readout<H, O>, on_swap: OnSwap) {
        self.layers = layers;
        self.readout = readout;
        if on_swap == OnSwap::Reset {
            self.reset();
        }
    }
}

impl<const I: usize, const H: usize, const O: usize, A: Activation> Rnn<I, H, O, A> {
    /// The cell (the network's one layer, as [`layers`](Self::layers) gives it).
    #[must_use]
    pub const fn cell(&self) -> &RnnCell<I, H, A> {
        &self.layers
    }
}

/// Built, copied and swapped in place: see [`InPlace`].
impl<L: Layers<I, H>, const I: usize, const H: usize, const O: usize> Network<L, I, H, O> {
    /// A network on the heap from layers and a readout, as [`new`](Self::new) builds one: they
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
    pub fn new_boxed(layers: &L, readout: &Readout<H, O>) -> Box<Self> {
        let mut network = Self::zeroed_box();
        network.swap_weights_from(layers, readout, OnSwap::Reset);
        network
    }

    /// [`swap_weights`](Self::swap_weights) from references: the weights are copied into place
    /// and never pass through the stack, whatever their size.
    pub fn swap_weights_from(&mut self, layers: &L, readout: &Readout<H, O>, on_swap: OnSwap) {
        self.layers.copy_from(layers);
        self.readout.copy_from(readout);
        if on_swap == OnSwap::Reset {
            self.reset();
        }
    }

    /// Makes `h0` the initial state and resets to it: what
    /// [`with_initial_state`](Self::with_initial_state) builds, in place.
    pub fn set_initial_state(&mut self, h0: L::State) {
        let h0 = L::flushed(&h0);
        self.initial = h0;
        self.state = h0;
    }

    /// The layers and the readout, to be written in place (by the loader).
    #[cfg(feature = "std")]
    pub(crate) const fn weights_mut(&mut self) -> (&mut L, &mut Readout<H, O>) {
        (&mut self.layers, &mut self.readout)
    }

    /// Steps on `backend` from now on: [`with_backend`](Self::with_backend), in place.
    pub const fn set_backend(&mut self, backend: Backend) {
        self.backend = BackendChoice::of(backend);
    }
}

impl<L: Layers<I, H>, const I: usize, const H: usize, const O: usize> InPlace
    for Network<L, I, H, O>
{
    fn copy_from(&mut self, source: &Self) {
        self.layers.copy_from(&source.layers);
        self.readout.copy_from(&source.readout);
        L::copy_state(&mut self.state, &source.state);
        L::copy_state(&mut self.initial, &source.initial);
        self.backend = source.backend;
    }
}

impl_zeroable!(impl[L: Layers<I, H>, const I: usize, const H: usize, const O: usize] for Network<L, I, H, O> {
    Network { layers, readout, state, initial, backend } => layers, readout, state, initial, backend
});
