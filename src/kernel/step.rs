//! The single-stream step and the sequence kernel over it.
//!
//! ```text
//! acc = b;  for k < I: acc += x_k · W_xh[:, k];  for k < H: acc += h_k · W_hh[:, k];  h' = A(acc)
//! ```
//!
//! A column-broadcast sweep over `[x; h]`: each weight column is read once, contiguously, one
//! chunk of `LANES` units at a time, multiplied by one broadcast value and added into the
//! block's accumulators. No horizontal sums.

#![allow(
    clippy::needless_range_loop,
    reason = "the accumulators are indexed by partial sum, chunk and unit, as the sums are written"
)]

use core::marker::PhantomData;

use nalgebra::SVector;

use super::simd::{Element, Kernel, Simd};
use super::tiling::{chunk_start, partial_sums};
use crate::activation::{Activation, Kind as Nonlinearity};
use crate::readout::Readout;

/// A sweep's groups of columns and their inputs, `groups`, as the compiler sees them unless
/// the sweep is `ROLLED`, of a block of [`Simd::SWEEP_LOOP_FROM`] to `BLOCK` chunks: then
/// through `black_box`, their count unknown to it.
///
/// The count is a constant, and a loop over a constant count of groups was unrolled whole: a
/// step's block of several chunks became one basic block from its first multiply-add to its
/// last tanh. There, in a build for the default CPU, the compiler's instruction scheduler
/// (tuned for no CPU in particular) took the block one chunk at a time: the chunk's whole
/// sweep and tanh, then the next chunk's, every broadcast spilled to the stack for the later
/// chunks, so that the chunks' chains ran one after another, not side by side. Kept a loop, one
/// group of columns per iteration, every chunk's sums are live across each iteration and its
/// multiply-adds interleave. The sums and their order are the same, so the bits are. The
/// portable backend's steps of 8-chunk blocks (64 units and more) were faster as a loop too,
/// its sequences of 2-chunk blocks slower: its loops are its 8-chunk blocks'.
///
/// Left as they were: the blocks below a backend's `SWEEP_LOOP_FROM` (a block of one chunk has
/// nothing to interleave); a block wider than `BLOCK` ([`Simd::WIDE_BLOCK`]: avx2+fma's 12
/// chunks from 96 units, where the loop measured within the noise of a step that streams its
/// weights from L2); the pipelined `run` of one block (its unrolled sweeps measured faster in
/// a native build); paired columns (`sweep_pairs`, whose steps measured slower as a loop); the
/// backends with 32 registers, unmeasured. Those get the slices as they are, and compile as
/// before: bounding the
/// same loop by a count taken through another iterator changed the code of the portable
/// kernel (more spills), though the count was a constant there too.
#[inline(always)]
fn rolled<'a, 'b, S: Simd, const B: usize, const ROLLED: bool, T, Z>(
    groups: (&'a [T], &'b [Z]),
) -> (&'a [T], &'b [Z]) {
    if ROLLED && S::SWEEP_LOOP_FROM <= B && B <= S::BLOCK {
        core::hint::black_box(groups)
    } else {
        groups
    }
}

/// Adds `z_k · W[:, k]` for every column `k` into the `P` partial sums, column `k` into sum
/// `k mod P` (as groups of `P`, so that each sum stays in a register), the groups kept a loop
/// if `ROLLED` (see [`rolled`]).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn sweep<
    S: Simd,
    E: Element,
    const H: usize,
    const B: usize,
    const P: usize,
    const ROLLED: bool,
>(
    s: S,
    acc: &mut [[S::V; B]; P],
    columns: &[[E; H]],
    z: &[f32],
    starts: &[usize; B],
) {
    if E::PAIRED {
        sweep_pairs::<S, E, H, B, P, false>(s, acc, columns, z, starts);
        return;
    }
    let (groups, rest) = columns.as_chunks::<P>();
    let (z_groups, z_rest) = z.as_chunks::<P>();
    let (groups, z_groups) = rolled::<S, B, ROLLED, _, _>((groups, z_groups));
    for (group, zs) in groups.iter().zip(z_groups) {
        // The blocks of `BLOCK` chunks or more: on the 512-bit backend, the cells of 128 units
        // and more, whose weights stream from L2 a column at a time. In a build for a CPU whose
        // scheduling model sets a large loop buffer (`-C target-cpu=native` on AMD's Zen 4 and
        // Zen 5), the compiler unrolled this loop by two columns, with the same loads and
        // multiply-adds, and on a Zen 5 those steps became much slower. An empty `black_box`
        // is an empty inline assembly block with a memory clobber, which the compiler holds as
        // an opaque call, and it does not partially unroll a loop with a call; best effort, as
        // any `black_box`. The smaller blocks keep their unrolling (a sequence of 33 units on
        // the 512-bit backend was slower with the barrier); the 8-lane backends' blocks of 8
        // chunks (64 units) measured no different with it in a default build.
        if B >= S::BLOCK {
            core::hint::black_box(());
        }
        for p in 0..P {
            let broadcast = s.splat(zs[p]);
            for c in 0..B {
                acc[p][c] = s.madd(broadcast, E::load(s, &group[p], starts[c]), acc[p][c]);
            }
        }
    }
    for (p, (column, &zk)) in rest.iter().zip(z_rest).enumerate() {
        let broadcast = s.splat(zk);
        for c in 0..B {
            acc[p][c] = s.madd(broadcast, E::load(s, column, starts[c]), acc[p][c]);
        }
    }
}

/// `sweep` with the columns taken last to first, column `k` still into sum `k mod P`. Written
/// out beside `sweep` rather than sharing a per-column helper with it: with the helper (a
/// function or a closure) the x86 kernels were not inlined into one loop.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn sweep_backward<
    S: Simd,
    E: Element,
    const H: usize,
    const B: usize,
    const P: usize,
    const ROLLED: bool,
>(
    s: S,
    acc: &mut [[S::V; B]; P],
    columns: &[[E; H]],
    z: &[f32],
    starts: &[usize; B],
) {
    if E::PAIRED {
        sweep_pairs::<S, E, H, B, P, true>(s, acc, columns, z, starts);
        return;
    }
    let (groups, rest) = columns.as_chunks::<P>();
    let (z_groups, z_rest) = z.as_chunks::<P>();
    let (groups, z_groups) = rolled::<S, B, ROLLED, _, _>((groups, z_groups));
    for (p, (column, &zk)) in rest.iter().zip(z_rest).enumerate().rev() {
        let broadcast = s.splat(zk);
        for c in 0..B {
            acc[p][c] = s.madd(broadcast, E::load(s, column, starts[c]), acc[p][c]);
        }
    }
    for (group, zs) in groups.iter().zip(z_groups).rev() {
        for p in (0..P).rev() {
            let broadcast = s.splat(zs[p]);
            for c in 0..B {
                acc[p][c] = s.madd(broadcast, E::load(s, &group[p], starts[c]), acc[p][c]);
            }
        }
    }
}

/// `sweep` (or `sweep_backward`) of paired columns ([`Element::PAIRED`]): one load for the
/// columns `2m` and `2m + 1`, a multiply-add for each, column `k` still into sum `k mod P`, so
/// that every sum adds its columns in the order (and with the bits) of the f32 sweep of the
/// same weights. The pairs go in groups of `P` (`2P` columns, a multiple of `P`), then the
/// pairs left over, then an odd number of columns' lone last one.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn sweep_pairs<
    S: Simd,
    E: Element,
    const H: usize,
    const B: usize,
    const P: usize,
    const BACKWARD: bool,
