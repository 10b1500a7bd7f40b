//! The top level of `hoist.yaml`: `app`, `region`, `strategy` and `retain`, each section
//! read by its own file, and the checks across sections (the blue-green section against the
//! strategy, one host's run against SSM's 48 h).

use std::path::Path;
use std::time::Duration;

use super::fields::keys;
use super::names::{is_app_name, is_region};
use super::{Decoder, empty_map};
use crate::config::duration;
use crate::config::error::Issue;
use crate::config::schema::{
    BlueGreen, Config, Container, Env, Healthcheck, Lock, Secrets, Strategy,
};
use crate::config::yaml::{Loc, Node, Value};

keys! {
    TopKeys {
        app,
        environment,
        region,
        image,
        targets,
        container,
        healthcheck,
        env,
        strategy,
        blue_green,
        rollout,
        retain,
        secrets,
        lock,
    }
}

impl Decoder {
    pub(super) fn config(&mut self, root: &Node, base_dir: &Path) -> Option<Config> {
        if root.value == Value::Null {
            self.issues.push(Issue {
                field: String::new(),
                loc: None,
                message: "the file is empty: a hoist.yaml needs at least `app` and `targets`"
                    .into(),
                help: Some(
                    "e.g. `app: web` and `targets: {tags: {Env: [staging]}}`; everything else \
                     has a default"
                        .into(),
                ),
            });
            return None;
        }
        let (f, k) = self.section::<TopKeys>(root, "")?;
        let app = self
            .required(&f, &k.app, "the application's name")
            .and_then(|n| self.app_name(n, &k.app.path));
        let environment = self.environment(k.environment.node, &k.environment.path);
        let region = k.region.node.and_then(|n| self.region(n, &k.region.path));
        let image = self.image(
            k.image.node,
            &k.image.path,
            app.as_deref(),
            base_dir,
            root.loc,
        );
        let targets = match self.required(&f, &k.targets, "which instances to deploy to") {
            Some(n) => self.targets(n, &k.targets.path),
            None => None,
        };
        let container_node = k.container.node;
        let container = match container_node {
            Some(n) => self.container(n, &k.container.path),
            None => self.container(&empty_map(root.loc), &k.container.path),
        };
        let health_node = k.healthcheck.node;
        let healthcheck = match health_node {
            Some(n) => self.healthcheck(n, &k.healthcheck.path),
            None => self.healthcheck(&empty_map(root.loc), &k.healthcheck.path),
        };
        let env = match k.env.node {
            Some(n) => self.env(n, &k.env.path),
            None => Some(Env::default()),
        };
        let strategy_node = k.strategy.node;
        let strategy = match strategy_node {
            Some(n) => self.strategy(n, &k.strategy.path),
            None => Some(Strategy::Recreate),
        };
        let blue_green = self.blue_green(
            &k.blue_green,
            strategy,
            container_node.or(strategy_node).map_or(root.loc, |n| n.loc),
            root.loc,
        );
        if let (Some(c), Some(h)) = (&container, &healthcheck) {
            // With the blue-green section unknown (invalid), what is known must fit already.
            let bg = blue_green.as_ref().ok().and_then(Option::as_ref);
            self.check_budget(c, h, bg, health_node.map_or(root.loc, |n| n.loc));
        }
        let rollout = self.rollout(k.rollout.node, &k.rollout.path, strategy);
        let (rollout, canary) = match rollout {
            Some((r, c)) => (Some(r), Some(c)),
            None => (None, None),
        };
        let retain = match k.retain.node {
            Some(n) => self
                .int_in(n, &k.retain.path, 0, 50)
                .map(|r| u32::try_from(r).expect("checked to be 0-50")),
            None => Some(3),
        };
        let secrets = match k.secrets.node {
            Some(n) => self.secrets(n, &k.secrets.path),
            None => Some(Secrets::default()),
        };
        let lock = match k.lock.node {
            Some(n) => self.lock(n, &k.lock.path),
            None => Some(Lock::default()),
        };
        self.finish(f);
        Some(Config {
            app: app?,
            environment: environment.ok()?,
            region,
            image: image?,
            targets: targets?,
            container: container?,
            healthcheck: healthcheck?,
            env: env?,
            strategy: strategy?,
            blue_green: blue_green.ok()?,
            rollout: rollout?,
            canary: canary?,
            retain: retain?,
            secrets: secrets?,
            lock: lock?,
        })
    }

