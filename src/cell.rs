//! One vanilla (Elman) RNN cell:
//!
//! ```text
//! h' = A(W_xh·x + W_hh·h + b)        split form
//!    = A(W·[x; h] + b)               concatenated form, W = [W_xh | W_hh], H × (I+H)
//! ```
//!
//! `I` is the input size, `H` the hidden size, `A` the non-linearity ([`Tanh`] by default).
//! All three are part of the type, so a mismatched dimension is a compile error.

use core::marker::PhantomData;

use nalgebra::{ArrayStorage, SMatrix, SVector};

use crate::activation::{Activation, Tanh};
use crate::flush::{flush_weights, flush_weights_in_place};
use crate::in_place::{InPlace, copy_pod, impl_zeroable, write_rows};
use crate::kernel::Backend;

/// A vanilla RNN cell: `h' = A(W_xh·x + W_hh·h + b)` with compile-time sizes.
///
/// `W_xh` is `H × I`, `W_hh` is `H × H`, `b` has `H` values. PyTorch's two biases
/// (`b_ih + b_hh`) are one bias here: add them before building the cell.
///
/// The weights are stored column-major (nalgebra's layout), which is the layout the step's
/// column-broadcast kernel reads: column `k` of `W_xh` (or of `W_hh`) is contiguous, and the step
/// walks the columns of `W_xh` and then those of `W_hh` as one sweep over `[x; h]`.
///
/// ```
/// use elman::RnnCell;
/// use elman::nalgebra::{SMatrix, SVector};
///
/// let cell: RnnCell<3, 2> = RnnCell::new(
///     SMatrix::<f32, 2, 3>::from_row_slice(&[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
///     SMatrix::<f32, 2, 2>::identity() * 0.5,
///     SVector::<f32, 2>::zeros(),
/// );
/// let h = cell.step(&SVector::from([1.0, 0.0, -1.0]), &SVector::zeros());
/// assert!((h[0] - (-0.2f32).tanh()).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct RnnCell<const I: usize, const H: usize, A = Tanh> {
    w_xh: SMatrix<f32, H, I>,
    w_hh: SMatrix<f32, H, H>,
    b: SVector<f32, H>,
    activation: PhantomData<A>,
}

/// `rows[r][c]` as a nalgebra matrix (which stores columns): a `const` transpose.
pub(crate) const fn from_rows<const R: usize, const C: usize>(
    rows: &[[f32; C]; R],
) -> SMatrix<f32, R, C> {
    let mut columns = [[0.0_f32; R]; C];
    let mut r = 0;
    while r < R {
        let mut c = 0;
        while c < C {
            columns[c][r] = rows[r][c];
            c += 1;
        }
        r += 1;
    }
    SMatrix::from_array_storage(ArrayStorage(columns))
}

/// The compile-time check that a concatenated matrix `[W_xh | W_hh]` has `K = I + H` columns.
///
/// It is evaluated when a call is built (monomorphized), so `cargo check` alone does not report
/// it; `cargo build` and `cargo test` do. A type-level sum would fire earlier, but nalgebra's
/// dimension arithmetic goes through typenum and stops at 127, short of the (64, 128) and
/// (128, 256) cells the crate supports.
struct ConcatenatedWidth<const I: usize, const H: usize, const K: usize>;

impl<const I: usize, const H: usize, const K: usize> ConcatenatedWidth<I, H, K> {
    const CHECK: () = assert!(
        K == I + H,
        "the concatenated matrix must have I + H columns"
    );
}

/// A vector from its values, usable in `const` context.
pub(crate) const fn vector<const N: usize>(values: [f32; N]) -> SVector<f32, N> {
    SMatrix::from_array_storage(ArrayStorage([values]))
}

impl<const I: usize, const H: usize, A: Activation> RnnCell<I, H, A> {
    /// A cell from the split form: `W_xh` (`H × I`), `W_hh` (`H × H`) and the bias `b`.
    ///
    /// The shared `H` makes the compiler reject weights whose hidden sizes disagree. Every
    /// weight or bias smaller than [`WEIGHT_FLUSH_BELOW`](crate::WEIGHT_FLUSH_BELOW) (`2^-40`) in
    /// magnitude is stored as +0, here and in every other constructor, so that no step meets a
    /// subnormal number (see [`flush`](crate::flush)).
    #[inline]
    #[must_use]
    pub const fn new(
        w_xh: SMatrix<f32, H, I>,
        w_hh: SMatrix<f32, H, H>,
        b: SVector<f32, H>,
    ) -> Self {
        Self {
            w_xh: flush_weights(w_xh),
            w_hh: flush_weights(w_hh),
            b: flush_weights(b),
            activation: PhantomData,
        }
    }

