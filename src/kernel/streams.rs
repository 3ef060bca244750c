//! One step of `N` independent streams of one cell, a stream per lane:
//!
//! ```text
//! out[j][s] = A(W_xh·x[:, s] + W_hh·h[:, s] + b)[j]      for every stream s
//! ```
//!
//! States and inputs are unit-major (`h[j]` holds unit `j` of every stream), so that a vector
//! holds one unit of `LANES` streams and each weight is broadcast once for them all: the same
//! sums as a single stream's step, in the same order of columns, with no partial sums.

#![allow(
    clippy::needless_range_loop,
    reason = "the accumulators are indexed by partial sum, chunk and unit, as the sums are written"
)]

use core::marker::PhantomData;
use core::ops::Range;

use nalgebra::SVector;

use super::simd::{BankTanhPass, Element, Kernel, Simd};
use super::step::Weights;
use super::step::activate;
use super::tiling::chunk_start;
use crate::activation::{Activation, Kind as Nonlinearity};

/// The inputs of a bank step, as the kernel reads them: input `k` of a vector's streams at a
/// time. A caller's inputs go through [`Flushing`] unless the bank flushed them already (as it
/// transposed or checked them); a lower layer's states are flushed already.
pub(crate) trait BankInput<const I: usize, const N: usize> {
    /// Input `k` of streams `start..start + LANES`, zeros past the last stream.
    fn lanes<S: Simd>(&self, s: S, k: usize, start: usize) -> S::V;
}

/// Unit-major, `x[k][s]`: contiguous values.
impl<const I: usize, const N: usize> BankInput<I, N> for [[f32; N]; I] {
    #[inline(always)]
    fn lanes<S: Simd>(&self, s: S, k: usize, start: usize) -> S::V {
        self.get(k).map_or(s.splat(0.0), |row| s.load(row, start))
    }
}

/// Stream-major, one vector per stream: the streams' consecutive values deinterleaved.
impl<const I: usize, const N: usize> BankInput<I, N> for [SVector<f32, I>; N] {
    #[inline(always)]
    fn lanes<S: Simd>(&self, s: S, k: usize, start: usize) -> S::V {
        let values = stream_values(self);
        s.deinterleave::<I>(values.get(start * I..).unwrap_or(&[]), k)
    }
}

/// The `N·I` values of `N` streams' input vectors, stream by stream, as they are in memory.
#[inline(always)]
pub(crate) fn stream_values<const I: usize, const N: usize>(xs: &[SVector<f32, I>; N]) -> &[f32] {
    // `SVector<f32, I>` is `I` f32s, aligned as one, so the cast cannot fail.
    const {
        assert!(size_of::<SVector<f32, I>>() == I * size_of::<f32>());
        assert!(align_of::<SVector<f32, I>>() == align_of::<f32>());
    }
    bytemuck::try_cast_slice::<_, f32>(xs.as_slice()).unwrap_or(&[])
}

/// Inputs as the caller gave them, read through the flush: a value below
/// [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude reads as +0, as `flush` would have written it.
///
/// Flushed as they are loaded, in the registers that hold them, compared as integers (a
/// caller's value may be subnormal). For a first layer of one block of units (at most 8),
/// which loads each input once, given unit-major or gathered from the streams' vectors: a pass
/// checking them all before the step would read every input once more. With more blocks the
/// kernel would flush each input once per block, so the bank checks them first instead. Inputs
/// the bank transposes are flushed by the transposition, whatever the number of blocks.
pub(crate) struct Flushing<'a, X>(pub(crate) &'a X);

impl<const I: usize, const N: usize, X: BankInput<I, N>> BankInput<I, N> for Flushing<'_, X> {
    #[inline(always)]
    fn lanes<S: Simd>(&self, s: S, k: usize, start: usize) -> S::V {
        s.flush_input(self.0.lanes(s, k, start))
    }
}

/// `C` chunks of streams of a bank, starting at the streams in `starts`, hidden units
/// `first..first + J`: the same sum as `step`'s, each lane a stream, each weight broadcast once
/// and used for all `C` chunks (`C·J` independent accumulators); stored activated, or as sums
/// for the step's activation pass ([`Simd::BANK_TANH_PASS`]).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn bank_block<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const N: usize,
    const J: usize,
    const C: usize,
    A: Activation,
    X: BankInput<I, N>,