>(
    s: S,
    acc: &mut [[S::V; B]; P],
    columns: &[[E; H]],
    z: &[f32],
    starts: &[usize; B],
) {
    let (pairs, lone) = columns.as_chunks::<2>();
    let (z_pairs, z_lone) = z.as_chunks::<2>();
    let (groups, rest) = pairs.as_chunks::<P>();
    let (z_groups, z_rest) = z_pairs.as_chunks::<P>();
    // The pairs left over and the lone column by constant indices `i < P`, so that every
    // partial sum is a named register (through an index known only at run time, the compiler
    // kept the sums in memory). Functions, not closures: a closure was left out of line.
    if BACKWARD {
        add_lone::<S, E, H, B, P>(s, acc, (lone, z_lone), 2 * pairs.len(), starts);
        for i in (0..P).rev() {
            if let (Some(pair), Some(zs)) = (rest.get(i), z_rest.get(i)) {
                add_pair::<S, E, H, B, P, true>(s, acc, pair, zs, 2 * i, starts);
            }
        }
        for (group, zs) in groups.iter().zip(z_groups).rev() {
            for i in (0..P).rev() {
                add_pair::<S, E, H, B, P, true>(s, acc, &group[i], &zs[i], 2 * i, starts);
            }
        }
    } else {
        for (group, zs) in groups.iter().zip(z_groups) {
            for i in 0..P {
                add_pair::<S, E, H, B, P, false>(s, acc, &group[i], &zs[i], 2 * i, starts);
            }
        }
        for i in 0..P {
            if let (Some(pair), Some(zs)) = (rest.get(i), z_rest.get(i)) {
                add_pair::<S, E, H, B, P, false>(s, acc, pair, zs, 2 * i, starts);
            }
        }
        add_lone::<S, E, H, B, P>(s, acc, (lone, z_lone), 2 * pairs.len(), starts);
    }
}

/// Adds `z_k · W[:, k]` of a paired matrix's lone last column `k` (if it has one) into sum
/// `k mod P`.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn add_lone<S: Simd, E: Element, const H: usize, const B: usize, const P: usize>(
    s: S,
    acc: &mut [[S::V; B]; P],
    (lone, z_lone): (&[[E; H]], &[f32]),
    k: usize,
    starts: &[usize; B],
) {
    if let ([column], [zk]) = (lone, z_lone) {
        for p in 0..P {
            if p == k % P {
                let broadcast = s.splat(*zk);
                for c in 0..B {
                    acc[p][c] = s.madd(broadcast, E::load(s, column, starts[c]), acc[p][c]);
                }
            }
        }
    }
}

/// Adds `z_k · W[:, k]` and `z_{k+1} · W[:, k+1]` of one pair of columns (`k` even, `k mod P`
/// given as `p`) into sums `k mod P` and `(k + 1) mod P`, both columns from one load per
/// chunk; the odd column first if `BACKWARD`, so that a single sum (`P = 1`) still adds them
/// in the sweep's order.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
// (The lint counts `[z_even, z_odd]`, 8 bytes, as small only where it fits in a pointer.)
#[cfg_attr(
    target_pointer_width = "64",
    expect(
        clippy::trivially_copy_pass_by_ref,
        reason = "by reference, the broadcasts read their values from memory; by value, the \
                  compiler moved the pair through a general register and split it there"
    )
)]
fn add_pair<
    S: Simd,
    E: Element,
    const H: usize,
    const B: usize,
    const P: usize,
    const BACKWARD: bool,
>(
    s: S,
    acc: &mut [[S::V; B]; P],
    pair: &[[E; H]; 2],
    [z_even, z_odd]: &[f32; 2],
    p: usize,
    starts: &[usize; B],
) {
    let (even, odd) = (p % P, (p + 1) % P);
    let (b_even, b_odd) = (s.splat(*z_even), s.splat(*z_odd));
    if P == 1 && S::WIDE_BLOCK == 12 && B > 8 {
        // With 16 registers, one sum per chunk taking both columns: the first column's
        // multiply-adds for every chunk, then the second's, its words read again through a
        // reference the compiler cannot tell is the same (`black_box`; seen through, the words
        // would be kept again: slower, the same bits). With one load for both, the compiler
        // issued the multiply-adds in this order anyway and kept the loaded words in between,
        // which a block of 12 chunks spilled to the stack. A block of 8 has the registers for
        // the words, and there the second load made the step slower (Zen 2), as it did the
        // 512-bit step with 32 registers.
        let again = core::hint::black_box(pair);
        for c in 0..B {
            let [w_even, w_odd] = E::load_pair(s, pair, starts[c]);
            acc[0][c] = if BACKWARD {
                s.madd(b_odd, w_odd, acc[0][c])
            } else {
                s.madd(b_even, w_even, acc[0][c])
            };
        }
        for c in 0..B {
            let [w_even, w_odd] = E::load_pair(s, again, starts[c]);
            acc[0][c] = if BACKWARD {
                s.madd(b_even, w_even, acc[0][c])
            } else {
                s.madd(b_odd, w_odd, acc[0][c])
            };
        }
        return;
    }
    for c in 0..B {
        let [w_even, w_odd] = E::load_pair(s, pair, starts[c]);
        if BACKWARD {
            acc[odd][c] = s.madd(b_odd, w_odd, acc[odd][c]);
            acc[even][c] = s.madd(b_even, w_even, acc[even][c]);
        } else {
            acc[even][c] = s.madd(b_even, w_even, acc[even][c]);
            acc[odd][c] = s.madd(b_odd, w_odd, acc[odd][c]);
        }
    }
}

/// The sums `W_xh·x + W_hh·h + b` of one block of `B` chunks, before the activation: the
/// whole sweep with `P` partial sums (backward if `BACKWARD`), added pairwise. The state's
/// sweep is `Z`'s ([`State`]).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn block_sums<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    const P: usize,
    const BACKWARD: bool,
    Z: State<S, H>,
>(
    s: S,
    (w_xh, w_hh, b): Weights<'_, I, H, E>,
    x: &[f32; I],
    h: Z,
    starts: &[usize; B],
) -> [S::V; B] {
    let mut acc = start_sums::<S, H, B, P>(s, b, starts);
    if BACKWARD {
        h.sweep::<E, B, P, true>(s, &mut acc, w_hh, starts);
        sweep_backward::<S, E, H, B, P, true>(s, &mut acc, w_xh, x, starts);
    } else {
        sweep::<S, E, H, B, P, true>(s, &mut acc, w_xh, x, starts);
        h.sweep::<E, B, P, false>(s, &mut acc, w_hh, starts);
    }
    pairwise::<S, B, P>(s, acc)
}

/// The state a step's `W_hh` sweep reads: its values in memory, each broadcast from there
/// (`&[f32; H]`), or its chunk vectors in registers, each value broadcast by a lane
/// permutation ([`Chunks`]).
trait State<S: Simd, const H: usize>: Copy {
    /// Adds `h_k · W_hh[:, k]` for every column `k` into the `P` partial sums, column `k`
    /// into sum `k mod P`, the columns last to first if `BACKWARD`.
    fn sweep<E: Element, const B: usize, const P: usize, const BACKWARD: bool>(
        self,
        s: S,
        acc: &mut [[S::V; B]; P],
        w_hh: &[[E; H]; H],
        starts: &[usize; B],
    );
}

impl<S: Simd, const H: usize> State<S, H> for &[f32; H] {
    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn sweep<E: Element, const B: usize, const P: usize, const BACKWARD: bool>(
        self,
        s: S,
        acc: &mut [[S::V; B]; P],
        w_hh: &[[E; H]; H],
        starts: &[usize; B],
    ) {
        if BACKWARD {
            sweep_backward::<S, E, H, B, P, true>(s, acc, w_hh, self, starts);
        } else {
            sweep::<S, E, H, B, P, true>(s, acc, w_hh, self, starts);
        }
    }
}

/// A state of `C` chunks held as its vectors (laid out as `chunk_start` places them), with
/// the lane numbers its broadcasts take ([`Simd::lane`]): what `run` carries from one step to
/// the next on the backends with [`Simd::PERMUTE_STATE`].
#[derive(Clone, Copy)]
struct Chunks<'a, S: Simd, const C: usize>(&'a [S::V; C], &'a S::Lanes);

