//! The recurrence non-linearity `A` of `h' = A(W_xh·x + W_hh·h + b)`, as a zero-sized type.
//!
//! The non-linearity is a type parameter of [`RnnCell`](crate::RnnCell) rather than a run-time
//! value, so a step never branches on it and a cell that holds one costs nothing.

use core::fmt::Debug;
use core::hash::Hash;

/// The seal: a public trait in a private module, so that no other crate can name it, implement
/// it, or read the [`Kind`] it carries.
mod sealed {
    /// What the kernels need to know of a non-linearity, beyond [`Activation`](super::Activation).
    pub trait Sealed {
        /// Which function this is, for the kernels, which evaluate it on whole vectors (the fast
        /// tanh for [`Tanh`](super::Tanh)).
        const KIND: Kind;
    }

    /// The non-linearities the kernels know.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kind {
        /// `tanh`, evaluated by the fast tanh.
        Tanh,
        /// `max(z, 0)`, NaN kept.
        Relu,
    }

    impl Sealed for super::Tanh {
        const KIND: Kind = Kind::Tanh;
    }

    impl Sealed for super::Relu {
        const KIND: Kind = Kind::Relu;
    }
}

pub(crate) use sealed::Kind;

/// A recurrence non-linearity: [`Tanh`] (the vanilla RNN's) or [`Relu`].
///
/// The trait is sealed: the fast step needs a vectorized version of each non-linearity, so the
/// crate owns the list. Each one names the exact function the slow
/// [reference](crate::reference) uses, and the one the fast step evaluates.
pub trait Activation:
    sealed::Sealed + Copy + Default + Debug + PartialEq + Eq + Hash + Send + Sync + 'static
{
    /// PyTorch's name for it (`nn.RNN(nonlinearity=...)`): `"tanh"` or `"relu"`.
    const NAME: &'static str;

    /// The exact function, as the [reference](crate::reference) step evaluates it.
    #[must_use]
    fn reference(z: f32) -> f32;
}

/// `tanh`, the vanilla (Elman) RNN's non-linearity and PyTorch's default.
///
/// ```
/// use elman::{Activation, Tanh};
/// assert_eq!(Tanh::reference(0.0), 0.0);
/// assert_eq!(Tanh::NAME, "tanh");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tanh;

impl Activation for Tanh {
    const NAME: &'static str = "tanh";
    #[inline]
    fn reference(z: f32) -> f32 {
        crate::math::tanhf(z)
    }
}

/// `relu(z) = max(z, 0)`, as PyTorch's `nn.RNN(nonlinearity='relu')`; NaN stays NaN.
///
/// ```
/// use elman::{Activation, Relu};
/// assert_eq!(Relu::reference(-2.0), 0.0);
/// assert_eq!(Relu::reference(1.5), 1.5);
/// assert!(Relu::reference(f32::NAN).is_nan());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Relu;

impl Activation for Relu {
    const NAME: &'static str = "relu";

    #[inline]
    fn reference(z: f32) -> f32 {
        // `z < 0` is false for NaN, so NaN passes through as in `torch.relu`.
        if z < 0.0 { 0.0 } else { z }
    }
}
