//! bf16 column pairs: two weight columns in one 32-bit word per hidden unit, half the bytes
//! of f32, widened by the kernel at the cost of one shift for both.
//!
//! ```text
//! columns k (even) and k + 1 of W, unit j:   word = hi << 16 | lo          (16 + 16 bits)
//!     W'[j, k]     = f32::from_bits(lo << 16)            the bf16 of W[j, k]: one shift
//!     W'[j, k + 1] = f32::from_bits(hi << 16 | lo)       the word itself: no instruction
//! ```
//!
//! `lo` is `W[j, k]` rounded to bf16 (8 significant bits), and `hi` is chosen so that the word,
//! read as an f32, is the f32 nearest to `W[j, k + 1]` among those whose low 16 bits are `lo`:
//! as finely spaced as bf16 (2^16 f32 ulps apart), so both columns keep 8 significant bits. The
//! kernel loads a chunk of words once and has both columns' weights from it, one of them after
//! a shift: a multiply-add per weight and half a load, where half precision ([`F16`](crate::F16))
//! needs a conversion per weight beside its multiply-add. A matrix with an odd number of
//! columns stores its last column alone, as bf16.
//!
//! The model a [`Bf16Cell`] steps is the f32 cell of these effective weights `W'`
//! ([`Bf16Cell::widened`]), to the bit; see [`Bf16Cell`] for how far it is from the f32 model
//! it was rounded from.

use core::marker::PhantomData;

use nalgebra::{ArrayStorage, SMatrix, SVector};

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::f16::Rounding;
use crate::flush::flush_weight;
use crate::in_place::{InPlace, impl_zeroable};
use crate::kernel::Backend;
use crate::stack::LayerCount;

/// The largest finite bf16's magnitude bits (`0x7F7F`, about 3.39·10^38).
const MAX_HIGH: u32 = 0x7F7F;

/// The high 16 bits of [`WEIGHT_FLUSH_BELOW`](crate::WEIGHT_FLUSH_BELOW), `2^-40`, whose low
/// 16 bits are zero: the smallest nonzero magnitude a weight may have (see [`crate::flush`]).
const MIN_HIGH: u32 = crate::WEIGHT_FLUSH_BELOW.to_bits() >> 16;

const _: () = assert!(crate::WEIGHT_FLUSH_BELOW.to_bits().trailing_zeros() >= 16);

/// A 16-bit word of a matrix stored as bf16 column pairs (see the [module docs](self)): the
/// columns `2m` and `2m + 1` together hold, for each unit `j`, the words `2j` (`lo`) and
/// `2j + 1` (`hi`) of their `2H` words, which a little-endian 32-bit load reads as
/// `hi << 16 | lo`; a lone last column holds one bf16 per unit.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub(crate) struct PairWord(pub(crate) u16);

impl_zeroable!(impl[] for PairWord { PairWord(bits) => bits });

/// Two weights in one 32-bit word: the even column's as bf16 in the low 16 bits, the odd
/// column's as the whole word read as an f32 (see the [module docs](self)).
///
/// ```
/// use elman::bf16::Bf16Pair;
///
/// let pair = Bf16Pair::new(0.1, -0.7).expect("finite");
/// assert_eq!(pair.even(), 0.100_097_656); // 0.1 to bf16
/// assert_eq!(pair.odd().to_bits() & 0xFFFF, pair.even().to_bits() >> 16);
/// assert!((pair.odd() + 0.7).abs() <= 0.7 / 256.0);
/// assert_eq!(Bf16Pair::new(f32::NAN, 1.0), None);
/// ```
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Bf16Pair(u32);

impl Bf16Pair {
    /// The pair nearest to `(even, odd)`, or `None` if either is not finite.
    ///
    /// Both weights are first flushed as every cell's are (magnitudes below
    /// [`WEIGHT_FLUSH_BELOW`](crate::WEIGHT_FLUSH_BELOW) become +0). The even one is rounded to
    /// the nearest finite bf16, ties to even (the largest finite bf16, about 3.39·10^38, for what
    /// rounds beyond it). The odd one is the nearest f32 whose low 16 bits are the even one's
    /// bf16 and whose magnitude is 0 or at least `WEIGHT_FLUSH_BELOW`, ties to the even high
    /// half (to the sign of `odd` between two values of opposite signs): so both weights keep
    /// the crate's invariant that no multiply-add reads a subnormal number.
    #[must_use]
    pub const fn new(even: f32, odd: f32) -> Option<Self> {
        if !even.is_finite() || !odd.is_finite() {
            return None;
        }
        let lo = to_bf16(flush_weight(even));
        let hi = nearest_high(flush_weight(odd), lo);
        Some(Self(((hi as u32) << 16) | lo as u32))
    }

