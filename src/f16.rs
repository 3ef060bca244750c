//! Half-precision (IEEE 754 binary16) weights: stored in 16 bits, widened to f32 exactly when
//! the kernel loads them, so that every multiply-add is the f32 one.
//!
//! ```text
//! f16: 1 sign bit, 5 exponent bits, 10 fraction bits;  largest finite 65504,
//!      smallest normal 2^-14, smallest subnormal 2^-24;  unit roundoff u = 2^-11
//! ```
//!
//! Rounding a weight `w` to the nearest f16 (ties to even) changes it by at most
//! `2^-11·|w|` in the normal range and by at most `2^-25` below it: see
//! [`HalfCell`] for what that does to a step.

use core::marker::PhantomData;

use nalgebra::{ArrayStorage, SMatrix, SVector};

use crate::activation::{Activation, Tanh};
use crate::cell::RnnCell;
use crate::in_place::{InPlace, impl_zeroable};
use crate::kernel::Backend;
use crate::stack::LayerCount;

/// An IEEE 754 half-precision value, as its 16 bits. Conversions are exact from f16 to f32,
/// and round to nearest, ties to even, from f32 to f16 (as the F16C instructions and PyTorch's
/// `.half()` do).
///
/// ```
/// use elman::F16;
///
/// assert_eq!(F16::from_f32(0.1).to_f32(), 0.099_975_586);
/// assert_eq!(F16::from_f32(65504.0).to_f32(), 65504.0);
/// assert!(F16::from_f32(1e6).to_f32().is_infinite());
/// assert_eq!(F16::from_bits(0x3C00).to_f32(), 1.0);
/// ```
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct F16(u16);

impl F16 {
    /// The largest finite value, 65504.
    pub const MAX: f32 = 65504.0;

    /// The value with these bits.
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u16) -> Self {
        Self(bits)
    }

    /// The bits of this value.
    #[inline]
    #[must_use]
    pub const fn to_bits(self) -> u16 {
        self.0
    }

    /// `v` rounded to the nearest f16, ties to even: ±∞ beyond the largest finite value
    /// (from `65520` on, as IEEE 754 rounds), ±0 below half the smallest subnormal, NaN for NaN.
    #[must_use]
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss,
        reason = "bit fields of known widths"
    )]
    pub const fn from_f32(v: f32) -> Self {
        let x = v.to_bits();
        let sign = (x >> 16) & 0x8000;
        let exp = ((x >> 23) & 0xFF) as i32;
        let fraction = x & 0x7F_FFFF;
        if exp == 0xFF {
            // Infinity, or NaN kept quiet.
            let nan = if fraction == 0 { 0 } else { 0x200 };
            return Self((sign | 0x7C00 | nan | (fraction >> 13)) as u16);
        }
        // The exponent rebiased from 127 to 15.
        let e = exp - 112;
        if e >= 0x1F {
            return Self((sign | 0x7C00) as u16);
        }
        let (kept, shift) = if e <= 0 {
            // A subnormal f16 (or 0): the significand with its leading 1, shifted so that
            // its units are 2^-24.
            if e < -10 {
                return Self(sign as u16);
            }
            (fraction | 0x80_0000, (14 - e) as u32)
        } else {
            (((e as u32) << 23) | fraction, 13)
        };
        let truncated = kept >> shift;
        let rest = kept & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        // A carry out of the fraction moves into the exponent, to infinity at the top.
        let rounded = if rest > half || (rest == half && truncated & 1 == 1) {
            truncated + 1
        } else {
            truncated
        };
        Self((sign | rounded) as u16)
    }

    /// The value as f32: exact (NaN kept quiet).
    #[must_use]
    pub const fn to_f32(self) -> f32 {
        let h = self.0 as u32;
        let sign = (h & 0x8000) << 16;
        let exp = (h >> 10) & 0x1F;
        let fraction = h & 0x3FF;
        let bits = if exp == 0x1F {
            let quiet = if fraction == 0 { 0 } else { 0x40_0000 };
            sign | 0x7F80_0000 | quiet | (fraction << 13)
        } else if exp == 0 {
            if fraction == 0 {
                sign
            } else {
                // fraction·2^-24, normalised: its leading 1 moved to bit 10.
                let shift = fraction.leading_zeros() - 21;
                sign | ((113 - shift) << 23) | (((fraction << shift) & 0x3FF) << 13)
            }
        } else {
            sign | ((exp + 112) << 23) | (fraction << 13)
        };
        f32::from_bits(bits)
    }
}

