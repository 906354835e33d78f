//! The math functions an op may need at run time. The backends carry their
//! implementations (`backend::math`); lowering and the interpreter only name them.

/// A math function the generated code may call.
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
    /// Every function, in the order the sources are emitted (a function's dependencies
    /// come before it).
    pub const ALL: [MathFn; 9] = [
        MathFn::Exp,
        MathFn::Expm1,
        MathFn::Log,
        MathFn::Log1p,
        MathFn::Tanh,
        MathFn::Erf,
        MathFn::Sqrt,
        MathFn::Sigmoid,
        MathFn::Softplus,
    ];
}
