//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Find devices on the local network and pair with them securely.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "localpair",
    version,
    about = "Find devices on the local network and pair with them securely",
    long_about = "Find devices on the local network and pair with them securely.\n\n\
        localpair finds the other devices on this network (UDP multicast, mDNS, the addresses in a \
        pairing code, a scan), pairs two of them with a code shown as a QR or copied (pinned TLS \
        1.3 keys and a one-time secret that never crosses the network), remembers the pairing so \
        they reconnect later without a code, and explains, when something fails, exactly why: \
        which address, which firewall, which network rule.",
    after_help = "Examples:\n  \
        localpair host                      # show a pairing code and its QR, wait\n  \
        localpair join LP:AEAK...           # pair with it from another device\n  \
        localpair connect desk < file       # later: send to a paired device, no code\n  \
        localpair diagnose                  # why can't this device pair here?"
)]
#[non_exhaustive]
pub struct Args {
    /// Read this config file (it must exist). Without it: the file LOCALPAIR_CONFIG names, else
    /// the first found of ./localpair.toml, $XDG_CONFIG_HOME/localpair/config.toml (or the
    /// platform's config directory), /etc/localpair/config.toml. A config file must belong to you
    /// or root and must not be writable by group or others, as ssh requires of its config.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print exactly one JSON object on stdout; progress goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Keep this device's key and trust store in DIR (default: `[device] state_dir`, else
    /// $XDG_STATE_HOME/localpair or ~/.local/state/localpair).
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "ephemeral")]
    pub state_dir: Option<PathBuf>,
    /// A throwaway identity for this run: a new key, nothing read or written on disk.
    #[arg(long, global = true)]
    pub ephemeral: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// List registered strategies (name, kind, crate).
    #[command(after_help = "Examples:\n  localpair strategies\n  localpair --json strategies")]
    Strategies,
    /// Run the resolver chain: which of my addresses can a peer reach?
    #[command(
        after_help = "Examples:\n  localpair resolve\n  localpair --json resolve | jq '.candidates[0].ip'"
    )]
    Resolve,
    /// Announce this device and list the peers found.
    #[command(
        after_help = "Examples:\n  localpair discover\n  localpair discover --count 1 --timeout 10\n  localpair --json discover --watch"
    )]
    Discover {
        /// Listen this many seconds (default: `discover.deadline_ms`).
        #[arg(long, value_name = "S", value_parser = parse_seconds)]
        timeout: Option<std::time::Duration>,
        /// Stop after this many peers.
        #[arg(long, value_name = "N", conflicts_with = "watch")]
        count: Option<usize>,
        /// Keep running (until Ctrl-C, or `--timeout`) and print each device as it is found,
        /// changes or is lost; with `--json`, one object per line.
        #[arg(long)]
        watch: bool,
    },
    /// Start pairing: print the code and its QR, wait for one peer.
    #[command(
        after_help = "Examples:\n  localpair host\n  localpair host --flow post --qr png:code.png\n  localpair --json host --qr none\n  localpair host --short      # a code to read aloud: 47-392-8150"
    )]
    Host {
        /// Show a short code to read aloud and type (`47-392-8150`) instead of a QR code: for a
        /// device without a camera. 2 public digits pick the host, 7 secret ones pair; it lives
        /// 2 minutes and 3 wrong tries end it.
        #[arg(long, conflicts_with_all = ["flow", "qr", "keep_qr"])]
        short: bool,
        /// pre: show the code first, the joiner discovers afterwards (listens on all addresses);
        /// post: devices discover each other first, the code confirms (listens on the confirmed
        /// LAN address only).
        #[arg(long, value_enum, default_value = "pre")]
        flow: FlowArg,
        /// Where the QR code goes: terminal, none, png:FILE or svg:FILE.
        #[arg(long, default_value = "terminal", value_name = "TARGET")]
        qr: crate::qr::QrTarget,
        /// Leave the PNG or SVG file of --qr in place when hosting ends (it is removed by
        /// default: it holds the code's secret).
        #[arg(long)]
        keep_qr: bool,
        /// Do not save the device that joins in the trust store.
        #[arg(long)]
        no_save: bool,
    },
    /// Pair with a host, from its code (a line on stdin, --code-file, or the argument).
    #[command(
        after_help = "Examples:\n  localpair join LP:AEAK...\n  localpair join --code-file code.txt\n  localpair join            # lists devices, then reads the code\n  echo LP:AEAK... | localpair --json join\n  localpair join --short 47-392-8150\n  localpair join --short    # then type the short code"
    )]
    Join {
        /// Pair by the short code the host shows (`host --short`), typed on stdin when given
        /// without CODE (preferred: a command line is visible to every local user with `ps`).
        /// Spaces and dashes do not matter.
        #[arg(
            long,
            value_name = "CODE",
            num_args = 0..=1,
            default_missing_value = "",
            conflicts_with_all = ["code", "code_file"]
        )]
        short: Option<String>,
        /// The pairing code (`LP:...`). Prefer stdin or --code-file: the command line of a process
        /// is visible to every local user (`ps`), and the code holds the secret while it is valid.
        /// With neither, the code is read from stdin while discovery already runs.
        #[arg(conflicts_with = "code_file")]
        code: Option<String>,
        /// Read the code from FILE (at most 4096 bytes); a warning says so when other users can
        /// read it.
        #[arg(long, value_name = "FILE")]
        code_file: Option<PathBuf>,
        /// Do not save the host in the trust store.
        #[arg(long)]
        no_save: bool,
    },
    /// Accept connections from known peers; what they send goes to stdout.
    #[command(after_help = "Examples:\n  localpair listen\n  localpair listen --once > dir.tar")]
    Listen {
        /// Exit 0 after the first connection that ends cleanly (one that breaks, a peer killed
        /// mid-stream, is reported and the next one is waited for).
        #[arg(long)]
        once: bool,
    },
    /// Connect to a known peer without a code; stdin goes to it, what it sends to stdout.
    #[command(
        after_help = "Examples:\n  tar c dir | localpair connect desk\n  localpair connect a1b2c3d4 < notes.txt"
    )]
    Connect {
        /// The peer: its alias or name, its device id, or a prefix of its key fingerprint.
        peer: String,
    },
    /// List the devices this one paired with.
    #[command(after_help = "Examples:\n  localpair peers\n  localpair --json peers")]
    Peers,
    /// Print the commands that let localpair's ports through this device's firewall.
    #[command(
        after_help = "Examples:\n  localpair firewall\n  localpair firewall --shell ufw | sudo sh"
    )]
    Firewall {
        /// Write the rules for this firewall instead of the one detected.
        #[arg(long, value_name = "FIREWALL", value_parser = firewall_shell())]
        shell: Option<localpair_diagnostics::firewall::Shell>,
    },
    /// Forget a known peer: it can no longer connect, nor be connected to.
    #[command(after_help = "Examples:\n  localpair forget desk\n  localpair forget a1b2c3d4")]
    Forget {
        /// The peer: its alias or name, its device id, or a prefix of its key fingerprint.
        peer: String,
    },
    /// Run the diagnostics report: why can (or can't) this device pair here? Sends multicast,
    /// mDNS and connections to the peers found, on the local network only.
    #[command(
        after_help = "Examples:\n  localpair diagnose\n  localpair diagnose --redact --out report.json"
    )]
    Diagnose {
        /// Also save the JSON report to FILE (for a bug report); text still goes to stdout
        /// unless --json.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Mask MAC addresses, host and device names and public IP addresses, log included.
        #[arg(long)]
        redact: bool,
        /// Listen this many seconds for peers (default: `diagnostics.discovery_window_ms`).
        #[arg(long, value_name = "S", value_parser = parse_seconds)]
        window: Option<std::time::Duration>,
    },
    /// Print the effective settings and where each value came from (default, which config file,
    /// which environment variable, which flag), and which files were looked for.
    #[command(
        after_help = "Examples:\n  localpair config\n  LOCALPAIR_RESOLVE__MODE=all localpair config | grep resolve.mode\n  localpair --json config | jq '.settings[] | select(.from != \"default\")'"
    )]
    Config,
    /// Print a shell completion script for localpair.
    #[command(
        after_help = "Examples:\n  localpair completions bash > ~/.local/share/bash-completion/completions/localpair\n  localpair completions zsh > ~/.zfunc/_localpair\n  localpair completions fish > ~/.config/fish/completions/localpair.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from these options.
    #[command(
        after_help = "Examples:\n  localpair man | man -l -\n  localpair man > /usr/local/share/man/man1/localpair.1"
    )]
    Man,
}

/// `--flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum FlowArg {
    /// Pre-shared: code first.
    Pre,
    /// Post-shared: discovery first.
    Post,
}

fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero() && d.as_secs() <= 24 * 3600)
        .ok_or_else(|| format!("`{text}`: expected more than 0 and at most 86400 seconds"))
}

/// `--shell`: one of the firewalls the diagnostics crate writes rules for; clap lists them in
/// `--help`, in errors and in completions.
fn firewall_shell()
-> impl clap::builder::TypedValueParser<Value = localpair_diagnostics::firewall::Shell> {
    use clap::builder::TypedValueParser as _;
    use localpair_diagnostics::firewall::Shell;
    clap::builder::PossibleValuesParser::new(Shell::ALL.map(Shell::as_str))
        .try_map(|name| Shell::from_name(&name).ok_or("not a known firewall"))
}
