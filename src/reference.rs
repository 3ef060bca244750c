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

/// The step computed literally in the concatenated form, `h' = A(W·[x; h] + b)` with
/// `W = [W_xh | W_hh]`: for each hidden unit, one dot product of its row of `W` with the
/// concatenation `[x; h]`, summed left to right, and the exact non-linearity.
///
/// It sums in another order than [`step`] and [`RnnCell::step`], so it agrees with them to
/// rounding (the tests bound the difference), not to the bit: a second oracle, which reads the
/// weights as the concatenated form writes them.
///
/// ```
/// use elman::{reference, RnnCell};
/// use elman::nalgebra::SVector;
///
/// let cell: RnnCell<1, 2> = RnnCell::from_concatenated_row_major(
///     [[0.5, 1.0, 0.0], [-0.5, 0.0, 1.0]],
///     [0.0, 0.25],
/// );
/// let (x, h) = (SVector::from([1.0]), SVector::from([0.5, -0.5]));
/// let h1 = reference::step_concatenated(&cell, &x, &h);
/// assert_eq!(h1, SVector::from([1.0f32.tanh(), (-0.75f32).tanh()]));
/// ```
#[must_use]
pub fn step_concatenated<const I: usize, const H: usize, A: Activation>(
    cell: &RnnCell<I, H, A>,
    x: &SVector<f32, I>,
    h: &SVector<f32, H>,
) -> SVector<f32, H> {
    SVector::from_fn(|j, _| {
        let (row_x, row_h) = (cell.w_xh().row(j), cell.w_hh().row(j));
        let row = row_x.iter().chain(row_h.iter());
        let xh = x.iter().chain(h.iter());
        let dot = row.zip(xh).fold(0.0_f32, |sum, (w, z)| sum + w * z);
        A::reference(dot + cell.bias()[j])
    })
}

/// The reference output layer `W_hy·h + b_y`, a plain nalgebra product.
#[must_use]
pub fn logits<const H: usize, const O: usize>(
    readout: &Readout<H, O>,
    h: &SVector<f32, H>,
) -> SVector<f32, O> {
    readout.weight() * h + readout.bias()
}
