//! Loading PyTorch weights: a `state_dict` saved as safetensors
//! (`safetensors.torch.save_file(model.state_dict(), path)`) into compile-time-sized cells and
//! readouts.
//!
//! ```text
//! nn.RNN  / nn.RNNCell:  h' = A(W_ih·x + b_ih + W_hh·h + b_hh)  →  RnnCell { W_xh = W_ih, W_hh, b = b_ih + b_hh }
//! nn.Linear:             y  = W·h + b                           →  Readout { W_hy = W, b_y = b }
//! ```
//!
//! PyTorch stores each matrix row-major, `[rows][columns]`; the loader reads it as such (a
//! `weight_hh` is not transposed). Tensors of dtype f32, f64, f16 and bf16 are converted to f32.
//! Anything wrong with the file or with a tensor is a [`LoadError`] that names it; loading never
//! panics, whatever the bytes.
//!
//! ```
//! use elman::torch::StateDict;
//!
//! let bytes = std::fs::read("tests/fixtures/oracle/textbook_i3_h2_o4_t5.safetensors").unwrap();
//! let state = StateDict::from_bytes(&bytes)?;
//! let cell = state.rnn_cell::<3, 2>("rnn", 0)?;
//! let head = state.readout::<2, 4>("head")?;
//! # let _ = (cell, head);
//! # Ok::<(), elman::torch::LoadError>(())
//! ```
//!
//! # Strict loading
//!
//! As PyTorch's `load_state_dict(strict=True)`, a load checks that it used every tensor it owns,
//! and that every weight and bias it reads is finite:
//!
//! - [`rnn`](StateDict::rnn) owns everything under `{prefix}.`, [`readout`](StateDict::readout)
//!   too (an `nn.Linear` holds `weight` and `bias`), [`rnn_cell`](StateDict::rnn_cell) of layer
//!   `k` the tensors of that layer (names under `{prefix}.` with `_l{k}` not followed by a digit,
//!   such as `weight_ih_l0_reverse`; a stack may load layer by layer) and of [`Layer::Cell`]
//!   everything under `{prefix}.`. The empty prefix owns the whole file, and so does
//!   [`network`](StateDict::network): the RNN and its readout are the whole model.
//!   A tensor left over (the `*_reverse` half of a bidirectional layer, `weight_hr_l0` of a
//!   `proj_size` model, `weight_g` of weight norm, a layer beyond the ones asked for) is
//!   [`LoadError::Unused`], naming them all; if whole layers are all that is left,
//!   [`LoadError::ExtraLayer`].
//! - A NaN or infinite weight or bias is [`LoadError::NonFinite`], naming the tensor and the
//!   index of its first bad element, as in `` `rnn.weight_hh_l0[1, 0]` is NaN ``.
//!
//! Both checks are on by default. [`StateDict::with_options`] turns either off:
//!
//! ```
//! use elman::RnnCell;
//! use elman::torch::{LoadError, LoadOptions, StateDict, Unused};
//!
//! // The state dict of an `nn.RNN(1, 1, bias=False, bidirectional=True)`, all weights 0.5.
//! let w = 0.5_f32.to_le_bytes();
//! let names = ["weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse"];
//! let tensor = || safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1, 1], &w);
//! let views: Vec<_> = names.iter().map(|n| (format!("rnn.{n}"), tensor().unwrap())).collect();
//! let bytes = safetensors::serialize(views, None).unwrap();
//!
//! let state = StateDict::from_bytes(&bytes)?;
//! let err = state.rnn::<RnnCell<1, 1>>("rnn").unwrap_err();
//! assert!(matches!(&err, LoadError::Unused { names, .. } if names.len() == 2));
//! assert_eq!(
//!     err.to_string(),
//!     "`rnn` holds tensors the load did not use: rnn.weight_hh_l0_reverse, \
//!      rnn.weight_ih_l0_reverse (the backward half of a bidirectional layer: \
//!      `StateDict::bidirectional` loads both); \
//!      `StateDict::with_options` with `Unused::Ignore` ignores them"
//! );
//!
//! // Both halves, as one bidirectional layer:
//! let layer: elman::Bidirectional<1, 1, 2> = state.bidirectional("rnn")?;
//! # assert_eq!(layer.backward.w_hh()[(0, 0)], 0.5);
//!
//! // Its forward half, on purpose:
//! let lenient = state.with_options(LoadOptions { unused: Unused::Ignore, ..LoadOptions::default() });
//! let forward: RnnCell<1, 1> = lenient.rnn("rnn")?;
//! # assert_eq!(forward.w_hh()[(0, 0)], 0.5);
//! # Ok::<(), LoadError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::activation::{Activation, Kind, Tanh};
use crate::bf16::{Bf16Cell, NotFinite};
use crate::bidirectional::{BiStack, Bidirectional};
use crate::cell::RnnCell;
use crate::f16::{HalfCell, OutOfRange};
use crate::in_place::InPlace;
use crate::layers::Layers;
use crate::readout::Readout;
use crate::rnn::Network;
use crate::stack::{LayerCount, Stack};

/// What went wrong while loading weights. Every variant names what it is about.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    Io {
        /// The path that was read.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file: truncated, a header that is not JSON, offsets
    /// that do not match the data, …
    Malformed {
        /// What the safetensors parser found wrong.
        reason: String,
    },
    /// A tensor the model needs is not in the file.
    Missing {
        /// The name that was looked for.
        name: String,
        /// The names in the file that share its prefix (up to its last `.`), to spot a typo or
        /// a different layout; when none does, the names that end with it under a longer
        /// prefix (`module.rnn.weight_ih_l0` for `rnn.weight_ih_l0`).
        similar: Vec<String>,
    },
    /// A tensor has another shape than the compile-time sizes require.
    Shape {
        /// The tensor's name.
        name: String,
        /// The shape the sizes require.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor's dtype is not one of f32, f64, f16, bf16.
    Dtype {
        /// The tensor's name.
        name: String,
        /// Its dtype in the file.
        found: String,
    },
    /// One of a layer's two biases is there and the other is not: PyTorch saves both or neither.
    HalfBias {
        /// The bias that is there.
        present: String,
        /// The bias that is missing.
        missing: String,
    },
    /// The file holds more layers than the model that loads it: from
    /// [`check_no_extra_layers`](StateDict::check_no_extra_layers) if `weight_ih_l{layer}` exists, from
    /// [`rnn`](StateDict::rnn) (and [`rust_statics`](StateDict::rust_statics)) if the tensors
    /// under the prefix that the load did not use are all weights and biases of layers `layer`
    /// and beyond (else [`Unused`](Self::Unused)).
    ExtraLayer {
        /// The module prefix.
        prefix: String,
        /// The first layer index that was not expected.
        layer: usize,
    },
    /// Tensors that the load owns (see [strict loading](self#strict-loading)) and did not use:
    /// the `*_reverse` half of a bidirectional layer, a stray tensor, … Ignoring them would
    /// silently give another model than the one saved.
    /// [`StateDict::with_options`] with [`Unused::Ignore`] ignores them.
    Unused {
        /// The module prefix.
        prefix: String,
        /// The unused tensors' full names, in order.
        names: Vec<String>,
    },
    /// A weight or bias holds a NaN or an infinity, which would make every step NaN.
    /// [`StateDict::with_options`] with [`NonFinite::Allow`] loads it as it is, but into an
    /// f32 or half-precision cell only: a [`Bf16Cell`] stores finite weights, and loading one
    /// into it is this error whatever the option.
    NonFinite {
        /// The tensor's name; for a bias folded from two finite biases whose sum overflows `f32`,
        /// `(bias_ih + bias_hh)` with their full names.
        name: String,
        /// The first bad element's index in the tensor, one entry per dimension of its shape in
        /// the file (`[row, column]` for a weight, as PyTorch indexes it): row-major order.
        index: Vec<usize>,
        /// Its value, converted to `f32`.
        value: f32,
    },
    /// A weight loaded into a [`HalfCell`] is beyond half precision's range (`|w| ≥ 65520`
    /// rounds to infinity).
    HalfRange {
        /// The tensor's name.
        name: String,
        /// The weight's `[row, column]` in the tensor, as PyTorch indexes it.
        index: [usize; 2],
        /// Its value.
        value: f32,
    },
}

