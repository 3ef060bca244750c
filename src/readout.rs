//! The output layer and the readings a task takes from it:
//!
//! ```text
//! y = W_hy·h + b_y                          logits (O values), the raw linear output
//! softmax(y)_i     = exp(y_i − m) / Σ_j exp(y_j − m),   m = max_j y_j
//! log_softmax(y)_i = y_i − m − ln Σ_j exp(y_j − m)
//! sigmoid(y)_i     = 1 / (1 + exp(−y_i))    element-wise, for independent (binary) labels
//! argmax(y)        = the index of the largest logit (the one-hot prediction)
//! ```
//!
//! Softmax is monotone in each logit, so the arg-max of the probabilities is the arg-max of the
//! logits: the prediction does not need the softmax, only the probabilistic reading does.

use nalgebra::{SMatrix, SVector};
use wide::f32x4;

use crate::cell::{from_rows, vector};
use crate::flush::{flush_weights, flush_weights_in_place, flushed};
use crate::in_place::{InPlace, copy_pod, impl_zeroable, write_rows};
use crate::math::{expf, ln, lnf};

/// The output layer `y = W_hy·h + b_y`: `W_hy` is `O × H`, `b_y` has `O` values.
///
/// `H` is the cell's hidden size: a readout whose `H` differs from the cell's does not compile.
///
/// ```
/// use elman::{argmax, softmax, Readout};
/// use elman::nalgebra::SVector;
///
/// let readout: Readout<2, 3> = Readout::from_row_major(
///     [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
///     [0.0, 0.0, 0.0],
/// );
/// let y = readout.logits(&SVector::from([0.25, 0.5]));
/// assert_eq!(y, SVector::from([0.25, 0.5, 0.75]));
/// assert_eq!(argmax(&y), 2);
/// assert!((softmax(&y).sum() - 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Readout<const H: usize, const O: usize> {
    w_hy: SMatrix<f32, O, H>,
    b_y: SVector<f32, O>,
}

impl<const H: usize, const O: usize> Readout<H, O> {
    /// A readout from `W_hy` (`O × H`) and `b_y`. Weights and biases smaller than
    /// [`WEIGHT_FLUSH_BELOW`](crate::WEIGHT_FLUSH_BELOW) in magnitude are stored as +0, as a
    /// cell's are.
    #[inline]
    #[must_use]
    pub const fn new(w_hy: SMatrix<f32, O, H>, b_y: SVector<f32, O>) -> Self {
        Self {
            w_hy: flush_weights(w_hy),
            b_y: flush_weights(b_y),
        }
    }

    /// A readout from row-major arrays, PyTorch's `nn.Linear` order: `w_hy[row]` holds the `H`
    /// weights of output `row`. Usable in `const` context.
    #[must_use]
    pub const fn from_row_major(w_hy: [[f32; H]; O], b_y: [f32; O]) -> Self {
        Self::new(from_rows(&w_hy), vector(b_y))
    }

    /// The weights `W_hy` (`O × H`).
    #[inline]
    #[must_use]
    pub const fn weight(&self) -> &SMatrix<f32, O, H> {
        &self.w_hy
    }

    /// The bias `b_y`.
    #[inline]
    #[must_use]
    pub const fn bias(&self) -> &SVector<f32, O> {
        &self.b_y
    }

    /// The logits `y = W_hy·h + b_y`: the raw linear output (regression reads it as it is).
    ///
    /// State values below [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude are read as +0, as
    /// the step reads them. From 4 outputs, computed with the instructions of
    /// [`Backend::best`](crate::Backend::best), as a network computes them on its backend: the
    /// same sums in the same order on every backend, so the same bits.
    #[inline]
    #[must_use]
    pub fn logits(&self, h: &SVector<f32, H>) -> SVector<f32, O> {
        let [h] = &h.data.0;
        let h = SVector::from(flushed(h));
        if O >= crate::kernel::READOUT_ENTRY_FROM {
            crate::Backend::best().logits(self, &h)
        } else {
            self.logits_of_clean(&h.data.0[0])
        }
    }

    /// [`logits`](Self::logits) of a state that is already flushed (one the kernel computed or
    /// a network holds): no entry flush.
    #[inline(always)]
    pub(crate) fn logits_of_clean(&self, h: &[f32; H]) -> SVector<f32, O> {
        // Few outputs: each column is a short multiply-add, and one accumulator would chain
        // all `H` of them; 8 partial sums keep 8 chains in flight. Many outputs: each column
        // is long enough to fill the vector units, and 2 partial sums stay in registers.
        if O <= 8 {
            self.partial_logits::<8>(h)
        } else {
            self.partial_logits::<2>(h)
        }
    }

