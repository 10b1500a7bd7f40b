//! How a phase spreads over its targets over SSM: commands of at most 50 instances (SSM's
//! limit per `SendCommand`), and the waves each runs in at its `MaxConcurrency`.
//!
//! SSM applies `MaxConcurrency` to one command, not to the run. A count is therefore only
//! honoured if the commands go one after another: three commands at `MaxConcurrency=1`
//! sent at once run three hosts at a time. A percentage is a share of each command, so the
//! commands go at once and the run as a whole keeps the share.
//!
//! SSM's `TimeoutSeconds` is a delivery timeout for the whole command: an invocation that
//! has not started by then is never run (`DeliveryTimedOut`), and with rate control the later
//! waves wait their turn inside that time. Each command's timeout, and the deadline hoist
//! waits for, therefore grows with its waves: [`command_timeout`].

use std::time::Duration;

use crate::config::Rate;

/// SSM accepts at most 50 instance ids in one `SendCommand`.
pub const MAX_IDS_PER_COMMAND: usize = 50;
/// How long an instance may take to pick a command up once its turn comes.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);
/// SSM's largest `TimeoutSeconds` (the API's constraint: 30 to 2,592,000).
pub const MAX_TIMEOUT_SECONDS: u64 = 2_592_000;
/// What hoist waits past a command's timeout for the last wave's statuses to settle.
pub const SETTLE_MARGIN: Duration = Duration::from_secs(60);

/// The commands a phase over `n` targets is sent as, and how they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spread {
    /// Instances per command, in target order (each at most 50).
    pub commands: Vec<usize>,
    /// Whether the commands go one after another (a count) or at once (a percentage).
    pub one_after_another: bool,
    /// How many hosts run the script at once, at most.
    pub at_once: usize,
    /// Waves of each command, in command order.
    pub waves: Vec<usize>,
}

impl Spread {
    pub fn of(max_concurrency: Rate, n: usize) -> Spread {
        let commands: Vec<usize> = (0..n)
            .step_by(MAX_IDS_PER_COMMAND)
            .map(|start| (n - start).min(MAX_IDS_PER_COMMAND))
            .collect();
        let per_command = |size: usize| match max_concurrency {
            Rate::Count(c) => (c as usize).clamp(1, size.max(1)),
            Rate::Percent(p) => (size * p as usize).div_ceil(100).max(1),
        };
        let waves = commands
            .iter()
            .map(|&size| size.div_ceil(per_command(size)))
            .collect();
        let one_after_another = matches!(max_concurrency, Rate::Count(_));
        let at_once = if one_after_another {
            commands.iter().map(|&s| per_command(s)).max().unwrap_or(0)
        } else {
            commands.iter().map(|&s| per_command(s)).sum()
        };
        Spread {
            commands,
            one_after_another,
            at_once,
            waves,
        }
    }

    /// The waves the whole phase takes, one after another: the commands' waves added up when
    /// they go one after another, the longest command's otherwise.
    pub fn total_waves(&self) -> usize {
        if self.one_after_another {
            self.waves.iter().sum()
        } else {
            self.waves.iter().copied().max().unwrap_or(0)
        }
    }

    /// The longest the phase can take with every host using its whole `budget`: each
    /// command's [`command_timeout`] and settle margin, added up when they go one after
    /// another.
    pub fn worst_case(&self, budget: Duration) -> Duration {
        let each = self
            .waves
            .iter()
            .map(|&w| command_timeout(w, budget) + SETTLE_MARGIN);
        if self.one_after_another {
            each.sum()
        } else {
            each.max().unwrap_or_default()
        }
    }
}

/// A command's `TimeoutSeconds`: delivery, plus every wave's budget (the last wave starts
/// at most after the others used theirs). May pass [`MAX_TIMEOUT_SECONDS`]; the plan
/// refuses such a rollout ([`too_long`]).
pub fn command_timeout(waves: usize, budget: Duration) -> Duration {
    DELIVERY_TIMEOUT + budget * u32::try_from(waves).unwrap_or(u32::MAX)
}

/// Why a phase cannot run over SSM as configured: a command would need a `TimeoutSeconds`
/// past SSM's largest.
pub fn too_long(spread: &Spread, budget: Duration) -> Option<Duration> {
    spread
        .waves
        .iter()
        .map(|&w| command_timeout(w, budget))
        .find(|t| t.as_secs() > MAX_TIMEOUT_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_goes_command_after_command_and_never_runs_more_hosts_than_it_says() {
        let s = Spread::of(Rate::Count(2), 120);
        assert_eq!(s.commands, [50, 50, 20]);
        assert!(s.one_after_another);
        assert_eq!(s.at_once, 2);
        assert_eq!(s.waves, [25, 25, 10]);
        assert_eq!(s.total_waves(), 60);
        let one = Spread::of(Rate::Count(1), 120);
        assert_eq!((one.at_once, one.total_waves()), (1, 120));
    }

    #[test]
    fn a_count_larger_than_a_command_runs_the_command_at_once() {
        let s = Spread::of(Rate::Count(80), 120);
        assert_eq!((s.at_once, s.waves.clone()), (50, vec![1, 1, 1]));
        assert_eq!(s.total_waves(), 3);
        let few = Spread::of(Rate::Count(10), 3);
        assert_eq!((few.at_once, few.total_waves()), (3, 1));
    }

    #[test]
    fn a_percentage_is_a_share_of_each_command_sent_at_once() {
        let s = Spread::of(Rate::Percent(10), 120);
        assert!(!s.one_after_another);
        assert_eq!(s.at_once, 5 + 5 + 2);
        assert_eq!(s.waves, [10, 10, 10]);
        assert_eq!(s.total_waves(), 10);
        let all = Spread::of(Rate::Percent(100), 7);
        assert_eq!((all.at_once, all.total_waves()), (7, 1));
        let none = Spread::of(Rate::Percent(1), 0);
        assert_eq!((none.at_once, none.total_waves()), (0, 0));
    }

    #[test]
    fn the_timeout_and_the_worst_case_grow_with_the_waves() {
        // 25 hosts at 1, 70 s each: the old fixed deadline (delivery + one budget + 60 s)
        // cut this off after 730 s, a third of the way.
        let budget = Duration::from_secs(70);
        let s = Spread::of(Rate::Count(1), 25);
        assert_eq!(
            command_timeout(25, budget),
            Duration::from_secs(600 + 25 * 70)
        );
        assert_eq!(
            s.worst_case(budget),
            Duration::from_secs(600 + 25 * 70 + 60)
        );
        let many = Spread::of(Rate::Count(1), 120);
        assert_eq!(
            many.worst_case(budget),
            Duration::from_secs(3 * (600 + 60) + 120 * 70)
        );
        assert_eq!(too_long(&many, budget), None);
        let day = Duration::from_secs(86_400);
        assert_eq!(
            too_long(&many, day),
            Some(Duration::from_secs(600 + 50 * 86_400))
        );
    }
}