    /// A cell from row-major arrays, PyTorch's order: `w_xh[row][column]` is `H` rows of `I`
    /// values (`weight_ih`), `w_hh` is `H` rows of `H` values (`weight_hh`).
    ///
    /// Usable in `const` context, so a model can be a `static`:
    ///
    /// ```
    /// use elman::RnnCell;
    ///
    /// static CELL: RnnCell<1, 2> = RnnCell::from_row_major(
    ///     [[1.0], [2.0]],
    ///     [[0.5, 0.0], [0.0, 0.5]],
    ///     [0.0, 0.0],
    /// );
    /// assert_eq!(CELL.w_xh()[(1, 0)], 2.0);
    /// ```
    #[must_use]
    pub const fn from_row_major(w_xh: [[f32; I]; H], w_hh: [[f32; H]; H], b: [f32; H]) -> Self {
        Self::new(from_rows(&w_xh), from_rows(&w_hh), vector(b))
    }

    /// A cell from the concatenated form `W = [W_xh | W_hh]` (`H × (I+H)`) and the bias `b`.
    ///
    /// Columns `0..I` of `w` meet `x`, columns `I..I+H` meet `h`. That `K = I + H` is checked
    /// by the compiler when the call is built: a wrong width is a compile error
    /// ("the concatenated matrix must have I + H columns").
    ///
    /// ```
    /// use elman::RnnCell;
    /// use elman::nalgebra::{SMatrix, SVector};
    ///
    /// let w = SMatrix::<f32, 2, 5>::from_row_slice(&[
    ///     1.0, 2.0, 3.0, 4.0, 5.0,
    ///     6.0, 7.0, 8.0, 9.0, 10.0,
    /// ]);
    /// let cell: RnnCell<3, 2> = RnnCell::from_concatenated(w, SVector::zeros());
    /// assert_eq!(cell.w_hh()[(1, 0)], 9.0);
    /// assert_eq!(cell.concatenated::<5>(), w);
    /// ```
    #[must_use]
    pub fn from_concatenated<const K: usize>(w: SMatrix<f32, H, K>, b: SVector<f32, H>) -> Self {
        let () = ConcatenatedWidth::<I, H, K>::CHECK;
        Self::new(
            SMatrix::from_fn(|r, c| w[(r, c)]),
            SMatrix::from_fn(|r, c| w[(r, I + c)]),
            b,
        )
    }

    /// A cell from the concatenated form in row-major order: `w[row]` holds the `I + H` weights
    /// of one hidden unit, the `I` that meet `x` first (the seed's `[A B; C D]`).
    ///
    /// ```
    /// use elman::RnnCell;
    ///
    /// let cell: RnnCell<3, 2> = RnnCell::from_concatenated_row_major(
    ///     [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]],
    ///     [0.0, 0.0],
    /// );
    /// assert_eq!(cell.w_xh()[(1, 2)], 8.0);
    /// ```
    #[must_use]
    pub fn from_concatenated_row_major<const K: usize>(w: [[f32; K]; H], b: [f32; H]) -> Self {
        Self::from_concatenated(from_rows(&w), vector(b))
    }

    /// The input weights `W_xh` (`H × I`).
    #[inline]
    #[must_use]
    pub const fn w_xh(&self) -> &SMatrix<f32, H, I> {
        &self.w_xh
    }

    /// The recurrent weights `W_hh` (`H × H`).
    #[inline]
    #[must_use]
    pub const fn w_hh(&self) -> &SMatrix<f32, H, H> {
        &self.w_hh
    }

    /// The bias `b` (PyTorch's `b_ih + b_hh`).
    #[inline]
    #[must_use]
    pub const fn bias(&self) -> &SVector<f32, H> {
        &self.b
    }

    /// The concatenated weights `W = [W_xh | W_hh]` (`H × (I+H)`); `K = I + H` is checked by the
    /// compiler.
    #[must_use]
    pub fn concatenated<const K: usize>(&self) -> SMatrix<f32, H, K> {
        let () = ConcatenatedWidth::<I, H, K>::CHECK;
        SMatrix::from_fn(|r, c| {
            if c < I {
                self.w_xh[(r, c)]
            } else {
                self.w_hh[(r, c - I)]
            }
        })
    }

    /// The same weights with another non-linearity.
    #[inline]
    #[must_use]
    pub fn with_activation<B: Activation>(self) -> RnnCell<I, H, B> {
        RnnCell::new(self.w_xh, self.w_hh, self.b)
    }

