//! Keras `SimpleRNN` and `Dense` layers, from the safetensors file that
//! `scripts/keras_to_safetensors.py` writes from a Keras 3 model, with Keras's names and each
//! layer's configuration. Keras's own `.weights.h5` holds the weights alone, by position
//! (`layers/simple_rnn/cell/vars/0`, …): the activation, `go_backwards` and the layer classes
//! that strict loading checks are in the `.keras` archive's `config.json`, so reading Keras's
//! files directly would take an HDF5 reader, a zip reader and a JSON parser.
//!
//! ```text
//! SimpleRNN:  h_t = f(x_t·kernel + h_{t−1}·recurrent_kernel + bias)    kernel: [I, H]   recurrent_kernel: [H, H]
//!             so W_xh = kernelᵀ, W_hh = recurrent_kernelᵀ, b = bias
//! Dense:      y = h·kernel + bias                                      kernel: [H, O]    so W_hy = kernelᵀ
//! ```
//!
//! Loading is strict: a layer of another class, an activation the crate does not run (or not
//! the cell type's), a tensor of another shape, a model with layers besides the ones loaded,
//! all are a [`KerasError`] that names the layer and what was wrong.
//!
//! ```
//! use elman::keras::KerasModel;
//!
//! let model = KerasModel::read("tests/fixtures/keras/simple_rnn_i3_h4_o2.safetensors")?;
//! let net = model.network::<3, 4, 2, elman::Tanh>("simple_rnn", "dense")?;
//! # let _ = net;
//! # Ok::<(), elman::keras::KerasError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use nalgebra::{SMatrix, SVector};
use safetensors::SafeTensors;

use crate::activation::{Activation, Kind, Tanh};
use crate::cell::RnnCell;
use crate::in_place::InPlace;
use crate::readout::Readout;
use crate::rnn::Rnn;
use crate::torch::{LoadError, StateDict};

/// What went wrong while reading a Keras model. Every variant names what it is about.
#[derive(Debug)]
#[non_exhaustive]
pub enum KerasError {
    /// The file could not be read, or a tensor in it (its name, shape, dtype or values; see
    /// [`LoadError`]).
    Load(LoadError),
    /// The file's metadata does not say it holds Keras layers (`format` is not `keras`).
    NotKeras {
        /// What the metadata says, if anything.
        format: Option<String>,
    },
    /// A layer the call names is not in the file, or is of another class.
    Layer {
        /// The layer's name.
        layer: String,
        /// The class the call needs.
        expected: &'static str,
        /// The class in the file, if the layer is there.
        found: Option<String>,
        /// The file's layers, `name (class)`, when the layer is not there.
        present: Vec<String>,
    },
    /// A layer's configuration the crate cannot run, or not the cell type's.
    Config {
        /// The layer's name.
        layer: String,
        /// The configuration key.
        key: &'static str,
        /// Its value in the file.
        found: String,
        /// What is supported.
        supported: String,
    },
    /// The model has layers besides the ones loaded, which a network of them would leave out.
    ExtraLayers {
        /// Their names and classes.
        layers: Vec<String>,
    },
}

impl fmt::Display for KerasError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Load(e) => e.fmt(f),
            Self::NotKeras { format } => write!(
                f,
                "not a Keras export (metadata format {format:?}): write it with \
                 scripts/keras_to_safetensors.py"
            ),
            Self::Layer {
                layer,
                expected,
                found: Some(found),
                ..
            } => write!(f, "layer `{layer}` is a {found}, not a {expected}"),
            Self::Layer {
                layer,
                expected,
                present,
                ..
            } => write!(
                f,
                "no layer `{layer}` ({expected}) in the file; its layers: {}",
                present.join(", ")
            ),
            Self::Config {
                layer,
                key,
                found,
                supported,
            } => write!(f, "layer `{layer}`: {key} = {found}; {supported}"),
            Self::ExtraLayers { layers } => write!(
                f,
                "the model has layers besides the ones loaded: {}",
                layers.join(", ")
            ),
        }
    }
}

