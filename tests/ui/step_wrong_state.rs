// A hidden state of 3 values given to a cell whose hidden size is 2.
use elman::RnnCell;
use elman::nalgebra::SVector;

fn main() {
    let cell = RnnCell::<3, 2>::default();
    let _ = cell.step(&SVector::<f32, 3>::zeros(), &SVector::<f32, 3>::zeros());
}
