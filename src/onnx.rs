//! ONNX models: the `RNN` operator and the readout that follows it, read from a `.onnx` file
//! by following the graph (exporters generate tensor names, such as `onnx::RNN_38`).
//!
//! ```text
//! RNN:   H_t = f(X_t·W^T + H_{t−1}·R^T + Wb + Rb)      W: [dirs, H, I]   R: [dirs, H, H]   B: [dirs, 2H]
//! then:  Y → (Squeeze | Transpose | Reshape | Identity)* → MatMul(·, W_y) → Add(b_y)    or Gemm
//!          → (Softmax | Sigmoid)?
//!        Y → (Squeeze | Transpose | Reshape | Identity)* → the X of the next layer's RNN
//! ```
//!
//! A `Transpose` on the way may swap the time and batch axes (`batch_first` models) or put a
//! bidirectional node's directions side by side, never move a step's values apart; a `Gather`
//! of the last step (`y[-1]`, a classifier of whole sequences) loads the same readout, which
//! [`Network::process_last`] then applies to the last step only. A `Softmax` over the outputs
//! or a `Sigmoid` after the readout is the model's reading of the logits:
//! [`OnnxModel::readout_and_head`] loads it, and [`OnnxModel::network`] (whose output is the
//! logits) refuses the file rather than drop it.
//!
//! Which files load: `RNN` nodes that run forward (`direction` absent or `"forward"`), in
//! reverse (`"reverse"`: see [`OnnxRnn::run_sequence`]) or both ways (`"bidirectional"`, as a
//! [`Bidirectional`] layer: [`OnnxModel::bidirectional`]); one node, or a chain of nodes each
//! reading the output of the one below, as `torch.onnx.export` writes
//! `nn.RNN(num_layers = L)` (a [`Stack`]: [`OnnxModel::layers`], [`OnnxModel::network`]; a
//! [`BiStack`]: [`OnnxModel::bidirectional_stack`]); `layout` 0 or 1,
//! `activations` `Tanh` or `Relu` (the cell's `A` must match), no `clip`, no `sequence_lens`;
//! `W`, `R` and `B` (optional) as initializers or `Constant` nodes of f32, f64, f16 or bf16
//! (or such a constant `Cast` to float);
//! `initial_h` absent, an initializer, a graph input (the caller's initial state: the network
//! starts from zeros and [`OnnxRnn::initial_state`] says so), zeros computed in the graph
//! (`ConstantOfShape` of 0, `Expand` of a constant 0, as `torch.onnx.export` writes for a model
//! called without a state), or a layer's rows (`Slice`) of a constant or graph input that holds
//! every layer's state. The lowest node reads a graph input directly (or through `Identity`
//! and reshapes). Anything else is an [`OnnxError`] that names the node and what was
//! wrong: never a different model.
//!
//! The file is parsed with `prost` (the protobuf library of the tokio project) into message
//! types declared here for the fields the loader reads; the rest of the file is skipped as
//! protobuf skips unknown fields. No `protoc` or build script is involved.
//!
//! ```
//! use elman::onnx::OnnxModel;
//! use elman::Rnn;
//!
//! let model = OnnxModel::read("tests/fixtures/onnx/helper_forward_i3_h4_o2.onnx")?;
//! let rnn: Rnn<3, 4, 2> = model.network()?;
//! # let _ = rnn;
//! # Ok::<(), elman::onnx::OnnxError>(())
//! ```

use std::fmt;
use std::path::Path;

use nalgebra::{SMatrix, SVector};
use prost::Message;

use crate::activation::{Activation, Kind, Tanh};
use crate::bidirectional::{BiStack, BiStates, Bidirectional, Pair};
use crate::cell::RnnCell;
use crate::in_place::InPlace;
use crate::layers::Layers;
use crate::readout::{Head, Readout};
use crate::rnn::Network;
use crate::stack::Stack;

/// The protobuf messages of `onnx.proto3`, only the fields the loader reads (field numbers as
/// in the ONNX specification).
#[allow(missing_docs, reason = "protobuf messages mirroring onnx.proto3")]
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
        #[prost(string, tag = "7")]
        pub domain: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        #[prost(message, optional, tag = "5")]
        pub t: Option<TensorProto>,
        #[prost(float, repeated, tag = "7")]
        pub floats: Vec<f32>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(bytes = "vec", repeated, tag = "9")]
        pub strings: Vec<Vec<u8>>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(int32, repeated, tag = "5")]
        pub int32_data: Vec<i32>,
        #[prost(int64, repeated, tag = "7")]
        pub int64_data: Vec<i64>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
        #[prost(double, repeated, tag = "10")]
        pub double_data: Vec<f64>,
        #[prost(int32, tag = "14")]
        pub data_location: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
    }
}

use proto::{GraphProto, NodeProto, TensorProto};

/// What went wrong while reading an ONNX model. Every variant names the node, tensor or
/// attribute it is about.
#[derive(Debug)]
#[non_exhaustive]
pub enum OnnxError {
    /// The file could not be read.
    Io {
        /// The path that was read.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX model (protobuf decoding failed, or no graph).
    Malformed {
        /// What the decoder said.
        reason: String,
    },
    /// The graph has no `RNN` node.
    NoRnn {
        /// The operators the graph has, in order.
        ops: Vec<String>,
    },
    /// The graph's `RNN` nodes do not form one chain of layers, each reading the output of
    /// the one below (two independent RNNs, or one whose output feeds two).
    ManyRnns {
        /// Their node names.
        nodes: Vec<String>,
    },
    /// The graph's chain of `RNN` nodes has another number of layers than the type loaded.
    Layers {
        /// The type's number of layers.
        expected: usize,
        /// The chain's nodes, lowest first.
        nodes: Vec<String>,
    },
    /// An attribute or input of a node that the crate cannot run.
    Unsupported {
        /// The node's name (or its op type when it has none).
        node: String,
        /// The attribute or input.
        what: String,
        /// Its value, as found, and what is supported.
        detail: String,
    },
    /// A tensor the node needs is neither an initializer nor a constant of the graph.
    NotConstant {
        /// The node's name.
        node: String,
        /// The input's name.
        input: String,
    },
    /// A tensor has another shape than the cell's sizes ask for.
    Shape {
        /// The tensor's name.
        name: String,
        /// The shape the sizes ask for.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The node's `hidden_size` attribute is not the cell type's `H`.
    HiddenSize {
        /// The node's name.
        node: String,
        /// The cell type's `H`.
        expected: usize,
        /// The attribute's value.
        found: i64,
    },
    /// A tensor's element type is not a float the loader converts (f32, f64, f16, bf16).
    Dtype {
        /// The tensor's name.
        name: String,
        /// Its ONNX data type number.
        found: i32,
    },
    /// A weight is a NaN or an infinity.
    NonFinite {
        /// The tensor's name.
        name: String,
        /// The element's row-major index.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// The file's activation is not the cell type's.
    Activation {
        /// The node's name.
        node: String,
        /// The cell type's activation.
        expected: &'static str,
        /// The file's.
        found: String,
    },
    /// No readout (`MatMul` + `Add`, or `Gemm`) follows the RNN's output.
    NoReadout {
        /// The node's name.
        node: String,
        /// The operator found where a readout was looked for, if any.
        found: Option<String>,
    },
}

impl fmt::Display for OnnxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "cannot read {path}: {source}"),
            Self::Malformed { reason } => write!(f, "not an ONNX model: {reason}"),
            Self::NoRnn { ops } => {
                write!(f, "the graph has no RNN node (it has {})", ops.join(", "))
            }
            Self::ManyRnns { nodes } => {
                write!(
                    f,
                    "the graph has {} RNN nodes ({}) that do not form one chain of layers",
                    nodes.len(),
                    nodes.join(", ")
                )
            }
            Self::Layers { expected, nodes } => {
                write!(
                    f,
                    "the graph chains {} RNN layers ({}); the type loaded has {expected}",
                    nodes.len(),
                    nodes.join(", ")
                )
            }
            Self::Unsupported { node, what, detail } => {
                write!(f, "node `{node}`: {what} is not supported: {detail}")
            }
            Self::NotConstant { node, input } => write!(
                f,
                "node `{node}`: input `{input}` is neither an initializer nor a constant"
            ),
            Self::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?}, expected {expected:?}"
            ),
            Self::HiddenSize {
                node,
                expected,
                found,
            } => write!(
                f,
                "node `{node}` has hidden_size {found}; the cell type's H is {expected}"
            ),
            Self::Dtype { name, found } => write!(
                f,
                "tensor `{name}` has ONNX data type {found}; float, double, float16 and bfloat16 \
                 are supported"
            ),
            Self::NonFinite { name, index, value } => {
                write!(f, "tensor `{name}` element {index} is {value}")
            }
            Self::Activation {
                node,
                expected,
                found,
            } => write!(f, "node `{node}` uses {found}; the cell type is {expected}"),
            Self::NoReadout { node, found } => match found {
                Some(op) => write!(f, "node `{node}`: its output goes to {op}, not a readout"),
                None => write!(f, "node `{node}`: no readout follows its output"),
            },
        }
    }
}

