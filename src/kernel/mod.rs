//! The fast step and the backends that run it.
//!
//! ```text
//! acc = b;  for k < I: acc += x_k · W_xh[:, k];  for k < H: acc += h_k · W_hh[:, k];  h' = A(acc)
//! ```
//!
//! A column-broadcast sweep over `[x; h]`: each weight column is read once, contiguously (the
//! cell stores its weights column-major), multiplied by one broadcast value and added into
//! vector accumulators that hold 8 hidden units each. No horizontal sums.
//!
//! # Layout, tails and register blocking
//!
//! - The hidden units are covered by chunks of 8 starting at 0, 8, 16, … . When 8 does not
//!   divide `H`, the last chunk starts at `H − 8` and overlaps its neighbour: the overlapping
//!   units are computed twice, by the same operations in the same order, so both writes store
//!   the same bits. Every load is a full 8-lane load inside its column and no padding is needed,
//!   which keeps the cell's weights in nalgebra's own layout and its constructors `const`.
//!   Cells with `H < 8` copy each column into a zeroed 8-lane vector (a constant-length copy,
//!   one or two instructions).
//! - Chunks are grouped into blocks of up to `BLOCK` (8 chunks, 64 units, with 32 vector
//!   registers; 4 with 16); a block keeps its accumulators in registers for the whole sweep.
//!   A block splits its sweep into `S` interleaved partial sums, so that `B·S` independent
//!   chains keep two FMA units busy at 4 cycles of latency: 8 chains in the latency-bound sizes
//!   (fewer than 4 chunks), where the partial sums also shorten the chain that the recurrent
//!   state `h` waits on; `CHAINS` (16 with 32 registers, 12 with 16) in the throughput-bound
//!   ones, where 8 chains of 4-cycle FMAs would leave no slack at all. The partial sums are
//!   added pairwise at the end.
//!
//! # Backends
//!
//! - [`Backend::PORTABLE`]: `wide` vectors, multiply and add rounded separately. It gives the
//!   same bits on every machine, whatever the build flags.
//! - [`Backend::avx2_fma`] (x86-64): `core::arch` AVX2 with fused multiply-add, chosen at run
//!   time when the CPU has it, so a default build (which targets SSE2) gets the full width.
//! - [`Backend::avx512vl`] (x86-64): the same kernel compiled with AVX-512F and AVX-512VL
//!   enabled, for their 32 vector registers: the same operations, larger blocks and more
//!   partial sums (so, from `H ≥ 32`, another order of additions). A 16-lane kernel would
//!   be a further backend of the same shape (one more `backend!` instantiation with its own
//!   vector operations).
//!
//! [`Backend::best`] picks the fastest one the CPU runs; [`RnnCell::step`](crate::RnnCell::step)
//! uses it, and [`RnnCell::step_with`](crate::RnnCell::step_with) takes one explicitly.
//!
//! In a default build each step is a call into the dispatched kernel. A cell of at most 4
//! units passes its state to that call and gets the new one back as two `f64`s holding its
//! lanes, which the calling convention keeps in vector registers: as a `[f32; 2]` the new state
//! came back in a general register, and the caller's loop stored it for the next call to
//! reload. Larger states go through memory, where their broadcasts load them anyway.
//!
//! # Sequences
//!
//! [`RnnCell::run`](crate::RnnCell::run) and `Rnn::process` step through a sequence inside one
//! call of the kernel, with `step`'s operations: the state stays in registers from one step to
//! the next (as the chunk's vector when `H ≤ 8`), and a cell of one throughput-bound block (4 to
//! `BLOCK` chunks) issues each step's input sums right after the previous step's activation,
//! so that the CPU overlaps the two.

use nalgebra::{SMatrix, SVector};

use crate::activation::Activation;

pub(crate) use choice::BackendChoice;