    /// `W_hy·h + b_y`, column `k` added into partial sum `k mod S`, the sums added pairwise.
    /// Always inlined: `Rnn::process` reads each state out inside the kernel's loop, where a
    /// call would spill the state the next step is computing from.
    #[inline(always)]
    fn partial_logits<const S: usize>(&self, h: &[f32; H]) -> SVector<f32, O> {
        let mut sums = [[0.0_f32; O]; S];
        let columns = &self.w_hy.data.0;
        let (groups, rest) = columns.as_chunks::<S>();
        let (h_groups, h_rest) = h.as_chunks::<S>();
        for (group, hs) in groups.iter().zip(h_groups) {
            if O < 4 {
                // Fewer outputs than a vector's 4 lanes: column by column, the compiler filled
                // a vector with one column's `O` values and loaded and broadcast each state
                // value alone, twice the operations and loads (which compete with the step's
                // own). So the group's `S` columns and the `S` partial sums, each `S·O` values
                // in a row (`[s][o]`), are added four at a time, lane `i` times the state value
                // `hs[i / O]`. The same products and sums in the same order: the same bits.
                // From 4 outputs a column fills a vector, and the compiler's own vectors are
                // as wide as the code's features allow: in the backends' entries, where a
                // network's readout runs from 4 outputs (`Backend::logits`) and `Rnn::process`
                // reads each state out inside the kernel's loop.
                let (sums4, sums_rest) = sums.as_flattened_mut().as_chunks_mut::<4>();
                let (w4, w_rest) = group.as_flattened().as_chunks::<4>();
                for (c, (sum, w)) in sums4.iter_mut().zip(w4).enumerate() {
                    let lanes =
                        core::array::from_fn(|j| hs.get((4 * c + j) / O).copied().unwrap_or(0.0));
                    *sum = (f32x4::from(*sum) + f32x4::from(lanes) * f32x4::from(*w)).into();
                }
                let done = 4 * sums4.len();
                for (i, (sum, w)) in sums_rest.iter_mut().zip(w_rest).enumerate() {
                    if let Some(hk) = hs.get((done + i) / O) {
                        *sum += hk * w;
                    }
                }
                continue;
            }
            for s in 0..S {
                for (sum, w) in sums[s].iter_mut().zip(&group[s]) {
                    *sum += hs[s] * w;
                }
            }
        }
        for (s, (column, hk)) in rest.iter().zip(h_rest).enumerate() {
            if let Some(partial) = sums.get_mut(s) {
                for (sum, w) in partial.iter_mut().zip(column) {
                    *sum += hk * w;
                }
            }
        }
        let mut n = S;
        while n > 1 {
            let half = n.div_ceil(2);
            for s in 0..n - half {
                let upper = sums[s + half];
                for (sum, value) in sums[s].iter_mut().zip(upper) {
                    *sum += value;
                }
            }
            n = half;
        }
        let [bias] = &self.b_y.data.0;
        let mut y = self.b_y;
        for ((out, sum), b) in y.iter_mut().zip(&sums[0]).zip(bias) {
            *out = b + sum;
        }
        y
    }

    /// The class probabilities `softmax(W_hy·h + b_y)`.
    #[inline]
    #[must_use]
    pub fn probabilities(&self, h: &SVector<f32, H>) -> SVector<f32, O> {
        softmax(&self.logits(h))
    }

    /// The predicted class, `argmax(W_hy·h + b_y)`.
    #[inline]
    #[must_use]
    pub fn predict(&self, h: &SVector<f32, H>) -> usize {
        argmax(&self.logits(h))
    }
}

impl<const H: usize, const O: usize> Default for Readout<H, O> {
    /// The all-zero readout.
    fn default() -> Self {
        Self::new(SMatrix::zeros(), SVector::zeros())
    }
}

/// What an exported model applies to its readout's logits: the reading its file asks for
/// (Keras's `Dense` activation, an ONNX `Softmax` or `Sigmoid` node after the readout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// Nothing: the readout's logits are the model's output.
    Linear,
    /// [`softmax`] of the logits.
    Softmax,
    /// [`sigmoid`] of the logits.
    Sigmoid,
}

impl Head {
    /// The model's output from the readout's logits.
    ///
    /// ```
    /// use elman::Head;
    /// use elman::nalgebra::{self, vector};
    ///
    /// let logits = vector![0.0_f32, 0.0];
    /// assert_eq!(Head::Linear.apply(&logits), logits);
    /// assert_eq!(Head::Softmax.apply(&logits), vector![0.5, 0.5]);
    /// assert_eq!(Head::Sigmoid.apply(&logits), vector![0.5, 0.5]);
    /// ```
    #[must_use]
    pub fn apply<const N: usize>(self, logits: &SVector<f32, N>) -> SVector<f32, N> {
        match self {
            Self::Linear => *logits,
            Self::Softmax => softmax(logits),
            Self::Sigmoid => sigmoid(logits),
        }
    }
}