    /// The pair with these bits: the odd weight's, `hi << 16 | lo`.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The bits of this pair: the odd weight's, `hi << 16 | lo`.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u32 {
        self.0
    }

    /// The even column's weight: the low 16 bits shifted up, a bf16 widened to f32.
    #[inline]
    #[must_use]
    pub const fn even(self) -> f32 {
        f32::from_bits(self.0 << 16)
    }

    /// The odd column's weight: the word read as an f32.
    #[inline]
    #[must_use]
    pub const fn odd(self) -> f32 {
        f32::from_bits(self.0)
    }
}

/// The bits of the finite `v` rounded to the nearest finite bf16, ties to even.
#[expect(clippy::cast_possible_truncation, reason = "16-bit fields")]
const fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = bits >> 16 & 0x8000;
    let magnitude = bits & 0x7FFF_FFFF;
    // Round half to even on the low 16 bits; a finite magnitude is at most 0x7F7F_FFFF, so the
    // sum does not overflow. A carry into 0x7F80 (infinity) takes the largest finite instead.
    let rounded = (magnitude + 0x7FFF + (magnitude >> 16 & 1)) >> 16;
    let rounded = if rounded > MAX_HIGH {
        MAX_HIGH
    } else {
        rounded
    };
    (sign | rounded) as u16
}

/// The high half `hi` (sign included) of the f32 nearest to the finite, flushed `v` among
/// those with low half `lo`, magnitude bits `hi & 0x7FFF` at most [`MAX_HIGH`] (finite) and
/// either at least [`MIN_HIGH`] or, with `lo = 0`, zero; ties to an even `hi`, and to the
/// smaller magnitude between 0 and `MIN_HIGH`. The sign is `v`'s: a value of the opposite sign
/// is never nearer, and ±0 (the only ties across 0) keep theirs.
#[expect(clippy::cast_possible_truncation, reason = "16-bit fields")]
const fn nearest_high(v: f32, lo: u16) -> u16 {
    let bits = v.to_bits();
    let sign = bits >> 16 & 0x8000;
    let magnitude = bits & 0x7FFF_FFFF;
    let lo = lo as u32;
    // The candidates' magnitudes, increasing with their high halves: the two around `v`.
    let top = magnitude >> 16;
    let (below, above) = if magnitude & 0xFFFF >= lo {
        (Some(top), top + 1)
    } else if top == 0 {
        (None, 0)
    } else {
        (Some(top - 1), top)
    };
    // Into the allowed set: below `MIN_HIGH` only 0 (when `lo` is 0), nothing past `MAX_HIGH`.
    let below = match below {
        Some(b) if b >= MIN_HIGH => Some(b),
        Some(_) if lo == 0 => Some(0),
        _ => None,
    };
    let above = if above > MAX_HIGH {
        None
    } else if above < MIN_HIGH {
        if lo == 0 && above == 0 {
            Some(0)
        } else {
            Some(MIN_HIGH)
        }
    } else {
        Some(above)
    };
    let chosen = match (below, above) {
        (Some(b), Some(a)) => {
            let target = f32::from_bits(magnitude) as f64;
            let low = f32::from_bits(b << 16 | lo) as f64;
            let high = f32::from_bits(a << 16 | lo) as f64;
            // Both differences are exact in f64 (values of f32 within a factor 2^32 or so).
            let (d_low, d_high) = (target - low, high - target);
            if d_low < d_high {
                b
            } else if d_high < d_low {
                a
            } else if b & 1 == 0 {
                // A tie: the even high half (the lower one between 0 and `MIN_HIGH`).
                b
            } else {
                a
            }
        }
        (Some(b), None) => b,
        (None, Some(a)) => a,
        // Unreachable: `MIN_HIGH` (or 0) and `MAX_HIGH` are always candidates on some side.
        (None, None) => MIN_HIGH,
    };
    (sign | chosen) as u16
}

