//! How far the fast step may drift from the reference: one number per step, and one for a whole
//! sequence when the recurrence is contractive.
//!
//! ```text
//! per step:   |step(x, h) − reference(x, h)|_∞ ≤ ε = 2·γ(I+H+1)·S + δ_fast + δ_ref + δ_flush
//!             S = max_j ( Σ_k |W_xh[j,k]|·x_max + Σ_k |W_hh[j,k]|·h_max + |b_j| )
//!             δ_flush = F·(1 + max_j ( Σ_k |W_xh[j,k]| + Σ_k |W_hh[j,k]| )),   F = FLUSH_BELOW
//! sequence:   |ĥ_t − h_t|_∞ ≤ ε_seq / (1 − L)   for every t,  if L = ‖W_hh‖_∞ < 1
//!             ε_seq = 4·γ(I+H+1)·S + δ_fast + 3·δ_ref + δ_flush
//! weights:    |step(x, h) − step'(x, h)|_∞ ≤ F_w·(I·x_max + H·h_max + 1),   F_w = WEIGHT_FLUSH_BELOW
//! ```
//!
//! `γ(n) = n·u / (1 − n·u)`, `u = 2^-24`, bounds the rounding of a sum of `n` products in any
//! order, fused or not (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1): the
//! step and the reference each compute the pre-activation within `γ·S` of exact. `δ_fast` is the
//! error of the non-linearity in the step ([`FAST_TANH_MAX_ABS_ERROR`] for tanh, 0 for ReLU), and
//! `δ_ref` that of the reference's `f32::tanh` (2 ulp below 1, `2^-23`; 0 for ReLU). Both
//! non-linearities are 1-Lipschitz, so a difference in the pre-activation passes through them
//! undiminished but not amplified. `δ_flush` is what the [flush](crate::flush) of the step's
//! inputs and states (each below `F` in magnitude read as 0, moving unit `j`'s pre-activation
//! by less than `F·|W[j, k]|`) and of its new state (a value below `F` stored as 0) can change.
//!
//! The last line compares the cell with the weights it was built from: `step'` is the step of
//! those weights before the flush that stores each one below `F_w` as 0. It is a property of the
//! stored model, not of the arithmetic, and it is reported apart
//! ([`ErrorBudget::weight_flush`]).
//!
//! Over a sequence, the fast state `ĥ` and the reference state `h` start equal and each step
//! adds at most `ε_seq` (the per-step error, plus the reference's own rounding of two different
//! states) to a difference that the recurrence multiplies by at most `L`: the geometric series
//! gives `ε_seq / (1 − L)`. With `L ≥ 1` no bound holds uniformly in `t`: an expanding or chaotic
//! recurrence amplifies any difference, including the reference's own rounding.

use crate::activation::{Activation, Kind};
use crate::cell::RnnCell;
use crate::tanh::FAST_TANH_MAX_ABS_ERROR;

/// The error of one evaluation of `f32::tanh` that the budget assumes for the reference: 2 ulp
/// of a value below 1 (glibc documents at most 2 ulp for `tanhf` on x86-64 and aarch64).
pub const REFERENCE_TANH_ERROR: f32 = 1.0 / 8_388_608.0;

/// The error budget of a cell for inputs and states of bounded size; see the
/// [module docs](self) for the derivation.
///
/// ```
/// use elman::RnnCell;
///
/// let cell: RnnCell<1, 2> = RnnCell::from_row_major([[1.0], [-1.0]], [[0.5, 0.2], [0.1, 0.4]], [0.0; 2]);
/// let budget = cell.error_budget(1.0, 1.0);
/// // S = 1·1 + 0.7·1: ε = 2·γ(4)·1.7 + 3.3e-7 + 1.2e-7 ≈ 1.3e-6.
/// assert!(budget.per_step > 1.2e-6 && budget.per_step < 1.4e-6);
/// // ‖W_hh‖∞ = 0.7: a sequence stays within ε_seq / 0.3 ≈ 7.7e-6 of the reference.
/// assert!((budget.contraction - 0.7).abs() < 1e-6);
/// assert!(budget.sequence.unwrap() < 8e-6);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErrorBudget {
    /// `ε`: the most one step may differ from the reference on the same `x` and `h`, in any
    /// component.
    pub per_step: f32,
    /// `ε_seq / (1 − L)`: the most a state carried through any number of steps may differ from
    /// the reference's, if `L = ‖W_hh‖_∞ < 1`; `None` otherwise.
    pub sequence: Option<f32>,
    /// `L = ‖W_hh‖_∞`, the largest row sum of `|W_hh|`: a Lipschitz constant of the recurrence.
    pub contraction: f32,
    /// `F_w·(I·x_max + H·h_max + 1)`: the most one step of this cell may differ from a step of
    /// the weights it was built from, whose values below
    /// [`WEIGHT_FLUSH_BELOW`](crate::WEIGHT_FLUSH_BELOW) it stores as 0.
    pub weight_flush: f32,
}

impl<const I: usize, const H: usize, A: Activation> RnnCell<I, H, A> {
    /// The error budget of this cell for inputs with `|x_k| ≤ x_max` and states with
    /// `|h_k| ≤ h_max` (1 for a tanh cell, whose states stay in `[−1, 1]`).
    #[must_use]
    pub fn error_budget(&self, x_max: f32, h_max: f32) -> ErrorBudget {
        let u = f64::from(f32::EPSILON) / 2.0;
        #[expect(clippy::cast_precision_loss, reason = "a count of terms")]
        let n = (I + H + 1) as f64;
        let gamma = n * u / (1.0 - n * u);
        let (x_max, h_max) = (f64::from(x_max.abs()), f64::from(h_max.abs()));
        let row_sum = |j: usize| -> (f64, f64) {
            let wx: f64 = self.w_xh().row(j).iter().map(|w| f64::from(w.abs())).sum();
            let wh: f64 = self.w_hh().row(j).iter().map(|w| f64::from(w.abs())).sum();
            (wx, wh)
        };
        let (mut scale, mut contraction, mut row_norm) = (0.0_f64, 0.0_f64, 0.0_f64);
        for j in 0..H {
            let (wx, wh) = row_sum(j);
            scale = scale.max(wx * x_max + wh * h_max + f64::from(self.bias()[j].abs()));
            contraction = contraction.max(wh);
            row_norm = row_norm.max(wx + wh);
        }
        let flush = f64::from(crate::FLUSH_BELOW) * (1.0 + row_norm);
        #[expect(clippy::cast_precision_loss, reason = "sizes")]
        let weight_flush =
            f64::from(crate::WEIGHT_FLUSH_BELOW) * (I as f64 * x_max + H as f64 * h_max + 1.0);
        let (fast, reference) = match A::KIND {
            Kind::Tanh => (
                f64::from(FAST_TANH_MAX_ABS_ERROR),
                f64::from(REFERENCE_TANH_ERROR),
            ),
            Kind::Relu => (0.0, 0.0),
        };
        let per_step = 2.0 * gamma * scale + fast + reference + flush;
        let per_step_of_sequence = 4.0 * gamma * scale + fast + 3.0 * reference + flush;
        #[expect(clippy::cast_possible_truncation, reason = "a bound, rounded up below")]
        let up = |v: f64| (v * (1.0 + 4.0 * u)) as f32;
        ErrorBudget {
            per_step: up(per_step),
            sequence: (contraction < 1.0).then(|| up(per_step_of_sequence / (1.0 - contraction))),
            contraction: up(contraction),
            weight_flush: up(weight_flush),
        }
    }
}
