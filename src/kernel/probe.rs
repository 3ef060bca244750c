//! Loops that time the machine's floors on a backend, for the benchmarks: the latency of a
//! chain of multiply-adds and a tanh, the multiply-add peak, and the read bandwidth of a cache
//! level. They are instruments, not part of the model's API: hidden from the docs, and free to
//! change with the benchmarks that use them.

use super::Backend;
use super::simd::{Element, Kernel, Simd};
use super::step::Weights;
use super::tiling::chunk_start;
use crate::{Bf16Cell, HalfCell};

/// A latency floor of a step, as a loop to time: `steps` times, `fmas` multiply-adds, `adds`
/// additions and one fast tanh on a vector, each operation waiting for the one before.
///
/// Two floors for a hidden size `H`: with `fmas = H, adds = 0`, the chain of a step that
/// accumulates `W_hh·h` one column after another and then applies tanh; with `fmas = 1,
/// adds = ⌈log2 H⌉`, the shortest chain any step can have (multiply the last state value read,
/// reduce the `H` products by a tree of additions, apply tanh), which leaves out the
/// broadcasts, loads and stores a real step needs.
#[must_use]
pub fn floor_chain(backend: Backend, steps: usize, fmas: usize, adds: usize, seed: f32) -> f32 {
    struct Chain(usize, usize, usize, f32);
    impl<S: Simd> Kernel<S> for Chain {
        type Output = f32;
        #[cfg_attr(debug_assertions, inline)]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn run(self, s: S) -> f32 {
            let Self(steps, fmas, adds, seed) = self;
            let (w, c, k) = (s.splat(0.75), s.splat(0.125), s.splat(-0.0625));
            let mut state = s.splat(seed);
            for _ in 0..steps {
                let mut z = state;
                for _ in 0..fmas {
                    z = s.madd(z, w, c);
                }
                for _ in 0..adds {
                    z = s.add(z, k);
                }
                state = s.tanh(z);
            }
            first(s, state)
        }
    }
    backend.dispatch(Chain(steps, fmas, adds, seed))
}

/// The machine's multiply-add peak, as a loop to time: at least `multiply_adds` f32
/// multiply-adds, as rounds of 12 independent vector multiply-adds held in registers.
#[must_use]
pub fn fma_burst(backend: Backend, multiply_adds: usize, seed: f32) -> f32 {
    struct Burst(usize, f32);
    impl<S: Simd> Kernel<S> for Burst {
        type Output = f32;
        #[cfg_attr(debug_assertions, inline)]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn run(self, s: S) -> f32 {
            let Self(multiply_adds, seed) = self;
            let (w, c) = (s.splat(0.999_9), s.splat(seed * 1e-4));
            let mut acc = [s.splat(seed); 12];
            for _ in 0..multiply_adds.div_ceil(12 * S::LANES) {
                for a in &mut acc {
                    *a = s.madd(*a, w, c);
                }
            }
            let mut total = acc[0];
            for a in &acc[1..] {
                total = s.add(total, *a);
            }
            first(s, total)
        }
    }
    backend.dispatch(Burst(multiply_adds, seed))
}

/// `output[i] = 1.5 / input[i]` for the first `min(len)` values, a vector at a time, as
/// [`Backend::tanh_into`] runs: a loop to time for the floor of the fast tanh's throughput that
/// its one division sets, the divider's. A 16-lane division may take the divider as long as
/// two 8-lane ones, so that a wider backend's tanh gains less than its width.
pub fn divide_into(backend: Backend, input: &[f32], output: &mut [f32]) {
    struct Divide<'a>(&'a [f32], &'a mut [f32]);
    impl<S: Simd> Kernel<S> for Divide<'_> {
        type Output = ();
        #[cfg_attr(debug_assertions, inline)]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn run(self, s: S) {
            let Self(input, output) = self;
            let numerator = s.splat(1.5);
            let n = input.len().min(output.len());
            let mut body_in = input[..n].chunks_exact(S::LANES);
            let mut body_out = output[..n].chunks_exact_mut(S::LANES);
            for (src, dst) in (&mut body_in).zip(&mut body_out) {
                s.store_slice(s.div(numerator, s.load_slice(src)), dst);
            }
            let (tail_in, tail_out) = (body_in.remainder(), body_out.into_remainder());
            if !tail_in.is_empty() {
                s.store_slice(s.div(numerator, s.load_slice(tail_in)), tail_out);
            }
        }
    }
    backend.dispatch(Divide(input, output));
}

/// The sum of `values` (read up to the last multiple of 8 vectors), as a loop to time for the
/// read bandwidth of the cache level that holds them: vector loads into eight accumulators
/// (enough to cover the latency of two additions per cycle).
#[must_use]
pub fn stream_sum(backend: Backend, values: &[f32]) -> f32 {
    struct Sum<'a>(&'a [f32]);
    impl<S: Simd> Kernel<S> for Sum<'_> {
        type Output = f32;
        #[cfg_attr(debug_assertions, inline)]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn run(self, s: S) -> f32 {
            let mut acc = [s.splat(0.0); 8];
            for group in self.0.chunks_exact(8 * S::LANES) {
                for (a, lanes) in acc.iter_mut().zip(group.chunks_exact(S::LANES)) {
                    *a = s.add(*a, s.load_slice(lanes));
                }
            }
            let mut total = acc[0];
            for a in &acc[1..] {
                total = s.add(total, *a);
            }
            let mut lanes = [0.0; 16];
            s.store_slice(total, &mut lanes);
            lanes.iter().sum()
        }
    }
    backend.dispatch(Sum(values))
}

