//! The portable backend: `wide::f32x8` (SSE2 pairs on a default x86-64 build, NEON on aarch64,
//! AVX when the build enables it), multiply and add rounded separately so that the results are
//! the same bits on every machine.

use wide::{f32x8, i32x8};

use super::simd::{BankTanhPass, Kernel, Shuffle8, Simd, padded, put, window};
use crate::F16;
use crate::bf16::{PairWord, widen, widen_pair};
use crate::flush::FLUSH_LANE_BITS;

/// The portable backend's operations: safe `wide` vectors, which any CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Portable;

type V = f32x8;

/// `kernel` on the portable backend. Where the x86 backends exist it is a call, as theirs are:
/// inlined, the whole portable kernel went into every dispatching function, which the
/// compiler then left out of line in the caller's loop (a call, and the state copied through
/// memory, whichever backend ran). Elsewhere it is the only backend, and inlined.
#[cfg_attr(target_arch = "x86_64", inline(never))]
#[cfg_attr(not(target_arch = "x86_64"), inline)]
pub(super) fn run<K: Kernel<Portable>>(kernel: K) -> K::Output {
    kernel.run(Portable)
}

impl Simd for Portable {
    type V = V;
    type Lanes = ();

    const LANES: usize = 8;
    const PERMUTE_STATE: bool = false;
    const CHAINS: usize = 8;
    const SMALL_BLOCK_CHAINS: [usize; 3] = [8; 3];
    const BLOCK: usize = 8;
    const WIDE_BLOCK: usize = 8;
    const PROJECT_BLOCK: usize = 1;
    // Blocks of 8 chunks only: kept a loop, a step of 64 units and more ran faster, while the
    // sequences of 2 chunks (16 units) ran slower and the steps of 4 (32 units) no faster.
    const SWEEP_LOOP_FROM: usize = 8;
    // Measured slower with groups of 16 columns (a step of 128 units took 1.35× the time).
    const GROUP_COLUMNS: usize = 0;
    // The pass above 8 units, measured on Zen 2: faster at 16 units and 1 input, slower from 32
    // units and 16 inputs.
    const BANK_TANH_PASS: BankTanhPass = BankTanhPass::Never;

    #[inline(always)]
    fn splat(self, value: f32) -> V {
        f32x8::splat(value)
    }

    #[inline(always)]
    fn load<const L: usize>(self, row: &[f32; L], start: usize) -> V {
        if L < 8 {
            f32x8::new(padded(row))
        } else {
            f32x8::new(*window(row, start).unwrap_or(&[0.0; 8]))
        }
    }

    #[inline(always)]
    fn load_half<const L: usize>(self, row: &[F16; L], start: usize) -> V {
        let lanes: [F16; 8] = if L < 8 {
            padded(row)
        } else {
            *window(row, start).unwrap_or(&[F16::from_bits(0); 8])
        };
        f32x8::new(lanes.map(F16::to_f32))
    }

    #[inline(always)]
    fn load_pair<const L: usize>(self, pair: &[[PairWord; L]; 2], start: usize) -> [V; 2] {
        let flat = pair.as_flattened();
        let words: [PairWord; 16] = if L < 8 {
            padded(flat)
        } else {
            flat.get(2 * start..)
                .and_then(<[PairWord]>::first_chunk::<16>)
                .copied()
                .unwrap_or([PairWord(0); 16])
        };
        let lanes: [[f32; 2]; 8] =
            core::array::from_fn(|j| widen_pair(words[2 * j], words[2 * j + 1]));
        [
            f32x8::new(lanes.map(|[even, _]| even)),
            f32x8::new(lanes.map(|[_, odd]| odd)),
        ]
    }

    #[inline(always)]
    fn load_bf16<const L: usize>(self, row: &[PairWord; L], start: usize) -> V {
        let lanes: [PairWord; 8] = if L < 8 {
            padded(row)
        } else {
            *window(row, start).unwrap_or(&[PairWord(0); 8])
        };
        f32x8::new(lanes.map(|w| widen(w.0)))
    }

