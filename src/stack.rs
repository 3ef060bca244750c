//! Stacked recurrent layers, as `nn.RNN(num_layers = L)`: layer `k`'s hidden state is layer
//! `k + 1`'s input, every step.
//!
//! ```text
//! h0' = A(W0_xh·x  + W0_hh·h0 + b0)
//! h1' = A(W1_xh·h0' + W1_hh·h1 + b1)      …     the output is the last layer's state
//! ```
//!
//! [`Stack<L, U, M>`] puts layer (or stack) `U` on top of `L`, joined at size `M`: `L` must map
//! `I` inputs to `M` values and `U` take `M` inputs, so sizes that do not chain do not compile.
//! Stacks nest: `Stack<Stack<A, B, H>, C, H>` is three layers ([`Stack3`]). A stack is
//! [`Layers`], as one [`RnnCell`] is: with a readout it is a [`Network`](crate::Network) (a
//! [`Rnn2`](crate::Rnn2) for two layers), with `N` streams a [`Bank`](crate::Bank).
//!
//! ```
//! use elman::stack::{Stack, Stack2};
//! use elman::{Readout, Rnn2, RnnCell};
//! use elman::nalgebra::{self, SVector, vector};
//!
//! let lower: RnnCell<2, 3> = RnnCell::default();
//! let upper: RnnCell<3, 3> = RnnCell::default();
//! let layers: Stack2<2, 3> = Stack::new(lower, upper);
//! let mut net: Rnn2<2, 3, 4> = Rnn2::new(layers, Readout::default());
//! let y: SVector<f32, 4> = net.step(&vector![1.0, -1.0]);
//! assert_eq!(y, SVector::<f32, 4>::zeros());
//! ```

use nalgebra::SVector;

use crate::cell::RnnCell;
use crate::in_place::{InPlace, impl_zeroable};
use crate::kernel::Backend;
use crate::layers::Layers;
use crate::readout::Readout;

/// `U` stacked on `L`, joined at size `M` (`L`'s output, `U`'s input).
#[derive(Clone, Debug, PartialEq)]
pub struct Stack<L, U, const M: usize> {
    /// The lower layers, which see the input.
    pub lower: L,
    /// The upper layers, which see the lower layers' output.
    pub upper: U,
}

impl<L, U, const M: usize> Stack<L, U, M> {
    /// `upper` on top of `lower`.
    pub const fn new(lower: L, upper: U) -> Self {
        Self { lower, upper }
    }
}

/// The lower layers step, then the upper ones on the lower layers' new state, one step at a
/// time (a network of a stack processes a sequence step by step); a bank steps each layer's
/// bank kernel in turn over the unit-major states.
impl<const I: usize, const M: usize, const H: usize, L, U> Layers<I, H> for Stack<L, U, M>
where
    L: Layers<I, M>,
    U: Layers<M, H>,
{
    type State = (L::State, U::State);
    type Units<const N: usize> = (L::Units<N>, U::Units<N>);

    const ZERO_STATE: Self::State = (L::ZERO_STATE, U::ZERO_STATE);
    const INPUT_UNITS: usize = L::INPUT_UNITS;

    #[inline]
    fn output(state: &Self::State) -> &SVector<f32, H> {
        U::output(&state.1)
    }

    #[inline]
    fn advance_flushed(&self, backend: Backend, x: &SVector<f32, I>, state: &mut Self::State) {
        let (lower, upper) = state;
        self.lower.advance_flushed(backend, x, lower);
        self.upper.advance_flushed(backend, L::output(lower), upper);
    }

    #[inline]
    fn flushed(state: &Self::State) -> Self::State {
        (L::flushed(&state.0), U::flushed(&state.1))
    }

    #[inline]
    fn copy_state(target: &mut Self::State, source: &Self::State) {
        L::copy_state(&mut target.0, &source.0);
        U::copy_state(&mut target.1, &source.1);
    }

    fn process<const O: usize>(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        state: &mut Self::State,
        readout: &Readout<H, O>,
        ys: &mut [SVector<f32, O>],
    ) {
        for (x, y) in xs.iter().zip(ys) {
            self.advance_flushed(backend, x, state);
            *y = backend.logits(readout, Self::output(state));
        }
    }

    fn process_last(&self, backend: Backend, xs: &[SVector<f32, I>], state: &mut Self::State) {
        for x in xs {
            self.advance_flushed(backend, x, state);
        }
    }

    #[inline]
    fn bank_step_vectors<const N: usize>(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>; N],
        previous: &Self::Units<N>,
        next: &mut Self::Units<N>,
    ) {
        let (lower, upper) = next;
        self.lower
            .bank_step_vectors(backend, xs, &previous.0, lower);
        self.upper.bank_step_unit_major(
            backend,
            (L::output_units(lower), true, false),
            &previous.1,
            upper,
        );
    }

    #[inline]
    fn bank_step_unit_major<const N: usize>(
        &self,
        backend: Backend,
        x: (&[[f32; N]; I], bool, bool),
        previous: &Self::Units<N>,
        next: &mut Self::Units<N>,
    ) {
        let (lower, upper) = next;
        self.lower
            .bank_step_unit_major(backend, x, &previous.0, lower);
        self.upper.bank_step_unit_major(
            backend,
            (L::output_units(lower), true, false),
            &previous.1,
            upper,
        );
    }

    #[inline]
    fn output_units<const N: usize>(units: &Self::Units<N>) -> &[[f32; N]; H] {
        U::output_units(&units.1)
    }

    fn stream_state<const N: usize>(units: &Self::Units<N>, s: usize) -> Self::State {
        (L::stream_state(&units.0, s), U::stream_state(&units.1, s))
    }

    fn set_stream_state<const N: usize>(units: &mut Self::Units<N>, s: usize, state: &Self::State) {
        L::set_stream_state(&mut units.0, s, &state.0);
        U::set_stream_state(&mut units.1, s, &state.1);
    }

    fn clear_units<const N: usize>(units: &mut Self::Units<N>) {
        L::clear_units(&mut units.0);
        U::clear_units(&mut units.1);
    }

    fn copy_units<const N: usize>(target: &mut Self::Units<N>, source: &Self::Units<N>) {
        L::copy_units(&mut target.0, &source.0);
        U::copy_units(&mut target.1, &source.1);
    }
}

