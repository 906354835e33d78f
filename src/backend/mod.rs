//! Backends: print a lowered [`crate::lower::Program`] as Rust or C++ source.

pub mod cpp;
pub mod math;
pub mod rust;
