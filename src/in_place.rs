//! Models built, copied and loaded in place, so that a large one never passes through the stack.
//!
//! A model keeps its weights inline, as arrays: it is as large as its weights.
//! `RnnCell<I, H>` takes `4·H·(I+H+1)` bytes, rounded up to 64 (64 B at (3, 2), 96.5 KiB at
//! (64, 128), 385 KiB at (128, 256)); `Readout<H, O>` takes `4·O·(H+1)`; `Rnn<I, H, O>` is its
//! cell and readout plus two states (`8·H` bytes) and `RnnBank<I, H, N>` its cell plus
//! `4·N·(2H+I)` bytes of states and input buffer, each with a byte or two of flags, rounded up
//! to 64:
//!
//! ```
//! use elman::{Rnn, RnnBank, RnnCell};
//!
//! assert_eq!(size_of::<RnnCell<3, 2>>(), 64);
//! assert_eq!(size_of::<RnnCell<128, 256>>(), 4 * 256 * (128 + 256 + 1));
//! assert_eq!(size_of::<Rnn<128, 256, 10>>(), (394_240 + 4 * 10 * 257 + 8 * 256 + 1_usize).next_multiple_of(64));
//! assert_eq!(size_of::<RnnBank<128, 256, 8>>(), (394_240 + 4 * 8 * (2 * 256 + 128) + 2_usize).next_multiple_of(64));
//! ```
//!
//! A function that returns one by value (`RnnCell::new`, `Rnn::new`, `Clone::clone`,
//! `Box::new(..)` of one) builds it on the stack first, several times over in an unoptimised
//! build, and a large one overflows a thread's stack: 2 MiB for a spawned thread, often far less
//! on an embedded target. The way around is to write it where it lives:
//!
//! - [`InPlace::zeroed_box`] allocates a model on the heap already zeroed (all-zero weights and
//!   states are a valid model), and the `boxed` constructors (`RnnCell::boxed_from_row_major`,
//!   `Readout::boxed_from_row_major`, `Rnn::new_boxed`, `RnnBank::new_boxed`, `Stack::new_boxed`)
//!   and the loaders (`StateDict::rnn_boxed`, `StateDict::network_boxed`,
//!   `StateDict::rnn_cell_into`, `OnnxModel::network_boxed`, …) write into it;
//! - the loaders that return a model by value (`StateDict::network`, `OnnxModel::network`,
//!   `KerasModel::network`, …) load it that way and move it out once, so the model passes
//!   through the stack only on its way to the caller;
//! - `RnnCell::set_row_major` and `Readout::set_row_major` write new weights into a model where
//!   it is, `Rnn::set_initial_state`, `Rnn::set_backend` and `RnnBank::set_backend` do what
//!   the by-value `with_` builders do;
//! - [`InPlace::copy_from`] and [`InPlace::clone_boxed`] copy a model into one that exists, or
//!   into a new box, and `Rnn::swap_weights_from` and `RnnBank::swap_weights_from` swap weights
//!   in from references (into a zeroed model: how a large network or bank is filled where it
//!   lives).
//!
//! Without `std` there is no allocator, hence no `zeroed_box`; the rest works the same.
//!
//! ```
//! use elman::{InPlace, Readout, Rnn, RnnCell};
//! use elman::nalgebra::SVector;
//!
//! let cell = RnnCell::<128, 256>::zeroed_box();
//! let head = Readout::<256, 10>::zeroed_box();
//! let mut rnn = Rnn::new_boxed(&cell, &head);
//! let y = rnn.step(&SVector::zeros());
//! assert_eq!(y, SVector::<f32, 10>::zeros());
//! let copy = rnn.clone_boxed();
//! assert_eq!(copy, rnn);
//! ```

use bytemuck::{Pod, Zeroable};

