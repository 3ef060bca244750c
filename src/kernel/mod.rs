//! The fast step and the backends that run it.
//!
//! ```text
//! acc = b;  for k < I: acc += x_k · W_xh[:, k];  for k < H: acc += h_k · W_hh[:, k];  h' = A(acc)
//! ```
//!
//! A column-broadcast sweep over `[x; h]`: each weight column is read once, contiguously (the
//! cell stores its weights column-major), multiplied by one broadcast value and added into
//! vector accumulators that hold 8 or 16 hidden units each. No horizontal sums.
//!
//! # Layout, tails and register blocking
//!
//! - The hidden units are covered by chunks of a vector's lanes (8 or 16) starting at 0, 8,
//!   16, … (or 0, 16, 32, …). When the lanes do not divide `H`, the last chunk starts at
//!   `H − lanes` and overlaps its neighbour: the overlapping units are computed twice, by the
//!   same operations in the same order where the two chunks share a block and its partial
//!   sums, so that both writes store the same bits; where the last chunk is a block of its
//!   own, with other partial sums, its write (the later) stands. Every load is a full load
//!   inside its column and no padding is needed, which keeps the cell's weights in nalgebra's
//!   own layout and its constructors `const`. Cells with fewer units than lanes read each
//!   column zero-padded (a constant-length copy or a masked load).
//! - Chunks are grouped into blocks of up to `BLOCK` (8 chunks); a block keeps its
//!   accumulators in registers for the whole sweep. A step takes `WIDE_BLOCK` chunks per block
//!   (16 with 32 registers, 12 with 16) wherever that many remain (on 8 lanes, where they are
//!   the whole cell; not in most f32 steps that take their columns in groups, below): each block
//!   sweeps every column, and fewer, longer runs of each column read its weights faster.
//!   A block splits its sweep into `S` interleaved partial sums, so that `B·S` independent
//!   chains keep two FMA units busy: 8 chains in the latency-bound sizes (fewer than 4
//!   chunks), where the partial sums also shorten the chain that the recurrent state `h` waits
//!   on; in the throughput-bound ones, as many as whole sums of `B` chains come to without
//!   passing `CHAINS` (16 with 32 registers, 12 with 16), and at least one per chunk (so a
//!   block of 7 or 8 chunks with 16 registers has one sum). The partial sums are added
//!   pairwise at the end.
//! - Where a step's f32 weights are larger than an L1 data cache (32 KiB) and its units more
//!   than one block, the avx2+fma step takes its columns `GROUP_COLUMNS` at a time, and every
//!   block sweeps a group before the next group is read, with one partial sum each, the sums
//!   kept in memory between groups (`step::step_grouped`): the runs of a column that the
//!   blocks read are then read within a few columns of each other rather than a whole sweep
//!   apart, and the cache lines fetched for one run serve the next. There an f32 step's blocks
//!   are up to `BLOCK` chunks, not `WIDE_BLOCK`, unless that leaves a smaller last block: the
//!   blocks of a group read the same few columns, and the longer runs no longer save a read.
//! - Where a step's weights, as f32, are more than 64 KiB and at most 160 KiB (more than an L1
//!   data cache holds, but a few times one at most), its units are one block and it is not
//!   grouped, its columns are cut into at most 32 ranges of about 24 KiB of f32 weights (8 to
//!   64 columns, so less below 96 units), `step::ranged_sums`. The ranges of `W_xh`, then
//!   those of `W_hh`, are the leaves of a fixed binary tree, each swept first to last into sums
//!   of its own, their sums added up the tree. The kernel's steps from a caller's state or in
//!   place (`RnnCell::step` and `step_in_place`, a network's `step`) take the ranges in the
//!   other order from their thread's last step of the same cell (`direction`), and `run` from
//!   its own step before, so that each step starts on the ranges that the step before read last
//!   and L1 still holds, where a step in the same order as the one before starts on the columns
//!   an LRU-like cache evicted first. Both orders evaluate the same tree, so they give the same
//!   bits. (A step of up to 48 units that a default build's caller checks before the kernel's
//!   call goes forward.) A half-precision cell takes its widened f32 cell's ranges, so as to
//!   keep its bits, and alternates only where its own weights pass 64 KiB.
//!
//! # Backends
//!
//! - [`Backend::PORTABLE`]: `wide` vectors, multiply and add rounded separately. It gives the
//!   same bits on every machine, whatever the build flags.
//! - [`Backend::avx2_fma`] (x86-64): `core::arch` AVX2 with fused multiply-add, chosen at run
//!   time when the CPU has it, so a default build (which targets SSE2) gets the full width.
//! - [`Backend::avx512vl`] (x86-64): the same 8-lane kernel compiled with AVX-512F and
//!   AVX-512VL enabled, for their 32 vector registers: the same operations, larger blocks and
//!   more partial sums (so, from `H ≥ 32`, another order of additions).
//! - [`Backend::avx512`] (x86-64): the kernel on 16 lanes (zmm registers), for the CPUs that
//!   execute 512-bit operations at full width.
//!
//! The kernel is written once, as generic Rust over a small trait of vector operations
//! (`simd.rs`), and each backend runs it inside one `#[target_feature]` function: the files
//! of this module split it by concern (`tiling.rs`, `step.rs` for the single-stream step and
//! sequences, `project.rs`, `streams.rs` for banks, `slices.rs`, `probe.rs`).
//!
//! [`Backend::best`] picks the fastest one the CPU runs; [`RnnCell::step`](crate::RnnCell::step)
//! uses it, and [`RnnCell::step_with`](crate::RnnCell::step_with) takes one explicitly.
//!
//! In a default build each [`RnnCell::step`](crate::RnnCell::step) is a call into the
//! dispatched kernel. A cell of at most 4 units passes its state to that call and gets the new
//! one back as two `f64`s holding its lanes, which the calling convention keeps in vector
//! registers: as a `[f32; 2]` the new state came back in a general register, and the caller's
//! loop stored it for the next call to reload. A cell of 5 to 16 units passes its state as
//! eight such `f64`s, also in registers, and gets the new one back through memory (more than
//! a call returns in registers): one trip through memory per step instead of two, the
//! caller's copy of the state into its variable and the kernel's load of it. Larger states go
//! through memory, where their broadcasts load them anyway; so does the state a network keeps
//! (`Rnn::step` steps it in place, at most 4 units packed).
//!
//! # Sequences
//!
//! [`RnnCell::run`](crate::RnnCell::run) and `Rnn::process` step through a sequence inside one
//! call of the kernel, with `step`'s operations: the state stays in registers from one step to
//! the next (as the chunk's vector when `H ≤ 8`), and a cell of one throughput-bound block (4 to
//! `BLOCK` chunks) issues each step's input sums right after the previous step's activation,
//! so that the CPU overlaps the two.