/// The bf16 `bits` widened to f32 (exact: a shift).
#[inline(always)]
#[must_use]
pub(crate) const fn widen(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// The two weights of the pair whose words are `lo` and `hi`: even, odd.
#[inline(always)]
#[must_use]
pub(crate) const fn widen_pair(lo: PairWord, hi: PairWord) -> [f32; 2] {
    let word = Bf16Pair((hi.0 as u32) << 16 | lo.0 as u32);
    [word.even(), word.odd()]
}

/// Word `w` of the two columns from column `2m`, of `L` words each: word `w` of their
/// concatenation.
const fn word<const L: usize>(columns: &[[PairWord; L]], m: usize, w: usize) -> PairWord {
    columns[2 * m + w / L][w % L]
}

/// Weight `j` of column `k` of a paired matrix with these columns; zero outside it.
#[inline(always)]
#[must_use]
pub(crate) fn paired_weight<const L: usize>(columns: &[[PairWord; L]], k: usize, j: usize) -> f32 {
    if j >= L || k >= columns.len() {
        return 0.0;
    }
    let m = k / 2;
    if 2 * m + 1 == columns.len() {
        return widen(columns[k][j].0);
    }
    widen_pair(word(columns, m, 2 * j), word(columns, m, 2 * j + 1))[k % 2]
}

/// The first weight of `m` (column by column) that is not finite.
const fn check_finite<const R: usize, const C: usize>(
    m: &SMatrix<f32, R, C>,
    matrix: &'static str,
) -> Result<(), NotFinite> {
    let columns = &m.data.0;
    let mut k = 0;
    while k < C {
        let mut j = 0;
        while j < R {
            let value = columns[k][j];
            if !value.is_finite() {
                return Err(NotFinite {
                    matrix,
                    row: j,
                    column: k,
                    value,
                });
            }
            j += 1;
        }
        k += 1;
    }
    Ok(())
}

/// Writes the finite columns of `m` as bf16 pairs into `out`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the two 16-bit halves of a word"
)]
const fn write_pairs<const R: usize, const C: usize>(
    m: &SMatrix<f32, R, C>,
    out: &mut [[PairWord; R]; C],
) {
    let columns = &m.data.0;
    let mut m = 0;
    while 2 * m + 1 < C {
        let mut j = 0;
        while j < R {
            let pair = match Bf16Pair::new(columns[2 * m][j], columns[2 * m + 1][j]) {
                Some(pair) => pair.0,
                None => 0,
            };
            let (lo, hi) = (2 * j, 2 * j + 1);
            out[2 * m + lo / R][lo % R] = PairWord(pair as u16);
            out[2 * m + hi / R][hi % R] = PairWord((pair >> 16) as u16);
            j += 1;
        }
        m += 1;
    }
    if C % 2 == 1 {
        let mut j = 0;
        while j < R {
            out[C - 1][j] = PairWord(to_bf16(flush_weight(columns[C - 1][j])));
            j += 1;
        }
    }
}

/// The f32 matrix of the effective weights of paired columns (exact).
const fn unpair<const R: usize, const C: usize>(
    columns: &[[PairWord; R]; C],
) -> SMatrix<f32, R, C> {
    let mut out = [[0.0_f32; R]; C];
    let mut m = 0;
    while 2 * m + 1 < C {
        let mut j = 0;
        while j < R {
            let [even, odd] = widen_pair(word(columns, m, 2 * j), word(columns, m, 2 * j + 1));
            out[2 * m][j] = even;
            out[2 * m + 1][j] = odd;
            j += 1;
        }
        m += 1;
    }
    if C % 2 == 1 {
        let mut j = 0;
        while j < R {
            out[C - 1][j] = widen(columns[C - 1][j].0);
            j += 1;
        }
    }
    SMatrix::from_array_storage(ArrayStorage(out))
}

/// A weight that is not finite, which [`Bf16Cell::from_cell`] cannot store (the loaders
/// reject such weights before).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NotFinite {
    /// `"w_xh"` or `"w_hh"`.
    pub matrix: &'static str,
    /// The weight's row (hidden unit).
    pub row: usize,
    /// The weight's column.
    pub column: usize,
    /// The weight.
    pub value: f32,
}

impl core::fmt::Display for NotFinite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}[{}, {}] = {} is not finite, and bf16 pairs store finite weights only",
            self.matrix, self.row, self.column, self.value
        )
    }
}

impl core::error::Error for NotFinite {}