mod choice;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

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
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backend(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(x86::Avx2Fma),
    #[cfg(target_arch = "x86_64")]
    Avx512Vl(x86::Avx512Vl),
}

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

    /// The fastest backend this CPU runs.
    #[inline]
    #[must_use]
    pub fn best() -> Self {
        Self::avx512vl()
            .or_else(Self::avx2_fma)
            .unwrap_or(Self::PORTABLE)
    }

    /// Every backend this CPU runs, the portable one first.
    pub fn available() -> impl Iterator<Item = Self> {
        core::iter::once(Self::PORTABLE)
            .chain(Self::avx2_fma())
            .chain(Self::avx512vl())
    }

    /// A short name: `"portable"` or `"avx2+fma"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self.0 {
            Kind::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(_) => "avx2+fma",
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(_) => "avx512vl",
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
            Kind::Avx2Fma(_) | Kind::Avx512Vl(_) => true,
        }
    }

    /// Replaces every value by its fast tanh, eight at a time, on this backend.
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
        match self.0 {
            Kind::Portable => portable::tanh_in_place(values),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.tanh_in_place(values),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.tanh_in_place(values),
        }
    }

    /// A latency floor of a step, as a loop to time: `steps` times, `fmas` multiply-adds,
    /// `adds` additions and one fast tanh on 8 lanes, each operation waiting for the one before.
    ///
    /// Two floors for a hidden size `H`: with `fmas = H, adds = 0`, the chain of a step that
    /// accumulates `W_hh·h` one column after another and then applies tanh; with `fmas = 1,
    /// adds = ⌈log2 H⌉`, the shortest chain any step can have (multiply the last state value
    /// read, reduce the `H` products by a tree of additions, apply tanh), which leaves out the
    /// broadcasts, loads and stores a real step needs.
    #[must_use]
    pub fn floor_chain(self, steps: usize, fmas: usize, adds: usize, seed: f32) -> f32 {
        match self.0 {
            Kind::Portable => portable::floor_chain(steps, fmas, adds, seed),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.floor_chain(steps, fmas, adds, seed),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.floor_chain(steps, fmas, adds, seed),
        }
    }

    /// The machine's multiply-add peak, as a loop to time: `iterations` rounds of 12
    /// independent 8-lane multiply-adds held in registers (`96·iterations` f32 multiply-adds).
    #[must_use]
    pub fn fma_burst(self, iterations: usize, seed: f32) -> f32 {
        match self.0 {
            Kind::Portable => portable::fma_burst(iterations, seed),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.fma_burst(iterations, seed),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.fma_burst(iterations, seed),
        }
    }

    /// The sum of `values` (read up to the last multiple of 64), as a loop to time for the read
    /// bandwidth of the cache level that holds them: 8-lane loads into eight accumulators.
    #[must_use]
    pub fn stream_sum(self, values: &[f32]) -> f32 {
        match self.0 {
            Kind::Portable => portable::stream_sum(values),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.stream_sum(values),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.stream_sum(values),
        }
    }

    /// Writes the fast tanh of `input[i]` to `output[i]`, eight at a time, for every `i` below
    /// the shorter length.
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
        match self.0 {
            Kind::Portable => portable::tanh_into(input, output),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.tanh_into(input, output),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.tanh_into(input, output),
        }
    }

    /// One step of `N` streams on this backend, unit-major (`x[k][s]`, `h[j][s]`).
    #[inline]
    pub(crate) fn bank_step<
        const I: usize,
        const H: usize,
        const N: usize,
        A: Activation,
        X: BankInput<I, N>,
    >(
        self,
        w_xh: &SMatrix<f32, H, I>,
        w_hh: &SMatrix<f32, H, H>,
        b: &SVector<f32, H>,
        x: &X,
        h: &[[f32; N]; H],
        out: &mut [[f32; N]; H],
    ) {
        let (w_xh, w_hh, [b]) = (&w_xh.data.0, &w_hh.data.0, &b.data.0);
        match self.0 {
            Kind::Portable => portable::bank_step::<I, H, N, A, X>(w_xh, w_hh, b, x, h, out),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.bank_step::<I, H, N, A, X>(w_xh, w_hh, b, x, h, out),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.bank_step::<I, H, N, A, X>(w_xh, w_hh, b, x, h, out),
        }
    }

    /// `out[k][s] = xs[s][k]`: a bank's inputs transposed to unit-major (exact: values moved).
    #[inline]
    pub(crate) fn transpose_inputs<const I: usize, const N: usize>(
        self,
        xs: &[SVector<f32, I>; N],
        out: &mut [[f32; N]; I],
    ) {
        match self.0 {
            Kind::Portable => portable::transpose_inputs::<I, N>(xs, out),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.transpose_inputs::<I, N>(xs, out),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.transpose_inputs::<I, N>(xs, out),
        }
    }

    /// The input projections `out[t] = W_xh·xs[t] + b` of `T` steps, each weight read once for
    /// all. Written in place: the caller's buffer is the kernel's.
    #[inline]
    pub(crate) fn project<const I: usize, const H: usize, const T: usize>(
        self,
        w_xh: &SMatrix<f32, H, I>,
        b: &SVector<f32, H>,
        xs: &[SVector<f32, I>; T],
        out: &mut [[f32; H]; T],
    ) {
        let inputs: [&[f32; I]; T] = core::array::from_fn(|t| &xs[t].data.0[0]);
        let (w_xh, [b]) = (&w_xh.data.0, &b.data.0);
        match self.0 {
            Kind::Portable => portable::project::<I, H, T>(w_xh, b, &inputs, out),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.project::<I, H, T>(w_xh, b, &inputs, out),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.project::<I, H, T>(w_xh, b, &inputs, out),
        }
    }

    /// One step on this backend: `A(W_xh·x + W_hh·h + b)`.
    #[inline]
    pub(crate) fn step<const I: usize, const H: usize, A: Activation>(
        self,
        w_xh: &SMatrix<f32, H, I>,
        w_hh: &SMatrix<f32, H, H>,
        b: &SVector<f32, H>,
        x: &SVector<f32, I>,
        h: &SVector<f32, H>,
    ) -> SVector<f32, H> {
        // The state comes from the caller: flushed on entry, here, where a call passes it
        // through memory anyway (the kernel flushes the input, off the state's chain).
        let mut copy = [0.0; H];
        let h = crate::flush::on_entry(&h.data.0[0], &mut copy);
        let out = self.step_arrays::<I, H, A, false>(
            &w_xh.data.0,
            &w_hh.data.0,
            &b.data.0[0],
            &x.data.0[0],
            h,
        );
        SVector::from_array_storage(nalgebra::ArrayStorage([out]))
    }

    /// [`step`](Self::step) on the matrices' column arrays, its columns taken last to first if
    /// `BACKWARD`: the same sums in another order. `Rnn::process` alternates the two, so that
    /// each step starts on the columns the step before read last, still in L1.
    #[inline]
    pub(crate) fn step_arrays<
        const I: usize,
        const H: usize,
        A: Activation,
        const BACKWARD: bool,
    >(
        self,
        w_xh: &[[f32; H]; I],
        w_hh: &[[f32; H]; H],
        b: &[f32; H],
        x: &[f32; I],
        h: &[f32; H],
    ) -> [f32; H] {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if H <= 4 && !BACKWARD {
            // The state packed into two scalars from here to the kernel and back: a call then
            // passes and returns it in vector registers (see `x86::pack`), and in a caller's
            // loop of steps it stays there from one step to the next, whichever backend runs.
            let out = match self.0 {
                Kind::Portable => x86::pack(&portable::step::<I, H, A, false>(w_xh, w_hh, b, x, h)),
                Kind::Avx2Fma(token) => {
                    token.step_packed::<I, H, A>(w_xh, w_hh, b, x, x86::pack(h))
                }
                Kind::Avx512Vl(token) => {
                    token.step_packed::<I, H, A>(w_xh, w_hh, b, x, x86::pack(h))
                }
            };
            return x86::unpack(out);
        }
        match self.0 {
            Kind::Portable => portable::step::<I, H, A, BACKWARD>(w_xh, w_hh, b, x, h),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.step::<I, H, A, BACKWARD>(w_xh, w_hh, b, x, h),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.step::<I, H, A, BACKWARD>(w_xh, w_hh, b, x, h),
        }
    }

    /// [`step`](Self::step) over the inputs of `xs` in turn (as many as `outs` has items), from
    /// `h`, which is left holding the last state; `each` is handed every new state with the
    /// next item of `outs`.
    #[inline]
    pub(crate) fn run<const I: usize, const H: usize, A: Activation, Y, F: FnMut(&[f32; H], Y)>(
        self,
        (w_xh, w_hh, b): (&SMatrix<f32, H, I>, &SMatrix<f32, H, H>, &SVector<f32, H>),
        xs: &[SVector<f32, I>],
        h: &mut [f32; H],
        outs: impl Iterator<Item = Y>,
        each: F,
    ) {
        let w = (&w_xh.data.0, &w_hh.data.0, &b.data.0[0]);
        match self.0 {
            Kind::Portable => portable::run::<I, H, A, Y, F>(w, xs, h, outs, each),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(token) => token.run::<I, H, A, Y, F>(w, xs, h, outs, each),
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(token) => token.run::<I, H, A, Y, F>(w, xs, h, outs, each),
        }
    }
}

