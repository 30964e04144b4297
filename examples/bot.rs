//! placeholder, written next.
fn main() {}
