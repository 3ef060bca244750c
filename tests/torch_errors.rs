//! The loader on files built by hand: PyTorch's names and layout, every dtype it converts, and
//! every kind of bad input, each giving its own `LoadError`, none panicking.

#![cfg(feature = "std")]
#![allow(clippy::float_cmp, reason = "the loaded values are exact")]

use elman::nalgebra::{matrix, vector};
use elman::torch::{Layer, LoadError, StateDict};
use elman::{Relu, RnnCell};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// A safetensors file of f32 tensors, row-major as given.
fn file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| {
            (
                (*n).to_owned(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).expect("consistent"),
            )
        })
        .collect();
    safetensors::serialize(views, None).expect("serializable")
}

/// A one-layer `nn.RNN(3, 2)` under `rnn`, with a non-square `W_ih` and a square `W_hh`.
fn rnn_3x2() -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    vec![
        (
            "rnn.weight_ih_l0",
            vec![2, 3],
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ),
        ("rnn.weight_hh_l0", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]),
        ("rnn.bias_ih_l0", vec![2], vec![0.5, -0.5]),
        ("rnn.bias_hh_l0", vec![2], vec![0.25, 0.25]),
    ]
}

#[test]
fn row_major_weights_and_folded_biases() {
    let state = StateDict::from_bytes(&file(&rnn_3x2())).expect("loads");
    let cell: RnnCell<3, 2> = state.rnn_cell("rnn", 0).expect("a cell");
    assert_eq!(cell.w_xh(), &matrix![1.0, 2.0, 3.0; 4.0, 5.0, 6.0]);
    assert_eq!(cell.w_hh(), &matrix![1.0, 2.0; 3.0, 4.0]);
    assert_eq!(cell.bias(), &vector![0.75, -0.25]);
    // By hand, x = [1, 0, -1], h = [0.5, -0.5]:
    // row 1: 1 − 3 + 0.5 − 1 + 0.75 = −1.75;  row 2: 4 − 6 + 1.5 − 2 − 0.25 = −2.75.
    let relu: RnnCell<3, 2, Relu> = state.rnn_cell_with("rnn", 0).expect("a relu cell");
    assert_eq!(
        relu.step(&vector![1.0, 0.0, -1.0], &vector![0.5, -0.5]),
        vector![0.0, 0.0]
    );
    let h = cell.step(&vector![1.0, 0.0, -1.0], &vector![0.5, -0.5]);
    assert!((h[0] - (-1.75_f32).tanh()).abs() < 4e-7 && (h[1] - (-2.75_f32).tanh()).abs() < 4e-7);
}

#[test]
fn rnn_cell_names_and_missing_biases() {
    let state = StateDict::from_bytes(&file(&[
        ("cell.weight_ih", vec![2, 1], vec![1.0, -1.0]),
        ("cell.weight_hh", vec![2, 2], vec![0.0; 4]),
        ("out.weight", vec![1, 2], vec![2.0, 3.0]),
    ]))
    .expect("loads");
    let cell: RnnCell<1, 2> = state
        .rnn_cell("cell", Layer::Cell)
        .expect("nn.RNNCell names");
    assert_eq!(cell.bias(), &vector![0.0, 0.0], "no biases: bias=False");
    let head = state
        .readout::<2, 1>("out")
        .expect("nn.Linear without bias");
    assert_eq!(head.logits(&vector![1.0, 1.0]), vector![5.0]);
}

#[test]
fn dtypes_f64_f16_bf16_convert() {
    let f64s: Vec<u8> = [0.5_f64, -1.25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let f16s: Vec<u8> = [half::f16::from_f32(0.5), half::f16::from_f32(-1.25)]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bf16s: Vec<u8> = [half::bf16::from_f32(0.5), half::bf16::from_f32(-1.25)]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let views = vec![
        (
            "a.weight",
            TensorView::new(Dtype::F64, vec![1, 2], &f64s).unwrap(),
        ),
        (
            "b.weight",
            TensorView::new(Dtype::F16, vec![1, 2], &f16s).unwrap(),
        ),
        (
            "c.weight",
            TensorView::new(Dtype::BF16, vec![1, 2], &bf16s).unwrap(),
        ),
    ];
    let state = StateDict::from_bytes(&safetensors::serialize(views, None).unwrap()).unwrap();
    for prefix in ["a", "b", "c"] {
        let head = state.readout::<2, 1>(prefix).expect("converted");
        assert_eq!(head.weight(), &matrix![0.5, -1.25], "{prefix}");
    }
}

#[test]
fn a_truncated_file_fails_when_read() {
    let bytes = file(&rnn_3x2());
    for len in 0..bytes.len() {
        match StateDict::from_bytes(&bytes[..len]) {
            Err(LoadError::Malformed { reason }) => assert!(!reason.is_empty()),
            other => panic!("truncated to {len} of {} bytes: {other:?}", bytes.len()),
        }
    }
}

#[test]
fn random_bytes_are_malformed() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..2000 {
        let len = usize::try_from(next() % 600).unwrap();
        let mut bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if round % 2 == 0 && len >= 8 {
            // A plausible header length, so the parser gets past the first check.
            let header = u64::try_from(len - 8).unwrap() / 2;
            bytes[..8].copy_from_slice(&header.to_le_bytes());
        }
        assert!(
            matches!(
                StateDict::from_bytes(&bytes),
                Err(LoadError::Malformed { .. })
            ),
            "round {round}"
        );
    }
}

