//! Many independent streams of one network, advanced together: each vector lane is a stream.
//!
//! ```text
//! for every stream s:   h_s ← A(W_xh·x_s + W_hh·h_s + b)
//! ```
//!
//! The states are stored unit-major, `h[j][s]` (unit `j` of stream `s`), so that one vector
//! holds unit `j` of 8 streams and each weight is one broadcast multiply-add for all of them:
//! a bank does the work of `N` separate cells with `N / 8` times fewer instructions, and its
//! streams never wait on each other. Any `N` works: when 8 does not divide it, the last chunk of
//! streams overlaps its neighbour (computed twice, stored identically); fewer than 8 streams are
//! padded. A step reads one of two state buffers and writes the other, so it never copies the
//! states.

use nalgebra::SVector;

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::flush::flush;
use crate::in_place::{InPlace, copy_pod, impl_zeroable};
use crate::kernel::{Backend, BackendChoice, BankInput};
use crate::readout::Readout;

/// `N` independent streams (channels, voices, users) of one cell, advanced by one call.
///
/// ```
/// use elman::{RnnBank, RnnCell};
/// use elman::nalgebra::{SVector, vector};
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
#[derive(Clone, Debug)]
pub struct RnnBank<const I: usize, const H: usize, const N: usize, A = Tanh> {
    cell: RnnCell<I, H, A>,
    /// Two sets of states, `states[current]` the live one (`[j][s]`: unit `j` of stream `s`):
    /// a step reads one and writes the other, so it never copies the states.
    states: [[[f32; N]; H]; 2],
    /// Which buffer is live. A `bool`, written and read as one byte: the next step's read of it
    /// is then forwarded from the write. As a `usize`, flipped by a one-byte `xor` and read as
    /// eight bytes, the read waited for the write to retire, and with it the whole previous
    /// step: `scripts/ab.sh` measured small banks 0.70–0.91× the time with the `bool`.
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

impl<const I: usize, const N: usize> core::fmt::Debug for Scratch<I, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Scratch")
    }
}

/// Equal cells, states and backend choice (whichever of the two buffers holds the states).
impl<const I: usize, const H: usize, const N: usize, A: Activation> PartialEq
    for RnnBank<I, H, N, A>
{
    fn eq(&self, other: &Self) -> bool {
        self.cell == other.cell && self.states() == other.states() && self.backend == other.backend
    }
}

