//! The x86-64 backends, written against `core::arch` so that a default build, which targets
//! SSE2, still runs fused multiply-adds on the full width of a CPU that has them:
//!
//! - [`Avx2Fma`]: AVX2 and FMA, 8 lanes (ymm), 16 vector registers: blocks of up to 8 chunks
//!   (of 12 where a step has 12 left, except in most steps that take f32 columns in groups), up
//!   to 12 accumulator chains in the throughput-bound sizes;
//! - [`Avx512Vl`]: the same 8-lane operations compiled with AVX-512F and AVX-512VL enabled,
//!   which gives them 32 vector registers: blocks of up to 8 chunks (of 16 where those are the
//!   whole cell, `Simd::WIDE_BLOCK`), 16 chains. Where the blocking differs (`H ≥ 32`), so does
//!   the order of the additions, and the two agree within the step's error budget rather than
//!   to the bit;
//! - [`Avx512`]: 16 lanes (zmm), 32 registers. Small cells (fewer than 32 units on a CPU that
//!   runs 512-bit operations whole, 128 on one that splits them), on the latter half-precision
//!   weights, small banks and the transposition of a bank's inputs run on its 8-lane sibling
//!   [`Avx512Vl`] (the rule and its reasons are `Backend::avx512`'s).
//!
//! This module is the only place in the crate with `unsafe`, for two things: the intrinsics,
//! which run only through a token (a value that exists only once the CPU was found to have
//! its features; each operation takes it as `self`), with loads and stores through pointers
//! from references to as many `f32`s as they read or write; and the calls into each backend's
//! `#[target_feature]` entry, through the same token.
//!
//! The arithmetic mirrors the portable backend operation for operation, with one difference:
//! `madd` is fused (one rounding). The fast tanh here gives the bits of
//! [`fast_tanh_fused`](crate::fast_tanh_fused).

#![allow(
    unsafe_code,
    reason = "core::arch intrinsics, loads, stores and target-feature calls"
)]

use core::arch::x86_64::{
    __m256, __m256i, __m512, _CMP_LT_OQ, _CMP_NLT_UQ, _mm_loadu_si128, _mm256_add_ps,
    _mm256_and_ps, _mm256_and_si256, _mm256_andnot_ps, _mm256_andnot_si256, _mm256_blendv_ps,
    _mm256_castps_si256, _mm256_castsi256_ps, _mm256_cmp_ps, _mm256_cmpgt_epi32,
    _mm256_cvtepu16_epi32, _mm256_cvtph_ps, _mm256_div_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_loadu_si256, _mm256_maskz_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps,
    _mm256_or_ps, _mm256_permutevar8x32_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_setzero_si256, _mm256_slli_epi32, _mm256_storeu_ps, _mm256_testz_si256, _mm512_abs_ps,
    _mm512_add_ps, _mm512_and_si512, _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cmp_ps_mask,
    _mm512_cmpge_epi32_mask, _mm512_cmplt_epu32_mask, _mm512_cvtepu16_epi32, _mm512_cvtph_ps,
    _mm512_div_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_mask_blend_ps,
    _mm512_mask_mov_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_maskz_mov_epi32,
    _mm512_maskz_mov_ps, _mm512_max_ps, _mm512_min_ps, _mm512_mul_ps, _mm512_or_si512,
    _mm512_permutex2var_ps, _mm512_permutexvar_ps, _mm512_set1_epi32, _mm512_set1_ps,
    _mm512_setzero_ps, _mm512_slli_epi32, _mm512_storeu_ps, _mm512_sub_epi32,
};
use core::sync::atomic::AtomicU8;

use nalgebra::SVector;

use super::simd::{BankTanhPass, Element, Kernel, Shuffle8, Simd, padded, put, window};
use super::step::{Weights, chunk_step, on_entry};
use super::tiling::Deinterleave16;
use crate::F16;
use crate::activation::Activation;
use crate::bf16::PairWord;
use crate::flush::FLUSH_LANE_BITS;
use crate::readout::Readout;
use crate::tanh::{FAST_TANH_CLAMP, P1, P2, P3, P4, POLY_FLOOR, Q1, Q2, Q3, Q4};

/// A token for a backend whose vectors are 8 lanes (ymm) of AVX2 and FMA, with the tiling its
/// register file allows.
pub(super) trait Ymm: Copy {
    /// See [`Simd::CHAINS`].
    const CHAINS: usize;
    /// See [`Simd::SMALL_BLOCK_CHAINS`].
    const SMALL_BLOCK_CHAINS: [usize; 3];
    /// The largest block, in 8-unit chunks.
    const BLOCK: usize;
    /// See [`Simd::WIDE_BLOCK`].
    const WIDE_BLOCK: usize;
    /// Chunks per block of the input projections.
    const PROJECT_BLOCK: usize;
    /// See [`Simd::SWEEP_LOOP_FROM`].
    const SWEEP_LOOP_FROM: usize;
    /// See [`Simd::GROUP_COLUMNS`].
    const GROUP_COLUMNS: usize;
    /// See [`Simd::BANK_FIVES`].
    const BANK_FIVES: bool;
    /// See [`Simd::BANK_TANH_PASS`].
    const BANK_TANH_PASS: BankTanhPass;
}

/// Every operation below runs an intrinsic of AVX, AVX2 or FMA. SAFETY, for each `unsafe`
/// block in this impl: `self` is a token of type `T: Ymm`, which exists only on a CPU with
/// AVX2, FMA and F16C (see the tokens' `detect`); the loads and stores go through pointers from
/// references to at least 8 `f32`s, and have no alignment requirement.
impl<T: Ymm> Simd for T {
    type V = __m256;
    type Lanes = &'static [[i32; 8]; 8];

    const LANES: usize = 8;
    const PERMUTE_STATE: bool = true;
    const CHAINS: usize = T::CHAINS;
    const SMALL_BLOCK_CHAINS: [usize; 3] = T::SMALL_BLOCK_CHAINS;
    const BLOCK: usize = T::BLOCK;
    const WIDE_BLOCK: usize = T::WIDE_BLOCK;
    const PROJECT_BLOCK: usize = T::PROJECT_BLOCK;
    const SWEEP_LOOP_FROM: usize = T::SWEEP_LOOP_FROM;
    const GROUP_COLUMNS: usize = T::GROUP_COLUMNS;
    const BANK_FIVES: bool = T::BANK_FIVES;
    const BANK_TANH_PASS: BankTanhPass = T::BANK_TANH_PASS;

    #[inline(always)]
    fn splat(self, value: f32) -> __m256 {
        // SAFETY: see the impl.
        unsafe { _mm256_set1_ps(value) }
    }

    #[inline(always)]
    fn load<const L: usize>(self, row: &[f32; L], start: usize) -> __m256 {
        if L < 8 {
            self.load8(&padded(row))
        } else {
            self.load8(window(row, start).unwrap_or(&[0.0; 8]))
        }
    }

    #[inline(always)]
    fn load_half<const L: usize>(self, row: &[F16; L], start: usize) -> __m256 {
        let zeros = [F16::from_bits(0); 8];
        let padding: [F16; 8];
        let lanes: &[F16; 8] = if L < 8 {
            padding = padded(row);
            &padding
        } else {
            window(row, start).unwrap_or(&zeros)
        };
        // SAFETY: see the impl (the tokens' features include F16C); `lanes` is 8 readable
        // `F16`s, 16 bytes (`F16` is a transparent `u16`).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(lanes.as_ptr().cast())) }
    }

