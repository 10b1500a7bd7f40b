//! Writing to stdout and stderr without panicking: a reader that went away (`hoist plan |
//! head -1`, quitting `less`) is no error. What is left is dropped quietly and the command
//! ends as it would have, with its own exit code (a deploy is never cut short because nobody
//! reads its table). `print!` would panic there ("failed printing to stdout: Broken pipe").

use std::io::{ErrorKind, Write};

/// `text` on stdout, as `print!` would, flushed.
pub fn out(text: &str) {
    write(&mut std::io::stdout().lock(), text, "stdout");
}

/// `text` on stderr, as `eprint!` would.
pub fn err(text: &str) {
    write(&mut std::io::stderr().lock(), text, "stderr");
}

fn write(to: &mut impl Write, text: &str, name: &str) {
    match to.write_all(text.as_bytes()).and_then(|()| to.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe && name == "stdout" => {
            // stdout full or gone otherwise (a disk that filled up under `> file`): said once
            // on stderr, which may still be read.
            let _ = writeln!(std::io::stderr(), "hoist: cannot write to stdout: {e}");
        }
        _ => {}
    }
}

/// `println!` through [`out`]: a line on stdout that a reader who went away does not turn
/// into a panic.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write::out(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` through [`err`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write::err(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, outln};