impl<const I: usize, const H: usize, const N: usize, A: Activation> RnnBank<I, H, N, A> {
    /// `N` streams of `cell`, all starting from zero.
    #[must_use]
    pub const fn new(cell: RnnCell<I, H, A>) -> Self {
        Self {
            cell,
            states: [[[0.0; N]; H]; 2],
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
    /// With at most 8 hidden units (one block of them) and one input per stream or fewer than 8
    /// streams, the kernel gathers each stream's inputs into its vectors itself. Otherwise they
    /// are first transposed to unit-major (into a buffer the bank keeps), 8 streams at a time:
    /// in 8×8 tiles of shuffles with 8 inputs or more, by lane selects and a permutation of the
    /// streams' consecutive values with fewer. Either way the sums are those of
    /// [`step_unit_major`](Self::step_unit_major), to the bit.
    #[inline]
    pub fn step(&mut self, xs: &[SVector<f32, I>; N]) {
        let backend = self.backend();
        // Input values below `FLUSH_BELOW` are read as +0: checked over all the inputs at once,
        // flushed (in the bank's own buffer) only when one is there.
        let tiny = bytemuck::try_cast_slice::<_, f32>(xs.as_slice())
            .map_or(true, crate::flush::needs_flush);
        if H <= 8 && (I == 1 || N < 8) && !tiny {
            Self::advance(&self.cell, &mut self.states, &mut self.current, backend, xs);
        } else {
            backend.transpose_inputs(xs, &mut self.inputs.0);
            self.advance_buffered(backend, tiny);
        }
    }

    /// Advances every stream by one input given unit-major, `x[k][s]` (input `k` of stream `s`):
    /// no transposition. For one input per stream (`I = 1`), `x[0]` is simply the `N` samples.
    #[inline]
    pub fn step_unit_major(&mut self, x: &[[f32; N]; I]) {
        let backend = self.backend();
        if crate::flush::needs_flush(x.as_flattened()) {
            self.inputs.0 = *x;
            self.advance_buffered(backend, true);
        } else {
            Self::advance(&self.cell, &mut self.states, &mut self.current, backend, x);
        }
    }

    /// One step from the inputs in the bank's own buffer (unit-major), flushed first if `tiny`.
    #[inline]
    fn advance_buffered(&mut self, backend: Backend, tiny: bool) {
        if tiny {
            for row in &mut self.inputs.0 {
                *row = crate::flush::flushed(row);
            }
        }
        let inputs = &self.inputs.0;
        Self::advance(
            &self.cell,
            &mut self.states,
            &mut self.current,
            backend,
            inputs,
        );
    }

    /// One step from inputs in either layout: the kernel gathers 8 streams' input `k` at a time.
    /// (The bank's parts, not `self`, so that the inputs may be the bank's own buffer.)
    #[inline]
    fn advance<X: BankInput<I, N>>(
        cell: &RnnCell<I, H, A>,
        states: &mut [[[f32; N]; H]; 2],
        current: &mut bool,
        backend: Backend,
        x: &X,
    ) {
        let [first, second] = states;
        let (previous, next) = if *current {
            (&*second, first)
        } else {
            (&*first, second)
        };
        backend.bank_step::<I, H, N, A, X>(
            cell.w_xh(),
            cell.w_hh(),
            cell.bias(),
            x,
            previous,
            next,
        );
        *current = !*current;
    }

    /// The index of the live buffer.
    const fn live(&self) -> usize {
        if self.current { 1 } else { 0 }
    }

    /// Stream `s`'s hidden state.
    ///
    /// # Panics
    ///
    /// If `s ≥ N`, as indexing a slice does; [`get_state`](Self::get_state) returns `None`
    /// instead.
    #[must_use]
    #[track_caller]
    pub fn state(&self, s: usize) -> SVector<f32, H> {
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
    pub fn get_state(&self, s: usize) -> Option<SVector<f32, H>> {
        (s < N).then(|| self.state_unchecked(s))
    }

    /// Stream `s`'s state, zeros past the last stream (`s < N` at every call).
    fn state_unchecked(&self, s: usize) -> SVector<f32, H> {
        SVector::from_fn(|j, _| self.states()[j].get(s).copied().unwrap_or(0.0))
    }

    /// All states, unit-major: `states()[j][s]` is unit `j` of stream `s`.
    #[must_use]
    pub const fn states(&self) -> &[[f32; N]; H] {
        &self.states[self.live()]
    }

    /// Sets stream `s`'s hidden state. Values below [`FLUSH_BELOW`](crate::FLUSH_BELOW) in
    /// magnitude are stored as +0, so that no step meets a subnormal number.
    ///
    /// # Panics
    ///
    /// If `s ≥ N`; [`try_set_state`](Self::try_set_state) returns an error instead.
    #[track_caller]
    pub fn set_state(&mut self, s: usize, h: &SVector<f32, H>) {
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
    pub fn try_set_state(&mut self, s: usize, h: &SVector<f32, H>) -> Result<(), NoSuchStream> {
        if s >= N {
            return Err(NoSuchStream {
                stream: s,
                streams: N,
            });
        }
        for (row, &v) in self.states[self.live()].iter_mut().zip(h.iter()) {
            if let Some(slot) = row.get_mut(s) {
                *slot = flush(v);
            }
        }
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
        self.set_state(s, &SVector::zeros());
    }

    /// Resets stream `s` to zero, or reports that the bank has no stream `s`.
    ///
    /// # Errors
    ///
    /// [`NoSuchStream`] if `s ≥ N`; no state changes.
    pub fn try_reset_stream(&mut self, s: usize) -> Result<(), NoSuchStream> {
        self.try_set_state(s, &SVector::zeros())
    }

    /// Resets every stream to zero.
    pub const fn reset(&mut self) {
        self.states[self.live()] = [[0.0; N]; H];
    }

    /// The cell every stream runs.
    #[must_use]
    pub const fn cell(&self) -> &RnnCell<I, H, A> {
        &self.cell
    }

    /// Every stream's logits through `readout`: `outputs[s] = W_hy·h_s + b_y`.
    #[must_use]
    pub fn outputs<const O: usize>(&self, readout: &Readout<H, O>) -> [SVector<f32, O>; N] {
        core::array::from_fn(|s| readout.logits_of_clean(&self.state_unchecked(s)))
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
impl<const I: usize, const H: usize, const N: usize, A: Activation> RnnBank<I, H, N, A> {
    /// `N` streams of `cell` on the heap, all starting from zero, as [`new`](Self::new) builds
    /// them: the cell is copied into place, and the bank is never on the stack, whatever its
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
    pub fn new_boxed(cell: &RnnCell<I, H, A>) -> Box<Self> {
        let mut bank = Self::zeroed_box();
        bank.cell.copy_from(cell);
        bank
    }

    /// Steps on `backend` from now on: [`with_backend`](Self::with_backend), in place.
    pub const fn set_backend(&mut self, backend: Backend) {
        self.backend = BackendChoice::of(backend);
    }
}

impl<const I: usize, const H: usize, const N: usize, A> InPlace for RnnBank<I, H, N, A> {
    /// Copies the cell, the states and the backend choice (the scratch buffer's contents are
    /// not part of the bank's value).
    fn copy_from(&mut self, source: &Self) {
        self.cell.copy_from(&source.cell);
        copy_pod(&mut self.states, &source.states);
        self.current = source.current;
        self.backend = source.backend;
    }
}

impl_zeroable!(impl[const I: usize, const H: usize, const N: usize, A] for RnnBank<I, H, N, A> {
    RnnBank { cell, states, current, backend, inputs } => cell, states, current, backend, inputs
});

impl_zeroable!(impl[const I: usize, const N: usize] for Scratch<I, N> {
    Scratch(inputs) => inputs
});
