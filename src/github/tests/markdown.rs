//! The markdown that reaches GitHub (the plan, as a job summary and a pull request comment)
//! renders as written, whatever its content: every fenced code block is closed, `<details>`
//! sections balance, and nothing a value or a script holds closes one early, also when the
//! plan is cut to fit a comment. Checked by a `CommonMark` parser (pulldown-cmark), not by
//! the renderer's own idea of markdown.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag};

use crate::domain::Revision;
use crate::github::fit;
use crate::plan::{Format, Inputs, Plan, TransportKind, build};

/// How `md` renders, as a `CommonMark` parser reads it.
struct Rendered {
    /// What is wrong: a fenced code block that runs to the end of the document unclosed,
    /// `<details>` sections that do not balance.
    found: Vec<String>,
    /// Each fenced code block's text, in order.
    blocks: Vec<String>,
    /// How many `<details>` sections open (as markup, not as text in code).
    sections: usize,
}

fn rendered(md: &str) -> Rendered {
    let mut found = Vec::new();
    let mut blocks = Vec::new();
    let mut sections = 0;
    let mut depth: i64 = 0;
    let mut in_block: Option<String> = None;
    for (event, range) in Parser::new_ext(md, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
                let source = md[range.clone()].trim_end_matches('\n');
                let first = source.lines().next().unwrap_or("").trim_start_matches(' ');
                let c = first.chars().next().unwrap_or('`');
                let n = first.chars().take_while(|&x| x == c).count();
                let last = source.lines().last().unwrap_or("").trim();
                let closes = source.lines().count() > 1
                    && last.chars().take_while(|&x| x == c).count() >= n
                    && last.chars().all(|x| x == c);
                if !closes {
                    found.push(format!(
                        "the code block at byte {} is never closed: it runs to the end",
                        range.start
                    ));
                }
                in_block = Some(String::new());
            }
            Event::Text(text) => {
                if let Some(block) = &mut in_block {
                    block.push_str(&text);
                }
            }
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => {
                blocks.extend(in_block.take());
            }
            Event::Html(html) | Event::InlineHtml(html) => {
                sections += html.matches("<details").count();
                depth += i64::try_from(html.matches("<details").count()).unwrap();
                depth -= i64::try_from(html.matches("</details>").count()).unwrap();
                if depth < 0 {
                    found.push(format!(
                        "a </details> closes nothing at byte {}",
                        range.start
                    ));
                    depth = 0;
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        found.push(format!("{depth} <details> section(s) never closed"));
    }
    Rendered {
        found,
        blocks,
        sections,
    }
}

/// Values and a script that hold what could close a fence or a section: backtick and tilde
/// runs, `</details>`, `<details>`, an HTML comment.
const NASTY: &str = "app: web\ntargets:\n  tags: {Env: [\"a`b\"]}\ncontainer:\n  publish: 8080\n  \
     command: |\n    cat <<'X'\n    ```\n    ~~~~~~~~~\n    ````````\n    </details>\n    \
     <details><summary>x</summary>\n    <!-- hidden\n    X\nenv:\n  clear:\n    \
     A: \"``` </details> ~~~\"\n    B: \"</details>\"\n  secret: [TOKEN]\n";

fn nasty(strategy: &str) -> Plan {
    let yaml = format!("{NASTY}{strategy}");
    let config = crate::config::parse(&yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
    let mut inputs = Inputs::new(
        Revision::clean("0123456789abcdef0123456789abcdef01234567"),
        TransportKind::Ssm,
    );
    inputs.instances = Some(vec!["i-1".into(), "i-2".into(), "i-3".into()]);
    build(&config, &inputs).unwrap()
}

/// The example plans with that content: recreate, blue-green, blue-green with a canary.
fn plans() -> Vec<Plan> {
    vec![
        nasty(""),
        nasty("strategy: blue-green\n"),
        nasty("strategy: blue-green\nrollout:\n  canary: 1\n"),
    ]
}

#[test]
fn no_content_leaves_a_code_block_or_a_section_open() {
    for plan in plans() {
        let short = plan.render(Format::Markdown);
        let r = rendered(&short);
        assert!(r.found.is_empty(), "{:?}\n{short}", r.found);
        assert!(r.blocks.is_empty(), "no script, no fence: {short}");
        assert_eq!(r.sections, 0);
        assert!(!short.contains("#!/bin/bash"), "{short}");

        let full = plan.render_with(Format::Markdown, true);
        let r = rendered(&full);
        assert!(r.found.is_empty(), "{:?}", r.found);
        assert_eq!(
            r.sections,
            plan.all_phases().count(),
            "one section per script"
        );
        // Each fence holds its script whole, and only it.
        let scripts: Vec<String> = plan
            .all_phases()
            .map(|p| crate::config::text::escape(&p.script.text, true).into_owned())
            .collect();
        assert_eq!(r.blocks, scripts);
        // The deploy's scripts carry the config's hostile values; the host checks do not.
        assert!(
            scripts
                .iter()
                .skip(1)
                .all(|s| s.contains("\n```\n") && s.contains("</details>"))
        );
    }
}

/// The checker sees what it must: an unclosed fence and an unbalanced section.
#[test]
fn the_checker_finds_an_open_fence_and_an_open_section() {
    let found = |md: &str| rendered(md).found;
    assert_eq!(found("a\n\n```bash\nx\n").len(), 1);
    assert_eq!(
        found("<details><summary>s</summary>\n\n```\nx\n```\n").len(),
        1
    );
    // A `</details>` inside the fence does not close the section.
    assert_eq!(
        found("<details><summary>s</summary>\n\n```\n</details>\n```\n").len(),
        1
    );
    let closed = "<details><summary>s</summary>\n\n````\n```\n````\n\n</details>\n";
    assert!(found(closed).is_empty());
}

/// Cut to fit a comment at any size, the markdown still renders: what was open at the cut
/// is closed, and the note follows.
#[test]
fn a_plan_cut_to_fit_closes_what_was_open_at_the_cut() {
    let note = "*cut here*";
    for plan in plans() {
        let full = plan.render_with(Format::Markdown, true);
        for max in (200..full.len()).step_by(997) {
            let cut = fit(&full, max, note);
            assert!(cut.len() <= max, "{} > {max}", cut.len());
            assert!(cut.ends_with(&format!("\n{note}\n")), "{cut}");
            let found = rendered(&cut).found;
            assert!(found.is_empty(), "at {max}: {found:?}\n{cut}");
        }
        assert_eq!(fit(&full, full.len(), note), full);
    }
}
