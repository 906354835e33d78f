//! Writing results to stdout: a reader that goes away (`keras2src predict ... | head`) ends
//! the program quietly with status 0, as it does for other Unix tools, instead of a panic;
//! and messages to stderr, which never panic either (`2>&1 | head`).

use std::io::Write;
use std::process::ExitCode;

/// Writes `text` to stdout; a closed pipe is success, any other failure an error message
/// and status 2.
pub fn write(text: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            message(&format!("error: writing to stdout: {e}"));
            ExitCode::from(2)
        }
    }
}

/// Writes a line to stderr; a closed stderr is ignored (`eprintln!` would panic).
pub fn message(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