>(
    s: S,
    (w_xh, w_hh, b): Weights<'_, I, H, E>,
    (x, h): (&X, &[[f32; N]; H]),
    (starts, first): (&[usize; C], usize),
    out: &mut [[f32; N]; H],
) {
    // Weight `first + j` of column `k` of `columns` (a paired matrix's through its pair).
    let weights = |columns: &[[E; H]], k: usize, column: &[E; H]| -> [S::V; J] {
        core::array::from_fn(|j| {
            s.splat(if E::PAIRED {
                E::weight(columns, k, first + j)
            } else {
                column.get(first + j).map_or(0.0, |w| w.value())
            })
        })
    };
    let bias: [S::V; J] =
        core::array::from_fn(|j| s.splat(b.get(first + j).copied().unwrap_or(0.0)));
    let mut acc: [[S::V; J]; C] = [bias; C];
    for (k, column) in w_xh.iter().enumerate() {
        let w = weights(w_xh, k, column);
        for c in 0..C {
            let v = x.lanes(s, k, starts[c]);
            for j in 0..J {
                acc[c][j] = s.madd(w[j], v, acc[c][j]);
            }
        }
    }
    for (k, (column, row)) in w_hh.iter().zip(h).enumerate() {
        let w = weights(w_hh, k, column);
        for c in 0..C {
            let v = s.load(row, starts[c]);
            for j in 0..J {
                acc[c][j] = s.madd(w[j], v, acc[c][j]);
            }
        }
    }
    for c in 0..C {
        for j in 0..J {
            // Computed whether or not the unit exists, outside the branch, so that the block's
            // activations interleave (where the block activates its sums).
            let y = if tanh_pass::<S, A, H, N>() {
                acc[c][j]
            } else {
                activate::<S, A>(s, acc[c][j])
            };
            if let Some(row) = out.get_mut(first + j) {
                s.store(y, row, starts[c]);
            }
        }
    }
}

/// Units `first..first + J` of the streams of the chunks `chunks`: in groups of `C`, the
/// chunks left over in groups of `HALF`, then one at a time.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn bank_units<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const N: usize,
    const J: usize,
    const C: usize,
    const HALF: usize,
    A: Activation,
    X: BankInput<I, N>,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    xh: (&X, &[[f32; N]; H]),
    (first, chunks): (usize, Range<usize>),
    out: &mut [[f32; N]; H],
) {
    let start = |k: usize| chunk_start(N, k, S::LANES);
    // The weights reached through a reference the compiler cannot follow from one group of
    // chunks to the next: otherwise it hoists every broadcast weight out of the loop, keeps
    // them all on the stack and reloads them (with the other copies this makes, four times the
    // stack accesses in the small sizes' kernels), which made the small banks slower.
    // Each reference through the barrier on its own: as one tuple the compiler stored two of
    // them with one 16-byte vector store and reloaded them as 8-byte integers, a store the
    // loads could not be forwarded from, on the way to every weight load.
    let (w_xh, w_hh, b) = w;
    let weights = || {
        (
            core::hint::black_box(w_xh),
            core::hint::black_box(w_hh),
            core::hint::black_box(b),
        )
    };
    let (mut k, chunks) = (chunks.start, chunks.end);
    while k + C <= chunks {
        let starts: [usize; C] = core::array::from_fn(|c| start(k + c));
        bank_block::<S, E, I, H, N, J, C, A, X>(s, weights(), xh, (&starts, first), out);
        k += C;
    }
    while k + HALF <= chunks {
        let starts: [usize; HALF] = core::array::from_fn(|c| start(k + c));
        bank_block::<S, E, I, H, N, J, HALF, A, X>(s, weights(), xh, (&starts, first), out);
        k += HALF;
    }
    while k < chunks {
        bank_block::<S, E, I, H, N, J, 1, A, X>(s, weights(), xh, (&[start(k)], first), out);
        k += 1;
    }
}

