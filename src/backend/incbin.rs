//! The weights file brought in by the assembler's `.incbin`, as the C++ and C headers do it
//! (the languages differ only in the declarations around it).

/// The macros a header's `.incbin` reads for model `upper` (the name upper-cased, `a::b` as
/// `A_B`): the file's path, and the switch that leaves the symbol to the user.
pub fn macros(upper: &str) -> (String, String) {
    (
        format!("KERAS2SRC_{upper}_WEIGHTS_PATH"),
        format!("KERAS2SRC_{upper}_WEIGHTS_EXTERNAL"),
    )
}

/// The comment above the `.incbin`: what the file holds (`what`: [`crate::backend::file_holds`]),
/// where the assembler looks for it, and the way out on other toolchains.
pub fn comment(
    file: &str,
    bytes: usize,
    path: &str,
    external: &str,
    symbol: &str,
    what: &str,
) -> String {
    format!(
        "// The weights: {bytes} bytes of {what} in {file}, brought in when this\n\
         // header is compiled (no loading at run time) by the assembler's .incbin, for GCC and\n\
         // Clang on ELF targets. The assembler looks for {path}\n\
         // (default \"{file}\") in its working directory and the -I directories GCC passes on;\n\
         // with Clang or in a -flto link, define {path} as the file's path.\n\
         // Other toolchains: define {external} and the symbol\n\
         // {symbol} yourself (keras2src's README shows how), or generate\n\
         // with --weights inline.\n"
    )
}

/// The definition of `symbol` (unless `external` is defined): the file-scope `__asm__` that
/// `.incbin`s the file for GCC and Clang on ELF targets (aligned, read-only, in a COMDAT
/// group: one copy however many translation units include the header; `.ifndef` for
/// `-flto`, which assembles them together; its length checked by GCC's assembler), else an
/// `#error`.
pub fn definition(file: &str, bytes: usize, path: &str, external: &str, symbol: &str) -> String {
    let asm = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|line| format!("    \"{line}\\n\""))
            .collect()
    };
    let mut text = asm(&[
        format!(".ifndef {symbol}"),
        format!(".pushsection .rodata.{symbol},\\\"aG\\\",%progbits,{symbol},comdat"),
        format!(".weak {symbol}"),
        format!(".type {symbol}, %object"),
        ".balign 64".to_string(),
        format!("{symbol}:"),
        format!(".incbin \\\"\" {path} \"\\\""),
    ]);
    // Clang's integrated assembler cannot evaluate `. - symbol` in `.if` ("expected
    // absolute expression"): the length is checked by GCC's assembler only.
    text.push("#if !defined(__clang__)".into());
    text.extend(asm(&[
        format!(".if . - {symbol} != {bytes}"),
        format!(
            ".error \\\"\" {path} \" does not hold the {bytes} bytes this header expects: \
             regenerate both together\\\""
        ),
        ".endif".to_string(),
    ]));
    text.push("#endif".into());
    text.extend(asm(&[
        format!(".size {symbol}, . - {symbol}"),
        ".popsection".to_string(),
        ".endif".to_string(),
    ]));
    format!(
        "#ifndef {external}\n\
         #ifndef {path}\n\
         #define {path} \"{file}\"\n\
         #endif\n\
         #if defined(__GNUC__) && defined(__ELF__)\n\
         __asm__(\n{}\n);\n\
         #else\n\
         #error \"{file}: .incbin needs GCC or Clang on an ELF target; define {external} and the symbol {symbol} (see keras2src's README), or generate with --weights inline\"\n\
         #endif\n\
         #endif  // {external}",
        text.join("\n")
    )
}
