//! Many independent streams of one network's layers, advanced together: each vector lane is a
//! stream.
//!
//! ```text
//! for every stream s:   h_s ← A(W_xh·x_s + W_hh·h_s + b)        (one cell; a stack layer by layer)
//! ```
//!
//! The states are stored unit-major, `h[j][s]` (unit `j` of stream `s`), so that one vector
//! holds unit `j` of 8 streams and each weight is one broadcast multiply-add for all of them:
//! a bank does the work of `N` separate cells with `N / 8` times fewer instructions, and its
//! streams never wait on each other. Any `N` works: when 8 does not divide it, the last chunk of
//! streams overlaps its neighbour (computed twice, stored identically); fewer than 8 streams are
//! padded. A step reads one of two state buffers and writes the other, so it never copies the
//! states. A bank of stacked layers ([`Bank`] of a [`Stack`](crate::stack::Stack)) keeps each
//! layer's states unit-major and steps each layer's bank kernel in turn, the one above reading
//! the new states of the one below as its (unit-major) inputs.
//!
//! Each stream equals the cell stepped alone within the rounding of two summation orders (the
//! bank sums each unit's terms in order, the single step in interleaved partial sums), which
//! `tests/realtime.rs` bounds with proptest: they are not the same bits.

use nalgebra::SVector;

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::in_place::{InPlace, impl_zeroable};
use crate::kernel::{Backend, BackendChoice};
use crate::layers::{Layers, column};
use crate::readout::Readout;
use crate::rnn::OnSwap;

/// `N` independent streams (channels, voices, users) of one cell: a [`Bank`] of one
/// [`RnnCell`], advanced by one call.
///
/// ```
/// use elman::{RnnBank, RnnCell};
/// use elman::nalgebra::{self, SVector, vector};
///
/// let cell: RnnCell<1, 4> = RnnCell::from_row_major([[0.5], [-0.5], [1.0], [0.25]], [[0.1; 4]; 4], [0.0; 4]);
/// let mut bank: RnnBank<1, 4, 3> = RnnBank::new(cell.clone());
/// bank.step(&[vector![1.0], vector![0.0], vector![-1.0]]);
/// // Stream 0 is what the cell alone computes, within rounding.
/// let alone = cell.step(&vector![1.0], &SVector::zeros());
/// assert!((bank.state(0) - alone).amax() < 1e-6);
/// bank.reset_stream(0);
/// assert_eq!(bank.state(0), SVector::<f32, 4>::zeros());
/// ```
pub type RnnBank<const I: usize, const H: usize, const N: usize, A = Tanh> =
    Bank<RnnCell<I, H, A>, I, H, N>;

/// `N` independent streams of recurrent layers `L` (one [`RnnCell`], as [`RnnBank`], or a
/// [`Stack`](crate::stack::Stack) of them), advanced by one call. A stream's state is every
/// layer's ([`Layers::State`]).
///
/// ```
/// use elman::stack::{Stack, Stack2};
/// use elman::{Bank, Layers, Readout, RnnCell};
/// use elman::nalgebra::{self, vector};
///
/// let lower: RnnCell<1, 2> = RnnCell::from_row_major([[0.5], [-0.5]], [[0.1; 2]; 2], [0.0; 2]);
/// let upper: RnnCell<2, 2> = RnnCell::from_row_major([[1.0, 0.0], [0.5, 0.5]], [[0.2; 2]; 2], [0.1; 2]);
/// let layers: Stack2<1, 2> = Stack::new(lower, upper);
/// let mut bank: Bank<Stack2<1, 2>, 1, 2, 3> = Bank::new(layers.clone());
/// bank.step(&[vector![1.0], vector![0.0], vector![-1.0]]);
/// // Stream 2 is what the layers alone compute, within rounding.
/// let mut alone = Stack2::<1, 2>::ZERO_STATE;
/// layers.advance(elman::Backend::best(), &vector![-1.0], &mut alone);
/// let (h0, h1) = bank.state(2);
/// assert!((h0 - alone.0).amax() < 1e-6 && (h1 - alone.1).amax() < 1e-6);
/// // Every stream's logits, from its last layer's state.
/// let head: Readout<2, 1> = Readout::from_row_major([[1.0, -1.0]], [0.0]);
/// assert!((bank.outputs(&head)[2] - head.logits(&alone.1)).amax() < 1e-6);
/// ```
#[derive(Clone)]
pub struct Bank<L, const I: usize, const H: usize, const N: usize>
where
    L: Layers<I, H>,
{
    layers: L,
    /// Two sets of states, `states[current]` the live one (`[j][s]`: unit `j` of stream `s`,
    /// for each layer): a step reads one and writes the other, so it never copies the states.
    states: [L::Units<N>; 2],
    /// Which buffer is live. A `bool`, written and read as one byte: the next step's read of it
    /// is then forwarded from the write. As a `usize`, flipped by a one-byte `xor` and read as
    /// eight bytes, the read waited for the write to retire, and with it the whole previous
    /// step, which slowed the small banks, whose steps are short.
    current: bool,
    backend: BackendChoice,
    /// Where [`step`](Self::step) transposes the inputs for the kernel, when it does: kept
    /// rather than made on the stack at every step, which would clear it first.
    inputs: Scratch<I, N>,
}