use core::marker::PhantomData;

use nalgebra::{SMatrix, SVector};

use crate::activation::Activation;

pub use crate::flush::FLUSH_BELOW;
pub(crate) use choice::BackendChoice;
pub(crate) use step::ReadOut;
pub(crate) use streams::{BankInput, Flushing};

/// The number of outputs from which a network's readout runs in the backend's entry
/// ([`Backend::logits`]) rather than in the caller's code. From 4 outputs, a column of the
/// readout fills a 4-lane vector, and in the entry the compiler takes as many lanes as the
/// backend has (or the backend reads out with its own code, `Simd::read_out`): in a default
/// build, the caller's code has SSE2's 4. Below 4, the readout's own loop works on 4 lanes
/// whatever the build (`Readout::partial_logits`), and the entry would add a call and nothing
/// else.
pub(crate) const READOUT_ENTRY_FROM: usize = 4;

mod choice;
mod direction;
mod portable;
#[doc(hidden)]
pub mod probe;
mod project;
mod readout;
mod simd;
mod slices;
mod step;
mod streams;
mod tiling;
#[cfg(target_arch = "x86_64")]
mod x86;

use portable::Portable;
pub(crate) use simd::Element;
use simd::Kernel;
pub(crate) use step::Weights;
pub(crate) use streams::stream_values;

/// A set of instructions the fast step can run on. A value of this type exists only for a
/// backend that the running CPU supports.
///
/// ```
/// use elman::Backend;
///
/// let best = Backend::best();
/// println!("stepping with {}", best.name());
/// assert!(Backend::available().any(|b| b == best));
/// assert_eq!(Backend::PORTABLE.name(), "portable");
/// assert_eq!(format!("{:?}", Backend::PORTABLE), "Backend(portable)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend(Kind);

/// `Backend(NAME)`, the [`name`](Backend::name) (the CPU-feature token inside has nothing to show).
impl core::fmt::Debug for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Backend({})", self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(x86::Avx2Fma),
    #[cfg(target_arch = "x86_64")]
    Avx512Vl(x86::Avx512Vl),
    #[cfg(target_arch = "x86_64")]
    Avx512(x86::Avx512),
}

/// The hidden size from which the 512-bit backend runs its own 16-lane kernel on f32 and bf16
/// weights on a CPU that splits 512-bit operations in two (AMD's Zen 4; below it, its 8-lane
/// sibling's, and half-precision weights take the sibling at every size there, see
/// `Backend::for_weights`). One threshold for the step, sequences and projections, so that a
/// sequence keeps the bits of the steps it is made of; below it the 16-lane step was no faster
/// on Zen 4 in interleaved timings (`scripts/ab.sh`), from it on it was.
#[cfg_attr(
    not(target_arch = "x86_64"),
    expect(dead_code, reason = "read by the x86-64 backends only")
)]
const NARROW_BELOW: usize = 128;

/// [`NARROW_BELOW`] on a CPU that runs 512-bit operations whole (Intel's, AMD's Zen 5), for
/// every weight format: from two full 16-lane chunks. There the 16-lane step was faster from 32
/// units on in interleaved timings (`scripts/ab.sh`), on a Xeon and on a Zen 5 EPYC,
/// half-precision weights too; at 24 units, whose two 16-lane chunks overlap, it was slower on
/// the Xeon. It must stay above 16: up to 16 units a step's state travels packed in registers
/// to an 8-lane entry (`x86::splits`), and a sequence must keep the bits of its steps.
const NARROW_BELOW_WHOLE: usize = 32;
const _: () = assert!(NARROW_BELOW_WHOLE > 16);

