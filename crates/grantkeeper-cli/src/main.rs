//! `grantkeeper`: answers `grantkeeper token …` from a running agent in a binary small enough
//! to start fast, and runs `grantkeeper-full` (installed beside it) for everything else.
//!
//! `no_main`: the C `main` below skips std's runtime set-up (the main thread's stack-guard
//! probe reads and parses `/proc/self/maps`), a measurable share of a sub-millisecond hand-out.
//! Arguments still come from `std::env::args` (glibc passes them to std's initializer).
#![no_main]

use std::os::unix::process::CommandExt;
use std::process::Command;

use grantkeeper_cli::exit::{self, Failure};
use grantkeeper_cli::output;

/// The process entry point, called by the C runtime.
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    std::ffi::c_int::from(std::panic::catch_unwind(run).unwrap_or(exit::OTHER))
}

fn run() -> u8 {
    grantkeeper_cli::install_panic_hook();
    if let Some(code) = grantkeeper_cli::commands::token::fast_token() {
        return code;
    }
    let full = match std::env::current_exe() {
        Ok(me) => me.with_file_name("grantkeeper-full"),
        Err(e) => return report(format!("cannot find this program's folder: {e}")),
    };
    let err = Command::new(&full)
        .arg0("grantkeeper")
        .args(std::env::args_os().skip(1))
        .exec();
    report(format!(
        "cannot run {} ({err}); install grantkeeper-full beside grantkeeper",
        full.display()
    ))
}

fn report(message: String) -> u8 {
    output::report(&Failure::other(message))
}
