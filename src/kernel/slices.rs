//! Work over slices: the fast tanh of every value, the check for values to flush, and a bank's
//! inputs transposed from one vector per stream to unit-major.

use nalgebra::SVector;

use super::simd::{Kernel, Shuffle8, Simd};
use super::tiling::{Gather, chunk_start};

/// Every value replaced by its fast tanh, a vector at a time (the tail padded).
pub(crate) struct TanhInPlace<'a>(pub(crate) &'a mut [f32]);

impl<S: Simd> Kernel<S> for TanhInPlace<'_> {
    type Output = ();

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) {
        let mut chunks = self.0.chunks_exact_mut(S::LANES);
        for lanes in &mut chunks {
            s.store_slice(s.tanh(s.load_slice(lanes)), lanes);
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            s.store_slice(s.tanh(s.load_slice(tail)), tail);
        }
    }
}

/// Whether [`flush`](crate::flush) would change a value of the slice (see
/// [`crate::flush::needs_flush`]), a vector at a time: a bank's inputs, given unit-major, checked
/// before a step reads them once per block of units.
pub(crate) struct NeedsFlush<'a>(pub(crate) &'a [f32]);

impl<S: Simd> Kernel<S> for NeedsFlush<'_> {
    type Output = bool;

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) -> bool {
        let mut chunks = self.0.chunks_exact(S::LANES);
        // Or-ed without short-circuit, as the scalar check: the inputs rarely need a flush.
        let any = (&mut chunks).fold(false, |any, lanes| any | s.needs_flush(s.load_slice(lanes)));
        any | crate::flush::needs_flush(chunks.remainder())
    }
}

/// `output[i] = tanh(input[i])` for the first `min(len)` values, a vector at a time.
pub(crate) struct TanhInto<'a> {
    pub(crate) input: &'a [f32],
    pub(crate) output: &'a mut [f32],
}

impl<S: Simd> Kernel<S> for TanhInto<'_> {
    type Output = ();

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) {
        let n = self.input.len().min(self.output.len());
        let (input, output) = (&self.input[..n], &mut self.output[..n]);
        let mut body_in = input.chunks_exact(S::LANES);
        let mut body_out = output.chunks_exact_mut(S::LANES);
        for (src, dst) in (&mut body_in).zip(&mut body_out) {
            s.store_slice(s.tanh(s.load_slice(src)), dst);
        }
        let (tail_in, tail_out) = (body_in.remainder(), body_out.into_remainder());
        if !tail_in.is_empty() {
            s.store_slice(s.tanh(s.load_slice(tail_in)), tail_out);
        }
    }
}

/// `out[k][s] = flush(xs[s][k])`: a bank's inputs, one vector per stream, transposed to
/// unit-major and flushed as a step reads them (see [`crate::flush`]) on their way, 8 streams
/// at a time (the last 8 overlapping their neighbours when 8 does not divide `N`, which writes
/// the same values again):
/// - with 8 inputs or more, in tiles of 8 inputs (`transpose8`), the last tile overlapping
///   likewise;
/// - with fewer, from the `8·I` consecutive values of the 8 streams, loaded as `I` vectors,
///   each input picked out of them (`gather_input`);
/// - with fewer than 8 streams, one value at a time.
///
/// The vectors are flushed in the registers that move them, the single values one by one.
pub(crate) struct TransposeInputs<'a, const I: usize, const N: usize> {
    pub(crate) xs: &'a [SVector<f32, I>; N],
    pub(crate) out: &'a mut [[f32; N]; I],
}

impl<S: Shuffle8, const I: usize, const N: usize> Kernel<S> for TransposeInputs<'_, I, N> {
    type Output = ();

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) {
        let (xs, out) = (self.xs, self.out);
        let values = super::stream_values(xs);
        if I == 0 || N < 8 || values.len() != N * I {
            for (stream, x) in xs.iter().enumerate() {
                let [x] = &x.data.0;
                for (row, value) in out.iter_mut().zip(x) {
                    if let Some(slot) = row.get_mut(stream) {
                        *slot = crate::flush::flush(*value);
                    }
                }
            }
            return;
        }
        for c in 0..N.div_ceil(8) {
            let first_stream = chunk_start(N, c, 8);
            if I >= 8 {
                for d in 0..I.div_ceil(8) {
                    let first_input = chunk_start(I, d, 8);
                    // A row past the last stream reads as zeros.
                    let rows: [&[f32; 8]; 8] = core::array::from_fn(|l| {
                        xs.get(first_stream + l)
                            .and_then(|x| x.as_slice().get(first_input..)?.first_chunk())
                            .unwrap_or(&[0.0; 8])
                    });
                    let columns = s.transpose8(rows);
                    for (j, column) in columns.into_iter().enumerate() {
                        if let Some(row) = out.get_mut(first_input + j) {
                            s.store(s.flush_input(column), row, first_stream);
                        }
                    }
                }
            } else {
                let vectors =
                    consecutive8::<S, I>(s, values.get(first_stream * I..).unwrap_or(&[]));
                for (k, row) in out.iter_mut().enumerate() {
                    s.store(
                        s.flush_input(gather_input(s, &vectors, k)),
                        row,
                        first_stream,
                    );
                }
            }
        }
    }
}

/// [`Simd::deinterleave`] on 8 lanes: from the `8·I` values loaded as `I` vectors
/// ([`gather_input`]) when `I < 8` and `values` holds them, else one value at a time.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn deinterleave8<S: Shuffle8, const I: usize>(s: S, values: &[f32], k: usize) -> S::V {
    if I < 8 && values.len() >= 8 * I {
        gather_input(s, &consecutive8::<S, I>(s, values), k)
    } else {
        s.load8(&core::array::from_fn(|l| {
            values.get(l * I + k).copied().unwrap_or(0.0)
        }))
    }
}

/// The first `8·I` values as `I` vectors of 8 (zeros past the end of `values`).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn consecutive8<S: Shuffle8, const I: usize>(s: S, values: &[f32]) -> [S::V; I] {
    core::array::from_fn(|m| {
        s.load8(
            values
                .get(8 * m..)
                .and_then(<[f32]>::first_chunk::<8>)
                .unwrap_or(&[0.0; 8]),
        )
    })
}

/// Input `k` of 8 streams from their `8·I` consecutive values (`I < 8`) in `I` vectors, by the
/// lane permutation and selects of [`Gather`], read from its tables.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn gather_input<S: Shuffle8, const I: usize>(s: S, vectors: &[S::V; I], k: usize) -> S::V {
    let gather = (
        vectors.first(),
        Gather::<I>::ORDER.get(k),
        Gather::<I>::TAKE.get(k),
    );
    let (Some(&first), Some(order), Some(take)) = gather else {
        return s.splat(0.0);
    };
    if I == 1 {
        return first;
    }
    let order = s.lane_order(order);
    // Index loops: the compiler left an iterator adapter here out of line.
    if I % 2 == 1 {
        let mut merged = first;
        for m in 1..I {
            if let (Some(&vector), Some(mask)) = (vectors.get(m), take.get(m)) {
                merged = s.select(s.load8(mask), vector, merged);
            }
        }
        s.permute(merged, order)
    } else {
        let mut picked = s.permute(first, order);
        for m in 1..I {
            if let (Some(&vector), Some(mask)) = (vectors.get(m), take.get(m)) {
                picked = s.select(s.load8(mask), s.permute(vector, order), picked);
            }
        }
        picked
    }
}