/// A model that can be copied, and built on the heap, in place: nothing the size of the model
/// passes through the stack.
///
/// Every model type of the crate implements it: [`RnnCell`](crate::RnnCell),
/// [`Readout`](crate::Readout), [`Stack`](crate::stack::Stack), and the
/// [`Network`](crate::Network) and [`Bank`](crate::Bank) of either ([`Rnn`](crate::Rnn),
/// [`RnnBank`](crate::RnnBank), …). Its all-zero bytes are a valid model (the
/// [`Zeroable`] supertrait): zero weights, zero states, stepping on [`Backend::best`](crate::Backend::best).
pub trait InPlace: Zeroable {
    /// Makes `self` a copy of `source`, written in place: nothing is allocated and nothing large
    /// is built on the stack (where `*self = source.clone()` builds the copy first).
    fn copy_from(&mut self, source: &Self);

    /// The all-zero model (zero weights and states) on the heap, allocated zeroed: it is never
    /// on the stack, whatever its size. Like `Box::new`, it aborts if the allocation fails.
    #[cfg(feature = "std")]
    #[must_use]
    fn zeroed_box() -> Box<Self> {
        bytemuck::try_zeroed_box()
            .unwrap_or_else(|()| std::alloc::handle_alloc_error(core::alloc::Layout::new::<Self>()))
    }

    /// A copy on the heap, written in place (where `Box::clone` of a model builds the copy on
    /// the stack first).
    #[cfg(feature = "std")]
    #[must_use]
    fn clone_boxed(&self) -> Box<Self> {
        let mut copy = Self::zeroed_box();
        copy.copy_from(self);
        copy
    }
}

/// Copies `source` over `target` as bytes: one `memcpy`, with no copy on the stack in any build.
#[inline]
pub(crate) fn copy_pod<T: Pod>(target: &mut T, source: &T) {
    bytemuck::bytes_of_mut(target).copy_from_slice(bytemuck::bytes_of(source));
}

/// Writes the `R × C` values of `rows`, given row after row (`rows[r·C + c]`, PyTorch's order),
/// into `matrix`, which stores them column after column. Values past `R·C` are ignored; entries
/// `rows` is too short for keep their values.
pub(crate) fn write_rows<const R: usize, const C: usize>(
    rows: &[f32],
    matrix: &mut nalgebra::SMatrix<f32, R, C>,
) {
    let columns = &mut matrix.data.0;
    for (k, &value) in rows.iter().enumerate().take(R * C) {
        columns[k % C][k / C] = value;
    }
}

/// Requires `T: Zeroable`, for [`impl_zeroable!`]'s field check.
pub(crate) const fn zeroable<T: Zeroable>(_: &T) {}

/// `unsafe impl Zeroable` for a struct of the crate, beside the check its safety rests on: a
/// function that destructures the struct without `..`, so that it names every field (a field
/// added to the struct is a compile error until it is added there), and requires each field to
/// be `Zeroable`.
///
/// `impl_zeroable!(impl[generics] for Type<..> { Pattern { a, b } => a, b });`
macro_rules! impl_zeroable {
    (impl[$($generics:tt)*] for $type:ty { $pattern:pat => $($field:ident),* }) => {
        // SAFETY: `Zeroable` requires the all-zero bytes to be a valid value. Every field of
        // the struct is `Zeroable` (checked by the function below, which names them all), so
        // the all-zero bytes are a valid value of each field, and a struct whose fields all
        // hold valid values is valid, whatever its `repr` (its padding may hold any bytes).
        #[allow(unsafe_code, reason = "Zeroable is an unsafe trait; the SAFETY comment above")]
        unsafe impl<$($generics)*> bytemuck::Zeroable for $type {}

        const _: () = {
            #[allow(dead_code, reason = "a check made by the compiler, never called")]
            fn every_field_is_zeroable<$($generics)*>(value: &$type) {
                let $pattern = value;
                $($crate::in_place::zeroable($field);)*
            }
        };
    };
}

pub(crate) use impl_zeroable;