impl std::error::Error for KerasError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Load(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LoadError> for KerasError {
    fn from(e: LoadError) -> Self {
        Self::Load(e)
    }
}

/// A Keras `SimpleRNN` layer as a cell.
#[derive(Clone, Debug, PartialEq)]
pub struct SimpleRnn<const I: usize, const H: usize, A = Tanh> {
    /// `W_xh = kernelᵀ`, `W_hh = recurrent_kernelᵀ`, `b = bias` (0 without one).
    pub cell: RnnCell<I, H, A>,
    /// Whether the layer reads its sequence last to first (`go_backwards`): see
    /// [`run_sequence`](Self::run_sequence).
    pub go_backwards: bool,
}

impl<const I: usize, const H: usize, A: Activation> SimpleRnn<I, H, A> {
    /// The layer over a whole sequence from a zero state, as Keras's `return_sequences`
    /// output: `out[t]` is the state after the layer's `t`-th step, which reads `xs[t]`, or
    /// `xs[T − 1 − t]` with `go_backwards`. Writes as many states as both slices have.
    pub fn run_sequence(&self, xs: &[SVector<f32, I>], out: &mut [SVector<f32, H>]) {
        let mut h = SVector::zeros();
        let n = xs.len().min(out.len());
        for (t, slot) in out.iter_mut().take(n).enumerate() {
            let x = if self.go_backwards {
                &xs[xs.len() - 1 - t]
            } else {
                &xs[t]
            };
            h = self.cell.step(x, &h);
            *slot = h;
        }
    }
}

/// What a Keras `Dense` readout applies to its logits: the crate's `Head`, re-exported here.
pub use crate::readout::Head;

/// A `SimpleRNN` + `Dense` model as a streaming network.
#[derive(Clone, Debug)]
pub struct KerasNetwork<const I: usize, const H: usize, const O: usize, A: Activation = Tanh> {
    /// The network: the `SimpleRNN` as its cell, the `Dense` as its readout (logits).
    pub rnn: Rnn<I, H, O, A>,
    /// What the `Dense` layer applies to the logits.
    pub head: Head,
}

/// A Keras model's layers, read from the safetensors file `scripts/keras_to_safetensors.py`
/// writes.
#[derive(Debug)]
pub struct KerasModel {
    tensors: StateDict,
    metadata: HashMap<String, String>,
}

impl KerasModel {
    /// Reads the file at `path`.
    ///
    /// # Errors
    ///
    /// As [`from_bytes`](Self::from_bytes), or [`LoadError::Io`] (in [`KerasError::Load`]).
    pub fn read(path: impl AsRef<Path>) -> Result<Self, KerasError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses the file's bytes.
    ///
    /// # Errors
    ///
    /// [`LoadError::Malformed`] (in [`KerasError::Load`]) for bytes that are not safetensors,
    /// [`KerasError::NotKeras`] for a file without the script's metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KerasError> {
        let tensors = StateDict::from_bytes(bytes)?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| LoadError::Malformed {
            reason: e.to_string(),
        })?;
        let metadata = header.metadata().clone().unwrap_or_default();
        match metadata.get("format").map(String::as_str) {
            Some("keras") => Ok(Self { tensors, metadata }),
            other => Err(KerasError::NotKeras {
                format: other.map(str::to_owned),
            }),
        }
    }

    /// The layer's configuration value `key`.
    fn config(&self, layer: &str, key: &str) -> Option<&str> {
        self.metadata
            .get(&format!("{layer}.{key}"))
            .map(String::as_str)
    }

    /// The file's layers, `name (class)`, in name order.
    fn layers(&self) -> Vec<String> {
        let mut layers: Vec<String> = self
            .metadata
            .iter()
            .filter_map(|(key, class)| {
                let name = key.strip_suffix(".class")?;
                Some(format!("{name} ({class})"))
            })
            .collect();
        layers.sort();
        layers
    }

    /// An error unless `layer` is of `class`.
    fn expect_class(&self, layer: &str, class: &'static str) -> Result<(), KerasError> {
        match self.config(layer, "class") {
            Some(found) if found == class => Ok(()),
            found => Err(KerasError::Layer {
                layer: layer.to_owned(),
                expected: class,
                found: found.map(str::to_owned),
                present: if found.is_some() {
                    Vec::new()
                } else {
                    self.layers()
                },
            }),
        }
    }

    /// The values of tensor `{layer}/{name}`, checked to have `shape`.
    fn tensor(&self, layer: &str, name: &str, shape: &[usize]) -> Result<Vec<f32>, KerasError> {
        let full = format!("{layer}/{name}");
        let (found, values) = self.tensors.values(&full)?;
        if found != shape {
            return Err(LoadError::Shape {
                name: full,
                expected: shape.to_vec(),
                found,
            }
            .into());
        }
        Ok(values)
    }

    /// The `SimpleRNN` layer named `layer` as a cell of `I` inputs, `H` units and
    /// non-linearity `A`.
    ///
    /// # Errors
    ///
    /// [`KerasError::Layer`] if there is no such `SimpleRNN`; [`KerasError::Config`] for an
    /// activation other than `A`'s; a shape, dtype or non-finite weight as [`LoadError`].
    pub fn simple_rnn<const I: usize, const H: usize, A: Activation>(
        &self,
        layer: &str,
    ) -> Result<SimpleRnn<I, H, A>, KerasError> {
        let (cell, go_backwards) = self.simple_rnn_boxed::<I, H, A>(layer)?;
        Ok(SimpleRnn {
            cell: *cell,
            go_backwards,
        })
    }

    /// [`simple_rnn`](Self::simple_rnn)'s cell, written on the heap (built from matrices by
    /// value, it went through the stack once per matrix and again at each move), and its
    /// `go_backwards`.
    fn simple_rnn_boxed<const I: usize, const H: usize, A: Activation>(
        &self,
        layer: &str,
    ) -> Result<(Box<RnnCell<I, H, A>>, bool), KerasError> {
        self.expect_class(layer, "SimpleRNN")?;
        let expected = match A::KIND {
            Kind::Tanh => "tanh",
            Kind::Relu => "relu",
        };
        let activation = self.config(layer, "activation").unwrap_or("");
        if activation != expected {
            return Err(KerasError::Config {
                layer: layer.to_owned(),
                key: "activation",
                found: activation.to_owned(),
                supported: format!("the cell type's is {expected} (tanh and relu run)"),
            });
        }
        let kernel = self.tensor(layer, "kernel", &[I, H])?;
        let recurrent = self.tensor(layer, "recurrent_kernel", &[H, H])?;
        let bias = if self.config(layer, "use_bias") == Some("false") {
            vec![0.0; H]
        } else {
            self.tensor(layer, "bias", &[H])?
        };
        // `kernel` is [I, H] row-major: `W_xh[j][k] = kernel[k][j]`, its transpose.
        let mut cell = RnnCell::<I, H, A>::zeroed_box();
        cell.store_row_major(&transposed(&kernel, H), &transposed(&recurrent, H), &bias);
        Ok((cell, self.config(layer, "go_backwards") == Some("true")))
    }

    /// The `Dense` layer named `layer` as a readout of `H` units to `O` logits, and what it
    /// applies to them.
    ///
    /// # Errors
    ///
    /// [`KerasError::Layer`] if there is no such `Dense`; [`KerasError::Config`] for an
    /// activation other than `linear`, `softmax` or `sigmoid`; a shape, dtype or non-finite
    /// weight as [`LoadError`].
    pub fn dense<const H: usize, const O: usize>(
        &self,
        layer: &str,
    ) -> Result<(Readout<H, O>, Head), KerasError> {
        self.expect_class(layer, "Dense")?;
        let head = match self.config(layer, "activation").unwrap_or("") {
            "linear" => Head::Linear,
            "softmax" => Head::Softmax,
            "sigmoid" => Head::Sigmoid,
            other => {
                return Err(KerasError::Config {
                    layer: layer.to_owned(),
                    key: "activation",
                    found: other.to_owned(),
                    supported: "linear, softmax and sigmoid are supported".to_owned(),
                });
            }
        };
        let kernel = self.tensor(layer, "kernel", &[H, O])?;
        let bias = if self.config(layer, "use_bias") == Some("false") {
            vec![0.0; O]
        } else {
            self.tensor(layer, "bias", &[O])?
        };
        let w_hy = SMatrix::<f32, O, H>::from_column_slice(&kernel);
        Ok((Readout::new(w_hy, SVector::from_column_slice(&bias)), head))
    }

    /// A model of one `SimpleRNN` and one `Dense` as a streaming network.
    ///
    /// # Errors
    ///
    /// As [`simple_rnn`](Self::simple_rnn) and [`dense`](Self::dense);
    /// [`KerasError::Config`] for a `go_backwards` layer (which reads its sequence last to
    /// first, so cannot stream: use [`SimpleRnn::run_sequence`]); [`KerasError::ExtraLayers`]
    /// when the model has other layers.
    pub fn network<const I: usize, const H: usize, const O: usize, A: Activation>(
        &self,
        rnn: &str,
        dense: &str,
    ) -> Result<KerasNetwork<I, H, O, A>, KerasError> {
        let (cell, go_backwards) = self.simple_rnn_boxed::<I, H, A>(rnn)?;
        if go_backwards {
            return Err(KerasError::Config {
                layer: rnn.to_owned(),
                key: "go_backwards",
                found: "true".to_owned(),
                supported: "a network streams its inputs first to last; run the whole \
                            sequence with SimpleRnn::run_sequence"
                    .to_owned(),
            });
        }
        let (readout, head) = self.dense::<H, O>(dense)?;
        let mut extra: Vec<String> = self
            .metadata
            .iter()
            .filter_map(|(key, class)| {
                let name = key.strip_suffix(".class")?;
                (name != rnn && name != dense).then(|| format!("{name} ({class})"))
            })
            .collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(KerasError::ExtraLayers { layers: extra });
        }
        // Assembled on the heap and moved out once.
        let network = Rnn::new_boxed(&cell, &readout);
        Ok(KerasNetwork {
            rnn: *network,
            head,
        })
    }
}

/// The `[R, C]` row-major `values` as the row-major `[C, R]` of their transpose: for each of the
/// `columns`, its values down the rows.
fn transposed(values: &[f32], columns: usize) -> Vec<f32> {
    (0..columns)
        .flat_map(|c| values.iter().skip(c).step_by(columns.max(1)).copied())
        .collect()
}
