// An input of 4 values given to a cell that takes 3.
use elman::RnnCell;
use elman::nalgebra::SVector;

fn main() {
    let cell = RnnCell::<3, 2>::default();
    let _ = cell.step(&SVector::<f32, 4>::zeros(), &SVector::<f32, 2>::zeros());
}
