//! The portable backend: `wide::f32x8` (SSE2 pairs on a default x86-64 build, NEON on aarch64,
//! AVX when the build enables it), multiply and add rounded separately so that the results are
//! the same bits on every machine.

use wide::f32x8;

type V = f32x8;

/// Accumulator chains in the throughput-bound sizes (see `kernel::partial_sums`).
const CHAINS: usize = 8;

/// The largest block, in 8-unit chunks.
const BLOCK: usize = 8;

/// Chunks per block of the input projections.
const PROJECT_BLOCK: usize = 1;

#[inline(always)]
fn splat(v: f32) -> V {
    f32x8::splat(v)
}

#[inline(always)]
fn load(lanes: &[f32; 8]) -> V {
    f32x8::new(*lanes)
}

#[inline(always)]
fn store(v: V) -> [f32; 8] {
    v.to_array()
}

/// `a·b + c`, two roundings: never fused, whatever the target.
#[inline(always)]
fn madd(a: V, b: V, c: V) -> V {
    a * b + c
}

#[inline(always)]
fn add(a: V, b: V) -> V {
    a + b
}

#[inline(always)]
fn tanh(v: V) -> V {
    crate::tanh::fast_tanh_x8(v)
}

/// `max(v, 0)` with NaN kept: `v < 0` is false for NaN.
#[inline(always)]
fn relu(v: V) -> V {
    v.simd_lt(f32x8::ZERO).select(f32x8::ZERO, v)
}

/// `y`, with +0 in the lanes where `z` is smaller than
/// [`FLUSH_BELOW`](crate::kernel::FLUSH_BELOW) in magnitude (NaN kept: the comparison is false
/// for it).
#[inline(always)]
fn flush_where_tiny(z: V, y: V) -> V {
    z.abs()
        .simd_lt(f32x8::splat(crate::kernel::FLUSH_BELOW))
        .select(f32x8::ZERO, y)
}

/// Lane numbers for [`permute`].
type Order = [u32; 8];

#[inline(always)]
fn lane_order(order: &[u32; 8]) -> Order {
    *order
}

/// Lane `l` is lane `order[l]` of `v` (every number below 8).
#[inline(always)]
fn permute(v: V, order: Order) -> V {
    let lanes = v.to_array();
    f32x8::new(order.map(|i| lanes.get(i as usize).copied().unwrap_or(0.0)))
}

/// Lane `l` from `a` where lane `l` of `mask` has its sign bit set, else from `b`.
#[inline(always)]
fn select(mask: V, a: V, b: V) -> V {
    let (mask, a, b) = (mask.to_array(), a.to_array(), b.to_array());
    f32x8::new(core::array::from_fn(|l| {
        if mask[l].is_sign_negative() {
            a[l]
        } else {
            b[l]
        }
    }))
}

/// The 8×8 block whose rows are `rows`, transposed: lane `l` of column `j` is lane `j` of row
/// `l`.
#[inline(always)]
fn transpose8(rows: [V; 8]) -> [V; 8] {
    let rows = rows.map(f32x8::to_array);
    core::array::from_fn(|j| f32x8::new(core::array::from_fn(|l| rows[l][j])))
}

// Forced inline where the build optimises. An unoptimised build gives every inlined call its
// own stack slots, so forcing it there put every size's arm of the kernel into one frame: a
// debug build's `Backend::run` at (128, 256) took 1 MiB of stack and `step_arrays` 452 KiB.
crate::kernel::define_kernel!(
    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
);