impl std::error::Error for OnnxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A tensor's values as f32, row-major, with its shape.
#[derive(Clone, Debug, PartialEq)]
struct Tensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

impl Tensor {
    /// Rows `start..end` of the first axis (`end` clamped to the rows there are), or `None`
    /// when `start` is past them.
    fn rows(&self, start: usize, end: usize) -> Option<Self> {
        let (&count, rest) = self.shape.split_first()?;
        let end = end.min(count);
        if start > end {
            return None;
        }
        let row: usize = rest.iter().product();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Some(Self {
            shape,
            values: self.values.get(start * row..end * row)?.to_vec(),
        })
    }
}

/// An ONNX model read from a file or bytes, ready to load its RNN from.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    graph: GraphProto,
}

/// Where a loaded RNN's initial state `S` comes from (one direction's state, or a
/// bidirectional node's pair).
#[derive(Clone, Debug, PartialEq)]
pub enum InitialState<S> {
    /// No `initial_h`, or zeros computed in the graph.
    Zeros,
    /// An initializer or constant of the file.
    Given(S),
    /// A graph input of this name: the caller supplies it. A network loaded from the file
    /// starts from zeros; give it the caller's state with
    /// [`Network::set_initial_state`](crate::Network::set_initial_state) (which
    /// [`reset`](crate::Network::reset) returns to), every layer's rows of the input
    /// (`[layers · dirs, 1, H]`) in the order of the layers' state (`(h_l0, h_l1)` for two).
    Input(String),
}

impl<S> InitialState<S> {
    /// The graph input's name, for [`Input`](Self::Input).
    fn input(&self) -> Option<&String> {
        match self {
            Self::Input(name) => Some(name),
            Self::Zeros | Self::Given(_) => None,
        }
    }

    /// The state each direction starts from, as `f` builds it from the file's values.
    fn map<T>(self, f: impl FnOnce(S) -> T) -> InitialState<T> {
        match self {
            Self::Zeros => InitialState::Zeros,
            Self::Given(s) => InitialState::Given(f(s)),
            Self::Input(name) => InitialState::Input(name),
        }
    }
}

/// A bidirectional `RNN` node as a [`Bidirectional`] layer, with the initial states the file
/// gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxBidirectional<const I: usize, const H: usize, const H2: usize, A> {
    /// The layer: direction 0 of `W`, `R`, `B` forward, direction 1 backward.
    pub layer: Bidirectional<I, H, H2, A>,
    /// The initial states `(forward, backward)`.
    pub initial_state: InitialState<Pair<H>>,
    /// The node's name in the file.
    pub node: String,
}

/// The cells of a node's directions, its initial states and its name.
type Directions<const I: usize, const H: usize, A> = (
    Vec<Box<RnnCell<I, H, A>>>,
    InitialState<Vec<SVector<f32, H>>>,
    String,
);

/// The `RNN` node of a model as a cell, with the initial state the file gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxRnn<const I: usize, const H: usize, A = Tanh> {
    /// The cell: `W_xh = W`, `W_hh = R`, `b = Wb + Rb`.
    pub cell: RnnCell<I, H, A>,
    /// Whether the node runs its sequence last to first (`direction` `"reverse"`).
    pub reverse: bool,
    /// The initial state.
    pub initial_state: InitialState<SVector<f32, H>>,
    /// The node's name in the file.
    pub node: String,
}

impl<const I: usize, const H: usize, A: Activation> OnnxRnn<I, H, A> {
    /// The node over a whole sequence from `h0`, as its output `Y`: `out[t]` is the state
    /// after reading `xs[t]`, the steps taken first to last, or last to first for a reverse
    /// node (whose `out[0]` is then its final state). Writes as many states as both slices
    /// have.
    pub fn run_sequence(
        &self,
        xs: &[SVector<f32, I>],
        h0: &SVector<f32, H>,
        out: &mut [SVector<f32, H>],
    ) {
        let n = xs.len().min(out.len());
        let mut h = *h0;
        for k in 0..n {
            let t = if self.reverse { n - 1 - k } else { k };
            h = self.cell.step(&xs[t], &h);
            out[t] = h;
        }
    }
}

/// Forward `RNN` nodes loaded as layers `L` ([`OnnxModel::layers`]), with the initial state the
/// file gives them.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxLayers<L: Layers<I, H>, const I: usize, const H: usize> {
    /// The layers, the node that reads the graph's input lowest.
    pub layers: L,
    /// Every layer's initial state: zeros, constants of the file (a layer without one starts
    /// from zeros), or a graph input the caller feeds (every layer's state, `[layers, 1, H]`).
    pub initial_state: InitialState<L::State>,
    /// The nodes' names in the file, lowest first.
    pub nodes: Vec<String>,
}

/// Bidirectional `RNN` nodes loaded as a [`BiStack`] ([`OnnxModel::bidirectional_stack`]),
/// with the initial states the file gives them.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxBiStack<const I: usize, const H: usize, const H2: usize, const U: usize, A> {
    /// The layers: each node's direction 0 forward, direction 1 backward.
    pub layers: BiStack<I, H, H2, U, A>,
    /// Every layer's initial states.
    pub initial_state: InitialState<BiStates<H, U>>,
    /// The nodes' names in the file, lowest first.
    pub nodes: Vec<String>,
}

/// Layers the ONNX loader fills from a chain of forward `RNN` nodes, one node per layer: an
/// [`RnnCell`], or a [`Stack`] of them. Implemented for those types only.
pub trait FromNodes<const I: usize, const H: usize>: Layers<I, H> {
    /// Writes the layers from `chain[first..]` over these, in place, and returns their initial
    /// states.
    #[doc(hidden)]
    fn load_nodes(
        &mut self,
        model: &OnnxModel,
        chain: &[&NodeProto],
        first: usize,
    ) -> Result<InitialState<Self::State>, OnnxError>;
}

impl<const I: usize, const H: usize, A: Activation> FromNodes<I, H> for RnnCell<I, H, A> {
    fn load_nodes(
        &mut self,
        model: &OnnxModel,
        chain: &[&NodeProto],
        first: usize,
    ) -> Result<InitialState<Self::State>, OnnxError> {
        let nodes = || chain.iter().map(|n| node_name(n)).collect();
        let node = chain.get(first).ok_or_else(|| OnnxError::Layers {
            expected: first + 1,
            nodes: nodes(),
        })?;
        match attribute(node, "direction").map(|a| a.s.as_slice()) {
            None | Some(b"forward") => {}
            Some(b"reverse") => {
                return Err(unsupported(
                    node,
                    "attribute direction",
                    "\"reverse\" in a network or stack, which streams its inputs first to \
                     last: run the whole sequence with OnnxRnn::run_sequence"
                        .to_owned(),
                ));
            }
            Some(other) => {
                return Err(unsupported(
                    node,
                    "attribute direction",
                    format!(
                        "\"{}\" as forward layers: load it with OnnxModel::bidirectional or \
                         bidirectional_stack",
                        String::from_utf8_lossy(other)
                    ),
                ));
            }
        }
        let (cells, initial_state, _) = model.directions::<I, H, A>(node, 1, first, chain.len())?;
        self.copy_from(&cells[0]);
        Ok(initial_state.map(|mut h| h.remove(0)))
    }
}

