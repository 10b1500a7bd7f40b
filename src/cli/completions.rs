//! `hoist completions SHELL`: the shell completion script.

use clap::{Args, CommandFactory};

#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

impl CompletionsArgs {
    pub(super) fn run(&self) {
        clap_complete::generate(
            self.shell,
            &mut super::Cli::command(),
            "hoist",
            &mut std::io::stdout(),
        );
    }
}
