//! A fast `tanh` for `f32` with a proven error bound:
//!
//! ```text
//! tanh(x) ≈ sign(x) · min(1, R(min(|x|, 10))),     R(a) = a · (P(a²) / Q(a²))
//! P(t) = 1 + p1·t + p2·t² + p3·t³ + p4·t⁴,   Q(t) = 1 + q1·t + q2·t² + q3·t³ + q4·t⁴
//! ```
//!
//! `R` is the [9/8] odd/even rational that minimises `max |R − tanh|` on `[0, 9]` (Remez
//! exchange in 50-digit arithmetic, `scripts/tanh_minimax.py`): its error is 2.03e-8 with exact
//! coefficients and 2.94e-8 with the coefficients rounded to `f32`. The rest of the budget is
//! the `f32` evaluation itself, measured for every one of the 2^32 inputs (below).
//!
//! Each range, and where its threshold comes from:
//! - `|x| < 2^-12` ([`FAST_TANH_TINY`]): `p1·t` and `q1·t` are below half an ulp of 1, so `P` and
//!   `Q` round to exactly 1 and the result is `x` itself, bit for bit (subnormals and `±0`
//!   included). No test is needed for it, and `x` is `tanh(x)` correctly rounded there. The
//!   polynomials are evaluated at `max(|x|, 2^-13)`, which changes none of these results and
//!   keeps `t = x²` out of the subnormal range.
//! - `2^-12 ≤ |x| < 9`: the rational, fitted on `[0, 9]`.
//! - `9 ≤ |x| < 10`: `1 − tanh(x) < 3.05e-8`; `R` passes 1 near 9.04 and is capped at 1.
//! - `|x| ≥ 10` ([`FAST_TANH_CLAMP`]) and `±inf`: `|x|` is capped at 10, where `R` is `1 + 1.8e-6`,
//!   so every rounding of it is capped to exactly 1. The cap on the input also keeps `t` finite.
//! - NaN: every comparison is false and every operation passes it on: NaN out.
//!
//! The polynomials are evaluated by Estrin's scheme, `(1 + p1·t) + t²·((p4·t + p3)·t + p2)`,
//! which has a shorter dependency chain than Horner's rule and, measured over all inputs, a
//! smaller worst error, and the quotient is formed as `a · (P / Q)`: on the fused path 2.80e-7,
//! against 3.25e-7 for Horner with `(a · P) / Q`; on the unfused path 3.27e-7, against 3.48e-7
//! for Estrin with `(a · P) / Q`.
//!
//! # The two arithmetic paths
//!
//! Each multiply-add is either a multiply and an add, each rounded (the *unfused* path:
//! [`fast_tanh`], [`fast_tanh_x4`], [`fast_tanh_x8`] and the portable kernel, on every machine),
//! or a fused multiply-add, rounded once (the *fused* path: [`fast_tanh_fused`] and the AVX2+FMA
//! kernel). Each path gives the same bits in its scalar and vector forms; the two paths differ
//! from each other in the last bits.
//!
//! # The contract, verified over all 2^32 inputs against `f64::tanh`
//!
//! | | fused path | unfused path |
//! | --- | --- | --- |
//! | max absolute error | 2.80e-7 (at x = 3.983) | 3.27e-7 (at x = 6.734) |
//! | max error in ulps, against `tanh` rounded to `f32` | 5 | 5 |
//! | largest backward step between neighbouring inputs (monotonicity) | 6 ulp (near x = 2.61) | 7 ulp (near x = 2.98) |
//!
//! [`FAST_TANH_MAX_ABS_ERROR`] (3.3e-7) and [`FAST_TANH_MAX_ULP_ERROR`] (5) hold for both. On every
//! path: `t(−x) == −t(x)` bit for bit; `|t(x)| ≤ 1`; `t(x) == x` bit for bit for
//! `|x| < 2^-12`; exactly `±1` for `|x| ≥ 10` and `±inf`; NaN gives NaN. The function is not
//! monotone at ulp resolution: rounding can step back by the amounts in the table, each far
//! inside the error bound.
//!
//! `cargo test --release --test tanh_exhaustive -- --ignored --nocapture` re-checks every row of
//! the table (about 20 s per path on two cores) and prints the figures.

use wide::{f32x4, f32x8};

