//! keras2src: a trained Keras model in, self-contained Rust or C++ source out.

pub mod error;
pub mod ir;

pub use error::{Error, Result};
