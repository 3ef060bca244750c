// Bidirectional layers and stacks of matching sizes build: H2 = 2·H, and the upper layers read
// the H2 outputs of the one below.
use elman::bidirectional::{BiStack, BiStates, Bidirectional};
use elman::nalgebra::SVector;
use elman::{Relu, RnnCell};

fn main() {
    let layer = Bidirectional::<3, 2, 4>::new(RnnCell::default(), RnnCell::default());
    let mut out = [SVector::<f32, 4>::zeros(); 2];
    let _ = layer.run(&[SVector::zeros(); 2], &(SVector::zeros(), SVector::zeros()), &mut out);

    let upper: Bidirectional<128, 64, 128, Relu> = Bidirectional::default();
    let stack = Box::new(BiStack::<8, 64, 128, 1, Relu>::new(Bidirectional::default(), [upper]));
    let (mut scratch, mut top) = ([SVector::zeros(); 2], [SVector::zeros(); 2]);
    let _ = stack.run(&[SVector::zeros(); 2], &BiStates::ZERO, &mut scratch, &mut top);
}