/// A vanilla RNN cell whose weights `W_xh` and `W_hh` are stored in half precision ([`F16`])
/// and its bias in f32: half the bytes of an [`RnnCell`] for the same model, read by the same
/// kernel, which widens each weight to f32 (exactly) as it loads it and computes in f32.
///
/// Half the bytes make a model fit a cache level the f32 one does not (a (128, 256) cell is
/// 192 KiB instead of 384 KiB), and a step that reads its weights from L2 faster; but each
/// weight is widened beside its multiply-add, by a conversion that competes with the
/// multiply-adds for the same execution units, so a step whose weights fit L1 is no faster;
/// on the 16-register `avx2+fma` backend it is slower, the widening's temporaries pushing
/// accumulators out of registers (`docs/benchmarks-zen3.md`).
/// On a CPU that splits 512-bit operations in two (AMD's Zen 4), the 512-bit backend
/// ([`Backend::avx512`]) runs these cells' steps, sequences and projections on its 8-lane
/// kernel at every size, whose conversions widen more weights per cycle there; on one that
/// runs them whole (Intel's, AMD's Zen 5), by the rule of f32 weights (a bank of them follows
/// the banks' rule, as any other cell's). On Intel's CPUs the conversion competes with the
/// multiply-adds for the same two 512-bit execution ports, and a step of these weights was no
/// faster than the f32 one at any size (the figures: `docs/benchmarks-xeon.md`): there
/// [`Bf16Cell`](crate::Bf16Cell) is the half-size format that pays. So on AMD's Zen 2, where the conversion, not the bytes, bounds the step: the
/// widening alone took longer than the f32 step from (64, 128) on (`docs/benchmarks-zen2.md`).
/// On a Zen 5 EPYC, whose 512-bit conversions keep pace, these cells' steps were faster than
/// the f32 ones from (64, 128) on, though slower than `Bf16Cell`'s
/// (`docs/benchmarks-zen5.md`).
///
/// Its result is, to the bit, the step of the f32 cell with the same (rounded) weights,
/// [`widened`](Self::widened), on the same kernel: on the same backend, or for the 512-bit one
/// on a CPU that splits its operations, on [`Backend::avx512vl`] (the same kernel as the
/// 512-bit backend's below 128 units there).
///
/// **What the rounding changes.** Rounding `W` to `W'` moves unit `j`'s pre-activation by at
/// most `Σ_k |W[j,k] − W'[j,k]|·|z_k|` over `z = [x; h]`, and the non-linearities are
/// 1-Lipschitz, so one step of the two models from the same `x` and `h` differs by at most
///
/// ```text
/// δ_half = max_j ( Σ_k |ΔW_xh[j,k]|·x_max + Σ_k |ΔW_hh[j,k]|·h_max )
///        ≤ 2^-11·max_j ( Σ_k |W_xh[j,k]|·x_max + Σ_k |W_hh[j,k]|·h_max ) + 2^-25·(I·x_max + H·h_max)
/// ```
///
/// (f16 rounds to nearest with unit roundoff `2^-11`, and by at most `2^-25` below its
/// smallest normal `2^-14`). Over a sequence the states of the two models stay within
/// `δ_half / (1 − L')` of each other if `L' = ‖W'_hh‖_∞ < 1`, as the error budget's geometric
/// series gives. [`rounding`](Self::rounding) computes both from the actual weights.
///
/// ```
/// use elman::{HalfCell, RnnCell};
/// use elman::nalgebra::SVector;
///
/// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[0.3], [-0.7]], [[0.5, 0.1], [0.2, 0.4]], [0.1, 0.0]);
/// let half = HalfCell::from_cell(&cell)?;
/// let (x, h) = (SVector::from([1.0]), SVector::zeros());
/// // The same bits as the f32 step of the rounded weights,
/// assert_eq!(half.step(&x, &h), half.widened().step(&x, &h));
/// // and within the rounding's bound of the f32 model.
/// let bound = half.rounding(&cell, 1.0, 1.0);
/// let gap = (half.step(&x, &h) - cell.step(&x, &h)).amax();
/// assert!(gap <= bound.per_step + 2.0 * cell.error_budget(1.0, 1.0).per_step);
/// # Ok::<(), elman::f16::OutOfRange>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct HalfCell<const I: usize, const H: usize, A = Tanh> {
    /// The columns of `W_xh`.
    w_xh: [[F16; H]; I],
    /// The columns of `W_hh`.
    w_hh: [[F16; H]; H],
    b: [f32; H],
    activation: PhantomData<A>,
}

/// A weight beyond half precision's range (`|w| ≥ 65520` rounds to infinity), which
/// [`HalfCell::from_cell`] cannot store.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutOfRange {
    /// `"w_xh"` or `"w_hh"`.
    pub matrix: &'static str,
    /// The weight's row (hidden unit).
    pub row: usize,
    /// The weight's column.
    pub column: usize,
    /// The weight.
    pub value: f32,
}

