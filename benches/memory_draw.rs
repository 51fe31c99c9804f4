//! Filled in by the draws work: see the README once it lands.
fn main() {}
