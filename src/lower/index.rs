//! Index arithmetic printed without `* 1` or `+ 0`, which linters flag in generated code.

/// `sum(var * stride) + constant` with trivial terms dropped: `idx(&[("o", 8), ("k", 1)], 0)`
/// prints `o * 8 + k`.
pub fn idx(terms: &[(&str, usize)], constant: usize) -> String {
    let mut parts: Vec<String> = terms
        .iter()
        .filter(|&&(_, stride)| stride != 0)
        .map(|&(var, stride)| {
            if stride == 1 {
                var.to_string()
            } else {
                format!("{var} * {stride}")
            }
        })
        .collect();
    if constant != 0 || parts.is_empty() {
        parts.push(constant.to_string());
    }
    parts.join(" + ")
}