    /// One step: `h' = A(W_xh·x + W_hh·h + b)`, on the fastest [`Backend`] this CPU runs.
    ///
    /// This is the step to call (in a loop of steps, [`step_in_place`](Self::step_in_place)
    /// spares the copy of the returned state). It allocates nothing and cannot panic. `A` is
    /// evaluated by the [fast tanh](crate::tanh) (within
    /// [`FAST_TANH_MAX_ABS_ERROR`](crate::FAST_TANH_MAX_ABS_ERROR) of the exact one) or ReLU;
    /// the [error budget](crate::budget) bounds the distance to
    /// [`reference::step`](crate::reference::step).
    #[inline]
    #[must_use]
    pub fn step(&self, x: &SVector<f32, I>, h: &SVector<f32, H>) -> SVector<f32, H> {
        self.step_with(Backend::best(), x, h)
    }

    /// One step on the given backend; [`Backend::PORTABLE`] gives the same bits on every machine.
    ///
    /// "The same bits", here and in the rest of the crate, holds for every result that is not
    /// NaN. A NaN result is a NaN, but which one (sign and payload) is not fixed: Rust leaves it
    /// to the compiler, which may order the operands of an addition either way.
    ///
    /// ```
    /// use elman::{Backend, RnnCell};
    /// use elman::nalgebra::SVector;
    ///
    /// let cell: RnnCell<1, 1> = RnnCell::from_row_major([[0.5]], [[0.5]], [0.0]);
    /// let (x, h) = (SVector::from([1.0]), SVector::from([1.0]));
    /// for backend in Backend::available() {
    ///     assert!((cell.step_with(backend, &x, &h)[0] - 1.0f32.tanh()).abs() < 3e-7);
    /// }
    /// ```
    #[inline]
    #[must_use]
    pub fn step_with(
        &self,
        backend: Backend,
        x: &SVector<f32, I>,
        h: &SVector<f32, H>,
    ) -> SVector<f32, H> {
        backend.step::<I, H, A>(&self.w_xh, &self.w_hh, &self.b, x, h)
    }

    /// [`step`](Self::step) with the new state written over `h`: the same bits, without the
    /// copies a state returned by value costs a loop of steps.
    ///
    /// From 5 units `step` returns its state through memory, and the caller's
    /// `h = cell.step(&x, &h)` copies it again before the next step can read it, on the chain
    /// from one step to the next; in place, the kernel writes it where the next step reads it.
    /// Like `step`, it allocates nothing and cannot panic.
    ///
    /// ```
    /// use elman::RnnCell;
    /// use elman::nalgebra::SVector;
    ///
    /// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[0.5], [-0.5]], [[0.3, 0.1], [0.2, 0.4]], [0.0, 0.1]);
    /// let xs = [SVector::from([1.0]), SVector::from([0.5]), SVector::from([-1.0])];
    /// let mut h = SVector::zeros();
    /// for x in &xs {
    ///     cell.step_in_place(x, &mut h);
    /// }
    /// assert_eq!(cell.run(&xs, &SVector::zeros()), h);
    /// ```
    #[inline]
    pub fn step_in_place(&self, x: &SVector<f32, I>, h: &mut SVector<f32, H>) {
        self.step_in_place_with(Backend::best(), x, h);
    }

    /// [`step_in_place`](Self::step_in_place) on the given backend: the bits of
    /// [`step_with`](Self::step_with) on it.
    #[inline]
    pub fn step_in_place_with(
        &self,
        backend: Backend,
        x: &SVector<f32, I>,
        h: &mut SVector<f32, H>,
    ) {
        let w = (&self.w_xh.data.0, &self.w_hh.data.0, &self.b.data.0[0]);
        backend.step_weights_in_place::<I, H, A, f32>(w, &x.data.0[0], &mut h.data.0[0]);
    }

    /// [`step`](Self::step) over a sequence: from the state `h`, one step per input of `xs`
    /// in turn; returns the last state (`h` itself for no input).
    ///
    /// The same bits as calling `step` in a loop, faster: the loop runs inside the backend's
    /// kernel, the backend chosen once, and the state stays in registers from one step to the
    /// next instead of going through memory at each call. It allocates nothing and cannot
    /// panic.
    ///
    /// ```
    /// use elman::RnnCell;
    /// use elman::nalgebra::SVector;
    ///
    /// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[0.5], [-0.5]], [[0.3, 0.1], [0.2, 0.4]], [0.0, 0.1]);
    /// let xs = [SVector::from([1.0]), SVector::from([0.5]), SVector::from([-1.0])];
    /// let mut h = SVector::zeros();
    /// for x in &xs {
    ///     h = cell.step(x, &h);
    /// }
    /// assert_eq!(cell.run(&xs, &SVector::zeros()), h);
    /// ```
    #[inline]
    #[must_use]
    pub fn run(&self, xs: &[SVector<f32, I>], h: &SVector<f32, H>) -> SVector<f32, H> {
        self.run_with(Backend::best(), xs, h)
    }

