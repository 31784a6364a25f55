//! Transparency-log benchmarks (filled in below).
fn main() {}
