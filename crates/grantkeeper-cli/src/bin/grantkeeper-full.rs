//! `grantkeeper-full`: every `grantkeeper` command (the `grantkeeper` binary hands all but an
//! agent-served `token` to this one).

fn main() -> std::process::ExitCode {
    grantkeeper_cli::main()
}
