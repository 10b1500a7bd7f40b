//! The command line's everyday conventions: shell completions, exit codes in `--help`,
//! `--quiet`/`--verbose` parsing.

use crate::common;

use common::Hoist;

#[test]
fn completions_are_printed_for_each_shell() {
    Hoist::new()
        .args(["completions", "bash"])
        .run()
        .success()
        .stdout_has("_hoist()")
        .stdout_has("deploy")
        .stdout_has("unlock")
        .stdout_has("--lock-wait")
        .stdout_has("--quiet");
    Hoist::new()
        .args(["completions", "zsh"])
        .run()
        .success()
        .stdout_has("#compdef hoist");
    Hoist::new()
        .args(["completions", "fish"])
        .run()
        .success()
        .stdout_has("complete -c hoist");
    Hoist::new()
        .args(["completions", "powershell"])
        .run()
        .success()
        .stdout_has("Register-ArgumentCompleter");
    Hoist::new()
        .args(["completions", "tcsh"])
        .run()
        .code(2)
        .stdout_is_empty();
}

#[test]
fn each_subcommand_documents_its_exit_codes() {
    for (command, codes) in [
        ("validate", &["0", "2"][..]),
        ("plan", &["0", "1", "2"]),
        ("deploy", &["0", "1", "2", "3", "130"]),
        ("status", &["0", "1", "2", "130"]),
        ("rollback", &["0", "1", "2", "3", "130"]),
        ("lock status", &["0", "1", "2"]),
        ("unlock", &["0", "1", "2"]),
        ("completions", &["0", "2"]),
        ("man", &["0", "2"]),
    ] {
        let run = Hoist::new().args(command.split(' ')).arg("--help").run();
        run.success().stdout_has("Exit codes:");
        let section = run.stdout.split("Exit codes:").nth(1).unwrap();
        let listed: Vec<&str> = section
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
            .collect();
        assert_eq!(listed, codes, "hoist {command} --help:\n{}", run.stdout);
    }
}

#[test]
fn quiet_and_verbose_are_global_and_exclusive() {
    Hoist::new()
        .args(["validate", "-q", "-f", "nope.yaml"])
        .run()
        .code(2)
        .stderr_has("cannot read config file nope.yaml");
    Hoist::new()
        .args(["-q", "-v", "validate"])
        .run()
        .code(2)
        .stderr_has("cannot be used with");
}
