//! Reverse and bidirectional layers over whole sequences, as PyTorch's
//! `nn.RNN(bidirectional = True, num_layers = L)` computes them.
//!
//! ```text
//! forward:   f_t = A(Wf_xh·x_t + Wf_hh·f_{t−1} + bf)     t = 0, 1, …, T−1    from f_{−1} = h0_fwd
//! backward:  g_t = A(Wg_xh·x_t + Wg_hh·g_{t+1} + bg)     t = T−1, …, 1, 0    from g_T    = h0_bwd
//! output:    y_t = [f_t; g_t]                            2H values
//! h_n:       (f_{T−1}, g_0)                              each direction's state after its last step
//! ```
//!
//! A stacked layer `k + 1` reads layer `k`'s outputs (`2H` values per step) as its inputs, as in
//! PyTorch; a readout (`nn.Linear(2H, O)`) reads each step's output ([`read_out`]).
//!
//! Every pass runs on the kernels that [`RnnCell::run`] and [`Network`](crate::Network) use:
//! the forward pass in the kernel's sequence loop, the state in registers from one step to the
//! next; the reverse pass 8 steps per call of that loop, the inputs of each 8 copied last to
//! first into a buffer on the stack (`8·I` values). Cells with 8 inputs or more and weights
//! larger than 32 KiB hoist their input projections 8 steps at a time in both directions, as
//! [`Network::process`](crate::Network::process) does. Nothing allocates; the caller's slices
//! receive the outputs. Without hoisting, each direction gives the bits of
//! [`RnnCell::step_with`] called in a loop; with it, the bits of a network's `process`.
//!
//! The state given as `h0` is flushed on entry (values below
//! [`FLUSH_BELOW`](crate::FLUSH_BELOW) read as +0) and the kernel flushes the inputs, as every
//! step of the crate does (see [`flush`](crate::flush)).
//!
//! ```
//! use elman::bidirectional::Bidirectional;
//! use elman::nalgebra::{self, SVector, vector};
//! use elman::RnnCell;
//!
//! let forward: RnnCell<1, 2> = RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]);
//! let backward: RnnCell<1, 2> = RnnCell::from_row_major([[0.5], [0.25]], [[0.25; 2]; 2], [0.1; 2]);
//! let layer: Bidirectional<1, 2, 4> = Bidirectional::new(forward.clone(), backward.clone());
//!
//! let xs = [vector![1.0], vector![-0.5], vector![0.25]];
//! let mut out = [SVector::<f32, 4>::zeros(); 3];
//! let (f, g) = layer.run(&xs, &(SVector::zeros(), SVector::zeros()), &mut out);
//!
//! // The forward half of step 0 is the forward cell's first step; the backward half of step 0
//! // is the backward cell's state after the whole sequence read from its end.
//! let f0 = forward.step(&xs[0], &SVector::zeros());
//! assert_eq!(out[0].fixed_rows::<2>(0), f0);
//! let g0 = backward.run(&[xs[2], xs[1], xs[0]], &SVector::zeros());
//! assert_eq!(out[0].fixed_rows::<2>(2), g0);
//! assert_eq!((f, g), (out[2].fixed_rows::<2>(0).into(), g0));
//! ```

use nalgebra::SVector;

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::flush::flush_state;
use crate::kernel::Backend;
use crate::layers::{Cell, HOIST, hoists, recur};
use crate::readout::Readout;

/// The compile-time check that a bidirectional layer's output has `H2 = 2·H` values.
///
/// Evaluated when a call is built (monomorphized), as
/// [`RnnCell::from_concatenated`]'s width check: `cargo build` and `cargo test` report it,
/// `cargo check` alone does not. A const generic expression (`2 * H` in a type) would fire
/// earlier but is not stable Rust.
struct DoubledWidth<const H: usize, const H2: usize>;

impl<const H: usize, const H2: usize> DoubledWidth<H, H2> {
    const CHECK: () = assert!(
        H2 == 2 * H,
        "a bidirectional layer's output must have H2 = 2·H values"
    );
}

/// The state of both directions of one bidirectional layer: `(forward, backward)`, PyTorch's
/// `h_n[2k]` and `h_n[2k + 1]` for layer `k` (and its `h0` likewise).
pub type Pair<const H: usize> = (SVector<f32, H>, SVector<f32, H>);

/// The zero state of both directions.
const fn zero_pair<const H: usize>() -> Pair<H> {
    let zero = SVector::from_array_storage(nalgebra::ArrayStorage([[0.0; H]]));
    (zero, zero)
}

