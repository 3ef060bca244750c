#![doc = include_str!("../README.md")]

pub mod activation;
pub mod cell;
pub mod readout;
pub mod reference;

pub use activation::{Activation, Relu, Tanh};
pub use cell::RnnCell;
pub use nalgebra;
pub use readout::{Readout, argmax, log_softmax, one_hot, one_hot_argmax, sigmoid, softmax};
