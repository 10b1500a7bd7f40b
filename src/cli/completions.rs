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
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut super::Cli::command(), "hoist", &mut script);
        crate::output::write::out(&String::from_utf8_lossy(&script));
    }
}
