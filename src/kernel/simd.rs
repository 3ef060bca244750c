//! The vector operations the kernel is written over, one implementation per backend, and the
//! one way into a backend's instructions: a [`Kernel`] run with a backend's [`Simd`] value.
//!
//! The kernel (`step.rs`, `project.rs`, `streams.rs`, `slices.rs`, `probe.rs`) is ordinary
//! generic Rust over [`Simd`]. Each backend runs it inside one `#[target_feature]` function
//! (`x86.rs`), into which every kernel function and vector operation is inlined: the kernel's
//! functions and the operations are `#[inline(always)]` where the build optimises, so that
//! they are compiled with the backend's instructions. (An unoptimised build inlines nothing:
//! forced there, every size's arm of the kernel shared one stack frame, and a debug build's
//! sequence kernel at (128, 256) took 1 MiB of stack.)

use nalgebra::SVector;

use crate::F16;
use crate::bf16::PairWord;
use crate::readout::Readout;

/// Which banks of the tanh activate their sums in a pass after the sweeps
/// ([`Simd::BANK_TANH_PASS`]). A block's activations wait on the end of its sweep, and in
/// program order the next block's sweep waits behind them: the pass runs the activations at
/// their buffer throughput instead, and the sweeps back to back. Where a bank is one block,
/// the pass only puts a store and a load between each sum and its tanh.
#[cfg_attr(
    not(target_arch = "x86_64"),
    expect(dead_code, reason = "only the x86-64 backends choose a pass")
)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BankTanhPass {
    /// None: each block activates its own sums.
    Never,
    /// Banks of more than 8 units (more than one block of units). With one block of units,
    /// each chunk of streams' sweep is short enough to overlap the previous chunk's
    /// activations.
    AboveEightUnits,
    /// Banks of more than 4 chunks of streams (64 streams on 16 lanes): always more than one
    /// block of chunks, whatever the number of units, since a block takes at most 4.
    AboveFourChunks,
}

/// The operations of one backend on vectors of `LANES` f32. A value of an implementing type
/// exists only where the CPU runs the backend's instructions.
///
/// Every operation rounds as IEEE 754 single precision does, lane by lane, so that a kernel
/// gives the same bits on every backend with the same `madd` (fused or not) and the same order
/// of additions, whatever the width.
pub(crate) trait Simd: Copy {
    /// `LANES` f32.
    type V: Copy;

    /// Lanes per vector.
    const LANES: usize;
    /// Independent accumulator chains in the throughput-bound sizes: blocks of 4 chunks and
    /// more (see [`partial_sums`](super::tiling::partial_sums)).
    const CHAINS: usize;
    /// Independent accumulator chains in a block of 1, 2 or 3 chunks (entry `chunks − 1`),
    /// where a step is latency-bound.
    const SMALL_BLOCK_CHAINS: [usize; 3];
    /// The largest block of a step, in chunks of `LANES` units, whose accumulators stay in
    /// registers.
    const BLOCK: usize;
    /// The block a step takes wherever that many chunks remain: 16 with 32 registers, 12 with
    /// 16 (as many accumulators as the registers hold beside two broadcasts and a weight, one
    /// partial sum each). Each block is a pass over all the columns, reading a run of each;
    /// where a step's weights stream from L2, the step's time over the time to read its
    /// weights grew with the number of runs, by about one cache line per run, so fewer and
    /// longer runs read less. `BLOCK` stays the block of one-block cells, of a step's last
    /// chunks, and of most f32 steps that take their columns in groups (`step::GroupBlocks`).
    ///
    /// On 8 lanes with 32 registers, only where one wide block is the whole cell (128 units):
    /// at 256 units, two wide blocks of binary16 weights stepped slower than four blocks of
    /// `BLOCK` on Zen 4, where that backend steps every `HalfCell`, while f32 and bf16 weights
    /// gained little; and the formats cannot take different blocks where a block's width sets
    /// its partial sums (a step that does not take its columns in groups), since each steps
    /// with the bits of its widened f32 cell.
    const WIDE_BLOCK: usize;
    /// Chunks per block of the input projections (`T·PROJECT_BLOCK` accumulators).
    const PROJECT_BLOCK: usize;
    /// Columns of `f32` weights per group of a step whose weights are larger than an L1 data
    /// cache and whose units are many blocks (`step::grouped`); as many bytes of each row, so
    /// twice the columns, for half-precision weights. Even, so that a group never splits a
    /// pair of bf16 columns, or 0 for no groups.
    const GROUP_COLUMNS: usize;
    /// The smallest block, in chunks, whose sweeps in a step keep their groups of columns a
    /// loop rather than unrolled whole, up to [`BLOCK`](Self::BLOCK) (see `step::rolled`);
    /// `usize::MAX` for none.
    const SWEEP_LOOP_FROM: usize;

