//! How the kernel tiles its work: chunks of a vector's lanes, blocks of chunks whose
//! accumulators stay in registers, partial sums per block, and the lanes a bank's inputs are
//! gathered from.

/// How many partial sums a block of `chunks` 8-unit chunks splits its sweep into, for a hidden
/// size `h` on a backend that keeps `chains` accumulators in registers from 4 chunks up, and
/// `small[chunks − 1]` in a block of 1 to 3 chunks, where the step is latency-bound (the
/// backend's [`Simd::CHAINS`] and [`Simd::SMALL_BLOCK_CHAINS`]): enough independent chains
/// (`chunks · S ≈ chains`) to cover the FMA latency, and no more than half of `h`, past which
/// the extra pairwise additions cost the recurrent chain more than they save.
///
/// [`Simd::CHAINS`]: super::simd::Simd::CHAINS
/// [`Simd::SMALL_BLOCK_CHAINS`]: super::simd::Simd::SMALL_BLOCK_CHAINS
pub(crate) const fn partial_sums(
    chunks: usize,
    h: usize,
    chains: usize,
    small: [usize; 3],
) -> usize {
    let chains = match chunks {
        1 => small[0],
        2 => small[1],
        3 => small[2],
        _ => chains,
    };
    let for_throughput = if chunks >= chains { 1 } else { chains / chunks };
    let for_latency = if h < 4 { 1 } else { h / 2 };
    if for_throughput < for_latency {
        for_throughput
    } else {
        for_latency
    }
}

/// Where chunk `k` of `lanes` values in a row of `len` values starts: at `k·lanes`, the last
/// one at `len − lanes` (overlapping its neighbour when `lanes` does not divide `len`); a row
/// shorter than `lanes` is one padded chunk at 0.
pub(crate) const fn chunk_start(len: usize, k: usize, lanes: usize) -> usize {
    if len < lanes {
        0
    } else {
        let start = k * lanes;
        if start < len - lanes {
            start
        } else {
            len - lanes
        }
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

/// Where input `k` of 16 streams lies among their `16·I` consecutive values (`I < 16` inputs
/// per stream), loaded as `I` vectors: lane `s` of the result is value `s·I + k`, lane
/// `(s·I + k) % 16` of vector `(s·I + k) / 16`; with `I` even, the vectors taken in pairs,
/// each pair one table of a two-table lane permutation (lane `(s·I + k) % 32` of pair
/// `(s·I + k) / 32`).
#[cfg(target_arch = "x86_64")]
pub(crate) struct Deinterleave16<const I: usize>;

#[cfg(target_arch = "x86_64")]
#[expect(clippy::cast_possible_truncation, reason = "lane numbers, below 256")]
#[expect(clippy::cast_possible_wrap, reason = "lane numbers, below 256")]
impl<const I: usize> Deinterleave16<I> {
    /// `INDEX[k][s] = s·I + k`: a two-table permutation reads its low 5 bits (the lane in the
    /// pair), a one-table one its low 4 (the lane in its vector, of the merged vectors).
    pub(crate) const INDEX: [[i32; 16]; 16] = {
        let mut index = [[0; 16]; 16];
        let mut k = 0;
        while k < 16 {
            let mut s = 0;
            while s < 16 {
                index[k][s] = (s * I + k) as i32;
                s += 1;
            }
            k += 1;
        }
        index
    };

    /// `FROM[k][p]`: the streams whose input `k` lies in pair `p`, bit `s` for stream `s`.
    pub(crate) const FROM: [[u16; 8]; 16] = {
        let mut from = [[0; 8]; 16];
        let mut k = 0;
        while k < 16 {
            let mut s = 0;
            while s < 16 {
                let pair = (s * I + k) / 32;
                if pair < 8 {
                    from[k][pair] |= 1 << s;
                }
                s += 1;
            }
            k += 1;
        }
        from
    };

    /// `TAKE[k][m]`: the lanes to take from vector `m`, bit `l` for lane `l`. With `I` odd the
    /// lanes `(s·I + k) % 16` of the 16 streams are all different (as in [`Gather::TAKE`]):
    /// the vectors as loaded are merged by these masks, then permuted once by `INDEX[k]`.
    pub(crate) const TAKE: [[u16; 16]; 16] = {
        let mut take = [[0; 16]; 16];
        let mut k = 0;
        while k < 16 {
            let mut s = 0;
            while s < 16 {
                let (vector, lane) = ((s * I + k) / 16, (s * I + k) % 16);
                if vector < 16 {
                    take[k][vector] |= 1 << lane;
                }
                s += 1;
            }
            k += 1;
        }
        take
    };
}
