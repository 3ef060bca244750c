//! Which way a step of a cell whose weights stream from L2 takes its ranges of columns
//! (see `step::ranged_sums`): the other way from this thread's last step of the same cell, so
//! that each step starts on the columns the step before read last, which L1 still holds.
//!
//! A cell's `step` takes `&self` and may be stepped from many threads at once, so the
//! direction is kept per thread, for the last few cells it stepped, keyed by the address of
//! their weights. A cell not among them steps forward. Either way gives the same bits: this
//! only decides how fast.

/// How many cells a thread keeps the direction of: a stack of layers stepped in turn, each
/// its own cell, alternates every layer up to this many.
#[cfg(feature = "std")]
const CELLS: usize = 4;

/// A thread's last cells ([`CELLS`] of them), the address of each one's weights and the
/// direction of its last step, the most recent first.
#[cfg(feature = "std")]
#[derive(Clone, Copy)]
struct Recent {
    keys: [usize; CELLS],
    backward: [bool; CELLS],
}

#[cfg(feature = "std")]
std::thread_local! {
    static RECENT: core::cell::Cell<Recent> = const {
        core::cell::Cell::new(Recent {
            keys: [0; CELLS],
            backward: [false; CELLS],
        })
    };
}

/// Whether this thread's step of the cell whose weights start at address `key` goes
/// backward: the other way from its last step of that cell if it is among the thread's last
/// [`CELLS`], else forward. Without `std` (no threads to keep it per thread) every step goes
/// forward.
#[inline]
pub(crate) fn next_backward(key: usize) -> bool {
    #[cfg(feature = "std")]
    {
        RECENT
            .try_with(|recent| {
                let mut now = recent.get();
                let found = now.keys.iter().position(|&k| k == key);
                let backward = found.is_some_and(|i| now.backward.get(i) == Some(&false));
                // Moved to the front, the others shifted back over it (or over the oldest).
                let end = found.unwrap_or(CELLS - 1);
                if let (Some(keys), Some(directions)) =
                    (now.keys.get_mut(..=end), now.backward.get_mut(..=end))
                {
                    keys.rotate_right(1);
                    directions.rotate_right(1);
                    if let (Some(k), Some(d)) = (keys.first_mut(), directions.first_mut()) {
                        (*k, *d) = (key, backward);
                    }
                }
                recent.set(now);
                backward
            })
            .unwrap_or(false)
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = key;
        false
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::next_backward;

    #[test]
    fn each_cell_alternates_whatever_the_others_do() {
        let (a, b, c) = (0x1000, 0x2000, 0x3000);
        assert!(!next_backward(a));
        assert!(!next_backward(b));
        assert!(next_backward(a));
        assert!(!next_backward(c));
        assert!(next_backward(b));
        assert!(!next_backward(a));
        assert!(next_backward(c));
        assert!(!next_backward(b));
    }

    #[test]
    fn a_cell_pushed_out_starts_forward_again() {
        let keys = [0x10, 0x20, 0x30, 0x40, 0x50];
        assert!(!next_backward(keys[0]));
        for &k in &keys[1..] {
            assert!(!next_backward(k));
        }
        // `keys[0]` was the oldest of five: no longer kept.
        assert!(!next_backward(keys[0]));
        assert!(next_backward(keys[0]));
        // Each thread keeps its own.
        std::thread::spawn(move || assert!(!next_backward(keys[0])))
            .join()
            .unwrap();
        assert!(!next_backward(keys[0]));
    }
}
