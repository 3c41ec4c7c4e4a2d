//! The docs against the code and the repository, so that they cannot drift
//! apart unnoticed: each check reads files relative to the workspace root
//! and fails with a message that says what to fix.
//!
//! - `docs/configuration.md`: its `## Gateway` and `## Room-service` tables
//!   declare exactly the environment variables of `gateway::Config` and
//!   `room_service::Config` (read from their clap definitions), each with
//!   its flag and, when numeric, its default; any other variable a table
//!   there names is one of them.
//! - `README.md`'s `## Layout` block: every path it lists exists, and every
//!   top-level folder, every workspace member and every file in `docs/` is
//!   in it.
//! - Every relative link in `README.md` and `docs/*.md` points at a file
//!   that exists, and a `#fragment` at one of its headings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of the repository, by its path from the root.
fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Fails listing every problem at once, each on its own line.
fn assert_none(problems: &[String], what: &str) {
    assert!(problems.is_empty(), "{what}:\n- {}", problems.join("\n- "));
}

// --- docs/configuration.md ---------------------------------------------------

const CONFIGURATION: &str = "docs/configuration.md";

/// What one binary's clap definition says about an environment variable.
struct Setting {
    flag: String,
    /// The default, when it is a plain number (paths, URLs and booleans are
    /// described in words in the docs, not copied).
    numeric_default: Option<String>,
}

/// The environment variables of a binary's `Config`, with their flags.
fn settings_of(command: clap::Command) -> BTreeMap<String, Setting> {
    command
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_string_lossy().into_owned();
            let flag = format!("--{}", arg.get_long().unwrap_or_else(|| panic!("{env} has no --flag")));
            let numeric_default = match arg.get_default_values() {
                [value] => Some(value.to_string_lossy().into_owned()).filter(|v| v.bytes().all(|b| b.is_ascii_digit())),
                _ => None,
            };
            Some((env, Setting { flag, numeric_default }))
        })
        .collect()
}

/// A table row of the docs: its line number and its cells.
struct Row {
    line: usize,
    cells: Vec<String>,
}

/// The body rows of every table between `## heading` and the next `## `
/// heading (all tables of the file when `heading` is `None`).
fn table_rows(doc: &str, heading: Option<&str>) -> Vec<Row> {
    let mut inside = heading.is_none();
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (index, line) in doc.lines().enumerate() {
        if let Some(title) = line.strip_prefix("## ") {
            inside = heading.is_none_or(|h| h == title.trim());
            continue;
        }
        if !inside {
            continue;
        }
        let Some(body) = line.trim().strip_prefix('|') else {
            header_seen = false;
            continue;
        };
        let cells: Vec<String> = body.trim_end_matches('|').split('|').map(|c| c.trim().to_owned()).collect();
        if !header_seen {
            header_seen = true; // the header row
        } else if !cells[0].starts_with("---") {
            rows.push(Row { line: index + 1, cells });
        }
    }
    rows
}