impl<const I: usize, const M: usize, const H: usize, L, U> FromNodes<I, H> for Stack<L, U, M>
where
    L: FromNodes<I, M>,
    U: FromNodes<M, H>,
{
    fn load_nodes(
        &mut self,
        model: &OnnxModel,
        chain: &[&NodeProto],
        first: usize,
    ) -> Result<InitialState<Self::State>, OnnxError> {
        let below = self.lower.load_nodes(model, chain, first)?;
        let above = self.upper.load_nodes(model, chain, first + L::COUNT)?;
        // U loaded from this node, so it is there.
        let Some(node) = chain.get(first + L::COUNT) else {
            return Err(OnnxError::Layers {
                expected: first + L::COUNT + 1,
                nodes: chain.iter().map(|n| node_name(n)).collect(),
            });
        };
        let state = merge(
            below.map(|s| (s, U::ZERO_STATE)),
            above,
            |s: &mut Self::State, u| s.1 = u,
            (L::ZERO_STATE, U::ZERO_STATE),
            node,
        )?;
        Ok(state)
    }
}

impl OnnxModel {
    /// Reads the model at `path`.
    ///
    /// # Errors
    ///
    /// [`OnnxError::Io`] if the file cannot be read, else as [`from_bytes`](Self::from_bytes).
    pub fn read(path: impl AsRef<Path>) -> Result<Self, OnnxError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses a model from its bytes.
    ///
    /// # Errors
    ///
    /// [`OnnxError::Malformed`] if the bytes are not a protobuf `ModelProto` with a graph.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OnnxError> {
        let model = proto::ModelProto::decode(bytes).map_err(|e| OnnxError::Malformed {
            reason: e.to_string(),
        })?;
        let graph = model.graph.ok_or_else(|| OnnxError::Malformed {
            reason: "the model has no graph".to_owned(),
        })?;
        Ok(Self { graph })
    }

    /// The graph's `RNN` nodes as one chain of layers, lowest first: the first reads a graph
    /// input, each other one the output `Y` of the one below.
    fn chain(&self) -> Result<Vec<&NodeProto>, OnnxError> {
        let rnns: Vec<&NodeProto> = self.graph.node.iter().filter(|n| is_rnn(n)).collect();
        if rnns.is_empty() {
            return Err(OnnxError::NoRnn {
                ops: self.graph.node.iter().map(|n| n.op_type.clone()).collect(),
            });
        }
        let below = rnns
            .iter()
            .map(|node| self.feed(node))
            .collect::<Result<Vec<_>, _>>()?;
        let not_a_chain = || OnnxError::ManyRnns {
            nodes: rnns.iter().map(|n| node_name(n)).collect(),
        };
        let roots = reading(&rnns, &below, None);
        let [root] = roots.as_slice() else {
            return Err(not_a_chain());
        };
        let mut chain = vec![*root];
        while chain.len() < rnns.len() {
            match reading(&rnns, &below, chain.last().copied()).as_slice() {
                [next] => chain.push(*next),
                _ => return Err(not_a_chain()),
            }
        }
        Ok(chain)
    }

    /// The chain of `RNN` nodes, which must have `layers` layers.
    fn layer_nodes(&self, layers: usize) -> Result<Vec<&NodeProto>, OnnxError> {
        let chain = self.chain()?;
        if chain.len() == layers {
            Ok(chain)
        } else {
            Err(OnnxError::Layers {
                expected: layers,
                nodes: chain.iter().map(|n| node_name(n)).collect(),
            })
        }
    }

    /// The `RNN` node whose output `Y` `node` reads as its input `X`, or `None` when `X` is a
    /// graph input. Between them, only nodes that keep each step's values in place: see
    /// [`keeps_steps`].
    fn feed(&self, node: &NodeProto) -> Result<Option<&NodeProto>, OnnxError> {
        let mut name = node.input.first().cloned().unwrap_or_default();
        let mut between: Vec<&NodeProto> = Vec::new();
        for _ in 0..MAX_PATH {
            if self.is_graph_input(&name) {
                return match between.iter().find(|p| !keeps_steps(p, 0)) {
                    Some(p) => Err(reorders(node, "input X", p)),
                    None => Ok(None),
                };
            }
            let producer = self.producer(&name);
            match producer {
                Some(p) if is_rnn(p) && p.output.first() == Some(&name) => {
                    let layout = attribute(p, "layout").map_or(0, |a| a.i);
                    return match between.iter().find(|b| !keeps_steps(b, layout)) {
                        Some(b) => Err(reorders(node, "input X", b)),
                        None => Ok(Some(p)),
                    };
                }
                Some(p) if passes_steps(p) => {
                    between.push(p);
                    name = p.input.first().cloned().unwrap_or_default();
                }
                Some(p) => {
                    return Err(unsupported(
                        node,
                        "input X",
                        format!(
                            "`{name}` is computed by {} node `{}`, which the crate does not run",
                            p.op_type,
                            node_name(p)
                        ),
                    ));
                }
                None => {
                    return Err(unsupported(
                        node,
                        "input X",
                        format!("`{name}` is neither a graph input nor an RNN's output"),
                    ));
                }
            }
        }
        Err(unsupported(
            node,
            "input X",
            format!("more than {MAX_PATH} nodes between it and the graph's input"),
        ))
    }

    /// Whether `name` is an input of the graph that the caller feeds (not an initializer).
    fn is_graph_input(&self, name: &str) -> bool {
        !name.is_empty()
            && self.graph.input.iter().any(|i| i.name == name)
            && !self.graph.initializer.iter().any(|t| t.name == name)
    }

    /// The `RNN` node as a cell with its initial state.
    ///
    /// # Errors
    ///
    /// An [`OnnxError`] naming the node and the attribute, input or tensor the crate cannot
    /// run, or whose shape disagrees with `I` and `H`.
    pub fn rnn<const I: usize, const H: usize, A: Activation>(
        &self,
    ) -> Result<OnnxRnn<I, H, A>, OnnxError> {
        let chain = self.layer_nodes(1)?;
        let node = chain[0];
        let direction = attribute(node, "direction").map(|a| a.s.as_slice());
        if direction == Some(b"bidirectional") {
            return Err(unsupported(
                node,
                "attribute direction",
                "\"bidirectional\" as one direction's cell: load it with \
                 OnnxModel::bidirectional"
                    .to_owned(),
            ));
        }
        let (mut cells, initial_state, node_name) = self.directions::<I, H, A>(node, 1, 0, 1)?;
        Ok(OnnxRnn {
            cell: *cells.remove(0),
            reverse: direction == Some(b"reverse"),
            initial_state: initial_state.map(|mut h| h.remove(0)),
            node: node_name,
        })
    }

    /// The bidirectional `RNN` node as a [`Bidirectional`] layer (`H2 = 2·H`).
    ///
    /// # Errors
    ///
    /// As [`rnn`](Self::rnn), and [`OnnxError::Unsupported`] for a node that is not
    /// bidirectional.
    pub fn bidirectional<const I: usize, const H: usize, const H2: usize, A: Activation>(
        &self,
    ) -> Result<OnnxBidirectional<I, H, H2, A>, OnnxError> {
        let chain = self.layer_nodes(1)?;
        let (layer, initial_state) = self.bidirectional_layer::<I, H, H2, A>(chain[0], 0, 1)?;
        Ok(OnnxBidirectional {
            layer,
            initial_state,
            node: node_name(chain[0]),
        })
    }

    /// A chain of `U + 1` bidirectional `RNN` nodes, each reading the `[h_fwd; h_bwd]` outputs
    /// of the one below (through the `Transpose` and `Reshape` exporters put between), as a
    /// [`BiStack`]: what `torch.onnx.export` writes for
    /// `nn.RNN(bidirectional=True, num_layers=U + 1)`. Its readout, if it has one, is
    /// [`readout`](Self::readout)`::<H2, O>()`.
    ///
    /// ```
    /// use elman::bidirectional::{BiStack2, read_out};
    /// use elman::nalgebra::SVector;
    /// use elman::onnx::{InitialState, OnnxModel};
    ///
    /// let model = OnnxModel::read("tests/fixtures/onnx/torch_bidirectional_two_layers_i3_h4_o2.onnx")?;
    /// let stack = model.bidirectional_stack::<3, 4, 8, 1, elman::Tanh>()?;
    /// let head = model.readout::<8, 2>()?;
    /// assert_eq!(stack.initial_state, InitialState::Zeros);
    ///
    /// let xs = [SVector::<f32, 3>::zeros(); 5];
    /// let (mut scratch, mut out) = ([SVector::zeros(); 5], [SVector::zeros(); 5]);
    /// let layers: &BiStack2<3, 4, 8> = &stack.layers;
    /// layers.run(&xs, &elman::BiStates::ZERO, &mut scratch, &mut out);
    /// let mut logits = [SVector::zeros(); 5];
    /// read_out(&head, &out, &mut logits);
    /// # Ok::<(), elman::onnx::OnnxError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OnnxError::Layers`] when the graph chains another number of `RNN` nodes, else as
    /// [`bidirectional`](Self::bidirectional) for each node, and [`OnnxError::Unsupported`]
    /// when the layers' initial states come from different places (one graph input for all,
    /// or constants and zeros, load).
    pub fn bidirectional_stack<
        const I: usize,
        const H: usize,
        const H2: usize,
        const U: usize,
        A: Activation,
    >(
        &self,
    ) -> Result<OnnxBiStack<I, H, H2, U, A>, OnnxError> {
        let chain = self.layer_nodes(U + 1)?;
        let (first, state) = self.bidirectional_layer::<I, H, H2, A>(chain[0], 0, U + 1)?;
        let mut initial_state = state.map(|pair| BiStates {
            first: pair,
            ..BiStates::ZERO
        });
        let mut upper = Vec::with_capacity(U);
        for (k, node) in chain.iter().enumerate().skip(1) {
            let (layer, state) = self.bidirectional_layer::<H2, H, H2, A>(node, k, U + 1)?;
            initial_state = merge(
                initial_state,
                state,
                |s: &mut BiStates<H, U>, pair| {
                    if let Some(slot) = s.upper.get_mut(k - 1) {
                        *slot = pair;
                    }
                },
                BiStates::ZERO,
                node,
            )?;
            upper.push(layer);
        }
        let upper: [Bidirectional<H2, H, H2, A>; U] =
            upper.try_into().map_err(|_| OnnxError::Layers {
                expected: U + 1,
                nodes: chain.iter().map(|n| node_name(n)).collect(),
            })?;
        Ok(OnnxBiStack {
            layers: BiStack::new(first, upper),
            initial_state,
            nodes: chain.iter().map(|n| node_name(n)).collect(),
        })
    }

    /// Layer `layer` of `layers`, a bidirectional node, with its initial states.
    fn bidirectional_layer<const I: usize, const H: usize, const H2: usize, A: Activation>(
        &self,
        node: &NodeProto,
        layer: usize,
        layers: usize,
    ) -> Result<(Bidirectional<I, H, H2, A>, InitialState<Pair<H>>), OnnxError> {
        if attribute(node, "direction").map(|a| a.s.as_slice()) != Some(b"bidirectional") {
            return Err(unsupported(
                node,
                "attribute direction",
                "not \"bidirectional\": load it with OnnxModel::rnn, layers or network".to_owned(),
            ));
        }
        let (mut cells, initial_state, _) = self.directions::<I, H, A>(node, 2, layer, layers)?;
        let backward = *cells.remove(1);
        let forward = *cells.remove(0);
        Ok((
            Bidirectional::new(forward, backward),
            initial_state.map(|h| (h[0], h[1])),
        ))
    }

    /// A bidirectional node and the readout that follows its output (`[h_fwd; h_bwd]`, through
    /// the `Transpose` and `Reshape` exporters put between), for
    /// [`read_out`](crate::bidirectional::read_out) of the layer's outputs.
    ///
    /// # Errors
    ///
    /// As [`bidirectional`](Self::bidirectional) and [`network`](Self::network).
    pub fn bidirectional_network<
        const I: usize,
        const H: usize,
        const H2: usize,
        const O: usize,
        A: Activation,
    >(
        &self,
    ) -> Result<(OnnxBidirectional<I, H, H2, A>, Readout<H2, O>), OnnxError> {
        let layer = self.bidirectional::<I, H, H2, A>()?;
        let readout = self.readout::<H2, O>()?;
        Ok((layer, readout))
    }

    /// Each of the `dirs` directions of `node`, layer `layer` of `layers`, as a cell, with the
    /// initial states.
    fn directions<const I: usize, const H: usize, A: Activation>(
        &self,
        node: &NodeProto,
        dirs: usize,
        layer: usize,
        layers: usize,
    ) -> Result<Directions<I, H, A>, OnnxError> {
        Self::check_attributes::<A>(node, H)?;
        let input = |k: usize| node.input.get(k).filter(|s| !s.is_empty());
        if let Some(lens) = input(4) {
            return Err(unsupported(
                node,
                "input sequence_lens",
                format!("`{lens}`: every sequence must run its full length"),
            ));
        }
        let w_name = input(1).ok_or_else(|| unsupported(node, "input W", "absent".to_owned()))?;
        let r_name = input(2).ok_or_else(|| unsupported(node, "input R", "absent".to_owned()))?;
        let w = self.constant(node, w_name)?;
        let r = self.constant(node, r_name)?;
        expect_shape(w_name, &w, &[dirs, H, I])?;
        expect_shape(r_name, &r, &[dirs, H, H])?;
        let bias = match input(3) {
            Some(b_name) => {
                let bias = self.constant(node, b_name)?;
                expect_shape(b_name, &bias, &[dirs, 2 * H])?;
                Some(bias)
            }
            None => None,
        };
        let cells = (0..dirs)
            .map(|d| {
                let b: [f32; H] = core::array::from_fn(|j| {
                    bias.as_ref().map_or(0.0, |b| {
                        b.values[d * 2 * H + j] + b.values[d * 2 * H + H + j]
                    })
                });
                // Written on the heap: built from matrices by value, a cell went through the
                // stack once per matrix and again at each move.
                let mut cell = RnnCell::zeroed_box();
                cell.store_row_major(
                    &w.values[d * H * I..(d + 1) * H * I],
                    &r.values[d * H * H..(d + 1) * H * H],
                    &b,
                );
                cell
            })
            .collect();
        let initial_state = match input(5) {
            None => InitialState::Zeros,
            Some(h0) => self.initial_state::<H>(node, h0, dirs, layer, layers)?,
        };
        Ok((cells, initial_state, node_name(node)))
    }

    /// The chain of forward `RNN` nodes as layers `L`: one [`RnnCell`] for one node, a
    /// [`Stack`] of them for `torch.onnx.export`'s `nn.RNN(num_layers = L)` (one node per
    /// layer, each reading the one below through a `Squeeze`), with their initial states.
    ///
    /// ```
    /// use elman::onnx::{InitialState, OnnxModel};
    /// use elman::stack::Stack2;
    ///
    /// let model = OnnxModel::read("tests/fixtures/onnx/torch_two_layers_i3_h4_o2.onnx")?;
    /// let loaded = model.layers::<Stack2<3, 4>, 3, 4>()?;
    /// assert_eq!(loaded.initial_state, InitialState::Zeros);
    /// assert_eq!(loaded.nodes.len(), 2);
    /// # Ok::<(), elman::onnx::OnnxError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OnnxError::Layers`] when the graph chains another number of `RNN` nodes than `L` has
    /// layers; as [`rnn`](Self::rnn) for each node, and [`OnnxError::Unsupported`] for a node
    /// that does not run forward, or when the layers' initial states come from different
    /// places (one graph input for all, or constants and zeros, load).
    pub fn layers<L: FromNodes<I, H>, const I: usize, const H: usize>(
        &self,
    ) -> Result<OnnxLayers<L, I, H>, OnnxError> {
        let chain = self.layer_nodes(L::COUNT)?;
        // Loaded on the heap and moved out once (see `network`).
        let mut layers = L::zeroed_box();
        let initial_state = layers.load_nodes(self, &chain, 0)?;
        Ok(OnnxLayers {
            layers: *layers,
            initial_state,
            nodes: chain.iter().map(|n| node_name(n)).collect(),
        })
    }

    /// The forward `RNN` node(s) (as [`layers`](Self::layers) loads them) and the readout that
    /// follows the last one, as a network starting from the file's initial state. When the graph
    /// takes the initial state as an input, the network starts from zeros:
    /// [`layers`](Self::layers) says so ([`InitialState::Input`]), and
    /// [`Network::set_initial_state`] gives it the caller's state.
    ///
    /// ```
    /// use elman::onnx::{InitialState, OnnxModel};
    /// use elman::stack::Stack3;
    /// use elman::nalgebra::SVector;
    /// use elman::Relu;
    ///
    /// // `nn.RNN(4, 8, num_layers=3, nonlinearity='relu')` + `nn.Linear(8, 3)`, exported
    /// // called as `model(x, h0)`: `h0` is a graph input of shape [3, 1, 8].
    /// let model = OnnxModel::read("tests/fixtures/onnx/torch_three_layers_relu_h0_i4_h8_o3.onnx")?;
    /// let mut net = model.network::<Stack3<4, 8, Relu>, 4, 8, 3>()?;
    /// let loaded = model.layers::<Stack3<4, 8, Relu>, 4, 8>()?;
    /// assert_eq!(loaded.initial_state, InitialState::Input("h0".to_owned()));
    /// let h0: [SVector<f32, 8>; 3] = [SVector::from_element(0.5); 3];
    /// net.set_initial_state(((h0[0], h0[1]), h0[2]));
    /// # Ok::<(), elman::onnx::OnnxError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`layers`](Self::layers), then as [`readout`](Self::readout).
    pub fn network<L: FromNodes<I, H>, const I: usize, const H: usize, const O: usize>(
        &self,
    ) -> Result<Network<L, I, H, O>, OnnxError> {
        // Loaded on the heap and moved out once: built from parts loaded by value, each of
        // which went through the stack, a large model overflowed a thread's stack.
        Ok(*self.network_boxed::<L, I, H, O>()?)
    }

    /// [`network`](Self::network) on the heap: a zeroed box, loaded in place, so that the
    /// network is never on the stack, whatever its size.
    ///
    /// ```
    /// use elman::onnx::OnnxModel;
    /// use elman::Rnn;
    ///
    /// let model = OnnxModel::read("tests/fixtures/onnx/helper_forward_i3_h4_o2.onnx")?;
    /// let boxed: Box<Rnn<3, 4, 2>> = model.network_boxed()?;
    /// assert_eq!(*boxed, model.network()?);
    /// # Ok::<(), elman::onnx::OnnxError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`network`](Self::network).
    pub fn network_boxed<L: FromNodes<I, H>, const I: usize, const H: usize, const O: usize>(
        &self,
    ) -> Result<Box<Network<L, I, H, O>>, OnnxError> {
        let chain = self.layer_nodes(L::COUNT)?;
        let mut network = Network::<L, I, H, O>::zeroed_box();
        let (layers, readout) = network.weights_mut();
        let initial_state = layers.load_nodes(self, &chain, 0)?;
        *readout = self.readout::<H, O>()?;
        if let InitialState::Given(h0) = initial_state {
            network.set_initial_state(h0);
        }
        Ok(network)
    }

    /// The readout after the last `RNN` node's output `Y`: a `MatMul` of a constant `[H, O]`
    /// weight and the `Add` of a bias, or a `Gemm`, through `Squeeze`, `Reshape`, `Identity`,
    /// `Flatten` and the `Transpose` that puts a bidirectional node's directions side by side.
    ///
    /// # Errors
    ///
    /// As [`layers`](Self::layers) for finding the chain, [`OnnxError::NoReadout`] when no
    /// `MatMul` + `Add` or `Gemm` of constant weights follows, [`OnnxError::Unsupported`] for a
    /// `Transpose` between that reorders the steps' values, or [`OnnxError::Shape`] when the
    /// readout is not `H → O`.
    pub fn readout<const H: usize, const O: usize>(&self) -> Result<Readout<H, O>, OnnxError> {
        let (readout, head, after) = self.readout_head::<H, O>()?;
        match (head, after) {
            (Head::Linear, _) | (_, None) => Ok(readout),
            (_, Some(node)) => Err(unsupported(
                node,
                "operator after the readout",
                format!(
                    "{}: the model's output is a reading of the logits, which the network does \
                     not apply; OnnxModel::readout_and_head loads the readout with it",
                    node.op_type
                ),
            )),
        }
    }

    /// The readout after the last `RNN` node (as [`readout`](Self::readout) finds it) and the
    /// reading of its logits that the graph applies after it: a `Softmax` over the outputs
    /// (`axis` −1) or a `Sigmoid` ([`Head::apply`] computes the model's output from the
    /// logits), or none.
    ///
    /// # Errors
    ///
    /// As [`readout`](Self::readout), but a `Softmax` or `Sigmoid` after the readout loads.
    pub fn readout_and_head<const H: usize, const O: usize>(
        &self,
    ) -> Result<(Readout<H, O>, Head), OnnxError> {
        let (readout, head, _) = self.readout_head::<H, O>()?;
        Ok((readout, head))
    }

    /// The readout, the reading after it, and the node that applies that reading.
    fn readout_head<const H: usize, const O: usize>(
        &self,
    ) -> Result<(Readout<H, O>, Head, Option<&NodeProto>), OnnxError> {
        let chain = self.chain()?;
        let node = chain[chain.len() - 1];
        let layout = attribute(node, "layout").map_or(0, |a| a.i);
        let name = node_name(node);
        let mut value = node.output.first().cloned().unwrap_or_default();
        // The time axis of `value`: 0 in a layout-0 output `[T, dirs, 1, H]`, 1 in a layout-1
        // one; `None` once unknown or gone (a `Gather` of the last step).
        let mut time = Some(layout);
        for _ in 0..MAX_PATH {
            let consumer = self
                .graph
                .node
                .iter()
                .find(|n| n.input.iter().any(|i| *i == value && !i.is_empty()));
            let Some(next) = consumer else {
                return Err(OnnxError::NoReadout {
                    node: name,
                    found: None,
                });
            };
            match next.op_type.as_str() {
                _ if passes_steps(next) => {
                    if !keeps_steps(next, layout) {
                        return Err(reorders(node, "output Y", next));
                    }
                    time = time.and_then(|t| self.time_axis_after(next, t));
                }
                "Gather" if time.is_some() && self.gathers_last(next, time) => time = None,
                "MatMul" => {
                    let (readout, out) = self.matmul_readout(next, &value, &name)?;
                    let (head, at) = self.head_after(node, out)?;
                    return Ok((readout, head, at));
                }
                "Gemm" => {
                    let readout = self.gemm_readout(next, &value)?;
                    let out = next.output.first().cloned().unwrap_or_default();
                    let (head, at) = self.head_after(node, out)?;
                    return Ok((readout, head, at));
                }
                op => {
                    return Err(OnnxError::NoReadout {
                        node: name,
                        found: Some(op.to_owned()),
                    });
                }
            }
            value = next.output.first().cloned().unwrap_or_default();
        }
        Err(OnnxError::NoReadout {
            node: name,
            found: Some(format!("more than {MAX_PATH} nodes after its output")),
        })
    }

    /// Where the time axis `time` of a node's input is in its output, for the nodes that
    /// [`passes_steps`]: moved by a `Transpose`, shifted by a `Squeeze` of axes before it, kept
    /// first by the others; `None` when it cannot be told.
    fn time_axis_after(&self, node: &NodeProto, time: i64) -> Option<i64> {
        match node.op_type.as_str() {
            "Transpose" => {
                let perm = attribute(node, "perm")?;
                perm.ints.iter().position(|&p| p == time)?.try_into().ok()
            }
            "Squeeze" => {
                let axes = self.ints(node.input.get(1)?)?;
                if axes.iter().any(|&a| a < 0 || a == time) {
                    return (time == 0 && axes.iter().all(|&a| a > 0)).then_some(0);
                }
                let before = axes.iter().filter(|&&a| a < time).count();
                time.checked_sub(i64::try_from(before).ok()?)
            }
            _ => (time == 0).then_some(0),
        }
    }

    /// Whether `gather` takes the last step of a value whose time axis is `time`: `axis` that
    /// axis and the constant index −1 (`y[-1]`, the output a classifier of whole sequences
    /// reads).
    fn gathers_last(&self, gather: &NodeProto, time: Option<i64>) -> bool {
        let axis = attribute(gather, "axis").map_or(0, |a| a.i);
        let index = gather.input.get(1).and_then(|i| self.ints(i));
        time == Some(axis) && index.is_some_and(|i| i == [-1])
    }

    /// The reading the graph applies to the readout's output `value` (of the readout after
    /// `rnn`), with the node that applies it: through reshaping nodes that keep the outputs
    /// last, at most one `Softmax` over the outputs or `Sigmoid`; any other operator is an error
    /// naming it.
    fn head_after(
        &self,
        rnn: &NodeProto,
        mut value: String,
    ) -> Result<(Head, Option<&NodeProto>), OnnxError> {
        let mut head = (Head::Linear, None);
        for _ in 0..MAX_PATH {
            let mut consumers = self
                .graph
                .node
                .iter()
                .filter(|n| n.input.iter().any(|i| *i == value && !i.is_empty()));
            let Some(next) = consumers.next() else {
                return Ok(head);
            };
            let reading = match next.op_type.as_str() {
                "Softmax" if attribute(next, "axis").is_none_or(|a| a.i == -1) => {
                    Some(Head::Softmax)
                }
                "Sigmoid" => Some(Head::Sigmoid),
                _ => None,
            };
            let keeps_outputs_last = passes_steps(next)
                && attribute(next, "perm").is_none_or(|perm| {
                    perm.ints.last().copied() == i64::try_from(perm.ints.len()).ok().map(|n| n - 1)
                });
            match (reading, head.0) {
                _ if consumers.next().is_some() => {}
                (None, _) if keeps_outputs_last => {
                    value = next.output.first().cloned().unwrap_or_default();
                    continue;
                }
                (Some(reading), Head::Linear) => {
                    head = (reading, Some(next));
                    value = next.output.first().cloned().unwrap_or_default();
                    continue;
                }
                _ => {}
            }
            return Err(unsupported(
                next,
                "operator after the readout",
                format!(
                    "{} of the readout of RNN `{}`: after the readout, the crate runs a Softmax \
                     over the outputs or a Sigmoid, once, and reshapes",
                    next.op_type,
                    node_name(rnn)
                ),
            ));
        }
        Err(unsupported(
            rnn,
            "output Y",
            format!("more than {MAX_PATH} nodes after its readout"),
        ))
    }

    /// `MatMul(y, W)` (`W` is `[H, O]`, the transpose of `nn.Linear`'s weight) and the `Add`
    /// of the bias that follows it (the bias on either side).
    fn matmul_readout<const H: usize, const O: usize>(
        &self,
        matmul: &NodeProto,
        y: &str,
        rnn: &str,
    ) -> Result<(Readout<H, O>, String), OnnxError> {
        let w_name = matmul
            .input
            .iter()
            .find(|i| *i != y)
            .cloned()
            .unwrap_or_default();
        let w = self.constant(matmul, &w_name)?;
        expect_shape(&w_name, &w, &[H, O])?;
        let out = matmul.output.first().cloned().unwrap_or_default();
        let add = self
            .graph
            .node
            .iter()
            .find(|n| n.op_type == "Add" && n.input.contains(&out));
        let (bias, out) = match add {
            Some(add) => {
                let b_name = add
                    .input
                    .iter()
                    .find(|i| **i != out)
                    .cloned()
                    .unwrap_or_default();
                let b = self.constant(add, &b_name)?;
                expect_shape(&b_name, &b, &[O])?;
                (
                    SVector::<f32, O>::from_column_slice(&b.values),
                    add.output.first().cloned().unwrap_or_default(),
                )
            }
            None => {
                return Err(OnnxError::NoReadout {
                    node: rnn.to_owned(),
                    found: Some("MatMul without an Add of its bias".to_owned()),
                });
            }
        };
        // `W` is [H, O] row-major: `W_hy[o][k] = W[k][o]`, which is `W` read column-major.
        let w_hy = SMatrix::<f32, O, H>::from_column_slice(&w.values);
        Ok((Readout::new(w_hy, bias), out))
    }

    /// `Gemm(y, B, C)`, `transB` 1 (`B` is `[O, H]`) or 0 (`[H, O]`); `alpha`, `beta` 1.
    fn gemm_readout<const H: usize, const O: usize>(
        &self,
        gemm: &NodeProto,
        y: &str,
    ) -> Result<Readout<H, O>, OnnxError> {
        for (attr, default) in [("alpha", 1.0), ("beta", 1.0)] {
            let value = attribute(gemm, attr).map_or(default, |a| a.f);
            if (value - 1.0).abs() > 0.0 {
                return Err(unsupported(gemm, attr, format!("{value}: only 1")));
            }
        }
        if attribute(gemm, "transA").is_some_and(|a| a.i != 0) {
            return Err(unsupported(gemm, "transA", "1: only 0".to_owned()));
        }
        let trans_b = attribute(gemm, "transB").is_some_and(|a| a.i != 0);
        if gemm.input.first().map(String::as_str) != Some(y) {
            return Err(unsupported(
                gemm,
                "input A",
                "not the RNN's output".to_owned(),
            ));
        }
        let b_name = gemm.input.get(1).cloned().unwrap_or_default();
        let b = self.constant(gemm, &b_name)?;
        let w_hy = if trans_b {
            expect_shape(&b_name, &b, &[O, H])?;
            SMatrix::<f32, O, H>::from_row_slice(&b.values)
        } else {
            expect_shape(&b_name, &b, &[H, O])?;
            SMatrix::<f32, O, H>::from_column_slice(&b.values)
        };
        let bias = match gemm.input.get(2).filter(|s| !s.is_empty()) {
            Some(c_name) => {
                let c = self.constant(gemm, c_name)?;
                expect_shape(c_name, &c, &[O])?;
                SVector::<f32, O>::from_column_slice(&c.values)
            }
            None => SVector::zeros(),
        };
        Ok(Readout::new(w_hy, bias))
    }

    /// The RNN's attributes: forward, `hidden_size` `H`, `layout` 0 or 1, the activation
    /// `A`, no `clip`.
    fn check_attributes<A: Activation>(node: &NodeProto, h: usize) -> Result<(), OnnxError> {
        for a in &node.attribute {
            match a.name.as_str() {
                "direction" => {
                    let direction = String::from_utf8_lossy(&a.s);
                    if !["forward", "reverse", "bidirectional"].contains(&direction.as_ref()) {
                        return Err(unsupported(
                            node,
                            "attribute direction",
                            format!("\"{direction}\": forward, reverse or bidirectional"),
                        ));
                    }
                }
                "hidden_size" if usize::try_from(a.i) != Ok(h) => {
                    return Err(OnnxError::HiddenSize {
                        node: node_name(node),
                        expected: h,
                        found: a.i,
                    });
                }
                "layout" if a.i != 0 && a.i != 1 => {
                    return Err(unsupported(node, "attribute layout", format!("{}", a.i)));
                }
                "clip" => {
                    return Err(unsupported(
                        node,
                        "attribute clip",
                        format!("{}: the cell does not clip its pre-activations", a.f),
                    ));
                }
                "activations" => {
                    let found: Vec<String> = a
                        .strings
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect();
                    let expected = match A::KIND {
                        Kind::Tanh => "Tanh",
                        Kind::Relu => "Relu",
                    };
                    // One per direction (a bidirectional node lists two).
                    let known = |f: &String| {
                        f.eq_ignore_ascii_case("Tanh") || f.eq_ignore_ascii_case("Relu")
                    };
                    if found.is_empty() || found.len() > 2 || !found.iter().all(known) {
                        return Err(unsupported(
                            node,
                            "attribute activations",
                            format!("{found:?}: Tanh or Relu, one per direction"),
                        ));
                    }
                    if let Some(other) = found.iter().find(|f| !f.eq_ignore_ascii_case(expected)) {
                        return Err(OnnxError::Activation {
                            node: node_name(node),
                            expected,
                            found: other.clone(),
                        });
                    }
                }
                "activation_alpha" | "activation_beta" => {
                    return Err(unsupported(
                        node,
                        &format!("attribute {}", a.name),
                        "only Tanh and Relu, which take no parameters".to_owned(),
                    ));
                }
                _ => {}
            }
        }
        if !node.attribute.iter().any(|a| a.name == "activations") && A::KIND != Kind::Tanh {
            return Err(OnnxError::Activation {
                node: node_name(node),
                expected: "Relu",
                found: "Tanh (the default)".to_owned(),
            });
        }
        Ok(())
    }

    /// Where `initial_h` of layer `layer` (of `layers`) comes from: absent, a constant, zeros
    /// computed in the graph, a graph input, or rows `layer·dirs ..` of a constant or of a
    /// graph input holding every layer's state (`torch.onnx.export` slices one `h0` so).
    fn initial_state<const H: usize>(
        &self,
        node: &NodeProto,
        name: &str,
        dirs: usize,
        layer: usize,
        layers: usize,
    ) -> Result<InitialState<Vec<SVector<f32, H>>>, OnnxError> {
        let (source, rows) = match self.slice_rows(name) {
            Some((source, start, end)) => (source, Some((start, end))),
            None => (name.to_owned(), None),
        };
        let own_rows = (layer * dirs, (layer + 1) * dirs);
        if self.is_graph_input(&source) {
            if rows == Some(own_rows) || (rows.is_none() && layers == 1) {
                return Ok(InitialState::Input(source));
            }
            let found = rows.map_or_else(
                || "all of it".to_owned(),
                |(start, end)| format!("rows {start}..{end}"),
            );
            return Err(unsupported(
                node,
                "input initial_h",
                format!(
                    "`{name}` is {found} of graph input `{source}`; layer {layer} of {layers} \
                     starts from rows {}..{}",
                    own_rows.0, own_rows.1
                ),
            ));
        }
        if let Ok(h0) = self.constant(node, &source) {
            let h0 = match rows {
                Some((start, end)) => h0.rows(start, end).ok_or_else(|| OnnxError::Shape {
                    name: source.clone(),
                    expected: vec![end, 1, H],
                    found: h0.shape.clone(),
                })?,
                None => h0,
            };
            expect_shape(name, &h0, &[dirs, 1, H])?;
            let states = h0
                .values
                .chunks_exact(H)
                .map(SVector::from_column_slice)
                .collect();
            return Ok(InitialState::Given(states));
        }
        if self.is_zeros(&source) {
            return Ok(InitialState::Zeros);
        }
        Err(unsupported(
            node,
            "input initial_h",
            format!("`{name}` is computed by nodes other than zeros"),
        ))
    }

    /// `(data, start, end)` when `name` is a `Slice` of rows `start..end` (axis 0, step 1, of
    /// constant bounds) of `data`.
    fn slice_rows(&self, name: &str) -> Option<(String, usize, usize)> {
        let slice = self.producer(name).filter(|p| p.op_type == "Slice")?;
        let input = |k: usize| slice.input.get(k).filter(|s| !s.is_empty());
        let one = |k: usize| match self.ints(input(k)?)?.as_slice() {
            [v] => Some(*v),
            _ => None,
        };
        let axis_0 = input(3).is_none() || one(3) == Some(0);
        let step_1 = input(4).is_none() || one(4) == Some(1);
        let start = usize::try_from(one(1)?).ok()?;
        // An end past the rows (`i64::MAX` for "to the end") is clamped, as ONNX does.
        let end = usize::try_from(one(2)?).unwrap_or(usize::MAX);
        if axis_0 && step_1 && start <= end {
            Some((input(0)?.clone(), start, end))
        } else {
            None
        }
    }

    /// The integers of the constant `name` (an initializer or a `Constant` node's value) of
    /// type int64 or int32.
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        let t = match self.graph.initializer.iter().find(|t| t.name == name) {
            Some(t) => t,
            None => self
                .producer(name)
                .filter(|p| p.op_type == "Constant")
                .and_then(|p| attribute(p, "value"))
                .and_then(|a| a.t.as_ref())?,
        };
        match t.data_type {
            INT64 if t.raw_data.is_empty() => Some(t.int64_data.clone()),
            INT64 => Some(
                t.raw_data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect(),
            ),
            INT32 if t.raw_data.is_empty() => {
                Some(t.int32_data.iter().map(|&v| v.into()).collect())
            }
            INT32 => Some(
                t.raw_data
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]).into())
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Whether `name` is zeros computed in the graph: `ConstantOfShape` of 0 (or of its default,
    /// 0), or `Expand`, `Reshape`, `Identity` or `Cast` of such zeros or of a constant 0.
    fn is_zeros(&self, name: &str) -> bool {
        let mut name = name.to_owned();
        for _ in 0..16 {
            if let Some(t) = self.initializer(&name) {
                return t.is_ok_and(|t| t.values.iter().all(|v| *v == 0.0));
            }
            let Some(producer) = self.producer(&name) else {
                return false;
            };
            match producer.op_type.as_str() {
                "ConstantOfShape" => {
                    return attribute(producer, "value")
                        .and_then(|a| a.t.as_ref())
                        .is_none_or(|t| {
                            tensor(t).is_ok_and(|t| t.values.iter().all(|v| *v == 0.0))
                        });
                }
                "Constant" => {
                    return constant_node(producer)
                        .is_some_and(|t| t.values.iter().all(|v| *v == 0.0));
                }
                "Expand" | "Reshape" | "Identity" | "Cast" | "Unsqueeze" => {
                    name = producer.input.first().cloned().unwrap_or_default();
                }
                _ => return false,
            }
        }
        false
    }

    /// The node that produces `name`.
    fn producer(&self, name: &str) -> Option<&NodeProto> {
        self.graph
            .node
            .iter()
            .find(|n| n.output.iter().any(|o| o == name))
    }

    /// The initializer `name`, decoded.
    fn initializer(&self, name: &str) -> Option<Result<Tensor, OnnxError>> {
        self.graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .map(tensor)
    }

    /// The constant `name` (an initializer or a `Constant` node's value), input of `node`.
    fn constant(&self, node: &NodeProto, name: &str) -> Result<Tensor, OnnxError> {
        if let Some(t) = self.initializer(name) {
            return t;
        }
        match self.producer(name) {
            Some(p) if p.op_type == "Constant" => {
                if let Some(t) = constant_node(p) {
                    return Ok(t);
                }
            }
            // A constant cast to float (half-precision weights in a float graph): the values
            // are converted to f32 as they are read.
            Some(p)
                if p.op_type == "Cast"
                    && attribute(p, "to").is_some_and(|a| a.i == i64::from(FLOAT)) =>
            {
                if let Some(source) = p.input.first() {
                    return self.constant(p, source);
                }
            }
            _ => {}
        }
        Err(OnnxError::NotConstant {
            node: node_name(node),
            input: name.to_owned(),
        })
    }
}