/// Runs `cell` over `xs` from the flushed state `h`, first to last or (`REVERSE`) last to
/// first, leaving `h` holding the state after the last step taken; `each(t, state)` receives
/// the state computed from input `t`.
fn pass<const I: usize, const H: usize, A: Activation, const REVERSE: bool>(
    cell: &RnnCell<I, H, A>,
    backend: Backend,
    xs: &[SVector<f32, I>],
    h: &mut SVector<f32, H>,
    mut each: impl FnMut(usize, &[f32; H]),
) {
    let w = cell.weights();
    if !REVERSE {
        let mut done = 0;
        if hoists(I, H) {
            let (blocks, _) = xs.as_chunks::<HOIST>();
            for block in blocks {
                recur(cell, backend, block, h, |t, s| each(done + t, &s.data.0[0]));
                done += HOIST;
            }
        }
        let rest = xs.get(done..).unwrap_or_default();
        let [state] = &mut h.data.0;
        backend.run_of::<I, H, A, usize, _, f32>(w, rest, state, done.., |s, t| each(t, s));
        return;
    }
    // Blocks of up to `HOIST` inputs from the end, each copied last to first: the kernel's
    // sequence loop (or the hoisted projections) then reads it in order.
    let mut reversed = [SVector::<f32, I>::zeros(); HOIST];
    let mut end = xs.len();
    while end > 0 {
        let start = end.saturating_sub(HOIST);
        let block = xs.get(start..end).unwrap_or_default();
        for (slot, x) in reversed.iter_mut().zip(block.iter().rev()) {
            *slot = *x;
        }
        if block.len() == HOIST && hoists(I, H) {
            recur(cell, backend, &reversed, h, |t, s| {
                each(end - 1 - t, &s.data.0[0]);
            });
        } else {
            let [state] = &mut h.data.0;
            let inputs = reversed.get(..block.len()).unwrap_or_default();
            backend.run_of::<I, H, A, usize, _, f32>(
                w,
                inputs,
                state,
                (start..end).rev(),
                |s, t| each(t, s),
            );
        }
        end = start;
    }
}

/// Writes `state` into `out` from value `at` on.
#[inline(always)]
fn write_at<const H: usize, const W: usize>(
    out: Option<&mut SVector<f32, W>>,
    at: usize,
    state: &[f32; H],
) {
    if let Some(values) = out.and_then(|o| o.data.0[0].get_mut(at..at + H)) {
        values.copy_from_slice(state);
    }
}

/// Reverse passes and per-step states of one cell: the building blocks of a bidirectional layer,
/// usable alone (a reverse `nn.RNN` direction, or a forward one whose every state is kept).
impl<const I: usize, const H: usize, A: Activation> RnnCell<I, H, A> {
    /// [`run`](Self::run) over `xs` from the last input to the first: from `h`, one step per
    /// input `xs[T−1], …, xs[0]`; returns the state after `xs[0]` (`h` for no input, flushed).
    /// PyTorch's reverse direction of a one-layer `nn.RNN` gives this state as its `h_n`.
    ///
    /// ```
    /// use elman::RnnCell;
    /// use elman::nalgebra::{self, SVector, vector};
    ///
    /// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[0.5], [-0.5]], [[0.3, 0.1], [0.2, 0.4]], [0.0, 0.1]);
    /// let xs = [vector![1.0], vector![0.5], vector![-1.0]];
    /// let backward = cell.run_reverse(&xs, &SVector::zeros());
    /// assert_eq!(backward, cell.run(&[xs[2], xs[1], xs[0]], &SVector::zeros()));
    /// ```
    #[must_use]
    pub fn run_reverse(&self, xs: &[SVector<f32, I>], h: &SVector<f32, H>) -> SVector<f32, H> {
        self.run_reverse_with(Backend::best(), xs, h)
    }

    /// [`run_reverse`](Self::run_reverse) on the given backend.
    #[must_use]
    pub fn run_reverse_with(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        h: &SVector<f32, H>,
    ) -> SVector<f32, H> {
        let mut state = flush_state(*h);
        pass::<I, H, A, true>(self, backend, xs, &mut state, |_, _| {});
        state
    }