    /// [`run`](Self::run) on the given backend: the bits of [`step_with`](Self::step_with) on
    /// it, called in a loop.
    #[inline]
    #[must_use]
    pub fn run_with(
        &self,
        backend: Backend,
        xs: &[SVector<f32, I>],
        h: &SVector<f32, H>,
    ) -> SVector<f32, H> {
        let mut state = *h;
        let [h] = &mut state.data.0;
        let weights = (&self.w_xh, &self.w_hh, &self.b);
        backend.run::<I, H, A, (), _>(weights, xs, h, core::iter::repeat(()), |_, ()| {});
        state
    }
}

impl<const I: usize, const H: usize, A: Activation> Default for RnnCell<I, H, A> {
    /// The all-zero cell: zero weights and bias (its step maps every state to `A(0) = 0`).
    fn default() -> Self {
        Self::new(SMatrix::zeros(), SMatrix::zeros(), SVector::zeros())
    }
}

/// Built and copied in place: see [`InPlace`].
impl<const I: usize, const H: usize, A: Activation> RnnCell<I, H, A> {
    /// A cell on the heap from row-major weights, as [`from_row_major`](Self::from_row_major)
    /// builds one, written in place ([`zeroed_box`](InPlace::zeroed_box), then
    /// [`set_row_major`](Self::set_row_major)): the weights are read through references and the
    /// cell is never on the stack, whatever its size.
    ///
    /// ```
    /// use elman::RnnCell;
    ///
    /// let w_hh = vec![[0.5; 256]; 256];
    /// let w_hh: &[[f32; 256]; 256] = w_hh.as_slice().try_into().unwrap();
    /// let cell = RnnCell::<1, 256>::boxed_from_row_major(&[[1.0]; 256], w_hh, &[0.0; 256]);
    /// assert_eq!(cell.w_hh()[(3, 7)], 0.5);
    /// ```
    #[cfg(feature = "std")]
    #[must_use]
    pub fn boxed_from_row_major(
        w_xh: &[[f32; I]; H],
        w_hh: &[[f32; H]; H],
        b: &[f32; H],
    ) -> Box<Self> {
        let mut cell = Self::zeroed_box();
        cell.set_row_major(w_xh, w_hh, b);
        cell
    }

    /// Replaces the weights by row-major ones (PyTorch's order, as
    /// [`from_row_major`](Self::from_row_major) takes them), written in place: nothing the size
    /// of the cell is built on the stack: the way to fill or change a large cell where it lives,
    /// with or without `std`.
    ///
    /// ```
    /// use elman::RnnCell;
    ///
    /// let mut cell: RnnCell<1, 2> = RnnCell::default();
    /// cell.set_row_major(&[[1.0], [2.0]], &[[0.5, 0.0], [0.0, 0.5]], &[0.0, 0.1]);
    /// assert_eq!(cell, RnnCell::from_row_major([[1.0], [2.0]], [[0.5, 0.0], [0.0, 0.5]], [0.0, 0.1]));
    /// ```
    pub fn set_row_major(&mut self, w_xh: &[[f32; I]; H], w_hh: &[[f32; H]; H], b: &[f32; H]) {
        self.store_row_major(w_xh.as_flattened(), w_hh.as_flattened(), b);
    }

    /// Stores weights given row-major (`H·I`, `H·H` and `H` values) over the cell's: the one way
    /// the in-place constructors and the loader store new weights in a cell.
    pub(crate) fn store_row_major(&mut self, w_xh: &[f32], w_hh: &[f32], b: &[f32]) {
        write_rows(w_xh, &mut self.w_xh);
        write_rows(w_hh, &mut self.w_hh);
        write_rows(b, &mut self.b);
        flush_weights_in_place(&mut self.w_xh);
        flush_weights_in_place(&mut self.w_hh);
        flush_weights_in_place(&mut self.b);
    }
}

impl<const I: usize, const H: usize, A> InPlace for RnnCell<I, H, A> {
    fn copy_from(&mut self, source: &Self) {
        copy_pod(&mut self.w_xh, &source.w_xh);
        copy_pod(&mut self.w_hh, &source.w_hh);
        copy_pod(&mut self.b, &source.b);
    }
}

impl_zeroable!(impl[const I: usize, const H: usize, A] for RnnCell<I, H, A> {
    RnnCell { w_xh, w_hh, b, activation } => w_xh, w_hh, b, activation
});