    /// Every lane `value`.
    fn splat(self, value: f32) -> Self::V;
    /// Whether a sequence carries a state of up to 3 chunks as its vectors and broadcasts its
    /// values by [`lane`](Self::lane), rather than reading them from the state stored to memory:
    /// on the 256-bit backends, whose permutations take a port (Intel's port 5) that their
    /// multiply-adds do not. Not on the 512-bit backend, whose multiply-adds take that port
    /// too, so that a permutation per column takes a multiply-add's place, nor on the portable
    /// one, which has no lane permutation. Only for a block below
    /// [`SWEEP_LOOP_FROM`](Self::SWEEP_LOOP_FROM), whose sweep from memory the compiler
    /// unrolls and may rewrite each broadcast as two shuffles; a sweep kept a loop loads each
    /// value, and there the state in memory was the faster (on an AMD Zen 2). The permutations
    /// were measured faster on Intel's cores, against the two shuffles; on a Zen 2 the one-chunk
    /// sequences ran faster from memory too.
    const PERMUTE_STATE: bool;
    /// What [`lane`](Self::lane) reads a lane number from, made once per kernel call.
    type Lanes: Copy;
    /// The lane numbers for [`lane`](Self::lane).
    fn lanes(self) -> Self::Lanes;
    /// Every lane the value of lane `j < LANES` of `v` (zeros for any other `j`): one lane
    /// permutation on the backends with [`PERMUTE_STATE`](Self::PERMUTE_STATE), whose sweep of
    /// a state held in registers broadcasts each of its values this way.
    fn lane(self, v: Self::V, lanes: &Self::Lanes, j: usize) -> Self::V;
    /// The chunk of `row` from `start` (`start ≤ L − LANES`; zeros for any other start): or,
    /// when `L < LANES`, the whole row padded with zeros.
    fn load<const L: usize>(self, row: &[f32; L], start: usize) -> Self::V;
    /// [`load`](Self::load) of half-precision values, each widened to f32 (exactly).
    fn load_half<const L: usize>(self, row: &[F16; L], start: usize) -> Self::V;
    /// The chunk from `start` of the two columns of a bf16 pair (see
    /// [`PairWord`]), one load for both: lane `j` is the 32-bit word `hi << 16 | lo` of the
    /// pair's 16-bit words `2j` (`lo`) and `2j + 1` (`hi`); the even column's weight is
    /// `lo << 16` (one shift), the odd column's the word itself. Zeros for a start past the
    /// end; a pair shorter than `LANES` rows is padded with zeros.
    fn load_pair<const L: usize>(self, pair: &[[PairWord; L]; 2], start: usize) -> [Self::V; 2];
    /// [`load`](Self::load) of bf16 values (a pair's lone last column), each widened to f32 by
    /// a shift.
    fn load_bf16<const L: usize>(self, row: &[PairWord; L], start: usize) -> Self::V;
    /// Writes `v` to `row` as [`load`](Self::load) reads it: the `LANES` values from `start`
    /// (nothing if they do not fit), or, when `L < LANES`, its first `L` lanes.
    fn store<const L: usize>(self, v: Self::V, row: &mut [f32; L], start: usize);
    /// The first `LANES` values, zero-padded past the end of `values`.
    fn load_slice(self, values: &[f32]) -> Self::V;
    /// The first lanes of `v` into `out`, as many as both have.
    fn store_slice(self, v: Self::V, out: &mut [f32]);
    /// Input `k` of `LANES` streams from their consecutive values, `I` per stream (`k < I`):
    /// lane `l` is `values[l·I + k]`, zero past the end of `values`. In registers, by lane
    /// shuffles, when `values` holds the `LANES·I` of them and `I` is small (below 8 on 8
    /// lanes, 16 on 16); else without shuffles (a value at a time, or for `I = 1` a load).
    fn deinterleave<const I: usize>(self, values: &[f32], k: usize) -> Self::V;
    /// `a·b + c`: fused (one rounding) on a fused backend, else two roundings.
    fn madd(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`: the fast tanh's one division, alone (for the divider's floor in
    /// [`probe`](super::probe)).
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// The fast tanh of [`crate::tanh`], lane by lane, with this backend's `madd`.
    fn tanh(self, v: Self::V) -> Self::V;
    /// `max(v, 0)`, NaN kept.
    fn relu(self, v: Self::V) -> Self::V;
    /// `y`, with +0 in the lanes where `z` is smaller than
    /// [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude (NaN kept).
    fn flush_where_tiny(self, z: Self::V, y: Self::V) -> Self::V;
    /// `v` with +0 in the lanes smaller than [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude,
    /// compared as integers: a caller's value may be subnormal, and a floating-point comparison
    /// of it raises the denormal flag (a microcode assist on some CPUs).
    fn flush_input(self, v: Self::V) -> Self::V;
    /// Whether [`flush_input`](Self::flush_input) would change a lane of `v` other than −0:
    /// one is nonzero and smaller than [`FLUSH_BELOW`](crate::FLUSH_BELOW) in magnitude,
    /// compared as integers.
    fn needs_flush(self, v: Self::V) -> bool;
    /// Whether a bank of more than one chunk of streams takes its units 5 at a time, each block
    /// two chunks of streams at a time, rather than 8 with one (unless
    /// [`bank_pairs_chunks`](Self::bank_pairs_chunks)): 10 accumulators, 5 broadcast weights
    /// and a vector of streams, the 16 registers, where 8 accumulators were 8 chains, too few
    /// to cover the multiply-add latency, and a column's 8 weights and 1 vector of streams were
    /// 9 loads per 8 multiply-adds. Only in cells of more than 8 units (a first layer of up to
    /// 8 stays one block, which loads and flushes each input once); the last 1 to 4 units take
    /// the blocks they took before, and a last odd chunk of streams takes blocks of 8 units (5
    /// units over one chunk would be 5 chains). The sums are the same either way, each unit's
    /// one chain of columns in order.
    const BANK_FIVES: bool = false;
    /// Which banks of the tanh activate their sums in a pass of their own, over the whole
    /// state, after every block's sweep, rather than each block its own sums as its sweep ends
    /// ([`BankTanhPass`]). The same activation of the same sums, so the same bits.
    const BANK_TANH_PASS: BankTanhPass = BankTanhPass::Never;

    /// Whether a bank's blocks of 7 or 8 of its `units` units take two chunks of streams at a
    /// time (16 accumulators) rather than one: where the registers hold them beside the
    /// weights (`CHAINS ≥ 16`).
    #[inline(always)]
    fn bank_pairs_chunks(self, units: usize) -> bool {
        let _ = units;
        Self::CHAINS >= 16
    }

    /// `readout`'s logits of the flushed state `h`, with the bits of
    /// [`Readout::logits_of_clean`] (the same products and sums in the same order): that code,
    /// which the compiler vectorises with the backend's instructions, unless the backend has
    /// its own.
    #[inline(always)]
    fn read_out<const H: usize, const O: usize>(
        self,
        readout: &Readout<H, O>,
        h: &[f32; H],
    ) -> SVector<f32, O> {
        readout.logits_of_clean(h)
    }
}

/// The lane shuffles of an 8-lane backend, for a bank's inputs transposed to unit-major.
pub(crate) trait Shuffle8: Simd {
    /// Lane numbers for [`permute`](Self::permute).
    type Order: Copy;

    /// The 8 values as a vector.
    fn load8(self, lanes: &[f32; 8]) -> Self::V;
    /// The vector's 8 values.
    #[cfg_attr(
        not(target_arch = "x86_64"),
        expect(dead_code, reason = "called by the x86-64 backends only")
    )]
    fn store8(self, v: Self::V) -> [f32; 8];
    /// `order` as lane numbers.
    fn lane_order(self, order: &[u32; 8]) -> Self::Order;
    /// Lane `l` is lane `order[l]` of `v` (every number below 8).
    fn permute(self, v: Self::V, order: Self::Order) -> Self::V;
    /// Lane `l` from `a` where lane `l` of `mask` has its sign bit set, else from `b`.
    fn select(self, mask: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// The 8×8 block whose rows are `rows`, transposed: lane `l` of column `j` is lane `j` of
    /// row `l`.
    fn transpose8(self, rows: [&[f32; 8]; 8]) -> [Self::V; 8];
}

/// A stored weight: f32, or half precision widened to f32 (exactly) when loaded, or a word of
/// a bf16 pair, whose columns are read two at a time.
pub(crate) trait Element: Copy {
    /// Whether two columns share each load ([`PairWord`]): the kernels then read the columns
    /// of a matrix two at a time ([`load_pair`](Self::load_pair)), the last one alone
    /// ([`load`](Self::load)) when their number is odd, and a single weight through
    /// [`weight`](Self::weight).
    const PAIRED: bool = false;

    /// Whether the 512-bit backend steps weights stored as `Self` on its 8-lane sibling at
    /// every size on a CPU that splits 512-bit operations in two (see `Backend::for_weights`):
    /// their widening has a 16-lane form that takes longer than two 8-lane ones there.
    #[cfg_attr(
        not(target_arch = "x86_64"),
        expect(dead_code, reason = "read by the x86-64 backends only")
    )]
    const NARROW: bool = false;

    /// [`Simd::load`] of weights: a column (of a paired matrix, its lone last column).
    fn load<S: Simd, const L: usize>(s: S, row: &[Self; L], start: usize) -> S::V;
    /// The chunks from `start` of two consecutive columns (of a paired matrix, one pair).
    #[inline(always)]
    fn load_pair<S: Simd, const L: usize>(s: S, pair: &[[Self; L]; 2], start: usize) -> [S::V; 2] {
        [
            Self::load(s, &pair[0], start),
            Self::load(s, &pair[1], start),
        ]
    }
    /// The weight as f32 (not called for a paired element, whose words are not weights).
    fn value(self) -> f32;
    /// Weight `j` of column `k` of the matrix with these columns, as f32; zero outside it.
    #[inline(always)]
    fn weight<const L: usize>(columns: &[[Self; L]], k: usize, j: usize) -> f32 {
        columns
            .get(k)
            .and_then(|column| column.get(j))
            .map_or(0.0, |w| w.value())
    }
}

impl Element for f32 {
    #[inline(always)]
    fn load<S: Simd, const L: usize>(s: S, row: &[f32; L], start: usize) -> S::V {
        s.load(row, start)
    }

    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
}

impl Element for F16 {
    /// On Zen 4, `vcvtph2ps` to a zmm register widens 16 weights in far more time than two
    /// conversions to ymm registers take: on 16 lanes, a step of half weights took as long as
    /// the f32 step; on 8, well under. On the CPUs that run it whole (Intel's, Zen 5), the
    /// 16-lane step was the faster of the two (slower than the f32 step on Intel's, faster from
    /// (64, 128) on on Zen 5: `HalfCell`'s docs).
    const NARROW: bool = true;

    #[inline(always)]
    fn load<S: Simd, const L: usize>(s: S, row: &[F16; L], start: usize) -> S::V {
        s.load_half(row, start)
    }

    #[inline(always)]
    fn value(self) -> f32 {
        self.to_f32()
    }
}

impl Element for PairWord {
    const PAIRED: bool = true;

    #[inline(always)]
    fn load<S: Simd, const L: usize>(s: S, row: &[PairWord; L], start: usize) -> S::V {
        s.load_bf16(row, start)
    }

    #[inline(always)]
    fn load_pair<S: Simd, const L: usize>(
        s: S,
        pair: &[[PairWord; L]; 2],
        start: usize,
    ) -> [S::V; 2] {
        s.load_pair(pair, start)
    }

    #[inline(always)]
    fn value(self) -> f32 {
        crate::bf16::widen(self.0)
    }

    #[inline(always)]
    fn weight<const L: usize>(columns: &[[Self; L]], k: usize, j: usize) -> f32 {
        crate::bf16::paired_weight(columns, k, j)
    }
}

/// A computation to run with backend `S`'s instructions: the backend calls
/// [`run`](Self::run) inside its `#[target_feature]` entry.
pub(crate) trait Kernel<S> {
    /// What the computation returns.
    type Output;

    /// Whether the kernel runs inlined in the caller's code wherever it is called, in a build
    /// that enables the features of the backend it runs on (the backend's `dispatch` then
    /// calls [`run`](Self::run) itself), rather than through the backend's
    /// `#[target_feature]` entry, which the compiler inlines or leaves a call as it weighs
    /// each caller. Only one backend does so in a build: the 8-lane one of the widest
    /// instruction set the build enables (see `x86::token!`), so that each call holds one copy
    /// of the kernel, not one per backend.
    #[cfg_attr(
        not(target_arch = "x86_64"),
        expect(dead_code, reason = "read by the x86-64 backends only")
    )]
    const INLINE: bool = false;

    /// Runs the computation on `simd`.
    fn run(self, simd: S) -> Self::Output;
}

/// Up to `N` values, zero-padded.
#[inline(always)]
pub(crate) fn padded<T: Copy + Default, const N: usize>(values: &[T]) -> [T; N] {
    let mut lanes = [T::default(); N];
    for (lane, value) in lanes.iter_mut().zip(values) {
        *lane = *value;
    }
    lanes
}

/// The `N` values of `row` from `start`, if they fit.
#[inline(always)]
pub(crate) fn window<T, const L: usize, const N: usize>(
    row: &[T; L],
    start: usize,
) -> Option<&[T; N]> {
    row.get(start..).and_then(<[T]>::first_chunk::<N>)
}

/// Writes the vector `lanes` of `N` values to `row` as [`Simd::store`] says.
#[inline(always)]
pub(crate) fn put<const L: usize, const N: usize>(
    row: &mut [f32; L],
    start: usize,
    lanes: [f32; N],
) {
    if L < N {
        for (value, lane) in row.iter_mut().zip(lanes) {
            *value = lane;
        }
    } else if let Some(chunk) = row.get_mut(start..).and_then(<[f32]>::first_chunk_mut::<N>) {
        *chunk = lanes;
    }
}
