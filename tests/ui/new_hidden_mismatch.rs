// W_xh has 2 rows (H = 2) but W_hh is 3 × 3 (H = 3).
use elman::RnnCell;
use elman::nalgebra::{SMatrix, SVector};

fn main() {
    let _ = RnnCell::new(
        SMatrix::<f32, 2, 3>::zeros(),
        SMatrix::<f32, 3, 3>::zeros(),
        SVector::<f32, 2>::zeros(),
    );
}