/// A step's inputs, unit-major: written in full before every read, never part of the bank's
/// value (not compared, not printed).
#[derive(Clone)]
struct Scratch<const I: usize, const N: usize>([[f32; N]; I]);

/// The layers, the live states (as [`states`](Bank::states) gives them) and the backend
/// choice: what [`PartialEq`] compares, so that equal banks print alike.
impl<L, const I: usize, const H: usize, const N: usize> core::fmt::Debug for Bank<L, I, H, N>
where
    L: Layers<I, H>,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Bank")
            .field("layers", &self.layers)
            .field("states", self.states())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Equal layers, states and backend choice (whichever of the two buffers holds the states).
impl<L: Layers<I, H>, const I: usize, const H: usize, const N: usize> PartialEq
    for Bank<L, I, H, N>
{
    fn eq(&self, other: &Self) -> bool {
        self.layers == other.layers
            && self.states() == other.states()
            && self.backend == other.backend
    }
}

impl<L: Layers<I, H>, const I: usize, const H: usize, const N: usize> Bank<L, I, H, N> {
    /// `N` streams of `layers`, all starting from zero.
    #[must_use]
    pub fn new(layers: L) -> Self {
        Self {
            layers,
            states: bytemuck::Zeroable::zeroed(),
            current: false,
            backend: BackendChoice::BEST,
            inputs: Scratch([[0.0; N]; I]),
        }
    }