impl<S: Simd, const C: usize> Chunks<'_, S, C> {
    /// Unit `k` of a state of `H` units, in every lane.
    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn unit<const H: usize>(self, s: S, k: usize) -> S::V {
        let Self(state, lanes) = self;
        let c = if k / S::LANES < C {
            k / S::LANES
        } else {
            C - 1
        };
        match state.get(c) {
            Some(&chunk) => s.lane(chunk, lanes, k - chunk_start(H, c, S::LANES)),
            None => s.splat(0.0),
        }
    }
}

/// The sweep of `sweep`, column `k`'s value taken from its chunk by a lane permutation rather
/// than from memory: the same products into the same sums, so the same bits.
impl<S: Simd, const H: usize, const C: usize> State<S, H> for Chunks<'_, S, C> {
    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn sweep<E: Element, const B: usize, const P: usize, const BACKWARD: bool>(
        self,
        s: S,
        acc: &mut [[S::V; B]; P],
        w_hh: &[[E; H]; H],
        starts: &[usize; B],
    ) {
        if BACKWARD || E::PAIRED {
            // Not taken (`run` carries its state this way forward, over unpaired columns
            // only), and right anyway: the sweep of the state's values from memory.
            let mut values = [0.0; H];
            for c in 0..C {
                s.store(self.0[c], &mut values, chunk_start(H, c, S::LANES));
            }
            return (&values).sweep::<E, B, P, BACKWARD>(s, acc, w_hh, starts);
        }
        let (groups, rest) = w_hh.as_chunks::<P>();
        for (g, group) in groups.iter().enumerate() {
            for p in 0..P {
                let broadcast = self.unit::<H>(s, g * P + p);
                for c in 0..B {
                    acc[p][c] = s.madd(broadcast, E::load(s, &group[p], starts[c]), acc[p][c]);
                }
            }
        }
        let done = groups.len() * P;
        for (p, column) in rest.iter().enumerate() {
            let broadcast = self.unit::<H>(s, done + p);
            for c in 0..B {
                acc[p][c] = s.madd(broadcast, E::load(s, column, starts[c]), acc[p][c]);
            }
        }
    }
}

/// `P` partial sums of `B` chunks, the bias in the first, zeros in the others.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn start_sums<S: Simd, const H: usize, const B: usize, const P: usize>(
    s: S,
    b: &[f32; H],
    starts: &[usize; B],
) -> [[S::V; B]; P] {
    let zero = s.splat(0.0);
    let mut acc = [[zero; B]; P];
    for c in 0..B {
        acc[0][c] = s.load(b, starts[c]);
    }
    acc
}

/// The partial sums added pairwise: sums n..2n−1 into 0..n−1, halving until one is left.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn pairwise<S: Simd, const B: usize, const P: usize>(s: S, mut acc: [[S::V; B]; P]) -> [S::V; B] {
    let mut n = P;
    while n > 1 {
        let half = n.div_ceil(2);
        for p in 0..n - half {
            for c in 0..B {
                acc[p][c] = s.add(acc[p][c], acc[p + half][c]);
            }
        }
        n = half;
    }
    acc[0]
}

/// `A`, with +0 where `z` is tiny (see [`FLUSH_BELOW`](crate::FLUSH_BELOW)).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn activate<S: Simd, A: Activation>(s: S, z: S::V) -> S::V {
    let y = match A::KIND {
        Nonlinearity::Tanh => s.tanh(z),
        Nonlinearity::Relu => s.relu(z),
    };
    // `A(z)` is below `FLUSH_BELOW` in magnitude exactly when `z` is (or is 0 either way): the
    // fast tanh returns `z` itself below 2^-12, ReLU `z` or 0. So the mask comes from `z`, off
    // the dependency chain through the activation.
    s.flush_where_tiny(z, y)
}

/// [`activate`] of each of `B` chunks' sums.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn activated<S: Simd, A: Activation, const B: usize>(s: S, mut sums: [S::V; B]) -> [S::V; B] {
    // A loop, not `map`: a closure may be left out of line, without the backend's instructions.
    for c in 0..B {
        sums[c] = activate::<S, A>(s, sums[c]);
    }
    sums
}

/// A cell's weights as the kernel reads them: the columns of `W_xh` and `W_hh`, and `b`.
pub(crate) type Weights<'a, const I: usize, const H: usize, E = f32> =
    (&'a [[E; H]; I], &'a [[E; H]; H], &'a [f32; H]);

/// The sums of the block of `B` chunks starting at chunk `first`, with its number of partial
/// sums, before the activation.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn sums_at<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    const BACKWARD: bool,
    Z: State<S, H>,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    x: &[f32; I],
    h: Z,
    first: usize,
) -> [S::V; B] {
    let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, first + c, S::LANES));
    match partial_sums(B, H, S::CHAINS, S::SMALL_BLOCK_CHAINS) {
        1 => block_sums::<S, E, I, H, B, 1, BACKWARD, Z>(s, w, x, h, &starts),
        2 => block_sums::<S, E, I, H, B, 2, BACKWARD, Z>(s, w, x, h, &starts),
        3 => block_sums::<S, E, I, H, B, 3, BACKWARD, Z>(s, w, x, h, &starts),
        4 => block_sums::<S, E, I, H, B, 4, BACKWARD, Z>(s, w, x, h, &starts),
        _ => block_sums::<S, E, I, H, B, 8, BACKWARD, Z>(s, w, x, h, &starts),
    }
}

/// The size of weights, as `f32`, above which a step sums its columns by ranges
/// ([`ranged_sums`]): past it they no longer fit in a typical L1 data cache beside the rest.
const RANGED_FROM_BYTES: usize = 64 * 1024;

/// The size of weights, as `f32`, up to which a step sums its columns by ranges: a few times
/// an L1 data cache, past which the part of them a step finds in L1 is too small to repay the
/// ranges' extra work (their partial sums, added up a tree).
const RANGED_UP_TO_BYTES: usize = 160 * 1024;

/// About how many bytes of `f32` weights one range of a ranged step reads. Smaller ranges
/// leave more of the ranges read last in L1 for the next step (a step that starts on a range
/// hits L1 only for the ranges whole in it: a range is read first to last, and its first
/// columns went first); larger ones take fewer partial sums and additions, which a bf16 step,
/// bound by its shifts and multiply-adds rather than its reads, pays for in full. Measured at
/// 64 inputs and 128 units from 8 to 32 KiB: the f32 step gained as much from 8 to 24 KiB, about
/// half of a 48 KiB L1, and less at 32; the bf16 step lost less as the ranges grew.
const RANGE_BYTES: usize = 24 * 1024;

/// The most ranges a ranged step takes: a tree of 32 leaves, 5 levels.
const MAX_RANGES: usize = 32;

/// Whether a step of `I` inputs and `H` units may sum its columns by ranges: where its
/// weights, as `f32`, stream from L2. Whether it does depends on the backend ([`ranged`]).
const fn may_range<const I: usize, const H: usize>() -> bool {
    let bytes = (I + H) * H * size_of::<f32>();
    let r = range_columns::<I, H>();
    RANGED_FROM_BYTES < bytes
        && bytes <= RANGED_UP_TO_BYTES
        && I.div_ceil(r) + H.div_ceil(r) <= MAX_RANGES
}

/// Whether the callers that step a cell of `I` inputs, `H` units and weights stored as `E` in
/// turn alternate the direction of its ranges (`direction::next_backward`; the backends that
/// do not range the step ignore it): where it [`may_range`] and its weights in their own format
/// are larger than [`RANGED_FROM_BYTES`] too. A binary16 or bf16 cell of 64 inputs and 128
/// units (48 KiB) takes the ranges of its widened f32 cell (96 KiB), so as to keep its bits,
/// but steps slower alternating them.
pub(super) const fn alternates<E, const I: usize, const H: usize>() -> bool {
    may_range::<I, H>() && (I + H) * H * size_of::<E>() > RANGED_FROM_BYTES
}