#[cfg(feature = "std")]
/// One line naming the backend [`Backend::best`] picks and the SIMD target features the crate
/// was compiled with, for benchmark reports.
///
/// ```
/// let info = elman::kernel::build_info();
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
    format!(
        "backend: {} (available: {}); compiled target features: {}",
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

pub use crate::flush::FLUSH_BELOW;

/// How many partial sums a block of `chunks` 8-unit chunks splits its sweep into, for a hidden
/// size `h` on a backend that keeps `chains` accumulators in registers: enough independent
/// chains (`chunks · S ≈ chains`, or 8 below 4 chunks, where the step is latency-bound) to
/// cover the FMA latency, and no more than half of `h`, past which the extra pairwise additions
/// cost the recurrent chain more than they save.
pub(crate) const fn partial_sums(chunks: usize, h: usize, chains: usize) -> usize {
    // Below 4 chunks the step is latency-bound: 8 chains.
    let chains = if chunks >= 4 { chains } else { 8 };
    let for_throughput = if chunks >= chains { 1 } else { chains / chunks };
    let for_latency = if h < 4 { 1 } else { h / 2 };
    if for_throughput < for_latency {
        for_throughput
    } else {
        for_latency
    }
}

/// Where chunk `k` of a row of `len` values starts: at `8k`, the last one at `len − 8`
/// (overlapping its neighbour when 8 does not divide `len`); a row shorter than 8 is one padded
/// chunk at 0.
pub(crate) const fn chunk_start(len: usize, k: usize) -> usize {
    if len < 8 {
        0
    } else {
        let start = k * 8;
        if start < len - 8 { start } else { len - 8 }
    }
}

/// Where input `k` of 8 streams lies among their `8·I` consecutive values (`I < 8` inputs per
/// stream, stream after stream), loaded as `I` vectors: lane `s` of the result is value
/// `s·I + k`, lane `(s·I + k) % 8` of vector `(s·I + k) / 8`.
pub(crate) struct Gather<const I: usize>;

#[expect(clippy::cast_possible_truncation, reason = "lane numbers, below 8")]
impl<const I: usize> Gather<I> {
    /// `ORDER[k][s] = (s·I + k) % 8`: the lane of stream `s`'s value in its vector.
    pub(crate) const ORDER: [[u32; 8]; 8] = {
        let mut order = [[0; 8]; 8];
        let mut k = 0;
        while k < 8 {
            let mut s = 0;
            while s < 8 {
                order[k][s] = ((s * I + k) % 8) as u32;
                s += 1;
            }
            k += 1;
        }
        order
    };

    /// `TAKE[k][m]`: −0 (sign bit set) in the lanes to take from vector `m`, +0 elsewhere.
    /// With `I` odd the lanes `(s·I + k) % 8` of the 8 streams are all different: the mask
    /// marks them in the vectors as loaded, which are merged first and permuted once. With `I`
    /// even it marks the streams `s`, after each vector is permuted.
    pub(crate) const TAKE: [[[f32; 8]; 8]; 8] = {
        let mut take = [[[0.0; 8]; 8]; 8];
        let mut k = 0;
        while k < 8 {
            let mut s = 0;
            while s < 8 {
                let (vector, lane) = ((s * I + k) / 8, (s * I + k) % 8);
                if vector < 8 {
                    take[k][vector][if I % 2 == 1 { lane } else { s }] = -0.0;
                }
                s += 1;
            }
            k += 1;
        }
        take
    };
}

/// Writes the chunk `lanes` that starts at `start` into `row`: its first `L` lanes when `L < 8`
/// (the padded chunk), else the 8 values from `start` (nothing if they do not fit, which no
/// start from [`chunk_start`] asks).
#[inline(always)]
pub(crate) fn put_chunk<const L: usize>(row: &mut [f32; L], start: usize, lanes: [f32; 8]) {
    if L < 8 {
        for (value, lane) in row.iter_mut().zip(lanes) {
            *value = lane;
        }
    } else if let Some(chunk) = row.get_mut(start..).and_then(<[f32]>::first_chunk_mut::<8>) {
        *chunk = lanes;
    }
}

/// The inputs of a bank step, as the kernel reads them: input `k` of 8 streams at a time. The
/// bank flushes them before the kernel reads them.
pub(crate) trait BankInput<const I: usize, const N: usize> {
    /// Input `k` of streams `start..start + 8`, zeros past the last stream.
    fn lanes(&self, k: usize, start: usize) -> [f32; 8];
}

/// Unit-major, `x[k][s]`: 8 contiguous values.
impl<const I: usize, const N: usize> BankInput<I, N> for [[f32; N]; I] {
    #[inline(always)]
    fn lanes(&self, k: usize, start: usize) -> [f32; 8] {
        let row = self
            .get(k)
            .map_or(&[][..], |row| row.get(start..).unwrap_or(&[]));
        if let Some(chunk) = row.first_chunk::<8>() {
            *chunk
        } else {
            let mut lanes = [0.0; 8];
            for (lane, value) in lanes.iter_mut().zip(row) {
                *lane = *value;
            }
            lanes
        }
    }
}

/// Stream-major, one vector per stream: 8 values gathered with a stride of `I`.
impl<const I: usize, const N: usize> BankInput<I, N> for [SVector<f32, I>; N] {
    #[inline(always)]
    fn lanes(&self, k: usize, start: usize) -> [f32; 8] {
        core::array::from_fn(|l| {
            self.get(start + l)
                .and_then(|x| x.data.0[0].get(k))
                .copied()
                .unwrap_or(0.0)
        })
    }
}

/// Defines `step` and `tanh_in_place` for one backend from its vector operations: `V` (8 lanes
/// of f32), `splat`, `load(&[f32; 8])`, `store(V) -> [f32; 8]`, `madd(a, b, c) = a·b + c`, `add`,
/// `tanh` and `relu`, all in scope where the macro is invoked. `$attr` goes on every function:
/// the inlining and the target features of the backend.
macro_rules! define_kernel {
    ($(#[$attr:meta])*) => {
        use crate::activation::{Activation, Kind as Nonlinearity};
        use crate::kernel::{chunk_start, partial_sums, put_chunk};

        /// The 8 values of `column` from `start` (`start ≤ H − 8`), or zeros past the end (which
        /// the callers never ask for: every start is at most `H − 8`).
        $(#[$attr])*
        fn chunk<const H: usize>(column: &[f32; H], start: usize) -> &[f32; 8] {
            match column.get(start..).and_then(<[f32]>::first_chunk::<8>) {
                Some(c) => c,
                None => &[0.0; 8],
            }
        }

        /// The column zero-padded to 8 lanes (`H < 8`).
        $(#[$attr])*
        fn padded<const H: usize>(column: &[f32; H]) -> [f32; 8] {
            let mut lanes = [0.0; 8];
            for (lane, value) in lanes.iter_mut().zip(column) {
                *lane = *value;
            }
            lanes
        }

        /// The 8 lanes of the block's chunk `c` of a column.
        $(#[$attr])*
        fn lanes<const H: usize>(column: &[f32; H], start: usize) -> V {
            if H < 8 { load(&padded(column)) } else { load(chunk(column, start)) }
        }

        /// Adds `z_k · W[:, k]` for every column `k` into the `S` partial sums, column `k` into
        /// sum `k mod S` (as groups of `S`, so that each sum stays in a register).
        $(#[$attr])*
        fn sweep<const H: usize, const B: usize, const S: usize>(
            acc: &mut [[V; B]; S],
            columns: &[[f32; H]],
            z: &[f32],
            starts: &[usize; B],
        ) {
            let (groups, rest) = columns.as_chunks::<S>();
            let (z_groups, z_rest) = z.as_chunks::<S>();
            for (group, zs) in groups.iter().zip(z_groups) {
                for s in 0..S {
                    let broadcast = splat(zs[s]);
                    for c in 0..B {
                        acc[s][c] = madd(broadcast, lanes(&group[s], starts[c]), acc[s][c]);
                    }
                }
            }
            for (s, (column, &zk)) in rest.iter().zip(z_rest).enumerate() {
                let broadcast = splat(zk);
                for c in 0..B {
                    acc[s][c] = madd(broadcast, lanes(column, starts[c]), acc[s][c]);
                }
            }
        }

        /// `sweep` with the columns taken last to first, column `k` still into sum `k mod S`.
        /// Written out beside `sweep` rather than sharing a per-column helper with it: with the
        /// helper (a function or a closure) the x86 kernels were not inlined into one loop, and
        /// `scripts/ab.sh` measured steps 1.13–1.6× slower from (1, 16) on.
        $(#[$attr])*
        fn sweep_backward<const H: usize, const B: usize, const S: usize>(
            acc: &mut [[V; B]; S],
            columns: &[[f32; H]],
            z: &[f32],
            starts: &[usize; B],
        ) {
            let (groups, rest) = columns.as_chunks::<S>();
            let (z_groups, z_rest) = z.as_chunks::<S>();
            for (s, (column, &zk)) in rest.iter().zip(z_rest).enumerate().rev() {
                let broadcast = splat(zk);
                for c in 0..B {
                    acc[s][c] = madd(broadcast, lanes(column, starts[c]), acc[s][c]);
                }
            }
            for (group, zs) in groups.iter().zip(z_groups).rev() {
                for s in (0..S).rev() {
                    let broadcast = splat(zs[s]);
                    for c in 0..B {
                        acc[s][c] = madd(broadcast, lanes(&group[s], starts[c]), acc[s][c]);
                    }
                }
            }
        }

        /// The sums `W_xh·x + W_hh·h + b` of one block of `B` chunks, before the activation:
        /// the whole sweep with `S` partial sums (backward if `BACKWARD`), added pairwise.
        $(#[$attr])*
        fn block_sums<
            const I: usize,
            const H: usize,
            const B: usize,
            const S: usize,
            const BACKWARD: bool,
        >(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            x: &[f32; I],
            h: &[f32; H],
            starts: &[usize; B],
        ) -> [V; B] {
            let mut acc = start_sums::<H, B, S>(b, starts);
            if BACKWARD {
                sweep_backward::<H, B, S>(&mut acc, w_hh, h, starts);
                sweep_backward::<H, B, S>(&mut acc, w_xh, x, starts);
            } else {
                sweep::<H, B, S>(&mut acc, w_xh, x, starts);
                sweep::<H, B, S>(&mut acc, w_hh, h, starts);
            }
            pairwise::<B, S>(acc)
        }

        /// `S` partial sums of `B` chunks, the bias in the first, zeros in the others.
        $(#[$attr])*
        fn start_sums<const H: usize, const B: usize, const S: usize>(
            b: &[f32; H],
            starts: &[usize; B],
        ) -> [[V; B]; S] {
            let zero = splat(0.0);
            let mut acc = [[zero; B]; S];
            for c in 0..B {
                acc[0][c] = lanes(b, starts[c]);
            }
            acc
        }

        /// The partial sums added pairwise: sums n..2n−1 into 0..n−1, halving until one is left.
        $(#[$attr])*
        fn pairwise<const B: usize, const S: usize>(mut acc: [[V; B]; S]) -> [V; B] {
            let mut n = S;
            while n > 1 {
                let half = n.div_ceil(2);
                for s in 0..n - half {
                    for c in 0..B {
                        acc[s][c] = add(acc[s][c], acc[s + half][c]);
                    }
                }
                n = half;
            }
            acc[0]
        }

        /// `A`, with +0 where `z` is tiny (see [`FLUSH_BELOW`](crate::kernel::FLUSH_BELOW)).
        $(#[$attr])*
        fn activate<A: Activation>(z: V) -> V {
            let y = match A::KIND {
                Nonlinearity::Tanh => tanh(z),
                Nonlinearity::Relu => relu(z),
            };
            // `A(z)` is below `FLUSH_BELOW` in magnitude exactly when `z` is (or is 0 either way):
            // the fast tanh returns `z` itself below 2^-12, ReLU `z` or 0. So the mask comes
            // from `z`, off the dependency chain through the activation.
            flush_where_tiny(z, y)
        }

        /// `C` chunks of 8 streams of a bank, starting at the streams in `starts`, hidden units
        /// `first..first + J`: the same sum as `step`'s, each lane a stream, each weight
        /// broadcast once and used for all `C` chunks (`C·J` independent accumulators).
        $(#[$attr])*
        fn bank_block<
            const I: usize,
            const H: usize,
            const N: usize,
            const J: usize,
            const C: usize,
            A: Activation,
            X: crate::kernel::BankInput<I, N>,
        >(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            (x, h): (&X, &[[f32; N]; H]),
            (starts, first): (&[usize; C], usize),
            out: &mut [[f32; N]; H],
        ) {
            let weights = |column: &[f32; H]| -> [V; J] {
                core::array::from_fn(|j| splat(column.get(first + j).copied().unwrap_or(0.0)))
            };
            let mut acc: [[V; J]; C] = [weights(b); C];
            for (k, column) in w_xh.iter().enumerate() {
                let w = weights(column);
                for c in 0..C {
                    let v = load(&x.lanes(k, starts[c]));
                    for j in 0..J {
                        acc[c][j] = madd(w[j], v, acc[c][j]);
                    }
                }
            }
            for (column, row) in w_hh.iter().zip(h) {
                let w = weights(column);
                for c in 0..C {
                    let v = lanes(row, starts[c]);
                    for j in 0..J {
                        acc[c][j] = madd(w[j], v, acc[c][j]);
                    }
                }
            }
            for c in 0..C {
                for j in 0..J {
                    // Computed whether or not the unit exists, outside the branch, so that the
                    // block's activations interleave.
                    let y = store(activate::<A>(acc[c][j]));
                    if let Some(row) = out.get_mut(first + j) {
                        put_chunk(row, starts[c], y);
                    }
                }
            }
        }

        /// Units `first..first + J` of every stream: the chunks of 8 streams in groups of `C`,
        /// the chunks left over one at a time.
        $(#[$attr])*
        fn bank_units<
            const I: usize,
            const H: usize,
            const N: usize,
            const J: usize,
            const C: usize,
            const HALF: usize,
            A: Activation,
            X: crate::kernel::BankInput<I, N>,
        >(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            xh: (&X, &[[f32; N]; H]),
            first: usize,
            out: &mut [[f32; N]; H],
        ) {
            let start = |k: usize| chunk_start(N, k);
            let chunks = N.div_ceil(8);
            // The weights reached through a reference the compiler cannot follow from one
            // group of chunks to the next: otherwise it hoists every broadcast weight out of the
            // loop, keeps them all on the stack and reloads them (with the other copies this
            // makes, 191 stack accesses in the (1, 8) avx512vl kernel, 46 without). Default
            // build, `AB_ONLY=bank scripts/ab.sh 733e772` and runs against the commit before:
            // `step_lanes` at (1, 8) with 32 streams took 0.85–0.92 of the time, at (3, 2) with
            // 128 0.86–0.94; the other sizes 0.98–1.02. Native build: 0.98–1.05.
            let weights = || core::hint::black_box((w_xh, w_hh, b));
            let mut k = 0;
            while k + C <= chunks {
                let starts: [usize; C] = core::array::from_fn(|c| start(k + c));
                let (w_xh, w_hh, b) = weights();
                bank_block::<I, H, N, J, C, A, X>(w_xh, w_hh, b, xh, (&starts, first), out);
                k += C;
            }
            while k + HALF <= chunks {
                let starts: [usize; HALF] = core::array::from_fn(|c| start(k + c));
                let (w_xh, w_hh, b) = weights();
                bank_block::<I, H, N, J, HALF, A, X>(w_xh, w_hh, b, xh, (&starts, first), out);
                k += HALF;
            }
            while k < chunks {
                let (w_xh, w_hh, b) = weights();
                bank_block::<I, H, N, J, 1, A, X>(w_xh, w_hh, b, xh, (&[start(k)], first), out);
                k += 1;
            }
        }

        /// Chunks of streams per 7- or 8-unit block of a bank: 2 when the registers hold 16
        /// accumulators beside the weights (`CHAINS ≥ 16`), else 1.
        const WIDE: usize = if CHAINS >= 16 { 2 } else { 1 };

        /// `out[j][s] = A(W_xh·x[:, s] + W_hh·h[:, s] + b)[j]` for every stream `s`: states and
        /// inputs unit-major (`h[j]` holds unit `j` of every stream), 8 streams per vector, in
        /// blocks of up to 8 units whose accumulators, with those of up to 4 chunks of streams (8
        /// with 32 vector registers), stay in registers.
        $(#[$attr])*
        pub(super) fn bank_step<
            const I: usize,
            const H: usize,
            const N: usize,
            A: Activation,
            X: crate::kernel::BankInput<I, N>,
        >(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            x: &X,
            h: &[[f32; N]; H],
            out: &mut [[f32; N]; H],
        ) {
            if N == 0 {
                return;
            }
            let xh = (x, h);
            let mut first = 0;
            while first < H {
                // J units × C chunks of accumulators: about 8 independent chains, 16 for the
                // 8-unit blocks with 32 vector registers; the chunks left over in groups of
                // `HALF`, then one at a time.
                match H - first {
                    1 => bank_units::<I, H, N, 1, 4, 2, A, X>(w_xh, w_hh, b, xh, first, out),
                    2 => bank_units::<I, H, N, 2, 4, 2, A, X>(w_xh, w_hh, b, xh, first, out),
                    3 => bank_units::<I, H, N, 3, 3, 2, A, X>(w_xh, w_hh, b, xh, first, out),
                    4 => bank_units::<I, H, N, 4, 2, 1, A, X>(w_xh, w_hh, b, xh, first, out),
                    5 => bank_units::<I, H, N, 5, 2, 1, A, X>(w_xh, w_hh, b, xh, first, out),
                    6 => bank_units::<I, H, N, 6, 2, 1, A, X>(w_xh, w_hh, b, xh, first, out),
                    7 => bank_units::<I, H, N, 7, WIDE, 1, A, X>(w_xh, w_hh, b, xh, first, out),
                    _ => bank_units::<I, H, N, 8, WIDE, 1, A, X>(w_xh, w_hh, b, xh, first, out),
                }
                first += 8;
            }
        }

        /// The sums of the block of `B` chunks starting at chunk `first`, with its number of
        /// partial sums, before the activation.
        $(#[$attr])*
        fn sums_at<const I: usize, const H: usize, const B: usize, const BACKWARD: bool>(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            x: &[f32; I],
            h: &[f32; H],
            first: usize,
        ) -> [V; B] {
            let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, first + c));
            match partial_sums(B, H, CHAINS) {
                1 => block_sums::<I, H, B, 1, BACKWARD>(w_xh, w_hh, b, x, h, &starts),
                2 => block_sums::<I, H, B, 2, BACKWARD>(w_xh, w_hh, b, x, h, &starts),
                3 => block_sums::<I, H, B, 3, BACKWARD>(w_xh, w_hh, b, x, h, &starts),
                4 => block_sums::<I, H, B, 4, BACKWARD>(w_xh, w_hh, b, x, h, &starts),
                _ => block_sums::<I, H, B, 8, BACKWARD>(w_xh, w_hh, b, x, h, &starts),
            }
        }

        /// The block of `B` chunks starting at chunk `first`: its sums, then `A`, stored.
        $(#[$attr])*
        fn run_block<
            const I: usize,
            const H: usize,
            const B: usize,
            A: Activation,
            const BACKWARD: bool,
        >(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            x: &[f32; I],
            h: &[f32; H],
            first: usize,
            out: &mut [f32; H],
        ) {
            let sums = sums_at::<I, H, B, BACKWARD>(w_xh, w_hh, b, x, h, first);
            for c in 0..B {
                put_chunk(out, chunk_start(H, first + c), store(activate::<A>(sums[c])));
            }
        }

        /// `out = A(W_xh·x + W_hh·h + b)`, the columns last to first if `BACKWARD`.
        $(#[$attr])*
        pub(super) fn step<const I: usize, const H: usize, A: Activation, const BACKWARD: bool>(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            x: &[f32; I],
            h: &[f32; H],
        ) -> [f32; H] {
            // Inputs below `FLUSH_BELOW` read as +0 (see `crate::flush`); a caller's state is
            // flushed before the call (`Backend::step`), so that the check is off the chain
            // from one step's state to the next.
            let mut copy = [0.0; I];
            let x = crate::flush::on_entry(x, &mut copy);
            let mut out = [0.0; H];
            if H == 0 {
                return out;
            }
            let chunks = H.div_ceil(8);
            let mut first = 0;
            while first < chunks {
                match (chunks - first).min(BLOCK) {
                    1 => run_block::<I, H, 1, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                    2 => run_block::<I, H, 2, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                    3 => run_block::<I, H, 3, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                    4 => run_block::<I, H, 4, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                    5 => run_block::<I, H, 5, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                    6 => run_block::<I, H, 6, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                    7 => run_block::<I, H, 7, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                    _ => run_block::<I, H, 8, A, BACKWARD>(w_xh, w_hh, b, x, h, first, &mut out),
                }
                first += BLOCK;
            }
            out
        }

        /// `step` over the inputs of `xs` in turn (as many as `outs` has items), from the state
        /// `h`, which is left holding the last step's result; `each` is handed every new state
        /// with the next item of `outs`. The same operations as `step`'s, so the same bits, but
        /// the state stays in registers from one step to the next, and the loop (with `each`,
        /// when it is inlined) inside the kernel's target features.
        ///
        /// `each` gets a state once the next step is under way, so that in the CPU's
        /// oldest-first scheduling the next step's chain goes ahead of `each`'s work (a readout
        /// issued right after the step it reads delays that chain).
        $(#[$attr])*
        pub(super) fn run<const I: usize, const H: usize, A: Activation, Y, F: FnMut(&[f32; H], Y)>(
            (w_xh, w_hh, b): (&[[f32; H]; I], &[[f32; H]; H], &[f32; H]),
            xs: &[nalgebra::SVector<f32, I>],
            h: &mut [f32; H],
            outs: impl Iterator<Item = Y>,
            mut each: F,
        ) {
            let mut steps = xs.iter().zip(outs);
            let Some((x, mut pending)) = steps.next() else {
                return;
            };
            // The first state is the caller's: flushed once, here (see `crate::flush`). The
            // states the loop carries are the kernel's own, flushed by `activate`.
            if crate::flush::needs_flush(h) {
                *h = crate::flush::flushed(h);
            }
            if H <= 8 {
                // One chunk: the state carried as its vector. Carried as an array, a state of
                // 2 units went through a general register (an 8-byte integer to the compiler)
                // on its way from one step's tanh to the next step's broadcasts.
                // Each input flushed on entry.
                let mut x_copy = [0.0; I];
                let first = crate::flush::on_entry(&x.data.0[0], &mut x_copy);
                let mut state = chunk_step::<I, H, A>(w_xh, w_hh, b, first, h);
                for (x, out) in steps {
                    let lanes = store(state);
                    // Always there: `H ≤ 8`.
                    let Some(now) = lanes.first_chunk::<H>() else {
                        return;
                    };
                    let x = crate::flush::on_entry(&x.data.0[0], &mut x_copy);
                    state = chunk_step::<I, H, A>(w_xh, w_hh, b, x, now);
                    each(now, core::mem::replace(&mut pending, out));
                }
                if let Some(last) = store(state).first_chunk::<H>() {
                    each(last, pending);
                    *h = *last;
                }
            } else if (4..=BLOCK).contains(&H.div_ceil(8)) {
                // One block of 4 to 8 chunks, where the step is throughput-bound: pipelined.
                let w = (w_xh, w_hh, b);
                let x = &x.data.0[0];
                match H.div_ceil(8) {
                    4 => run_block_of::<I, H, 4, A, Y, F>(w, x, steps, (h, pending), each),
                    5 => run_block_of::<I, H, 5, A, Y, F>(w, x, steps, (h, pending), each),
                    6 => run_block_of::<I, H, 6, A, Y, F>(w, x, steps, (h, pending), each),
                    7 => run_block_of::<I, H, 7, A, Y, F>(w, x, steps, (h, pending), each),
                    _ => run_block_of::<I, H, 8, A, Y, F>(w, x, steps, (h, pending), each),
                }
            } else {
                let mut state = step::<I, H, A, false>(w_xh, w_hh, b, &x.data.0[0], h);
                for (x, out) in steps {
                    let next = step::<I, H, A, false>(w_xh, w_hh, b, &x.data.0[0], &state);
                    each(&state, core::mem::replace(&mut pending, out));
                    state = next;
                }
                each(&state, pending);
                *h = state;
            }
        }

        /// `run` of a cell whose units are one block of `B` chunks, with its partial sums.
        $(#[$attr])*
        fn run_block_of<
            'a,
            const I: usize,
            const H: usize,
            const B: usize,
            A: Activation,
            Y,
            F: FnMut(&[f32; H], Y),
        >(
            w: (&[[f32; H]; I], &[[f32; H]; H], &[f32; H]),
            x: &[f32; I],
            steps: impl Iterator<Item = (&'a nalgebra::SVector<f32, I>, Y)>,
            state: (&mut [f32; H], Y),
            each: F,
        ) {
            match partial_sums(B, H, CHAINS) {
                1 => run_pipelined::<I, H, B, 1, A, Y, F>(w, x, steps, state, each),
                2 => run_pipelined::<I, H, B, 2, A, Y, F>(w, x, steps, state, each),
                3 => run_pipelined::<I, H, B, 3, A, Y, F>(w, x, steps, state, each),
                4 => run_pipelined::<I, H, B, 4, A, Y, F>(w, x, steps, state, each),
                _ => run_pipelined::<I, H, B, 8, A, Y, F>(w, x, steps, state, each),
            }
        }

        /// `run` of a cell whose units are one block (`B` chunks, `S` partial sums), from the
        /// first input `x`, software-pipelined: each step's input sums `b + W_xh·x` are issued
        /// right after the previous step's activation, which the CPU overlaps with them, and
        /// before the `W_hh` sweep that waits for it. The same sums in the same order as
        /// `step`'s, so the same bits. `scripts/ab.sh c059761` measures `Rnn::process` at
        /// (32, 64) at 0.95 of the time of the unpipelined loop; issued before the activation
        /// instead, the input sums filled the CPU's window first, and the gain was smaller.
        $(#[$attr])*
        fn run_pipelined<
            'a,
            const I: usize,
            const H: usize,
            const B: usize,
            const S: usize,
            A: Activation,
            Y,
            F: FnMut(&[f32; H], Y),
        >(
            (w_xh, w_hh, b): (&[[f32; H]; I], &[[f32; H]; H], &[f32; H]),
            x: &[f32; I],
            steps: impl Iterator<Item = (&'a nalgebra::SVector<f32, I>, Y)>,
            (h, mut pending): (&mut [f32; H], Y),
            mut each: F,
        ) {
            let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, c));
            let mut acc = start_sums::<H, B, S>(b, &starts);
            let mut copy = [0.0; I];
            sweep::<H, B, S>(&mut acc, w_xh, crate::flush::on_entry(x, &mut copy), &starts);
            sweep::<H, B, S>(&mut acc, w_hh, h, &starts);
            let mut sums = pairwise::<B, S>(acc);
            for (x, out) in steps {
                let mut state = [0.0; H];
                for c in 0..B {
                    put_chunk(&mut state, starts[c], store(activate::<A>(sums[c])));
                }
                let mut acc = start_sums::<H, B, S>(b, &starts);
                let x = crate::flush::on_entry(&x.data.0[0], &mut copy);
                sweep::<H, B, S>(&mut acc, w_xh, x, &starts);
                sweep::<H, B, S>(&mut acc, w_hh, &state, &starts);
                sums = pairwise::<B, S>(acc);
                each(&state, core::mem::replace(&mut pending, out));
            }
            for c in 0..B {
                put_chunk(h, starts[c], store(activate::<A>(sums[c])));
            }
            each(h, pending);
        }

        /// `step` of a cell of one chunk (`H ≤ 8`), its new state returned as the chunk's
        /// vector (the first `H` lanes): the same block, so the same bits.
        $(#[$attr])*
        fn chunk_step<const I: usize, const H: usize, A: Activation>(
            w_xh: &[[f32; H]; I],
            w_hh: &[[f32; H]; H],
            b: &[f32; H],
            x: &[f32; I],
            h: &[f32; H],
        ) -> V {
            let [sums] = sums_at::<I, H, 1, false>(w_xh, w_hh, b, x, h, 0);
            activate::<A>(sums)
        }

        /// The input projections of `T` steps, `out[t] = W_xh·xs[t] + b`, in blocks of
        /// `PROJECT_BLOCK` chunks (then single chunks): each chunk of 8 rows of a weight column
        /// loaded once for all `T` inputs, each broadcast input used for the block's chunks.
        $(#[$attr])*
        pub(super) fn project<const I: usize, const H: usize, const T: usize>(
            w_xh: &[[f32; H]; I],
            b: &[f32; H],
            xs: &[&[f32; I]; T],
            out: &mut [[f32; H]; T],
        ) {
            // The inputs flushed once, here, not in each block.
            let flushed: [[f32; I]; T] = core::array::from_fn(|t| crate::flush::flushed(xs[t]));
            let xs: &[&[f32; I]; T] = &core::array::from_fn(|t| &flushed[t]);
            let chunks = H.div_ceil(8);
            let mut first = 0;
            while first + PROJECT_BLOCK <= chunks {
                project_block::<I, H, T, PROJECT_BLOCK>(w_xh, b, xs, first, out);
                first += PROJECT_BLOCK;
            }
            while first < chunks {
                project_block::<I, H, T, 1>(w_xh, b, xs, first, out);
                first += 1;
            }
        }

        /// `project` for the `B` chunks from chunk `first`: `T·B` accumulators, each weight
        /// loaded once for the `T` inputs and each broadcast input used for the `B` chunks.
        $(#[$attr])*
        fn project_block<const I: usize, const H: usize, const T: usize, const B: usize>(
            w_xh: &[[f32; H]; I],
            b: &[f32; H],
            xs: &[&[f32; I]; T],
            first: usize,
            out: &mut [[f32; H]; T],
        ) {
            let starts: [usize; B] = core::array::from_fn(|c| chunk_start(H, first + c));
            let mut acc = [[splat(0.0); B]; T];
            for t in 0..T {
                for c in 0..B {
                    acc[t][c] = lanes(b, starts[c]);
                }
            }
            for (k, column) in w_xh.iter().enumerate() {
                let mut w = [splat(0.0); B];
                for c in 0..B {
                    w[c] = lanes(column, starts[c]);
                }
                for t in 0..T {
                    let x = splat(xs[t].get(k).copied().unwrap_or(0.0));
                    for c in 0..B {
                        acc[t][c] = madd(x, w[c], acc[t][c]);
                    }
                }
            }
            for t in 0..T {
                for c in 0..B {
                    put_chunk(&mut out[t], starts[c], store(acc[t][c]));
                }
            }
        }

        /// Every value replaced by its fast tanh, 8 at a time (the tail padded).
        $(#[$attr])*
        pub(super) fn tanh_in_place(values: &mut [f32]) {
            let (body, tail) = values.as_chunks_mut::<8>();
            for lanes in body {
                *lanes = store(tanh(load(lanes)));
            }
            if !tail.is_empty() {
                let t = store(tanh(load(&padded_slice(tail))));
                for (v, r) in tail.iter_mut().zip(t) {
                    *v = r;
                }
            }
        }

        /// `out[k][s] = xs[s][k]`: a bank's inputs, one vector per stream, transposed to
        /// unit-major, 8 streams at a time (the last 8 overlapping their neighbours when 8 does
        /// not divide `N`, which writes the same values again):
        /// - with 8 inputs or more, in tiles of 8 inputs (`transpose8`), the last tile
        ///   overlapping likewise;
        /// - with fewer, from the `8·I` consecutive values of the 8 streams, loaded as `I`
        ///   vectors, each input picked out of them (`gather_input`);
        /// - with fewer than 8 streams, one value at a time.
        $(#[$attr])*
        pub(super) fn transpose_inputs<const I: usize, const N: usize>(
            xs: &[nalgebra::SVector<f32, I>; N],
            out: &mut [[f32; N]; I],
        ) {
            let values = bytemuck::try_cast_slice::<_, f32>(xs.as_slice()).unwrap_or(&[]);
            if I == 0 || N < 8 || values.len() != N * I {
                for (s, x) in xs.iter().enumerate() {
                    let [x] = &x.data.0;
                    for (row, value) in out.iter_mut().zip(x) {
                        if let Some(slot) = row.get_mut(s) {
                            *slot = *value;
                        }
                    }
                }
                return;
            }
            for c in 0..N.div_ceil(8) {
                let first_stream = chunk_start(N, c);
                if I >= 8 {
                    for d in 0..I.div_ceil(8) {
                        let first_input = chunk_start(I, d);
                        let rows: [V; 8] = core::array::from_fn(|l| {
                            load(xs.get(first_stream + l).map_or(&[0.0; 8], |x| {
                                let [x] = &x.data.0;
                                chunk(x, first_input)
                            }))
                        });
                        let columns = transpose8(rows);
                        for (j, column) in columns.into_iter().enumerate() {
                            if let Some(row) = out.get_mut(first_input + j) {
                                put_chunk(row, first_stream, store(column));
                            }
                        }
                    }
                } else {
                    let ours = values.get(first_stream * I..).unwrap_or(&[]);
                    let vectors: [V; I] = core::array::from_fn(|m| {
                        load(
                            ours.get(8 * m..)
                                .and_then(<[f32]>::first_chunk::<8>)
                                .unwrap_or(&[0.0; 8]),
                        )
                    });
                    for (k, row) in out.iter_mut().enumerate() {
                        put_chunk(row, first_stream, store(gather_input(&vectors, k)));
                    }
                }
            }
        }

        /// Input `k` of 8 streams from their `8·I` consecutive values (`I < 8`) in `I`
        /// vectors, by the lane permutation and selects of [`Gather`](crate::kernel::Gather),
        /// read from its tables.
        $(#[$attr])*
        fn gather_input<const I: usize>(vectors: &[V; I], k: usize) -> V {
            let gather = (
                vectors.first(),
                crate::kernel::Gather::<I>::ORDER.get(k),
                crate::kernel::Gather::<I>::TAKE.get(k),
            );
            let (Some(&first), Some(order), Some(take)) = gather else {
                return splat(0.0);
            };
            if I == 1 {
                return first;
            }
            let order = lane_order(order);
            // Index loops: the compiler left an iterator adapter here out of line.
            if I % 2 == 1 {
                let mut merged = first;
                for m in 1..I {
                    if let (Some(&vector), Some(mask)) = (vectors.get(m), take.get(m)) {
                        merged = select(load(mask), vector, merged);
                    }
                }
                permute(merged, order)
            } else {
                let mut picked = permute(first, order);
                for m in 1..I {
                    if let (Some(&vector), Some(mask)) = (vectors.get(m), take.get(m)) {
                        picked = select(load(mask), permute(vector, order), picked);
                    }
                }
                picked
            }
        }

        /// `output[i] = tanh(input[i])` for the first `min(len)` values, 8 at a time.
        $(#[$attr])*
        pub(super) fn tanh_into(input: &[f32], output: &mut [f32]) {
            let n = input.len().min(output.len());
            let (input, output) = (&input[..n], &mut output[..n]);
            let (body_in, tail_in) = input.as_chunks::<8>();
            let (body_out, tail_out) = output.as_chunks_mut::<8>();
            for (src, dst) in body_in.iter().zip(body_out) {
                *dst = store(tanh(load(src)));
            }
            if !tail_in.is_empty() {
                let t = store(tanh(load(&padded_slice(tail_in))));
                for (v, r) in tail_out.iter_mut().zip(t) {
                    *v = r;
                }
            }
        }

        /// `steps` times: `fmas` multiply-adds `z = z·w + c` starting from the state, then
        /// `adds` additions, then `state = tanh(z)`, each operation waiting for the one before.
        $(#[$attr])*
        pub(super) fn floor_chain(steps: usize, fmas: usize, adds: usize, seed: f32) -> f32 {
            let (w, c, k) = (splat(0.75), splat(0.125), splat(-0.0625));
            let mut state = splat(seed);
            for _ in 0..steps {
                let mut z = state;
                for _ in 0..fmas {
                    z = madd(z, w, c);
                }
                for _ in 0..adds {
                    z = add(z, k);
                }
                state = tanh(z);
            }
            store(state)[0]
        }

        /// `iterations` rounds of 12 independent multiply-adds on 8 lanes, in registers.
        $(#[$attr])*
        pub(super) fn fma_burst(iterations: usize, seed: f32) -> f32 {
            let (w, c) = (splat(0.999_9), splat(seed * 1e-4));
            let mut acc = [splat(seed); 12];
            for _ in 0..iterations {
                for a in &mut acc {
                    *a = madd(*a, w, c);
                }
            }
            let mut total = acc[0];
            for a in &acc[1..] {
                total = add(total, *a);
            }
            store(total)[0]
        }

        /// The sum of `values` (up to the last multiple of 64), read with 8-lane loads into eight
        /// independent accumulators (enough to cover the latency of two additions per cycle).
        $(#[$attr])*
        pub(super) fn stream_sum(values: &[f32]) -> f32 {
            let mut acc = [splat(0.0); 8];
            let (groups, _) = values.as_chunks::<64>();
            for group in groups {
                let (lanes, _) = group.as_chunks::<8>();
                for (a, l) in acc.iter_mut().zip(lanes) {
                    *a = add(*a, load(l));
                }
            }
            let mut total = acc[0];
            for a in &acc[1..] {
                total = add(total, *a);
            }
            store(total).iter().sum()
        }

        /// Up to 8 values, zero-padded.
        $(#[$attr])*
        fn padded_slice(values: &[f32]) -> [f32; 8] {
            let mut lanes = [0.0; 8];
            for (lane, value) in lanes.iter_mut().zip(values) {
                *lane = *value;
            }
            lanes
        }
    };
}

pub(crate) use define_kernel;
