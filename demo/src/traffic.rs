//! The traffic generator: `GET target` at a steady rate through the app's
//! proxy, and a line every 10 s saying how the calls went.

use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use crate::cli::TrafficArgs;
use crate::client::ProxyClient;
use crate::serve::{bind, json, serve};

/// How often a summary line is printed.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Calls the target until stopped.
pub async fn run(args: TrafficArgs) -> anyhow::Result<()> {
    if let Some(listen) = args.listen {
        let listener = bind(listen).await?;
        tokio::spawn(serve(listener, |_request| async {
            json(StatusCode::OK, &json!({"ok": true}))
        }));
    }
    let client = ProxyClient::from_env()?;
    println!(
        "traffic: GET {} at {} rps (proxy {:?})",
        args.target, args.rps, client.proxy
    );
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rps));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (sender, mut outcomes) = tokio::sync::mpsc::unbounded_channel::<Result<u16, String>>();
    let mut report = tokio::time::interval(REPORT_EVERY);
    report.tick().await;
    let mut tally = Tally::default();
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let sender = sender.clone();
                let target = args.target.clone();
                tokio::spawn(async move {
                    let outcome = client
                        .get(&target)
                        .await
                        .map(|reply| reply.status.as_u16())
                        .map_err(|error| format!("{error:#}"));
                    let _ = sender.send(outcome);
                });
            }
            Some(outcome) = outcomes.recv() => tally.add(outcome),
            _ = report.tick() => {
                println!("traffic: {}", tally.summary());
                tally = Tally::default();
            }
        }
    }
}

/// Outcomes since the last report.
#[derive(Debug, Default)]
pub struct Tally {
    ok: u64,
    failed_status: u64,
    errors: u64,
    last_error: Option<String>,
}

impl Tally {
    /// Counts one call: a status (2xx is a success) or an error.
    pub fn add(&mut self, outcome: Result<u16, String>) {
        match outcome {
            Ok(status) if (200..300).contains(&status) => self.ok += 1,
            Ok(_) => self.failed_status += 1,
            Err(error) => {
                self.errors += 1;
                self.last_error = Some(error);
            }
        }
    }

    /// One line.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} ok, {} failed, {} errors",
            self.ok, self.failed_status, self.errors
        );
        if let Some(error) = &self.last_error {
            line.push_str(&format!(" (last error: {error})"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts() {
        let mut tally = Tally::default();
        for outcome in [Ok(200), Ok(502), Ok(204), Err("refused".to_string())] {
            tally.add(outcome);
        }
        assert_eq!(
            tally.summary(),
            "2 ok, 1 failed, 1 errors (last error: refused)"
        );
    }
}
