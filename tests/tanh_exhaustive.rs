//! The fast tanh's contract, checked for every one of the 2^32 `f32` inputs, on every arithmetic
//! path this CPU can take (unfused: the portable backend; fused: AVX2+FMA and the AVX-512
//! backends, where present).
//!
//! Too slow for a debug build: `.ci/run` runs it as
//! `cargo test --release --test tanh_exhaustive -- --ignored --nocapture`.

#![allow(
    clippy::float_cmp,
    clippy::cast_possible_truncation,
    clippy::struct_field_names,
    reason = "exact comparisons on purpose; batch sizes fit u32; the fields are maxima"
)]

use std::thread;

use elman::{
    Backend, FAST_TANH_CLAMP, FAST_TANH_MAX_ABS_ERROR, FAST_TANH_MAX_ULP_ERROR, FAST_TANH_TINY,
    fast_tanh, fast_tanh_fused,
};

/// What one path measured over a range of non-negative inputs.
#[derive(Clone, Copy, Debug, Default)]
struct Report {
    max_abs: f64,
    max_abs_at: f32,
    max_ulp: u32,
    max_ulp_at: f32,
    /// The largest `t(x_i) − t(x_{i+1})`, in ulps, over neighbouring inputs `x_i < x_{i+1}`.
    max_backward: u32,
    max_backward_at: f32,
}

impl Report {
    fn merge(mut self, other: Self) -> Self {
        if other.max_abs > self.max_abs {
            (self.max_abs, self.max_abs_at) = (other.max_abs, other.max_abs_at);
        }
        if other.max_ulp > self.max_ulp {
            (self.max_ulp, self.max_ulp_at) = (other.max_ulp, other.max_ulp_at);
        }
        if other.max_backward > self.max_backward {
            (self.max_backward, self.max_backward_at) = (other.max_backward, other.max_backward_at);
        }
        self
    }
}

const BATCH: u32 = 4096;

