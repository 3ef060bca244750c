//! A readout's logits computed inside a backend's entry, where the compiler vectorises the
//! readout's loop over its outputs with the backend's instructions.

use nalgebra::SVector;

use super::simd::{Kernel, Simd};
use crate::readout::Readout;

/// `readout`'s logits of a flushed state, with the bits of [`Readout::logits_of_clean`]:
/// [`Simd::read_out`], compiled with the features of the backend that runs it.
pub(crate) struct Logits<'a, const H: usize, const O: usize> {
    pub(crate) readout: &'a Readout<H, O>,
    pub(crate) h: &'a SVector<f32, H>,
}

impl<S: Simd, const H: usize, const O: usize> Kernel<S> for Logits<'_, H, O> {
    type Output = SVector<f32, O>;

    #[cfg_attr(debug_assertions, inline)]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn run(self, s: S) -> SVector<f32, O> {
        s.read_out(self.readout, &self.h.data.0[0])
    }
}