    /// Steps through `xs` first to last from `h` and writes the state after input `t` to
    /// `states[t]`, for `t` below the shorter of the two; returns the last state (`h` for no
    /// input, flushed). PyTorch's `output` of a one-layer, one-direction `nn.RNN`.
    ///
    /// ```
    /// use elman::RnnCell;
    /// use elman::nalgebra::{self, SVector, vector};
    ///
    /// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[0.5], [-0.5]], [[0.3, 0.1], [0.2, 0.4]], [0.0, 0.1]);
    /// let xs = [vector![1.0], vector![0.5]];
    /// let mut states = [SVector::zeros(); 2];
    /// let last = cell.states_with(elman::Backend::best(), &xs, &SVector::zeros(), &mut states);
    /// assert_eq!(states[0], cell.step(&xs[0], &SVector::zeros()));
    /// assert_eq!(last, states[1]);
    /// ```
    pub fn states_with(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        h: &SVector<f32, H>,
        states: &mut [SVector<f32, H>],
    ) -> SVector<f32, H> {
        self.states_of::<false>(backend, xs, h, states)
    }

    /// [`states_with`](Self::states_with) last to first: the state computed from input `t`
    /// (after `xs[T−1], …, xs[t]`) goes to `states[t]`, for `t` below the shorter of the two
    /// (the inputs past that are not read); returns the state after `xs[0]`. PyTorch's `output`
    /// of a reverse direction is in this order.
    ///
    /// ```
    /// use elman::RnnCell;
    /// use elman::nalgebra::{self, SVector, vector};
    ///
    /// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[0.5], [-0.5]], [[0.3, 0.1], [0.2, 0.4]], [0.0, 0.1]);
    /// let xs = [vector![1.0], vector![0.5]];
    /// let mut states = [SVector::zeros(); 2];
    /// let last = cell.states_reverse_with(elman::Backend::best(), &xs, &SVector::zeros(), &mut states);
    /// assert_eq!(states[1], cell.step(&xs[1], &SVector::zeros()));
    /// assert_eq!(last, states[0]);
    /// ```
    pub fn states_reverse_with(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        h: &SVector<f32, H>,
        states: &mut [SVector<f32, H>],
    ) -> SVector<f32, H> {
        self.states_of::<true>(backend, xs, h, states)
    }

    /// [`states_with`](Self::states_with), or last to first (`REVERSE`).
    fn states_of<const REVERSE: bool>(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        h: &SVector<f32, H>,
        states: &mut [SVector<f32, H>],
    ) -> SVector<f32, H> {
        let n = xs.len().min(states.len());
        let mut state = flush_state(*h);
        pass::<I, H, A, REVERSE>(self, backend, &xs[..n], &mut state, |t, s| {
            write_at(states.get_mut(t), 0, s);
        });
        state
    }
}

/// One bidirectional layer: a forward and a backward [`RnnCell`] over the same `I` inputs, whose
/// output at each step is `[h_fwd; h_bwd]`, `H2 = 2·H` values (checked by the compiler when a
/// call is built: a wrong `H2` is the error "a bidirectional layer's output must have H2 = 2·H
/// values").
///
/// PyTorch's `nn.RNN(I, H, bidirectional=True)`: `forward` holds `weight_ih_l0`, `weight_hh_l0`
/// and their biases, `backward` the `*_reverse` ones
/// ([`StateDict::bidirectional`](crate::torch::StateDict::bidirectional) loads both).
#[derive(Clone, Debug, PartialEq)]
pub struct Bidirectional<const I: usize, const H: usize, const H2: usize, A = Tanh> {
    /// The forward direction: reads `xs[0], xs[1], …`; the first `H` values of each output.
    pub forward: RnnCell<I, H, A>,
    /// The backward direction: reads `…, xs[1], xs[0]`; the last `H` values of each output.
    pub backward: RnnCell<I, H, A>,
}

impl<const I: usize, const H: usize, const H2: usize, A: Activation> Default
    for Bidirectional<I, H, H2, A>
{
    /// Both directions all-zero cells ([`RnnCell::default`]).
    fn default() -> Self {
        Self::new(RnnCell::default(), RnnCell::default())
    }
}

impl<const I: usize, const H: usize, const H2: usize, A: Activation> Bidirectional<I, H, H2, A> {
    /// A layer of the two directions. `H2 = 2·H` is checked by the compiler.
    #[must_use]
    pub fn new(forward: RnnCell<I, H, A>, backward: RnnCell<I, H, A>) -> Self {
        let () = DoubledWidth::<H, H2>::CHECK;
        Self { forward, backward }
    }

    /// Runs both directions over `xs` on the fastest [`Backend`] this CPU runs, from the states
    /// `h0 = (forward, backward)`, and writes `[h_fwd; h_bwd]` of step `t` to `out[t]`, for `t`
    /// below the shorter of the two (the inputs past that are not read). Returns PyTorch's
    /// `h_n`: the forward state after `xs[T−1]` and the backward state after `xs[0]` (each
    /// `h0`, flushed, for no input). Allocates nothing.
    pub fn run(
        &self,
        xs: &[SVector<f32, I>],
        h0: &Pair<H>,
        out: &mut [SVector<f32, H2>],
    ) -> Pair<H> {
        self.run_with(Backend::best(), xs, h0, out)
    }