#[test]
fn a_header_that_lies_about_sizes() {
    // The header promises 12 bytes of data for a [2, 2] f32 tensor (16 bytes).
    let header = br#"{"rnn.weight_hh_l0":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 12]);
    assert!(matches!(
        StateDict::from_bytes(&bytes),
        Err(LoadError::Malformed { .. })
    ));
    // ... and here offsets beyond the end of the file.
    let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4000]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0; 4]);
    assert!(matches!(
        StateDict::from_bytes(&bytes),
        Err(LoadError::Malformed { .. })
    ));
}

#[test]
fn a_tensor_of_the_wrong_shape() {
    let state = StateDict::from_bytes(&file(&rnn_3x2())).unwrap();
    let err = state.rnn_cell::<4, 2>("rnn", 0).unwrap_err();
    match &err {
        LoadError::Shape {
            name,
            expected,
            found,
        } => {
            assert_eq!(
                (name.as_str(), expected.as_slice(), found.as_slice()),
                ("rnn.weight_ih_l0", &[2, 4][..], &[2, 3][..])
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("rnn.weight_ih_l0"));
}

#[test]
fn a_tensor_of_an_unsupported_dtype() {
    let ints: Vec<u8> = [1_i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![(
        "head.weight",
        TensorView::new(Dtype::I64, vec![1, 2], &ints).unwrap(),
    )];
    let state = StateDict::from_bytes(&safetensors::serialize(views, None).unwrap()).unwrap();
    let err = state.readout::<2, 1>("head").unwrap_err();
    assert!(
        matches!(&err, LoadError::Dtype { name, found } if name == "head.weight" && found == "I64"),
        "{err:?}"
    );
}

#[test]
fn a_missing_tensor_names_its_neighbours() {
    let mut tensors = rnn_3x2();
    tensors.retain(|(n, _, _)| *n != "rnn.weight_hh_l0");
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    match &err {
        LoadError::Missing { name, similar } => {
            assert_eq!(name, "rnn.weight_hh_l0");
            assert_eq!(
                similar,
                &["rnn.bias_hh_l0", "rnn.bias_ih_l0", "rnn.weight_ih_l0"]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("rnn.weight_ih_l0"));
}

#[test]
fn a_missing_bias() {
    let mut tensors = rnn_3x2();
    tensors.retain(|(n, _, _)| *n != "rnn.bias_hh_l0");
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    assert!(
        matches!(&err, LoadError::HalfBias { present, missing } if present == "rnn.bias_ih_l0" && missing == "rnn.bias_hh_l0"),
        "{err:?}"
    );
}

#[test]
fn an_extra_layer() {
    let mut tensors = rnn_3x2();
    tensors.push(("rnn.weight_ih_l1", vec![2, 2], vec![0.0; 4]));
    tensors.push(("rnn.weight_hh_l1", vec![2, 2], vec![0.0; 4]));
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn::<RnnCell<3, 2>>("rnn").unwrap_err();
    assert!(
        matches!(&err, LoadError::ExtraLayer { prefix, layer: 1 } if prefix == "rnn"),
        "{err:?}"
    );
}

#[test]
fn an_unreadable_path() {
    let err = StateDict::read("tests/fixtures/no-such-file.safetensors").unwrap_err();
    assert!(
        matches!(&err, LoadError::Io { path, .. } if path.ends_with("no-such-file.safetensors"))
    );
    assert!(std::error::Error::source(&err).is_some());
}
