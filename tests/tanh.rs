//! The fast tanh on a sample of inputs, quick enough for a debug build: its special values, the
//! error bound, and bit-identity between its scalar and vector forms and the kernels' backends.
//! `tests/tanh_exhaustive.rs` checks every input.

#![allow(
    clippy::float_cmp,
    reason = "the contract is bit-exact for these values"
)]

use elman::{
    Backend, FAST_TANH_CLAMP, FAST_TANH_MAX_ABS_ERROR, FAST_TANH_TINY, fast_tanh, fast_tanh_fused,
    fast_tanh_x4, fast_tanh_x8,
};
use wide::{f32x4, f32x8};

/// Every 4099th bit pattern (a prime stride, so every exponent and many mantissas are visited),
/// plus the special values.
fn sample() -> Vec<f32> {
    let specials = [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        FAST_TANH_TINY,
        -FAST_TANH_TINY,
        9.0,
        FAST_TANH_CLAMP,
        f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    (0..u32::MAX / 4099)
        .map(|k| f32::from_bits(k * 4099))
        .chain(specials)
        .collect()
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn special_values() {
    assert!(fast_tanh(f32::NAN).is_nan());
    assert!(fast_tanh_fused(-f32::NAN).is_nan());
    assert_eq!(fast_tanh(f32::INFINITY), 1.0);
    assert_eq!(fast_tanh(f32::NEG_INFINITY), -1.0);
    assert_eq!(fast_tanh(f32::MAX), 1.0);
    assert_eq!(fast_tanh(-FAST_TANH_CLAMP), -1.0);
    assert_eq!(fast_tanh(0.0).to_bits(), 0.0_f32.to_bits());
    assert_eq!(fast_tanh(-0.0).to_bits(), (-0.0_f32).to_bits());
    let subnormal = f32::from_bits(0x0000_1234);
    assert_eq!(fast_tanh(subnormal), subnormal);
    assert_eq!(fast_tanh_fused(-subnormal), -subnormal);
    let tiny = f32::from_bits(FAST_TANH_TINY.to_bits() - 1);
    assert_eq!(fast_tanh(tiny), tiny);
}

#[test]
fn error_bound_oddness_and_range_on_a_sample() {
    for x in sample() {
        for t in [fast_tanh(x), fast_tanh_fused(x)] {
            if x.is_nan() {
                assert!(t.is_nan());
                continue;
            }
            let err = (f64::from(t) - f64::from(x).tanh()).abs();
            assert!(
                err <= f64::from(FAST_TANH_MAX_ABS_ERROR),
                "t({x:e}) = {t:e}, error {err:e}"
            );
            assert!(t.abs() <= 1.0, "t({x:e}) = {t:e}");
        }
        assert!(same(fast_tanh(-x), -fast_tanh(x)), "oddness at {x:e}");
        assert!(
            same(fast_tanh_fused(-x), -fast_tanh_fused(x)),
            "oddness (fused) at {x:e}"
        );
    }
}

#[test]
fn vector_forms_give_the_scalar_bits() {
    let xs = sample();
    for group in xs.chunks_exact(8) {
        let lanes: [f32; 8] = group.try_into().expect("chunks of 8");
        let t8 = fast_tanh_x8(f32x8::new(lanes)).to_array();
        let half: [f32; 4] = group[..4].try_into().expect("4 of 8");
        let t4 = fast_tanh_x4(f32x4::new(half)).to_array();
        for (i, &x) in lanes.iter().enumerate() {
            assert!(same(t8[i], fast_tanh(x)), "x8 at {x:e}");
            if i < 4 {
                assert!(same(t4[i], fast_tanh(x)), "x4 at {x:e}");
            }
        }
    }
}

#[test]
fn every_backend_gives_the_bits_of_its_path() {
    let xs = sample();
    for backend in Backend::available() {
        let mut t = xs.clone();
        backend.tanh_in_place(&mut t);
        for (&x, &t) in xs.iter().zip(&t) {
            let scalar = if backend.fused() {
                fast_tanh_fused(x)
            } else {
                fast_tanh(x)
            };
            assert!(
                same(t, scalar),
                "{} at {x:e}: {t:e} vs {scalar:e}",
                backend.name()
            );
        }
    }
}
