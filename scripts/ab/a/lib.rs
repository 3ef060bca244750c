//! The working tree's `elman`, as side A of `scripts/ab.sh`: what `elman_a` names when the
//! A/B program is built in the repository (CI's build and lints).

pub use elman::*;
