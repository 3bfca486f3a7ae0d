//! The `tacos` binary.

fn main() -> std::process::ExitCode {
    tacos_host::cli::main()
}