/// How [`LoadError`] Display names a prefix: the module, or the whole file for the empty one.
struct Scope<'a>(&'a str);

impl fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("the state dict")
        } else {
            write!(f, "`{}`", self.0)
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {path}: {source}"),
            Self::Malformed { reason } => write!(f, "not a valid safetensors file: {reason}"),
            Self::Missing { name, similar } => write_missing(f, name, similar),
            Self::Shape {
                name,
                expected,
                found,
            } => {
                write!(
                    f,
                    "tensor `{name}` has shape {found:?}, expected {expected:?}"
                )?;
                // An LSTM or GRU stacks its gates' weights: 4·H or 3·H rows, against the H
                // asked for or, in `weight_hh` (`[gates·H, H]`), its own columns.
                let gated = name.contains("weight_ih") || name.contains("weight_hh");
                let h = if name.contains("weight_hh") {
                    found.get(1)
                } else {
                    expected.first()
                };
                match (found.first(), h) {
                    (Some(&rows), Some(&h)) if gated && h > 0 && rows == 4 * h => {
                        f.write_str(" (4·H rows: an LSTM's four gates? elman runs vanilla RNNs)")
                    }
                    (Some(&rows), Some(&h)) if gated && h > 0 && rows == 3 * h => {
                        f.write_str(" (3·H rows: a GRU's three gates? elman runs vanilla RNNs)")
                    }
                    _ => Ok(()),
                }
            }
            Self::Dtype { name, found } => {
                write!(
                    f,
                    "tensor `{name}` has dtype {found}; f32, f64, f16 and bf16 are supported"
                )
            }
            Self::HalfBias { present, missing } => {
                write!(f, "bias `{present}` is present but `{missing}` is missing")
            }
            Self::ExtraLayer { prefix, layer } => write!(
                f,
                "{} has a layer {layer} (`{}`), more layers than the model loading it; \
                 `StateDict::with_options` with `Unused::Ignore` lets `rnn` load the first ones",
                Scope(prefix),
                Layer::Index(*layer).name(prefix, "*")
            ),
            Self::Unused { prefix, names } => {
                write!(
                    f,
                    "{} holds tensors the load did not use: {}",
                    Scope(prefix),
                    names.join(", ")
                )?;
                if names.iter().any(|n| n.ends_with("_reverse")) {
                    f.write_str(
                        " (the backward half of a bidirectional layer: \
                         `StateDict::bidirectional` loads both)",
                    )?;
                }
                f.write_str("; `StateDict::with_options` with `Unused::Ignore` ignores them")
            }
            Self::NonFinite { name, index, value } => {
                let index: Vec<String> = index.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "`{name}[{}]` is {value}; `StateDict::with_options` with `NonFinite::Allow` \
                     loads non-finite weights",
                    index.join(", ")
                )
            }
            Self::HalfRange {
                name,
                index: [row, column],
                value,
            } => write!(
                f,
                "`{name}[{row}, {column}]` is {value}, beyond half precision's range (largest \
                 finite 65504): load it as an `RnnCell`"
            ),
        }
    }
}

/// [`LoadError::Missing`]'s message: what shares the name's prefix, or the same name under a
/// longer prefix, or neither.
fn write_missing(f: &mut fmt::Formatter<'_>, name: &str, similar: &[String]) -> fmt::Result {
    let quoted = |names: &mut dyn Iterator<Item = &str>| -> String {
        names
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    if similar.is_empty() {
        write!(
            f,
            "tensor `{name}` is missing, and no tensor shares its prefix"
        )
    } else if similar.iter().all(|n| n.ends_with(&format!(".{name}"))) {
        write!(
            f,
            "tensor `{name}` is missing, but the file has {}: load the prefix {} (a model \
             wrapped in `nn.DataParallel` saves its modules under `module.`)",
            quoted(&mut similar.iter().map(String::as_str)),
            // The module's prefix in this file: each name up to its last `.`.
            quoted(
                &mut similar
                    .iter()
                    .map(|n| n.rsplit_once('.').map_or("", |p| p.0))
            ),
        )
    } else {
        write!(
            f,
            "tensor `{name}` is missing; with its prefix there are: {}",
            similar.join(", ")
        )
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Which naming a recurrent layer uses in the state dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Layer `k` of an `nn.RNN`: `{prefix}.weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`,
    /// `bias_hh_l{k}`. A plain `usize` converts to this.
    Index(usize),
    /// An `nn.RNNCell`: `{prefix}.weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    Cell,
    /// The backward direction of layer `k` of a bidirectional `nn.RNN`:
    /// `{prefix}.weight_ih_l{k}_reverse`, `weight_hh_l{k}_reverse`, `bias_ih_l{k}_reverse`,
    /// `bias_hh_l{k}_reverse`.
    Reverse(usize),
}

impl From<usize> for Layer {
    fn from(k: usize) -> Self {
        Self::Index(k)
    }
}

/// The four tensors of a recurrent layer, as PyTorch names them.
const LAYER_TENSORS: [&str; 4] = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"];

impl Layer {
    fn name(self, prefix: &str, what: &str) -> String {
        let dot = if prefix.is_empty() { "" } else { "." };
        match self {
            Self::Index(k) => format!("{prefix}{dot}{what}_l{k}"),
            Self::Cell => format!("{prefix}{dot}{what}"),
            Self::Reverse(k) => format!("{prefix}{dot}{what}_l{k}_reverse"),
        }
    }

    /// The names of the layer's weights and biases.
    fn tensors(self, prefix: &str) -> [String; 4] {
        LAYER_TENSORS.map(|what| self.name(prefix, what))
    }

    /// Whether the tensor `name` belongs to this layer: for [`Layer::Index`]`(k)` a name under
    /// `prefix` with `_l{k}` in it (`weight_ih_l0_reverse`, `weight_hr_l0`, not `weight_ih_l10`),
    /// for [`Layer::Cell`] any name under `prefix`, for [`Layer::Reverse`]`(k)` a name under
    /// `prefix` with `_l{k}_reverse` in it.
    fn owns(self, prefix: &str, name: &str) -> bool {
        let Some(rest) = under(prefix, name) else {
            return false;
        };
        match self {
            Self::Cell => true,
            Self::Reverse(k) => rest.contains(&format!("_l{k}_reverse")),
            Self::Index(k) => {
                let token = format!("_l{k}");
                rest.match_indices(&token).any(|(at, _)| {
                    !rest[at + token.len()..].starts_with(|c: char| c.is_ascii_digit())
                })
            }
        }
    }
}

/// The rest of `name` after `{prefix}.`, if it is under the prefix; the empty prefix holds every
/// name. `rnn2.weight` is not under `rnn`.
fn under<'a>(prefix: &str, name: &'a str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(name);
    }
    name.strip_prefix(prefix)?.strip_prefix('.')
}