    /// The same bank stepping on `backend`.
    #[must_use]
    pub const fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = BackendChoice::of(backend);
        self
    }

    #[inline]
    fn backend(&self) -> Backend {
        self.backend.backend()
    }

    /// Advances every stream by one input, `xs[s]` for stream `s`. Allocates nothing.
    ///
    /// With at most 8 hidden units in the first layer (one block of them) the kernel gathers
    /// each stream's inputs into its vectors itself when there is one input per stream or
    /// fewer than 8 streams, and on the 512-bit backend's 16 lanes (at least 16 streams, and a
    /// first layer's state of at least 64 values in all) when there are fewer than 8 inputs:
    /// each input by lane blends and permutations of the streams' consecutive values.
    /// With one input per stream and more units, the streams' inputs already are the
    /// unit-major row, and the step is [`step_unit_major`](Self::step_unit_major)'s.
    /// Otherwise they are first transposed to unit-major (into a buffer the bank keeps, flushed
    /// as they are moved: no pass of their own), 8 streams at a time: in 8×8 tiles of shuffles
    /// with 8 inputs or more, by lane selects and a permutation of the streams' consecutive
    /// values with fewer. Either way the sums are those of
    /// [`step_unit_major`](Self::step_unit_major), to the bit. The layers above the first read
    /// the states below them, unit-major already.
    #[inline]
    pub fn step(&mut self, xs: &[SVector<f32, I>; N]) {
        let backend = self.backend();
        // Input values below `FLUSH_BELOW` read as +0: flushed by the kernel as it loads them
        // where it gathers them itself (it loads each once), else as `step_unit_major` does
        // (one input), else by the transposition.
        if L::INPUT_UNITS <= 8
            && (I == 1 || N < 8 || backend.bank_deinterleaves(I, L::INPUT_UNITS, N))
        {
            let layers = &self.layers;
            Self::advance(&mut self.states, &mut self.current, |previous, next| {
                layers.bank_step_vectors(backend, xs, previous, next);
            });
            return;
        }
        // One input per stream: the streams' vectors of one value each already are the
        // unit-major row, nothing to transpose.
        if let Some(x) = one_input_row(xs) {
            self.step_unit_major(x);
            return;
        }
        backend.transpose_inputs(xs, &mut self.inputs.0);
        self.advance_buffered(backend, true);
    }

    /// Advances every stream by one input given unit-major, `x[k][s]` (input `k` of stream `s`):
    /// no transposition. For one input per stream (`I = 1`), `x[0]` is simply the `N` samples.
    #[inline]
    pub fn step_unit_major(&mut self, x: &[[f32; N]; I]) {
        let backend = self.backend();
        let layers = &self.layers;
        if L::INPUT_UNITS <= 8 {
            Self::advance(&mut self.states, &mut self.current, |previous, next| {
                layers.bank_step_unit_major(backend, (x, false, false), previous, next);
            });
        } else if backend.bank_needs_flush(N, L::INPUT_UNITS, x.as_flattened()) {
            self.inputs.0 = *x;
            self.advance_buffered(backend, false);
        } else {
            Self::advance(&mut self.states, &mut self.current, |previous, next| {
                layers.bank_step_unit_major(backend, (x, true, false), previous, next);
            });
        }
    }

    /// One step from the inputs in the bank's own buffer (unit-major): `transposed` there by the
    /// bank, which flushed them as it moved them, or else copied there as given, and flushed
    /// here first.
    #[inline]
    fn advance_buffered(&mut self, backend: Backend, transposed: bool) {
        if !transposed {
            for row in &mut self.inputs.0 {
                *row = crate::flush::flushed(row);
            }
        }
        let (layers, inputs) = (&self.layers, &self.inputs.0);
        Self::advance(&mut self.states, &mut self.current, |previous, next| {
            layers.bank_step_unit_major(backend, (inputs, true, transposed), previous, next);
        });
    }

    /// One step by `step(previous, next)`, from the live buffer into the other, which then
    /// becomes the live one. (The bank's parts, not `self`, so that the inputs may be the bank's
    /// own buffer.)
    #[inline]
    fn advance(
        states: &mut [L::Units<N>; 2],
        current: &mut bool,
        step: impl FnOnce(&L::Units<N>, &mut L::Units<N>),
    ) {
        let [first, second] = states;
        let (previous, next) = if *current {
            (&*second, first)
        } else {
            (&*first, second)
        };
        step(previous, next);
        *current = !*current;
    }

    /// The index of the live buffer.
    const fn live(&self) -> usize {
        if self.current { 1 } else { 0 }
    }

    /// Stream `s`'s hidden state (every layer's, as [`Layers::State`]).
    ///
    /// # Panics
    ///
    /// If `s ≥ N`, as indexing a slice does; [`get_state`](Self::get_state) returns `None`
    /// instead.
    #[must_use]
    #[track_caller]
    pub fn state(&self, s: usize) -> L::State {
        match self.get_state(s) {
            Some(h) => h,
            None => out_of_range(s, N),
        }
    }

    /// Stream `s`'s hidden state, or `None` if the bank has no stream `s` (`s ≥ N`).
    ///
    /// ```
    /// use elman::{RnnBank, RnnCell};
    ///
    /// let bank: RnnBank<1, 2, 4> = RnnBank::new(RnnCell::default());
    /// assert!(bank.get_state(3).is_some());
    /// assert!(bank.get_state(4).is_none());
    /// ```
    #[must_use]
    pub fn get_state(&self, s: usize) -> Option<L::State> {
        (s < N).then(|| L::stream_state(self.states(), s))
    }

    /// All states, unit-major: `states()[j][s]` is unit `j` of stream `s` for one cell; a
    /// stack's are its layers' `(lower, upper)`.
    #[must_use]
    pub const fn states(&self) -> &L::Units<N> {
        &self.states[self.live()]
    }

    /// The last layer's states, unit-major (`[j][s]`): what [`outputs`](Self::outputs) reads.
    #[must_use]
    pub fn output_states(&self) -> &[[f32; N]; H] {
        L::output_units(self.states())
    }

    /// Sets stream `s`'s hidden state. Values below [`FLUSH_BELOW`](crate::FLUSH_BELOW) in
    /// magnitude are stored as +0, so that no step meets a subnormal number.
    ///
    /// # Panics
    ///
    /// If `s ≥ N`; [`try_set_state`](Self::try_set_state) returns an error instead.
    #[track_caller]
    pub fn set_state(&mut self, s: usize, h: &L::State) {
        if let Err(e) = self.try_set_state(s, h) {
            out_of_range(e.stream, e.streams);
        }
    }

    /// Sets stream `s`'s hidden state, or reports that the bank has no stream `s`.
    ///
    /// ```
    /// use elman::{RnnBank, RnnCell};
    /// use elman::nalgebra::SVector;
    ///
    /// let mut bank: RnnBank<1, 2, 4> = RnnBank::new(RnnCell::default());
    /// let err = bank.try_set_state(4, &SVector::from([0.5, 0.5])).unwrap_err();
    /// assert_eq!(err.to_string(), "stream 4 does not exist: the bank has 4 streams");
    /// ```
    ///
    /// # Errors
    ///
    /// [`NoSuchStream`] if `s ≥ N`; no state changes.
    pub fn try_set_state(&mut self, s: usize, h: &L::State) -> Result<(), NoSuchStream> {
        if s >= N {
            return Err(NoSuchStream {
                stream: s,
                streams: N,
            });
        }
        L::set_stream_state(&mut self.states[self.live()], s, h);
        Ok(())
    }

    /// Resets stream `s` to zero, leaving the others as they are.
    ///
    /// # Panics
    ///
    /// If `s ≥ N`, as [`set_state`](Self::set_state); [`try_reset_stream`](Self::try_reset_stream)
    /// returns an error instead.
    #[track_caller]
    pub fn reset_stream(&mut self, s: usize) {
        self.set_state(s, &L::ZERO_STATE);
    }

    /// Resets stream `s` to zero, or reports that the bank has no stream `s`.
    ///
    /// # Errors
    ///
    /// [`NoSuchStream`] if `s ≥ N`; no state changes.
    pub fn try_reset_stream(&mut self, s: usize) -> Result<(), NoSuchStream> {
        self.try_set_state(s, &L::ZERO_STATE)
    }

    /// Resets every stream to zero.
    pub fn reset(&mut self) {
        L::clear_units(&mut self.states[self.live()]);
    }

    /// The layers every stream runs.
    #[must_use]
    pub const fn layers(&self) -> &L {
        &self.layers
    }

    /// Swaps in new layers while running (the same for every stream): they are moved into
    /// place, and every stream's state is kept or reset to zero as `on_swap` says.
    pub fn swap_weights(&mut self, layers: L, on_swap: OnSwap) {
        self.layers = layers;
        if on_swap == OnSwap::Reset {
            self.reset();
        }
    }

    /// [`swap_weights`](Self::swap_weights) from a reference: the weights are copied into
    /// place and never pass through the stack, whatever their size (with
    /// [`zeroed_box`](InPlace::zeroed_box), how a large bank is built where it lives).
    pub fn swap_weights_from(&mut self, layers: &L, on_swap: OnSwap) {
        self.layers.copy_from(layers);
        if on_swap == OnSwap::Reset {
            self.reset();
        }
    }

    /// Every stream's logits through `readout`: `outputs[s] = W_hy·h_s + b_y`, from stream `s`'s
    /// last layer's state.
    #[must_use]
    pub fn outputs<const O: usize>(&self, readout: &Readout<H, O>) -> [SVector<f32, O>; N] {
        let states = self.output_states();
        core::array::from_fn(|s| readout.logits_of_clean(&column(states, s).data.0[0]))
    }
}

