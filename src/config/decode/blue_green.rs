//! `blue_green:`: how a blue-green deploy switches, checked against the strategy and
//! `container.publish`.

use std::time::Duration;

use super::fields::{Field, keys};
use super::{Decoder, empty_map};
use crate::config::duration;
use crate::config::schema::{BlueGreen, Proxy, Strategy};
use crate::config::yaml::{Loc, Node, Value};

keys! {
    BlueGreenKeys { drain, post_switch_check, install_proxy, ports, proxy }
}

keys! {
    ProxyKeys { max_body, read_timeout, ipv6 }
}

impl Decoder {
    /// `blue_green:` for the strategy chosen: `Ok(None)` when it is not blue-green (and
    /// the section is absent), `Ok(Some(..))` with every default filled in when it is.
    /// `publish_missing_at` is where a missing `container.publish` is reported.
    pub(super) fn blue_green(
        &mut self,
        field: &Field<'_>,
        strategy: Option<Strategy>,
        publish_missing_at: Loc,
        root_loc: Loc,
    ) -> Result<Option<BlueGreen>, Reported> {
        // The section's own fields are checked whatever the strategy; an absent section is
        // its defaults.
        let empty = empty_map(root_loc);
        let section = self.blue_green_section(field.node.unwrap_or(&empty), &field.path);
        match strategy {
            // The strategy itself is wrong: said already.
            None => Err(Reported),
            Some(Strategy::Recreate) => {
                if let Some(loc) = field.key_loc {
                    self.issue_help(
                        &field.path,
                        loc,
                        "`blue_green` applies to `strategy: blue-green`, and this config's \
                         strategy is recreate",
                        "set `strategy: blue-green`, or remove the blue_green section".into(),
                    );
                    return Err(Reported);
                }
                Ok(None)
            }
            Some(Strategy::BlueGreen) => {
                let section = section.ok_or(Reported)?;
                let ports = match (self.publish, section.ports) {
                    (None, _) => {
                        self.issue_help(
                            "container.publish",
                            publish_missing_at,
                            "`strategy: blue-green` needs `container.publish`, the host port \
                             nginx listens on and proxies to the live color",
                            "e.g. `container: {publish: 80}`; each color is published on a \
                             loopback port of its own (blue_green.ports)"
                                .into(),
                        );
                        None
                    }
                    // An invalid port: said already.
                    (Some((_, None)), _) | (_, Ports::Invalid) => None,
                    (Some((_, Some(_))), Ports::Given(ports)) => Some(ports),
                    (Some((loc, Some(publish))), Ports::Default) => {
                        let derived = BlueGreen::default_ports(publish);
                        if derived.is_none() {
                            let [blue, green] = BlueGreen::PORT_OFFSETS;
                            self.issue_help(
                                &section.ports_path,
                                field.node.map_or(loc, |n| n.loc),
                                format!(
                                    "no default ports for container.publish {publish}: they \
                                     are publish + {blue} and publish + {green}, and {} is \
                                     more than 65535",
                                    u32::from(publish) + u32::from(green)
                                ),
                                "set `blue_green.ports: [blue, green]`, two free host ports \
                                 the colors listen on (on 127.0.0.1)"
                                    .into(),
                            );
                        }
                        derived
                    }
                };
                let blue_green = BlueGreen {
                    drain: section.drain.ok_or(Reported)?,
                    post_switch_check: section.post_switch_check.ok_or(Reported)?,
                    install_proxy: section.install_proxy.ok_or(Reported)?,
                    ports: ports.ok_or(Reported)?,
                    proxy: section.proxy.ok_or(Reported)?,
                };
                Ok(Some(blue_green))
            }
        }
    }