/// The layer `k` of a name `{weight,bias}_{ih,hh}_l{k}`, or of its `_reverse` half (the rest
/// after the prefix).
fn layer_of(rest: &str) -> Option<usize> {
    let rest = rest.strip_suffix("_reverse").unwrap_or(rest);
    let digits = LAYER_TENSORS
        .iter()
        .find_map(|what| rest.strip_prefix(what)?.strip_prefix("_l"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a load does with tensors it owns and did not use (see
/// [strict loading](self#strict-loading)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Unused {
    /// [`LoadError::Unused`] (or [`LoadError::ExtraLayer`]) naming them, as PyTorch's
    /// `load_state_dict(strict=True)`. The default.
    #[default]
    Reject,
    /// Ignore them, as `strict=False` does with unexpected keys: a bidirectional layer loads as
    /// its forward half, an `nn.RNN` of more layers as its first ones.
    Ignore,
}

/// What a load does with a NaN or infinite weight or bias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NonFinite {
    /// [`LoadError::NonFinite`] naming the tensor and the first bad element. The default.
    #[default]
    Reject,
    /// Load the values as they are.
    Allow,
}

/// How strict a [`StateDict`]'s loads are; the default rejects both unused tensors and
/// non-finite weights. Set with [`StateDict::with_options`].
///
/// ```
/// use elman::torch::{LoadOptions, NonFinite, Unused};
///
/// let lenient = LoadOptions { unused: Unused::Ignore, ..LoadOptions::default() };
/// assert_eq!(lenient.non_finite, NonFinite::Reject);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LoadOptions {
    /// Tensors that a load owns and did not use.
    pub unused: Unused,
    /// NaN and infinite weights and biases.
    pub non_finite: NonFinite,
}

/// One tensor, as it is in the file.
#[derive(Clone, Debug)]
struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// A PyTorch `state_dict` read from a safetensors file: named tensors, validated when read and
/// converted to `f32` when a model takes them, loaded strictly unless
/// [`with_options`](Self::with_options) says otherwise.
#[derive(Clone, Debug)]
pub struct StateDict {
    tensors: BTreeMap<String, Tensor>,
    options: LoadOptions,
}

impl StateDict {
    /// Parses a safetensors file. The whole file is validated here: a truncated or inconsistent
    /// file is an error now, not when a tensor is taken.
    ///
    /// # Errors
    ///
    /// [`LoadError::Malformed`] if the bytes are not a valid safetensors file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| LoadError::Malformed {
            reason: torch_save_format(bytes).map_or_else(|| e.to_string(), str::to_owned),
        })?;
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let tensor = Tensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: view.data().to_vec(),
                };
                (name, tensor)
            })
            .collect();
        Ok(Self {
            tensors,
            options: LoadOptions::default(),
        })
    }

    /// The same tensors, loaded with `options` from now on: ignoring unused tensors, allowing
    /// non-finite weights, or both.
    ///
    /// ```
    /// use elman::torch::{LoadOptions, NonFinite, StateDict, Unused};
    ///
    /// let state = StateDict::read("tests/fixtures/torch/two_layers_i7_h13.safetensors")?;
    /// // The file holds two layers: load the first alone, and allow NaN and infinite weights.
    /// let state = state.with_options(LoadOptions {
    ///     unused: Unused::Ignore,
    ///     non_finite: NonFinite::Allow,
    /// });
    /// let first: elman::RnnCell<7, 13> = state.rnn("rnn")?;
    /// # let _ = first;
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    #[must_use]
    pub fn with_options(self, options: LoadOptions) -> Self {
        Self { options, ..self }
    }

    /// The options loads follow.
    #[must_use]
    pub fn options(&self) -> LoadOptions {
        self.options
    }

    /// Reads and parses a safetensors file.
    ///
    /// # Errors
    ///
    /// [`LoadError::Io`] if the file cannot be read, else as [`from_bytes`](Self::from_bytes).
    pub fn read(path: impl AsRef<Path>) -> Result<Self, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// The names of the tensors, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// A tensor's shape, if it is there.
    #[must_use]
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// A tensor's values converted to `f32`, in the file's (row-major) order, with its shape.
    ///
    /// # Errors
    ///
    /// [`LoadError::Missing`] or [`LoadError::Dtype`].
    pub fn values(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), LoadError> {
        let tensor = self.tensors.get(name).ok_or_else(|| self.missing(name))?;
        let data = &tensor.data;
        let values: Vec<f32> = match tensor.dtype {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            #[expect(
                clippy::cast_possible_truncation,
                reason = "f64 weights, rounded to f32"
            )]
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(LoadError::Dtype {
                    name: name.to_owned(),
                    found: format!("{other:?}"),
                });
            }
        };
        Ok((tensor.shape.clone(), values))
    }

    /// A weight's or bias's values, checked to have `shape` and to be finite.
    fn sized(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, LoadError> {
        let (found, values) = self.values(name)?;
        if found != shape {
            return Err(LoadError::Shape {
                name: name.to_owned(),
                expected: shape.to_vec(),
                found,
            });
        }
        self.finite(name, shape, &values)?;
        Ok(values)
    }

    /// [`LoadError::NonFinite`] for the first NaN or infinity in `values` (of a tensor of
    /// `shape`, row-major), unless the options allow them.
    fn finite(&self, name: &str, shape: &[usize], values: &[f32]) -> Result<(), LoadError> {
        if self.options.non_finite == NonFinite::Allow {
            return Ok(());
        }
        let Some(flat) = values.iter().position(|v| !v.is_finite()) else {
            return Ok(());
        };
        // Row-major: the last dimension varies fastest.
        let mut rest = flat;
        let mut index = vec![0; shape.len()];
        for (i, &extent) in shape.iter().enumerate().rev() {
            if extent > 0 {
                index[i] = rest % extent;
                rest /= extent;
            }
        }
        Err(LoadError::NonFinite {
            name: name.to_owned(),
            index,
            value: values[flat],
        })
    }

    fn missing(&self, name: &str) -> LoadError {
        let prefix = name.rfind('.').map_or("", |i| &name[..=i]);
        let mut similar: Vec<String> = self
            .names()
            .filter(|n| n.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        if similar.is_empty() {
            // The same tensor under a longer prefix: `module.rnn.weight_ih_l0` from a model
            // wrapped in `nn.DataParallel`, `model.rnn.…` from one nested in another module.
            let suffix = format!(".{name}");
            similar = self
                .names()
                .filter(|n| n.ends_with(&suffix))
                .map(str::to_owned)
                .collect();
        }
        LoadError::Missing {
            name: name.to_owned(),
            similar,
        }
    }

    /// Unless the options ignore them: the tensors under `prefix` that `owns` selects and no
    /// name in `used` is, as [`LoadError::Unused`]; as [`LoadError::ExtraLayer`] if they are all
    /// weights and biases of layers `layers` and beyond of an `nn.RNN`.
    fn reject_unused(
        &self,
        prefix: &str,
        owns: impl Fn(&str) -> bool,
        used: &[String],
        layers: Option<usize>,
    ) -> Result<(), LoadError> {
        if self.options.unused == Unused::Ignore {
            return Ok(());
        }
        let names: Vec<String> = self
            .names()
            .filter(|n| owns(n) && !used.iter().any(|u| u == n))
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let extra: Option<Vec<usize>> = names
            .iter()
            .map(|n| under(prefix, n).and_then(layer_of))
            .collect();
        if let (Some(count), Some(extra)) = (layers, extra)
            && let Some(&layer) = extra.iter().min()
            && layer >= count
        {
            return Err(LoadError::ExtraLayer {
                prefix: prefix.to_owned(),
                layer,
            });
        }
        Err(LoadError::Unused {
            prefix: prefix.to_owned(),
            names,
        })
    }

    /// A tanh cell from layer `layer` of the `nn.RNN` (or the `nn.RNNCell`, with [`Layer::Cell`])
    /// saved under `prefix`: `weight_ih` (`H × I`), `weight_hh` (`H × H`) and, when present,
    /// `bias_ih + bias_hh` folded into the cell's one bias (no biases: `bias=False`, zero bias).
    ///
    /// The file does not record the non-linearity: a model trained with
    /// `nonlinearity='relu'` loads with [`rnn_cell_with`](Self::rnn_cell_with).
    ///
    /// Strictly (the default), every other tensor of the layer (under `prefix`, with `_l{layer}`
    /// not followed by a digit, such as `weight_ih_l0_reverse`; for [`Layer::Cell`] every tensor
    /// under `prefix`) is an error, but other layers' tensors are not: a stack loads layer by
    /// layer, or whole with [`rnn`](Self::rnn), which checks them all.
    ///
    /// # Errors
    ///
    /// [`LoadError::Missing`], [`LoadError::Shape`], [`LoadError::Dtype`] for a weight or bias,
    /// [`LoadError::HalfBias`] if only one of the two biases is there,
    /// [`LoadError::NonFinite`] for a NaN or infinite weight or bias (or a folded bias that
    /// overflows), [`LoadError::Unused`] for another tensor of the layer.
    pub fn rnn_cell<const I: usize, const H: usize>(
        &self,
        prefix: &str,
        layer: impl Into<Layer>,
    ) -> Result<RnnCell<I, H>, LoadError> {
        self.rnn_cell_with::<I, H, Tanh>(prefix, layer)
    }

    /// As [`rnn_cell`](Self::rnn_cell), with the non-linearity `A` (for example
    /// [`Relu`](crate::Relu)).
    ///
    /// # Errors
    ///
    /// As [`rnn_cell`](Self::rnn_cell).
    pub fn rnn_cell_with<const I: usize, const H: usize, A: Activation>(
        &self,
        prefix: &str,
        layer: impl Into<Layer>,
    ) -> Result<RnnCell<I, H, A>, LoadError> {
        // Loaded on the heap and moved out once: built from matrices by value, the cell went
        // through the stack once per matrix and again at each move on the way out.
        Ok(*self.rnn_cell_boxed(prefix, layer)?)
    }

    /// [`rnn_cell_with`](Self::rnn_cell_with) into a zeroed box.
    fn rnn_cell_boxed<const I: usize, const H: usize, A: Activation>(
        &self,
        prefix: &str,
        layer: impl Into<Layer>,
    ) -> Result<Box<RnnCell<I, H, A>>, LoadError> {
        let mut cell = RnnCell::<I, H, A>::zeroed_box();
        self.rnn_cell_into(prefix, layer, &mut cell)?;
        Ok(cell)
    }

    /// A readout from the `nn.Linear` saved under `prefix`: `weight` (`O × H`) and, when
    /// present, `bias` (`bias=False`: zero bias). Strictly (the default), any other tensor under
    /// `prefix` (`weight_g` and `weight_v` of weight norm, …) is an error.
    ///
    /// # Errors
    ///
    /// [`LoadError::Missing`], [`LoadError::Shape`] or [`LoadError::Dtype`],
    /// [`LoadError::NonFinite`] for a NaN or infinite value, [`LoadError::Unused`] for another
    /// tensor under `prefix`.
    pub fn readout<const H: usize, const O: usize>(
        &self,
        prefix: &str,
    ) -> Result<Readout<H, O>, LoadError> {
        // Written on the heap and moved out once, as a cell is (see `rnn_cell_with`).
        let mut readout = Readout::<H, O>::zeroed_box();
        self.readout_into(prefix, &mut readout)?;
        Ok(*readout)
    }

    /// The names of an `nn.Linear`'s weight and bias.
    fn linear(prefix: &str) -> [String; 2] {
        let dot = if prefix.is_empty() { "" } else { "." };
        ["weight", "bias"].map(|what| format!("{prefix}{dot}{what}"))
    }

    /// Checks that the `nn.RNN` under `prefix` has no layer `layers` or beyond: a model of
    /// `layers` layers loads all of it. Whatever the [options](Self::with_options).
    ///
    /// # Errors
    ///
    /// [`LoadError::ExtraLayer`] naming the first extra layer.
    pub fn check_no_extra_layers(&self, prefix: &str, layers: usize) -> Result<(), LoadError> {
        let name = Layer::Index(layers).name(prefix, "weight_ih");
        if self.tensors.contains_key(&name) {
            return Err(LoadError::ExtraLayer {
                prefix: prefix.to_owned(),
                layer: layers,
            });
        }
        Ok(())
    }
}

/// A network the loader can fill from consecutive `nn.RNN` layers.
pub trait FromLayers: Sized {
    /// Loads layers `first`, `first + 1`, … of the `nn.RNN` under `prefix`. It does not look
    /// for unused tensors: [`StateDict::rnn`] does, for the whole module.
    ///
    /// # Errors
    ///
    /// As [`StateDict::rnn_cell`] (but [`LoadError::Unused`]), for the first layer that fails.
    fn from_layers(state: &StateDict, prefix: &str, first: usize) -> Result<Self, LoadError>;
}

/// Every network that loads in place ([`LoadLayers`]: a cell of any weight format, a stack of
/// them) loads by value through the heap: written into a zeroed box, then moved out once.
/// Built by value, layer by layer and stack by stack, a model went through the stack at every
/// layer and every move.
impl<N: LoadLayers + InPlace> FromLayers for N {
    fn from_layers(state: &StateDict, prefix: &str, first: usize) -> Result<Self, LoadError> {
        let mut network = N::zeroed_box();
        network.load_layers(state, prefix, first)?;
        Ok(*network)
    }
}

/// The PyTorch name of layer `layer`'s `matrix` (`"w_xh"` or `"w_hh"`).
fn weight_name(prefix: &str, layer: usize, matrix: &str) -> String {
    let matrix = if matrix == "w_xh" { "ih" } else { "hh" };
    format!("{prefix}.weight_{matrix}_l{layer}")
}

/// [`LoadError::HalfRange`] for layer `layer`'s weight that `e` names.
fn half_range(prefix: &str, layer: usize, e: OutOfRange) -> LoadError {
    LoadError::HalfRange {
        name: weight_name(prefix, layer, e.matrix),
        index: [e.row, e.column],
        value: e.value,
    }
}

/// [`LoadError::NonFinite`] for layer `layer`'s weight that `e` names (one the loader's
/// [`NonFinite::Allow`] let through).
fn not_finite(prefix: &str, layer: usize, e: NotFinite) -> LoadError {
    LoadError::NonFinite {
        name: weight_name(prefix, layer, e.matrix),
        index: vec![e.row, e.column],
        value: e.value,
    }
}

impl StateDict {
    /// A whole stacked `nn.RNN` (one [`RnnCell`] or a [`Stack`] of them), layer 0 at the
    /// bottom, without a readout ([`network`](Self::network) loads one with it). Strictly (the
    /// default), every other tensor under `prefix` is an error: a further layer, the
    /// `*_reverse` half of a bidirectional layer, a stray tensor.
    ///
    /// ```
    /// use elman::stack::Stack2;
    /// use elman::torch::{LoadError, StateDict};
    ///
    /// let state = StateDict::read("tests/fixtures/oracle/textbook_i3_h2_o4_t5.safetensors")?;
    /// // The file holds one layer: asking for two names the missing one.
    /// let err = state.rnn::<Stack2<3, 2>>("rnn").unwrap_err();
    /// assert!(matches!(err, LoadError::Missing { ref name, .. } if name == "rnn.weight_ih_l1"));
    /// # Ok::<(), LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`rnn_cell`](Self::rnn_cell) for each layer, [`LoadError::ExtraLayer`] if the file
    /// holds more layers and nothing else unused, else [`LoadError::Unused`] naming the tensors
    /// under `prefix` that no layer used.
    pub fn rnn<N: FromLayers + LayerCount>(&self, prefix: &str) -> Result<N, LoadError> {
        // Checked first, so that the network goes from the loader to the caller without a
        // stop on this function's stack.
        self.reject_unused_layers(prefix, N::COUNT)?;
        N::from_layers(self, prefix, 0)
    }

    /// A whole network: the `nn.RNN` under `rnn_prefix` (as [`rnn`](Self::rnn) loads it, one
    /// [`RnnCell`] or a [`Stack`] of them) and the `nn.Linear` under `head_prefix` (as
    /// [`readout`](Self::readout) loads it), starting from a zero state. Each prefix is checked
    /// for unused tensors as those two check theirs, and a network owns the whole file: a tensor
    /// under neither prefix (another module, such as a second `nn.Linear` after the head) is
    /// unused too.
    ///
    /// The type names the model: annotate the binding (`let model: Rnn<3, 2, 4> = ...`), or
    /// give the turbofish the layers first (`network::<RnnCell<3, 2>, 3, 2, 4>`), as
    /// [`Network`]'s parameters are.
    ///
    /// The network is loaded on the heap and moved out once, so it passes through the stack
    /// only on its way to the caller (`tests/stack_size.rs` loads a (128, 256) one, 395 KiB, by
    /// value in a thread with `std::thread::spawn`'s 2 MiB, debug and release builds).
    /// [`network_boxed`](Self::network_boxed) returns the box, for a model too large for the
    /// stack it runs on.
    ///
    /// ```
    /// use elman::torch::StateDict;
    /// use elman::Rnn2;
    /// use elman::nalgebra::SVector;
    ///
    /// let state = StateDict::read("tests/fixtures/torch/two_layers_i7_h13.safetensors")?;
    /// let mut net: Rnn2<7, 13, 5> = state.network("rnn", "head")?;
    /// let logits = net.step(&SVector::zeros());
    /// # let _ = logits;
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`rnn`](Self::rnn), then as [`readout`](Self::readout), then [`LoadError::Unused`]
    /// naming the tensors under neither prefix.
    pub fn network<L, const I: usize, const H: usize, const O: usize>(
        &self,
        rnn_prefix: &str,
        head_prefix: &str,
    ) -> Result<Network<L, I, H, O>, LoadError>
    where
        L: Layers<I, H> + LoadLayers,
    {
        // Loaded on the heap and moved out once, rather than built from parts loaded by value,
        // each of which went through the stack.
        Ok(*self.network_boxed(rnn_prefix, head_prefix)?)
    }

    /// [`LoadError::Unused`] for the tensors under neither prefix (unless the options ignore
    /// them): a network is the whole model, and a module beside the RNN and its readout (a
    /// second `nn.Linear`, an embedding) would make it another one.
    fn reject_outside(&self, rnn_prefix: &str, head_prefix: &str) -> Result<(), LoadError> {
        self.reject_unused(
            "",
            |n| under(rnn_prefix, n).is_none() && under(head_prefix, n).is_none(),
            &[],
            None,
        )
    }

    /// [`LoadError::Unused`] for the tensors of `layer` under `prefix` that its cell does not
    /// use (unless the options ignore them).
    fn reject_unused_of_layer(&self, prefix: &str, layer: Layer) -> Result<(), LoadError> {
        self.reject_unused(
            prefix,
            |n| layer.owns(prefix, n),
            &layer.tensors(prefix),
            None,
        )
    }

    /// [`LoadError::Unused`] for the tensors under `prefix` other than an `nn.Linear`'s weight
    /// and bias (unless the options ignore them).
    fn reject_unused_of_linear(&self, prefix: &str) -> Result<(), LoadError> {
        self.reject_unused(
            prefix,
            |n| under(prefix, n).is_some(),
            &Self::linear(prefix),
            None,
        )
    }

    /// [`LoadError::ExtraLayer`] or [`LoadError::Unused`] for the tensors under `prefix` that
    /// the first `layers` layers of an `nn.RNN` do not use (unless the options ignore them).
    fn reject_unused_layers(&self, prefix: &str, layers: usize) -> Result<(), LoadError> {
        let used: Vec<String> = (0..layers)
            .flat_map(|k| Layer::Index(k).tensors(prefix))
            .collect();
        self.reject_unused(prefix, |n| under(prefix, n).is_some(), &used, Some(layers))
    }
}

