fn main() -> std::process::ExitCode {
    hoist::cli::main()
}