    #[inline(always)]
    fn load_pair<const L: usize>(self, pair: &[[PairWord; L]; 2], start: usize) -> [__m256; 2] {
        let padding: [PairWord; 16];
        let flat = pair.as_flattened();
        let words: &[PairWord; 16] = if L < 8 {
            padding = padded(flat);
            &padding
        } else {
            flat.get(2 * start..)
                .and_then(<[PairWord]>::first_chunk::<16>)
                .unwrap_or(&[PairWord(0); 16])
        };
        // SAFETY: see the impl; `words` is 16 readable `PairWord`s, 32 bytes (`PairWord` is a
        // transparent `u16`), read as 8 little-endian 32-bit lanes `hi << 16 | lo`.
        unsafe {
            let lanes = _mm256_loadu_si256(words.as_ptr().cast());
            [
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(lanes)),
                _mm256_castsi256_ps(lanes),
            ]
        }
    }

    #[inline(always)]
    fn load_bf16<const L: usize>(self, row: &[PairWord; L], start: usize) -> __m256 {
        let padding: [PairWord; 8];
        let lanes: &[PairWord; 8] = if L < 8 {
            padding = padded(row);
            &padding
        } else {
            window(row, start).unwrap_or(&[PairWord(0); 8])
        };
        // SAFETY: see the impl; `lanes` is 8 readable `PairWord`s, 16 bytes (`PairWord` is a
        // transparent `u16`).
        unsafe {
            let words = _mm256_cvtepu16_epi32(_mm_loadu_si128(lanes.as_ptr().cast()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(words))
        }
    }

    #[inline(always)]
    fn store<const L: usize>(self, v: __m256, row: &mut [f32; L], start: usize) {
        put(row, start, self.store8(v));
    }

    #[inline(always)]
    fn load_slice(self, values: &[f32]) -> __m256 {
        match values.first_chunk::<8>() {
            Some(lanes) => self.load8(lanes),
            None => self.load8(&padded(values)),
        }
    }

    #[inline(always)]
    fn store_slice(self, v: __m256, out: &mut [f32]) {
        match out.first_chunk_mut::<8>() {
            Some(lanes) => *lanes = self.store8(v),
            None => {
                for (value, lane) in out.iter_mut().zip(self.store8(v)) {
                    *value = lane;
                }
            }
        }
    }

    #[inline(always)]
    fn deinterleave<const I: usize>(self, values: &[f32], k: usize) -> __m256 {
        super::slices::deinterleave8::<Self, I>(self, values, k)
    }

    /// `a·b + c`, fused: one rounding.
    #[inline(always)]
    fn madd(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }

    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe { _mm256_add_ps(a, b) }
    }

    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe { _mm256_div_ps(a, b) }
    }

    /// The fast tanh of `crate::tanh`, lane by lane, each multiply-add fused.
    #[inline(always)]
    fn tanh(self, x: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe {
            let k = |v: f32| _mm256_set1_ps(v);
            let sign_bit = k(-0.0);
            let sign = _mm256_and_ps(x, sign_bit);
            // minps returns its second operand when either is NaN: NaN passes.
            let a = _mm256_min_ps(k(FAST_TANH_CLAMP), _mm256_andnot_ps(sign_bit, x));
            // The polynomials' argument, floored so that `t` cannot underflow; a NaN `a` may
            // take the floor here and passes through `a · (p / q)` below.
            let s = _mm256_max_ps(a, k(POLY_FLOOR));
            let t = _mm256_mul_ps(s, s);
            let t2 = _mm256_mul_ps(t, t);
            let fma = |a: __m256, b: __m256, c: __m256| _mm256_fmadd_ps(a, b, c);
            let p = fma(
                fma(fma(k(P4), t, k(P3)), t, k(P2)),
                t2,
                fma(k(P1), t, k(1.0)),
            );
            let q = fma(
                fma(fma(k(Q4), t, k(Q3)), t, k(Q2)),
                t2,
                fma(k(Q1), t, k(1.0)),
            );
            let r = _mm256_min_ps(k(1.0), _mm256_mul_ps(a, _mm256_div_ps(p, q)));
            _mm256_or_ps(r, sign)
        }
    }

    /// `max(v, 0)` with NaN kept: the ordered `v < 0` is false for NaN.
    #[inline(always)]
    fn relu(self, v: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe {
            let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_setzero_ps());
            _mm256_andnot_ps(negative, v)
        }
    }

    /// NaN kept: the ordered comparison is false for it.
    #[inline(always)]
    fn flush_where_tiny(self, z: __m256, y: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe {
            let magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0), z);
            let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(magnitude, _mm256_set1_ps(crate::FLUSH_BELOW));
            _mm256_andnot_ps(tiny, y)
        }
    }

    #[inline(always)]
    fn flush_input(self, v: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe {
            let bits = _mm256_castps_si256(v);
            let magnitude = _mm256_and_si256(bits, _mm256_set1_epi32(i32::MAX));
            let tiny = _mm256_cmpgt_epi32(_mm256_set1_epi32(FLUSH_LANE_BITS), magnitude);
            _mm256_castsi256_ps(_mm256_andnot_si256(tiny, bits))
        }
    }

    #[inline(always)]
    fn needs_flush(self, v: __m256) -> bool {
        // SAFETY: see the impl.
        unsafe {
            let magnitude = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(i32::MAX));
            let tiny = _mm256_cmpgt_epi32(_mm256_set1_epi32(FLUSH_LANE_BITS), magnitude);
            let nonzero = _mm256_cmpgt_epi32(magnitude, _mm256_setzero_si256());
            _mm256_testz_si256(tiny, nonzero) == 0
        }
    }

    /// Through a reference hidden from the compiler by `black_box` (best effort: were the
    /// compiler to see through it, the permutation would be as right, only slower). By constant
    /// lane numbers it rewrites the permutation as a shuffle of its own choosing, which for a
    /// build's default CPU is two shuffles (an in-lane one and a cross-lane one) per broadcast,
    /// where `vpermps` is one.
    #[inline(always)]
    fn lanes(self) -> &'static [[i32; 8]; 8] {
        core::hint::black_box(&LANE_NUMBERS)
    }

    #[inline(always)]
    fn lane(self, v: __m256, lanes: &&'static [[i32; 8]; 8], j: usize) -> __m256 {
        let Some(order) = lanes.get(j) else {
            return self.splat(0.0);
        };
        // SAFETY: see the impl; `order` is 8 readable `i32`s.
        unsafe { _mm256_permutevar8x32_ps(v, _mm256_loadu_si256(order.as_ptr().cast())) }
    }
}

/// Lane numbers for [`Simd::lane`]: row `j` is `j` in every lane.
static LANE_NUMBERS: [[i32; 8]; 8] = {
    let mut rows = [[0; 8]; 8];
    let mut j = 0;
    while j < 8 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_possible_wrap,
            reason = "j < 8"
        )]
        let lane = j as i32;
        rows[j] = [lane; 8];
        j += 1;
    }
    rows
};

/// SAFETY, for each `unsafe` block: as for the `Simd` impl above.
impl<T: Ymm> Shuffle8 for T {
    type Order = __m256i;

    #[inline(always)]
    fn load8(self, lanes: &[f32; 8]) -> __m256 {
        // SAFETY: see the impl; `lanes` is 8 readable `f32`s.
        unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
    }

    #[inline(always)]
    fn store8(self, v: __m256) -> [f32; 8] {
        let mut lanes = [0.0; 8];
        // SAFETY: see the impl; `lanes` is 8 writable `f32`s.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        lanes
    }

    #[inline(always)]
    fn lane_order(self, order: &[u32; 8]) -> __m256i {
        // SAFETY: see the impl; `order` is 8 readable `u32`s (32 bytes).
        unsafe { _mm256_loadu_si256(order.as_ptr().cast()) }
    }

    #[inline(always)]
    fn permute(self, v: __m256, order: __m256i) -> __m256 {
        // SAFETY: see the impl.
        unsafe { _mm256_permutevar8x32_ps(v, order) }
    }

    #[inline(always)]
    fn select(self, mask: __m256, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl.
        unsafe { _mm256_blendv_ps(b, a, mask) }
    }

    /// Rows loaded in halves, each 256-bit register the first or last four lanes of rows `l`
    /// and `l + 4` (the second half inserted by an operation that any vector port runs), then
    /// two rounds of in-lane shuffles: 16 on the shuffle port, where three rounds of loaded
    /// rows took 24 there.
    #[inline(always)]
    fn transpose8(self, rows: [&[f32; 8]; 8]) -> [__m256; 8] {
        use core::arch::x86_64::{
            _mm_loadu_ps, _mm256_castps128_ps256, _mm256_insertf128_ps, _mm256_shuffle_ps,
            _mm256_unpackhi_ps, _mm256_unpacklo_ps,
        };
        // SAFETY: see the impl; each half is 4 of a row's 8 readable `f32`s.
        let halves = |l: usize, from: usize| unsafe {
            let (low, high) = (&rows[l][from..], &rows[l + 4][from..]);
            _mm256_insertf128_ps::<1>(
                _mm256_castps128_ps256(_mm_loadu_ps(low.as_ptr())),
                _mm_loadu_ps(high.as_ptr()),
            )
        };
        // t[l] = row l | row l + 4, lanes 0–3 (lanes 4–7 for `from = 4`): a 4×4 transpose in
        // each 128-bit half gives lane j of rows 0–3 | of rows 4–7, column j.
        // SAFETY: see the impl.
        let four_columns = |from: usize| unsafe {
            let t: [__m256; 4] = core::array::from_fn(|l| halves(l, from));
            let (a0, a1) = (
                _mm256_unpacklo_ps(t[0], t[1]),
                _mm256_unpackhi_ps(t[0], t[1]),
            );
            let (a2, a3) = (
                _mm256_unpacklo_ps(t[2], t[3]),
                _mm256_unpackhi_ps(t[2], t[3]),
            );
            [
                _mm256_shuffle_ps::<0x44>(a0, a2),
                _mm256_shuffle_ps::<0xEE>(a0, a2),
                _mm256_shuffle_ps::<0x44>(a1, a3),
                _mm256_shuffle_ps::<0xEE>(a1, a3),
            ]
        };
        let ([c0, c1, c2, c3], [c4, c5, c6, c7]) = (four_columns(0), four_columns(4));
        [c0, c1, c2, c3, c4, c5, c6, c7]
    }
}

/// The lanes below `n` (at most 16), as a mask.
#[inline(always)]
fn first_lanes(n: usize) -> u16 {
    if n >= 16 { u16::MAX } else { (1 << n) - 1 }
}