/// The `code spans` of a cell.
fn code_spans(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`').skip(1).step_by(2)
}

/// Whether a code span is an environment variable's name.
fn is_variable(span: &str) -> bool {
    span.starts_with(|c: char| c.is_ascii_uppercase())
        && span.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Checks one binary's table against its `Config`.
fn check_binary_table(doc: &str, heading: &str, binary: &str, settings: &BTreeMap<String, Setting>) -> Vec<String> {
    let rows = table_rows(doc, Some(heading));
    if rows.is_empty() {
        return vec![format!("{CONFIGURATION} has no table under `## {heading}`: document {binary}'s settings there")];
    }
    let mut problems = Vec::new();
    let mut documented = BTreeSet::new();
    for row in &rows {
        let declared: Vec<&str> = code_spans(&row.cells[0]).filter(|s| is_variable(s)).collect();
        if declared.is_empty() {
            problems.push(format!(
                "{CONFIGURATION}:{}: a row of `## {heading}` names no `VARIABLE` in its first cell",
                row.line
            ));
        }
        for variable in declared {
            let Some(setting) = settings.get(variable) else {
                problems.push(format!(
                    "{CONFIGURATION}:{}: `## {heading}` documents {variable}, which {binary} does not have \
                     (its Config has no arg with env = \"{variable}\"): remove the row or fix the name",
                    row.line
                ));
                continue;
            };
            documented.insert(variable);
            if !code_spans(&row.cells[0]).any(|s| s == setting.flag) {
                problems.push(format!(
                    "{CONFIGURATION}:{}: the row of {variable} should name its flag `{}`",
                    row.line, setting.flag
                ));
            }
            if let Some(default) = &setting.numeric_default {
                let default_cell = row.cells.get(1).map(String::as_str).unwrap_or_default();
                let numbers: Vec<&str> =
                    default_cell.split(|c: char| !c.is_ascii_digit()).filter(|n| !n.is_empty()).collect();
                if !numbers.contains(&default.as_str()) {
                    problems.push(format!(
                        "{CONFIGURATION}:{}: {binary} defaults {variable} to {default}, the docs say \
                         {default_cell:?}: fix the default cell",
                        row.line
                    ));
                }
            }
        }
    }
    for (variable, setting) in settings {
        if !documented.contains(variable.as_str()) {
            problems.push(format!(
                "{binary} reads {variable} ({}), but `## {heading}` in {CONFIGURATION} has no row for it: \
                 add a row | `{}` / `{variable}` | <default> | <meaning> | (its doc comment in config.rs says what it does)",
                setting.flag, setting.flag
            ));
        }
    }
    problems
}

#[test]
fn configuration_documents_every_variable_and_only_those() {
    let doc = read(CONFIGURATION);
    let gateway = settings_of(gateway::Config::command());
    let room_service = settings_of(room_service::Config::command());
    assert!(gateway.contains_key("PORT") && room_service.contains_key("GRPC_PORT"), "clap's env names are read");

    let mut problems = check_binary_table(&doc, "Gateway", "the gateway", &gateway);
    problems.extend(check_binary_table(&doc, "Room-service", "the room-service", &room_service));

    // Any variable a table mentions, in any column (`cargo xtask up`'s too):
    // a name in upper case with an underscore is taken for one, so a
    // description that still names a removed variable fails as well.
    for row in table_rows(&doc, None) {
        for span in row.cells.iter().flat_map(|cell| code_spans(cell)) {
            let known = gateway.contains_key(span) || room_service.contains_key(span);
            let said =
                problems.iter().any(|p| p.starts_with(&format!("{CONFIGURATION}:{}:", row.line)) && p.contains(span));
            if is_variable(span) && span.contains('_') && !known && !said {
                problems.push(format!(
                    "{CONFIGURATION}:{}: a table names {span}, which neither the gateway nor the room-service \
                     reads: remove it or fix the name",
                    row.line
                ));
            }
        }
    }
    assert_none(&problems, &format!("{CONFIGURATION} and the binaries' Config disagree"));
}

// --- README.md's layout ------------------------------------------------------

/// The lines of the code block under `## Layout`: (line number, path, the rest).
fn layout(readme: &str) -> Vec<(usize, String, String)> {
    let mut lines = readme.lines().enumerate().skip_while(|(_, line)| line.trim() != "## Layout");
    let _heading = lines.next().expect("README.md has a `## Layout` section (a code block mapping the repository)");
    let mut lines = lines.skip_while(|(_, line)| !line.starts_with("```"));
    assert!(lines.next().is_some(), "README.md's `## Layout` has no code block (```) listing the repository");
    lines
        .take_while(|(_, line)| !line.starts_with("```"))
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let (path, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            (index + 1, path.to_owned(), rest.trim().to_owned())
        })
        .collect()
}

/// The `members` of the root Cargo.toml.
fn workspace_members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let list = manifest
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("the root Cargo.toml has `members = [...]`");
    list.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