impl StateDict {
    /// Rust source defining the one-layer `nn.RNN` under `rnn_prefix` and the `nn.Linear` under
    /// `head_prefix` as two `static` items, `{NAME}_CELL: RnnCell<I, H>` and
    /// `{NAME}_HEAD: Readout<H, O>`, with the sizes read from the file, for a tanh cell (the
    /// file does not record the non-linearity: [`rust_statics_with`](Self::rust_statics_with)
    /// writes a ReLU one). The values are written
    /// so that they read back to the same `f32` bits, and the compiler checks the shapes when
    /// the source is built. A model compiled in this way needs no file, allocator or loader.
    ///
    /// As strict as [`rnn`](Self::rnn) and [`readout`](Self::readout) under the two prefixes.
    ///
    /// ```
    /// use elman::torch::StateDict;
    ///
    /// let state = StateDict::read("tests/fixtures/torch/seed_tanh_i3_h2.safetensors")?;
    /// let source = state.rust_statics("rnn", "head", "SEED")?;
    /// assert!(source.contains("pub static SEED_CELL: elman::RnnCell<3, 2>"));
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`rnn`](Self::rnn) and [`readout`](Self::readout): a missing tensor, a shape that is
    /// not a matrix or disagrees with the others, an unsupported dtype, a single bias, a
    /// non-finite value, an unused tensor under either prefix.
    pub fn rust_statics(
        &self,
        rnn_prefix: &str,
        head_prefix: &str,
        name: &str,
    ) -> Result<String, LoadError> {
        self.rust_statics_with::<Tanh>(rnn_prefix, head_prefix, name)
    }

    /// As [`rust_statics`](Self::rust_statics), the cell's non-linearity `A`: for a model
    /// trained with `nonlinearity='relu'`, `{NAME}_CELL: RnnCell<I, H, elman::Relu>`.
    ///
    /// ```
    /// use elman::Relu;
    /// use elman::torch::StateDict;
    ///
    /// let state = StateDict::read("tests/fixtures/torch/seed_relu_i3_h2.safetensors")?;
    /// let source = state.rust_statics_with::<Relu>("rnn", "head", "SEED")?;
    /// assert!(source.contains("pub static SEED_CELL: elman::RnnCell<3, 2, elman::Relu>"));
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`rust_statics`](Self::rust_statics).
    pub fn rust_statics_with<A: Activation>(
        &self,
        rnn_prefix: &str,
        head_prefix: &str,
        name: &str,
    ) -> Result<String, LoadError> {
        let layer = Layer::Index(0);
        let [ih, hh, ..] = layer.tensors(rnn_prefix);
        let (ih_shape, w_ih) = self.values(&ih)?;
        let [h, i] = ih_shape[..] else {
            return Err(LoadError::Shape {
                name: ih,
                expected: vec![0, 0],
                found: ih_shape,
            });
        };
        self.finite(&ih, &ih_shape, &w_ih)?;
        let w_hh = self.sized(&hh, &[h, h])?;
        let bias = self.folded_bias(rnn_prefix, layer, h)?;
        // One set of used names for both prefixes, so that either may hold the other. The
        // layer's unused tensors first: a second layer or a backward half is the cause of a
        // head of the wrong width, and the error names it.
        let [head_weight, head_bias] = Self::linear(head_prefix);
        let mut used = layer.tensors(rnn_prefix).to_vec();
        used.extend([head_weight.clone(), head_bias.clone()]);
        self.reject_unused(
            rnn_prefix,
            |n| under(rnn_prefix, n).is_some(),
            &used,
            Some(1),
        )?;
        let (head_shape, w_hy) = self.values(&head_weight)?;
        let [o, head_h] = head_shape[..] else {
            return Err(LoadError::Shape {
                name: head_weight,
                expected: vec![0, h],
                found: head_shape,
            });
        };
        if head_h != h {
            return Err(LoadError::Shape {
                name: head_weight,
                expected: vec![o, h],
                found: head_shape,
            });
        }
        self.finite(&head_weight, &head_shape, &w_hy)?;
        let b_y = if self.tensors.contains_key(&head_bias) {
            self.sized(&head_bias, &[o])?
        } else {
            vec![0.0; o]
        };
        self.reject_unused(
            head_prefix,
            |n| under(head_prefix, n).is_some(),
            &used,
            None,
        )?;

        let rows = |values: &[f32], columns: usize| -> String {
            let rows: Vec<String> = values
                .chunks(columns.max(1))
                .map(|r| format!("[{}]", literals(r)))
                .collect();
            format!("[{}]", rows.join(", "))
        };
        // The type's activation parameter and the layer's PyTorch argument, tanh being the
        // default of both.
        let (activation, nonlinearity) = match A::KIND {
            Kind::Tanh => ("", ""),
            Kind::Relu => (", elman::Relu", ", nonlinearity='relu'"),
        };
        Ok(format!(
            "// Generated from a PyTorch state_dict by elman's `StateDict::rust_statics`. Do not edit.\n\
             \n\
             /// The recurrent layer: `nn.RNN({i}, {h}{nonlinearity})`, biases folded.\n\
             #[allow(clippy::unreadable_literal, clippy::excessive_precision, reason = \"generated weights\")]\n\
             pub static {name}_CELL: elman::RnnCell<{i}, {h}{activation}> = elman::RnnCell::from_row_major(\n    {},\n    {},\n    [{}],\n);\n\
             \n\
             /// The output layer: `nn.Linear({h}, {o})`.\n\
             #[allow(clippy::unreadable_literal, clippy::excessive_precision, reason = \"generated weights\")]\n\
             pub static {name}_HEAD: elman::Readout<{h}, {o}> = elman::Readout::from_row_major(\n    {},\n    [{}],\n);\n",
            rows(&w_ih, i),
            rows(&w_hh, h),
            literals(&bias),
            rows(&w_hy, h),
            literals(&b_y),
        ))
    }

    /// A layer's one bias, `bias_ih + bias_hh` (`h` values), or zeros if it has neither. Each is
    /// checked to be finite, and so is their sum: two finite biases near `f32::MAX` add up to an
    /// infinity, named `(bias_ih + bias_hh)`.
    fn folded_bias(&self, prefix: &str, layer: Layer, h: usize) -> Result<Vec<f32>, LoadError> {
        let (ih, hh) = (layer.name(prefix, "bias_ih"), layer.name(prefix, "bias_hh"));
        match (
            self.tensors.contains_key(&ih),
            self.tensors.contains_key(&hh),
        ) {
            (true, true) => {
                let (a, b) = (self.sized(&ih, &[h])?, self.sized(&hh, &[h])?);
                let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
                self.finite(&format!("({ih} + {hh})"), &[h], &sum)?;
                Ok(sum)
            }
            (false, false) => Ok(vec![0.0; h]),
            (true, false) => Err(LoadError::HalfBias {
                present: ih,
                missing: hh,
            }),
            (false, true) => Err(LoadError::HalfBias {
                present: hh,
                missing: ih,
            }),
        }
    }
}