/// Whether a step of `I` inputs and `H` units sums its columns by ranges ([`ranged_sums`]):
/// where it [`may_range`], is not [`grouped`], and its units are one block
/// ([`for_each_block`]). A step of several blocks sweeps the ranges once per block, and the
/// next step would start on lines read half a step before, which L1 no longer holds.
pub(super) const fn ranged<S: Simd, const I: usize, const H: usize>() -> bool {
    let chunks = H.div_ceil(S::LANES);
    let one_block = chunks <= S::BLOCK
        || (chunks == 16 && S::WIDE_BLOCK == 16)
        || (chunks == 12 && S::WIDE_BLOCK == 12);
    may_range::<I, H>() && !grouped::<S, I, H>() && one_block
}

/// How many columns a range of a ranged step of `I` inputs and `H` units takes: about
/// [`RANGE_BYTES`] of them as `f32` (whatever the format, so that a half-precision cell has its
/// widened cell's ranges), a multiple of 8 from 8 to 64 (a bf16 pair is never split, and the
/// kernel has a sweep of each such constant length).
const fn range_columns<const I: usize, const H: usize>() -> usize {
    let column = if H == 0 { 1 } else { H * size_of::<f32>() };
    let r = RANGE_BYTES / column / 8 * 8;
    if r < 8 {
        8
    } else if r > 64 {
        64
    } else {
        r
    }
}

/// The sums of a block of `B` chunks of a [`ranged`] step, before the activation.
///
/// The columns of `W_xh`, then those of `W_hh`, are cut into ranges of [`range_columns`]
/// (the last of each matrix shorter), the leaves of a binary tree in that order. Each range is
/// swept first to last into `P` partial sums of its own (the first range's first sum starting
/// from `b`), added pairwise, and the ranges' sums are added up the tree, left + right, a node
/// whose right subtree is empty taking its left one's sum. Those operations do not depend on
/// the order in which the ranges are taken, so a `BACKWARD` step, which takes them last to
/// first (each still first to last), has the bits of a forward one; the tree is evaluated as
/// its leaves come, in either order, with a stack of at most one pending sum per level.
///
/// Why backward: a step that reads the columns in the order the step before read them starts
/// on the columns an LRU-like L1 has evicted first; one that reads the ranges in the other
/// order starts on the ranges the step before read last, which L1 still holds. A caller that
/// alternates the direction from one step to the next reads about an L1's worth of the
/// weights from there rather than from L2.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn ranged_sums<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    const P: usize,
    const R: usize,
    const BACKWARD: bool,
>(
    s: S,
    (w_xh, w_hh, b): Weights<'_, I, H, E>,
    (x, h): (&[f32; I], &[f32; H]),
    starts: &[usize; B],
) -> [S::V; B] {
    let first_hh = I.div_ceil(R);
    let leaves = first_hh + H.div_ceil(R);
    const { assert!(MAX_RANGES <= 1 << 5) };
    let zero = s.splat(0.0);
    // `None` until a sum waits there: a stack of zeros was a `memset` call in every step.
    let mut pending: [Option<[S::V; B]>; 5] = [None; 5];
    let mut depth = 0_usize;
    let mut total = [zero; B];
    for i in 0..leaves {
        let leaf = if BACKWARD { leaves - 1 - i } else { i };
        let mut acc = [[zero; B]; P];
        if leaf == 0 {
            acc = start_sums::<S, H, B, P>(s, b, starts);
        }
        let (columns, z, lo): (&[[E; H]], &[f32], _) = if leaf < first_hh {
            (w_xh, x, leaf * R)
        } else {
            (w_hh, h, (leaf - first_hh) * R)
        };
        let (columns, z) = (
            columns.get(lo..).unwrap_or_default(),
            z.get(lo..).unwrap_or_default(),
        );
        // A whole range as a constant count of columns (the compiler's loop then knows it),
        // the last of a matrix as what is left.
        if let (Some(columns), Some(z)) = (columns.first_chunk::<R>(), z.first_chunk::<R>()) {
            sweep::<S, E, H, B, P, true>(s, &mut acc, columns, z, starts);
        } else {
            sweep::<S, E, H, B, P, true>(s, &mut acc, columns, z, starts);
        }
        let mut sum = pairwise::<S, B, P>(s, acc);
        // Up the tree from the leaf: at each level, node `n` covers the leaves from
        // `n · width`. Forward, a right child meets its left sibling's pending sum and a left
        // child with a sibling waits for it; backward, a left child meets its right sibling's
        // pending sum (if it has one) and a right child waits. Either way, left + right.
        let (mut n, mut width) = (leaf, 1);
        let mut waits = false;
        while width < leaves {
            let left = n % 2 == 0;
            let has_right = (n + 1) * width < leaves;
            let meets = if BACKWARD { left && has_right } else { !left };
            waits = if BACKWARD { !left } else { left && has_right };
            if meets {
                debug_assert!(depth > 0, "a sibling's sum waits");
                depth = depth.saturating_sub(1);
                let sibling = pending.get_mut(depth).and_then(Option::take);
                debug_assert!(sibling.is_some(), "a sibling's sum waits");
                if let Some(sibling) = sibling {
                    // Backward the child that meets is a left one, forward a right one.
                    let (l, r) = if BACKWARD {
                        (sum, sibling)
                    } else {
                        (sibling, sum)
                    };
                    for c in 0..B {
                        sum[c] = s.add(l[c], r[c]);
                    }
                }
            } else if waits {
                debug_assert!(depth < pending.len(), "one pending sum per level at most");
                if let Some(slot) = pending.get_mut(depth) {
                    *slot = Some(sum);
                }
                depth += 1;
                break;
            }
            n /= 2;
            width *= 2;
        }
        if !waits {
            total = sum;
        }
    }
    total
}

/// [`ranged_sums`] of the block of `B` chunks starting at chunk `first`, with its number of
/// partial sums per range (as [`sums_at`] has per sweep).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn ranged_at<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    const BACKWARD: bool,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    xh: (&[f32; I], &[f32; H]),
    first: usize,
) -> [S::V; B] {
    let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, first + c, S::LANES));
    match partial_sums(B, H, S::CHAINS, S::SMALL_BLOCK_CHAINS) {
        1 => ranged_by::<S, E, I, H, B, 1, BACKWARD>(s, w, xh, &starts),
        2 => ranged_by::<S, E, I, H, B, 2, BACKWARD>(s, w, xh, &starts),
        3 => ranged_by::<S, E, I, H, B, 3, BACKWARD>(s, w, xh, &starts),
        4 => ranged_by::<S, E, I, H, B, 4, BACKWARD>(s, w, xh, &starts),
        _ => ranged_by::<S, E, I, H, B, 8, BACKWARD>(s, w, xh, &starts),
    }
}

/// [`ranged_sums`] with its [`range_columns`] as a constant.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn ranged_by<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    const P: usize,
    const BACKWARD: bool,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    xh: (&[f32; I], &[f32; H]),
    starts: &[usize; B],
) -> [S::V; B] {
    match const { range_columns::<I, H>() } {
        8 => ranged_sums::<S, E, I, H, B, P, 8, BACKWARD>(s, w, xh, starts),
        16 => ranged_sums::<S, E, I, H, B, P, 16, BACKWARD>(s, w, xh, starts),
        24 => ranged_sums::<S, E, I, H, B, P, 24, BACKWARD>(s, w, xh, starts),
        32 => ranged_sums::<S, E, I, H, B, P, 32, BACKWARD>(s, w, xh, starts),
        40 => ranged_sums::<S, E, I, H, B, P, 40, BACKWARD>(s, w, xh, starts),
        48 => ranged_sums::<S, E, I, H, B, P, 48, BACKWARD>(s, w, xh, starts),
        56 => ranged_sums::<S, E, I, H, B, P, 56, BACKWARD>(s, w, xh, starts),
        _ => ranged_sums::<S, E, I, H, B, P, 64, BACKWARD>(s, w, xh, starts),
    }
}

