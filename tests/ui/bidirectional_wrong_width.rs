// A bidirectional layer's output holds both directions' states: H2 must be 2·H.
use elman::bidirectional::Bidirectional;
use elman::RnnCell;

fn main() {
    let _ = Bidirectional::<3, 2, 5>::new(RnnCell::default(), RnnCell::default());
}
