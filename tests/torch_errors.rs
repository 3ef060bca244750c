//! The loader on files built by hand: PyTorch's names and layout, every dtype it converts, and
//! every kind of bad input, each giving its own `LoadError`, none panicking.

#![cfg(feature = "std")]
#![allow(clippy::float_cmp, reason = "the loaded values are exact")]

use elman::nalgebra::{matrix, vector};
use elman::stack::Stack2;
use elman::torch::{Layer, LoadError, LoadOptions, NonFinite, StateDict, Unused};
use elman::{HalfCell, Readout, Relu, RnnCell};
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

/// `torch.save` writes a zip archive: said so, with the call that writes safetensors, rather
/// than as the header length its first bytes would be.
#[test]
fn a_torch_save_zip_is_named() {
    // A zip's local file header, as `torch.save` begins, then some of an entry's name.
    let mut bytes = b"PK\x03\x04\x00\x00\x08\x00\x00\x00".to_vec();
    bytes.extend_from_slice(b"archive/data.pkl");
    match StateDict::from_bytes(&bytes) {
        Err(error @ LoadError::Malformed { .. }) => {
            let message = error.to_string();
            assert!(message.contains("torch.save"), "{message}");
            assert!(message.contains("save_file"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The legacy format, a pickle: protocol 2, then the magic number `torch.save` writes.
    let legacy = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.";
    match StateDict::from_bytes(legacy) {
        Err(error @ LoadError::Malformed { .. }) => {
            let message = error.to_string();
            assert!(message.contains("pickle"), "{message}");
            assert!(message.contains("save_file"), "{message}");
        }
        other => panic!("{other:?}"),
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

/// A model saved from `nn.DataParallel` (or nested in another module) has its tensors under a
/// longer prefix: the error names them and the prefix to load.
#[test]
fn a_missing_tensor_under_a_longer_prefix_names_it() {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = rnn_3x2()
        .into_iter()
        .map(|(n, shape, values)| (format!("module.{n}"), shape, values))
        .collect();
    let tensors: Vec<(&str, Vec<usize>, Vec<f32>)> = tensors
        .iter()
        .map(|(n, shape, values)| (n.as_str(), shape.clone(), values.clone()))
        .collect();
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    assert!(
        matches!(&err, LoadError::Missing { name, similar } if name == "rnn.weight_ih_l0" && similar == &["module.rnn.weight_ih_l0"]),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("load the prefix `module.rnn`"),
        "{message}"
    );
    // Loaded under that prefix, it is the same cell.
    let moved = state.rnn_cell::<3, 2>("module.rnn", 0).expect("loads");
    let plain = StateDict::from_bytes(&file(&rnn_3x2())).unwrap();
    assert_eq!(moved, plain.rnn_cell::<3, 2>("rnn", 0).unwrap());
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

/// The state dict with unused tensors ignored.
fn ignoring_unused(state: StateDict) -> StateDict {
    state.with_options(LoadOptions {
        unused: Unused::Ignore,
        ..LoadOptions::default()
    })
}

/// The state dict with non-finite weights allowed.
fn allowing_non_finite(state: StateDict) -> StateDict {
    state.with_options(LoadOptions {
        non_finite: NonFinite::Allow,
        ..LoadOptions::default()
    })
}

/// The names an `Unused` error lists, or a panic naming the error it is instead.
fn unused(err: &LoadError, module: &str) -> Vec<String> {
    match err {
        LoadError::Unused { prefix, names } if prefix == module => {
            let message = err.to_string();
            for name in names {
                assert!(message.contains(name.as_str()), "{message}");
            }
            assert!(message.contains("Unused::Ignore"), "{message}");
            names.clone()
        }
        other => panic!("expected Unused under `{module}`, got {other:?}"),
    }
}

#[test]
fn strict_is_the_default() {
    let state = StateDict::from_bytes(&file(&rnn_3x2())).unwrap();
    assert_eq!(state.options(), LoadOptions::default());
    assert_eq!(
        LoadOptions::default(),
        LoadOptions {
            unused: Unused::Reject,
            non_finite: NonFinite::Reject
        }
    );
    let options = LoadOptions {
        unused: Unused::Ignore,
        non_finite: NonFinite::Allow,
    };
    assert_eq!(state.with_options(options).options(), options);
}

#[test]
fn a_bidirectional_rnn_is_not_its_forward_half() {
    let forward = StateDict::from_bytes(&file(&rnn_3x2())).unwrap();
    let mut tensors = rnn_3x2();
    tensors.push(("rnn.weight_ih_l0_reverse", vec![2, 3], vec![-1.0; 6]));
    tensors.push(("rnn.weight_hh_l0_reverse", vec![2, 2], vec![-1.0; 4]));
    tensors.push(("rnn.bias_ih_l0_reverse", vec![2], vec![-1.0; 2]));
    tensors.push(("rnn.bias_hh_l0_reverse", vec![2], vec![-1.0; 2]));
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let reverse = [
        "rnn.bias_hh_l0_reverse",
        "rnn.bias_ih_l0_reverse",
        "rnn.weight_hh_l0_reverse",
        "rnn.weight_ih_l0_reverse",
    ];
    let whole = state.rnn::<RnnCell<3, 2>>("rnn").unwrap_err();
    assert_eq!(unused(&whole, "rnn"), reverse);
    assert!(whole.to_string().contains("bidirectional"), "{whole}");
    // Layer 0 alone: the reverse tensors are layer 0's.
    let layer = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    assert_eq!(unused(&layer, "rnn"), reverse);
    // The in-place loaders are as strict, and write nothing.
    let mut cell: RnnCell<3, 2> = RnnCell::default();
    let err = state.rnn_into("rnn", &mut cell).unwrap_err();
    assert_eq!(unused(&err, "rnn"), reverse);
    let err = state.rnn_cell_into("rnn", 0, &mut cell).unwrap_err();
    assert_eq!(unused(&err, "rnn"), reverse);
    assert!(state.rnn_boxed::<RnnCell<3, 2>>("rnn").is_err());
    assert_eq!(cell, RnnCell::default());
    // On purpose, the forward half: the same cell as from the forward tensors alone.
    let state = ignoring_unused(state);
    let expected: RnnCell<3, 2> = forward.rnn("rnn").unwrap();
    assert_eq!(state.rnn::<RnnCell<3, 2>>("rnn").unwrap(), expected);
    assert_eq!(state.rnn_cell::<3, 2>("rnn", 0).unwrap(), expected);
}

#[test]
fn a_stray_tensor_under_the_prefix() {
    let mut tensors = rnn_3x2();
    tensors.push(("rnn.weight_hr_l0", vec![1, 2], vec![1.0, 1.0]));
    tensors.push(("head.weight", vec![1, 2], vec![2.0, 3.0]));
    tensors.push(("head.weight_g", vec![1, 1], vec![1.0]));
    tensors.push(("head.weight_v", vec![1, 2], vec![2.0, 3.0]));
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn::<RnnCell<3, 2>>("rnn").unwrap_err();
    assert_eq!(unused(&err, "rnn"), ["rnn.weight_hr_l0"]);
    assert!(!err.to_string().contains("bidirectional"), "{err}");
    let err = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    assert_eq!(unused(&err, "rnn"), ["rnn.weight_hr_l0"]);
    let err = state.readout::<2, 1>("head").unwrap_err();
    assert_eq!(unused(&err, "head"), ["head.weight_g", "head.weight_v"]);
    let mut head = elman::Readout::<2, 1>::default();
    let err = state.readout_into("head", &mut head).unwrap_err();
    assert_eq!(unused(&err, "head"), ["head.weight_g", "head.weight_v"]);
    assert_eq!(head, elman::Readout::default());
    let err = state.rust_statics("rnn", "head", "M").unwrap_err();
    assert_eq!(unused(&err, "rnn"), ["rnn.weight_hr_l0"]);

    let state = ignoring_unused(state);
    assert!(state.rnn::<RnnCell<3, 2>>("rnn").is_ok());
    assert!(state.rnn_cell::<3, 2>("rnn", 0).is_ok());
    assert_eq!(
        state.readout::<2, 1>("head").unwrap().weight(),
        &matrix![2.0, 3.0]
    );
    assert!(state.rust_statics("rnn", "head", "M").is_ok());
}

/// A two-layer `nn.RNN(3, 2)` under `rnn`, a head, and a module whose name starts with `rnn`.
fn two_layers_and_neighbours() -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    let mut tensors = rnn_3x2();
    tensors.push(("rnn.weight_ih_l1", vec![2, 2], vec![0.5; 4]));
    tensors.push(("rnn.weight_hh_l1", vec![2, 2], vec![0.25; 4]));
    tensors.push(("rnn2.weight_ih_l0", vec![2, 3], vec![0.0; 6]));
    tensors.push(("rnn2.weight_hh_l0", vec![2, 2], vec![0.0; 4]));
    tensors.push(("rnnx", vec![1], vec![0.0]));
    tensors.push(("head.weight", vec![1, 2], vec![2.0, 3.0]));
    tensors
}

#[test]
fn other_layers_and_modules_are_not_unused() {
    let state = StateDict::from_bytes(&file(&two_layers_and_neighbours())).unwrap();
    // Layer by layer, and whole: `rnn2.*`, `rnnx` and `head.*` are not under `rnn.`.
    let lower = state.rnn_cell::<3, 2>("rnn", 0).expect("layer 0");
    let upper = state.rnn_cell::<2, 2>("rnn", 1).expect("layer 1");
    let net: Stack2<3, 2> = state.rnn("rnn").expect("both layers");
    assert_eq!((net.lower, net.upper), (lower, upper));
    assert!(state.rnn::<RnnCell<3, 2>>("rnn2").is_ok());
    assert!(state.readout::<2, 1>("head").is_ok());

    // A stray tensor of layer 1 is layer 1's, not layer 0's; `_l10` is neither.
    let mut tensors = two_layers_and_neighbours();
    tensors.push(("rnn.weight_hr_l1", vec![1, 2], vec![1.0; 2]));
    tensors.push(("rnn.weight_hr_l10", vec![1, 2], vec![1.0; 2]));
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    assert!(state.rnn_cell::<3, 2>("rnn", 0).is_ok());
    let err = state.rnn_cell::<2, 2>("rnn", 1).unwrap_err();
    assert_eq!(unused(&err, "rnn"), ["rnn.weight_hr_l1"]);
    let err = state.rnn::<Stack2<3, 2>>("rnn").unwrap_err();
    assert_eq!(
        unused(&err, "rnn"),
        ["rnn.weight_hr_l1", "rnn.weight_hr_l10"]
    );
}

#[test]
fn layers_beyond_the_ones_asked_for() {
    let state = StateDict::from_bytes(&file(&two_layers_and_neighbours())).unwrap();
    let err = state.rnn::<RnnCell<3, 2>>("rnn").unwrap_err();
    assert!(
        matches!(&err, LoadError::ExtraLayer { prefix, layer: 1 } if prefix == "rnn"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("rnn.*_l1") && message.contains("Unused::Ignore"),
        "{message}"
    );
    let err = state.rust_statics("rnn", "head", "M").unwrap_err();
    assert!(
        matches!(&err, LoadError::ExtraLayer { layer: 1, .. }),
        "{err:?}"
    );
    // A further layer beside another unused tensor: all are named.
    let mut tensors = two_layers_and_neighbours();
    tensors.push(("rnn.weight_ih_l0_reverse", vec![2, 3], vec![0.0; 6]));
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn::<RnnCell<3, 2>>("rnn").unwrap_err();
    assert_eq!(
        unused(&err, "rnn"),
        [
            "rnn.weight_hh_l1",
            "rnn.weight_ih_l0_reverse",
            "rnn.weight_ih_l1"
        ]
    );
    // Ignoring unused tensors, the first layer alone, as layer 0 loads it.
    let state = ignoring_unused(state);
    let first: RnnCell<3, 2> = state.rnn("rnn").expect("the first layer");
    assert_eq!(first, state.rnn_cell::<3, 2>("rnn", 0).unwrap());
    // `check_no_extra_layers` is an explicit check, whatever the options.
    assert!(matches!(
        state.check_no_extra_layers("rnn", 1),
        Err(LoadError::ExtraLayer { layer: 1, .. })
    ));
}

#[test]
fn a_bare_rnn_cell_owns_the_whole_file() {
    let cell = [
        ("weight_ih", vec![2, 1], vec![1.0, -1.0]),
        ("weight_hh", vec![2, 2], vec![0.0; 4]),
    ];
    let state = StateDict::from_bytes(&file(&cell)).unwrap();
    assert!(state.rnn_cell::<1, 2>("", Layer::Cell).is_ok());
    let mut tensors = cell.to_vec();
    tensors.push(("step", vec![1], vec![0.0]));
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn_cell::<1, 2>("", Layer::Cell).unwrap_err();
    assert_eq!(unused(&err, ""), ["step"]);
    assert!(err.to_string().starts_with("the state dict holds"), "{err}");
    assert!(
        ignoring_unused(state)
            .rnn_cell::<1, 2>("", Layer::Cell)
            .is_ok()
    );
}

#[test]
fn non_finite_weights_are_named_with_their_first_bad_index() {
    let cases: [(&str, usize, f32, &[usize]); 4] = [
        ("rnn.weight_ih_l0", 4, f32::NEG_INFINITY, &[1, 1]),
        ("rnn.weight_hh_l0", 1, f32::NAN, &[0, 1]),
        ("rnn.bias_hh_l0", 0, f32::INFINITY, &[0]),
        ("head.weight", 0, f32::NAN, &[0, 0]),
    ];
    for (bad, flat, value, index) in cases {
        let mut tensors = rnn_3x2();
        tensors.push(("head.weight", vec![1, 2], vec![2.0, 3.0]));
        for (name, _, values) in &mut tensors {
            if *name == bad {
                // A later bad element, where there is room, is not the first.
                if let Some(later) = values.get_mut(flat + 1) {
                    *later = f32::NAN;
                }
                values[flat] = value;
            }
        }
        let state = StateDict::from_bytes(&file(&tensors)).unwrap();
        let err = if bad.starts_with("rnn") {
            state.rnn::<RnnCell<3, 2>>("rnn").unwrap_err()
        } else {
            state.readout::<2, 1>("head").unwrap_err()
        };
        match &err {
            LoadError::NonFinite {
                name,
                index: found,
                value: v,
            } => {
                assert_eq!((name.as_str(), found.as_slice()), (bad, index));
                assert_eq!(v.to_bits(), value.to_bits(), "{bad}");
            }
            other => panic!("{bad}: {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(bad) && message.contains("NonFinite::Allow"));
        let codegen = state.rust_statics("rnn", "head", "M").unwrap_err();
        assert!(
            matches!(&codegen, LoadError::NonFinite { name, .. } if name == bad),
            "{codegen:?}"
        );

        // Allowed, the values load as they are.
        let state = allowing_non_finite(state);
        let cell: RnnCell<3, 2> = state.rnn("rnn").expect("allowed");
        let head: Readout<2, 1> = state.readout("head").expect("allowed");
        let h = cell.step(&vector![1.0, 1.0, 1.0], &vector![1.0, 1.0]);
        let y = head.logits(&h);
        assert!(y[0].is_nan(), "{bad}: {y:?}");
        assert!(state.rust_statics("rnn", "head", "M").is_ok());
    }
    // The first bad index in each layout: [`rows, columns`] for a weight, read row-major.
    let state = StateDict::from_bytes(&file(&[
        (
            "rnn.weight_ih_l0",
            vec![2, 3],
            vec![0.0, 0.0, 0.0, 0.0, 0.0, f32::NAN],
        ),
        ("rnn.weight_hh_l0", vec![2, 2], vec![0.0; 4]),
    ]))
    .unwrap();
    assert_eq!(
        state.rnn_cell::<3, 2>("rnn", 0).unwrap_err().to_string(),
        "`rnn.weight_ih_l0[1, 2]` is NaN; `StateDict::with_options` with `NonFinite::Allow` \
         loads non-finite weights"
    );
}

#[test]
fn a_folded_bias_that_overflows() {
    let mut tensors = rnn_3x2();
    for (name, _, values) in &mut tensors {
        if name.starts_with("rnn.bias") {
            *values = vec![0.0, f32::MAX];
        }
    }
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    match &err {
        LoadError::NonFinite { name, index, value } => {
            assert_eq!(name, "(rnn.bias_ih_l0 + rnn.bias_hh_l0)");
            assert_eq!(index, &[1]);
            assert_eq!(*value, f32::INFINITY);
        }
        other => panic!("{other:?}"),
    }
    let cell: RnnCell<3, 2> = allowing_non_finite(state).rnn("rnn").unwrap();
    assert_eq!(cell.bias(), &vector![0.0, f32::INFINITY]);
}

#[test]
fn an_unreadable_path() {
    let err = StateDict::read("tests/fixtures/no-such-file.safetensors").unwrap_err();
    assert!(
        matches!(&err, LoadError::Io { path, .. } if path.ends_with("no-such-file.safetensors"))
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn a_weight_beyond_half_range_is_named_when_loaded_as_a_half_cell() {
    let mut tensors = rnn_3x2();
    tensors[1].2[2] = 70_000.0;
    let state = StateDict::from_bytes(&file(&tensors)).expect("a valid file");
    let named = |e: &LoadError| {
        matches!(e, LoadError::HalfRange { name, index: [1, 0], value }
            if name == "rnn.weight_hh_l0" && *value == 70_000.0)
    };
    let by_value = state
        .rnn::<HalfCell<3, 2>>("rnn")
        .expect_err("out of range");
    assert!(named(&by_value), "{by_value:?}");
    assert!(
        by_value
            .to_string()
            .contains("`rnn.weight_hh_l0[1, 0]` is 70000")
    );
    // In place: the error leaves the cell as it was.
    let before = HalfCell::from_cell(&RnnCell::<3, 2>::from_row_major(
        [[0.5; 3]; 2],
        [[0.25; 2]; 2],
        [0.0; 2],
    ))
    .expect("in range");
    let mut cell = before.clone();
    let in_place = state.rnn_into("rnn", &mut cell).expect_err("out of range");
    assert!(named(&in_place), "{in_place:?}");
    assert_eq!(cell, before);
    // The same file with the weight in range loads, as the f32 cell rounded.
    tensors[1].2[2] = 3.0;
    let state = StateDict::from_bytes(&file(&tensors)).expect("a valid file");
    let half: HalfCell<3, 2> = state.rnn("rnn").expect("in range");
    let f32_cell: RnnCell<3, 2> = state.rnn("rnn").expect("loads");
    assert_eq!(half, HalfCell::from_cell(&f32_cell).expect("in range"));
}

/// A network is the whole model: a module beside the RNN and its readout (a second head, an
/// embedding) is unused, as `load_state_dict(strict=True)` would say of a model without it; the
/// parts still load alone, and ignoring unused tensors loads the network.
#[test]
fn a_network_owns_the_whole_file() {
    let mut tensors = rnn_3x2();
    tensors.push(("head.weight", vec![1, 2], vec![2.0, 3.0]));
    tensors.push(("head.bias", vec![1], vec![0.5]));
    tensors.push(("head2.weight", vec![1, 1], vec![4.0]));
    let state = StateDict::from_bytes(&file(&tensors)).unwrap();
    let err = state
        .network::<RnnCell<3, 2>, 3, 2, 1>("rnn", "head")
        .unwrap_err();
    assert_eq!(unused(&err, ""), ["head2.weight"]);
    assert!(err.to_string().starts_with("the state dict holds"), "{err}");
    let err = state
        .network_boxed::<RnnCell<3, 2>, 3, 2, 1>("rnn", "head")
        .unwrap_err();
    assert_eq!(unused(&err, ""), ["head2.weight"]);
    assert!(state.rnn::<RnnCell<3, 2>>("rnn").is_ok());
    assert!(state.readout::<2, 1>("head").is_ok());
    let net = ignoring_unused(state)
        .network::<RnnCell<3, 2>, 3, 2, 1>("rnn", "head")
        .expect("loads with head2 ignored");
    assert_eq!(net.readout().bias()[0], 0.5);
}

/// An LSTM's (or GRU's) state dict has the names of an `nn.RNN`'s but its gates' weights
/// stacked: the shape error says so, whichever `H` the type asks for.
#[test]
fn a_gated_rnn_is_named_in_the_shape_error() {
    let lstm = [
        ("rnn.weight_ih_l0", vec![8, 3], vec![0.0; 24]),
        ("rnn.weight_hh_l0", vec![8, 2], vec![0.0; 16]),
    ];
    let state = StateDict::from_bytes(&file(&lstm)).unwrap();
    let err = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    assert!(err.to_string().contains("an LSTM's four gates"), "{err}");
    let err = state.rnn_cell::<3, 8>("rnn", 0).unwrap_err();
    assert!(
        matches!(&err, LoadError::Shape { name, .. } if name == "rnn.weight_hh_l0"),
        "{err:?}"
    );
    assert!(err.to_string().contains("an LSTM's four gates"), "{err}");
    let gru = [("rnn.weight_ih_l0", vec![6, 3], vec![0.0; 18])];
    let state = StateDict::from_bytes(&file(&gru)).unwrap();
    let err = state.rnn_cell::<3, 2>("rnn", 0).unwrap_err();
    assert!(err.to_string().contains("a GRU's three gates"), "{err}");
    // A plain size mismatch says nothing of gates.
    let err = StateDict::from_bytes(&file(&rnn_3x2()))
        .unwrap()
        .rnn_cell::<4, 2>("rnn", 0)
        .unwrap_err();
    assert!(!err.to_string().contains("gates"), "{err}");
}