/// The layers of `nn.RNN(num_layers=2)`: two layers of hidden size `H`, without a readout
/// ([`Rnn2`](crate::Rnn2) is the network with one).
pub type Stack2<const I: usize, const H: usize, A = crate::Tanh> =
    Stack<RnnCell<I, H, A>, RnnCell<H, H, A>, H>;

/// The layers of `nn.RNN(num_layers=3)`, without a readout ([`Rnn3`](crate::Rnn3) is the
/// network with one).
pub type Stack3<const I: usize, const H: usize, A = crate::Tanh> =
    Stack<Stack2<I, H, A>, RnnCell<H, H, A>, H>;

/// The layers of `nn.RNN(num_layers=4)`, without a readout ([`Rnn4`](crate::Rnn4) is the
/// network with one).
pub type Stack4<const I: usize, const H: usize, A = crate::Tanh> =
    Stack<Stack3<I, H, A>, RnnCell<H, H, A>, H>;

/// How many `nn.RNN` layers a network holds.
pub trait LayerCount {
    /// The number of layers.
    const COUNT: usize;
}

impl<const I: usize, const H: usize, A> LayerCount for RnnCell<I, H, A> {
    const COUNT: usize = 1;
}

impl<L: LayerCount, U: LayerCount, const M: usize> LayerCount for Stack<L, U, M> {
    const COUNT: usize = L::COUNT + U::COUNT;
}

/// Built and copied in place: see [`InPlace`].
#[cfg(feature = "std")]
impl<L: InPlace, U: InPlace, const M: usize> Stack<L, U, M> {
    /// `upper` on top of `lower`, on the heap, as [`new`](Self::new) builds it: both are copied
    /// into place, and the network never passes through the thread's stack, whatever its size.
    /// Boxed layers are passed as `&*layer`, or as `&layer` where the stack's type is written
    /// out (as here), so that `L` and `U` are the layers and not their boxes.
    ///
    /// ```
    /// use elman::stack::{Stack, Stack2};
    /// use elman::{Backend, InPlace, Layers, RnnCell};
    /// use elman::nalgebra::SVector;
    ///
    /// let (lower, upper) = (RnnCell::<64, 128>::zeroed_box(), RnnCell::<128, 128>::zeroed_box());
    /// let layers: Box<Stack2<64, 128>> = Stack::new_boxed(&lower, &upper);
    /// let mut state = Stack2::<64, 128>::ZERO_STATE;
    /// layers.advance(Backend::best(), &SVector::zeros(), &mut state);
    /// assert_eq!(state.1, SVector::<f32, 128>::zeros());
    /// ```
    #[must_use]
    pub fn new_boxed(lower: &L, upper: &U) -> Box<Self> {
        let mut stack = Self::zeroed_box();
        stack.lower.copy_from(lower);
        stack.upper.copy_from(upper);
        stack
    }
}

impl<L: InPlace, U: InPlace, const M: usize> InPlace for Stack<L, U, M> {
    fn copy_from(&mut self, source: &Self) {
        self.lower.copy_from(&source.lower);
        self.upper.copy_from(&source.upper);
    }
}

impl_zeroable!(impl[L: bytemuck::Zeroable, U: bytemuck::Zeroable, const M: usize] for Stack<L, U, M> {
    Stack { lower, upper } => lower, upper
});