/// The largest absolute error of [`fast_tanh`] and every other path of the fast tanh (the
/// vector forms and the kernels' tanh), over all `f32` inputs, against `f64::tanh`.
///
/// ```
/// use elman::{FAST_TANH_MAX_ABS_ERROR, fast_tanh};
/// let x = 0.5_f32;
/// assert!((f64::from(fast_tanh(x)) - f64::from(x).tanh()).abs() <= f64::from(FAST_TANH_MAX_ABS_ERROR));
/// ```
pub const FAST_TANH_MAX_ABS_ERROR: f32 = 3.3e-7;

/// The largest error of the fast tanh in units in the last place, on every path: the distance,
/// counted in representable `f32` values, from `tanh(x)` correctly rounded to `f32`.
pub const FAST_TANH_MAX_ULP_ERROR: u32 = 5;

/// From `|x| ≥ FAST_TANH_CLAMP` on, the fast tanh returns exactly `±1`.
///
/// The rational is fitted on `[0, 9]`; past 9, `1 − tanh(x) < 3.05e-8`, about half an ulp below
/// 1, and `R` itself passes 1 near 9.04. The result is capped at 1, and `|x|` at 10, where `R`
/// is `1 + 1.8e-6`, far enough above 1 that every rounding of it is capped: from 10 on (and for
/// `±inf`) the result is exactly `±1`.
pub const FAST_TANH_CLAMP: f32 = 10.0;

/// Below `|x| < FAST_TANH_TINY` (2^-12), the fast tanh returns `x` itself, bit for bit.
///
/// There `tanh(x) = x − x³/3 + …` and `x³/3 < 2^-25·|x|`, under half an ulp of `x`: `x` is
/// `tanh(x)` correctly rounded. It needs no branch: `p1·t` and `q1·t` are then below half an ulp
/// of 1, so `P` and `Q` round to 1 and `R(a) = a`. The exhaustive test checks every such input.
pub const FAST_TANH_TINY: f32 = 1.0 / 4096.0;

// The coefficients of P and Q (P0 = Q0 = 1), from scripts/tanh_minimax.py; exact f32 values.
pub(crate) const P1: f32 = f32::from_bits(0x3E09_03B1); // 0x1.120762p-3
pub(crate) const P2: f32 = f32::from_bits(0x3B65_0842); // 0x1.ca1084p-9
pub(crate) const P3: f32 = f32::from_bits(0x37AC_C5A0); // 0x1.598b40p-16
pub(crate) const P4: f32 = f32::from_bits(0x3265_2502); // 0x1.ca4a04p-27
pub(crate) const Q1: f32 = f32::from_bits(0x3EEF_2C7E); // 0x1.de58fcp-2
pub(crate) const Q2: f32 = f32::from_bits(0x3CD3_F53F); // 0x1.a7ea7ep-6
pub(crate) const Q3: f32 = f32::from_bits(0x39AC_311D); // 0x1.58623ap-12
pub(crate) const Q4: f32 = f32::from_bits(0x3550_8F12); // 0x1.a11e24p-21

/// The floor of the polynomials' argument, `2^-13`: `P` and `Q` are evaluated at
/// `max(|x|, POLY_FLOOR)`. Below [`FAST_TANH_TINY`] both round to exactly 1 (see there), so the
/// floor changes no result; it keeps `t = a²` and `t²` from underflowing into the subnormal
/// numbers for tiny `|x|`, which many CPUs process slowly (see [`flush`](crate::flush)).
pub(crate) const POLY_FLOOR: f32 = FAST_TANH_TINY / 2.0;

/// The sign bit of an `f32`.
const SIGN: u32 = 0x8000_0000;

/// The fast tanh of one value, on the unfused path (the same bits on every machine).
///
/// The contract (maximum error [`FAST_TANH_MAX_ABS_ERROR`], exact oddness, `|t| ≤ 1`, the tiny and
/// clamped ranges, NaN) is in the [module docs](crate::tanh).
///
/// ```
/// use elman::fast_tanh;
/// assert_eq!(fast_tanh(0.0), 0.0);
/// assert_eq!(fast_tanh(-20.0), -1.0);
/// assert_eq!(fast_tanh(1e-30), 1e-30);
/// assert!(fast_tanh(f32::NAN).is_nan());
/// assert!((fast_tanh(0.75) - 0.75f32.tanh()).abs() < 3e-7);
/// ```
#[inline]
#[must_use]
pub fn fast_tanh(x: f32) -> f32 {
    scalar(x, |a, b, c| a * b + c)
}

