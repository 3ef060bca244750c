//! The x86-64 backends, written against `core::arch` so that a default build, which targets
//! SSE2, still runs 8-lane fused multiply-adds on a CPU that has them:
//!
//! - [`Avx2Fma`]: AVX2 and FMA, 16 vector registers: blocks of up to 4 chunks, 12 accumulator
//!   chains in the throughput-bound sizes;
//! - [`Avx512Vl`]: the same 8-lane (256-bit) code compiled with AVX-512F and AVX-512VL enabled,
//!   which gives it 32 vector registers: blocks of up to 8 chunks, 16 chains. The operations
//!   are the same; where the blocking differs (`H ≥ 32`), so does the order of the additions,
//!   and the two agree within the step's error budget rather than to the bit.
//!
//! This module is the only place in the crate with `unsafe`, for two things: the unaligned loads
//! and stores through pointers (each from a reference to exactly 8 `f32`s), and the calls into
//! the `#[target_feature]` kernels, which happen only through a token, a value that exists only
//! once the CPU was found to have the token's features.
//!
//! The arithmetic mirrors the portable backend operation for operation, with one difference:
//! `madd` is fused (one rounding). The fast tanh here gives the bits of
//! [`fast_tanh_fused`](crate::fast_tanh_fused).

#![allow(
    unsafe_code,
    reason = "core::arch loads, stores and target-feature calls"
)]

use core::sync::atomic::AtomicU8;