/// A vanilla RNN cell whose weights `W_xh` and `W_hh` are stored as bf16 column pairs
/// ([`Bf16Pair`], see the [module docs](self)) and its bias in f32: half the bytes of an
/// [`RnnCell`] for the same model, read by the same kernel, which takes two columns from each
/// load and widens them with one shift.
///
/// A step reads half the bytes of the f32 cell's and does the same multiply-adds, one per
/// weight, with no conversion beside them: where the f32 step waits on its weights (from L2,
/// in the sizes whose weights outgrow L1), it is faster. Where they fit L1, on the
/// 16-register `avx2+fma` backend, it is slower: a pair's two broadcasts, load and shift push
/// accumulators out of registers (`docs/benchmarks-zen3.md`). Its result is, to the bit, the
/// step of the f32 cell with the same (rounded) weights, [`widened`](Self::widened), on the
/// same backend.
///
/// **What the rounding changes.** Every weight keeps 8 significant bits: the even columns'
/// are rounded to bf16 (unit roundoff `2^-8`), the odd columns' to the nearest of values
/// spaced as bf16's, offset by their partner's bits, which at the top of a binade may be one
/// gap of the binade above away, so that
///
/// ```text
/// |W'[j,k] − W[j,k]| ≤ 2^-8·(1 + 2^-8)·|W[j,k]| + 2^-40·(1 + 2^-7)
/// ```
///
/// (the last term for the odd weights near zero: the smallest nonzero magnitude with the
/// partner's low bits that a weight may have is `2^-40` up to `2^-7` of itself, see
/// [`crate::flush`]). As for [`HalfCell`](crate::HalfCell), one step of the two models from
/// the same `x` and `h` differs by at most `δ = max_j (Σ_k |ΔW_xh[j,k]|·x_max + Σ_k
/// |ΔW_hh[j,k]|·h_max)`, and the states over a sequence by `δ / (1 − L')` if
/// `L' = ‖W'_hh‖_∞ < 1`; [`rounding`](Self::rounding) computes both from the actual weights.
///
/// ```
/// use elman::{Bf16Cell, RnnCell};
/// use elman::nalgebra::SVector;
///
/// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[0.3], [-0.7]], [[0.5, 0.1], [0.2, 0.4]], [0.1, 0.0]);
/// let pairs = Bf16Cell::from_cell(&cell)?;
/// let (x, h) = (SVector::from([1.0]), SVector::zeros());
/// // The same bits as the f32 step of the rounded weights,
/// assert_eq!(pairs.step(&x, &h), pairs.widened().step(&x, &h));
/// // and within the rounding's bound of the f32 model.
/// let bound = pairs.rounding(&cell, 1.0, 1.0);
/// let gap = (pairs.step(&x, &h) - cell.step(&x, &h)).amax();
/// assert!(gap <= bound.per_step + 2.0 * cell.error_budget(1.0, 1.0).per_step);
/// # Ok::<(), elman::bf16::NotFinite>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Bf16Cell<const I: usize, const H: usize, A = Tanh> {
    /// The columns of `W_xh`, paired.
    w_xh: [[PairWord; H]; I],
    /// The columns of `W_hh`, paired.
    w_hh: [[PairWord; H]; H],
    b: [f32; H],
    activation: PhantomData<A>,
}

impl<const I: usize, const H: usize, A: Activation> Bf16Cell<I, H, A> {
    /// `cell` with its weights rounded to bf16 column pairs (see [`Bf16Pair::new`]) and its
    /// bias kept in f32.
    ///
    /// # Errors
    ///
    /// [`NotFinite`] for the first weight (of `W_xh`, then `W_hh`, column by column) that is
    /// infinite or NaN.
    pub const fn from_cell(cell: &RnnCell<I, H, A>) -> Result<Self, NotFinite> {
        if let Err(e) = check_finite(cell.w_xh(), "w_xh") {
            return Err(e);
        }
        if let Err(e) = check_finite(cell.w_hh(), "w_hh") {
            return Err(e);
        }
        let mut pairs = Self {
            w_xh: [[PairWord(0); H]; I],
            w_hh: [[PairWord(0); H]; H],
            b: cell.bias().data.0[0],
            activation: PhantomData,
        };
        write_pairs(cell.w_xh(), &mut pairs.w_xh);
        write_pairs(cell.w_hh(), &mut pairs.w_hh);
        Ok(pairs)
    }

