//! Generated sample models (see tests/samples.rs in the keras2src crate).
#![no_std]
#![deny(warnings)]

pub mod seed;
pub mod text_bilstm;
pub mod transformer_block;
