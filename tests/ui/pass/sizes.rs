// The sizes the crate supports build, concatenated form included, past typenum's 127.
use elman::nalgebra::{SMatrix, SVector};
use elman::{Readout, Relu, RnnCell, argmax};

fn main() {
    let seed = RnnCell::<3, 2>::from_concatenated(SMatrix::<f32, 2, 5>::zeros(), SVector::zeros());
    let readout = Readout::<2, 4>::default();
    let h = seed.step(&SVector::zeros(), &SVector::zeros());
    assert_eq!(argmax(&readout.logits(&h)), 0);

    let w = Box::new(SMatrix::<f32, 128, 192>::zeros());
    let large = Box::new(RnnCell::<64, 128, Relu>::from_concatenated(*w, SVector::zeros()));
    let _: SMatrix<f32, 128, 192> = large.concatenated();

    let w = Box::new(SMatrix::<f32, 256, 384>::zeros());
    let larger = Box::new(RnnCell::<128, 256>::from_concatenated(*w, SVector::zeros()));
    let _: SMatrix<f32, 256, 384> = larger.concatenated();
}