    /// [`from_cell`](Self::from_cell) written over this cell, in place (a large cell is not
    /// copied through the stack). Every weight is checked before any is written: on an error
    /// the cell is as it was.
    ///
    /// # Errors
    ///
    /// As [`from_cell`](Self::from_cell).
    pub fn set_from_cell(&mut self, cell: &RnnCell<I, H, A>) -> Result<(), NotFinite> {
        check_finite(cell.w_xh(), "w_xh")?;
        check_finite(cell.w_hh(), "w_hh")?;
        write_pairs(cell.w_xh(), &mut self.w_xh);
        write_pairs(cell.w_hh(), &mut self.w_hh);
        self.b = cell.bias().data.0[0];
        Ok(())
    }

    /// The f32 cell with exactly this cell's (effective) weights: the same model, at twice the
    /// bytes. Its step on a backend gives the bits of this cell's step on that backend.
    #[must_use]
    pub const fn widened(&self) -> RnnCell<I, H, A> {
        RnnCell::new(
            unpair(&self.w_xh),
            unpair(&self.w_hh),
            SVector::from_array_storage(ArrayStorage([self.b])),
        )
    }

    /// The bias, in f32.
    #[must_use]
    pub const fn bias(&self) -> &[f32; H] {
        &self.b
    }

    /// The columns of `W_xh` and `W_hh` and the bias, as the kernel reads them.
    #[inline(always)]
    pub(crate) const fn weights(&self) -> crate::kernel::Weights<'_, I, H, PairWord> {
        (&self.w_xh, &self.w_hh, &self.b)
    }

    /// How far this cell's model is from `original`'s (the f32 cell it was rounded from) for
    /// inputs with `|x_k| ≤ x_max` and states with `|h_k| ≤ h_max`: `δ` from the actual
    /// differences of the weights, and its geometric series over a sequence (see
    /// [`Bf16Cell`]).
    #[must_use]
    pub fn rounding(&self, original: &RnnCell<I, H, A>, x_max: f32, h_max: f32) -> Rounding {
        crate::f16::rounding_of(
            original,
            (
                |j, k| paired_weight(&self.w_xh, k, j),
                |j, k| paired_weight(&self.w_hh, k, j),
            ),
            x_max,
            h_max,
        )
    }

    /// One step, `A(W_xh·x + W_hh·h + b)`, on [`Backend::best`].
    #[inline]
    #[must_use]
    pub fn step(&self, x: &SVector<f32, I>, h: &SVector<f32, H>) -> SVector<f32, H> {
        self.step_with(Backend::best(), x, h)
    }

    /// [`step`](Self::step) on the given backend.
    #[inline]
    #[must_use]
    pub fn step_with(
        &self,
        backend: Backend,
        x: &SVector<f32, I>,
        h: &SVector<f32, H>,
    ) -> SVector<f32, H> {
        let out =
            backend.step_weights::<I, H, A, PairWord>(self.weights(), &x.data.0[0], &h.data.0[0]);
        SVector::from_array_storage(ArrayStorage([out]))
    }

    /// [`step`](Self::step) with the new state written over `h`, as
    /// [`RnnCell::step_in_place`](crate::RnnCell::step_in_place): the bits of this cell's
    /// `step`, without the copies a state returned by value costs a loop of steps.
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
        let w = self.weights();
        backend.step_weights_in_place::<I, H, A, PairWord>(w, &x.data.0[0], &mut h.data.0[0]);
    }

    /// The state after stepping through `xs` from `h`, inside one call of the kernel: the
    /// bits of [`step`](Self::step) called in a loop.
    #[inline]
    #[must_use]
    pub fn run(&self, xs: &[SVector<f32, I>], h: &SVector<f32, H>) -> SVector<f32, H> {
        self.run_with(Backend::best(), xs, h)
    }

    /// [`run`](Self::run) on the given backend.
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
        backend.run_of::<I, H, A, (), _, PairWord>(
            self.weights(),
            xs,
            h,
            core::iter::repeat(()),
            |_, ()| {},
        );
        state
    }
}

impl<const I: usize, const H: usize, A> LayerCount for Bf16Cell<I, H, A> {
    const COUNT: usize = 1;
}

impl<const I: usize, const H: usize, A> InPlace for Bf16Cell<I, H, A> {
    fn copy_from(&mut self, source: &Self) {
        self.w_xh
            .as_flattened_mut()
            .copy_from_slice(source.w_xh.as_flattened());
        self.w_hh
            .as_flattened_mut()
            .copy_from_slice(source.w_hh.as_flattened());
        self.b = source.b;
    }
}

impl_zeroable!(impl[const I: usize, const H: usize, A] for Bf16Cell<I, H, A> {
    Bf16Cell { w_xh, w_hh, b, activation } => w_xh, w_hh, b, activation
});
