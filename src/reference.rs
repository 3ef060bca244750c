//! The slow, obvious step: the oracle every fast path is tested against.
//!
//! ```text
//! h' = A(W_xh·x + W_hh·h + b)     with nalgebra's products and the exact A (f32::tanh)
//! y  = W_hy·h' + b_y
//! ```
//!
//! Nothing here is tuned. It exists so that a faster path can be checked against it: the
//! property tests pin [`RnnCell::step`] to [`step`] within a stated tolerance.

use nalgebra::SVector;

use crate::activation::Activation;
use crate::cell::RnnCell;
use crate::readout::Readout;

/// The reference step `A(W_xh·x + W_hh·h + b)`: plain nalgebra products and the exact
/// non-linearity ([`Activation::reference`], `f32::tanh` for [`Tanh`](crate::Tanh)).
///
/// ```
/// use elman::{reference, RnnCell};
/// use elman::nalgebra::SVector;
///
/// let cell: RnnCell<2, 2> = RnnCell::from_row_major(
///     [[1.0, 0.0], [0.0, 1.0]],
///     [[0.0, 0.0], [0.0, 0.0]],
///     [0.0, 0.0],
/// );
/// let h = reference::step(&cell, &SVector::from([0.5, -0.5]), &SVector::zeros());
/// assert_eq!(h, SVector::from([0.5f32.tanh(), (-0.5f32).tanh()]));
/// ```
#[must_use]
pub fn step<const I: usize, const H: usize, A: Activation>(
    cell: &RnnCell<I, H, A>,
    x: &SVector<f32, I>,
    h: &SVector<f32, H>,
) -> SVector<f32, H> {
    (cell.w_xh() * x + cell.w_hh() * h + cell.bias()).map(A::reference)
}

/// The reference output layer `W_hy·h + b_y`, a plain nalgebra product.
#[must_use]
pub fn logits<const H: usize, const O: usize>(
    readout: &Readout<H, O>,
    h: &SVector<f32, H>,
) -> SVector<f32, O> {
    readout.weight() * h + readout.bias()
}