/// The longest path of reshaping nodes followed between an RNN and its input, the RNN below
/// or its readout (a bound that ends the walk on a cyclic graph).
const MAX_PATH: usize = 64;

/// The nodes of `rnns` that read the output of `lower` (`None`: a graph input), given what each
/// reads (`below`, in the same order).
fn reading<'a>(
    rnns: &[&'a NodeProto],
    below: &[Option<&NodeProto>],
    lower: Option<&NodeProto>,
) -> Vec<&'a NodeProto> {
    rnns.iter()
        .zip(below)
        .filter(|(_, feed)| match (feed, lower) {
            (None, None) => true,
            (Some(a), Some(b)) => core::ptr::eq(*a, b),
            _ => false,
        })
        .map(|(node, _)| *node)
        .collect()
}

/// Whether `node` is an ONNX `RNN`.
fn is_rnn(node: &NodeProto) -> bool {
    node.op_type == "RNN" && node.domain.is_empty()
}

/// Whether `node` only reshapes a sequence (a batch of one): the loader follows such nodes
/// from an RNN's output to the RNN above or to the readout.
fn passes_steps(node: &NodeProto) -> bool {
    matches!(
        node.op_type.as_str(),
        "Squeeze" | "Transpose" | "Reshape" | "Identity" | "Flatten"
    )
}