/// `values[l·I + k]` for each of 16 lanes `l`, zero past the end: the 16-lane
/// [`Simd::deinterleave`] one value at a time, for the few streams and inputs its shuffles do not
/// cover. Out of line and cold, so that the bank kernel's loops over inputs and streams, which
/// call the shuffles, stay small enough to be unrolled: inline, this path kept them rolled, with
/// the accumulators on the stack.
#[cold]
#[inline(never)]
fn strided<const I: usize>(values: &[f32], k: usize) -> [f32; 16] {
    core::array::from_fn(|l| values.get(l * I + k).copied().unwrap_or(0.0))
}

/// Every operation below runs an intrinsic of AVX-512F. SAFETY, for each `unsafe` block in
/// this impl: `self` exists only on a CPU with AVX-512F (and AVX-512VL, AVX2, FMA and F16C; see
/// `detect`); the loads and stores go through pointers from references to at least 16 `f32`s,
/// or, masked, to at least as many as the mask's lanes (a masked load or store touches no
/// other lane, and has no alignment requirement).
impl Simd for Avx512 {
    type V = __m512;
    type Lanes = ();

    const LANES: usize = 16;
    const PERMUTE_STATE: bool = false;
    // As `Avx512Vl`'s, with its 32 registers: a block of 4 chunks takes 4 partial sums, of 8
    // chunks 2 (where one sum took both multiply-adds of a bf16 pair of columns in turn).
    // Against 8 chains, measured on a Zen 5 (which runs 512-bit operations whole): bf16 steps
    // of 4 and 8 chunks faster, f32 steps and sequences as fast. On a CPU that splits 512-bit
    // operations (Zen 4), the 16-lane kernel steps f32 and bf16 cells from 128 units only,
    // where the step streams its weights from L2; unmeasured there.
    const CHAINS: usize = 16;
    const SMALL_BLOCK_CHAINS: [usize; 3] = [8; 3];
    const BLOCK: usize = 8;
    const WIDE_BLOCK: usize = 16;
    const PROJECT_BLOCK: usize = 3;
    // As `Avx512Vl`'s, with its 32 registers.
    const SWEEP_LOOP_FROM: usize = usize::MAX;
    // Unmeasured: no AVX-512 CPU yet since the groups were written.
    const GROUP_COLUMNS: usize = 0;
    // Measured on Zen 5 against no pass: banks of more than 4 chunks (64 streams) as fast or
    // faster, most where a block's 8 sums of 2 units would each be activated beside the
    // others' ((3, 2), 128 streams); banks of 2 units and 32 or 64 streams (one block of 4
    // chunks or fewer) a little slower with the pass, and banks of more than 8 units and 32
    // streams no faster.
    const BANK_TANH_PASS: BankTanhPass = BankTanhPass::AboveFourChunks;

    #[inline(always)]
    fn splat(self, value: f32) -> __m512 {
        // SAFETY: see the impl.
        unsafe { _mm512_set1_ps(value) }
    }

    #[inline(always)]
    fn load<const L: usize>(self, row: &[f32; L], start: usize) -> __m512 {
        if L < 16 {
            self.load_slice(row)
        } else {
            let lanes: &[f32; 16] = window(row, start).unwrap_or(&[0.0; 16]);
            // SAFETY: see the impl; `lanes` is 16 readable `f32`s.
            unsafe { _mm512_loadu_ps(lanes.as_ptr()) }
        }
    }

