//! `localpair completions SHELL` and `localpair man`: generated from the argument definitions,
//! so they never disagree with `--help`.

use clap::CommandFactory as _;

use crate::args::Args;
use crate::error::Error;

pub(super) fn completions(shell: clap_complete::Shell) -> Result<(), Error> {
    let mut command = Args::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut command, "localpair", &mut out);
    Ok(())
}

pub(super) fn man() -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    match clap_mangen::Man::new(Args::command()).render(&mut out) {
        // `localpair man | head`: the reader had enough.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(Error::Output),
    }
}