#[test]
fn the_readme_layout_matches_the_repository() {
    let readme = read("README.md");
    let listed = layout(&readme);
    let names: BTreeSet<&str> = listed.iter().map(|(_, path, _)| path.trim_end_matches('/')).collect();
    let mut problems = Vec::new();

    for (line, path, _) in &listed {
        let on_disk = root().join(path);
        let exists = if path.ends_with('/') { on_disk.is_dir() } else { on_disk.exists() };
        if !exists {
            problems.push(format!(
                "README.md:{line}: the layout lists `{path}`, which does not exist: remove the line or fix the path"
            ));
        }
    }

    let entries = std::fs::read_dir(root()).expect("the workspace root is readable");
    let mut folders: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && name != "target")
        .collect();
    folders.sort();
    for folder in &folders {
        if !names.contains(folder.as_str()) {
            problems.push(format!(
                "the top-level folder `{folder}/` is not in README.md's `## Layout` block: add a line \
                 `{folder}/  <what it holds>`"
            ));
        }
    }
    for member in workspace_members() {
        let top = member.split('/').next().unwrap_or(&member);
        if !names.contains(member.as_str()) && !names.contains(top) {
            problems.push(format!(
                "the workspace member `{member}` (root Cargo.toml) is not in README.md's `## Layout` block: \
                 add a line `{member}/  <what it is>`"
            ));
        }
    }

    // The docs/ line names every file there, so a reader sees what exists.
    match listed.iter().find(|(_, path, _)| path == "docs/") {
        None => problems.push("README.md's `## Layout` block has no `docs/` line".to_owned()),
        Some((line, _, description)) => {
            let files = std::fs::read_dir(root().join("docs")).expect("docs/ is readable");
            let mut files: Vec<String> = files
                .filter_map(Result::ok)
                .filter(|entry| entry.path().is_file())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            for file in files {
                if !description.contains(&file) {
                    problems.push(format!("README.md:{line}: the `docs/` line does not name docs/{file}: add it"));
                }
            }
        }
    }
    assert_none(&problems, "README.md's layout and the repository disagree");
}

// --- links -------------------------------------------------------------------

/// README.md and every docs/*.md, by their path from the root.
fn markdown_files() -> Vec<String> {
    let docs = std::fs::read_dir(root().join("docs")).expect("docs/ is readable");
    let mut files: Vec<String> = docs
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    files.sort();
    files.insert(0, "README.md".to_owned());
    files
}

/// The targets of `[text](target)` links outside fenced code blocks, with
/// their line numbers.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let mut in_code = false;
    let mut found = Vec::new();
    for (index, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        for (_, after) in line.match_indices("](").map(|(at, _)| line.split_at(at + 2)) {
            if let Some((target, _)) = after.split_once(')') {
                // `(path "title")`: the path is the first word.
                let target = target.split_whitespace().next().unwrap_or_default();
                found.push((index + 1, target.to_owned()));
            }
        }
    }
    found
}

/// The anchor GitHub gives a heading: lower case, spaces to `-`, other
/// punctuation but `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown file's headings.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn relative_links_point_at_files_that_exist() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = read(&file);
        let folder = Path::new(&file).parent().unwrap_or(Path::new(""));
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if path.is_empty() { file.clone() } else { folder.join(path).to_string_lossy().into_owned() };
            if !root().join(&linked).exists() {
                problems.push(format!(
                    "{file}:{line}: the link ({target}) points at {linked}, which does not exist: fix the link \
                     (a link is relative to the file it is in)"
                ));
                continue;
            }
            if !fragment.is_empty() && linked.ends_with(".md") && !anchors(&read(&linked)).contains(fragment) {
                problems.push(format!(
                    "{file}:{line}: the link ({target}) names #{fragment}, but {linked} has no such heading: \
                     fix the anchor"
                ));
            }
        }
    }
    assert!(checked > 10, "found only {checked} relative links in README.md and docs/: is the link parser broken?");
    assert_none(&problems, "broken links in README.md and docs/");
}
