//! placeholder until the adapters land
fn main() {}