/// The vector operations and the kernel, compiled for one set of target features, with the
/// number of independent accumulator chains and the largest block (in chunks) that its
/// registers hold (see `kernel::partial_sums`).
macro_rules! backend {
    ($features:literal, $chains:literal, $block:literal, $project_block:literal) => {
        /// Chunks per block of the input projections (`HOIST·PROJECT_BLOCK` accumulators).
        const PROJECT_BLOCK: usize = $project_block;
        /// The largest block, in 8-unit chunks.
        const BLOCK: usize = $block;
        /// Accumulator chains in the throughput-bound sizes.
        const CHAINS: usize = $chains;
        use core::arch::x86_64::{
            __m256, _CMP_LT_OQ, _mm256_add_ps, _mm256_and_ps, _mm256_andnot_ps, _mm256_cmp_ps,
            _mm256_div_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps,
            _mm256_or_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
        };

        use crate::tanh::{FAST_TANH_CLAMP, P1, P2, P3, P4, POLY_FLOOR, Q1, Q2, Q3, Q4};

        type V = __m256;

        #[inline]
        #[target_feature(enable = $features)]
        fn splat(v: f32) -> V {
            _mm256_set1_ps(v)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn load(lanes: &[f32; 8]) -> V {
            // SAFETY: `lanes` is a valid, readable reference to 8 contiguous f32s; `loadu` has
            // no alignment requirement.
            unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn store(v: V) -> [f32; 8] {
            let mut lanes = [0.0; 8];
            // SAFETY: `lanes` is a valid, writable array of 8 contiguous f32s; `storeu` has no
            // alignment requirement.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
            lanes
        }

        /// `a·b + c`, fused: one rounding.
        #[inline]
        #[target_feature(enable = $features)]
        fn madd(a: V, b: V, c: V) -> V {
            _mm256_fmadd_ps(a, b, c)
        }

        #[inline]
        #[target_feature(enable = $features)]
        fn add(a: V, b: V) -> V {
            _mm256_add_ps(a, b)
        }

        /// The fast tanh of `crate::tanh`, lane by lane, each multiply-add fused.
        #[inline]
        #[target_feature(enable = $features)]
        fn tanh(x: V) -> V {
            let k = _mm256_set1_ps;
            let sign_bit = k(-0.0);
            let sign = _mm256_and_ps(x, sign_bit);
            // minps returns its second operand when either is NaN: NaN passes.
            let a = _mm256_min_ps(k(FAST_TANH_CLAMP), _mm256_andnot_ps(sign_bit, x));
            // The polynomials' argument, floored so that `t` cannot underflow; a NaN `a` may take
            // the floor here and passes through `a · (p / q)` below.
            let s = _mm256_max_ps(a, k(POLY_FLOOR));
            let t = _mm256_mul_ps(s, s);
            let t2 = _mm256_mul_ps(t, t);
            let fma = |a: V, b: V, c: V| _mm256_fmadd_ps(a, b, c);
            let p = fma(fma(fma(k(P4), t, k(P3)), t, k(P2)), t2, fma(k(P1), t, k(1.0)));
            let q = fma(fma(fma(k(Q4), t, k(Q3)), t, k(Q2)), t2, fma(k(Q1), t, k(1.0)));
            let r = _mm256_min_ps(k(1.0), _mm256_mul_ps(a, _mm256_div_ps(p, q)));
            _mm256_or_ps(r, sign)
        }

        /// `max(v, 0)` with NaN kept: the ordered `v < 0` is false for NaN.
        #[inline]
        #[target_feature(enable = $features)]
        fn relu(v: V) -> V {
            let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_setzero_ps());
            _mm256_andnot_ps(negative, v)
        }

        /// `y`, with +0 in the lanes where `z` is smaller than `FLUSH_BELOW` in magnitude (NaN
        /// kept: the ordered comparison is false for it).
        #[inline]
        #[target_feature(enable = $features)]
        fn flush_where_tiny(z: V, y: V) -> V {
            let magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0), z);
            let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(magnitude, _mm256_set1_ps(crate::kernel::FLUSH_BELOW));
            _mm256_andnot_ps(tiny, y)
        }

        /// Lane numbers for [`permute`].
        type Order = core::arch::x86_64::__m256i;

        #[inline]
        #[target_feature(enable = $features)]
        fn lane_order(order: &[u32; 8]) -> Order {
            // SAFETY: `order` is a valid, readable reference to 8 contiguous u32s (32 bytes);
            // `loadu` has no alignment requirement.
            unsafe { core::arch::x86_64::_mm256_loadu_si256(order.as_ptr().cast()) }
        }

        /// Lane `l` is lane `order[l]` of `v` (every number below 8).
        #[inline]
        #[target_feature(enable = $features)]
        fn permute(v: V, order: Order) -> V {
            core::arch::x86_64::_mm256_permutevar8x32_ps(v, order)
        }

        /// Lane `l` from `a` where lane `l` of `mask` has its sign bit set, else from `b`.
        #[inline]
        #[target_feature(enable = $features)]
        fn select(mask: V, a: V, b: V) -> V {
            core::arch::x86_64::_mm256_blendv_ps(b, a, mask)
        }

        /// The 8×8 block whose rows are `rows`, transposed: lane `l` of column `j` is lane `j`
        /// of row `l`. Three rounds of shuffles, 24 in all.
        #[inline]
        #[target_feature(enable = $features)]
        fn transpose8([r0, r1, r2, r3, r4, r5, r6, r7]: [V; 8]) -> [V; 8] {
            use core::arch::x86_64::{
                _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_unpackhi_ps, _mm256_unpacklo_ps,
            };
            // Rows interleaved in pairs: t0 = r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5],
            // t1 the same with lanes 2, 3 | 6, 7.
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            // In fours: u0 = lane 0 of rows 0–3 | lane 4 of rows 0–3, u1 lanes 1 | 5, u2 2 | 6,
            // u3 3 | 7; u4–u7 the same of rows 4–7.
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            // The low halves make columns 0–3, the high halves columns 4–7.
            [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ]
        }

        crate::kernel::define_kernel!(#[inline] #[target_feature(enable = $features)]);

        /// `step` of a cell of at most 4 units, the state in and out as two `f64`s holding its
        /// lanes 0–1 and 2–3 (see `pack`): two scalars, which the calling convention passes and
        /// returns in vector registers, where an array goes through memory or a general
        /// register. The same block as `step`'s, so the same bits.
        #[inline]
        #[target_feature(enable = $features)]
        pub(super) fn step_packed<const I: usize, const H: usize, A: Activation>(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            x: &[f32; I],
            (low, high): (f64, f64),
        ) -> (f64, f64) {
            use core::arch::x86_64::{
                _mm_castpd_ps, _mm_castps_pd, _mm_cvtsd_f64, _mm_setr_pd, _mm_unpackhi_pd,
                _mm256_castps128_ps256, _mm256_castps256_ps128,
            };
            let lanes = store(_mm256_castps128_ps256(_mm_castpd_ps(_mm_setr_pd(low, high))));
            let Some(h) = lanes.first_chunk::<H>() else {
                return (0.0, 0.0);
            };
            // Inputs below `FLUSH_BELOW` read as +0 (the caller's state is flushed by the caller).
            let mut copy = [0.0; I];
            let x = crate::flush::on_entry(x, &mut copy);
            let state = chunk_step::<I, H, A>(w_xh, w_hh, b, x, h);
            let out = _mm_castps_pd(_mm256_castps256_ps128(state));
            (_mm_cvtsd_f64(out), _mm_cvtsd_f64(_mm_unpackhi_pd(out, out)))
        }
    };
}

