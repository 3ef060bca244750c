#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![doc(test(attr(deny(warnings))))]

// The property-test strategies hand out boxed models: they need an allocator, not `std`.
#[cfg(feature = "proptest")]
extern crate alloc;

pub mod activation;
pub mod bank;
pub mod bf16;
pub mod bidirectional;
pub mod budget;
pub mod cell;
pub mod f16;
pub mod flush;
pub mod in_place;
#[cfg(feature = "std")]
pub mod keras;
pub mod kernel;
pub mod layers;
mod math;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod readout;
pub mod reference;
pub mod rnn;
pub mod stack;
#[cfg(feature = "proptest")]
pub mod strategies;
pub mod tanh;
#[cfg(feature = "std")]
pub mod torch;

pub use activation::{Activation, Relu, Tanh};
pub use bank::{Bank, NoSuchStream, RnnBank};
pub use bf16::Bf16Cell;
pub use bidirectional::{BiStack, BiStates, Bidirectional};
pub use budget::ErrorBudget;
pub use cell::RnnCell;
pub use f16::{F16, HalfCell};
pub use flush::{FLUSH_BELOW, WEIGHT_FLUSH_BELOW};
pub use in_place::InPlace;
pub use kernel::Backend;
pub use layers::Layers;
pub use nalgebra;
/// The property-testing crate whose [`Strategy`](proptest::strategy::Strategy) the
/// [`strategies`] return (feature `proptest`).
#[cfg(feature = "proptest")]
pub use proptest;
pub use readout::{Head, Readout, argmax, log_softmax, one_hot, one_hot_argmax, sigmoid, softmax};
pub use rnn::{Network, OnSwap, Rnn, Rnn2, Rnn3, Rnn4};
pub use stack::{Stack, Stack2, Stack3, Stack4};
pub use tanh::{
    FAST_TANH_CLAMP, FAST_TANH_MAX_ABS_ERROR, FAST_TANH_MAX_ULP_ERROR, FAST_TANH_TINY, fast_tanh,
    fast_tanh_fused, fast_tanh_x4, fast_tanh_x8,
};
/// The `wide` crate, whose vectors `fast_tanh_x4` and `fast_tanh_x8` take and return.
pub use wide;