    #[inline(always)]
    fn load_half<const L: usize>(self, row: &[F16; L], start: usize) -> __m512 {
        let zeros = [F16::from_bits(0); 16];
        let padding: [F16; 16];
        let lanes: &[F16; 16] = if L < 16 {
            padding = padded(row);
            &padding
        } else {
            window(row, start).unwrap_or(&zeros)
        };
        // SAFETY: see the impl; `lanes` is 16 readable `F16`s, 32 bytes (`F16` is a
        // transparent `u16`).
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(lanes.as_ptr().cast())) }
    }

    #[inline(always)]
    fn load_pair<const L: usize>(self, pair: &[[PairWord; L]; 2], start: usize) -> [__m512; 2] {
        let padding: [PairWord; 32];
        let flat = pair.as_flattened();
        let words: &[PairWord; 32] = if L < 16 {
            padding = padded(flat);
            &padding
        } else {
            flat.get(2 * start..)
                .and_then(<[PairWord]>::first_chunk::<32>)
                .unwrap_or(&[PairWord(0); 32])
        };
        // SAFETY: see the impl; `words` is 32 readable `PairWord`s, 64 bytes (`PairWord` is a
        // transparent `u16`), read as 16 little-endian 32-bit lanes `hi << 16 | lo`.
        unsafe {
            let lanes = _mm512_loadu_si512(words.as_ptr().cast());
            [
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(lanes)),
                _mm512_castsi512_ps(lanes),
            ]
        }
    }

    #[inline(always)]
    fn load_bf16<const L: usize>(self, row: &[PairWord; L], start: usize) -> __m512 {
        let padding: [PairWord; 16];
        let lanes: &[PairWord; 16] = if L < 16 {
            padding = padded(row);
            &padding
        } else {
            window(row, start).unwrap_or(&[PairWord(0); 16])
        };
        // SAFETY: see the impl; `lanes` is 16 readable `PairWord`s, 32 bytes (`PairWord` is a
        // transparent `u16`).
        unsafe {
            let words = _mm512_cvtepu16_epi32(_mm256_loadu_si256(lanes.as_ptr().cast()));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(words))
        }
    }

    #[inline(always)]
    fn store<const L: usize>(self, v: __m512, row: &mut [f32; L], start: usize) {
        if L < 16 {
            self.store_slice(v, row);
        } else if let Some(lanes) = row
            .get_mut(start..)
            .and_then(<[f32]>::first_chunk_mut::<16>)
        {
            // SAFETY: see the impl; `lanes` is 16 writable `f32`s.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), v) };
        }
    }

    #[inline(always)]
    fn load_slice(self, values: &[f32]) -> __m512 {
        // SAFETY: see the impl; the mask covers `min(len, 16)` lanes, all within `values`.
        unsafe { _mm512_maskz_loadu_ps(first_lanes(values.len()), values.as_ptr()) }
    }

    #[inline(always)]
    fn store_slice(self, v: __m512, out: &mut [f32]) {
        // SAFETY: see the impl; the mask covers `min(len, 16)` lanes, all within `out`.
        unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr(), first_lanes(out.len()), v) };
    }

    /// With `I` odd, the `I` vectors merged by the lanes each supplies (`I − 1` blends, which
    /// need not take the shuffle unit) and permuted once; with `I` even, in pairs, each pair
    /// picked from by one two-table permutation, merged by the streams each supplies: `I − 1`
    /// shuffles and blends per input. For 3 inputs the merge halved the shuffles (6 to 3 per
    /// 16 streams) and stepped the banks of odd inputs faster in interleaved timings.
    #[inline(always)]
    fn deinterleave<const I: usize>(self, values: &[f32], k: usize) -> __m512 {
        if I == 1 {
            return match values.first_chunk::<16>() {
                // SAFETY: see the impl; `lanes` is 16 readable `f32`s.
                Some(lanes) => unsafe { _mm512_loadu_ps(lanes.as_ptr()) },
                None => self.load_slice(values),
            };
        }
        let window = values.get(..16 * I).filter(|_| I < 16);
        let tables = (
            Deinterleave16::<I>::INDEX.get(k),
            Deinterleave16::<I>::FROM.get(k),
        );
        let (Some(window), (Some(index), Some(from))) = (window, tables) else {
            let lanes = strided::<I>(values, k);
            // SAFETY: see the impl; `lanes` is 16 readable `f32`s.
            return unsafe { _mm512_loadu_ps(lanes.as_ptr()) };
        };
        let vector = |m: usize| -> Option<__m512> {
            let lanes = window.get(16 * m..)?.first_chunk::<16>()?;
            // SAFETY: see the impl; `lanes` is 16 readable `f32`s.
            Some(unsafe { _mm512_loadu_ps(lanes.as_ptr()) })
        };
        // SAFETY: see the impl; `index` is 16 readable `i32`s (64 bytes).
        let index = unsafe { _mm512_loadu_si512(index.as_ptr().cast()) };
        if I % 2 == 1 {
            let (Some(first), Some(take)) = (vector(0), Deinterleave16::<I>::TAKE.get(k)) else {
                return self.splat(0.0);
            };
            let mut merged = first;
            for (m, &lanes) in take.iter().enumerate().take(I).skip(1) {
                if let Some(next) = vector(m) {
                    // SAFETY: see the impl.
                    merged = unsafe { _mm512_mask_blend_ps(lanes, merged, next) };
                }
            }
            // SAFETY: see the impl.
            return unsafe { _mm512_permutexvar_ps(index, merged) };
        }
        // SAFETY: see the impl.
        unsafe {
            let mut picked = _mm512_setzero_ps();
            for (pair, &streams) in from.iter().enumerate().take(I.div_ceil(2)) {
                picked = match (vector(2 * pair), vector(2 * pair + 1)) {
                    (Some(first), Some(second)) => {
                        let both = _mm512_permutex2var_ps(first, index, second);
                        if pair == 0 {
                            both
                        } else {
                            _mm512_mask_blend_ps(streams, picked, both)
                        }
                    }
                    // Not taken: `I` even, the vectors come in whole pairs.
                    _ => picked,
                };
            }
            picked
        }
    }

    /// `a·b + c`, fused: one rounding.
    #[inline(always)]
    fn madd(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: see the impl.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }

    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl.
        unsafe { _mm512_add_ps(a, b) }
    }

    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: see the impl.
        unsafe { _mm512_div_ps(a, b) }
    }

    /// The 8-lane tanh's operations in the same order, on 16 lanes: the same bits.
    #[inline(always)]
    fn tanh(self, x: __m512) -> __m512 {
        // SAFETY: see the impl.
        unsafe {
            let k = |v: f32| _mm512_set1_ps(v);
            // The sign as an `and`, put back with an `or`: in a step the `or` takes the flush's
            // mask (`flush_where_tiny`). A three-input logic operation in their place timed no
            // faster: in steps and banks the compiler left a masked move of its own beside it,
            // and over buffers the division bounds the tanh.
            let sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(i32::MIN));
            // minps returns its second operand when either is NaN: NaN passes. (`vrangeps`
            // would take the magnitude and the minimum in one instruction, but returns the
            // number beside a quiet NaN, as IEEE 754's minNum.)
            let a = _mm512_min_ps(k(FAST_TANH_CLAMP), _mm512_abs_ps(x));
            let s = _mm512_max_ps(a, k(POLY_FLOOR));
            let t = _mm512_mul_ps(s, s);
            let t2 = _mm512_mul_ps(t, t);
            let fma = |a: __m512, b: __m512, c: __m512| _mm512_fmadd_ps(a, b, c);
            let p = fma(
                fma(fma(k(P4), t, k(P3)), t, k(P2)),
                t2,
                fma(k(P1), t, k(1.0)),
            );
            let q = fma(
                fma(fma(k(Q4), t, k(Q3)), t, k(Q2)),
                t2,
                fma(k(Q1), t, k(1.0)),
            );
            // A division, though 16 lanes take the divider twice as long as 8. A form without
            // one (a `vrcp14ps` estimate, a Newton step and Markstein's correction; `git log -S
            // _mm512_rcp14_ps` finds it, with the argument that it gives the division's bits for
            // every input and the exhaustive test of that) issues the estimate and five
            // multiplications or multiply-adds on the two vector ports, which the rest of the
            // tanh already keeps about as busy as the divider: it was slower, both timed on
            // Zen 4 and as llvm-mca schedules it for Intel's cores with two 512-bit FMA units.
            let r = _mm512_min_ps(k(1.0), _mm512_mul_ps(a, _mm512_div_ps(p, q)));
            _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sign))
        }
    }

    /// With 6, 7 and 9 to 15 outputs, each column of the readout as one vector (256-bit,
    /// 512-bit) with its last lanes masked off ([`Avx512::masked_logits`]), on a CPU that runs
    /// 512-bit operations whole and for a cell this backend steps itself (`narrows`), where the
    /// compiler's vectors of the shared code take a column in pieces, one per power of two in
    /// `O`. 6 and 7 outputs at every such size (with 5, two pieces as well, the compiler's were
    /// as fast or faster). 9 to 15 up to `MASKED_READOUT_UNITS` units; above, as measured at
    /// 128 and 256 units, only where the pieces are three or more (11, 13, 14, 15): with two (9,
    /// 10, 12) the masked form was a few per cent slower there. Elsewhere the shared code: after
    /// the 8-lane sibling's steps the masked form was the slower.
    #[inline(always)]
    fn read_out<const H: usize, const O: usize>(
        self,
        readout: &Readout<H, O>,
        h: &[f32; H],
    ) -> SVector<f32, O> {
        // `whole` and `narrows` ask a static whether the CPU runs 512-bit operations whole:
        // asked only for the counts that take a masked form, where the other counts' readout
        // inside a sequence's loop would pay for its load at every step.
        let masked = || self.whole() && !super::narrows(self, H);
        let pieces = O.count_ones();
        match O {
            6 | 7 if masked() => self.masked_logits_256(readout, h),
            9..=15 if (H <= MASKED_READOUT_UNITS || pieces >= 3) && masked() => {
                self.masked_logits(readout, h)
            }
            _ => readout.logits_of_clean(h),
        }
    }

    /// `max(v, 0)` with NaN kept: the ordered `v < 0` is false for NaN.
    #[inline(always)]
    fn relu(self, v: __m512) -> __m512 {
        // SAFETY: see the impl.
        unsafe {
            let zero = _mm512_setzero_ps();
            _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, zero), zero)
        }
    }

    /// NaN kept: the unordered comparison is true for it. The lanes kept, rather than those
    /// flushed, so that the mask zeroes the activation's last operation (its sign's `or`) with
    /// no mask inversion between them.
    #[inline(always)]
    fn flush_where_tiny(self, z: __m512, y: __m512) -> __m512 {
        // SAFETY: see the impl.
        unsafe {
            let floor = _mm512_set1_ps(crate::FLUSH_BELOW);
            let kept = _mm512_cmp_ps_mask::<_CMP_NLT_UQ>(_mm512_abs_ps(z), floor);
            _mm512_maskz_mov_ps(kept, y)
        }
    }

    #[inline(always)]
    fn flush_input(self, v: __m512) -> __m512 {
        // SAFETY: see the impl.
        unsafe {
            let bits = _mm512_castps_si512(v);
            let magnitude = _mm512_and_si512(bits, _mm512_set1_epi32(i32::MAX));
            let kept = _mm512_cmpge_epi32_mask(magnitude, _mm512_set1_epi32(FLUSH_LANE_BITS));
            _mm512_castsi512_ps(_mm512_maskz_mov_epi32(kept, bits))
        }
    }

    #[inline(always)]
    fn needs_flush(self, v: __m512) -> bool {
        // SAFETY: see the impl.
        unsafe {
            let magnitude = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MAX));
            // `magnitude − 1 < FLUSH_BITS − 1` as unsigned: nonzero and below the threshold.
            let below = _mm512_sub_epi32(magnitude, _mm512_set1_epi32(1));
            _mm512_cmplt_epu32_mask(below, _mm512_set1_epi32(FLUSH_LANE_BITS - 1)) != 0
        }
    }

    /// Not called: see [`Simd::PERMUTE_STATE`].
    #[inline(always)]
    fn lanes(self) {}

    #[inline(always)]
    fn lane(self, v: __m512, (): &(), j: usize) -> __m512 {
        let mut lanes = [0.0; 16];
        self.store(v, &mut lanes, 0);
        self.splat(lanes.get(j).copied().unwrap_or(0.0))
    }

    /// Two chunks on a CPU that runs 512-bit operations whole, for a bank of more than 8
    /// units. With one, each column's 8 broadcast weights serve 8 multiply-adds: by count, a
    /// load per multiply-add, and only the 8 chains that two multiply-add units of 4 cycles'
    /// latency need to stay busy. Two chunks were faster there; a bank of 8 units or fewer
    /// (one block, its activations more work than its multiply-adds) was slower with them. On
    /// a CPU that splits 512-bit operations (Zen 4), where the bank's blocks were tuned, one
    /// chunk.
    #[inline(always)]
    fn bank_pairs_chunks(self, units: usize) -> bool {
        units > 8 && self.whole()
    }
}

