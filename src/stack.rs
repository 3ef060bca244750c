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
//! Stacks nest: `Stack<Stack<A, B, H>, C, H>` is three layers. A step allocates nothing.
//!
//! ```
//! use elman::stack::{Recurrent, Stack};
//! use elman::RnnCell;
//! use elman::nalgebra::{SVector, vector};
//!
//! let lower: RnnCell<2, 3> = RnnCell::default();
//! let upper: RnnCell<3, 4> = RnnCell::default();
//! let net = Stack::new(lower, upper);
//! let mut state = net.zero_state();
//! let y: SVector<f32, 4> = net.step(&vector![1.0, -1.0], &mut state);
//! assert_eq!(y, SVector::<f32, 4>::zeros());
//! ```

use nalgebra::SVector;

use crate::activation::Activation;
use crate::cell::RnnCell;
use crate::in_place::{InPlace, impl_zeroable};

/// A recurrent network from `I` inputs to `O` outputs per step, with a state of its own type.
pub trait Recurrent<const I: usize, const O: usize> {
    /// Everything the network carries from step to step.
    type State: Clone + core::fmt::Debug + PartialEq;

    /// The all-zero state.
    fn zero_state(&self) -> Self::State;

    /// One step: advances `state` and returns the output (the last layer's hidden state).
    fn step(&self, x: &SVector<f32, I>, state: &mut Self::State) -> SVector<f32, O>;
}

impl<const I: usize, const H: usize, A: Activation> Recurrent<I, H> for RnnCell<I, H, A> {
    type State = SVector<f32, H>;

    fn zero_state(&self) -> Self::State {
        SVector::zeros()
    }

    #[inline]
    fn step(&self, x: &SVector<f32, I>, state: &mut Self::State) -> SVector<f32, H> {
        *state = RnnCell::step(self, x, state);
        *state
    }
}

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

impl<const I: usize, const M: usize, const O: usize, L, U> Recurrent<I, O> for Stack<L, U, M>
where
    L: Recurrent<I, M>,
    U: Recurrent<M, O>,
{
    type State = (L::State, U::State);

    fn zero_state(&self) -> Self::State {
        (self.lower.zero_state(), self.upper.zero_state())
    }

    #[inline]
    fn step(&self, x: &SVector<f32, I>, state: &mut Self::State) -> SVector<f32, O> {
        let middle = self.lower.step(x, &mut state.0);
        self.upper.step(&middle, &mut state.1)
    }
}

/// `nn.RNN(num_layers=2)`: two layers of hidden size `H`.
pub type Rnn2<const I: usize, const H: usize, A = crate::Tanh> =
    Stack<RnnCell<I, H, A>, RnnCell<H, H, A>, H>;

/// `nn.RNN(num_layers=3)`.
pub type Rnn3<const I: usize, const H: usize, A = crate::Tanh> =
    Stack<Rnn2<I, H, A>, RnnCell<H, H, A>, H>;

/// `nn.RNN(num_layers=4)`.
pub type Rnn4<const I: usize, const H: usize, A = crate::Tanh> =
    Stack<Rnn3<I, H, A>, RnnCell<H, H, A>, H>;

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
    /// use elman::stack::{Recurrent, Rnn2, Stack};
    /// use elman::{InPlace, RnnCell};
    /// use elman::nalgebra::SVector;
    ///
    /// let (lower, upper) = (RnnCell::<64, 128>::zeroed_box(), RnnCell::<128, 128>::zeroed_box());
    /// let net: Box<Rnn2<64, 128>> = Stack::new_boxed(&lower, &upper);
    /// let mut state = net.zero_state();
    /// assert_eq!(net.step(&SVector::zeros(), &mut state), SVector::<f32, 128>::zeros());
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
