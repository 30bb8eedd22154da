//! `localpair strategies`.

use serde_json::json;

use crate::args::Args;
use crate::error::Error;
use crate::output;

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let registry = localpair_core::Registry::linked().map_err(Error::Config)?;
    let list = registry.list();
    if args.json {
        return output::json(&json!({ "strategies": list }));
    }
    let name_width = list.iter().map(|s| s.name.len()).max().unwrap_or(4);
    let crate_width = list.iter().map(|s| s.crate_name.len()).max().unwrap_or(5);
    let mut text = format!(
        "{:<name_width$}  {:<10}  {:<crate_width$}  WHAT\n",
        "NAME", "KIND", "CRATE"
    );
    for s in &list {
        text.push_str(&format!(
            "{:<name_width$}  {:<10}  {:<crate_width$}  {}\n",
            s.name,
            s.kind.to_string(),
            s.crate_name,
            s.summary
        ));
    }
    output::text(&text)
}