/// The sum of every weight of `cell`, read and widened to f32 as its step reads them (by the
/// backend's binary16 conversion), as a loop to time for the floor of a half-precision step
/// where widening the weights, rather than reading their bytes, is what limits it: each chunk
/// of each column widened and added into one of as many accumulators as the backend keeps
/// chains, by a multiply-add as in the step, but none waiting on a broadcast, and each column
/// read whole in one pass. On the backend the cell's step takes. Where the backend's lanes do
/// not divide `H`, a column's last chunk overlaps its neighbour, as the step's does, and the
/// weights they share count twice.
#[must_use]
pub fn widen_half<const I: usize, const H: usize, A>(
    backend: Backend,
    cell: &HalfCell<I, H, A>,
) -> f32
where
    A: crate::Activation,
{
    widen(backend, cell.weights())
}

/// [`widen_half`] of a cell of bf16 column pairs: each pair's chunk widened from one load.
#[must_use]
pub fn widen_bf16<const I: usize, const H: usize, A>(
    backend: Backend,
    cell: &Bf16Cell<I, H, A>,
) -> f32
where
    A: crate::Activation,
{
    widen(backend, cell.weights())
}

/// The sum of [`widen_half`] over weights stored as `E`.
#[inline(always)]
fn widen<const I: usize, const H: usize, E: Element>(
    backend: Backend,
    w: Weights<'_, I, H, E>,
) -> f32 {
    struct Widen<'a, const I: usize, const H: usize, E>(Weights<'a, I, H, E>);
    impl<S: Simd, const I: usize, const H: usize, E: Element> Kernel<S> for Widen<'_, I, H, E> {
        type Output = f32;
        #[cfg_attr(debug_assertions, inline)]
        #[cfg_attr(not(debug_assertions), inline(always))]
        fn run(self, s: S) -> f32 {
            let Self((w_xh, w_hh, _)) = self;
            let mut acc = [s.splat(0.0); 16];
            add_columns::<S, E, H>(s, &mut acc, w_xh);
            add_columns::<S, E, H>(s, &mut acc, w_hh);
            let mut total = acc[0];
            for a in &acc[1..] {
                total = s.add(total, *a);
            }
            let mut lanes = [0.0; 16];
            s.store_slice(total, &mut lanes);
            lanes.iter().sum()
        }
    }
    backend.for_weights::<E>(H).dispatch(Widen(w))
}

/// Adds every chunk of `columns` (two at a time, a paired matrix's through its pairs) into
/// `acc`, each column read whole in turn (where a step of more than one block reads it in
/// runs, one per block), into as many accumulators as the backend keeps chains (up to 16):
/// chunk `c` of a pair's even column into `acc[2(c mod G)]`, of its odd column into the next
/// one, `G` being half that number.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn add_columns<S: Simd, E: Element, const H: usize>(
    s: S,
    acc: &mut [S::V; 16],
    columns: &[[E; H]],
) {
    // Hidden from the compiler, which would otherwise add rather than multiply-add: an
    // addition may take the ports a conversion needs where a multiply-add does not.
    let one = s.splat(core::hint::black_box(1.0));
    let (pairs, lone) = columns.as_chunks::<2>();
    let chunks = H.div_ceil(S::LANES);
    let per_group = const { if S::CHAINS < 16 { S::CHAINS / 2 } else { 8 } };
    for pair in pairs {
        for group in (0..chunks).step_by(per_group) {
            for j in 0..8 {
                if j < per_group && group + j < chunks {
                    let start = chunk_start(H, group + j, S::LANES);
                    let [even, odd] = E::load_pair(s, pair, start);
                    acc[2 * j] = s.madd(even, one, acc[2 * j]);
                    acc[2 * j + 1] = s.madd(odd, one, acc[2 * j + 1]);
                }
            }
        }
    }
    for column in lone {
        for group in (0..chunks).step_by(per_group) {
            for j in 0..8 {
                if j < per_group && group + j < chunks {
                    let start = chunk_start(H, group + j, S::LANES);
                    acc[2 * j] = s.madd(E::load(s, column, start), one, acc[2 * j]);
                }
            }
        }
    }
}

/// Lane 0 of `v`.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn first<S: Simd>(s: S, v: S::V) -> f32 {
    let mut lane = [0.0];
    s.store_slice(v, &mut lane);
    lane[0]
}

/// Whether the 512-bit backend runs on a CPU that executes 512-bit operations whole (Intel's,
/// AMD's Zen 5) rather than as two 256-bit halves: there it steps every weight format on its own
/// 16-lane kernel from 32 hidden units (see [`Backend::avx512`]). `None` where the CPU has no
/// 512-bit backend.
#[must_use]
pub fn avx512_whole() -> Option<bool> {
    match Backend::avx512()?.0 {
        #[cfg(target_arch = "x86_64")]
        super::Kind::Avx512(token) => Some(token.whole()),
        _ => None,
    }
}

#[cfg(feature = "std")]
/// One line naming the backend [`Backend::best`] picks, the ones the CPU runs and the SIMD
/// target features the crate was compiled with, for benchmark reports.
///
/// ```
/// let info = elman::kernel::probe::build_info();
/// assert!(info.starts_with("backend: "));
/// ```
#[must_use]
pub fn build_info() -> String {
    let compiled: Vec<&str> = [
        ("sse2", cfg!(target_feature = "sse2")),
        ("avx", cfg!(target_feature = "avx")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("neon", cfg!(target_feature = "neon")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let operations = match avx512_whole() {
        Some(true) => "; 512-bit operations whole",
        Some(false) => "; 512-bit operations split in two",
        None => "",
    };
    format!(
        "backend: {} (available: {}){operations}; compiled target features: {}",
        Backend::best().name(),
        Backend::available()
            .map(Backend::name)
            .collect::<Vec<_>>()
            .join(", "),
        if compiled.is_empty() {
            "none".to_owned()
        } else {
            compiled.join(" ")
        }
    )
}
