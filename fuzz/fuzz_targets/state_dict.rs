//! Any bytes through the loader: parsing, every tensor's conversion, cells, stacks and readouts
//! of several sizes and namings, strictly and with each relaxed option. Loading must return a
//! value or a `LoadError`, never panic; the strict checks' errors must name what is in the file;
//! and an option must turn off its own kind of error and change nothing else. The in-place
//! loaders must agree with the by-value ones.

#![no_main]

use std::fmt::Debug;

use elman::stack::Stack2;
use elman::torch::{Layer, LoadError, LoadOptions, NonFinite, StateDict, Unused};
use elman::{Readout, Relu, RnnCell};
use libfuzzer_sys::fuzz_target;

/// Every load the target tries, on one state dict.
struct Loads {
    cell: Result<RnnCell<3, 2>, LoadError>,
    layer1: Result<RnnCell<1, 16>, LoadError>,
    relu_cell: Result<RnnCell<3, 2, Relu>, LoadError>,
    bare_cell: Result<RnnCell<3, 2>, LoadError>,
    rnn: Result<RnnCell<3, 2>, LoadError>,
    rnn2: Result<Stack2<3, 2>, LoadError>,
    head: Result<Readout<2, 4>, LoadError>,
    bare_head: Result<Readout<2, 4>, LoadError>,
    wide_head: Result<Readout<16, 3>, LoadError>,
    statics: Result<String, LoadError>,
}

impl Loads {
    fn of(state: &StateDict) -> Self {
        Self {
            cell: state.rnn_cell::<3, 2>("rnn", 0),
            layer1: state.rnn_cell::<1, 16>("rnn", 1),
            relu_cell: state.rnn_cell_with::<3, 2, Relu>("cell", Layer::Cell),
            bare_cell: state.rnn_cell::<3, 2>("", Layer::Cell),
            rnn: state.rnn::<RnnCell<3, 2>>("rnn"),
            rnn2: state.rnn::<Stack2<3, 2>>("rnn"),
            head: state.readout::<2, 4>("head"),
            bare_head: state.readout::<2, 4>(""),
            wide_head: state.readout::<16, 3>("head"),
            statics: state.rust_statics("rnn", "head", "M"),
        }
    }
}

/// Whether `options` turn off the kind of `error`.
fn relaxed_away(error: &LoadError, options: LoadOptions) -> bool {
    match error {
        LoadError::Unused { .. } | LoadError::ExtraLayer { .. } => options.unused == Unused::Ignore,
        LoadError::NonFinite { .. } => options.non_finite == NonFinite::Allow,
        _ => false,
    }
}

/// A strict check's error names what is in the file.
fn names_what_is_there(state: &StateDict, error: &LoadError) {
    match error {
        LoadError::Unused { names, .. } => {
            assert!(!names.is_empty(), "{error}");
            assert!(names.iter().all(|n| state.shape(n).is_some()), "{error}");
        }
        LoadError::NonFinite { name, index, value } => {
            assert!(!value.is_finite(), "{error}");
            if let Ok((shape, values)) = state.values(name) {
                // The tensor's own element, at that index.
                assert_eq!(index.len(), shape.len(), "{error}");
                let flat = index
                    .iter()
                    .zip(&shape)
                    .fold(0, |flat, (i, extent)| flat * extent + i);
                assert_eq!(values[flat].to_bits(), value.to_bits(), "{error}");
            } else {
                // A folded bias that overflowed.
                assert!(name.starts_with('(') && name.contains(" + "), "{error}");
            }
        }
        _ => {}
    }
}

/// One load, strictly and under `options`: what loads strictly loads the same; a strict error
/// that the options do not turn off is the same error; the kinds they turn off do not occur.
fn same<T: PartialEq + Debug>(
    state: &StateDict,
    strict: &Result<T, LoadError>,
    relaxed: &Result<T, LoadError>,
    options: LoadOptions,
) {
    if let Err(error) = relaxed {
        assert!(!relaxed_away(error, options), "{options:?}: {error}");
    }
    match strict {
        Ok(value) => assert_eq!(relaxed.as_ref().ok(), Some(value), "{options:?}"),
        Err(error) => {
            names_what_is_there(state, error);
            if !relaxed_away(error, options) {
                let relaxed = relaxed.as_ref().err().map(ToString::to_string);
                assert_eq!(relaxed, Some(error.to_string()), "{options:?}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(state) = StateDict::from_bytes(data) else {
        return;
    };
    for name in state.names() {
        let _ = state.values(name);
        let _ = state.shape(name);
    }
    let _ = state.check_no_extra_layers("rnn", 1);

    let strict = Loads::of(&state);
    for (unused, non_finite) in [
        (Unused::Ignore, NonFinite::Reject),
        (Unused::Reject, NonFinite::Allow),
        (Unused::Ignore, NonFinite::Allow),
    ] {
        let options = LoadOptions { unused, non_finite };
        let relaxed = Loads::of(&state.clone().with_options(options));
        same(&state, &strict.cell, &relaxed.cell, options);
        same(&state, &strict.layer1, &relaxed.layer1, options);
        same(&state, &strict.relu_cell, &relaxed.relu_cell, options);
        same(&state, &strict.bare_cell, &relaxed.bare_cell, options);
        same(&state, &strict.rnn, &relaxed.rnn, options);
        same(&state, &strict.rnn2, &relaxed.rnn2, options);
        same(&state, &strict.head, &relaxed.head, options);
        same(&state, &strict.bare_head, &relaxed.bare_head, options);
        same(&state, &strict.wide_head, &relaxed.wide_head, options);
        same(&state, &strict.statics, &relaxed.statics, options);
    }

    // The in-place loaders load what the by-value ones load, and fail where they fail (each
    // may name another of a file's faults first); a failed single-layer load writes nothing.
    let mut cell: RnnCell<3, 2> = RnnCell::default();
    let into = state.rnn_cell_into("rnn", 0, &mut cell);
    match &strict.cell {
        Ok(expected) => assert!(into.is_ok() && &cell == expected),
        Err(_) => assert!(into.is_err() && cell == RnnCell::default()),
    }
    let mut stack: Stack2<3, 2> = Stack2::new(RnnCell::default(), RnnCell::default());
    let into = state.rnn_into("rnn", &mut stack);
    match &strict.rnn2 {
        Ok(expected) => assert!(into.is_ok() && &stack == expected),
        Err(_) => assert!(into.is_err()),
    }
    let mut head: Readout<2, 4> = Readout::default();
    let into = state.readout_into("head", &mut head);
    match &strict.head {
        Ok(expected) => assert!(into.is_ok() && &head == expected),
        Err(_) => assert!(into.is_err() && head == Readout::default()),
    }
});
