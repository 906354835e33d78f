//! Errors: every variant says which file, which layer (name and class) and what is wrong.

use std::path::PathBuf;

/// A layer-level problem, collected so that all of a model's problems are reported at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerProblem {
    /// The layer's name as written in the model file.
    pub layer: String,
    /// The layer's Keras class (`Dense`, `Conv2D`, ...).
    pub class: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LayerProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "layer '{}' ({}): {}",
            escape_for_message(&self.layer),
            escape_for_message(&self.class),
            self.message
        )
    }
}

/// Everything that can go wrong between a model file and generated source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not what it claims to be, or is damaged.
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// One or more layers cannot be converted; all of them are listed.
    #[error("{path}: {} problem(s):\n{}", problems.len(), list(problems))]
    Layers {
        path: PathBuf,
        problems: Vec<LayerProblem>,
    },
    /// A bad option or argument given by the user.
    #[error("{0}")]
    Usage(String),
    /// A bug in keras2src itself (please report it with the model file).
    #[error("internal error, please report: {0}")]
    Internal(String),
}

fn list(problems: &[LayerProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Keeps strings from a model file printable and on one line in messages.
pub fn escape_for_message(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().take(200) {
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    if s.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
