//! How the emulated API behaves where AWS leaves room: the throttling rates of
//! Parameter Store and Secrets Manager, how long `GetCommandInvocation` lags
//! `ListCommandInvocations`, and how often expired parameters are swept. `up`
//! takes them as flags and the world keeps them (`world.json`, `api`). The
//! defaults are AWS's documented values, or the stricter reading where AWS
//! documents none (see `CONFORMANCE.md` ("API")).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiSettings {
    /// For how long after an invocation ends GetCommandInvocation still answers its
    /// earlier status (InProgress) while ListCommandInvocations already shows the end.
    #[arg(long, default_value_t = 500)]
    pub invocation_lag_ms: u64,
    /// Parameter Store reads (GetParameter, GetParameters, GetParametersByPath,
    /// one shared bucket) per second, per account and region.
    #[arg(long, default_value_t = 40)]
    pub param_read_tps: u32,
    /// PutParameter calls per second.
    #[arg(long, default_value_t = 3)]
    pub param_write_tps: u32,
    /// Secrets Manager GetSecretValue and DescribeSecret (one shared bucket) per second.
    #[arg(long, default_value_t = 10_000)]
    pub secret_read_tps: u32,
    /// Secrets Manager PutSecretValue calls per second.
    #[arg(long, default_value_t = 50)]
    pub secret_write_tps: u32,
    /// How often Parameter Store's background scan deletes expired parameters
    /// (scans run at multiples of this many seconds since the epoch).
    #[arg(long, default_value_t = 30)]
    pub param_expiry_scan_secs: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            invocation_lag_ms: 500,
            param_read_tps: 40,
            param_write_tps: 3,
            secret_read_tps: 10_000,
            secret_write_tps: 50,
            param_expiry_scan_secs: 30,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Up {
        #[command(flatten)]
        api: ApiSettings,
    }

    #[test]
    fn the_flags_defaults_are_the_documented_rates() {
        let up = Up::parse_from(["up"]);
        assert_eq!(up.api, ApiSettings::default());
        let old: ApiSettings = serde_json::from_str("{}").expect("an old world.json");
        assert_eq!(old, ApiSettings::default());
    }
}
