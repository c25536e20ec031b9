//! kvick: a Redis-compatible, thread-per-core, shared-nothing data store.
//! See DESIGN.md (in ../shared) and README.md for the shape.

use clap::Parser;
use kvick::{config, server};

/// kvick — a Redis-compatible in-memory data store, one shard per core.
#[derive(Parser)]
#[command(
    version,
    after_help = "Every redis.conf directive kvick knows is also accepted as `--name value`,\n\
                  e.g. `kvick ./kvick.conf --port 7000 --threads 2 --bind \"127.0.0.1 ::1\"`.\n\
                  `--threads N` sets the number of cores (default: all)."
)]
struct Cli {
    /// A redis.conf-style file, then `--name value` directives (which win).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONFIG-FILE] [--NAME VALUE")]
    args: Vec<String>,
}

fn main() {
    let cli = Cli::parse();
    let mut args = cli.args.as_slice();
    let result = (|| {
        if let Some(first) = args.first() {
            if !first.starts_with("--") {
                config::load_file(first)?;
                args = &args[1..];
            }
        }
        config::apply_args(args)?;
        server::run()
    })();
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