/// The block of `B` chunks starting at chunk `first`: its sums, then `A`, stored.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn run_block<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    A: Activation,
    const BACKWARD: bool,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    (x, h): (&[f32; I], &[f32; H]),
    first: usize,
    out: &mut [f32; H],
) {
    let sums = if const { ranged::<S, I, H>() } {
        ranged_at::<S, E, I, H, B, BACKWARD>(s, w, (x, h), first)
    } else {
        sums_at::<S, E, I, H, B, BACKWARD, _>(s, w, x, h, first)
    };
    for c in 0..B {
        let start = chunk_start(H, first + c, S::LANES);
        s.store(activate::<S, A>(s, sums[c]), out, start);
    }
}

/// What a step does with each of its blocks of chunks ([`for_each_block`]).
trait Blocks<S: Simd> {
    /// Whether its blocks may be [`Simd::WIDE_BLOCK`] chunks, else up to [`Simd::BLOCK`].
    const WIDE: bool;

    /// The block of `B` chunks from chunk `first`.
    fn block<const B: usize>(&mut self, s: S, first: usize);
}

/// Hands `blocks` each block of a step of `H` units in turn: `WIDE_BLOCK` chunks wherever
/// that many remain if [`Blocks::WIDE`] (see [`Simd::WIDE_BLOCK`]), else up to `BLOCK`.
#[inline(always)]
fn for_each_block<S: Simd, const H: usize, K: Blocks<S>>(s: S, blocks: &mut K) {
    let chunks = H.div_ceil(S::LANES);
    let mut first = 0;
    while first < chunks {
        // Constants first: no code for a wide block where it cannot run. On 8 lanes, only a
        // wide block that is the whole cell (see `Simd::WIDE_BLOCK`).
        if const {
            K::WIDE
                && S::WIDE_BLOCK == 16
                && H >= 16 * S::LANES
                && (S::LANES == 16 || H.div_ceil(S::LANES) == 16)
        } && chunks - first >= 16
        {
            blocks.block::<16>(s, first);
            first += 16;
            continue;
        }
        if const { K::WIDE && S::WIDE_BLOCK == 12 && H >= 12 * S::LANES } && chunks - first >= 12 {
            blocks.block::<12>(s, first);
            first += 12;
            continue;
        }
        match (chunks - first).min(S::BLOCK) {
            1 => blocks.block::<1>(s, first),
            2 => blocks.block::<2>(s, first),
            3 => blocks.block::<3>(s, first),
            4 => blocks.block::<4>(s, first),
            5 => blocks.block::<5>(s, first),
            6 => blocks.block::<6>(s, first),
            7 => blocks.block::<7>(s, first),
            _ => blocks.block::<8>(s, first),
        }
        first += S::BLOCK;
    }
}

/// A step's blocks, each swept over all the columns, activated and stored ([`run_block`]).
struct StepBlocks<'a, 'o, const I: usize, const H: usize, E, A, const BACKWARD: bool> {
    w: Weights<'a, I, H, E>,
    xh: (&'a [f32; I], &'a [f32; H]),
    out: &'o mut [f32; H],
    activation: PhantomData<A>,
}

impl<S: Simd, E: Element, const I: usize, const H: usize, A: Activation, const BACKWARD: bool>
    Blocks<S> for StepBlocks<'_, '_, I, H, E, A, BACKWARD>
{
    const WIDE: bool = true;

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn block<const B: usize>(&mut self, s: S, first: usize) {
        run_block::<S, E, I, H, B, A, BACKWARD>(s, self.w, self.xh, first, self.out);
    }
}

/// The size of weights, as `f32`, above which a step reads them from L2: a typical L1 data
/// cache. As `f32` whatever the format, so that a half-precision cell is grouped where its
/// widened f32 cell is, and steps with its bits.
const GROUP_FROM_BYTES: usize = 32 * 1024;

/// Whether a step of `I` inputs and `H` units takes its columns a group at a time
/// ([`step_grouped`]): where its weights are larger than [`GROUP_FROM_BYTES`] and its units
/// at least 16 chunks, so more than one block (`run` pipelines a cell of one block itself,
/// with `step`'s bits). Measured at 128 and 256 units. Not below: there a last block of 1 to
/// 3 chunks, one partial sum each in a group, would carry a chain as long as the columns
/// beside a step too short to hide it (a cell of 65 units: 8 chunks and 1).
const fn grouped<S: Simd, const I: usize, const H: usize>() -> bool {
    S::GROUP_COLUMNS > 0
        && (I + H) * H * size_of::<f32>() > GROUP_FROM_BYTES
        && H.div_ceil(S::LANES) >= 16
        && H.div_ceil(S::LANES) > S::WIDE_BLOCK
}

/// `step` with the columns taken [`Simd::GROUP_COLUMNS`] at a time, each group swept by every
/// block in turn, with one partial sum per block, the sums kept in memory from one group to
/// the next. The blocks of a step each read a run of every column, and one after the other,
/// where the weights stream from L2; a run read within a few columns of the run before it
/// takes the cache lines that run's reads brought in or prefetched, where runs a whole sweep
/// apart had their neighbours fetched twice.
///
/// The last chunk, which overlaps the one before it unless the chunks divide `H`, keeps its
/// sums apart: a block would otherwise add a group's columns to the overlapping units again,
/// after the block of the chunk before had added them. Both hold the same sums in those units
/// (the same columns into one partial sum, in the same order), so the activation stores the
/// same bits twice.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn step_grouped<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    A: Activation,
    const BACKWARD: bool,
>(
    s: S,
    (w_xh, w_hh, b): Weights<'_, I, H, E>,
    x: &[f32; I],
    h: &[f32; H],
) -> [f32; H] {
    let last = H.div_ceil(S::LANES) - 1;
    let mut sums = Sums {
        whole: *b,
        last: [0.0; 16],
    };
    s.store(s.load(b, chunk_start(H, last, S::LANES)), &mut sums.last, 0);
    if BACKWARD {
        add_groups::<S, E, H, true>(s, &mut sums, w_hh, h);
        add_groups::<S, E, H, true>(s, &mut sums, w_xh, x);
    } else {
        add_groups::<S, E, H, false>(s, &mut sums, w_xh, x);
        add_groups::<S, E, H, false>(s, &mut sums, w_hh, h);
    }
    let mut out = [0.0; H];
    for c in 0..=last {
        let start = chunk_start(H, c, S::LANES);
        s.store(activate::<S, A>(s, sums.load(s, c)), &mut out, start);
    }
    out
}

/// A grouped step's sums between groups: chunk `c` in `whole` from `c · LANES`, the last
/// chunk in `last`, apart (see [`step_grouped`]), as many values as the widest backend's lanes.
struct Sums<const H: usize> {
    whole: [f32; H],
    last: [f32; 16],
}

impl<const H: usize> Sums<H> {
    /// Chunk `c`'s sums.
    #[inline(always)]
    fn load<S: Simd>(&self, s: S, c: usize) -> S::V {
        if c == H.div_ceil(S::LANES) - 1 {
            s.load(&self.last, 0)
        } else {
            s.load(&self.whole, c * S::LANES)
        }
    }

    /// Keeps `v` as chunk `c`'s sums.
    #[inline(always)]
    fn store<S: Simd>(&mut self, s: S, c: usize, v: S::V) {
        if c == H.div_ceil(S::LANES) - 1 {
            s.store(v, &mut self.last, 0);
        } else {
            s.store(v, &mut self.whole, c * S::LANES);
        }
    }
}

/// Adds `z_k · W[:, k]` for every column `k` into `sums`, a group of columns at a time (the
/// groups last to first if `BACKWARD`).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn add_groups<S: Simd, E: Element, const H: usize, const BACKWARD: bool>(
    s: S,
    sums: &mut Sums<H>,
    columns: &[[E; H]],
    z: &[f32],
) {
    // The same bytes of each row per group whatever the weights' format; an even number of
    // columns, so that no group splits a pair of bf16 columns.
    let width = S::GROUP_COLUMNS * size_of::<f32>() / size_of::<E>();
    const { assert!(S::GROUP_COLUMNS == 0 || S::GROUP_COLUMNS % 2 == 0) };
    let groups = columns.chunks(width).zip(z.chunks(width));
    if BACKWARD {
        for (columns, z) in groups.rev() {
            for_each_block::<S, H, _>(s, &mut GroupBlocks::<H, E, true> { columns, z, sums });
        }
    } else {
        for (columns, z) in groups {
            for_each_block::<S, H, _>(s, &mut GroupBlocks::<H, E, false> { columns, z, sums });
        }
    }
}