/// Softmax, computed stably: `exp(y_i − max y) / Σ_j exp(y_j − max y)`.
///
/// - Any finite logits, however large (±1e30), give finite probabilities that sum to 1 within
///   1e-6 (the sum of the exponentials is accumulated in `f64`). A logit more than about 104
///   below the largest gets probability 0: its exponential underflows.
/// - NaN in any logit makes every probability NaN.
/// - `+inf` logits share the probability equally (the limit as they grow together); every
///   other logit gets 0. A `−inf` logit gets 0 while any logit is larger. If every logit is
///   `−inf` there is no distribution, and every probability is NaN.
///
/// ```
/// use elman::softmax;
/// use elman::nalgebra::SVector;
///
/// let p = softmax(&SVector::from([1e30, 0.0, -1e30]));
/// assert_eq!(p, SVector::from([1.0, 0.0, 0.0]));
/// let p = softmax(&SVector::from([f32::INFINITY, 1.0, f32::INFINITY]));
/// assert_eq!(p, SVector::from([0.5, 0.0, 0.5]));
/// ```
#[must_use]
pub fn softmax<const N: usize>(logits: &SVector<f32, N>) -> SVector<f32, N> {
    match Shifted::new(logits) {
        Shifted::Nan => SVector::repeat(f32::NAN),
        Shifted::Infinite(count) => {
            logits.map(|y| if y == f32::INFINITY { 1.0 / count } else { 0.0 })
        }
        Shifted::Finite { max, sum } =>
        {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a probability, rounded once to f32"
            )]
            logits.map(|y| (f64::from(expf(y - max)) / sum) as f32)
        }
    }
}

/// Log-softmax, `y_i − max y − ln Σ_j exp(y_j − max y)`, without forming the probabilities: it
/// stays finite where [`softmax`] underflows to 0.
///
/// NaN in any logit makes every value NaN; with `+inf` logits, each of them gets
/// `−ln(their count)` and every other logit `−inf`; all `−inf` gives NaN.
///
/// ```
/// use elman::log_softmax;
/// use elman::nalgebra::SVector;
///
/// let l = log_softmax(&SVector::from([0.0, -200.0]));
/// assert!(l[0].abs() < 1e-7);
/// assert!((l[1] + 200.0).abs() < 1e-4);
/// ```
#[must_use]
pub fn log_softmax<const N: usize>(logits: &SVector<f32, N>) -> SVector<f32, N> {
    match Shifted::new(logits) {
        Shifted::Nan => SVector::repeat(f32::NAN),
        Shifted::Infinite(count) => {
            let share = -lnf(count);
            logits.map(|y| {
                if y == f32::INFINITY {
                    share
                } else {
                    f32::NEG_INFINITY
                }
            })
        }
        Shifted::Finite { max, sum } => {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "ln of a sum in [1, N], to f32"
            )]
            let log_sum = ln(sum) as f32;
            logits.map(|y| (y - max) - log_sum)
        }
    }
}

/// How a logit vector is shifted before exponentiating.
enum Shifted {
    /// A NaN logit, or every logit `−inf`: no distribution.
    Nan,
    /// This many logits are `+inf` (as f32, ≥ 1).
    Infinite(f32),
    /// The largest logit is finite; `sum = Σ exp(y_j − max)` in `f64` (≥ 1).
    Finite { max: f32, sum: f64 },
}

