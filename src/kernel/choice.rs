//! The backend a model is told to step on, kept as a byte so that the model stays
//! [`Zeroable`](bytemuck::Zeroable): an `Option<Backend>` holds the backend's CPU-feature token,
//! whose all-zero bytes are not a documented value.

use super::{Backend, Kind};

/// `Option<Backend>` as a byte: 0 for none (the model steps on [`Backend::best`]), else which
/// backend. A model asks for the backend again at each step, which costs what
/// [`Backend::best`] costs: the CPU's answer is detected once and cached.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct BackendChoice(u8);

impl BackendChoice {
    /// No backend chosen: the model steps on [`Backend::best`].
    pub(crate) const BEST: Self = Self(0);

    /// Stepping on `backend`.
    pub(crate) const fn of(backend: Backend) -> Self {
        Self(match backend.0 {
            Kind::Portable => 1,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2Fma(_) => 2,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512Vl(_) => 3,
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512(_) => 4,
        })
    }

    /// The chosen backend, if one was (a backend exists only on a CPU that runs it, so one that
    /// was chosen is found again).
    #[inline]
    pub(crate) fn chosen(self) -> Option<Backend> {
        match self.0 {
            1 => Some(Backend::PORTABLE),
            2 => Backend::avx2_fma(),
            3 => Backend::avx512vl(),
            4 => Backend::avx512(),
            _ => None,
        }
    }

    /// The backend to step on: the chosen one, else the best.
    #[inline]
    pub(crate) fn backend(self) -> Backend {
        self.chosen().unwrap_or_else(Backend::best)
    }
}

/// The backend's name if one was chosen, else `best` and the name of the one
/// [`Backend::best`] picks on this CPU: `backend: avx2+fma`, `backend: best (avx512)`.
impl core::fmt::Debug for BackendChoice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.chosen() {
            Some(backend) => f.write_str(backend.name()),
            None => write!(f, "best ({})", Backend::best().name()),
        }
    }
}

crate::in_place::impl_zeroable!(impl[] for BackendChoice { BackendChoice(code) => code });