/// Whether `chunks` taken `block` at a time end in a last block as large as the wide blocks
/// leave ([`for_each_block`]: `wide` at a time, then `block`; a whole block counting as the
/// largest).
const fn narrow_last_block(chunks: usize, block: usize, wide: usize) -> bool {
    let last = chunks % block;
    let wide_last = chunks % wide % block;
    last == 0 || (wide_last != 0 && last >= wide_last)
}

// The rule at the sizes it was measured at, in chunks of 8 lanes: 17 and 19 keep 12 + 5 and
// 12 + 7; 16, 21 to 23, 25 and 32 take blocks of 8 (against 12 + 4, 12 + 8 + 1 to 3, 12 + 12
// + 1 and 12 + 12 + 8). Elsewhere it extrapolates: 33 to 35 chunks, say, take 8 × 4 + 1 to 3
// (against 12 + 12 + 8 + 1 to 3), unmeasured.
const _: () = {
    assert!(!narrow_last_block(17, 8, 12) && !narrow_last_block(19, 8, 12));
    assert!(narrow_last_block(16, 8, 12) && narrow_last_block(32, 8, 12));
    assert!(narrow_last_block(21, 8, 12) && narrow_last_block(22, 8, 12));
    assert!(narrow_last_block(23, 8, 12));
    assert!(narrow_last_block(25, 8, 12));
};

/// A grouped step's blocks, each adding one group of columns into the sums.
struct GroupBlocks<'a, 's, const H: usize, E, const BACKWARD: bool> {
    columns: &'a [[E; H]],
    z: &'a [f32],
    sums: &'s mut Sums<H>,
}

impl<S: Simd, E: Element, const H: usize, const BACKWARD: bool> Blocks<S>
    for GroupBlocks<'_, '_, H, E, BACKWARD>
{
    // f32 groups take blocks of up to `BLOCK` unless that leaves a smaller last block than the
    // wide blocks do: a wide block's fewer, longer runs of each column read a whole sweep's
    // weights faster from L2, but within a group the blocks read the same few columns, whose
    // lines the first block brought in; and a last block of a few chunks, one partial sum
    // each, is a chain per group that the other blocks do not hide. Measured on Zen 2: f32
    // steps faster with blocks of 8 at 128, 176, 184, 200 and 256 units (8 + 8, 8 + 8 + 6,
    // 8 + 8 + 7, 8 + 8 + 8 + 1 and 8 × 4, against 12 + 4, 12 + 8 + 2, 12 + 8 + 3, 12 + 12 + 1
    // and 12 + 12 + 8), as fast at 168, slower at 129 and 152 (8 + 8 + 1 and 8 + 8 + 3,
    // against 12 + 5 and 12 + 7); binary16 and bf16 steps slower at 128 units
    // (as fast at 256), so they keep the wide block. One partial sum per block either way, so
    // the blocks do not change a chunk's sums, and each format keeps its widened cell's bits.
    const WIDE: bool = size_of::<E>() < size_of::<f32>()
        || !narrow_last_block(H.div_ceil(S::LANES), S::BLOCK, S::WIDE_BLOCK);

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn block<const B: usize>(&mut self, s: S, first: usize) {
        let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, first + c, S::LANES));
        let mut acc = [[s.splat(0.0); B]; 1];
        for c in 0..B {
            acc[0][c] = self.sums.load(s, first + c);
        }
        if BACKWARD {
            sweep_backward::<S, E, H, B, 1, true>(s, &mut acc, self.columns, self.z, &starts);
        } else {
            sweep::<S, E, H, B, 1, true>(s, &mut acc, self.columns, self.z, &starts);
        }
        for c in 0..B {
            self.sums.store(s, first + c, acc[0][c]);
        }
    }
}

/// `v` (an input, or a caller's state) as a step reads it on entry: `v` itself when no value
/// needs the flush (the common case, which copies nothing), else `copy` filled with its
/// flushed values (see `crate::flush`).
///
/// A branch rather than an unconditional flush: predicted, it keeps the check off the
/// dependency chain from one step's state to the next, where a flush through a copy would add
/// its latency to every step. The copy starts uninitialised: a zeroed one cost a store per
/// value in every step where the compiler did not sink it into the branch. Checked a vector at
/// a time: a check the compiler is left to vectorise, it interleaves with the loads of the
/// columns' inputs, in several times the instructions.
#[inline(always)]
pub(super) fn on_entry<'a, S: Simd, const I: usize>(
    s: S,
    x: &'a [f32; I],
    copy: &'a mut core::mem::MaybeUninit<[f32; I]>,
) -> &'a [f32; I] {
    // A plain loop: an iterator's `fold` over the backend's operations may be left a call,
    // compiled without the backend's instructions (the remainder's check is plain integer
    // arithmetic, `inline(always)`).
    let whole = I - I % S::LANES;
    let mut any = crate::flush::needs_flush(x.get(whole..).unwrap_or_default());
    let mut start = 0;
    while start < whole {
        any |= s.needs_flush(s.load(x, start));
        start += S::LANES;
    }
    if any {
        copy.write(crate::flush::flushed(x))
    } else {
        x
    }
}

/// `out = A(W_xh·x + W_hh·h + b)`, the columns last to first if `BACKWARD` (where the step is
/// [`ranged`], the ranges last to first, each still first to last: the same bits).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn step<
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    A: Activation,
    const BACKWARD: bool,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    x: &[f32; I],
    h: &[f32; H],
) -> [f32; H] {
    // Inputs below `FLUSH_BELOW` read as +0 (see `crate::flush`); `h` is flushed already (a
    // caller's state is checked by `Backend::step_weights`, `CallerStep` or the entry that takes
    // it as packed pairs, `x86::Avx2Fma::step_split`; a sequence's by the kernel that wrote it).
    let mut copy = core::mem::MaybeUninit::uninit();
    let x = on_entry(s, x, &mut copy);
    let mut out = [0.0; H];
    if H == 0 {
        return out;
    }
    if const { grouped::<S, I, H>() } {
        return step_grouped::<S, E, I, H, A, BACKWARD>(s, w, x, h);
    }
    for_each_block::<S, H, _>(
        s,
        &mut StepBlocks::<I, H, E, A, BACKWARD> {
            w,
            xh: (x, h),
            out: &mut out,
            activation: PhantomData,
        },
    );
    out
}

/// `step` of a cell of one chunk (`H ≤ LANES`), its new state returned as the chunk's vector
/// (the first `H` lanes): the same block, so the same bits.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(super) fn chunk_step<S: Simd, E: Element, const I: usize, const H: usize, A: Activation>(
    s: S,
    w: Weights<'_, I, H, E>,
    x: &[f32; I],
    h: &[f32; H],
) -> S::V {
    let [sums] = sums_at::<S, E, I, H, 1, false, _>(s, w, x, h, 0);
    activate::<S, A>(s, sums)
}