/// A proof that the CPU has a backend's features, and the safe entry points into its kernel.
macro_rules! token {
    ($(#[$doc:meta])* $name:ident, $module:ident, $detect:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(super) struct $name(());

        impl $name {
            /// The token, if the CPU has the features (asked of the standard library once, the
            /// answer kept in a static; a build that enables them answers at compile time).
            #[inline]
            pub(super) fn detect() -> Option<Self> {
                $detect.then_some(Self(()))
            }

            /// `step` on this CPU.
            #[inline]
            pub(super) fn step<
                const I: usize,
                const H: usize,
                A: crate::Activation,
                const BACKWARD: bool,
            >(
                self,
                w_xh: &[[f32; H]; I],
                w_hh: &[[f32; H]; H],
                b: &[f32; H],
                x: &[f32; I],
                h: &[f32; H],
            ) -> [f32; H] {
                // SAFETY: `self` exists only if the CPU has the features `step` enables; so for
                // every call below.
                unsafe { $module::step::<I, H, A, BACKWARD>(w_xh, w_hh, b, x, h) }
            }

            /// `step_packed` on this CPU.
            #[inline]
            pub(super) fn step_packed<const I: usize, const H: usize, A: crate::Activation>(
                self,
                w_xh: &[[f32; H]; I],
                w_hh: &[[f32; H]; H],
                b: &[f32; H],
                x: &[f32; I],
                h: (f64, f64),
            ) -> (f64, f64) {
                // SAFETY: `self` exists only if the CPU has the features `step_packed` enables.
                unsafe { $module::step_packed::<I, H, A>(w_xh, w_hh, b, x, h) }
            }

            /// `run` on this CPU.
            #[inline]
            pub(super) fn run<
                const I: usize,
                const H: usize,
                A: crate::Activation,
                Y,
                F: FnMut(&[f32; H], Y),
            >(
                self,
                w: (&[[f32; H]; I], &[[f32; H]; H], &[f32; H]),
                xs: &[nalgebra::SVector<f32, I>],
                h: &mut [f32; H],
                outs: impl Iterator<Item = Y>,
                each: F,
            ) {
                // SAFETY: as in `step`.
                unsafe { $module::run::<I, H, A, Y, F>(w, xs, h, outs, each) }
            }

            /// `bank_step` on this CPU.
            #[inline]
            pub(super) fn bank_step<
                const I: usize,
                const H: usize,
                const N: usize,
                A: crate::Activation,
                X: crate::kernel::BankInput<I, N>,
            >(
                self,
                w_xh: &[[f32; H]; I],
                w_hh: &[[f32; H]; H],
                b: &[f32; H],
                x: &X,
                h: &[[f32; N]; H],
                out: &mut [[f32; N]; H],
            ) {
                // SAFETY: as in `step`.
                unsafe { $module::bank_step::<I, H, N, A, X>(w_xh, w_hh, b, x, h, out) }
            }

            /// `transpose_inputs` on this CPU.
            #[inline]
            pub(super) fn transpose_inputs<const I: usize, const N: usize>(
                self,
                xs: &[nalgebra::SVector<f32, I>; N],
                out: &mut [[f32; N]; I],
            ) {
                // SAFETY: as in `step`.
                unsafe { $module::transpose_inputs::<I, N>(xs, out) }
            }

            /// `project` on this CPU.
            #[inline]
            pub(super) fn project<const I: usize, const H: usize, const T: usize>(
                self,
                w_xh: &[[f32; H]; I],
                b: &[f32; H],
                xs: &[&[f32; I]; T],
                out: &mut [[f32; H]; T],
            ) {
                // SAFETY: as in `step`.
                unsafe { $module::project::<I, H, T>(w_xh, b, xs, out) }
            }

            /// `tanh_in_place` on this CPU.
            #[inline]
            pub(super) fn tanh_in_place(self, values: &mut [f32]) {
                // SAFETY: as in `step`.
                unsafe { $module::tanh_in_place(values) }
            }

            /// `tanh_into` on this CPU.
            #[inline]
            pub(super) fn tanh_into(self, input: &[f32], output: &mut [f32]) {
                // SAFETY: as in `step`.
                unsafe { $module::tanh_into(input, output) }
            }

            /// `floor_chain` on this CPU.
            #[inline]
            pub(super) fn floor_chain(self, steps: usize, fmas: usize, adds: usize, seed: f32) -> f32 {
                // SAFETY: as in `step`.
                unsafe { $module::floor_chain(steps, fmas, adds, seed) }
            }

            /// `fma_burst` on this CPU.
            #[inline]
            pub(super) fn fma_burst(self, iterations: usize, seed: f32) -> f32 {
                // SAFETY: as in `step`.
                unsafe { $module::fma_burst(iterations, seed) }
            }

            /// `stream_sum` on this CPU.
            #[inline]
            pub(super) fn stream_sum(self, values: &[f32]) -> f32 {
                // SAFETY: as in `step`.
                unsafe { $module::stream_sum(values) }
            }
        }
    };
}

/// Whether the running CPU has every feature in `features`: the standard library's run-time
/// detection, asked once and kept in `answer` (0 not yet asked, 1 no, 2 yes), so that a step
/// pays one load for it. Without `std` there is no run-time detection: only the features the
/// build enables count (the `cfg!` beside each call).
#[cfg(feature = "std")]
#[inline]
fn detected(answer: &core::sync::atomic::AtomicU8, features: &[&str]) -> bool {
    use core::sync::atomic::Ordering::Relaxed;
    match answer.load(Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let has = ask(features);
            answer.store(if has { 2 } else { 1 }, Relaxed);
            has
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
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512vl" => std::arch::is_x86_feature_detected!("avx512vl"),
        _ => false,
    })
}

#[cfg(not(feature = "std"))]
fn detected(_answer: &core::sync::atomic::AtomicU8, _features: &[&str]) -> bool {
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

mod avx2 {
    backend!("avx2,fma", 12, 4, 1);
}

mod avx512 {
    backend!("avx2,fma,avx512f,avx512vl", 16, 8, 3);
}

token!(
    /// Proof that the running CPU has AVX2 and FMA.
    Avx2Fma,
    avx2,
    cfg!(all(target_feature = "avx2", target_feature = "fma")) || {
        static ANSWER: AtomicU8 = AtomicU8::new(0);
        detected(&ANSWER, &["avx2", "fma"])
    }
);

token!(
    /// Proof that the running CPU has AVX2, FMA, AVX-512F and AVX-512VL.
    Avx512Vl,
    avx512,
    cfg!(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "avx512f",
        target_feature = "avx512vl"
    )) || {
        static ANSWER: AtomicU8 = AtomicU8::new(0);
        detected(&ANSWER, &["avx2", "fma", "avx512f", "avx512vl"])
    }
);
