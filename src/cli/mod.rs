//! The commands behind `main.rs`'s argument parsing, one file each, and what they share.

pub mod check;
pub mod generate;
pub mod inspect;
pub mod output;
pub mod predict;
pub mod progress;