/// `step` over the inputs of `xs` in turn (as many as `outs` has items), from the state `h`,
/// which is left holding the last step's result; `each` is handed every new state with the
/// next item of `outs`. The same operations as `step`'s, so the same bits, but the state stays
/// in registers from one step to the next, and the loop (with `each`, when it is inlined)
/// inside the kernel's target features.
///
/// `each` gets a state once the next step is under way, so that in the CPU's oldest-first
/// scheduling the next step's chain goes ahead of `each`'s work (a readout issued right after
/// the step it reads delays that chain).
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn run<S: Simd, E: Element, const I: usize, const H: usize, A: Activation, Y, F: Each<H, Y>>(
    s: S,
    w: Weights<'_, I, H, E>,
    xs: &[SVector<f32, I>],
    h: &mut [f32; H],
    outs: impl Iterator<Item = Y>,
    mut each: F,
) {
    let mut steps = xs.iter().zip(outs);
    let Some((x, mut pending)) = steps.next() else {
        return;
    };
    // The first state is the caller's: flushed once, here (see `crate::flush`). The states the
    // loop carries are the kernel's own, flushed by `activate`.
    if crate::flush::needs_flush(h) {
        *h = crate::flush::flushed(h);
    }
    let chunks = H.div_ceil(S::LANES);
    // A ranged step's sums are its ranges' (see `ranged_sums`): only the step's own loop
    // below has them.
    let ranged = const { ranged::<S, I, H>() };
    if S::PERMUTE_STATE
        && !E::PAIRED
        && !ranged
        && (1..=3).contains(&chunks)
        && chunks <= S::BLOCK
        && chunks < S::SWEEP_LOOP_FROM
    {
        // Up to 3 chunks, one block whose sweep is unrolled: the state carried as its vectors
        // (see `run_lanes`). A block whose sweep is a loop (`rolled`) reads the state's values
        // from memory, one load each, whatever the build: there the steps below ran faster
        // than the permutations.
        let steps = (x, steps);
        match chunks {
            1 => run_lanes::<S, E, I, H, 1, A, Y, F>(s, w, steps, (h, pending), each),
            2 => run_lanes::<S, E, I, H, 2, A, Y, F>(s, w, steps, (h, pending), each),
            _ => run_lanes::<S, E, I, H, 3, A, Y, F>(s, w, steps, (h, pending), each),
        }
    } else if H <= S::LANES && !ranged {
        // One chunk: the state carried as its vector. Carried as an array, a state of 2 units
        // went through a general register (an 8-byte integer to the compiler) on its way from
        // one step's tanh to the next step's broadcasts. Each input flushed on entry.
        let mut x_copy = core::mem::MaybeUninit::uninit();
        let first = on_entry(s, &x.data.0[0], &mut x_copy);
        let mut state = chunk_step::<S, E, I, H, A>(s, w, first, h);
        for (x, out) in steps {
            let mut now = [0.0; H];
            s.store(state, &mut now, 0);
            let x = on_entry(s, &x.data.0[0], &mut x_copy);
            state = chunk_step::<S, E, I, H, A>(s, w, x, &now);
            each.each(s, &now, core::mem::replace(&mut pending, out));
        }
        s.store(state, h, 0);
        each.each(s, h, pending);
    } else if (4..=S::BLOCK).contains(&H.div_ceil(S::LANES)) && !ranged {
        // One block of 4 to `BLOCK` chunks, where the step is throughput-bound: pipelined.
        let x = &x.data.0[0];
        match H.div_ceil(S::LANES) {
            4 => run_block_of::<S, E, I, H, 4, A, Y, F>(s, w, x, steps, (h, pending), each),
            5 => run_block_of::<S, E, I, H, 5, A, Y, F>(s, w, x, steps, (h, pending), each),
            6 => run_block_of::<S, E, I, H, 6, A, Y, F>(s, w, x, steps, (h, pending), each),
            7 => run_block_of::<S, E, I, H, 7, A, Y, F>(s, w, x, steps, (h, pending), each),
            _ => run_block_of::<S, E, I, H, 8, A, Y, F>(s, w, x, steps, (h, pending), each),
        }
    } else {
        let mut state = step::<S, E, I, H, A, false>(s, w, &x.data.0[0], h);
        // A ranged step alternates its direction (the same bits; see `ranged_sums`).
        let mut backward = false;
        for (x, out) in steps {
            backward = ranged && const { alternates::<E, I, H>() } && !backward;
            let next = if backward {
                step::<S, E, I, H, A, true>(s, w, &x.data.0[0], &state)
            } else {
                step::<S, E, I, H, A, false>(s, w, &x.data.0[0], &state)
            };
            each.each(s, &state, core::mem::replace(&mut pending, out));
            state = next;
        }
        each.each(s, &state, pending);
        *h = state;
    }
}

/// `run` of a cell of `C ≤ 3` chunks (one block, latency-bound): the state carried from one
/// step to the next as its chunk vectors, each step's `W_hh` sweep broadcasting its values by
/// lane permutations ([`Chunks`]), one instruction each, where values read from an array
/// became two shuffles each in a build for the default CPU. Each input flushed on entry. The
/// same sums in the same order as `step`'s, so the same bits. Taken for the blocks whose sweep
/// the compiler unrolls, below [`Simd::SWEEP_LOOP_FROM`].
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn run_lanes<
    'a,
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const C: usize,
    A: Activation,
    Y,
    F: Each<H, Y>,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    (x, steps): (
        &'a SVector<f32, I>,
        impl Iterator<Item = (&'a SVector<f32, I>, Y)>,
    ),
    (h, mut pending): (&mut [f32; H], Y),
    mut each: F,
) {
    let lanes = s.lanes();
    let starts: [usize; C] = core::array::from_fn(|c| chunk_start(H, c, S::LANES));
    let mut x_copy = core::mem::MaybeUninit::uninit();
    let first = on_entry(s, &x.data.0[0], &mut x_copy);
    let sums = sums_at::<S, E, I, H, C, false, _>(s, w, first, &*h, 0);
    let mut state = activated::<S, A, C>(s, sums);
    for (x, out) in steps {
        let mut now = [0.0; H];
        for c in 0..C {
            s.store(state[c], &mut now, starts[c]);
        }
        let x = on_entry(s, &x.data.0[0], &mut x_copy);
        let sums = sums_at::<S, E, I, H, C, false, _>(s, w, x, Chunks(&state, &lanes), 0);
        state = activated::<S, A, C>(s, sums);
        each.each(s, &now, core::mem::replace(&mut pending, out));
    }
    for c in 0..C {
        s.store(state[c], h, starts[c]);
    }
    each.each(s, h, pending);
}

/// `run` of a cell whose units are one block of `B` chunks, with its partial sums.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn run_block_of<
    'a,
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    A: Activation,
    Y,
    F: Each<H, Y>,
>(
    s: S,
    w: Weights<'_, I, H, E>,
    x: &[f32; I],
    steps: impl Iterator<Item = (&'a SVector<f32, I>, Y)>,
    state: (&mut [f32; H], Y),
    each: F,
) {
    match partial_sums(B, H, S::CHAINS, S::SMALL_BLOCK_CHAINS) {
        1 => run_pipelined::<S, E, I, H, B, 1, A, Y, F>(s, w, x, steps, state, each),
        2 => run_pipelined::<S, E, I, H, B, 2, A, Y, F>(s, w, x, steps, state, each),
        3 => run_pipelined::<S, E, I, H, B, 3, A, Y, F>(s, w, x, steps, state, each),
        4 => run_pipelined::<S, E, I, H, B, 4, A, Y, F>(s, w, x, steps, state, each),
        _ => run_pipelined::<S, E, I, H, B, 8, A, Y, F>(s, w, x, steps, state, each),
    }
}

/// `run` of a cell whose units are one block (`B` chunks, `P` partial sums), from the first
/// input `x`, software-pipelined: each step's input sums `b + W_xh·x` are issued right after
/// the previous step's activation, which the CPU overlaps with them, and before the `W_hh`
/// sweep that waits for it. The same sums in the same order as `step`'s, so the same bits.
/// Issued before the activation instead, the input sums filled the CPU's window first, and the
/// gain was smaller.
#[cfg_attr(debug_assertions, inline)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn run_pipelined<
    'a,
    S: Simd,
    E: Element,
    const I: usize,
    const H: usize,
    const B: usize,
    const P: usize,
    A: Activation,
    Y,
    F: Each<H, Y>,
>(
    s: S,
    (w_xh, w_hh, b): Weights<'_, I, H, E>,
    x: &[f32; I],
    steps: impl Iterator<Item = (&'a SVector<f32, I>, Y)>,
    (h, mut pending): (&mut [f32; H], Y),
    mut each: F,
) {
    let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, c, S::LANES));
    let mut acc = start_sums::<S, H, B, P>(s, b, &starts);
    let mut copy = core::mem::MaybeUninit::uninit();
    let x = on_entry(s, x, &mut copy);
    sweep::<S, E, H, B, P, false>(s, &mut acc, w_xh, x, &starts);
    sweep::<S, E, H, B, P, false>(s, &mut acc, w_hh, h, &starts);
    let mut sums = pairwise::<S, B, P>(s, acc);
    for (x, out) in steps {
        let mut state = [0.0; H];
        for c in 0..B {
            s.store(activate::<S, A>(s, sums[c]), &mut state, starts[c]);
        }
        let mut acc = start_sums::<S, H, B, P>(s, b, &starts);
        let x = on_entry(s, &x.data.0[0], &mut copy);
        sweep::<S, E, H, B, P, false>(s, &mut acc, w_xh, x, &starts);
        sweep::<S, E, H, B, P, false>(s, &mut acc, w_hh, &state, &starts);
        sums = pairwise::<S, B, P>(s, acc);
        each.each(s, &state, core::mem::replace(&mut pending, out));
    }
    for c in 0..B {
        s.store(activate::<S, A>(s, sums[c]), h, starts[c]);
    }
    each.each(s, h, pending);
}