/// A backend token: `detect` finds it on a CPU with its features, and `dispatch` runs a kernel
/// inside its one `#[target_feature]` entry, or in the caller's own code for a kernel that asks
/// ([`Kernel::INLINE`]) where `$inlines`: the build enables the features, and this is the
/// backend it inlines.
macro_rules! token {
    ($(#[$doc:meta])* $name:ident, $features:literal, $inlines:expr, $detect:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(super) struct $name(());

        impl $name {
            /// Whether [`dispatch`](Self::dispatch) runs a kernel that asks for it
            /// ([`Kernel::INLINE`]) in the caller's code: `$inlines`.
            pub(super) const INLINES: bool = $inlines;

            /// The token, if the CPU has the features (asked of the standard library once, the
            /// answer kept in a static; a build that enables them answers at compile time).
            #[inline]
            pub(super) fn detect() -> Option<Self> {
                $detect.then_some(Self(()))
            }

            /// `kernel` run with this backend's instructions.
            #[inline(always)]
            pub(super) fn dispatch<K: Kernel<Self>>(self, kernel: K) -> K::Output {
                #[inline]
                #[target_feature(enable = $features)]
                fn entry<K: Kernel<$name>>(token: $name, kernel: K) -> K::Output {
                    kernel.run(token)
                }
                if K::INLINE && Self::INLINES {
                    // The build enables the features in every function: `run` compiles into
                    // the caller with them.
                    return kernel.run(self);
                }
                // SAFETY: `self` exists only if the CPU has the features `entry` enables.
                unsafe { entry(self, kernel) }
            }
        }
    };
}

token!(
    /// Proof that the running CPU has AVX2, FMA and F16C (which every CPU with AVX2 has).
    Avx2Fma,
    "avx2,fma,f16c",
    // In a build that enables AVX-512 too, the AVX-512 backends step where this one would.
    AVX2_BUILD && !AVX512_BUILD,
    AVX2_BUILD || {
        static ANSWER: AtomicU8 = AtomicU8::new(0);
        detected(&ANSWER, &["avx2", "fma", "f16c"])
    }
);

token!(
    /// Proof that the running CPU has AVX2, FMA, AVX-512F and AVX-512VL: the 8-lane kernel
    /// with 32 registers.
    Avx512Vl,
    "avx2,fma,f16c,avx512f,avx512vl",
    AVX512_BUILD,
    avx512()
);

token!(
    /// Proof that the running CPU has AVX2, FMA, AVX-512F and AVX-512VL: the 16-lane kernel.
    Avx512,
    "avx2,fma,f16c,avx512f,avx512vl",
    // It steps cells of 32 units and more (`NARROW_BELOW_WHOLE`), where inlining gains
    // little; the 8-lane sibling steps the smaller ones.
    false,
    avx512()
);

impl Ymm for Avx2Fma {
    const CHAINS: usize = 12;
    // A block of 3 chunks takes 12 chains, 4 sums, as a block of 4 takes 3. With 8 chains (2
    // sums), its code was compiled one chunk at a time (the whole sweep of a chunk and its
    // tanh, then the next chunk's, each broadcast spilled to the stack for the later chunks),
    // so that the chunks' chains ran one after the other rather than side by side. 4 sums
    // interleaved them in the build measured then, not in every build since: `SWEEP_LOOP_FROM` is
    // what keeps them interleaved now. The 4 sums stay, and with them the bits of the cells
    // they step (17 to 24 units, and larger ones whose last block is 3 chunks).
    const SMALL_BLOCK_CHAINS: [usize; 3] = [8, 8, 12];
    // Up to 8 chunks (one partial sum at 7 and 8, two at 5 and 6), rather than 4 with 3 sums:
    // each column's broadcast then feeds up to 8 multiply-adds, not 4 (a block of 4 issued 5
    // loads per 4 multiply-adds, where the CPU does two of each per cycle), and a cell of 5 to
    // 8 chunks takes one sweep and one tanh, not two. Its 8 chains cover a multiply-add latency
    // of 4 cycles, nearly one of 5. Measured on Zen 2: the cells of 33 to 64 units step and
    // run faster, f32 and bf16.
    const BLOCK: usize = 8;
    const WIDE_BLOCK: usize = 12;
    const PROJECT_BLOCK: usize = 1;
    // With 16 registers, the step's blocks of 2 to 4 chunks were compiled a chunk at a time
    // when their sweeps were unrolled (see `step::rolled`). The blocks of 5 to 8 chunks were
    // measured as loops only.
    const SWEEP_LOOP_FROM: usize = 2;
    // Measured on Zen 2 against no groups: at 128 units faster, f32 and binary16; at 256 units
    // mixed (the native build's step and `Rnn::step` faster, the default build's step bench
    // slower in two runs); bf16 as fast with 32 columns per group (as many bytes as 16 f32
    // columns), slower with 16.
    const GROUP_COLUMNS: usize = 16;
    // Measured on Zen 2 against blocks of 8 units and one chunk, from 9 to 128 units and 12 to
    // 128 streams: faster, most where the multiply-adds outweigh the tanh, or as fast (one run
    // in six slower at 15 units); 9 to 11 streams unmeasured. A last odd chunk of streams in
    // blocks of 5 units was slower (hence blocks of 8 for it). Blocks of 6 units (12
    // accumulators, 6 weights) spilled to the stack and were much slower.
    const BANK_FIVES: bool = true;
    // Measured on Zen 2, tanh cells of 9 to 128 units: faster or as fast. Not where it would
    // apply to the cells of one block of units, 8 or fewer (slower at 8 units and 1 to 8
    // inputs), nor to ReLU cells (unmeasured).
    const BANK_TANH_PASS: BankTanhPass = BankTanhPass::AboveEightUnits;
}

impl Ymm for Avx512Vl {
    const CHAINS: usize = 16;
    const SMALL_BLOCK_CHAINS: [usize; 3] = [8; 3];
    const BLOCK: usize = 8;
    const WIDE_BLOCK: usize = 16;
    const PROJECT_BLOCK: usize = 3;
    // Unrolled, as measured before the loop was tried on avx2+fma (it needs an AVX-512 CPU to
    // measure): with 32 registers, the chunks' broadcasts need not be spilled.
    const SWEEP_LOOP_FROM: usize = usize::MAX;
    // Unmeasured, as `Avx512`'s.
    const GROUP_COLUMNS: usize = 0;
    // With 32 registers, blocks of 8 units take two chunks of streams (`bank_pairs_chunks`).
    const BANK_FIVES: bool = false;
    // Unmeasured: through `Backend::best` this backend steps only the banks the 512-bit one
    // narrows (8 streams or fewer, or fewer than 64 state values), whose chunks fit one block.
    const BANK_TANH_PASS: BankTanhPass = BankTanhPass::Never;
}

/// Adds each of `columns` times its value in `h` into `sums` through `add`, column `k` into sum
/// `k mod S`: `S` columns at a time, so that each sum is a register of its own (indexed by
/// `k % S` in one loop over the columns, they need not be).
#[inline(always)]
fn into_partial_sums<V, C, const S: usize, const H: usize>(
    sums: &mut [V; S],
    columns: &[C; H],
    h: &[f32; H],
    add: impl Fn(&mut V, &C, f32),
) {
    let (groups, rest) = columns.as_chunks::<S>();
    let (h_groups, h_rest) = h.as_chunks::<S>();
    for (group, values) in groups.iter().zip(h_groups) {
        for ((sum, column), &value) in sums.iter_mut().zip(group).zip(values) {
            add(sum, column, value);
        }
    }
    for ((sum, column), &value) in sums.iter_mut().zip(rest).zip(h_rest) {
        add(sum, column, value);
    }
}

/// The largest state whose readout of 9, 10 or 12 outputs [`Avx512`] reads out with masked
/// vectors (`Simd::read_out`).
const MASKED_READOUT_UNITS: usize = 64;

impl Avx512 {
    /// `readout`'s logits of the flushed state `h` for 9 to 15 outputs, each column of the
    /// readout one 512-bit vector with its last lanes masked off: the compiler's vectors of the
    /// shared code took each column as a 256-bit vector and up to three pieces of 1 to 4
    /// values, up to four times the loads and operations of 16 outputs. The same products and
    /// sums in the same order as `Readout::logits_of_clean` (column `k` into partial sum
    /// `k mod 2`, the two added, then the bias added to them), each rounded alone: the same
    /// bits. A masked lane holds +0 from its load on and then the products of zeros (±0, NaN
    /// for an infinite state value) and their sums, never a subnormal number; its value is not
    /// stored.
    #[inline(always)]
    fn masked_logits<const H: usize, const O: usize>(
        self,
        readout: &Readout<H, O>,
        h: &[f32; H],
    ) -> SVector<f32, O> {
        let _ = self;
        // The first `O` lanes (every lane from 16 outputs, none for 0: no load past a column).
        let mask: u16 = if O < 16 { !(u16::MAX << O) } else { u16::MAX };
        let columns = &readout.weight().data.0;
        let [bias] = &readout.bias().data.0;
        let mut y = [0.0; 16];
        // SAFETY: `self` exists only on a CPU with AVX-512F; each masked load touches the
        // first `min(O, 16)` lanes, values of one column or of the bias, and the store goes to
        // 16 values.
        unsafe {
            let mut sums = [_mm512_setzero_ps(); 2];
            let add = |sum: &mut __m512, column: &[f32; O], value: f32| {
                let w = _mm512_maskz_loadu_ps(mask, column.as_ptr());
                *sum = _mm512_add_ps(*sum, _mm512_mul_ps(_mm512_set1_ps(value), w));
            };
            into_partial_sums(&mut sums, columns, h, add);
            let sum = _mm512_add_ps(sums[0], sums[1]);
            let b = _mm512_maskz_loadu_ps(mask, bias.as_ptr());
            // Stored whole: the caller's loads of the logits can take their values from a
            // whole store, not from a masked one.
            _mm512_storeu_ps(y.as_mut_ptr(), _mm512_add_ps(b, sum));
        }
        SVector::from_fn(|o, _| y.get(o).copied().unwrap_or_default())
    }

    /// [`masked_logits`](Self::masked_logits) for 6 and 7 outputs (`read_out` takes it for no
    /// other count): each column one 256-bit vector, masked, where the shared code took a
    /// 128-bit vector and one or two pieces; 8 partial sums (column `k` into sum `k mod 8`),
    /// added pairwise (the upper half onto the lower), as `Readout::logits_of_clean` adds them
    /// for up to 8 outputs.
    #[inline(always)]
    fn masked_logits_256<const H: usize, const O: usize>(
        self,
        readout: &Readout<H, O>,
        h: &[f32; H],
    ) -> SVector<f32, O> {
        let _ = self;
        let mask: u8 = if O < 8 { !(u8::MAX << O) } else { u8::MAX };
        let columns = &readout.weight().data.0;
        let [bias] = &readout.bias().data.0;
        let mut y = [0.0; 8];
        // SAFETY: `self` exists only on a CPU with AVX-512F and AVX-512VL; each masked load
        // touches the first `min(O, 8)` lanes, values of one column or of the bias, and the
        // store goes to 8 values.
        unsafe {
            let mut sums = [_mm256_setzero_ps(); 8];
            let add = |sum: &mut __m256, column: &[f32; O], value: f32| {
                let w = _mm256_maskz_loadu_ps(mask, column.as_ptr());
                *sum = _mm256_add_ps(*sum, _mm256_mul_ps(_mm256_set1_ps(value), w));
            };
            into_partial_sums(&mut sums, columns, h, add);
            for half in [4, 2, 1] {
                for s in 0..half {
                    sums[s] = _mm256_add_ps(sums[s], sums[s + half]);
                }
            }
            let b = _mm256_maskz_loadu_ps(mask, bias.as_ptr());
            _mm256_storeu_ps(y.as_mut_ptr(), _mm256_add_ps(b, sums[0]));
        }
        SVector::from_fn(|o, _| y.get(o).copied().unwrap_or_default())
    }

    /// The 8-lane backend of the same CPU.
    #[inline]
    pub(super) fn narrow(self) -> Avx512Vl {
        let Self(proof) = self;
        Avx512Vl(proof)
    }

    /// Whether the CPU runs a 512-bit operation whole rather than as two 256-bit halves
    /// ([`runs_512_bit_whole`]). Asked of CPUID once, the answer kept in a static.
    #[inline]
    #[expect(
        clippy::unused_self,
        reason = "a question about the 512-bit backend, asked only where it exists"
    )]
    pub(super) fn whole(self) -> bool {
        static ANSWER: AtomicU8 = AtomicU8::new(0);
        remembered(&ANSWER, runs_512_bit_whole)
    }
}

