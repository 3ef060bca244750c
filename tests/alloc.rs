//! The step allocates nothing: every call below runs under a counting global allocator
//! (`allocation-counter`, which counts per thread), and the count must stay at zero.

#![allow(clippy::cast_precision_loss, reason = "small indices")]

use elman::nalgebra::{SMatrix, SVector};
use elman::stack::{Stack, Stack2};
use elman::{
    Backend, Bank, Layers, OnSwap, Readout, Relu, Rnn, Rnn2, RnnBank, RnnCell, argmax, fast_tanh,
    reference, softmax,
};

fn steps_without_allocating<const I: usize, const H: usize>() {
    let cell: RnnCell<I, H> = RnnCell::new(
        SMatrix::from_fn(|r, c| ((r + 2 * c) % 7) as f32 * 0.1 - 0.3),
        SMatrix::from_fn(|r, c| ((3 * r + c) % 5) as f32 * 0.1 - 0.2),
        SVector::from_element(0.05),
    );
    let relu: RnnCell<I, H, Relu> = cell.clone().with_activation();
    let readout = Readout::<H, 4>::new(SMatrix::from_element(0.1), SVector::zeros());
    let x = SVector::<f32, I>::from_element(0.5);
    let mut h = SVector::<f32, H>::zeros();
    let mut rnn = Rnn::new(cell.clone(), readout.clone());
    let mut bank: RnnBank<I, H, 11> = RnnBank::new(cell.clone());
    let xs = [x; 11];
    let lanes = [[0.5; 11]; I];
    // Fewer than 8 streams: the kernel gathers the inputs itself.
    let mut small: RnnBank<I, H, 5> = RnnBank::new(cell.clone());
    let (swapped_cell, swapped_readout) = (cell.clone(), readout.clone());
    let block = [x; 16];
    let mut ys = [SVector::<f32, 4>::zeros(); 16];
    // Warm-up outside the measurement: the CPU-feature detection caches its answer.
    let _ = cell.step(&x, &h);
    let info = allocation_counter::measure(|| {
        let _ = rnn.step(&x);
        rnn.process(&block, &mut ys);
        let _ = rnn.process_last(&block);
        bank.step(&xs);
        bank.step_unit_major(&lanes);
        small.step(&[x; 5]);
        rnn.swap_weights(swapped_cell, swapped_readout, OnSwap::KeepState);
        std::hint::black_box(bank.outputs(&readout));
        for _ in 0..100 {
            h = cell.step(&x, &h);
            h = cell.run(&block, &h);
            cell.step_in_place(&x, &mut h);
            for backend in Backend::available() {
                h = cell.step_with(backend, &x, &h);
                cell.step_in_place_with(backend, &x, &mut h);
                h = relu.step_with(backend, &x, &h).map(fast_tanh);
            }
            h = reference::step_concatenated(&cell, &x, &h);
            let y = readout.logits(&h);
            std::hint::black_box((softmax(&y), argmax(&y)));
        }
    });
    assert_eq!(info.count_total, 0, "({I}, {H}): {info:?}");
    std::hint::black_box(h);
}

/// A network and a bank of two layers, every path of each.
fn stacked_steps_without_allocating<const I: usize, const H: usize>() {
    let lower: RnnCell<I, H> = RnnCell::new(
        SMatrix::from_fn(|r, c| ((r + 2 * c) % 7) as f32 * 0.1 - 0.3),
        SMatrix::from_fn(|r, c| ((3 * r + c) % 5) as f32 * 0.1 - 0.2),
        SVector::from_element(0.05),
    );
    let upper = RnnCell::<H, H>::new(
        SMatrix::from_element(0.05),
        SMatrix::from_element(-0.05),
        SVector::zeros(),
    );
    let layers: Stack2<I, H> = Stack::new(lower, upper);
    let readout = Readout::<H, 4>::new(SMatrix::from_element(0.1), SVector::zeros());
    let mut net = Rnn2::new(layers.clone(), readout.clone());
    let mut bank: Bank<_, I, H, 11> = Bank::new(layers.clone());
    let mut state = Stack2::<I, H>::ZERO_STATE;
    let x = SVector::<f32, I>::from_element(0.5);
    let (xs, lanes, block) = ([x; 11], [[0.5; 11]; I], [x; 16]);
    let mut ys = [SVector::<f32, 4>::zeros(); 16];
    // Warm-up outside the measurement: the CPU-feature detection caches its answer.
    let _ = Backend::best();
    let info = allocation_counter::measure(|| {
        let _ = net.step(&x);
        net.process(&block, &mut ys);
        let _ = net.process_last(&block);
        net.set_state(state);
        net.swap_weights_from(&layers, &readout, OnSwap::Reset);
        layers.advance(Backend::best(), &x, &mut state);
        bank.step(&xs);
        bank.step_unit_major(&lanes);
        bank.set_state(3, &state);
        std::hint::black_box((bank.state(3), bank.outputs(&readout)));
    });
    assert_eq!(info.count_total, 0, "({I}, {H}): {info:?}");
}

#[test]
fn stacked_steps_allocate_nothing() {
    stacked_steps_without_allocating::<3, 2>();
    stacked_steps_without_allocating::<1, 16>();
    stacked_steps_without_allocating::<7, 13>();
}

#[test]
fn steps_allocate_nothing() {
    steps_without_allocating::<3, 2>();
    steps_without_allocating::<1, 16>();
    steps_without_allocating::<7, 13>();
    steps_without_allocating::<64, 128>();
}

#[test]
fn the_counter_sees_allocations() {
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![0.0_f32; 16]);
    });
    assert_eq!(info.count_total, 1);
}
