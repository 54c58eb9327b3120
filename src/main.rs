//! `carelog`: parses the command line and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    carelog::telemetry::init();
    let cli = carelog::cli::Cli::parse();
    match carelog::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carelog: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
