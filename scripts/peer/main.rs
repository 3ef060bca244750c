//! `RnnCell::step` called once per input from a user's loop (and `RnnCell::step_in_place`),
//! against the same cell written with Eigen's static matrices and compiled `-O3 -march=native`
//! (see `eigen_rnn.cpp`): 1024 dependent steps per timing, the three interleaved round by round
//! in one process, ns per step.
//!
//! `scripts/peer.sh` installs Eigen (Debian's `libeigen3-dev`) if it is missing and runs this
//! in the default build; `RUSTFLAGS="-C target-cpu=native" scripts/peer.sh` in a native one.

use std::hint::black_box;
use std::time::Instant;

use elman::RnnCell;
use elman::nalgebra::{SMatrix, SVector};

/// Dependent steps per timing.
const STEPS: usize = 1024;
/// Rounds, each timing both sides once.
const ROUNDS: usize = 21;

/// The steps of a user's loop: `step` once per input, the state in a local variable.
#[inline(never)]
fn user_loop<const I: usize, const H: usize>(
    cell: &RnnCell<I, H>,
    xs: &[SVector<f32, I>],
    h0: SVector<f32, H>,
) -> SVector<f32, H> {
    let mut h = h0;
    for x in xs {
        h = cell.step(x, &h);
    }
    h
}

/// The same loop with the state stepped in place.
#[inline(never)]
fn user_loop_in_place<const I: usize, const H: usize>(
    cell: &RnnCell<I, H>,
    xs: &[SVector<f32, I>],
    h0: SVector<f32, H>,
) -> SVector<f32, H> {
    let mut h = h0;
    for x in xs {
        cell.step_in_place(x, &mut h);
    }
    h
}

/// Nanoseconds per step of `f`, which runs `STEPS` steps, over enough repetitions for ~2 ms.
fn time(mut f: impl FnMut()) -> f64 {
    let reps = {
        let start = Instant::now();
        f();
        let once = start.elapsed().as_secs_f64();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a positive count, clamped"
        )]
        let reps = (2e-3 / once.max(1e-9)) as usize;
        reps.clamp(1, 10_000)
    };
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    start.elapsed().as_secs_f64() * 1e9 / (reps * STEPS) as f64
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A weight, the same for both sides: small enough that the state neither saturates nor dies.
fn weight(r: usize, c: usize, columns: usize) -> f32 {
    let v = ((r * 7 + c * 13) % 29) as f32 / 29.0 - 0.5;
    v * 2.0 / (columns as f32).sqrt()
}

macro_rules! peer {
    ($i:literal, $h:literal, $new:ident, $steps:ident, $free:ident) => {{
        unsafe extern "C" {
            fn $new(w: *const f32, b: *const f32) -> *mut core::ffi::c_void;
            fn $steps(cell: *mut core::ffi::c_void, xs: *const f32, n: usize, h: *mut f32);
            fn $free(cell: *mut core::ffi::c_void);
        }
        const I: usize = $i;
        const H: usize = $h;
        let w: Vec<f32> = (0..H * (I + H)).map(|k| weight(k / (I + H), k % (I + H), I + H)).collect();
        let b: Vec<f32> = (0..H).map(|r| (r % 5) as f32 * 0.02 - 0.04).collect();
        let cell = Box::new(RnnCell::<I, H>::new(
            SMatrix::from_fn(|r, c| w[r * (I + H) + c]),
            SMatrix::from_fn(|r, c| w[r * (I + H) + I + c]),
            SVector::from_fn(|r, _| b[r]),
        ));
        let xs: Vec<SVector<f32, I>> = (0..STEPS)
            .map(|t| SVector::from_fn(|k, _| ((t * 31 + k * 17) % 13) as f32 / 6.5 - 1.0))
            .collect();
        let flat: Vec<f32> = xs.iter().flat_map(|x| x.iter().copied()).collect();
        // SAFETY: `w` holds H·(I + H) values and `b` H, as the Eigen cell reads them; the cell
        // is freed once, below, and used only in between.
        let eigen = unsafe { $new(w.as_ptr(), b.as_ptr()) };
        let eigen_steps = |h: &mut [f32; H]| {
            // SAFETY: `flat` holds STEPS·I inputs and `h` H values, as `steps` reads and writes.
            unsafe { $steps(eigen, flat.as_ptr(), STEPS, h.as_mut_ptr()) }
        };
        // The same model: the states after STEPS steps from zero agree within the two tanh
        // approximations' difference.
        let ours = user_loop(&cell, &xs, SVector::zeros());
        assert_eq!(ours, user_loop_in_place(&cell, &xs, SVector::zeros()));
        let mut theirs = [0.0_f32; H];
        eigen_steps(&mut theirs);
        let gap = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(gap < 1e-3, "({I}, {H}): elman and Eigen differ by {gap}");
        let (mut elman_ns, mut eigen_ns, mut ratios) = (vec![], vec![], vec![]);
        let (mut in_place_ns, mut in_place_ratios) = (vec![], vec![]);
        for _ in 0..ROUNDS {
            let a = time(|| {
                black_box(user_loop(&cell, black_box(&xs), black_box(SVector::zeros())));
            });
            let p = time(|| {
                black_box(user_loop_in_place(&cell, black_box(&xs), black_box(SVector::zeros())));
            });
            let e = time(|| {
                let mut h = black_box([0.0_f32; H]);
                eigen_steps(&mut h);
                black_box(h);
            });
            elman_ns.push(a);
            eigen_ns.push(e);
            ratios.push(a / e);
            in_place_ns.push(p);
            in_place_ratios.push(p / e);
        }
        // SAFETY: the cell `$new` returned, not used after this.
        unsafe { $free(eigen) };
        println!(
            "({I:3}, {H:3})  elman {:9.1}  in place {:9.1}  Eigen {:9.1} ns/step  elman / Eigen {:.2}  in place / Eigen {:.2} (medians of rounds)  states within {gap:.1e}",
            median(elman_ns),
            median(in_place_ns),
            median(eigen_ns),
            median(ratios),
            median(in_place_ratios),
        );
    }};
}

fn main() {
    println!("{}", elman::kernel::probe::build_info());
    peer!(3, 2, eigen_new_3_2, eigen_steps_3_2, eigen_free_3_2);
    peer!(16, 16, eigen_new_16_16, eigen_steps_16_16, eigen_free_16_16);
    peer!(32, 64, eigen_new_32_64, eigen_steps_32_64, eigen_free_32_64);
    peer!(
        64,
        128,
        eigen_new_64_128,
        eigen_steps_64_128,
        eigen_free_64_128
    );
    peer!(
        128,
        256,
        eigen_new_128_256,
        eigen_steps_128_256,
        eigen_free_128_256
    );
}