/// The fast tanh of one value on the fused path: each multiply-add is one fused multiply-add
/// (`f32::mul_add`), as the AVX2+FMA kernel computes it, and gives the same bits.
///
/// Fast where the build has FMA (`-C target-cpu=native` on a CPU with it); elsewhere
/// `f32::mul_add` is a library call, correct but slow.
#[inline]
#[must_use]
pub fn fast_tanh_fused(x: f32) -> f32 {
    scalar(x, crate::math::fmaf)
}

/// The scalar fast tanh with the given multiply-add `madd(a, b, c) = a·b + c`.
#[inline(always)]
fn scalar(x: f32, madd: impl Fn(f32, f32, f32) -> f32) -> f32 {
    // min(C, |x|), written as x86's minps computes it: NaN passes as it is. Capping the input
    // keeps t finite for huge |x| and inf, where R would be inf/inf.
    let a = x.abs();
    let a = if FAST_TANH_CLAMP < a {
        FAST_TANH_CLAMP
    } else {
        a
    };
    // The polynomials' argument, floored (NaN passes: the comparison is false for it).
    let s = if a < POLY_FLOOR { POLY_FLOOR } else { a };
    let t = s * s;
    let t2 = t * t;
    // Estrin: P = (1 + p1·t) + t²·(p2 + p3·t + p4·t²), likewise Q.
    let p = madd(madd(madd(P4, t, P3), t, P2), t2, madd(P1, t, 1.0));
    let q = madd(madd(madd(Q4, t, Q3), t, Q2), t2, madd(Q1, t, 1.0));
    let r = a * (p / q);
    // min(1, r), NaN passing: R exceeds 1 from a ≈ 9.04 on (it is fitted on [0, 9]), and by
    // a = 10 so far that every rounding of it is ≥ 1, so the result there is exactly 1.
    let r = if 1.0 < r { 1.0 } else { r };
    // sign(x)·r, by copying the sign bit: exactly odd, and −0 stays −0.
    f32::from_bits(r.to_bits() | (x.to_bits() & SIGN))
}

/// Defines the fast tanh on one `wide` vector type: the operations of [`fast_tanh`], lane by
/// lane.
macro_rules! vector_tanh {
    ($(#[$doc:meta])* $name:ident, $ty:ident) => {
        $(#[$doc])*
        #[inline]
        #[must_use]
        pub fn $name(x: $ty) -> $ty {
            let k = $ty::splat;
            let sign = x & k(-0.0);
            // `fast_min` with the constant first passes a NaN second operand on every target
            // (x86's minps returns its second operand when either is NaN; NEON, wasm and the
            // scalar fallback propagate NaN), as the scalar form's comparisons do.
            let a = k(FAST_TANH_CLAMP).fast_min(x.abs());
            // A NaN `a` may take the floor here: it passes through `a · (p / q)` below.
            let s = a.fast_max(k(POLY_FLOOR));
            let t = s * s;
            let t2 = t * t;
            let madd = |a: $ty, b: $ty, c: $ty| a * b + c;
            let p = madd(madd(madd(k(P4), t, k(P3)), t, k(P2)), t2, madd(k(P1), t, k(1.0)));
            let q = madd(madd(madd(k(Q4), t, k(Q3)), t, k(Q2)), t2, madd(k(Q1), t, k(1.0)));
            let r = k(1.0).fast_min(a * (p / q));
            r | sign
        }
    };
}

vector_tanh!(
    /// The fast tanh of eight values, lane by lane: the same bits as [`fast_tanh`] on each lane.
    ///
    /// ```
    /// use elman::{fast_tanh, fast_tanh_x8};
    /// use wide::f32x8;
    ///
    /// let x = [-10.0, -1.0, -0.1, 0.0, 1e-5, 0.3, 2.0, f32::INFINITY];
    /// let t = fast_tanh_x8(f32x8::new(x)).to_array();
    /// for (ti, xi) in t.iter().zip(x) {
    ///     assert_eq!(ti.to_bits(), fast_tanh(xi).to_bits());
    /// }
    /// ```
    fast_tanh_x8,
    f32x8
);

vector_tanh!(
    /// The fast tanh of four values, lane by lane: the same bits as [`fast_tanh`] on each lane.
    fast_tanh_x4,
    f32x4
);
