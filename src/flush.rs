//! Denormal immunity: no multiply-add of a step reads or produces a subnormal number.
//!
//! ```text
//! weights and biases:  |w| < WEIGHT_FLUSH_BELOW = 2^-40  →  w = +0   (when a cell or readout is built)
//! inputs and states:   |z| < FLUSH_BELOW        = 2^-40  →  z = +0   (on entry, and after A)
//! ```
//!
//! Many CPUs (Intel's among them) take a microcode assist, tens to hundreds of cycles, for each
//! operation that reads a subnormal operand or rounds a result into the subnormal range; a
//! signal that decays to zero (a reverb tail, a sensor settling) would otherwise pass through
//! them and slow every step by 10 to 100 times. The crate keeps them out of its arithmetic
//! without touching the FPU's global flags (MXCSR's flush-to-zero and denormals-are-zero, which
//! would change every other computation of the program).
//!
//! # The invariant, and why it holds
//!
//! Every nonzero operand of the step's multiply-adds is at least `2^-40` in magnitude: weights
//! and biases are flushed when a cell or readout is built (in the `const` constructors too, and
//! by the loader), inputs and user-set states on entry, and each new state after the
//! non-linearity. An `f32` of magnitude at least `2^-40` is a multiple of `2^-63` (its last
//! significand bit is worth at least `2^(-40-23)`), so the exact product of a weight and an
//! input is a multiple of `2^-126`, and so is the bias. A sum of multiples of `2^-126`, exact or
//! rounded to `f32`, is again one: below `2^-102` every such multiple is representable, so
//! rounding leaves it alone, and above, the spacing of `f32` is itself a multiple of `2^-126`.
//! So every product, partial sum and pre-activation is either 0 or at least `2^-126`
//! (`f32::MIN_POSITIVE`): normal, fused or unfused, in any order of summation. The fast tanh
//! evaluates its polynomials at `max(|z|, 2^-13)` (where they are exactly 1 for every smaller
//! `|z|`), so its squares cannot underflow either, and ReLU does no arithmetic.
//!
//! The flushes compare the bits as integers, so they do not themselves read a subnormal as a
//! floating-point operand. The readout's multiply-adds read the flushed states and weights and
//! are covered by the same argument.
//!
//! # What it changes
//!
//! An input or state value below `2^-40` (about `9.1e-13`, or −241 dBFS) moves the
//! pre-activation of unit `j` by less than `2^-40 · |W[j, k]|`; a flushed weight by less than
//! `2^-40 · |z_k|`. [`ErrorBudget`](crate::ErrorBudget) adds the first (the step against the
//! reference on the same cell) and reports the second (the stored model against the weights it
//! was built from). The thresholds are far below what any trained model resolves: the rounding
//! of a single `f32` sum of values near 1 is already `6e-8`. The threshold is absolute, though:
//! inputs in tiny raw units (farads, say) read as zero, so scale them to the range the model was
//! trained on.
//!
//! On a CPU without the slow path for subnormals (AMD's Zen 4, for one) the flush changes no
//! speed: it is insurance for the CPUs that have it. The heads ([`softmax`](crate::softmax),
//! [`sigmoid`](crate::sigmoid)) do none of the step's multiply-adds and may return a
//! probability in the subnormal range.

use nalgebra::{SMatrix, SVector};

/// Inputs and states smaller than this in magnitude become +0 where they enter a step, and
/// every new state value smaller than it after the non-linearity: `2^-40 ≈ 9.09e-13`.
///
/// With [`WEIGHT_FLUSH_BELOW`] it keeps every operand and result of the step's multiply-adds
/// normal or zero (see the [module docs](self)).
///
/// ```
/// use elman::{FLUSH_BELOW, RnnCell};
/// use elman::nalgebra::SVector;
///
/// let cell: RnnCell<1, 1> = RnnCell::from_row_major([[1.0]], [[1.0]], [0.0]);
/// let tiny = SVector::from([FLUSH_BELOW / 2.0]);
/// // The tiny input and state are +0 to the step: tanh(0) = 0.
/// assert_eq!(cell.step(&tiny, &tiny)[0].to_bits(), 0);
/// ```
pub const FLUSH_BELOW: f32 = 1.0 / 1_099_511_627_776.0;