impl Shifted {
    fn new<const N: usize>(logits: &SVector<f32, N>) -> Self {
        if logits.iter().any(|y| y.is_nan()) {
            return Self::Nan;
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max == f32::INFINITY {
            let count = logits.iter().filter(|&&y| y == f32::INFINITY).count();
            #[expect(clippy::cast_precision_loss, reason = "a count of vector entries")]
            return Self::Infinite(count as f32);
        }
        if max == f32::NEG_INFINITY {
            return Self::Nan;
        }
        let sum = logits.iter().map(|&y| f64::from(expf(y - max))).sum();
        Self::Finite { max, sum }
    }
}

/// The logistic sigmoid `1 / (1 + exp(−y))`, element-wise: one independent probability per
/// output (binary or multi-label tasks).
///
/// Computed without overflow for any input (`exp` only ever sees a non-positive argument);
/// `±inf` gives 1 and 0, NaN stays NaN.
///
/// ```
/// use elman::sigmoid;
/// use elman::nalgebra::SVector;
///
/// let p = sigmoid(&SVector::from([0.0, 1e30, -1e30]));
/// assert_eq!(p, SVector::from([0.5, 1.0, 0.0]));
/// ```
#[must_use]
pub fn sigmoid<const N: usize>(logits: &SVector<f32, N>) -> SVector<f32, N> {
    logits.map(|y| {
        if y >= 0.0 {
            1.0 / (1.0 + expf(-y))
        } else {
            // Also NaN: exp(NaN) is NaN.
            let e = expf(y);
            e / (1.0 + e)
        }
    })
}

/// The index of the largest value: the prediction, the position of the one in the one-hot
/// vector.
///
/// Ties go to the first index. A NaN counts as larger than every number, so a poisoned output
/// is reported rather than hidden. `N` must be at least 1 (checked when the call is built).
///
/// ```
/// use elman::argmax;
/// use elman::nalgebra::SVector;
///
/// assert_eq!(argmax(&SVector::from([0.1, 0.7, 0.7, -3.0])), 1);
/// ```
#[must_use]
pub fn argmax<const N: usize>(values: &SVector<f32, N>) -> usize {
    const { assert!(N > 0, "argmax needs at least one value") };
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        let current = values[best];
        if !current.is_nan() && (v > current || v.is_nan()) {
            best = i;
        }
    }
    best
}

/// The one-hot vector with a 1 at `index`, or `None` if `index >= N`.
///
/// ```
/// use elman::one_hot;
/// use elman::nalgebra::SVector;
///
/// assert_eq!(one_hot::<3>(1), Some(SVector::from([0.0, 1.0, 0.0])));
/// assert_eq!(one_hot::<3>(3), None);
/// ```
#[must_use]
pub fn one_hot<const N: usize>(index: usize) -> Option<SVector<f32, N>> {
    (index < N).then(|| SVector::from_fn(|i, _| if i == index { 1.0 } else { 0.0 }))
}

/// The one-hot prediction: [`one_hot`] at [`argmax`].
///
/// ```
/// use elman::one_hot_argmax;
/// use elman::nalgebra::SVector;
///
/// assert_eq!(one_hot_argmax(&SVector::from([0.2, -1.0, 3.0])), SVector::from([0.0, 0.0, 1.0]));
/// ```
#[must_use]
pub fn one_hot_argmax<const N: usize>(values: &SVector<f32, N>) -> SVector<f32, N> {
    let k = argmax(values);
    SVector::from_fn(|i, _| if i == k { 1.0 } else { 0.0 })
}

/// Built and copied in place: see [`InPlace`].
impl<const H: usize, const O: usize> Readout<H, O> {
    /// A readout on the heap from row-major weights, as
    /// [`from_row_major`](Self::from_row_major) builds one, written in place
    /// ([`zeroed_box`](InPlace::zeroed_box), then [`set_row_major`](Self::set_row_major)): it is
    /// never on the stack, whatever its size.
    ///
    /// ```
    /// use elman::Readout;
    ///
    /// let head = Readout::<2, 3>::boxed_from_row_major(&[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &[0.0; 3]);
    /// assert_eq!(head.weight()[(2, 1)], 6.0);
    /// ```
    #[cfg(feature = "std")]
    #[must_use]
    pub fn boxed_from_row_major(w_hy: &[[f32; H]; O], b_y: &[f32; O]) -> Box<Self> {
        let mut readout = Self::zeroed_box();
        readout.set_row_major(w_hy, b_y);
        readout
    }

    /// Replaces the weights by row-major ones (`nn.Linear`'s order, as
    /// [`from_row_major`](Self::from_row_major) takes them), written in place: nothing the size
    /// of the readout is built on the stack.
    pub fn set_row_major(&mut self, w_hy: &[[f32; H]; O], b_y: &[f32; O]) {
        self.store_row_major(w_hy.as_flattened(), b_y);
    }

    /// Stores weights given row-major (`O·H` and `O` values) over the readout's: the one way the
    /// in-place constructors and the loader store new weights in a readout.
    pub(crate) fn store_row_major(&mut self, w_hy: &[f32], b_y: &[f32]) {
        write_rows(w_hy, &mut self.w_hy);
        write_rows(b_y, &mut self.b_y);
        flush_weights_in_place(&mut self.w_hy);
        flush_weights_in_place(&mut self.b_y);
    }
}

impl<const H: usize, const O: usize> InPlace for Readout<H, O> {
    fn copy_from(&mut self, source: &Self) {
        copy_pod(&mut self.w_hy, &source.w_hy);
        copy_pod(&mut self.b_y, &source.b_y);
    }
}

impl_zeroable!(impl[const H: usize, const O: usize] for Readout<H, O> {
    Readout { w_hy, b_y } => w_hy, b_y
});