/// Whether `node`, one that [`passes_steps`], keeps each step's values together and in order,
/// on the output of an RNN of `layout`: every such node but a `Transpose` does (their data
/// stays in place), and a `Transpose` that moves nothing, that swaps the directions and
/// batch axes of a layout-0 output (`[T, dirs, 1, H]` to `[T, 1, dirs, H]`, before the
/// `Reshape` to `[T, 1, dirs·H]`), or that swaps the time and batch axes of a sequence
/// (`batch_first` to time first and back: the values of a step stay together).
fn keeps_steps(node: &NodeProto, layout: i64) -> bool {
    if node.op_type != "Transpose" {
        return true;
    }
    let perm = attribute(node, "perm").map_or(&[][..], |a| a.ints.as_slice());
    let identity = perm.iter().zip(0..).all(|(&p, k)| p == k);
    identity || (layout == 0 && perm == [0, 2, 1, 3]) || perm == [1, 0, 2]
}

/// [`OnnxError::Unsupported`] for a node between an RNN and what reads its output that
/// reorders the steps' values.
fn reorders(rnn: &NodeProto, what: &str, between: &NodeProto) -> OnnxError {
    let perm = attribute(between, "perm").map_or_else(Vec::new, |a| a.ints.clone());
    unsupported(
        rnn,
        what,
        format!(
            "passes through {} node `{}` (perm {perm:?}), which reorders the values of a step",
            between.op_type,
            node_name(between)
        ),
    )
}