    /// [`run`](Self::run) on the given backend.
    pub fn run_with(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        h0: &Pair<H>,
        out: &mut [SVector<f32, H2>],
    ) -> Pair<H> {
        let () = DoubledWidth::<H, H2>::CHECK;
        let n = xs.len().min(out.len());
        let xs = &xs[..n];
        let mut forward = flush_state(h0.0);
        pass::<I, H, A, false>(&self.forward, backend, xs, &mut forward, |t, s| {
            write_at(out.get_mut(t), 0, s);
        });
        let mut backward = flush_state(h0.1);
        pass::<I, H, A, true>(&self.backward, backend, xs, &mut backward, |t, s| {
            write_at(out.get_mut(t), H, s);
        });
        (forward, backward)
    }
}

/// Stacked bidirectional layers, as `nn.RNN(bidirectional=True, num_layers = U + 1)`: a first
/// layer over the `I` inputs and `U` upper layers, each reading the `H2 = 2·H` outputs of the
/// layer below.
///
/// A layer needs the whole output sequence of the one below before its backward direction can
/// start, so a stack runs layer by layer over the whole sequence, between the caller's output
/// slice and a scratch slice of the same length (the last layer's outputs land in the output).
///
/// ```
/// use elman::bidirectional::{BiStack2, BiStates, Bidirectional};
/// use elman::nalgebra::{self, SVector, vector};
/// use elman::RnnCell;
///
/// let first: Bidirectional<1, 2, 4> = Bidirectional::new(
///     RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0; 2]),
///     RnnCell::from_row_major([[0.5], [0.25]], [[0.25; 2]; 2], [0.1; 2]),
/// );
/// let upper: Bidirectional<4, 2, 4> = Bidirectional::default();
/// let stack: BiStack2<1, 2, 4> = BiStack2::new(first.clone(), [upper.clone()]);
///
/// let xs = [vector![1.0], vector![-0.5], vector![0.25]];
/// let (mut out, mut scratch) = ([SVector::zeros(); 3], [SVector::zeros(); 3]);
/// let h_n = stack.run(&xs, &BiStates::ZERO, &mut scratch, &mut out);
///
/// // Layer by layer, as PyTorch computes it.
/// let mut lower = [SVector::zeros(); 3];
/// let first_n = first.run(&xs, &BiStates::<2, 1>::ZERO.first, &mut lower);
/// let mut top = [SVector::zeros(); 3];
/// let upper_n = upper.run(&lower, &BiStates::<2, 1>::ZERO.first, &mut top);
/// assert_eq!(out, top);
/// assert_eq!(h_n, BiStates { first: first_n, upper: [upper_n] });
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BiStack<const I: usize, const H: usize, const H2: usize, const U: usize, A = Tanh> {
    /// Layer 0, which reads the inputs.
    pub first: Bidirectional<I, H, H2, A>,
    /// Layers 1 to `U`, each reading the outputs of the one below.
    pub upper: [Bidirectional<H2, H, H2, A>; U],
}

/// Two stacked bidirectional layers: `nn.RNN(bidirectional=True, num_layers=2)`.
pub type BiStack2<const I: usize, const H: usize, const H2: usize, A = Tanh> =
    BiStack<I, H, H2, 1, A>;

/// Three stacked bidirectional layers: `nn.RNN(bidirectional=True, num_layers=3)`.
pub type BiStack3<const I: usize, const H: usize, const H2: usize, A = Tanh> =
    BiStack<I, H, H2, 2, A>;

/// The states of every layer of a [`BiStack`] (`U + 1` layers), both directions each: an `h0`
/// or an `h_n`.
///
/// PyTorch's `h_n` (and `h0`) of shape `(2·(U + 1), H)` lists them in the order of
/// [`iter`](Self::iter): layer 0 forward, layer 0 backward, layer 1 forward, …
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BiStates<const H: usize, const U: usize> {
    /// Layer 0's `(forward, backward)` states.
    pub first: Pair<H>,
    /// Layer `k + 1`'s `(forward, backward)` states at index `k`.
    pub upper: [Pair<H>; U],
}

impl<const H: usize, const U: usize> BiStates<H, U> {
    /// Every state zero.
    pub const ZERO: Self = Self {
        first: zero_pair(),
        upper: [zero_pair(); U],
    };

