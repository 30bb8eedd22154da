//! `localpair resolve`.

use localpair_core::ResolverChain;

use super::{block_on, context, load};
use crate::args::Args;
use crate::error::Error;
use crate::output;

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    let chain = ResolverChain::from_settings(&registry, &settings).map_err(Error::Config)?;
    let report = block_on(async {
        let ctx = context(settings)?;
        Ok::<_, Error>(chain.resolve(&ctx).await)
    })?;
    if args.json {
        // A failure is one error object instead (it carries the attempts).
        if !report.candidates.is_empty() {
            output::json(&report)?;
        }
    } else {
        let mut text = String::new();
        if !report.candidates.is_empty() {
            text.push_str("Addresses, best first:\n");
            for (i, c) in report.candidates.iter().enumerate() {
                text.push_str(&format!(
                    "  {}. {:<26} {:<10} {:<15} {:<6} via {}\n     {}\n",
                    i + 1,
                    c.ip,
                    c.interface.as_deref().unwrap_or("?"),
                    c.class.as_str(),
                    format!("{:?}", c.confirmed).to_lowercase(),
                    c.strategy,
                    c.reason
                ));
            }
        }
        text.push_str(&format!(
            "Attempts ({} ms):\n{}",
            report.elapsed.as_millis(),
            output::attempts_table(&report.attempts)
        ));
        output::text(&text)?;
    }
    if report.candidates.is_empty() {
        return Err(Error::NoCandidates {
            attempts: report.attempts,
        });
    }
    Ok(())
}
