//! A command's answer on stdout when its reader may go away first (`switchyard keys list | head`).

use std::io::{self, Write};

/// Writes `text` to stdout. A reader that went away (a closed pipe) is no error: the reader
/// has what it wanted, so the rest is dropped quietly, where `println!` panicked ("failed
/// printing to stdout: Broken pipe"). Other write failures (a full disk) are returned.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `text` to stderr; a failure (a closed pipe, `2>&1 | head`) is ignored, where
/// `eprintln!` panicked: a diagnostic nobody reads cannot be reported anywhere.
pub fn eprint(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
