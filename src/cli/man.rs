//! `hoist man`: the manual pages, generated from the same definitions as `--help`, for
//! packagers: `hoist man > hoist.1`, or every page (hoist.1 and one per command,
//! hoist-deploy.1 …) into a directory with `--out-dir`.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use crate::ops::Error;

#[derive(Debug, Args)]
pub(super) struct ManArgs {
    /// Write hoist.1 and a page per command (hoist-deploy.1, hoist-lock-status.1, …) into
    /// this directory, instead of printing hoist.1.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

impl ManArgs {
    pub(super) fn run(&self) -> Result<(), Error> {
        let command = super::Cli::command();
        if let Some(dir) = &self.out_dir {
            return clap_mangen::generate_to(command, dir).map_err(|cause| Error::Write {
                path: dir.clone(),
                cause,
            });
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .expect("rendering into memory cannot fail");
        crate::output::write::out(&String::from_utf8_lossy(&page));
        Ok(())
    }
}
