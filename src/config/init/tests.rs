use std::path::Path;

use super::*;
use crate::config;

fn init() -> Init {
    Init {
        app: ("shop".into(), Origin::Found("the directory's name".into())),
        port: (8080, Origin::Found("the Dockerfile's EXPOSE 8080".into())),
        healthcheck: None,
        healthcheck_note: None,
        targets: Targets::default(),
        strategy: Strategy::Recreate,
        missing_dockerfile: None,
    }
}

fn parse(text: &str) -> config::Config {
    config::parse(text, Path::new("hoist.yaml"), Path::new("."))
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

#[test]
fn expose_gives_the_ports_of_the_final_stage() {
    let d = dockerfile::read(
        "FROM rust AS build\nEXPOSE 9999\nFROM debian\nEXPOSE 3000/tcp 53/udp 4000\n",
    );
    assert_eq!(d.ports, vec![3000, 4000]);
    let d = dockerfile::read("from alpine\nexpose 80\n");
    assert_eq!(d.ports, vec![80], "instructions are case-insensitive");
    let d = dockerfile::read(
        "FROM node\nARG PORT=3000\nENV OTHER=1 WEB=5000\nENV OLD 7000\nEXPOSE $PORT ${WEB} ${OLD}\n\
         EXPOSE ${NOPE:-8081} $UNKNOWN\n",
    );
    assert_eq!(d.ports, vec![3000, 5000, 7000, 8081]);
    let d = dockerfile::read("FROM x\n# EXPOSE 1234\nRUN echo \\\n  EXPOSE 99\n");
    assert!(
        d.ports.is_empty(),
        "comments and continued lines are not EXPOSE: {d:?}"
    );
}

#[test]
fn healthcheck_gives_the_path_of_the_url_it_requests() {
    let read = |text: &str| dockerfile::read(&format!("FROM x\n{text}\n")).healthcheck;
    let http = |p: &str| match read(p) {
        Some(Healthcheck::Http { path, .. }) => path,
        other => panic!("{p}: {other:?}"),
    };
    assert_eq!(
        http(
            "HEALTHCHECK --interval=2s --timeout=2s CMD curl -fsS http://localhost:8080/healthz || exit 1"
        ),
        "/healthz"
    );
    assert_eq!(
        http("HEALTHCHECK CMD [\"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:3000/up\"]"),
        "/up"
    );
    assert_eq!(http("HEALTHCHECK CMD curl -f https://localhost"), "/");
    assert_eq!(
        http(
            "HEALTHCHECK \\\n  --start-period=5s \\\n  CMD curl -f http://localhost/api/health?full=1"
        ),
        "/api/health?full=1"
    );
    assert_eq!(read("HEALTHCHECK NONE"), Some(Healthcheck::Disabled));
    assert_eq!(
        read("HEALTHCHECK CMD pg_isready -U app"),
        Some(Healthcheck::Command("pg_isready -U app".into()))
    );
    assert_eq!(
        read("HEALTHCHECK CMD curl -f http://localhost/$HEALTH_PATH"),
        Some(Healthcheck::Command(
            "curl -f http://localhost/$HEALTH_PATH".into()
        )),
        "a path with a variable is not probed as written"
    );
    assert_eq!(
        dockerfile::read("FROM a\nHEALTHCHECK CMD curl http://x/h\nFROM b\n").healthcheck,
        None,
        "a HEALTHCHECK does not carry over a FROM"
    );
}

#[test]
fn the_app_name_comes_from_a_repository_or_directory_name() {
    assert_eq!(
        repository_name("https://example.test/acme/shop.git"),
        Some("shop")
    );
    assert_eq!(
        repository_name("git@example.test:acme/web-shop.git"),
        Some("web-shop")
    );
    assert_eq!(
        repository_name("ssh://git@example.test/acme/Shop/"),
        Some("Shop")
    );
    assert_eq!(repository_name("/srv/git/shop"), Some("shop"));
    assert_eq!(repository_name(""), None);
    assert_eq!(app_name("Web_Shop.v2").as_deref(), Some("web-shop-v2"));
    assert_eq!(app_name("2fast--furious-").as_deref(), Some("fast-furious"));
    assert_eq!(
        app_name("a-very-long-repository-name-for-a-small-app").as_deref(),
        Some("a-very-long-repository-name-for")
    );
    assert_eq!(app_name("___"), None);
    assert_eq!(app_name("123"), None);
    for raw in [
        "Ünïcode app",
        "x",
        "-a-",
        "A..B",
        "a-very-long-repository-name-for-a-small-app",
    ] {
        if let Some(name) = app_name(raw) {
            assert!(config::is_app_name(&name), "{raw} -> {name}");
        }
    }
}

#[test]
fn the_file_validates_and_says_where_each_value_came_from() {
    let text = render(&init());
    let config = parse(&text);
    assert_eq!(config.app, "shop");
    assert_eq!(config.container.port, 8080);
    assert_eq!(config.container.publish, Some(8080));
    assert!(config.healthcheck.path.is_none(), "only suggested:\n{text}");
    assert!(
        text.contains("# healthcheck:\n#   path: /healthz\n"),
        "{text}"
    );
    for common in COMMON_HEALTH_PATHS {
        assert!(text.contains(common), "{common} suggested:\n{text}");
    }
    assert!(text.contains("app: shop"));
    assert!(text.contains("# from the directory's name"), "{text}");
    assert!(text.contains("from the Dockerfile's EXPOSE 8080"), "{text}");
    assert!(text.contains("a placeholder: hoist init --tags"), "{text}");
    assert_eq!(config.strategy, Strategy::Recreate);
    assert!(
        text.lines().all(|l| l.len() <= 100),
        "no line over 100 columns:\n{text}"
    );
}

#[test]
fn targets_health_check_and_strategy_from_flags_validate() {
    let mut i = init();
    i.targets.add_tag("Env", "staging");
    i.targets.add_tag("Env", "qa");
    i.targets.add_tag("Env", "qa");
    i.targets.add_tag("aws:cloudformation:stack-name", "yes");
    i.targets.add_tag("Team", "0123");
    i.targets.instance_ids = vec!["i-0123456789abcdef0".into(), "i-01234567".into()];
    i.healthcheck = Some((
        "/up".into(),
        Origin::Found("the Dockerfile's HEALTHCHECK".into()),
    ));
    i.strategy = Strategy::BlueGreen;
    let text = render(&i);
    let config = parse(&text);
    let tags: Vec<(String, Vec<String>)> = config
        .targets
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(
        tags.contains(&("Env".into(), vec!["staging".into(), "qa".into()])),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("aws:cloudformation:stack-name".into(), vec!["yes".into()])),
        "a key with colons and a value YAML would read as a boolean, quoted: {tags:?}"
    );
    assert!(
        tags.contains(&("Team".into(), vec!["0123".into()])),
        "{tags:?}"
    );
    assert_eq!(
        config.targets.instance_ids,
        vec!["i-0123456789abcdef0".to_owned(), "i-01234567".to_owned()]
    );
    assert_eq!(config.healthcheck.path.as_deref(), Some("/up"));
    assert_eq!(config.strategy, Strategy::BlueGreen);
    assert!(!text.contains("placeholder"), "{text}");
}
