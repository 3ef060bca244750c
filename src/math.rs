//! The few functions of `f32` and `f64` that live in `std`, from `libm` when the crate is built
//! without it (`default-features = false`). The two can differ in the last bit; the reference
//! and the readings are specified to within such differences.

#[cfg(feature = "std")]
mod imp {
    #[inline]
    pub fn tanhf(x: f32) -> f32 {
        x.tanh()
    }
    #[inline]
    pub fn expf(x: f32) -> f32 {
        x.exp()
    }
    #[inline]
    pub fn lnf(x: f32) -> f32 {
        x.ln()
    }
    #[inline]
    pub fn ln(x: f64) -> f64 {
        x.ln()
    }
    #[inline]
    pub fn fmaf(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    pub use libm::{expf, fmaf, log as ln, logf as lnf, tanhf};
}

pub(crate) use imp::{expf, fmaf, ln, lnf, tanhf};