    #[inline(always)]
    fn store<const L: usize>(self, v: V, row: &mut [f32; L], start: usize) {
        put(row, start, v.to_array());
    }

    #[inline(always)]
    fn load_slice(self, values: &[f32]) -> V {
        f32x8::new(match values.first_chunk::<8>() {
            Some(lanes) => *lanes,
            None => padded(values),
        })
    }

    #[inline(always)]
    fn store_slice(self, v: V, out: &mut [f32]) {
        for (value, lane) in out.iter_mut().zip(v.to_array()) {
            *value = lane;
        }
    }

    #[inline(always)]
    fn deinterleave<const I: usize>(self, values: &[f32], k: usize) -> V {
        super::slices::deinterleave8::<Self, I>(self, values, k)
    }

    /// `a·b + c`, two roundings: never fused, whatever the target.
    #[inline(always)]
    fn madd(self, a: V, b: V, c: V) -> V {
        a * b + c
    }

    #[inline(always)]
    fn add(self, a: V, b: V) -> V {
        a + b
    }

    #[inline(always)]
    fn div(self, a: V, b: V) -> V {
        a / b
    }

    #[inline(always)]
    fn tanh(self, v: V) -> V {
        crate::tanh::fast_tanh_x8(v)
    }

    /// `max(v, 0)` with NaN kept: `v < 0` is false for NaN.
    #[inline(always)]
    fn relu(self, v: V) -> V {
        v.simd_lt(f32x8::ZERO).select(f32x8::ZERO, v)
    }

    /// NaN kept: the comparison is false for it.
    #[inline(always)]
    fn flush_where_tiny(self, z: V, y: V) -> V {
        z.abs()
            .simd_lt(f32x8::splat(crate::FLUSH_BELOW))
            .select(f32x8::ZERO, y)
    }

    #[inline(always)]
    fn flush_input(self, v: V) -> V {
        let magnitude = wide::bytemuck::cast::<V, i32x8>(v) & i32x8::splat(i32::MAX);
        let tiny: V = wide::bytemuck::cast(magnitude.simd_lt(i32x8::splat(FLUSH_LANE_BITS)));
        tiny.select(f32x8::ZERO, v)
    }

    #[inline(always)]
    fn needs_flush(self, v: V) -> bool {
        crate::flush::needs_flush(&v.to_array())
    }

    /// Not called: see [`Simd::PERMUTE_STATE`].
    #[inline(always)]
    fn lanes(self) {}

    #[inline(always)]
    fn lane(self, v: V, (): &(), j: usize) -> V {
        self.splat(v.to_array().get(j).copied().unwrap_or(0.0))
    }
}

impl Shuffle8 for Portable {
    type Order = [u32; 8];

    #[inline(always)]
    fn load8(self, lanes: &[f32; 8]) -> V {
        f32x8::new(*lanes)
    }

    #[inline(always)]
    fn store8(self, v: V) -> [f32; 8] {
        v.to_array()
    }

    #[inline(always)]
    fn lane_order(self, order: &[u32; 8]) -> [u32; 8] {
        *order
    }

    #[inline(always)]
    fn permute(self, v: V, order: [u32; 8]) -> V {
        let lanes = v.to_array();
        f32x8::new(order.map(|i| lanes.get(i as usize).copied().unwrap_or(0.0)))
    }

    #[inline(always)]
    fn select(self, mask: V, a: V, b: V) -> V {
        let (mask, a, b) = (mask.to_array(), a.to_array(), b.to_array());
        f32x8::new(core::array::from_fn(|l| {
            if mask[l].is_sign_negative() {
                a[l]
            } else {
                b[l]
            }
        }))
    }

    #[inline(always)]
    fn transpose8(self, rows: [&[f32; 8]; 8]) -> [V; 8] {
        core::array::from_fn(|j| f32x8::new(core::array::from_fn(|l| rows[l][j])))
    }
}
