//! Writing results to stdout: a reader that goes away (`keras2src predict ... | head`) ends
//! the program quietly with status 0, as it does for other Unix tools, instead of a panic.

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
            eprintln!("error: writing to stdout: {e}");
            ExitCode::from(2)
        }
    }
}
