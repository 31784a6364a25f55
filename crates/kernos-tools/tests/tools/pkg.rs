//! `pkg.*` (placeholder until written).
