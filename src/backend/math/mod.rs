//! TEMPORARY stand-in until the runtime math library lands.
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MathFn {
    Exp,
    Expm1,
    Log,
    Log1p,
    Tanh,
    Erf,
    Sqrt,
    Sigmoid,
    Softplus,
}

impl MathFn {
    pub fn rust_name(self) -> &'static str {
        match self {
            MathFn::Exp => "exp_f32",
            MathFn::Expm1 => "expm1_f32",
            MathFn::Log => "log_f32",
            MathFn::Log1p => "log1p_f32",
            MathFn::Tanh => "tanh_f32",
            MathFn::Erf => "erf_f32",
            MathFn::Sqrt => "sqrt_f32",
            MathFn::Sigmoid => "sigmoid_f32",
            MathFn::Softplus => "softplus_f32",
        }
    }
    pub fn cpp_name(self) -> &'static str {
        self.rust_name()
    }
}

pub fn rust_source(_needed: &BTreeSet<MathFn>) -> String {
    String::new()
}
pub fn cpp_source(_needed: &BTreeSet<MathFn>) -> String {
    String::new()
}
