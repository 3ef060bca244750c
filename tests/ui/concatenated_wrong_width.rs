// A 2 × 4 concatenated matrix for a cell with I = 3, H = 2, which needs 2 × 5.
use elman::RnnCell;
use elman::nalgebra::{SMatrix, SVector};

fn main() {
    let _ = RnnCell::<3, 2>::from_concatenated(SMatrix::<f32, 2, 4>::zeros(), SVector::zeros());
}