/// `f32` values as Rust literals that read back to the same bits.
fn literals(values: &[f32]) -> String {
    let one = |v: &f32| {
        if v.is_nan() {
            "f32::NAN".to_owned()
        } else if v.is_infinite() {
            if *v > 0.0 {
                "f32::INFINITY".to_owned()
            } else {
                "f32::NEG_INFINITY".to_owned()
            }
        } else {
            // `Debug` prints the shortest decimal that reads back to the same f32, always with a
            // `.` or an exponent, so the literal is a float.
            format!("{v:?}")
        }
    };
    values.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// A network the loader can write in place from consecutive `nn.RNN` layers: what
/// [`StateDict::rnn_into`] and [`StateDict::rnn_boxed`] fill.
pub trait LoadLayers: LayerCount {
    /// Writes layers `first`, `first + 1`, … of the `nn.RNN` under `prefix` over this
    /// network's weights, in place.
    ///
    /// # Errors
    ///
    /// As [`StateDict::rnn_cell`], for the first layer that fails; the layers below it have
    /// been written.
    fn load_layers(
        &mut self,
        state: &StateDict,
        prefix: &str,
        first: usize,
    ) -> Result<(), LoadError>;
}

impl<const I: usize, const H: usize, A: Activation> LoadLayers for RnnCell<I, H, A> {
    fn load_layers(
        &mut self,
        state: &StateDict,
        prefix: &str,
        first: usize,
    ) -> Result<(), LoadError> {
        state.rnn_cell_into(prefix, first, self)
    }
}

/// Loaded in f32 on the heap, then rounded into place: on an error the cell is as it was.
impl<const I: usize, const H: usize, A: Activation> LoadLayers for HalfCell<I, H, A> {
    fn load_layers(
        &mut self,
        state: &StateDict,
        prefix: &str,
        first: usize,
    ) -> Result<(), LoadError> {
        // In f32 on the heap: what the half-size weights are rounded from, in place.
        let cell = state.rnn_cell_boxed::<I, H, A>(prefix, first)?;
        self.set_from_cell(&cell)
            .map_err(|e| half_range(prefix, first, e))
    }
}

/// Loaded in f32 on the heap, then rounded into place: on an error the cell is as it was.
impl<const I: usize, const H: usize, A: Activation> LoadLayers for Bf16Cell<I, H, A> {
    fn load_layers(
        &mut self,
        state: &StateDict,
        prefix: &str,
        first: usize,
    ) -> Result<(), LoadError> {
        // In f32 on the heap: what the half-size weights are rounded from, in place.
        let cell = state.rnn_cell_boxed::<I, H, A>(prefix, first)?;
        self.set_from_cell(&cell)
            .map_err(|e| not_finite(prefix, first, e))
    }
}

impl<L, U, const M: usize> LoadLayers for Stack<L, U, M>
where
    L: LoadLayers,
    U: LoadLayers,
{
    fn load_layers(
        &mut self,
        state: &StateDict,
        prefix: &str,
        first: usize,
    ) -> Result<(), LoadError> {
        self.lower.load_layers(state, prefix, first)?;
        self.upper.load_layers(state, prefix, first + L::COUNT)
    }
}

/// Loading in place, for models too large for the stack (see [`InPlace`]): the tensors are
/// read into vectors on the heap and copied into the model where it lives.
impl StateDict {
    /// [`rnn_cell_with`](Self::rnn_cell_with) written into `cell`, in place (the non-linearity
    /// is the cell's). Everything is checked before anything is written: on an error the cell
    /// is as it was.
    ///
    /// ```
    /// use elman::torch::{Layer, StateDict};
    /// use elman::{InPlace, RnnCell};
    ///
    /// let state = StateDict::read("tests/fixtures/torch/saturating_i64_h128.safetensors")?;
    /// let mut cell = RnnCell::<64, 128>::zeroed_box();
    /// state.rnn_cell_into("rnn", 0, &mut cell)?;
    /// assert_ne!(cell.w_hh()[(0, 0)], 0.0);
    /// // A file saved from an `nn.RNNCell` names its tensors without a layer index.
    /// assert!(state.rnn_cell_into("rnn", Layer::Cell, &mut cell).is_err());
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`rnn_cell`](Self::rnn_cell).
    pub fn rnn_cell_into<const I: usize, const H: usize, A: Activation>(
        &self,
        prefix: &str,
        layer: impl Into<Layer>,
        cell: &mut RnnCell<I, H, A>,
    ) -> Result<(), LoadError> {
        let layer = layer.into();
        let (w_xh, w_hh, b) = self.row_major::<I, H>(prefix, layer)?;
        self.reject_unused_of_layer(prefix, layer)?;
        cell.store_row_major(&w_xh, &w_hh, &b);
        Ok(())
    }

    /// [`readout`](Self::readout) written into `readout`, in place. Everything is checked
    /// before anything is written: on an error the readout is as it was.
    ///
    /// # Errors
    ///
    /// As [`readout`](Self::readout).
    pub fn readout_into<const H: usize, const O: usize>(
        &self,
        prefix: &str,
        readout: &mut Readout<H, O>,
    ) -> Result<(), LoadError> {
        let [weight, bias] = Self::linear(prefix);
        let w_hy = self.sized(&weight, &[O, H])?;
        let b_y = if self.tensors.contains_key(&bias) {
            self.sized(&bias, &[O])?
        } else {
            vec![0.0; O]
        };
        self.reject_unused_of_linear(prefix)?;
        readout.store_row_major(&w_hy, &b_y);
        Ok(())
    }

    /// [`rnn`](Self::rnn) written into `network`, in place, layer by layer. That nothing under
    /// `prefix` goes unused (strictly, the default: no further layer, no `*_reverse` half, no
    /// stray tensor) is checked first, so that such a file writes nothing; a layer that fails
    /// to load leaves the layers below it written, so load into a network not in use (or use
    /// [`rnn_boxed`](Self::rnn_boxed)) when the one running must stay as it is.
    ///
    /// # Errors
    ///
    /// [`LoadError::ExtraLayer`] or [`LoadError::Unused`] as [`rnn`](Self::rnn), else as
    /// [`rnn_cell`](Self::rnn_cell) for the first layer that fails.
    pub fn rnn_into<N: LoadLayers>(&self, prefix: &str, network: &mut N) -> Result<(), LoadError> {
        self.reject_unused_layers(prefix, N::COUNT)?;
        network.load_layers(self, prefix, 0)
    }

    /// [`network`](Self::network) on the heap: a zeroed box, loaded in place, so that the
    /// network is never on the stack, whatever its size. On an error the box is dropped: a
    /// network half loaded is never returned.
    ///
    /// ```
    /// use elman::torch::StateDict;
    /// use elman::Rnn;
    ///
    /// let state = StateDict::read("tests/fixtures/torch/saturating_i64_h128.safetensors")?;
    /// let rnn: Box<Rnn<64, 128, 10>> = state.network_boxed("rnn", "head")?;
    /// assert_eq!(rnn.cell(), &state.rnn_cell::<64, 128>("rnn", 0)?);
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`network`](Self::network).
    pub fn network_boxed<L, const I: usize, const H: usize, const O: usize>(
        &self,
        rnn_prefix: &str,
        head_prefix: &str,
    ) -> Result<Box<Network<L, I, H, O>>, LoadError>
    where
        L: Layers<I, H> + LoadLayers,
    {
        let mut network = Network::<L, I, H, O>::zeroed_box();
        let (layers, readout) = network.weights_mut();
        self.rnn_into(rnn_prefix, layers)?;
        self.readout_into(head_prefix, readout)?;
        self.reject_outside(rnn_prefix, head_prefix)?;
        Ok(network)
    }

    /// [`rnn`](Self::rnn) on the heap: a zeroed box, loaded in place, so that the network is
    /// never on the stack, whatever its size.
    ///
    /// ```
    /// use elman::torch::StateDict;
    /// use elman::{Readout, Rnn, RnnCell};
    ///
    /// let state = StateDict::read("tests/fixtures/torch/saturating_i64_h128.safetensors")?;
    /// let cell: Box<RnnCell<64, 128>> = state.rnn_boxed("rnn")?;
    /// let head: Readout<128, 10> = state.readout("head")?;
    /// let rnn = Rnn::new_boxed(&cell, &head);
    /// assert_eq!(rnn.cell(), &*cell);
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`rnn_into`](Self::rnn_into).
    pub fn rnn_boxed<N: LoadLayers + InPlace>(&self, prefix: &str) -> Result<Box<N>, LoadError> {
        let mut network = N::zeroed_box();
        self.rnn_into(prefix, &mut *network)?;
        Ok(network)
    }
}

