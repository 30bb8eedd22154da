//! `localpair config`.

use serde_json::json;

use crate::args::Args;
use crate::error::Error;
use crate::output;

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let (settings, _) = super::load(args)?;
    let effective = settings.effective().map_err(Error::Config)?;
    let file = settings.file();
    let looked_in = settings.looked_in();
    if args.json {
        return output::json(&json!({
            "file": file,
            "looked_in": looked_in,
            "settings": effective,
        }));
    }
    let mut text = match file {
        Some(path) => format!("# config file: {}\n", path.display()),
        None if looked_in.is_empty() => "# no config file\n".to_owned(),
        None => format!(
            "# no config file; looked for {}\n",
            looked_in
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let lines: Vec<(String, String)> = effective
        .iter()
        .map(|setting| {
            // JSON renders strings, numbers, booleans and arrays as TOML writes them inline; TOML
            // has no null, and an unset option means "the built-in behaviour".
            let value = match serde_json::to_value(&setting.value) {
                Ok(serde_json::Value::Null) => "(unset)".to_owned(),
                Ok(value) => value.to_string(),
                Err(e) => format!("(unreadable: {e})"),
            };
            let from = match &setting.source {
                Some(source) => format!("{} {source}", origin_name(setting.origin)),
                None => origin_name(setting.origin).to_owned(),
            };
            (format!("{} = {value}", setting.key), from)
        })
        .collect();
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (line, from) in lines {
        text.push_str(&format!("{line:<width$}  # {from}\n"));
    }
    output::text(&text)
}

fn origin_name(origin: localpair_core::config::Origin) -> &'static str {
    use localpair_core::config::Origin;
    match origin {
        Origin::Default => "default",
        Origin::File => "file",
        Origin::Environment => "environment",
        Origin::Flag => "flag",
        _ => "application",
    }
}