/// `out[j][s] = A(W_xh·x[:, s] + W_hh·h[:, s] + b)[j]` for every stream `s`, in blocks of up
/// to 8 units whose accumulators, with those of up to 4 chunks of streams, stay in registers;
/// 5 units over each pair of chunks of streams where the backend says so
/// ([`Simd::BANK_FIVES`]); activated by each block, or in a pass after them all
/// ([`Simd::BANK_TANH_PASS`]).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn bank_step<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const N: usize,
    A: Activation,
    X,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    x: &X,
    h: &[[f32; N]; H],
    out: &mut [[f32; N]; H],
) where
    X: BankInput<I, N>,
{
    if N == 0 {
        return;
    }
    let chunks = N.div_ceil(S::LANES);
    // Blocks of 5 units over the pairs of chunks of streams. A chunk left over takes blocks of
    // 8 units, as on the other backends: 5 units over one chunk would be 5 chains of
    // multiply-adds, where 8 units make 8.
    let paired = if S::BANK_FIVES && H > 8 && !s.bank_pairs_chunks(H) {
        chunks - chunks % 2
    } else {
        0
    };
    let mut first = 0;
    while paired > 0 && H - first > 4 {
        bank_units::<S, E, I, H, N, 5, 2, 1, A, X>(s, w, (x, h), (first, 0..paired), out);
        first += 5;
    }
    if paired > 0 && first < H {
        bank_eights::<S, E, I, H, N, A, X>(s, w, (x, h), (first, 0..paired), out);
    }
    if paired < chunks {
        bank_eights::<S, E, I, H, N, A, X>(s, w, (x, h), (0, paired..chunks), out);
    }
    if tanh_pass::<S, A, H, N>() {
        // Each value activated once: a row's chunks of streams overlap where `N` is not a
        // multiple of the lanes; the chunks of the flattened state do not.
        let mut sums = out.as_flattened_mut().chunks_exact_mut(S::LANES);
        for lanes in &mut sums {
            s.store_slice(activate::<S, A>(s, s.load_slice(lanes)), lanes);
        }
        let tail = sums.into_remainder();
        if !tail.is_empty() {
            s.store_slice(activate::<S, A>(s, s.load_slice(tail)), tail);
        }
    }
}

/// Whether a bank step of `N` streams of `H` units activates its sums in a pass after its sweeps
/// ([`Simd::BANK_TANH_PASS`]), its blocks storing the sums as they are. Tanh only: a ReLU's two
/// operations do not hold the next block's sweep back.
const fn tanh_pass<S: Simd, A: Activation, const H: usize, const N: usize>() -> bool {
    matches!(A::KIND, Nonlinearity::Tanh)
        && match S::BANK_TANH_PASS {
            BankTanhPass::Never => false,
            BankTanhPass::AboveEightUnits => H > 8,
            BankTanhPass::AboveFourChunks => N > 4 * S::LANES,
        }
}

/// Units `first..H` of the streams of the chunks `chunks`, in blocks of up to 8 units.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn bank_eights<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const N: usize,
    A: Activation,
    X: BankInput<I, N>,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    xh: (&X, &[[f32; N]; H]),
    (mut first, chunks): (usize, Range<usize>),
    out: &mut [[f32; N]; H],
) {
    // Chunks of streams per 7- or 8-unit block: 2 or 1, as the backend says.
    let wide = s.bank_pairs_chunks(H);
    while first < H {
        let at = (first, chunks.clone());
        // J units × C chunks of accumulators: about 8 independent chains, 16 for the 8-unit
        // blocks with 32 vector registers; the chunks left over in groups of `HALF`, then one
        // at a time.
        match (H - first, wide) {
            (1, _) => bank_units::<S, E, I, H, N, 1, 4, 2, A, X>(s, w, xh, at, out),
            (2, _) => bank_units::<S, E, I, H, N, 2, 4, 2, A, X>(s, w, xh, at, out),
            (3, _) => bank_units::<S, E, I, H, N, 3, 3, 2, A, X>(s, w, xh, at, out),
            (4, _) => bank_units::<S, E, I, H, N, 4, 2, 1, A, X>(s, w, xh, at, out),
            (5, _) => bank_units::<S, E, I, H, N, 5, 2, 1, A, X>(s, w, xh, at, out),
            (6, _) => bank_units::<S, E, I, H, N, 6, 2, 1, A, X>(s, w, xh, at, out),
            (7, true) => bank_units::<S, E, I, H, N, 7, 2, 1, A, X>(s, w, xh, at, out),
            (7, false) => bank_units::<S, E, I, H, N, 7, 1, 1, A, X>(s, w, xh, at, out),
            (_, true) => bank_units::<S, E, I, H, N, 8, 2, 1, A, X>(s, w, xh, at, out),
            (_, false) => bank_units::<S, E, I, H, N, 8, 1, 1, A, X>(s, w, xh, at, out),
        }
        first += 8;
    }
}

/// One step of `N` streams, unit-major.
pub(crate) struct BankStep<'a, const I: usize, const H: usize, const N: usize, A, X, E = f32> {
    pub(crate) w: Weights<'a, I, H, E>,
    pub(crate) x: &'a X,
    pub(crate) h: &'a [[f32; N]; H],
    pub(crate) out: &'a mut [[f32; N]; H],
    pub(crate) activation: PhantomData<A>,
}

impl<S, E, const I: usize, const H: usize, const N: usize, A, X> Kernel<S>
    for BankStep<'_, I, H, N, A, X, E>
where
    S: Simd,
    E: Element,
    A: Activation,
    X: BankInput<I, N>,
{
    type Output = ();

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) {
        bank_step::<S, E, I, H, N, A, X>(s, self.w, self.x, self.h, self.out);
    }
}
