//! `weft dashboard`: prints the dashboard's URL — the controller's web
//! address, with `#token=<API token>` when the token file can be read (the
//! dashboard's tap page needs it) — and opens it with `xdg-open` when
//! running on a terminal with a display. `--show url` only prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use crate::api::{self, Version};
use crate::global_options::GlobalOptions;

/// What `weft dashboard` does with the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Show {
    /// Print it and open it in a browser when possible.
    #[default]
    Dashboard,
    /// Only print it.
    Url,
}

/// `weft dashboard` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `dashboard` (print and open) or `url` (print only).
    #[arg(long, value_enum, default_value_t)]
    pub show: Show,
    /// The file holding the API token (default: from `up.json`, else `<state dir>/api-token`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// The dashboard URL: the API's base with a trailing `/`, and the token as
/// a fragment (never sent to the server in a request line or logged).
pub fn dashboard_url(base: &str, token: Option<&str>) -> String {
    let mut url = format!("{}/", base.trim_end_matches('/'));
    if let Some(token) = token {
        url.push_str("#token=");
        url.push_str(token);
    }
    url
}

/// Whether to run `xdg-open` (pure): asked to, on a terminal, with a display.
pub fn should_open(show: Show, is_terminal: bool, has_display: bool) -> bool {
    show == Show::Dashboard && is_terminal && has_display
}

/// Runs `weft dashboard`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<ExitCode> {
    let client = api::client(global);
    let token = api::read_token(&api::token_path(global, args.token_file.as_deref()));
    let url = dashboard_url(client.base(), token.as_deref());
    if args.show == Show::Url {
        println!("{url}");
        return Ok(ExitCode::SUCCESS);
    }
    client.get_json::<Version>("/api/version").await?;
    println!("weft dashboard available at:\n{url}");
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
    if should_open(args.show, std::io::stdout().is_terminal(), has_display) {
        let opened = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(error) = opened {
            eprintln!("weft: could not open a browser (xdg-open: {error}); open the URL yourself");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            dashboard_url("http://127.0.0.1:8084", None),
            "http://127.0.0.1:8084/"
        );
        assert_eq!(
            dashboard_url("http://127.0.0.1:8084/", Some("s3cret")),
            "http://127.0.0.1:8084/#token=s3cret"
        );
    }

    #[test]
    fn opens_only_on_a_terminal_with_a_display() {
        for (show, terminal, display, expected) in [
            (Show::Dashboard, true, true, true),
            (Show::Dashboard, false, true, false),
            (Show::Dashboard, true, false, false),
            (Show::Url, true, true, false),
        ] {
            assert_eq!(should_open(show, terminal, display), expected);
        }
    }
}
