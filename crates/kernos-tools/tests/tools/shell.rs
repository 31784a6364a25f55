//! `shell.*` (placeholder until written).