impl core::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}[{}, {}] = {} is beyond half precision's range (largest finite 65504)",
            self.matrix, self.row, self.column, self.value
        )
    }
}

impl core::error::Error for OutOfRange {}

/// How far a [`HalfCell`] may be from the f32 cell it was rounded from; see [`HalfCell`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rounding {
    /// `δ_half`: the most one step of the two models, from the same `x` and `h`, may differ by
    /// in any component (exact arithmetic; each model's own rounding is its
    /// [`ErrorBudget`](crate::ErrorBudget)).
    pub per_step: f32,
    /// `δ_half / (1 − L')`: the most the states of the two models, run on the same inputs from
    /// the same state, may drift apart, if `L' = ‖W'_hh‖_∞ < 1`; `None` otherwise.
    pub sequence: Option<f32>,
}

/// `m`'s columns rounded to half precision, or the first weight beyond its range.
const fn round_columns<const R: usize, const C: usize>(
    m: &SMatrix<f32, R, C>,
    matrix: &'static str,
) -> Result<[[F16; R]; C], OutOfRange> {
    let columns = &m.data.0;
    let mut out = [[F16(0); R]; C];
    let mut c = 0;
    while c < C {
        let mut r = 0;
        while r < R {
            let value = columns[c][r];
            let half = F16::from_f32(value);
            // Infinity from a finite weight: beyond the range (an infinite or NaN weight is
            // kept as it is).
            if half.0 & 0x7FFF == 0x7C00 && value.is_finite() {
                return Err(OutOfRange {
                    matrix,
                    row: r,
                    column: c,
                    value,
                });
            }
            out[c][r] = half;
            r += 1;
        }
        c += 1;
    }
    Ok(out)
}

/// The first weight of `m` (column by column) beyond half precision's range.
fn check_range<const R: usize, const C: usize>(
    m: &SMatrix<f32, R, C>,
    matrix: &'static str,
) -> Result<(), OutOfRange> {
    for (c, column) in m.data.0.iter().enumerate() {
        for (r, &value) in column.iter().enumerate() {
            if value.is_finite() && F16::from_f32(value).0 & 0x7FFF == 0x7C00 {
                return Err(OutOfRange {
                    matrix,
                    row: r,
                    column: c,
                    value,
                });
            }
        }
    }
    Ok(())
}

/// The f32 matrix of half-precision columns (exact).
const fn widen<const R: usize, const C: usize>(columns: &[[F16; R]; C]) -> SMatrix<f32, R, C> {
    let mut out = [[0.0_f32; R]; C];
    let mut c = 0;
    while c < C {
        let mut r = 0;
        while r < R {
            out[c][r] = columns[c][r].to_f32();
            r += 1;
        }
        c += 1;
    }
    SMatrix::from_array_storage(ArrayStorage(out))
}

/// The [`Rounding`] between `original` and the model whose weights are `w_xh(j, k)` and
/// `w_hh(j, k)` (unit `j`, column `k`): `δ` from the actual differences of the weights, and
/// its geometric series over a sequence if the rounded `‖W'_hh‖_∞ < 1`.
pub(crate) fn rounding_of<const I: usize, const H: usize, A: Activation>(
    original: &RnnCell<I, H, A>,
    (w_xh, w_hh): (impl Fn(usize, usize) -> f32, impl Fn(usize, usize) -> f32),
    x_max: f32,
    h_max: f32,
) -> Rounding {
    let (x_max, h_max) = (f64::from(x_max.abs()), f64::from(h_max.abs()));
    let delta = |w: f32, rounded: f32| f64::from((w - rounded).abs());
    let (mut per_step, mut contraction) = (0.0_f64, 0.0_f64);
    for j in 0..H {
        let dx: f64 = (0..I)
            .map(|k| delta(original.w_xh()[(j, k)], w_xh(j, k)))
            .sum();
        let dh: f64 = (0..H)
            .map(|k| delta(original.w_hh()[(j, k)], w_hh(j, k)))
            .sum();
        per_step = per_step.max(dx * x_max + dh * h_max);
        let row: f64 = (0..H).map(|k| f64::from(w_hh(j, k).abs())).sum();
        contraction = contraction.max(row);
    }
    // Rounded up past the f64 sums' own rounding.
    let u = f64::from(f32::EPSILON) / 2.0;
    #[expect(clippy::cast_possible_truncation, reason = "a bound, rounded up")]
    let up = |v: f64| (v * (1.0 + 4.0 * u)) as f32;
    Rounding {
        per_step: up(per_step),
        sequence: (contraction < 1.0).then(|| up(per_step / (1.0 - contraction))),
    }
}