/// Up to how many units a single step's kernel runs inlined in its caller's code in a build
/// that enables the features of the backend it runs on ([`Kernel::INLINE`]). Left to the
/// compiler, the backend's entry of a size stepped from more than one place in a program stayed
/// a call: the state crossed it through memory, and a state returned by value was copied after
/// it, both on the chain from one step to the next. Above 32 units inlining measured no gain,
/// and larger kernels copied into every call lengthen a build that steps many sizes from many
/// places (the crate's tests).
const INLINE_UNITS: usize = 32;

/// One step, `A(W_xh·x + W_hh·h + b)`, the columns (or where the step is [`ranged`], the
/// ranges) last to first if `BACKWARD`.
pub(crate) struct Step<'a, const I: usize, const H: usize, A, const BACKWARD: bool, E = f32> {
    pub(crate) w: Weights<'a, I, H, E>,
    pub(crate) x: &'a [f32; I],
    pub(crate) h: &'a [f32; H],
    pub(crate) activation: PhantomData<A>,
}

impl<S: Simd, E: Element, const I: usize, const H: usize, A: Activation, const BACKWARD: bool>
    Kernel<S> for Step<'_, I, H, A, BACKWARD, E>
{
    type Output = [f32; H];

    const INLINE: bool = H <= INLINE_UNITS;

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) -> [f32; H] {
        step::<S, E, I, H, A, BACKWARD>(s, self.w, self.x, self.h)
    }
}

/// [`Step`] from a caller's state, which may hold tiny values: the state is checked (and where
/// it must be, flushed) inside the kernel, a vector at a time as the input is, where a check
/// before the call runs in the caller's instructions (SSE2 in a default build), several times
/// as many. A predicted branch either way, off the chain from one step's state to the next.
/// Taken above 48 units, and in a build that enables AVX2, FMA and F16C, where the kernel may
/// inline: in other builds, the caller checks a state of 17 to 48 units before the kernel's call
/// (see `x86::checks_before_call`), and up to 16 units the entry that takes the state as packed
/// pairs checks it, or the caller (see `x86::splits`).
pub(crate) struct CallerStep<'a, const I: usize, const H: usize, A, E = f32> {
    pub(crate) w: Weights<'a, I, H, E>,
    pub(crate) x: &'a [f32; I],
    pub(crate) h: &'a [f32; H],
    /// Whether a [`ranged`] step takes its ranges last to first (the same bits).
    pub(crate) backward: bool,
    pub(crate) activation: PhantomData<A>,
}

impl<S: Simd, E: Element, const I: usize, const H: usize, A: Activation> Kernel<S>
    for CallerStep<'_, I, H, A, E>
{
    type Output = [f32; H];

    const INLINE: bool = H <= INLINE_UNITS;

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) -> [f32; H] {
        let mut copy = core::mem::MaybeUninit::uninit();
        let h = on_entry(s, self.h, &mut copy);
        if const { ranged::<S, I, H>() } && self.backward {
            return step::<S, E, I, H, A, true>(s, self.w, self.x, h);
        }
        step::<S, E, I, H, A, false>(s, self.w, self.x, h)
    }
}

/// One step of a state in place, `h = A(W_xh·x + W_hh·h + b)`: the sweep reads all of `h`
/// before the new state is stored over it. No value comes back through the call, so nothing is
/// copied after it: a state returned by value (through memory, from 5 units on) is copied again
/// in the caller's code, on the chain from one step to the next. A `CALLER`'s state may hold
/// tiny values, checked (and where it must be, flushed) on entry as [`CallerStep`] checks them;
/// a network's own state is flushed already.
pub(crate) struct StepInPlace<'a, const I: usize, const H: usize, A, const CALLER: bool, E = f32> {
    pub(crate) w: Weights<'a, I, H, E>,
    pub(crate) x: &'a [f32; I],
    pub(crate) h: &'a mut [f32; H],
    /// Whether a [`ranged`] step takes its ranges last to first (the same bits).
    pub(crate) backward: bool,
    pub(crate) activation: PhantomData<A>,
}

impl<S: Simd, E: Element, const I: usize, const H: usize, A: Activation, const CALLER: bool>
    Kernel<S> for StepInPlace<'_, I, H, A, CALLER, E>
{
    type Output = ();

    const INLINE: bool = H <= INLINE_UNITS;

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) {
        let mut copy = core::mem::MaybeUninit::uninit();
        let h = if CALLER {
            on_entry(s, &*self.h, &mut copy)
        } else {
            &*self.h
        };
        let out = if const { ranged::<S, I, H>() } && self.backward {
            step::<S, E, I, H, A, true>(s, self.w, self.x, h)
        } else {
            step::<S, E, I, H, A, false>(s, self.w, self.x, h)
        };
        *self.h = out;
    }
}

/// What a sequence's loop does with each new state and the next item of its outputs, handed
/// the backend's token so that a readout there can take the backend's own operations
/// ([`ReadOut`]); any `FnMut(&[f32; H], Y)` is one.
pub(crate) trait Each<const H: usize, Y> {
    /// Called with each new state, in order.
    fn each<S: Simd>(&mut self, s: S, h: &[f32; H], out: Y);
}

impl<const H: usize, Y, F: FnMut(&[f32; H], Y)> Each<H, Y> for F {
    #[inline(always)]
    fn each<S: Simd>(&mut self, _: S, h: &[f32; H], out: Y) {
        self(h, out);
    }
}

/// Each state read out into the next output, inlined into the kernel's loop: called, the
/// readout made the compiler spill the state around every call, back onto the chain from one
/// step to the next.
pub(crate) struct ReadOut<'a, const H: usize, const O: usize>(pub(crate) &'a Readout<H, O>);

impl<const H: usize, const O: usize> Each<H, &mut SVector<f32, O>> for ReadOut<'_, H, O> {
    #[inline(always)]
    fn each<S: Simd>(&mut self, s: S, h: &[f32; H], out: &mut SVector<f32, O>) {
        *out = s.read_out(self.0, h);
    }
}

/// A sequence of steps (see [`run`]).
pub(crate) struct Run<'a, const I: usize, const H: usize, A, O, F, E = f32> {
    pub(crate) w: Weights<'a, I, H, E>,
    pub(crate) xs: &'a [SVector<f32, I>],
    pub(crate) h: &'a mut [f32; H],
    pub(crate) outs: O,
    pub(crate) each: F,
    pub(crate) activation: PhantomData<A>,
}

impl<S, E, const I: usize, const H: usize, A, Y, O, F> Kernel<S> for Run<'_, I, H, A, O, F, E>
where
    S: Simd,
    E: Element,
    A: Activation,
    O: Iterator<Item = Y>,
    F: Each<H, Y>,
{
    type Output = ();

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) {
        run::<S, E, I, H, A, Y, F>(s, self.w, self.xs, self.h, self.outs, self.each);
    }
}