/// Whether a bank of `streams` streams of `units` units steps 16 streams per vector where the
/// backend has 16 lanes: from 9 streams on, unless the bank's whole state is less than 64
/// values (4 vectors), or exactly 64 from inputs the bank `transposed` to unit-major just
/// before (given one vector per stream, with 8 inputs or more; with fewer it reads them where
/// they are, see `bank_deinterleaves`). At 64 values the 16-lane kernel stepped faster in
/// interleaved timings, from inputs given unit-major, and slower from inputs just transposed,
/// whether 8 streams per store or 16 (two 8-stream tiles joined).
const fn bank_is_wide(streams: usize, units: usize, transposed: bool) -> bool {
    streams > 8 && (streams * units > 64 || (streams * units == 64 && !transposed))
}

/// Whether the 512-bit backend runs `units` hidden units on its 8-lane sibling on this CPU.
/// Written so that a constant `units` below both thresholds or above both needs no look at the
/// CPU.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(in crate::kernel) fn narrows(token: x86::Avx512, units: usize) -> bool {
    units < NARROW_BELOW_WHOLE || (units < NARROW_BELOW && !token.whole())
}

// The dispatching methods below are `inline(always)`: thin (a match and a call into the
// backend's entry), they must inline into the caller's loop, or each step becomes a call more
// with its state copied through memory; as hints, the compiler left some out of line in
// callers with many steps to inline.

/// A kernel that every backend of this target runs, returning `R`.
#[cfg(target_arch = "x86_64")]
trait Runs<R>:
    Kernel<Portable, Output = R>
    + Kernel<x86::Avx2Fma, Output = R>
    + Kernel<x86::Avx512Vl, Output = R>
    + Kernel<x86::Avx512, Output = R>
{
}

#[cfg(target_arch = "x86_64")]
impl<R, K> Runs<R> for K where
    K: Kernel<Portable, Output = R>
        + Kernel<x86::Avx2Fma, Output = R>
        + Kernel<x86::Avx512Vl, Output = R>
        + Kernel<x86::Avx512, Output = R>
{
}

/// A kernel that every backend of this target runs, returning `R`.
#[cfg(not(target_arch = "x86_64"))]
trait Runs<R>: Kernel<Portable, Output = R> {}

#[cfg(not(target_arch = "x86_64"))]
impl<R, K: Kernel<Portable, Output = R>> Runs<R> for K {}

impl Backend {
    /// The portable backend: `wide` vectors (SSE2 on a default x86-64 build, NEON on aarch64),
    /// multiply and add rounded separately. Its results are the same bits on every machine,
    /// whatever the build flags: force it where results must be reproducible across machines.
    pub const PORTABLE: Self = Self(Kind::Portable);

    /// The AVX2+FMA backend, if this is an x86-64 CPU that has both (checked at run time, once,
    /// the answer kept in a static; a build with both features enabled answers at compile
    /// time).
    #[inline]
    #[must_use]
    pub fn avx2_fma() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        return x86::Avx2Fma::detect().map(|token| Self(Kind::Avx2Fma(token)));
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The AVX-512VL backend, if this is an x86-64 CPU with AVX2, FMA, AVX-512F and AVX-512VL:
    /// the AVX2+FMA kernel (the same 8-lane operations) compiled with AVX-512 enabled, which
    /// doubles the vector registers to 32: blocks of 64 units with 16 accumulator chains. From
    /// `H ≥ 32` its additions come in another order than the AVX2+FMA backend's, so the two
    /// agree within the error budget, not to the bit.
    #[inline]
    #[must_use]
    pub fn avx512vl() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        return x86::Avx512Vl::detect().map(|token| Self(Kind::Avx512Vl(token)));
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The 512-bit backend, if this is an x86-64 CPU with AVX2, FMA, AVX-512F and AVX-512VL:
    /// the kernel on 16 lanes (zmm registers), 32 registers, blocks of up to 128 units (256
    /// where a step has that many left). Some work runs on the AVX-512VL kernel instead, with
    /// its bits, by a rule that depends on how the CPU executes a 512-bit operation:
    ///
    /// - whole (Intel's CPUs, and AMD's from Zen 5 on but for Zen 5's laptop cores): cells of
    ///   fewer than 32 units. At 32 and more the 16-lane step measured faster, for every weight
    ///   format; at 24, whose two 16-lane chunks overlap, slower; up to 16 the state travels to
    ///   the 8-lane kernel in registers.
    /// - split into two 256-bit halves (AMD's Zen 4 and Zen 5's laptop cores):
    ///   cells of fewer than 128 units, where the 16-lane step measured no faster when it
    ///   kept 8 accumulator chains per block (fewer, longer ones than the 8-lane kernel's 16;
    ///   it keeps 16 since, unmeasured there from 64 units), and the steps, sequences and
    ///   projections of half-precision weights ([`HalfCell`](crate::HalfCell)) at every size,
    ///   whose 16-lane conversion is the slower there.
    ///
    /// On both, banks of at most 8 streams (or of fewer than 64 state values, or of 64 from
    /// inputs the bank transposes) and the transposition of a bank's inputs run on the
    /// AVX-512VL kernel: there a 16-lane vector is half padding. Elsewhere the 512-bit
    /// backend's additions come in another order than the 8-lane backends', within the error
    /// budget; so a cell of 32 to 127 units steps with other bits on the one kind of CPU than
    /// on the other. [`Backend::PORTABLE`] gives the same bits everywhere.
    #[inline]
    #[must_use]
    pub fn avx512() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        return x86::Avx512::detect().map(|token| Self(Kind::Avx512(token)));
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// The fastest backend this CPU runs.
    #[inline]
    #[must_use]
    pub fn best() -> Self {
        Self::avx512()
            .or_else(Self::avx2_fma)
            .unwrap_or(Self::PORTABLE)
    }