impl<const I: usize, const H: usize, A: Activation> HalfCell<I, H, A> {
    /// `cell` with its weights rounded to the nearest half-precision value (ties to even, as
    /// PyTorch's `.half()` rounds) and its bias kept in f32. A weight of magnitude `65520` or
    /// more, which half precision rounds to infinity, is an error that names it.
    ///
    /// # Errors
    ///
    /// [`OutOfRange`] for the first weight (of `W_xh`, then `W_hh`, column by column) beyond
    /// half precision's range.
    pub const fn from_cell(cell: &RnnCell<I, H, A>) -> Result<Self, OutOfRange> {
        let w_xh = match round_columns(cell.w_xh(), "w_xh") {
            Ok(columns) => columns,
            Err(e) => return Err(e),
        };
        let w_hh = match round_columns(cell.w_hh(), "w_hh") {
            Ok(columns) => columns,
            Err(e) => return Err(e),
        };
        let [b] = cell.bias().data.0;
        Ok(Self {
            w_xh,
            w_hh,
            b,
            activation: PhantomData,
        })
    }

    /// [`from_cell`](Self::from_cell) written over this cell, in place (a large cell is not
    /// copied through the stack). Every weight is checked before any is written: on an error
    /// the cell is as it was.
    ///
    /// # Errors
    ///
    /// As [`from_cell`](Self::from_cell).
    pub fn set_from_cell(&mut self, cell: &RnnCell<I, H, A>) -> Result<(), OutOfRange> {
        check_range(cell.w_xh(), "w_xh")?;
        check_range(cell.w_hh(), "w_hh")?;
        for (half, w) in self
            .w_xh
            .as_flattened_mut()
            .iter_mut()
            .zip(cell.w_xh().iter())
        {
            *half = F16::from_f32(*w);
        }
        for (half, w) in self
            .w_hh
            .as_flattened_mut()
            .iter_mut()
            .zip(cell.w_hh().iter())
        {
            *half = F16::from_f32(*w);
        }
        self.b = cell.bias().data.0[0];
        Ok(())
    }

    /// The f32 cell with exactly this cell's weights: the same model, at twice the bytes. Its
    /// step on a backend gives the bits of this cell's step on that backend.
    #[must_use]
    pub const fn widened(&self) -> RnnCell<I, H, A> {
        RnnCell::new(
            widen(&self.w_xh),
            widen(&self.w_hh),
            SVector::from_array_storage(ArrayStorage([self.b])),
        )
    }

    /// The columns of `W_xh`, in half precision.
    #[must_use]
    pub const fn w_xh_columns(&self) -> &[[F16; H]; I] {
        &self.w_xh
    }

    /// The columns of `W_hh`, in half precision.
    #[must_use]
    pub const fn w_hh_columns(&self) -> &[[F16; H]; H] {
        &self.w_hh
    }

    /// The bias, in f32.
    #[must_use]
    pub const fn bias(&self) -> &[f32; H] {
        &self.b
    }

    /// The columns of `W_xh` and `W_hh` and the bias, as the kernel reads them.
    #[inline(always)]
    pub(crate) const fn weights(&self) -> crate::kernel::Weights<'_, I, H, F16> {
        (&self.w_xh, &self.w_hh, &self.b)
    }

    /// How far this cell's model is from `original`'s (the f32 cell it was rounded from) for
    /// inputs with `|x_k| ≤ x_max` and states with `|h_k| ≤ h_max`: `δ_half` from the actual
    /// differences of the weights, and its geometric series over a sequence (see
    /// [`HalfCell`]).
    #[must_use]
    pub fn rounding(&self, original: &RnnCell<I, H, A>, x_max: f32, h_max: f32) -> Rounding {
        rounding_of(
            original,
            (
                |j, k| self.w_xh[k][j].to_f32(),
                |j, k| self.w_hh[k][j].to_f32(),
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
        let w = self.weights();
        let out = backend.step_weights::<I, H, A, F16>(w, &x.data.0[0], &h.data.0[0]);
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
        backend.step_weights_in_place::<I, H, A, F16>(w, &x.data.0[0], &mut h.data.0[0]);
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
        let w = self.weights();
        backend.run_of::<I, H, A, (), _, F16>(w, xs, h, core::iter::repeat(()), |_, ()| {});
        state
    }
}

impl_zeroable!(impl[] for F16 { F16(bits) => bits });

impl<const I: usize, const H: usize, A> LayerCount for HalfCell<I, H, A> {
    const COUNT: usize = 1;
}

impl<const I: usize, const H: usize, A> InPlace for HalfCell<I, H, A> {
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

impl_zeroable!(impl[const I: usize, const H: usize, A] for HalfCell<I, H, A> {
    HalfCell { w_xh, w_hh, b, activation } => w_xh, w_hh, b, activation
});