/// Whether this CPU, by CPUID's vendor, family and model, runs a 512-bit operation whole:
/// Intel's CPUs, and AMD's from Zen 5 (family 1Ah) on but for two of Zen 5's laptop designs.
/// AMD's Zen 4 (family 19h) issues a 16-lane multiply-add to a 256-bit unit twice; the Zen 5
/// of servers and desktops has 512-bit units (two 16-lane multiply-adds a cycle, twice the
/// 8-lane rate), and Strix Point (models 20h to 2Fh) and Krackan Point (60h to 6Fh) keep Zen
/// 4's halves. No CPUID feature flag tells the width, so the family and model do; AMD's
/// families after 1Ah count as whole, as the design they follow, until measured. A wrong
/// answer costs speed, never correctness: either kernel's results are within the error budget.
#[cold]
fn runs_512_bit_whole() -> bool {
    #[allow(
        unused_unsafe,
        reason = "`__cpuid` is a safe function in recent compilers and unsafe in older ones"
    )]
    // SAFETY: every x86-64 CPU has the CPUID instruction, and leaves 0 (the vendor) and 1 (the
    // family and model) exist on all.
    let (vendor, signature) = unsafe {
        let leaf = core::arch::x86_64::__cpuid(0);
        (
            [leaf.ebx, leaf.edx, leaf.ecx],
            core::arch::x86_64::__cpuid(1).eax,
        )
    };
    let is = |name: &[u8; 12]| {
        let word = |i: usize| u32::from_le_bytes([name[i], name[i + 1], name[i + 2], name[i + 3]]);
        vendor == [word(0), word(4), word(8)]
    };
    let (family, model) = family_and_model(signature);
    is(b"GenuineIntel") || (is(b"AuthenticAMD") && amd_runs_512_bit_whole(family, model))
}

/// The display family and model of CPUID leaf 1's `EAX`, as AMD's and Intel's manuals define
/// them: the extended family added where the base family is Fh, the extended model taken
/// where it is 6h or Fh.
const fn family_and_model(signature: u32) -> (u32, u32) {
    let base_family = (signature >> 8) & 0xf;
    let base_model = (signature >> 4) & 0xf;
    let extended_model = (signature >> 16) & 0xf;
    if base_family == 0xf {
        (
            base_family + ((signature >> 20) & 0xff),
            base_model | (extended_model << 4),
        )
    } else if base_family == 0x6 {
        (base_family, base_model | (extended_model << 4))
    } else {
        (base_family, base_model)
    }
}

/// Whether an AMD CPU of this family and model runs 512-bit operations whole: from family 1Ah
/// (Zen 5) on, but for Zen 5's laptop models (20h to 2Fh, 60h to 6Fh).
const fn amd_runs_512_bit_whole(family: u32, model: u32) -> bool {
    family > 0x1a || (family == 0x1a && !matches!(model, 0x20..=0x2f | 0x60..=0x6f))
}

// The family and model of the CPUs the rule was measured on: a Zen 5 server core, family 1Ah
// model 02h (CPUID signature B00F21h), whole; a Zen 4, family 19h model 11h (A10F11h), halves.
const _: () = assert!(matches!(family_and_model(0x00b0_0f21), (0x1a, 0x02)));
const _: () = assert!(amd_runs_512_bit_whole(0x1a, 0x02));
const _: () = assert!(matches!(family_and_model(0x00a1_0f11), (0x19, 0x11)));
const _: () = assert!(!amd_runs_512_bit_whole(0x19, 0x11));
const _: () = assert!(!amd_runs_512_bit_whole(0x1a, 0x24));
// An Intel Xeon's, family 6 model 55h (50654h): the extended model counts there too.
const _: () = assert!(matches!(family_and_model(0x0005_0654), (0x6, 0x55)));

/// Whether the build enables AVX2, FMA and F16C, the features of [`Avx2Fma`]'s entry.
const AVX2_BUILD: bool = cfg!(all(
    target_feature = "avx2",
    target_feature = "fma",
    target_feature = "f16c"
));

/// Whether the build enables the features of the AVX-512 backends' entries.
const AVX512_BUILD: bool =
    AVX2_BUILD && cfg!(all(target_feature = "avx512f", target_feature = "avx512vl"));

/// Whether the CPU has AVX2, FMA, AVX-512F and AVX-512VL.
#[inline]
fn avx512() -> bool {
    AVX512_BUILD || {
        static ANSWER: AtomicU8 = AtomicU8::new(0);
        detected(&ANSWER, &["avx2", "fma", "f16c", "avx512f", "avx512vl"])
    }
}

/// Whether the running CPU has every feature in `features`: the standard library's run-time
/// detection, asked once and kept in `answer` (0 not yet asked, 1 no, 2 yes), so that a step
/// pays one load for it. Without `std` there is no run-time detection: only the features the
/// build enables count (the `cfg!` beside each call).
#[cfg(feature = "std")]
#[inline]
fn detected(answer: &AtomicU8, features: &[&str]) -> bool {
    remembered(answer, || ask(features))
}

/// `question`'s answer, asked once and kept in `answer` (0 not yet asked, 1 no, 2 yes).
#[inline]
fn remembered(answer: &AtomicU8, question: impl FnOnce() -> bool) -> bool {
    use core::sync::atomic::Ordering::Relaxed;
    match answer.load(Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let yes = question();
            answer.store(if yes { 2 } else { 1 }, Relaxed);
            yes
        }
    }
}