/// The initial state of a stack so far (`below`) with that of the next layer up (`layer`),
/// which `set` writes into the stack's state: zeros and constants mix (a layer without one
/// starts from `zero`'s), and one graph input can hold every layer's state; a graph input for
/// some layers and not others is an error naming `node`, the upper layer.
fn merge<S, T>(
    below: InitialState<S>,
    layer: InitialState<T>,
    set: impl FnOnce(&mut S, T),
    zero: S,
    node: &NodeProto,
) -> Result<InitialState<S>, OnnxError> {
    match (below, layer) {
        (InitialState::Zeros, InitialState::Zeros) => Ok(InitialState::Zeros),
        (InitialState::Given(s), InitialState::Zeros) => Ok(InitialState::Given(s)),
        (InitialState::Zeros, InitialState::Given(t)) => {
            let mut s = zero;
            set(&mut s, t);
            Ok(InitialState::Given(s))
        }
        (InitialState::Given(mut s), InitialState::Given(t)) => {
            set(&mut s, t);
            Ok(InitialState::Given(s))
        }
        (InitialState::Input(a), InitialState::Input(b)) if a == b => Ok(InitialState::Input(a)),
        (below, layer) => {
            let place = |is_input: Option<&String>| {
                is_input.map_or_else(
                    || "no graph input".to_owned(),
                    |n| format!("graph input `{n}`"),
                )
            };
            Err(unsupported(
                node,
                "input initial_h",
                format!(
                    "this layer starts from {} and the layers below from {}: one graph input \
                     for every layer, or constants and zeros, are supported",
                    place(layer.input()),
                    place(below.input())
                ),
            ))
        }
    }
}