/// What a file that is not safetensors is, when it is one of the formats `torch.save` writes
/// (whose first 8 bytes, read as a safetensors header length, ask for exabytes).
fn torch_save_format(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [b'P', b'K', 3, 4, ..] => Some(
            "a zip archive, as `torch.save` writes: save the state_dict with \
             `safetensors.torch.save_file`",
        ),
        // The legacy format (`_use_new_zipfile_serialization=False`): a pickle, which starts
        // with its protocol.
        [0x80, 2..=5, ..] => Some(
            "a pickle, as the legacy `torch.save` writes: save the state_dict with \
             `safetensors.torch.save_file`",
        ),
        _ => None,
    }
}

/// A layer's `W_ih`, `W_hh` and folded bias, row-major, as read from the file.
type RowMajor = (Vec<f32>, Vec<f32>, Vec<f32>);

/// A bidirectional network the loader can fill from an `nn.RNN(bidirectional=True)`:
/// [`Bidirectional`] (one layer) or [`BiStack`] (several).
pub trait FromBidirectional: Default {
    /// The number of layers.
    const LAYERS: usize;

    /// Writes the layers of the bidirectional `nn.RNN` under `prefix`, both directions of
    /// each, over this network's weights, in place. It does not look for unused tensors:
    /// [`StateDict::bidirectional_into`] does.
    ///
    /// # Errors
    ///
    /// As [`StateDict::rnn_cell`] (but [`LoadError::Unused`]), for the first direction of the
    /// first layer that fails; the ones before it have been written.
    fn load_bidirectional(&mut self, state: &StateDict, prefix: &str) -> Result<(), LoadError>;
}