/// The standard library's answer for every feature in `features`.
#[cfg(feature = "std")]
#[cold]
fn ask(features: &[&str]) -> bool {
    features.iter().all(|feature| match *feature {
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "f16c" => std::arch::is_x86_feature_detected!("f16c"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        _ => false,
    })
}

#[cfg(not(feature = "std"))]
fn detected(_answer: &AtomicU8, _features: &[&str]) -> bool {
    false
}
/// The state of a cell of at most 4 units as two `f64`s: its lanes 0–1 in the first and 2–3 in
/// the second, bit for bit (zeros past `H`). Built and taken apart with SSE2 register
/// operations (which every x86-64 target but the soft-float ones enables), so that the
/// compiler keeps the two in vector registers; through integer bit operations, it carried them
/// from one step to the next in a general register.
#[cfg(target_feature = "sse2")]
#[inline]
pub(super) fn pack<const H: usize>(h: &[f32; H]) -> (f64, f64) {
    use core::arch::x86_64::{_mm_castps_pd, _mm_cvtsd_f64, _mm_setr_ps, _mm_unpackhi_pd};
    let lane = |j: usize| h.get(j).copied().unwrap_or(0.0);
    // SAFETY: SSE and SSE2, the only features these operations need, are enabled for the whole
    // build (the `cfg` above).
    unsafe {
        let v = _mm_castps_pd(_mm_setr_ps(lane(0), lane(1), lane(2), lane(3)));
        (_mm_cvtsd_f64(v), _mm_cvtsd_f64(_mm_unpackhi_pd(v, v)))
    }
}

/// Whether a packed state holds a value that [`flush`](crate::flush) would change: nonzero
/// and below `FLUSH_BELOW` in magnitude, as `flush::needs_flush` asks (integer comparisons of
/// the bits, in SSE2 registers).
#[cfg(target_feature = "sse2")]
#[inline]
fn packed_needs_flush((low, high): (f64, f64)) -> bool {
    use core::arch::x86_64::{
        _mm_add_epi32, _mm_and_si128, _mm_castpd_si128, _mm_castsi128_ps, _mm_cmplt_epi32,
        _mm_movemask_ps, _mm_set1_epi32, _mm_setr_pd,
    };
    // SAFETY: SSE and SSE2, the only features these operations need, are enabled for the whole
    // build (the `cfg` above).
    unsafe {
        let bits = _mm_castpd_si128(_mm_setr_pd(low, high));
        let magnitude = _mm_and_si128(bits, _mm_set1_epi32(i32::MAX));
        // `1 ≤ magnitude < FLUSH_LANE_BITS` in one signed comparison: adding 2^31 − 1 wraps the
        // magnitudes from 1 on, in their order, to the negative numbers, and leaves 0 the
        // largest. Not a test for zero beside `below_threshold`: the compiler rewrites an
        // integer test of the bits for ±0 into a floating-point comparison with 0, which
        // raises the denormal flag on a subnormal lane (`tests/denormal.rs` in a release
        // build).
        let shifted = _mm_add_epi32(magnitude, _mm_set1_epi32(i32::MAX));
        let tiny = _mm_cmplt_epi32(
            shifted,
            _mm_set1_epi32(FLUSH_LANE_BITS.wrapping_add(i32::MAX)),
        );
        _mm_movemask_ps(_mm_castsi128_ps(tiny)) != 0
    }
}

/// The lanes of `bits` (four `f32`s) whose magnitude is below the threshold, zero included:
/// all ones there. An integer comparison of the bits: a floating-point one with a subnormal
/// operand would raise the denormal flag that no arithmetic of the crate raises. The first half
/// of every SSE2 check of a caller's state: two operations. Only where it finds a lane does
/// the exact check (zero excluded) follow: `crate::flush::needs_flush` in
/// [`state_needs_flush`], [`packed_needs_flush`] in [`packed_parts_need_flush`].
#[cfg(target_feature = "sse2")]
#[inline(always)]
fn below_threshold(bits: core::arch::x86_64::__m128i) -> core::arch::x86_64::__m128i {
    use core::arch::x86_64::{_mm_and_si128, _mm_cmplt_epi32, _mm_set1_epi32};
    // SAFETY: SSE and SSE2, the only features these operations need, are enabled for the whole
    // build (the `cfg` above).
    unsafe {
        let magnitude = _mm_and_si128(bits, _mm_set1_epi32(i32::MAX));
        _mm_cmplt_epi32(magnitude, _mm_set1_epi32(FLUSH_LANE_BITS))
    }
}

/// Whether any of the first `lanes` lanes of a packed state is below the threshold in
/// magnitude, zero included ([`below_threshold`]). Lanes past `lanes` are the packing's zeros,
/// left out.
#[cfg(target_feature = "sse2")]
#[inline]
fn packed_below((low, high): (f64, f64), lanes: usize) -> bool {
    use core::arch::x86_64::{_mm_castpd_si128, _mm_castsi128_ps, _mm_movemask_ps, _mm_setr_pd};
    // SAFETY: SSE and SSE2, the only features these operations need, are enabled for the whole
    // build (the `cfg` above).
    let below = unsafe {
        let bits = _mm_castpd_si128(_mm_setr_pd(low, high));
        _mm_movemask_ps(_mm_castsi128_ps(below_threshold(bits)))
    };
    below & ((1 << lanes.min(4)) - 1) != 0
}

/// Whether a caller's state holds a value that [`flush`](crate::flush) would change, as
/// [`crate::flush::needs_flush`] answers, with SSE2 (the check `step` makes in the caller's code
/// before the kernel's call, see [`checks_before_call`]). First whether any magnitude is below
/// the threshold, four values at a time ([`below_threshold`]) and the `or` of their answers;
/// only where one is, zero or tiny, does the exact check follow: a zero state, or a ReLU's
/// zeros, take both.
#[cfg(target_feature = "sse2")]
#[inline]
pub(super) fn state_needs_flush<const H: usize>(h: &[f32; H]) -> bool {
    use core::arch::x86_64::{_mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_setzero_si128};
    let (quads, rest) = h.as_chunks::<4>();
    // SAFETY: SSE and SSE2, the only features these operations need, are enabled for the whole
    // build (the `cfg` above); each load reads the 16 bytes of one item of `quads`.
    let below = unsafe {
        let mut any = _mm_setzero_si128();
        for quad in quads {
            let bits = _mm_loadu_si128(quad.as_ptr().cast());
            any = _mm_or_si128(any, below_threshold(bits));
        }
        _mm_movemask_epi8(any) != 0
    };
    if below {
        crate::flush::needs_flush(h)
    } else {
        crate::flush::needs_flush(rest)
    }
}

/// The `H ≤ 4` lanes of a state that [`pack`] packed.
#[cfg(target_feature = "sse2")]
#[inline]
pub(super) fn unpack<const H: usize>((low, high): (f64, f64)) -> [f32; H] {
    use core::arch::x86_64::{_mm_castpd_ps, _mm_cvtss_f32, _mm_setr_pd, _mm_shuffle_ps};
    // SAFETY: as in `pack`, the build enables SSE and SSE2.
    unsafe {
        let v = _mm_castpd_ps(_mm_setr_pd(low, high));
        core::array::from_fn(|j| match j {
            0 => _mm_cvtss_f32(v),
            1 => _mm_cvtss_f32(_mm_shuffle_ps::<0b01>(v, v)),
            2 => _mm_cvtss_f32(_mm_shuffle_ps::<0b10>(v, v)),
            _ => _mm_cvtss_f32(_mm_shuffle_ps::<0b11>(v, v)),
        })
    }
}

/// `step` of a cell of at most 4 units, the state in and out as two `f64`s holding its lanes
/// 0–1 and 2–3 (see [`pack`]): two scalars, which the calling convention passes and returns in
/// vector registers, where an array goes through memory or a general register. The same block
/// as `step`'s, so the same bits.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn packed_step<T: Ymm, E: Element, const I: usize, const H: usize, A: Activation>(
    s: T,
    w: Weights<'_, I, H, E>,
    x: &[f32; I],
    (low, high): (f64, f64),
) -> (f64, f64) {
    use core::arch::x86_64::{
        _mm_castpd_ps, _mm_castps_pd, _mm_cvtsd_f64, _mm_setr_pd, _mm_unpackhi_pd,
        _mm256_castps128_ps256, _mm256_castps256_ps128,
    };
    // SAFETY: SSE2 and AVX register moves; `s` exists only on a CPU with AVX2.
    let lanes = s.store8(unsafe { _mm256_castps128_ps256(_mm_castpd_ps(_mm_setr_pd(low, high))) });
    let Some(h) = lanes.first_chunk::<H>() else {
        return (0.0, 0.0);
    };
    // Inputs below `FLUSH_BELOW` read as +0 (the caller's state is flushed by the caller).
    let mut copy = core::mem::MaybeUninit::uninit();
    let x = on_entry(s, x, &mut copy);
    let state = chunk_step::<T, E, I, H, A>(s, w, x, h);
    // SAFETY: as above.
    unsafe {
        let out = _mm_castps_pd(_mm256_castps256_ps128(state));
        (_mm_cvtsd_f64(out), _mm_cvtsd_f64(_mm_unpackhi_pd(out, out)))
    }
}

/// The state of a cell of 5 to 16 units as four packed pairs (see [`pack`]): lanes `4k` to
/// `4k + 3` in the `k`-th, zeros past `H`.
#[cfg(target_feature = "sse2")]
#[inline]
pub(super) fn pack16<const H: usize>(h: &[f32; H]) -> [(f64, f64); 4] {
    let lane = |j: usize| h.get(j).copied().unwrap_or(0.0);
    core::array::from_fn(|k| pack(&core::array::from_fn::<_, 4, _>(|j| lane(4 * k + j))))
}

/// The `H ≤ 16` lanes of a state that [`pack16`] packed.
#[cfg(target_feature = "sse2")]
#[inline]
pub(super) fn unpack16<const H: usize>(parts: [(f64, f64); 4]) -> [f32; H] {
    let quads = parts.map(unpack::<4>);
    core::array::from_fn(|j| quads.get(j / 4).map_or(0.0, |quad| quad[j % 4]))
}