    fn app_name(&mut self, node: &Node, field: &str) -> Option<String> {
        let name = self.string(node, field)?;
        if is_app_name(&name) {
            Some(name)
        } else {
            self.issue_help(
                field,
                node.loc,
                format!("`{name}` is not a valid app name"),
                "use 1-32 lowercase letters, digits and hyphens, starting with a letter and \
                 not ending with a hyphen (it names containers, locks and paths on the host)"
                    .into(),
            );
            None
        }
    }

    /// The environment: the one selected on the command line, or `environment:`'s; when
    /// both are given they must agree. `Ok(None)`: no environment; `Err`: reported.
    fn environment(&mut self, node: Option<&Node>, field: &str) -> Result<Option<String>, ()> {
        let Some(node) = node else {
            return Ok(self.selected.clone());
        };
        let name = self.string(node, field).ok_or(())?;
        if !is_app_name(&name) {
            self.issue_help(
                field,
                node.loc,
                format!("`{name}` is not a valid environment name"),
                "use 1-32 lowercase letters, digits and hyphens, starting with a letter and \
                 not ending with a hyphen (it names the environment's SSM parameters and its \
                 overlay file)"
                    .into(),
            );
            return Err(());
        }
        match self.selected.clone() {
            Some(selected) if selected != name => {
                self.issue_help(
                    field,
                    node.loc,
                    format!(
                        "the file is for environment `{name}`, but --environment selects \
                         `{selected}`"
                    ),
                    format!(
                        "deploy it with `-e {name}`, or drop `environment:` from the file and \
                         keep what differs per environment in hoist.<environment>.yaml"
                    ),
                );
                Err(())
            }
            _ => Ok(Some(name)),
        }
    }

    fn region(&mut self, node: &Node, field: &str) -> Option<String> {
        let region = self.string(node, field)?;
        self.accept(region, is_region, field, node.loc, |r| {
            format!("`{r}` is not an AWS region name (e.g. us-east-1)")
        })
    }

    fn strategy(&mut self, node: &Node, field: &str) -> Option<Strategy> {
        let s = self.string(node, field)?;
        match s.as_str() {
            "recreate" => Some(Strategy::Recreate),
            "blue-green" => Some(Strategy::BlueGreen),
            other => {
                self.issue(
                    field,
                    node.loc,
                    format!("unknown strategy `{other}` (known: recreate, blue-green)"),
                );
                None
            }
        }
    }

    /// One host's run must fit in SSM's 48 h: the health gate, the stop, the strategy's
    /// switch and the script's own slack.
    fn check_budget(
        &mut self,
        c: &Container,
        h: &Healthcheck,
        blue_green: Option<&BlueGreen>,
        loc: Loc,
    ) {
        let switch = blue_green.map_or(Duration::ZERO, BlueGreen::switch_time);
        if duration::run_budget(h.timeout, h.start_period, c.stop_timeout, switch).is_some() {
            return;
        }
        let switch_terms = if blue_green.is_some() {
            " + blue_green.drain + blue_green.post_switch_check"
        } else {
            ""
        };
        self.issue(
            "healthcheck.timeout",
            loc,
            format!(
                "healthcheck.timeout + healthcheck.start_period + container.stop_timeout\
                 {switch_terms} + {} for pull and prune ({}) is more than {}, the most SSM lets \
                 a command run",
                duration::format(duration::RUN_SLACK),
                duration::format(
                    h.timeout
                        .saturating_add(h.start_period)
                        .saturating_add(c.stop_timeout)
                        .saturating_add(switch)
                        .saturating_add(duration::RUN_SLACK)
                ),
                duration::format(duration::MAX)
            ),
        );
    }
}