    /// Every backend this CPU runs, the portable one first.
    pub fn available() -> impl Iterator<Item = Self> {
        core::iter::once(Self::PORTABLE)
            .chain(Self::avx2_fma())
            .chain(Self::avx512vl())
            .chain(Self::avx512())
    }

    /// A short name: `"portable"`, `"avx2+fma"`, `"avx512vl"` or `"avx512"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self.0 {
            Kind::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(_) => "avx2+fma",
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(_) => "avx512vl",
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(_) => "avx512",
        }
    }

    /// Whether this backend fuses multiply and add (one rounding instead of two). The fast tanh
    /// of a fused backend gives the bits of [`fast_tanh_fused`](crate::fast_tanh_fused), of an
    /// unfused one those of [`fast_tanh`](crate::fast_tanh).
    #[must_use]
    pub const fn fused(self) -> bool {
        match self.0 {
            Kind::Portable => false,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(_) | Kind::Avx512Vl(_) | Kind::Avx512(_) => true,
        }
    }

    /// `kernel` on this backend.
    #[inline(always)]
    fn dispatch<R>(self, kernel: impl Runs<R>) -> R {
        match self.0 {
            Kind::Portable => portable::run(kernel),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.dispatch(kernel),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.dispatch(kernel),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(token) => token.dispatch(kernel),
        }
    }

    /// This backend, or for the 512-bit one its 8-lane sibling for a cell of fewer than
    /// `NARROW_BELOW` hidden units (`NARROW_BELOW_WHOLE` on a CPU that runs 512-bit operations
    /// whole) or a small bank (`units`, 0 for a bank that steps 8 streams per vector and
    /// `usize::MAX` for one that steps 16): there the 8-lane kernel's more, shorter accumulator
    /// chains step as fast or faster.
    #[inline(always)]
    fn for_units(self, units: usize) -> Self {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(token) if narrows(token, units) => Self(Kind::Avx512Vl(token.narrow())),
            _ => {
                let _ = units;
                self
            }
        }
    }

    /// [`for_units`](Self::for_units) of a cell of `units` units whose weights are stored as
    /// `E`: on a CPU that splits 512-bit operations in two, the 8-lane sibling at every size for
    /// a format that asks for it ([`Element::NARROW`], the half-precision weights).
    #[inline(always)]
    fn for_weights<E: Element>(self, units: usize) -> Self {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(token) if E::NARROW && !token.whole() => self.for_units(0),
            _ => self.for_units(units),
        }
    }

    /// Whether, in this build, the kernels of the backend that steps a cell of `units` units with
    /// weights stored as `E` ([`for_weights`](Self::for_weights)) are calls from the caller's
    /// code (the backend's `#[target_feature]` entry) rather than code compiled into it: unless
    /// the build enables the backend's features and the backend inlines its kernels there
    /// (`INLINES`). Even then only the kernels that ask ([`Kernel::INLINE`], a step of up to
    /// `INLINE_UNITS` units) inline; the rules that read this answer were measured so. In an
    /// x86-64-v3 build on a CPU with AVX-512, the AVX-512 backends' kernels are calls, and the
    /// AVX2 backend's are not. The portable kernel, which only runs where a CPU lacks AVX2 or a
    /// user forces it, takes the rule of the build's x86 backends.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline(always)]
    fn kernel_is_a_call<E: Element>(self, units: usize) -> bool {
        // A constant where no backend inlines (the default build): no code for the choice.
        let none_inlines = !x86::Avx2Fma::INLINES && !x86::Avx512Vl::INLINES;
        if none_inlines {
            return true;
        }
        match self.for_weights::<E>(units).0 {
            Kind::Portable => false,
            Kind::Avx2Fma(_) => !x86::Avx2Fma::INLINES,
            Kind::Avx512Vl(_) => !x86::Avx512Vl::INLINES,
            Kind::Avx512(_) => !x86::Avx512::INLINES,
        }
    }

    /// Replaces every value by its fast tanh, a vector at a time, on this backend.
    ///
    /// ```
    /// use elman::{Backend, fast_tanh};
    ///
    /// let mut v: Vec<f32> = (0..100).map(|i| i as f32 / 10.0 - 5.0).collect();
    /// let x = v.clone();
    /// Backend::PORTABLE.tanh_in_place(&mut v);
    /// assert!(v.iter().zip(&x).all(|(t, x)| t.to_bits() == fast_tanh(*x).to_bits()));
    /// ```
    pub fn tanh_in_place(self, values: &mut [f32]) {
        self.dispatch(slices::TanhInPlace(values));
    }

    /// Writes the fast tanh of `input[i]` to `output[i]`, a vector at a time, for every `i`
    /// below the shorter length.
    ///
    /// ```
    /// use elman::{Backend, fast_tanh};
    ///
    /// let x = [0.5_f32, -2.0, 10.0];
    /// let mut t = [0.0; 3];
    /// Backend::best().tanh_into(&x, &mut t);
    /// assert!((t[0] - fast_tanh(0.5)).abs() < 1e-7 && t[2] == 1.0);
    /// ```
    pub fn tanh_into(self, input: &[f32], output: &mut [f32]) {
        self.dispatch(slices::TanhInto { input, output });
    }

    /// Whether a value of `values` needs a flush ([`crate::flush::needs_flush`]): the inputs
    /// of a bank of `streams` streams whose first layer has `units` units, checked on the
    /// vectors its step runs on. Where the build's baseline has 4 lanes, a quarter of the
    /// instructions on 16. (A step on 8 lanes was slower after a check on 16.)
    #[inline]
    pub(crate) fn bank_needs_flush(self, streams: usize, units: usize, values: &[f32]) -> bool {
        let units = if bank_is_wide(streams, units, false) {
            usize::MAX
        } else {
            0
        };
        self.for_units(units).dispatch(slices::NeedsFlush(values))
    }

    /// One step of `N` streams on this backend, unit-major (`x[k][s]`, `h[j][s]`), of weights
    /// stored as `E`, from inputs that the bank may have `transposed` just before.
    #[inline(always)]
    pub(crate) fn bank_step_weights<
        const I: usize,
        const H: usize,
        const N: usize,
        A: Activation,
        X: BankInput<I, N>,
        E: Element,
    >(
        self,
        w: step::Weights<'_, I, H, E>,
        (x, transposed): (&X, bool),
        h: &[[f32; N]; H],
        out: &mut [[f32; N]; H],
    ) {
        let units = if bank_is_wide(N, H, transposed) {
            usize::MAX
        } else {
            0
        };
        self.for_units(units)
            .dispatch(streams::BankStep::<I, H, N, A, X, E> {
                w,
                x,
                h,
                out,
                activation: PhantomData,
            });
    }

    /// Whether a bank step of `streams` streams of `units` first-layer units reads each stream's
    /// `inputs` values where they are, by lane shuffles
    /// ([`Simd::deinterleave`](simd::Simd::deinterleave)), rather than from a buffer they are first
    /// transposed into: where the bank steps 16 streams per vector (the 512-bit backend, at least
    /// 64 state values in all), whose permutations pick an input out of all its vectors merged (odd
    /// inputs) or out of two vectors at once (even), with fewer than 8 inputs and at least 16
    /// streams (a vector's worth of consecutive values). The 8-lane backends' shuffles (lane
    /// selects and a one-table permutation, `I` per input) measured as fast or faster from the
    /// buffer, which the kernel then loads with no shuffle.
    #[inline]
    pub(crate) fn bank_deinterleaves(self, inputs: usize, units: usize, streams: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Kind::Avx512(_) = self.0 {
            return inputs < 8 && streams >= 16 && bank_is_wide(streams, units, false);
        }
        let _ = (self, inputs, units, streams);
        false
    }

    /// `out[k][s] = flush(xs[s][k])`: a bank's inputs transposed to unit-major, flushed as a
    /// step reads them (exact otherwise: values moved).
    #[inline(always)]
    pub(crate) fn transpose_inputs<const I: usize, const N: usize>(
        self,
        xs: &[SVector<f32, I>; N],
        out: &mut [[f32; N]; I],
    ) {
        let kernel = slices::TransposeInputs { xs, out };
        match self.0 {
            Kind::Portable => portable::run(kernel),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.dispatch(kernel),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.dispatch(kernel),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(token) => token.narrow().dispatch(kernel),
        }
    }

    /// The input projections `out[t] = W_xh·xs[t] + b` of `T` steps, each weight read once for
    /// all, of weights stored as `E`. Written in place: the caller's buffer is the kernel's.
    #[inline(always)]
    pub(crate) fn project_weights<const I: usize, const H: usize, const T: usize, E: Element>(
        self,
        w_xh: &[[E; H]; I],
        b: &[f32; H],
        xs: &[SVector<f32, I>; T],
        out: &mut [[f32; H]; T],
    ) {
        let inputs: [&[f32; I]; T] = core::array::from_fn(|t| &xs[t].data.0[0]);
        self.for_weights::<E>(H)
            .dispatch(project::Project::<I, H, T, E> {
                w_xh,
                b,
                xs: &inputs,
                out,
            });
    }

    /// One step on this backend: `A(W_xh·x + W_hh·h + b)`.
    #[inline(always)]
    pub(crate) fn step<const I: usize, const H: usize, A: Activation>(
        self,
        w_xh: &SMatrix<f32, H, I>,
        w_hh: &SMatrix<f32, H, H>,
        b: &SVector<f32, H>,
        x: &SVector<f32, I>,
        h: &SVector<f32, H>,
    ) -> SVector<f32, H> {
        let w = (&w_xh.data.0, &w_hh.data.0, &b.data.0[0]);
        let out = self.step_weights::<I, H, A, f32>(w, &x.data.0[0], &h.data.0[0]);
        SVector::from_array_storage(nalgebra::ArrayStorage([out]))
    }

    /// [`step`](Self::step) of weights stored as `E`, from a caller's state.
    #[inline(always)]
    pub(crate) fn step_weights<const I: usize, const H: usize, A: Activation, E: Element>(
        self,
        w: step::Weights<'_, I, H, E>,
        x: &[f32; I],
        h: &[f32; H],
    ) -> [f32; H] {
        // The state comes from the caller: checked on entry, here before the kernel's call
        // where it travels to the kernel by value (up to 4 units, and as packed pairs up to 8,
        // see `x86::splits`) or where `x86::checks_before_call` says so (17 to 48 units where
        // the kernel is a call), else inside the kernel (`step::CallerStep`, and the entry
        // that takes 9 to 16 units as packed pairs where it is a call, `x86::checks_on_entry`).
        // Either way the branch is predicted, off the state's chain, as the kernel's check of
        // the input is. By value, no path takes the address of the caller's state: in a
        // caller's loop of steps, the compiler can then keep it in registers, where an address
        // (the portable kernel's, the flushed copy's) sent it through the stack. The portable
        // kernel and the flush take the address of a copy of their own.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if H <= 4 {
            // Packed, the check stays in vector registers: on the array the compiler moved
            // the state through general registers and the stack.
            let packed = x86::pack(h);
            let h: [f32; H] = x86::unpack(packed);
            if x86::packed_parts_need_flush::<H, 1>([packed]) {
                return self.step_of::<I, H, A, false, E>(w, x, &crate::flush::flushed(&h));
            }
            return self.step_of::<I, H, A, false, E>(w, x, &h);
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        let call = self.kernel_is_a_call::<E>(H);
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if x86::splits(H, call) {
            // As above, on four packed pairs. (The four pairs for every size up to 16 were
            // slower at 2 to 4 units: the zero pairs still went through the check.) Checked in
            // the kernel's entry from 9 units on (`x86::checks_on_entry`).
            if x86::checks_on_entry(H, call) {
                return self.step_split::<I, H, A, true, E>(w, x, h);
            }
            let packed = x86::pack16(h);
            let h: [f32; H] = x86::unpack16(packed);
            if x86::packed_parts_need_flush::<H, 4>(packed) {
                return self.step_of::<I, H, A, false, E>(w, x, &crate::flush::flushed(&h));
            }
            return self.step_of::<I, H, A, false, E>(w, x, &h);
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if x86::checks_before_call(H, call) {
            if x86::state_needs_flush(h) {
                return self.step_of::<I, H, A, false, E>(w, x, &crate::flush::flushed(h));
            }
            return self.step_of::<I, H, A, false, E>(w, x, h);
        }
        self.for_weights::<E>(H)
            .dispatch(step::CallerStep::<I, H, A, E> {
                w,
                x,
                h,
                backward: step::alternates::<E, I, H>()
                    && direction::next_backward(core::ptr::from_ref(w.1).addr()),
                activation: PhantomData,
            })
    }

    /// [`step_weights`](Self::step_weights) with the new state written over the caller's.
    #[inline(always)]
    pub(crate) fn step_weights_in_place<
        const I: usize,
        const H: usize,
        A: Activation,
        E: Element,
    >(
        self,
        w: step::Weights<'_, I, H, E>,
        x: &[f32; I],
        h: &mut [f32; H],
    ) {
        self.in_place::<I, H, A, true, E>(w, x, h);
    }

    /// `readout`'s logits of the flushed state `h`, with the bits of
    /// [`Readout::logits`](crate::Readout::logits) (the same products and sums in the same
    /// order, `Simd::read_out`): from `READOUT_ENTRY_FROM` outputs on, through this backend's
    /// entry.
    #[inline(always)]
    pub(crate) fn logits<const H: usize, const O: usize>(
        self,
        readout: &crate::Readout<H, O>,
        h: &SVector<f32, H>,
    ) -> SVector<f32, O> {
        if O >= READOUT_ENTRY_FROM {
            self.dispatch(readout::Logits { readout, h })
        } else {
            readout.logits_of_clean(&h.data.0[0])
        }
    }

    /// [`step_of`](Self::step_of) of a state the caller keeps flushed, the new state written
    /// over it by the kernel.
    #[inline(always)]
    pub(crate) fn step_in_place<const I: usize, const H: usize, A: Activation, E: Element>(
        self,
        w: step::Weights<'_, I, H, E>,
        x: &[f32; I],
        h: &mut [f32; H],
    ) {
        self.in_place::<I, H, A, false, E>(w, x, h);
    }

    /// A step written over `h`, a `CALLER`'s state (checked on entry) or one kept flushed.
    #[inline(always)]
    fn in_place<const I: usize, const H: usize, A: Activation, const CALLER: bool, E: Element>(
        self,
        w: step::Weights<'_, I, H, E>,
        x: &[f32; I],
        h: &mut [f32; H],
    ) {
        // Up to 4 units the state travels in registers both ways (see `step_weights`). From 5
        // on it stays in memory, where the kernel reads it and writes the next: the packed
        // pairs `step_weights` sends from 5 to 16 units (`x86::splits`) made a loop of steps
        // in place as slow as one by value, the caller storing them back after each call.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if H <= 4 {
            *h = if CALLER {
                self.step_weights::<I, H, A, E>(w, x, h)
            } else {
                self.step_of::<I, H, A, false, E>(w, x, h)
            };
            return;
        }
        self.for_weights::<E>(H)
            .dispatch(step::StepInPlace::<I, H, A, CALLER, E> {
                w,
                x,
                h,
                backward: step::alternates::<E, I, H>()
                    && direction::next_backward(core::ptr::from_ref(w.1).addr()),
                activation: PhantomData,
            });
    }

    /// [`step`](Self::step) of weights stored as `E`, from a state the caller keeps flushed (a
    /// network's own), its columns taken last to first if `BACKWARD`: the same sums in another
    /// order (where the step sums by ranges, its ranges last to first, with the same bits). A network's `process` alternates the two, so that each step starts on the columns
    /// the step before read last, still in L1.
    #[inline(always)]
    pub(crate) fn step_of<
        const I: usize,
        const H: usize,
        A: Activation,
        const BACKWARD: bool,
        E: Element,
    >(
        self,
        w: step::Weights<'_, I, H, E>,
        x: &[f32; I],
        h: &[f32; H],
    ) -> [f32; H] {
        let backend = self.for_weights::<E>(H);
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if H <= 4 && !BACKWARD {
            // The state packed into two scalars from here to the kernel and back: a call then
            // passes and returns it in vector registers (see `x86::pack`), and in a caller's
            // loop of steps it stays there from one step to the next, whichever backend runs.
            let state = x86::pack(h);
            let out = match backend.0 {
                Kind::Portable => x86::pack(&portable::run(step::Step::<I, H, A, false, E> {
                    w,
                    x,
                    h: &x86::unpack(state),
                    activation: PhantomData,
                })),
                Kind::Avx2Fma(token) => token.step_packed::<E, A, I, H>(w, x, state),
                Kind::Avx512Vl(token) => token.step_packed::<E, A, I, H>(w, x, state),
                Kind::Avx512(token) => token.narrow().step_packed::<E, A, I, H>(w, x, state),
            };
            return x86::unpack(out);
        }
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if x86::splits(H, self.kernel_is_a_call::<E>(H)) && !BACKWARD {
            return self.step_split::<I, H, A, false, E>(w, x, h);
        }
        backend.dispatch(step::Step::<I, H, A, BACKWARD, E> {
            w,
            x,
            h,
            activation: PhantomData,
        })
    }

    /// [`step_of`](Self::step_of) of a state of 5 to 16 units, sent to the kernel as four
    /// packed pairs (see `x86::Avx2Fma::step_split`); a `CALLER`'s state is checked in the
    /// kernel's entry, or here before the portable kernel. Every path's new state is packed as
    /// well, the form in which the caller's loop keeps it.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline(always)]
    fn step_split<const I: usize, const H: usize, A: Activation, const CALLER: bool, E: Element>(
        self,
        w: step::Weights<'_, I, H, E>,
        x: &[f32; I],
        h: &[f32; H],
    ) -> [f32; H] {
        let state = x86::pack16(h);
        let out = match self.for_weights::<E>(H).0 {
            Kind::Portable => {
                let h: [f32; H] = x86::unpack16(state);
                let h = if CALLER && crate::flush::needs_flush(&h) {
                    crate::flush::flushed(&h)
                } else {
                    h
                };
                x86::pack16(&portable::run(step::Step::<I, H, A, false, E> {
                    w,
                    x,
                    h: &h,
                    activation: PhantomData,
                }))
            }
            Kind::Avx2Fma(token) => token.step_split::<E, A, I, H, CALLER>(w, x, state),
            Kind::Avx512Vl(token) => token.step_split::<E, A, I, H, CALLER>(w, x, state),
            Kind::Avx512(token) => token.narrow().step_split::<E, A, I, H, CALLER>(w, x, state),
        };
        x86::unpack16(out)
    }

    /// [`step`](Self::step) over the inputs of `xs` in turn (as many as `outs` has items), from
    /// `h`, which is left holding the last state; `each` is handed every new state with the
    /// next item of `outs`.
    #[inline(always)]
    pub(crate) fn run<const I: usize, const H: usize, A: Activation, Y, F: FnMut(&[f32; H], Y)>(
        self,
        (w_xh, w_hh, b): (&SMatrix<f32, H, I>, &SMatrix<f32, H, H>, &SVector<f32, H>),
        xs: &[SVector<f32, I>],
        h: &mut [f32; H],
        outs: impl Iterator<Item = Y>,
        each: F,
    ) {
        let w = (&w_xh.data.0, &w_hh.data.0, &b.data.0[0]);
        self.run_of::<I, H, A, Y, F, f32>(w, xs, h, outs, each);
    }

    /// [`run`](Self::run) of weights stored as `E`.
    #[inline(always)]
    pub(crate) fn run_of<
        const I: usize,
        const H: usize,
        A: Activation,
        Y,
        F: FnMut(&[f32; H], Y),
        E: Element,
    >(
        self,
        w: step::Weights<'_, I, H, E>,
        xs: &[SVector<f32, I>],
        h: &mut [f32; H],
        outs: impl Iterator<Item = Y>,
        each: F,
    ) {
        self.run_each::<I, H, A, Y, F, E>(w, xs, h, outs, each);
    }

    /// [`run_of`](Self::run_of) with any [`step::Each`] (a closure's bound gives it the
    /// signature that takes a state of any lifetime; a readout is [`ReadOut`]).
    #[inline(always)]
    pub(crate) fn run_each<
        const I: usize,
        const H: usize,
        A: Activation,
        Y,
        F: step::Each<H, Y>,
        E: Element,
    >(
        self,
        w: step::Weights<'_, I, H, E>,
        xs: &[SVector<f32, I>],
        h: &mut [f32; H],
        outs: impl Iterator<Item = Y>,
        each: F,
    ) {
        self.for_weights::<E>(H)
            .dispatch(step::Run::<I, H, A, _, F, E> {
                w,
                xs,
                h,
                outs,
                each,
                activation: PhantomData,
            });
    }
}