/// Whether a state of `H` units packed as `P` pairs of pairs ([`pack`], [`pack16`]) holds a
/// value that [`flush`](crate::flush) would change: first whether any of its `H` lanes is below
/// the threshold ([`packed_below`]), and only then the exact check of each part that holds any
/// of them.
#[cfg(target_feature = "sse2")]
#[inline]
pub(super) fn packed_parts_need_flush<const H: usize, const P: usize>(
    parts: [(f64, f64); P],
) -> bool {
    let below = (0..P).zip(parts).fold(false, |any, (k, part)| {
        any | (4 * k < H && packed_below(part, H - 4 * k))
    });
    below
        && (0..P).zip(parts).fold(false, |any, (k, part)| {
            any | (4 * k < H && packed_needs_flush(part))
        })
}

/// Whether `step` of a cell of `units` units passes the state as four packed pairs (see
/// [`pack16`]): from 5 to 8 units, and up to 16 where the kernel is a `call` (the backend's
/// `#[target_feature]` entry, see `Backend::kernel_is_a_call`). Where the kernel inlines into
/// the caller's loop, the pairs only add their shuffles to a 16-unit state's chain (measured
/// slower there), while an 8-unit state still gains from travelling by value.
#[cfg(target_feature = "sse2")]
pub(super) const fn splits(units: usize, call: bool) -> bool {
    units <= 8 || units <= 16 && call
}

/// Whether `step` checks a caller's state of `units` units in the kernel's entry that takes it
/// as packed pairs (`Avx2Fma::step_split`, `CALLER = true`), not in the caller's code before
/// the call: from 9 units on, where [`splits`] sends them (a call; why the entry, see
/// `Avx2Fma::step_split`). Up to 8 units the caller's check ([`packed_parts_need_flush`])
/// measured faster than the entry's.
#[cfg(target_feature = "sse2")]
pub(super) const fn checks_on_entry(units: usize, call: bool) -> bool {
    units > 8 && splits(units, call)
}

/// Whether `step` checks a caller's state of `units` units in the caller's code, before the
/// kernel's call, rather than in the kernel: from 17 to 48 units where the kernel is a `call`
/// (see [`splits`]). There the state is most often the caller's copy of the last step's result
/// (`h = cell.step(&x, &h)`), stored just before the call 16 bytes at a time, or by `memcpy` as
/// its code chooses. The kernel's check reads it a vector at a time, and a load that spans
/// several pending stores cannot take its value from them: it waits until they reach the
/// cache, and holds the step back with it. The caller's check, compiled for the caller's CPU,
/// reads it as that code stored it ([`state_needs_flush`]). With more units its SSE2
/// instructions cost more than the wait: on Zen 4 the check before the call gained from 24 to
/// 48 units and nothing at 64 (measured with the exact check, before `state_needs_flush`'s
/// fewer operations), and on an Intel Xeon (family 6 model 207) `state_needs_flush` was slower
/// at 64 units than the kernel's check, while it still gained at 40. Where the kernel can inline,
/// the check before it measured slower: there the compiler may leave out the copy.
#[cfg(target_feature = "sse2")]
pub(super) const fn checks_before_call(units: usize, call: bool) -> bool {
    units <= 48 && call
}

/// The 16 lanes of a caller's state that [`pack16`] packed, flushed where they must be (see
/// [`flush`](crate::flush)): two vectors built in registers from the pairs, checked there, and
/// stored whole. Through an array, the compiler stored two pairs 16 bytes at a time and loaded
/// them as one vector for the check, a load that cannot take its value from the two stores and
/// waits until they reach the cache: off the step's chain where the check passes, but on it
/// where the flushed copy is what the kernel reads, every step from a caller's subnormal state.
#[cfg(target_feature = "sse2")]
#[inline(always)]
fn checked_lanes<T: Ymm>(s: T, [h0, h1, h2, h3]: [(f64, f64); 4]) -> [f32; 16] {
    use core::arch::x86_64::{_mm256_castpd_ps, _mm256_setr_pd};
    // SAFETY: AVX register moves; `s` exists only on a CPU with AVX2.
    let (low, high) = unsafe {
        (
            _mm256_castpd_ps(_mm256_setr_pd(h0.0, h0.1, h1.0, h1.1)),
            _mm256_castpd_ps(_mm256_setr_pd(h2.0, h2.1, h3.0, h3.1)),
        )
    };
    let mut lanes = [0.0; 16];
    s.store(low, &mut lanes, 0);
    s.store(high, &mut lanes, 8);
    // A branch, predicted: the check stays off the state's chain (see `step::on_entry`).
    if s.needs_flush(low) | s.needs_flush(high) {
        s.store(s.flush_input(low), &mut lanes, 0);
        s.store(s.flush_input(high), &mut lanes, 8);
    }
    lanes
}

/// The entries of an 8-lane token that take the state in registers: its own
/// `#[target_feature]` function each, whose arguments (the weights' and input's addresses, the
/// state) all travel in registers. Through one kernel argument, the state went through memory,
/// and the addresses were loaded from it before the first weight, on every step's chain.
macro_rules! state_entries {
    ($name:ident, $features:literal) => {
        impl $name {
            /// [`packed_step`] on this CPU.
            #[inline]
            pub(super) fn step_packed<E: Element, A: Activation, const I: usize, const H: usize>(
                self,
                (w_xh, w_hh, b): Weights<'_, I, H, E>,
                x: &[f32; I],
                h: (f64, f64),
            ) -> (f64, f64) {
                #[inline]
                #[target_feature(enable = $features)]
                fn entry<E: Element, A: Activation, const I: usize, const H: usize>(
                    token: $name,
                    w_xh: &[[E; H]; I],
                    w_hh: &[[E; H]; H],
                    b: &[f32; H],
                    x: &[f32; I],
                    h: (f64, f64),
                ) -> (f64, f64) {
                    packed_step::<$name, E, I, H, A>(token, (w_xh, w_hh, b), x, h)
                }
                // SAFETY: `self` exists only if the CPU has the features `entry` enables.
                unsafe { entry::<E, A, I, H>(self, w_xh, w_hh, b, x, h) }
            }

            /// `step` of a cell of 5 to 16 units on this CPU, the state in and out as four
            /// packed pairs (see [`pack16`]). In, they are eight scalars, which the calling
            /// convention passes in vector registers, where an array goes through memory (a
            /// store by the caller, then a load on the step's chain). Out, the new state is
            /// too large for the registers a call returns: it comes back through memory, the
            /// one trip left per step. The kernel is `step`'s, so the bits are. A `CALLER`'s
            /// state is checked (and where it must be, flushed) here, a vector at a time
            /// ([`checked_lanes`]), rather than in the caller's SSE2 code: there the checks of
            /// its four pairs would take the ports that the pairs' shuffles wait for, when the
            /// state arrives from the step before. Its lanes are then stored whole, on
            /// purpose: the kernel's broadcasts load them, each from one store.
            #[cfg(target_feature = "sse2")]
            #[inline]
            pub(super) fn step_split<
                E: Element,
                A: Activation,
                const I: usize,
                const H: usize,
                const CALLER: bool,
            >(
                self,
                (w_xh, w_hh, b): Weights<'_, I, H, E>,
                x: &[f32; I],
                [h0, h1, h2, h3]: [(f64, f64); 4],
            ) -> [(f64, f64); 4] {
                #[inline]
                #[target_feature(enable = $features)]
                #[expect(clippy::too_many_arguments, reason = "each argument is a register")]
                fn entry<
                    E: Element,
                    A: Activation,
                    const I: usize,
                    const H: usize,
                    const CALLER: bool,
                >(
                    token: $name,
                    w_xh: &[[E; H]; I],
                    w_hh: &[[E; H]; H],
                    b: &[f32; H],
                    x: &[f32; I],
                    h0: (f64, f64),
                    h1: (f64, f64),
                    h2: (f64, f64),
                    h3: (f64, f64),
                ) -> [f32; H] {
                    let step = |h: &[f32; H]| {
                        super::step::step::<$name, E, I, H, A, false>(token, (w_xh, w_hh, b), x, h)
                    };
                    if !CALLER {
                        return step(&unpack16::<H>([h0, h1, h2, h3]));
                    }
                    // The kernel reads the state as `lanes` stores it, a value at a time (its
                    // broadcasts), through a reference the compiler cannot follow: where it
                    // could, it kept the two vectors in registers and broadcast each value by
                    // two shuffles, on the ports the multiply-adds take.
                    let lanes = checked_lanes(token, [h0, h1, h2, h3]);
                    match core::hint::black_box(&lanes).first_chunk::<H>() {
                        Some(h) => step(h),
                        None => [0.0; H],
                    }
                }
                // SAFETY: `self` exists only if the CPU has the features `entry` enables.
                pack16(&unsafe {
                    entry::<E, A, I, H, CALLER>(self, w_xh, w_hh, b, x, h0, h1, h2, h3)
                })
            }
        }
    };
}

state_entries!(Avx2Fma, "avx2,fma,f16c");
state_entries!(Avx512Vl, "avx2,fma,f16c,avx512f,avx512vl");
