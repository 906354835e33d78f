//! The one Namer: every string from the model file reaches generated source only through
//! here. Identifiers come out ASCII, legal in Rust (every edition) and C++, and unique;
//! comment text comes out with nothing that could end the comment or hide code.

use std::collections::BTreeSet;

/// Words that cannot be identifiers in Rust 2015–2024 or C++17 (or are reserved there),
/// lowercase macros other headers define, and the names the generated code defines.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    // Rust keywords, strict and reserved, every edition.
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue",
    "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen",
    "if", "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override",
    "priv", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "union", "unsafe", "unsized", "use", "virtual", "where",
    "while", "yield", "macro_rules", "raw", "safe",
    // C++ keywords and alternative tokens.
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool",
    "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "compl",
    "concept", "consteval", "constexpr", "constinit", "const_cast", "co_await",
    "co_return", "co_yield", "decltype", "default", "delete", "double", "dynamic_cast",
    "explicit", "export", "float", "friend", "goto", "inline", "int", "long", "mutable",
    "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or", "or_eq",
    "private", "protected", "public", "register", "reinterpret_cast", "requires", "short",
    "signed", "sizeof", "static_assert", "static_cast", "switch", "template", "this",
    "thread_local", "throw", "typedef", "typeid", "typename", "unsigned", "using",
    "void", "volatile", "wchar_t", "xor", "xor_eq", "main", "std", "NULL", "errno",
    // Lowercase macros a header included before ours may define: the C library's,
    // GNU mode's predefined ones, glibc's sysmacros, Windows' and Arduino's.
    "offsetof", "assert", "setjmp", "va_start", "va_arg", "va_end", "va_copy", "stdin",
    "stdout", "stderr", "math_errhandling", "fpclassify", "isfinite", "isinf", "isnan",
    "isnormal", "signbit", "isgreater", "isgreaterequal", "isless", "islessequal",
    "islessgreater", "isunordered", "getc", "putc", "getchar", "putchar", "alloca",
    "complex", "imaginary", "noreturn", "linux", "unix", "i386", "mips", "sparc", "sun",
    "vax", "major", "minor", "makedev", "near", "far", "pascal", "cdecl", "interface",
    "small", "hyper", "min", "max", "abs", "constrain", "round", "radians", "degrees",
    "sq", "bit", "cli", "sei",
    // Names the generated code defines.
    "predict", "predict_with_scratch", "view", "view_mut", "math", "weights", "detail",
    "selftest", "half",
    "input", "output", "scratch", "scratch_i8", "x", "y", "acc",
];

/// Whether the math runtime defines `name` (C++ puts it beside the layer functions).
fn is_math_name(name: &str) -> bool {
    use crate::backend::math::{MathFn, CPP_HELPER_NAMES, INT8_NAMES};
    CPP_HELPER_NAMES.contains(&name)
        || INT8_NAMES.contains(&name)
        || MathFn::ALL
            .iter()
            .any(|f| f.cpp_name() == name || f.rust_name() == name)
}

/// Hands out identifiers for one generated file.
#[derive(Debug, Default)]
pub struct Namer {
    taken: BTreeSet<String>,
}

impl Namer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh snake_case identifier derived from `raw` (a layer name, say).
    pub fn ident(&mut self, raw: &str) -> String {
        let base = sanitize(raw);
        let mut candidate = base.clone();
        let mut n = 1;
        while self.is_taken(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }

    fn is_taken(&self, name: &str) -> bool {
        self.taken.contains(name) || RESERVED.contains(&name) || is_math_name(name)
    }
}

/// Lowercase ASCII letters, digits and single underscores; never empty, never starting
/// with a digit or underscore, never ending with one (C++ reserves `__` and `_X`).
fn sanitize(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars().take(48) {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("layer");
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "l_");
    }
    out
}

/// Text safe inside a `//` line comment of either language: printable ASCII only, with
/// everything else (newlines, non-ASCII, control characters) escaped as `\u{..}`, no
/// trailing backslash, and no `/*`, `*/` or `??` trigraph starts.
pub fn comment(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars().take(200) {
        match c {
            ' '..='~' if c != '\\' => out.push(c),
            _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.replace("/*", "/\\u{2a}")
        .replace("*/", "\\u{2a}/")
        .replace("??", "?\\u{3f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_legal_and_unique() {
        let mut namer = Namer::new();
        assert_eq!(namer.ident("dense_1"), "dense_1");
        assert_eq!(namer.ident("dense_1"), "dense_1_1");
        assert_eq!(namer.ident("fn"), "fn_1");
        assert_eq!(namer.ident("über/2"), "ber_2");
        assert_eq!(namer.ident("9lives"), "l_9lives");
        assert_eq!(namer.ident("__x__"), "x_1");
        assert_eq!(namer.ident("\u{202e}"), "layer");
        assert_eq!(namer.ident("Predict"), "predict_1");
        assert_eq!(namer.ident("exp_f32"), "exp_f32_1");
    }

    #[test]
    fn comments_cannot_be_escaped() {
        let c = comment("a */ b /* c\nd \\ \u{202e} ??/");
        assert!(!c.contains("*/") && !c.contains("/*") && !c.contains('\n'));
        assert!(!c.contains("??") && c.is_ascii() && !c.ends_with('\\'));
        assert!(!c.contains("\\\\") && !c.contains(" \\ "));
    }
}

/// A Rust string literal holding exactly `raw`, in ASCII (every other character escaped).
pub fn rust_string(raw: &str) -> String {
    let mut out = String::from("\"");
    for c in raw.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// A C++ string literal holding exactly the UTF-8 bytes of `raw`, in printable ASCII
/// (other bytes as three-digit octal escapes; `?` escaped against trigraphs).
pub fn cpp_string(raw: &str) -> String {
    let mut out = String::from("\"");
    for b in raw.bytes() {
        match b {
            b'"' | b'\\' | b'?' => {
                out.push('\\');
                out.push(b as char);
            }
            b' '..=b'~' => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03o}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod literal_tests {
    use super::*;

    #[test]
    fn string_literals_hold_the_exact_name() {
        assert_eq!(rust_string("a\"b\\\n\u{fc}"), r#""a\"b\\\u{a}\u{fc}""#);
        assert_eq!(cpp_string("a?\"\n\u{fc}"), r#""a\?\"\012\303\274""#);
    }
}