    /// Layer `k`'s `(forward, backward)` states, if the stack has that layer.
    #[must_use]
    pub fn layer(&self, k: usize) -> Option<&Pair<H>> {
        match k.checked_sub(1) {
            None => Some(&self.first),
            Some(upper) => self.upper.get(upper),
        }
    }

    /// The `2·(U + 1)` states in PyTorch's order: layer 0 forward, layer 0 backward, layer 1
    /// forward, …
    ///
    /// ```
    /// use elman::bidirectional::BiStates;
    ///
    /// assert_eq!(BiStates::<3, 2>::ZERO.iter().count(), 6);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &SVector<f32, H>> {
        core::iter::once(&self.first)
            .chain(&self.upper)
            .flat_map(|(f, b)| [f, b])
    }
}

impl<const I: usize, const H: usize, const H2: usize, const U: usize, A: Activation> Default
    for BiStack<I, H, H2, U, A>
{
    /// Every layer all-zero ([`Bidirectional::default`]).
    fn default() -> Self {
        Self::new(
            Bidirectional::default(),
            core::array::from_fn(|_| Bidirectional::default()),
        )
    }
}

impl<const I: usize, const H: usize, const H2: usize, const U: usize, A: Activation>
    BiStack<I, H, H2, U, A>
{
    /// `upper` on top of `first`.
    #[must_use]
    pub fn new(first: Bidirectional<I, H, H2, A>, upper: [Bidirectional<H2, H, H2, A>; U]) -> Self {
        let () = DoubledWidth::<H, H2>::CHECK;
        Self { first, upper }
    }

    /// Runs every layer over `xs` on the fastest [`Backend`] this CPU runs, from the states
    /// `h0`, and writes the last layer's `[h_fwd; h_bwd]` of step `t` to `out[t]`, for `t` below
    /// the shortest of `xs`, `out` and (with upper layers) `scratch`; the lower layers' outputs
    /// pass through `scratch` and `out`, which end with no other meaning. Returns every layer's
    /// `h_n`. Allocates nothing.
    pub fn run(
        &self,
        xs: &[SVector<f32, I>],
        h0: &BiStates<H, U>,
        scratch: &mut [SVector<f32, H2>],
        out: &mut [SVector<f32, H2>],
    ) -> BiStates<H, U> {
        self.run_with(Backend::best(), xs, h0, scratch, out)
    }

    /// [`run`](Self::run) on the given backend.
    pub fn run_with(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        h0: &BiStates<H, U>,
        scratch: &mut [SVector<f32, H2>],
        out: &mut [SVector<f32, H2>],
    ) -> BiStates<H, U> {
        let n = if U == 0 {
            xs.len().min(out.len())
        } else {
            xs.len().min(out.len()).min(scratch.len())
        };
        let out = &mut out[..n];
        let scratch = if U == 0 {
            &mut scratch[..0]
        } else {
            &mut scratch[..n]
        };
        // Layer k writes to `out` when an even number of layers is above it, so that the last
        // one does.
        let (mut below, mut above) = if U.is_multiple_of(2) {
            (out, scratch)
        } else {
            (scratch, out)
        };
        let mut h_n = BiStates {
            first: self.first.run_with(backend, &xs[..n], &h0.first, below),
            upper: h0.upper,
        };
        for ((layer, h), h0) in self.upper.iter().zip(&mut h_n.upper).zip(&h0.upper) {
            *h = layer.run_with(backend, below, h0, above);
            core::mem::swap(&mut below, &mut above);
        }
        h_n
    }
}

/// Writes `readout`'s logits of `outputs[t]` to `ys[t]`, for `t` below the shorter of the two:
/// PyTorch's `nn.Linear(2H, O)` applied to a bidirectional output sequence (any `H2`: the
/// readout's width is checked against the outputs' by the compiler).
///
/// ```
/// use elman::bidirectional::read_out;
/// use elman::Readout;
/// use elman::nalgebra::{self, SVector, vector};
///
/// let head: Readout<4, 1> = Readout::from_row_major([[1.0, 0.0, 0.0, -1.0]], [0.5]);
/// let outputs = [vector![0.25, 0.0, 0.0, 0.5]];
/// let mut ys = [SVector::zeros(); 1];
/// read_out(&head, &outputs, &mut ys);
/// assert_eq!(ys[0], vector![0.25]);
/// ```
pub fn read_out<const H2: usize, const O: usize>(
    readout: &Readout<H2, O>,
    outputs: &[SVector<f32, H2>],
    ys: &mut [SVector<f32, O>],
) {
    for (h, y) in outputs.iter().zip(ys) {
        *y = readout.logits(h);
    }
}