impl<const I: usize, const H: usize, const H2: usize, A: Activation> FromBidirectional
    for Bidirectional<I, H, H2, A>
{
    const LAYERS: usize = 1;

    fn load_bidirectional(&mut self, state: &StateDict, prefix: &str) -> Result<(), LoadError> {
        state.bidirectional_layer_into(prefix, 0, self)
    }
}

impl<const I: usize, const H: usize, const H2: usize, const U: usize, A: Activation>
    FromBidirectional for BiStack<I, H, H2, U, A>
{
    const LAYERS: usize = U + 1;

    fn load_bidirectional(&mut self, state: &StateDict, prefix: &str) -> Result<(), LoadError> {
        state.bidirectional_layer_into(prefix, 0, &mut self.first)?;
        for (k, layer) in self.upper.iter_mut().enumerate() {
            state.bidirectional_layer_into(prefix, k + 1, layer)?;
        }
        Ok(())
    }
}

impl StateDict {
    /// A bidirectional `nn.RNN` under `prefix`: one [`Bidirectional`] layer or a [`BiStack`] of
    /// them, each layer's forward direction from `weight_ih_l{k}`, `weight_hh_l{k}` (and the
    /// biases, folded as [`rnn_cell`](Self::rnn_cell) folds them) and its backward direction
    /// from the `*_l{k}_reverse` tensors. The non-linearity is the type's `A` (the file does
    /// not record it). Strictly (the default), every other tensor under `prefix` is an error,
    /// a further layer included.
    ///
    /// ```
    /// use elman::bidirectional::BiStack2;
    /// use elman::torch::StateDict;
    ///
    /// let state = StateDict::read("tests/fixtures/torch/bi_two_layers_i4_h6.safetensors")?;
    /// let stack: BiStack2<4, 6, 12> = state.bidirectional("rnn")?;
    /// // A bidirectional file is not a forward model.
    /// assert!(state.rnn::<elman::stack::Stack2<4, 6>>("rnn").is_err());
    /// # let _ = stack;
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`rnn_cell`](Self::rnn_cell) for each direction of each layer (a missing `*_reverse`
    /// tensor is [`LoadError::Missing`]), [`LoadError::ExtraLayer`] if the file holds more
    /// layers and nothing else unused, else [`LoadError::Unused`] naming the tensors under
    /// `prefix` that no layer used.
    pub fn bidirectional<N: FromBidirectional>(&self, prefix: &str) -> Result<N, LoadError> {
        let mut network = N::default();
        self.bidirectional_into(prefix, &mut network)?;
        Ok(network)
    }

    /// [`bidirectional`](Self::bidirectional) written into `network`, in place, layer by
    /// layer, each weight read into a vector on the heap and copied where the network lives
    /// (nothing the size of a layer passes through the stack). That nothing under `prefix`
    /// goes unused is checked first, so that such a file writes nothing; a layer that fails to
    /// load leaves the layers below it written.
    ///
    /// ```
    /// use elman::bidirectional::BiStack2;
    /// use elman::torch::StateDict;
    ///
    /// let state = StateDict::read("tests/fixtures/torch/bi_two_layers_i8_h64_t20.safetensors")?;
    /// let mut stack: Box<BiStack2<8, 64, 128>> = Box::default();
    /// state.bidirectional_into("rnn", &mut *stack)?;
    /// assert_ne!(stack.upper[0].backward.w_hh()[(0, 0)], 0.0);
    /// # Ok::<(), elman::torch::LoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bidirectional`](Self::bidirectional).
    pub fn bidirectional_into<N: FromBidirectional>(
        &self,
        prefix: &str,
        network: &mut N,
    ) -> Result<(), LoadError> {
        let used: Vec<String> = (0..N::LAYERS)
            .flat_map(|k| [Layer::Index(k), Layer::Reverse(k)])
            .flat_map(|layer| layer.tensors(prefix))
            .collect();
        self.reject_unused(
            prefix,
            |n| under(prefix, n).is_some(),
            &used,
            Some(N::LAYERS),
        )?;
        network.load_bidirectional(self, prefix)
    }

    /// Layer `k` of the bidirectional `nn.RNN` under `prefix` written into `layer`, without
    /// looking for unused tensors. Both directions are checked before either is written.
    fn bidirectional_layer_into<const I: usize, const H: usize, const H2: usize, A: Activation>(
        &self,
        prefix: &str,
        k: usize,
        layer: &mut Bidirectional<I, H, H2, A>,
    ) -> Result<(), LoadError> {
        let forward = self.row_major::<I, H>(prefix, Layer::Index(k))?;
        let backward = self.row_major::<I, H>(prefix, Layer::Reverse(k))?;
        for (cell, (w_xh, w_hh, b)) in [
            (&mut layer.forward, forward),
            (&mut layer.backward, backward),
        ] {
            cell.store_row_major(&w_xh, &w_hh, &b);
        }
        Ok(())
    }

    /// The weights of `layer` under `prefix`, row-major, checked: `W_ih`, `W_hh` and the
    /// folded bias.
    fn row_major<const I: usize, const H: usize>(
        &self,
        prefix: &str,
        layer: Layer,
    ) -> Result<RowMajor, LoadError> {
        Ok((
            self.sized(&layer.name(prefix, "weight_ih"), &[H, I])?,
            self.sized(&layer.name(prefix, "weight_hh"), &[H, H])?,
            self.folded_bias(prefix, layer, H)?,
        ))
    }
}