/// A `Constant` node's `value` tensor.
fn constant_node(node: &NodeProto) -> Option<Tensor> {
    attribute(node, "value")
        .and_then(|a| a.t.as_ref())
        .and_then(|t| tensor(t).ok())
}

/// The attribute `name` of `node`.
fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a proto::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// A node's name, or its op type when it has none.
fn node_name(node: &NodeProto) -> String {
    if node.name.is_empty() {
        node.op_type.clone()
    } else {
        node.name.clone()
    }
}

fn unsupported(node: &NodeProto, what: &str, detail: String) -> OnnxError {
    OnnxError::Unsupported {
        node: node_name(node),
        what: what.to_owned(),
        detail,
    }
}

/// [`OnnxError::Shape`] unless `t` has `shape`.
fn expect_shape(name: &str, t: &Tensor, shape: &[usize]) -> Result<(), OnnxError> {
    if t.shape == shape {
        Ok(())
    } else {
        Err(OnnxError::Shape {
            name: name.to_owned(),
            expected: shape.to_vec(),
            found: t.shape.clone(),
        })
    }
}

/// ONNX data types the loader converts to f32.
const FLOAT: i32 = 1;
/// ONNX integer types the loader reads for a `Slice`'s bounds.
const INT32: i32 = 6;
const INT64: i32 = 7;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;
const BFLOAT16: i32 = 16;

