//! The input projections of a block of steps, hoisted out of the recurrence:
//!
//! ```text
//! out[t] = W_xh·xs[t] + b      for t < T
//! ```
//!
//! Each chunk of a weight column is loaded once for all `T` inputs, and each broadcast input
//! used for a block of chunks: `T·B` independent accumulators.

#![allow(
    clippy::needless_range_loop,
    reason = "the accumulators are indexed by partial sum, chunk and unit, as the sums are written"
)]

use super::simd::{Element, Kernel, Simd};
use super::tiling::chunk_start;

/// The input projections of `T` steps, in blocks of `PROJECT_BLOCK` chunks (then single
/// chunks).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn project<S: Simd, E: Element, const I: usize, const H: usize, const T: usize>(
    s: S,
    w_xh: &[[E; H]; I],
    b: &[f32; H],
    xs: &[&[f32; I]; T],
    out: &mut [[f32; H]; T],
) {
    // The inputs flushed once, here, not in each block.
    let flushed: [[f32; I]; T] = core::array::from_fn(|t| crate::flush::flushed(xs[t]));
    let xs: &[&[f32; I]; T] = &core::array::from_fn(|t| &flushed[t]);
    let chunks = H.div_ceil(S::LANES);
    let mut first = 0;
    while first + S::PROJECT_BLOCK <= chunks {
        match S::PROJECT_BLOCK {
            1 => project_block::<S, E, I, H, T, 1>(s, (w_xh, b), xs, first, out),
            2 => project_block::<S, E, I, H, T, 2>(s, (w_xh, b), xs, first, out),
            _ => project_block::<S, E, I, H, T, 3>(s, (w_xh, b), xs, first, out),
        }
        first += S::PROJECT_BLOCK;
    }
    while first < chunks {
        project_block::<S, E, I, H, T, 1>(s, (w_xh, b), xs, first, out);
        first += 1;
    }
}

/// `project` for the `B` chunks from chunk `first`: `T·B` accumulators, each weight loaded
/// once for the `T` inputs and each broadcast input used for the `B` chunks.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn project_block<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const T: usize,
    const B: usize,
>(
    s: S,
    (w_xh, b): (&[[E; H]; I], &[f32; H]),
    xs: &[&[f32; I]; T],
    first: usize,
    out: &mut [[f32; H]; T],
) {
    let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, first + c, S::LANES));
    let mut acc = [[s.splat(0.0); B]; T];
    for t in 0..T {
        for c in 0..B {
            acc[t][c] = s.load(b, starts[c]);
        }
    }
    if E::PAIRED {
        // Two columns per load, each column's sums in the order of the f32 loop below.
        let (pairs, lone) = w_xh.as_chunks::<2>();
        for (m, pair) in pairs.iter().enumerate() {
            let mut w = [[s.splat(0.0); B]; 2];
            for c in 0..B {
                [w[0][c], w[1][c]] = E::load_pair(s, pair, starts[c]);
            }
            for (q, w) in w.iter().enumerate() {
                add_column::<S, I, T, B>(s, &mut acc, w, xs, 2 * m + q);
            }
        }
        for column in lone {
            let w: [S::V; B] = core::array::from_fn(|c| E::load(s, column, starts[c]));
            add_column::<S, I, T, B>(s, &mut acc, &w, xs, I - 1);
        }
    } else {
        for (k, column) in w_xh.iter().enumerate() {
            let mut w = [s.splat(0.0); B];
            for c in 0..B {
                w[c] = E::load(s, column, starts[c]);
            }
            for t in 0..T {
                let x = s.splat(xs[t].get(k).copied().unwrap_or(0.0));
                for c in 0..B {
                    acc[t][c] = s.madd(x, w[c], acc[t][c]);
                }
            }
        }
    }
    for t in 0..T {
        for c in 0..B {
            s.store(acc[t][c], &mut out[t], starts[c]);
        }
    }
}

/// Adds `x_t[k] · w` (the `B` chunks of column `k`) into each step's accumulators.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn add_column<S: Simd, const I: usize, const T: usize, const B: usize>(
    s: S,
    acc: &mut [[S::V; B]; T],
    w: &[S::V; B],
    xs: &[&[f32; I]; T],
    k: usize,
) {
    for t in 0..T {
        let x = s.splat(xs[t].get(k).copied().unwrap_or(0.0));
        for c in 0..B {
            acc[t][c] = s.madd(x, w[c], acc[t][c]);
        }
    }
}

/// The input projections of `T` steps, `out[t] = W_xh·xs[t] + b`.
pub(crate) struct Project<'a, const I: usize, const H: usize, const T: usize, E = f32> {
    pub(crate) w_xh: &'a [[E; H]; I],
    pub(crate) b: &'a [f32; H],
    pub(crate) xs: &'a [&'a [f32; I]; T],
    pub(crate) out: &'a mut [[f32; H]; T],
}

impl<S: Simd, E: Element, const I: usize, const H: usize, const T: usize> Kernel<S>
    for Project<'_, I, H, T, E>
{
    type Output = ();

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) {
        project::<S, E, I, H, T>(s, self.w_xh, self.b, self.xs, self.out);
    }
}