impl<const I: usize, const H: usize, const N: usize, A: Activation> RnnBank<I, H, N, A> {
    /// The cell every stream runs (the bank's one layer, as [`layers`](Self::layers) gives it).
    #[must_use]
    pub const fn cell(&self) -> &RnnCell<I, H, A> {
        &self.layers
    }
}

/// A stream index past the last stream of a bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSuchStream {
    /// The index asked for.
    pub stream: usize,
    /// How many streams the bank has (`N`).
    pub streams: usize,
}

impl core::fmt::Display for NoSuchStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "stream {} does not exist: the bank has {} streams",
            self.stream, self.streams
        )
    }
}

impl core::error::Error for NoSuchStream {}

/// With one input per stream (`I = 1`), the streams' inputs as the unit-major row they already
/// are in memory: `N` vectors of one `f32` each are the `N` values in order.
fn one_input_row<const I: usize, const N: usize>(
    xs: &[SVector<f32, I>; N],
) -> Option<&[[f32; N]; I]> {
    if I != 1 {
        return None;
    }
    let row = <&[f32; N]>::try_from(crate::kernel::stream_values(xs)).ok()?;
    <&[[f32; N]; I]>::try_from(core::slice::from_ref(row)).ok()
}

/// The panic of an out-of-range stream index, out of line (it is cold).
#[cold]
#[track_caller]
fn out_of_range(s: usize, n: usize) -> ! {
    panic!(
        "{}",
        NoSuchStream {
            stream: s,
            streams: n
        }
    )
}