    /// The fields of a `blue_green:` mapping, each `None` when invalid.
    fn blue_green_section(&mut self, node: &Node, path: &str) -> Option<Section> {
        let (f, k) = self.section::<BlueGreenKeys>(node, path)?;
        let bounded = |d: &mut Self, field: &Field<'_>, default, min, max| match field.node {
            None => Some(default),
            Some(n) => {
                let value = d.duration(n, &field.path)?;
                if (min..=max).contains(&value) {
                    Some(value)
                } else {
                    d.issue(
                        &field.path,
                        n.loc,
                        format!(
                            "{} is out of range ({}-{})",
                            duration::format(value),
                            duration::format(min),
                            duration::format(max)
                        ),
                    );
                    None
                }
            }
        };
        let drain = bounded(
            self,
            &k.drain,
            BlueGreen::DEFAULT_DRAIN,
            Duration::ZERO,
            BlueGreen::MAX_DRAIN,
        );
        let post_switch_check = bounded(
            self,
            &k.post_switch_check,
            BlueGreen::DEFAULT_POST_SWITCH_CHECK,
            BlueGreen::MIN_POST_SWITCH_CHECK,
            BlueGreen::MAX_POST_SWITCH_CHECK,
        );
        let install_proxy = match k.install_proxy.node {
            Some(n) => self.boolean(n, &k.install_proxy.path),
            None => Some(false),
        };
        let ports = match k.ports.node {
            None => Ports::Default,
            Some(n) => self
                .color_ports(n, &k.ports.path)
                .map_or(Ports::Invalid, Ports::Given),
        };
        let proxy = match k.proxy.node {
            None => Some(Proxy::default()),
            Some(n) => self.proxy(n, &k.proxy.path),
        };
        self.finish(f);
        Some(Section {
            drain,
            post_switch_check,
            install_proxy,
            ports,
            ports_path: k.ports.path,
            proxy,
        })
    }

    /// `proxy: {max_body, read_timeout, ipv6}`, each defaulted to what a port of the app's
    /// own gives; `None` when any is invalid (reported).
    fn proxy(&mut self, node: &Node, path: &str) -> Option<Proxy> {
        let (f, k) = self.section::<ProxyKeys>(node, path)?;
        let defaults = Proxy::default();
        let max_body = match k.max_body.node {
            None => Some(defaults.max_body.unwrap_or(0)),
            Some(n) => self.size(n, &k.max_body.path),
        };
        let read_timeout = match k.read_timeout.node {
            None => Some(defaults.read_timeout),
            Some(n) => self.duration_in(
                n,
                &k.read_timeout.path,
                Proxy::MIN_READ_TIMEOUT..=Proxy::MAX_READ_TIMEOUT,
                "how long a request or response may sit idle between the client, nginx and \
                 the app (default 1h, long enough for WebSockets and server-sent events)",
            ),
        };
        let ipv6 = match k.ipv6.node {
            None => Some(defaults.ipv6),
            Some(n) => self.boolean(n, &k.ipv6.path),
        };
        self.finish(f);
        Some(Proxy {
            max_body: Some(max_body?).filter(|bytes| *bytes > 0),
            read_timeout: read_timeout?,
            ipv6: ipv6?,
        })
    }

    /// A body size as nginx writes one: bytes, or a number with `k`, `m` or `g` (1024-based),
    /// at most [`Proxy::MAX_BODY`] (`0`: no limit).
    fn size(&mut self, node: &Node, path: &str) -> Option<u64> {
        const HELP: &str = "a size as nginx writes one: bytes, or a number with k, m or g \
                            (e.g. `10m`); 0 or absent: no limit";
        let text = match &node.value {
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.clone(),
            _ => {
                self.wrong_type(path, node, "a size such as \"10m\"");
                return None;
            }
        };
        let (digits, unit) = match text.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], Some(c.to_ascii_lowercase())),
            _ => (text.as_str(), None),
        };
        let shift = match unit {
            None => Some(0),
            Some('k') => Some(10),
            Some('m') => Some(20),
            Some('g') => Some(30),
            Some(_) => None,
        };
        let bytes = match (digits.parse::<u64>(), shift) {
            (Ok(n), Some(shift)) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                n.checked_mul(1 << shift)
            }
            _ => {
                self.issue_help(
                    path,
                    node.loc,
                    format!("`{text}` is not a size"),
                    HELP.into(),
                );
                return None;
            }
        };
        match bytes {
            Some(b) if b <= Proxy::MAX_BODY => Some(b),
            _ => {
                self.issue_help(
                    path,
                    node.loc,
                    format!("`{text}` is more than the largest size, 1024g"),
                    HELP.into(),
                );
                None
            }
        }
    }

    /// `ports: [blue, green]`: two distinct ports, neither `container.publish`.
    fn color_ports(&mut self, node: &Node, path: &str) -> Option<[u16; 2]> {
        const COLORS: [&str; 2] = ["blue", "green"];
        let Value::Seq(items) = &node.value else {
            self.wrong_type(path, node, "a list of two ports, [blue, green]");
            return None;
        };
        if items.len() != 2 {
            self.issue_help(
                path,
                node.loc,
                format!(
                    "{} port{} given; blue-green needs two, [blue, green]",
                    items.len(),
                    if items.len() == 1 { "" } else { "s" }
                ),
                "e.g. `ports: [18080, 28080]`: the host ports (on 127.0.0.1) of the blue \
                 and the green release"
                    .into(),
            );
            return None;
        }
        let ports = [
            self.port(&items[0], &format!("{path}[0]")),
            self.port(&items[1], &format!("{path}[1]")),
        ];
        let mut ok = true;
        if let Some((_, Some(publish))) = self.publish {
            for (i, port) in ports.iter().enumerate() {
                if *port == Some(publish) {
                    ok = false;
                    self.issue(
                        &format!("{path}[{i}]"),
                        items[i].loc,
                        format!(
                            "{publish} is container.publish, the port nginx listens on; the \
                             {} release needs a port of its own",
                            COLORS[i]
                        ),
                    );
                }
            }
        }
        match ports {
            // A port is the publish port: said already.
            _ if !ok => None,
            [Some(blue), Some(green)] if blue == green => {
                self.issue(
                    &format!("{path}[1]"),
                    items[1].loc,
                    format!(
                        "the green port is the blue port ({blue}): each color needs a port of \
                         its own"
                    ),
                );
                None
            }
            [Some(blue), Some(green)] => Some([blue, green]),
            _ => None,
        }
    }
}

/// An issue was reported (the value it concerns is unknown).
pub(super) struct Reported;

/// A `blue_green:` mapping as read, before the strategy and `container.publish` are known;
/// `None` for a field that is invalid.
struct Section {
    drain: Option<Duration>,
    post_switch_check: Option<Duration>,
    install_proxy: Option<bool>,
    ports: Ports,
    /// Where a port that cannot be derived is reported.
    ports_path: String,
    proxy: Option<Proxy>,
}

/// `blue_green.ports` as read.
enum Ports {
    /// Not given: derived from `container.publish`.
    Default,
    Given([u16; 2]),
    Invalid,
}
