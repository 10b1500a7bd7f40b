//! `secrets:` and `lock:`: the two SSM parameters hoist writes, the one that carries a
//! deploy's secrets (its tier) and the fleet-wide deploy lock (its lease).

use super::Decoder;
use super::fields::keys;
use crate::config::schema::{Lock, SecretTier, Secrets};
use crate::config::yaml::Node;

keys! {
    SecretsKeys { tier }
}

keys! {
    LockKeys { lease }
}

impl Decoder {
    /// `secrets: {tier: TIER}`: how the secrets' parameter is stored.
    pub(super) fn secrets(&mut self, node: &Node, path: &str) -> Option<Secrets> {
        let (f, k) = self.section::<SecretsKeys>(node, path)?;
        let tier = match k.tier.node {
            Some(n) => match self.string(n, &k.tier.path)?.as_str() {
                "auto" => Some(SecretTier::Auto),
                "standard" => Some(SecretTier::Standard),
                "advanced" => Some(SecretTier::Advanced),
                other => {
                    self.issue_help(
                        &k.tier.path,
                        n.loc,
                        format!("`{other}` is not a parameter tier"),
                        "auto (standard when the secrets fit in 4096 bytes, advanced above), \
                         standard (free, at most 4096 bytes) or advanced (charged, up to 8192 \
                         bytes, with an expiration policy)"
                            .into(),
                    );
                    None
                }
            },
            None => Some(SecretTier::Auto),
        };
        self.finish(f);
        Some(Secrets { tier: tier? })
    }

    /// `lock: {lease: DURATION}`: the fleet lock's lease, within its bounds.
    pub(super) fn lock(&mut self, node: &Node, path: &str) -> Option<Lock> {
        let (f, k) = self.section::<LockKeys>(node, path)?;
        let lease = match k.lease.node {
            None => Some(Lock::DEFAULT_LEASE),
            Some(n) => self.duration_in(
                n,
                &k.lease.path,
                Lock::MIN_LEASE..=Lock::MAX_LEASE,
                "the lease is how long the fleet lock stays good without renewal; a running \
                 hoist renews it every third of it (default 5m)",
            ),
        };
        self.finish(f);
        Some(Lock { lease: lease? })
    }
}
