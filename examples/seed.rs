//! The walk-through the crate grew from: one step of a vanilla RNN with a 3-value input and a
//! 2-value hidden state, then the output layer and the readings of its prediction.
//!
//! Run it with `cargo run --release --example seed`.

use elman::nalgebra::{self, SMatrix, vector};
use elman::{Readout, RnnCell, argmax, one_hot_argmax, reference, sigmoid, softmax};

fn main() {
    // 1. The hidden size is a hyperparameter: here 2, for an input of 3 values.
    let x_t = vector![1.0_f32, -0.5, 2.0];
    let h_prev = vector![0.3_f32, -0.7];
    println!("x_t    = {}", row(x_t.as_slice()));
    println!("h_t-1  = {}", row(h_prev.as_slice()));

    // 2. [x_t; h_t-1] (5 values) is fully connected to the hidden layer (2 units): W is 2 × 5.
    //    Row 1 is [A | B], row 2 is [C | D]: A and C meet x_t, B and D meet h_t-1.
    let w = SMatrix::<f32, 2, 5>::from_row_slice(&[
        0.5, -0.2, 0.1, /* | */ 0.8, -0.3, // A | B
        -0.4, 0.3, 0.2, /* | */ 0.1, 0.6, // C | D
    ]);
    println!("\nW = [A B; C D] (2 x 5):");
    print_matrix(&w);

    // 3. A over C is W_xh (2 × 3), B over D is W_hh (2 × 2): W·[x; h] = W_xh·x + W_hh·h.
    let b = vector![0.1_f32, -0.1];
    let cell: RnnCell<3, 2> = RnnCell::from_concatenated(w, b);
    println!("\nW_xh = [A; C] (2 x 3):");
    print_matrix(cell.w_xh());
    println!("W_hh = [B; D] (2 x 2):");
    print_matrix(cell.w_hh());
    println!("b    = {}", row(b.as_slice()));

    // 4. h_t = tanh(W_xh·x_t + W_hh·h_t-1 + b), computed both ways.
    let split = cell.step(&x_t, &h_prev);
    let concatenated = reference::step_concatenated(&cell, &x_t, &h_prev);
    let oracle = reference::step(&cell, &x_t, &h_prev);
    println!(
        "\nh_t = tanh(W_xh·x_t + W_hh·h_t-1 + b) = {}",
        row(split.as_slice())
    );
    println!(
        "h_t = tanh(W·[x_t; h_t-1] + b)        = {}",
        row(concatenated.as_slice())
    );
    let gap = (split - concatenated).amax();
    println!("largest difference between the two forms: {gap:e} (rounding and the fast tanh)");
    let budget = cell.error_budget(x_t.amax(), 1.0);
    println!(
        "largest difference from the reference step: {:e} (its error budget: {:e})",
        (split - oracle).amax(),
        budget.per_step
    );
    assert!(
        (split - oracle).amax() <= budget.per_step,
        "the step exceeds its error budget"
    );

    // 5. h_t is not the prediction: the output layer W_hy (3 × 2) maps it to 3 logits.
    let readout: Readout<2, 3> =
        Readout::from_row_major([[1.5, -0.5], [-1.0, 2.0], [0.3, 0.3]], [0.0, 0.1, -0.1]);
    println!("\nW_hy (3 x 2):");
    print_matrix(readout.weight());
    let y = readout.logits(&split);
    println!("y_t = W_hy·h_t + b_y       = {}", row(y.as_slice()));

    // 6. Readings: softmax for one label of many, sigmoid for independent labels, or y itself.
    let p = softmax(&y);
    println!(
        "softmax(y_t)              = {}   (sums to {:.6})",
        row(p.as_slice()),
        p.sum()
    );
    println!(
        "sigmoid(y_t)              = {}",
        row(sigmoid(&y).as_slice())
    );
    println!(
        "one-hot prediction        = {}   (class {}; arg-max of y and of softmax(y) agree: {})",
        row(one_hot_argmax(&y).as_slice()),
        argmax(&y),
        argmax(&y) == argmax(&p)
    );
}

fn row(values: &[f32]) -> String {
    let cells: Vec<String> = values.iter().map(|v| format!("{v:>9.5}")).collect();
    format!("[{}]", cells.join(", "))
}

fn print_matrix<const R: usize, const C: usize>(m: &SMatrix<f32, R, C>) {
    for r in 0..R {
        let values: Vec<f32> = m.row(r).iter().copied().collect();
        println!("  {}", row(&values));
    }
}