/// Built and copied in place: see [`InPlace`].
impl<L: Layers<I, H>, const I: usize, const H: usize, const N: usize> Bank<L, I, H, N> {
    /// `N` streams of `layers` on the heap, all starting from zero, as [`new`](Self::new) builds
    /// them: the layers are copied into place, and the bank is never on the stack, whatever its
    /// size.
    ///
    /// ```
    /// use elman::{InPlace, RnnBank, RnnCell};
    /// use elman::nalgebra::SVector;
    ///
    /// let cell = RnnCell::<64, 128>::zeroed_box();
    /// let mut bank = RnnBank::<64, 128, 16>::new_boxed(&cell);
    /// bank.step(&[SVector::zeros(); 16]);
    /// assert_eq!(bank.state(15), SVector::<f32, 128>::zeros());
    /// ```
    #[cfg(feature = "std")]
    #[must_use]
    pub fn new_boxed(layers: &L) -> Box<Self> {
        let mut bank = Self::zeroed_box();
        bank.layers.copy_from(layers);
        bank
    }

    /// Steps on `backend` from now on: [`with_backend`](Self::with_backend), in place.
    pub const fn set_backend(&mut self, backend: Backend) {
        self.backend = BackendChoice::of(backend);
    }
}

impl<L: Layers<I, H>, const I: usize, const H: usize, const N: usize> InPlace for Bank<L, I, H, N> {
    /// Copies the layers, the states and the backend choice (the scratch buffer's contents are
    /// not part of the bank's value).
    fn copy_from(&mut self, source: &Self) {
        self.layers.copy_from(&source.layers);
        for (target, source) in self.states.iter_mut().zip(&source.states) {
            L::copy_units(target, source);
        }
        self.current = source.current;
        self.backend = source.backend;
    }
}

impl_zeroable!(impl[L: Layers<I, H>, const I: usize, const H: usize, const N: usize] for Bank<L, I, H, N> {
    Bank { layers, states, current, backend, inputs } => layers, states, current, backend, inputs
});

impl_zeroable!(impl[const I: usize, const N: usize] for Scratch<I, N> {
    Scratch(inputs) => inputs
});