/// Weights and biases smaller than this in magnitude are stored as +0 when a cell or readout is
/// built or loaded: `2^-40 ≈ 9.09e-13`.
///
/// ```
/// use elman::{RnnCell, WEIGHT_FLUSH_BELOW};
///
/// static CELL: RnnCell<1, 1> = RnnCell::from_row_major([[1e-30]], [[0.5]], [1e-40]);
/// assert_eq!(CELL.w_xh()[(0, 0)].to_bits(), 0);
/// assert_eq!(CELL.bias()[0].to_bits(), 0);
/// assert_eq!(CELL.w_hh()[(0, 0)], 0.5);
/// # assert!(1e-30 < WEIGHT_FLUSH_BELOW);
/// ```
pub const WEIGHT_FLUSH_BELOW: f32 = 1.0 / 1_099_511_627_776.0;

/// The bits of [`FLUSH_BELOW`]: a magnitude's bits compare as integers as the magnitudes do.
const FLUSH_BITS: u32 = FLUSH_BELOW.to_bits();

/// [`FLUSH_BITS`] as the kernels' signed 32-bit lanes compare it with a magnitude's bits (both
/// below 2^31, so the signed comparison is the unsigned one).
#[expect(
    clippy::cast_possible_wrap,
    reason = "the bits of a positive f32 are below 2^31"
)]
pub(crate) const FLUSH_LANE_BITS: i32 = FLUSH_BITS as i32;

/// The bits of [`WEIGHT_FLUSH_BELOW`].
const WEIGHT_FLUSH_BITS: u32 = WEIGHT_FLUSH_BELOW.to_bits();

/// All bits but the sign.
const MAGNITUDE: u32 = 0x7FFF_FFFF;

/// `v`, or +0 if its magnitude's bits are below `threshold` (an integer comparison: no
/// floating-point operation reads `v`, so a subnormal `v` costs nothing here).
#[inline(always)]
const fn zero_below(v: f32, threshold: u32) -> f32 {
    let bits = v.to_bits();
    f32::from_bits(if bits & MAGNITUDE < threshold {
        0
    } else {
        bits
    })
}

/// `v`, or +0 if `|v| < FLUSH_BELOW` (−0 and subnormals included; NaN and infinities kept).
#[inline(always)]
#[must_use]
pub(crate) const fn flush(v: f32) -> f32 {
    zero_below(v, FLUSH_BITS)
}

/// `v`, or +0 if `|v| < WEIGHT_FLUSH_BELOW`.
#[inline(always)]
#[must_use]
pub(crate) const fn flush_weight(v: f32) -> f32 {
    zero_below(v, WEIGHT_FLUSH_BITS)
}

/// Every value of `v` through [`flush`]: an input or state as a step reads it.
#[inline(always)]
#[must_use]
pub(crate) fn flushed<const N: usize>(v: &[f32; N]) -> [f32; N] {
    v.map(flush)
}

/// Whether [`flush`] would change a value of `v`: one is nonzero and below `FLUSH_BELOW` in
/// magnitude (−0 needs no flush: it reads as fast as +0 and sums to the same bits). Integer
/// comparisons, or-ed without short-circuit so that the compiler can vectorise them.
#[inline(always)]
#[must_use]
pub(crate) fn needs_flush(v: &[f32]) -> bool {
    v.iter().fold(false, |any, x| {
        any | ((x.to_bits() & MAGNITUDE).wrapping_sub(1) < FLUSH_BITS - 1)
    })
}

/// Every value of `v` through [`flush`], in `const` context: a state a network is given.
#[must_use]
pub(crate) const fn flush_state<const N: usize>(mut v: SVector<f32, N>) -> SVector<f32, N> {
    let [values] = &mut v.data.0;
    let mut k = 0;
    while k < N {
        values[k] = flush(values[k]);
        k += 1;
    }
    v
}

/// Every weight of `m` through [`flush_weight`], in `const` context.
#[must_use]
pub(crate) const fn flush_weights<const R: usize, const C: usize>(
    mut m: SMatrix<f32, R, C>,
) -> SMatrix<f32, R, C> {
    let columns = &mut m.data.0;
    let mut c = 0;
    while c < C {
        let mut r = 0;
        while r < R {
            columns[c][r] = flush_weight(columns[c][r]);
            r += 1;
        }
        c += 1;
    }
    m
}

/// Every weight of `m` through [`flush_weight`], in place (a large matrix is not copied).
pub(crate) fn flush_weights_in_place<const R: usize, const C: usize>(m: &mut SMatrix<f32, R, C>) {
    for w in m.data.0.as_flattened_mut() {
        *w = flush_weight(*w);
    }
}