#[cfg(test)]
mod tests {
    // For its threads, in a build without the `std` feature too.
    extern crate std;

    use core::marker::PhantomData;

    use nalgebra::{SMatrix, SVector};

    use super::{Backend, step};
    use crate::layers::Cell;
    use crate::{Bf16Cell, HalfCell, RnnCell, Tanh};

    /// A value in about (−scale, scale) for index `k`.
    fn value(k: usize, salt: usize, scale: f32) -> f32 {
        let mixed = (k as u64 * 2_654_435_761 + salt as u64 * 40_503) % 10_007;
        #[expect(clippy::cast_precision_loss, reason = "below 2^14")]
        let unit = mixed as f32 / 10_007.0;
        (2.0 * unit - 1.0) * scale
    }

    /// A caller's step of `cell` taken forward and backward, on every backend: one set of
    /// bits (a backend that does not range the step ignores the direction).
    fn both_ways<C: Cell<I, H>, const I: usize, const H: usize>(cell: &C, what: &str) {
        let x: [f32; I] = core::array::from_fn(|k| value(k, 1, 1.0));
        let h: [f32; H] = core::array::from_fn(|k| value(k, 2, 1.0));
        for backend in Backend::available() {
            let [forward, backward] = [false, true].map(|backward| {
                backend
                    .for_weights::<C::Weight>(H)
                    .dispatch(step::CallerStep::<I, H, C::Activation, C::Weight> {
                        w: cell.weights(),
                        x: &x,
                        h: &h,
                        backward,
                        activation: PhantomData,
                    })
                    .map(f32::to_bits)
            });
            assert_eq!(forward, backward, "({I}, {H}) {what}, {}", backend.name());
        }
    }

