//! Backends: print a lowered [`crate::lower::Program`] as Rust or C++ source.

pub mod cpp;
pub mod math;
pub mod rust;

use crate::{ScratchPlacement, SelfTest};

/// What the generated entry points offer besides the model itself; the same in both
/// languages.
#[derive(Debug, Clone, Copy)]
pub struct Api<'a> {
    pub scratch: ScratchPlacement,
    /// C++ only: `extern "C"` entry points named `NAME_predict`, ...
    pub extern_c: bool,
    pub self_test: Option<&'a SelfTest>,
}

impl Default for Api<'_> {
    fn default() -> Self {
        Api {
            scratch: ScratchPlacement::Stack,
            extern_c: false,
            self_test: None,
        }
    }
}