/// A tensor's values as f32 (row-major) with its shape, every value finite.
fn tensor(t: &TensorProto) -> Result<Tensor, OnnxError> {
    let name = t.name.clone();
    if t.data_location != 0 {
        return Err(OnnxError::Malformed {
            reason: format!(
                "tensor `{name}` is stored in an external file, which is not supported"
            ),
        });
    }
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| OnnxError::Malformed {
            reason: format!("tensor `{name}` has a negative dimension"),
        })?;
    let count = shape
        .iter()
        .try_fold(1_usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| OnnxError::Malformed {
            reason: format!("tensor `{name}` has more elements than memory can hold"),
        })?;
    let raw = &t.raw_data;
    let values: Vec<f32> = match t.data_type {
        FLOAT if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        FLOAT => t.float_data.clone(),
        #[expect(
            clippy::cast_possible_truncation,
            reason = "f64 weights rounded to f32"
        )]
        DOUBLE if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        #[expect(
            clippy::cast_possible_truncation,
            reason = "f64 weights rounded to f32"
        )]
        DOUBLE => t.double_data.iter().map(|&v| v as f32).collect(),
        FLOAT16 | BFLOAT16 => {
            let bits: Vec<u16> = if raw.is_empty() {
                t.int32_data
                    .iter()
                    .map(|&v| v.to_le_bytes())
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect()
            } else {
                raw.chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect()
            };
            if t.data_type == FLOAT16 {
                bits.into_iter()
                    .map(|b| crate::F16::from_bits(b).to_f32())
                    .collect()
            } else {
                bits.into_iter()
                    .map(|b| f32::from_bits(u32::from(b) << 16))
                    .collect()
            }
        }
        found => return Err(OnnxError::Dtype { name, found }),
    };
    if values.len() != count {
        return Err(OnnxError::Malformed {
            reason: format!(
                "tensor `{name}` holds {} values for its shape {shape:?}",
                values.len()
            ),
        });
    }
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(OnnxError::NonFinite { name, index, value });
    }
    Ok(Tensor { shape, values })
}