    fn formats<const I: usize, const H: usize>() {
        let cell = RnnCell::<I, H, Tanh>::new(
            SMatrix::from_fn(|r, c| value(r * I + c, 3, 0.3)),
            SMatrix::from_fn(|r, c| value(r * H + c, 4, 0.3)),
            SVector::from_fn(|r, _| value(r, 5, 0.3)),
        );
        both_ways(&cell, "f32");
        let (half, bf16) = (
            HalfCell::from_cell(&cell).unwrap(),
            Bf16Cell::from_cell(&cell).unwrap(),
        );
        both_ways(&half, "binary16");
        both_ways(&bf16, "bf16");
        // Through the public paths, which alternate the direction themselves: a sequence has
        // the bits of its steps, and a half-precision cell those of its widened f32 cell.
        let (half_wide, bf16_wide) = (half.widened(), bf16.widened());
        let xs: [SVector<f32, I>; 3] =
            core::array::from_fn(|t| SVector::from_fn(|r, _| value(r, 6 + t, 1.0)));
        let h0 = SVector::<f32, H>::from_fn(|r, _| value(r, 9, 1.0));
        for backend in Backend::available() {
            let name = backend.name();
            let (mut f32_h, mut half_h, mut bf16_h) = (h0, h0, h0);
            for x in &xs {
                f32_h = cell.step_with(backend, x, &f32_h);
                half_h = half.step_with(backend, x, &half_h);
                bf16_h = bf16.step_with(backend, x, &bf16_h);
            }
            assert_eq!(
                cell.run_with(backend, &xs, &h0),
                f32_h,
                "({I}, {H}) f32 run, {name}"
            );
            assert_eq!(
                half.run_with(backend, &xs, &h0),
                half_h,
                "({I}, {H}) binary16 run, {name}"
            );
            assert_eq!(
                bf16.run_with(backend, &xs, &h0),
                bf16_h,
                "({I}, {H}) bf16 run, {name}"
            );
            // The widened cell on the kernel the half-precision one steps on (on a CPU that
            // splits 512-bit operations, binary16 takes the 8-lane one).
            let half_kernel = backend.for_weights::<<HalfCell<I, H> as Cell<I, H>>::Weight>(H);
            let bf16_kernel = backend.for_weights::<<Bf16Cell<I, H> as Cell<I, H>>::Weight>(H);
            assert_eq!(
                half_wide.run_with(half_kernel, &xs, &h0),
                half_h,
                "({I}, {H}) binary16 widened, {name}"
            );
            assert_eq!(
                bf16_wide.run_with(bf16_kernel, &xs, &h0),
                bf16_h,
                "({I}, {H}) bf16 widened, {name}"
            );
        }
    }

    #[test]
    fn a_ranged_step_has_the_same_bits_both_ways() {
        // The sizes below reach the ranges, on every machine (the portable backend).
        const {
            assert!(step::ranged::<super::portable::Portable, 201, 63>());
            assert!(step::ranged::<super::portable::Portable, 1500, 16>());
            assert!(!step::ranged::<super::portable::Portable, 64, 128>());
        };
        // Ranges of the input's and the state's columns, whole and cut short, an odd number
        // of input columns (a bf16 pair's lone column), odd units, an overlapping last chunk.
        // Sizes of several blocks on some backends, ranged on none of those. On a thread with
        // room for the cells, their copies and a debug build's frames.
        std::thread::Builder::new()
            .stack_size(32 << 20)
            .spawn(|| {
                formats::<64, 128>();
                formats::<33, 120>();
                formats::<201, 63>();
                formats::<5, 127>();
                formats::<100, 100>();
                formats::<33, 130>();
                formats::<0, 160>();
                formats::<3, 190>();
                // 17 to 32 leaves, on units that one or two chunks hold.
                formats::<1500, 16>();
                formats::<1000, 20>();
                formats::<1984, 9>();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