/// Checks every input with bits in `first..last` (non-negative, ascending) and its negation; on a
/// fused backend other than AVX2+FMA, also that each gives the AVX2+FMA backend's bits (NaNs
/// included), where the fused scalar is compared on every 61st input only.
fn check_range(backend: Backend, first: u32, last: u32) -> Report {
    let mut report = Report::default();
    let mut xs = vec![0.0_f32; BATCH as usize];
    let mut pos = vec![0.0_f32; BATCH as usize];
    let mut neg = vec![0.0_f32; BATCH as usize];
    let mut fused = vec![0.0_f32; BATCH as usize];
    let reference = Backend::avx2_fma().filter(|&r| backend.fused() && backend != r);
    // The value at the input just below `first`, for the monotonicity check across batches.
    let mut previous: Option<(f32, f32)> = first.checked_sub(1).map(|b| {
        let x = f32::from_bits(b);
        let mut t = [x];
        backend.tanh_in_place(&mut t);
        (x, t[0])
    });
    let mut base = first;
    while base < last {
        let n = (last - base).min(BATCH) as usize;
        for (i, x) in xs[..n].iter_mut().enumerate() {
            *x = f32::from_bits(base + i as u32);
        }
        pos[..n].copy_from_slice(&xs[..n]);
        backend.tanh_in_place(&mut pos[..n]);
        for (v, x) in neg[..n].iter_mut().zip(&xs[..n]) {
            *v = -*x;
        }
        backend.tanh_in_place(&mut neg[..n]);
        if let Some(reference) = reference {
            reference.tanh_into(&xs[..n], &mut fused[..n]);
            for (i, (t, f)) in pos[..n].iter().zip(&fused[..n]).enumerate() {
                assert!(
                    t.to_bits() == f.to_bits(),
                    "{}: {t:e} against {}'s {f:e} at {:e}",
                    backend.name(),
                    reference.name(),
                    xs[i]
                );
            }
        }
        for i in 0..n {
            let (x, t) = (xs[i], pos[i]);
            // Oddness, bit for bit (NaN: both NaN).
            assert!(
                (-t).to_bits() == neg[i].to_bits() || (t.is_nan() && neg[i].is_nan()),
                "{}: t(-{x:e}) = {:e}, t({x:e}) = {t:e}",
                backend.name(),
                neg[i]
            );
            // The scalar forms give the same bits (the fused scalar, a library call without FMA
            // in the build, on every 61st input only).
            let scalar_bits = if backend.fused() {
                (i % 61 == 0).then(|| fast_tanh_fused(x).to_bits())
            } else {
                Some(fast_tanh(x).to_bits())
            };
            if let Some(bits) = scalar_bits {
                assert!(
                    bits == t.to_bits() || t.is_nan(),
                    "{}: scalar {:e} vs vector {t:e} at {x:e}",
                    backend.name(),
                    f32::from_bits(bits)
                );
            }
            if x.is_nan() {
                assert!(t.is_nan(), "{}: t(NaN) = {t}", backend.name());
                continue;
            }
            assert!(t <= 1.0, "{}: t({x:e}) = {t:e} > 1", backend.name());
            if x < FAST_TANH_TINY {
                assert_eq!(t.to_bits(), x.to_bits(), "{}: tiny {x:e}", backend.name());
            }
            if x >= FAST_TANH_CLAMP {
                assert_eq!(t, 1.0, "{}: t({x:e}) past the clamp", backend.name());
            }
            let exact = f64::from(x).tanh();
            let abs = (f64::from(t) - exact).abs();
            if abs > report.max_abs {
                (report.max_abs, report.max_abs_at) = (abs, x);
            }
            // Both are non-negative, so their bit patterns order like their values.
            #[expect(clippy::cast_possible_truncation, reason = "rounding tanh to f32")]
            let rounded = exact as f32;
            let ulp = t.to_bits().abs_diff(rounded.to_bits());
            if ulp > report.max_ulp {
                (report.max_ulp, report.max_ulp_at) = (ulp, x);
            }
            if let Some((px, pt)) = previous
                && pt > t
            {
                let back = pt.to_bits() - t.to_bits();
                if back > report.max_backward {
                    (report.max_backward, report.max_backward_at) = (back, px);
                }
            }
            previous = Some((x, t));
        }
        base += n as u32;
    }
    report
}

/// All non-negative inputs, up to and including +inf and the positive NaNs, on two threads.
fn check_path(backend: Backend) -> Report {
    let end = 0x8000_0000_u32;
    let threads = thread::available_parallelism()
        .map_or(2, usize::from)
        .min(8) as u32;
    let step = end / threads;
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let last = if k + 1 == threads {
                    end
                } else {
                    (k + 1) * step
                };
                scope.spawn(move || check_range(backend, k * step, last))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a checking thread panicked"))
            .fold(Report::default(), Report::merge)
    })
}

#[test]
#[ignore = "all 2^32 inputs; run in release: cargo test --release --test tanh_exhaustive -- --ignored"]
fn every_input_on_every_path() {
    if Backend::avx2_fma().is_none() {
        println!("fused path: skipped, this CPU has no AVX2+FMA");
    }
    for backend in Backend::available() {
        let path = if backend.fused() { "fused" } else { "unfused" };
        let report = check_path(backend);
        println!(
            "{path} path ({}): max abs error {:.3e} at x = {:e}; max {} ulp at x = {:e}; \
             largest backward step {} ulp at x = {:e}",
            backend.name(),
            report.max_abs,
            report.max_abs_at,
            report.max_ulp,
            report.max_ulp_at,
            report.max_backward,
            report.max_backward_at
        );
        assert!(
            report.max_abs <= f64::from(FAST_TANH_MAX_ABS_ERROR),
            "{path}: {report:?}"
        );
        assert!(
            report.max_ulp <= FAST_TANH_MAX_ULP_ERROR,
            "{path}: {report:?}"
        );
    }
}
