// A readout built for H = 3 chained after a cell whose hidden size is 2.
use elman::nalgebra::SVector;
use elman::{Readout, RnnCell};

fn main() {
    let cell = RnnCell::<1, 2>::default();
    let readout = Readout::<3, 4>::default();
    let h = cell.step(&SVector::zeros(), &SVector::zeros());
    let _ = readout.logits(&h);
}
