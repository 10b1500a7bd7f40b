//! `hoist logs`: the app's container logs on every target, secrets masked.

use clap::Args;

use super::args::{ConfigArgs, FormatArg, TransportArgs};
use super::session::Session;
use crate::ops::{self, Error};
use crate::output::remote as print;
use crate::plan::{Format, LogsRequest};

#[derive(Debug, Args)]
pub(super) struct LogsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    transport: TransportArgs,
    /// Only these targets (instance ids; repeatable).
    #[arg(long = "target", value_name = "ID")]
    targets: Vec<String>,
    /// The last N lines of each target (0: all that fit).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 100)]
    tail: u32,
    /// Only lines since then: a duration (`10m`, `2h`) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", value_parser = since)]
    since: Option<String>,
    /// Keep reading new lines until interrupted (over SSM: a read every 5 s).
    #[arg(long, short = 'F', conflicts_with = "format")]
    follow: bool,
    /// A retained release's container instead of the live one.
    #[arg(long, value_name = "RELEASE")]
    release: Option<String>,
    #[command(flatten)]
    format: FormatArg,
}

/// What Docker's `--since` takes, checked here: a duration (`90s`, `10m`, `2h`) or a time.
fn since(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 40
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":.+-".contains(&b));
    if ok {
        Ok(text.to_owned())
    } else {
        Err("a duration such as 10m or 2h, or an RFC 3339 time".into())
    }
}

impl LogsArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let format = self.format.format;
        let events = session.events(format);
        let cancel = session.cancel();
        if let Some(r) = &self.release
            && !crate::domain::is_release_id(r)
        {
            return Err(Error::BadTo(r.clone()));
        }
        let (config, targets, ssm) = ops::remote::targets(
            &self.config.source(session),
            self.transport.local,
            &self.targets,
            events.as_ref(),
            &cancel,
        )
        .await?;
        let mask = ops::remote::known_secrets(&config);
        let transport = crate::ops::prepare::transport_kind(self.transport.local);
        let mut request = LogsRequest {
            release: self.release.clone(),
            tail: self.tail,
            since: self.since.clone(),
            since_by_target: Vec::new(),
        };
        loop {
            let phase = crate::plan::logs_phase(&config, transport, &request)
                .map_err(|e| Error::Plan(e.into()))?;
            let outputs = match ops::remote::run(
                &phase,
                &targets,
                ssm.clone(),
                "HOIST-LOGS ",
                &mask,
                format!("hoist logs {}", config.app),
                &cancel,
            )
            .await
            {
                Err(Error::Interrupted(_)) if self.follow => return Ok(()),
                other => other?,
            };
            if format == Format::Json {
                print::json(&outputs);
            } else {
                print::lines(&outputs);
                print::problems(&outputs, "cannot read its logs");
            }
            if !self.follow {
                let unread = outputs.iter().filter(|o| o.problem.is_some()).count();
                return if unread == 0 {
                    Ok(())
                } else {
                    Err(Error::Unread(unread, outputs.len()))
                };
            }
            request.since_by_target = outputs
                .iter()
                .filter(|o| !o.said.until.is_empty())
                .map(|o| format!("{}={}", o.target, o.said.until))
                .collect();
            tokio::select! {
                () = tokio::time::sleep(ops::remote::follow_interval(self.transport.local)) => {}
                () = cancel.cancelled() => return Ok(()),
            }
        }
    }
}
