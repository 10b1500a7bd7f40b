//! `rollout:`: how a deploy spreads over the fleet, and its canary.

use super::Decoder;
use super::fields::keys;
use crate::config::schema::{Canary, Rate, Rollout, Strategy};
use crate::config::yaml::{Node, Value};

keys! {
    RolloutKeys { mode, canary, canary_window }
}

impl Decoder {
    /// `rollout:`: a mode (`one-phase`, `two-phase`), or a mapping of `mode`, `canary` and
    /// `canary_window`. Two-phase by default for blue-green, one-phase for recreate (whose
    /// two-phase stage only pulls); a canary needs a two-phase blue-green rollout (it switches
    /// itself back to the color still running).
    pub(super) fn rollout(
        &mut self,
        node: Option<&Node>,
        path: &str,
        strategy: Option<Strategy>,
    ) -> Option<(Rollout, Option<Canary>)> {
        let default = match strategy {
            Some(Strategy::BlueGreen) => Rollout::TwoPhase,
            _ => Rollout::OnePhase,
        };
        let Some(node) = node else {
            return Some((default, None));
        };
        let (mode, canary) = if let Value::Map(_) = &node.value {
            let (f, k) = self.section::<RolloutKeys>(node, path)?;
            let mode = match k.mode.node {
                Some(n) => self.rollout_mode(n, &k.mode.path),
                None => Some(default),
            };
            let canary_node = k.canary.node;
            let count = canary_node.map(|n| (self.rate(n, &k.canary.path, 1), n.loc));
            let window_node = k.canary_window.node;
            let window = match window_node {
                None => Some(Canary::DEFAULT_WINDOW),
                Some(n) => self.duration_in(
                    n,
                    &k.canary_window.path,
                    Canary::MIN_WINDOW..=Canary::MAX_WINDOW,
                    "how long each canary is watched after its switch before the rest switch \
                     (default 1m)",
                ),
            };
            if count.is_none() && window_node.is_some() {
                let loc = k.canary_window.key_loc.unwrap_or(node.loc);
                self.issue_help(
                    &k.canary_window.path,
                    loc,
                    "`canary_window` without `canary`: no target is a canary",
                    "set `rollout.canary` (a number of targets, or a percentage such as \"10%\")"
                        .into(),
                );
            }
            self.finish(f);
            let canary = match count {
                None => Some(None),
                Some((Some(Rate::Percent(100)), loc)) => {
                    self.issue_help(
                        &k.canary.path,
                        loc,
                        "a canary of 100% is every target: nothing is left to protect",
                        "a number of targets, or a percentage below 100%".into(),
                    );
                    None
                }
                Some((Some(count), loc)) => {
                    let needs = if strategy != Some(Strategy::BlueGreen) {
                        Some("`strategy: blue-green`")
                    } else if mode == Some(Rollout::OnePhase) {
                        Some("`rollout.mode: two-phase`")
                    } else {
                        None
                    };
                    if let Some(needs) = needs {
                        self.issue_help(
                            &k.canary.path,
                            loc,
                            format!(
                                "a canary needs {needs}: it switches a few staged targets \
                                 first and, when one fails, switches it back to the color \
                                 still running there"
                            ),
                            "set `strategy: blue-green` with the two-phase rollout (its \
                             default), or remove `canary`"
                                .into(),
                        );
                        None
                    } else {
                        window.map(|window| Some(Canary { count, window }))
                    }
                }
                Some((None, _)) => None,
            };
            (mode, canary)
        } else {
            (self.rollout_mode(node, path), Some(None))
        };
        Some((mode?, canary?))
    }

    /// A rollout mode, `one-phase` or `two-phase`.
    fn rollout_mode(&mut self, node: &Node, field: &str) -> Option<Rollout> {
        let s = self.string(node, field)?;
        let rollout = match s.as_str() {
            "one-phase" => Rollout::OnePhase,
            "two-phase" => Rollout::TwoPhase,
            other => {
                self.issue_help(
                    field,
                    node.loc,
                    format!("unknown rollout `{other}` (known: one-phase, two-phase)"),
                    "`rollout: two-phase`, or a mapping such as `rollout: {mode: two-phase, \
                     canary: 1, canary_window: 60s}`"
                        .into(),
                );
                return None;
            }
        };
        Some(rollout)
    }
}
