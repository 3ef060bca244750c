// A stack whose lower layer has 3 units and whose upper layer takes 4 inputs is no network.
use elman::stack::Stack;
use elman::{Network, Readout, RnnCell};

fn main() {
    let layers = Stack::<_, _, 3>::new(RnnCell::<2, 3>::default(), RnnCell::<4, 5>::default());
    let _ = Network::new(layers, Readout::<5, 1>::default());
}
