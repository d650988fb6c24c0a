//! The operator's pages against the template and the code: every alarm the template defines
//! has its row in the runbook table and its runbook, no row names an alarm that is not there,
//! and every metric the functions emit (the detailed ones too) is listed under Metrics. Each
//! fails when either side changes alone.

use super::template::{at, template, text};
use protime_webhooks::observability::metrics::Metrics;
use std::collections::BTreeSet;

fn operating() -> String {
    std::fs::read_to_string(harness::workspace_root().join("docs/operating.md")).expect("docs/operating.md")
}

/// The text of the section under `heading` (`## Metrics`), up to the next heading of its level
/// or a higher one.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start = page.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no section {heading}"));
    let body = &page[start + heading.len() + 2..];
    let level = heading.split(' ').next().unwrap().len();
    // The first heading line of that level or higher outside a code block (a `# comment` in a
    // shell example is none).
    let (mut fenced, mut offset) = (false, 0);
    for line in body.split_inclusive('\n') {
        fenced ^= line.starts_with("```");
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if !fenced && (1..=level).contains(&hashes) && line[hashes..].starts_with(' ') {
            return &body[..offset];
        }
        offset += line.len();
    }
    body
}

/// A page with its lines joined: a phrase wrapped across lines is still found.
fn flowing(text: &str) -> String {
    text.replace("\\\n", " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

fn template_alarms() -> BTreeSet<String> {
    let t = template();
    at(&t, &["Resources"])
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| text(at(r, &["Type"])) == "AWS::CloudWatch::Alarm")
        .map(|(name, _)| name.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_alarm_has_its_row_and_its_runbook_and_every_row_an_alarm() {
    let page = operating();
    let runbooks = section(&page, "## Runbooks");
    let rows: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("| ["))
        .filter_map(|l| l.split_once("](#"))
        .map(|(name, rest)| {
            let anchor = rest.split(')').next().unwrap();
            assert_eq!(anchor, name.to_lowercase(), "the row of {name} links its runbook");
            name.to_owned()
        })
        .collect();
    let headings: BTreeSet<String> =
        runbooks.lines().filter_map(|l| l.strip_prefix("### ")).map(str::to_owned).collect();
    let alarms = template_alarms();
    assert_eq!(rows, alarms, "the runbook table's rows and the template's alarms");
    assert_eq!(headings, alarms, "one runbook per alarm, named as the template names it");
}

/// Each alarm's row says how it treats missing data, as the template sets it (every alarm sets
/// it), and no alarm breaches on missing data: a stack not configured yet raises one alarm.
#[test]
fn every_alarms_missing_data_treatment_is_set_written_down_and_never_breaching() {
    let page = operating();
    let t = template();
    let mut documented = std::collections::BTreeMap::new();
    for line in section(&page, "## Runbooks").lines().filter(|l| l.starts_with("| [")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = cells[0].trim_start_matches("| [").split(']').next().unwrap().to_owned();
        let treatment = cells.get(3).and_then(|c| c.strip_prefix('`')).and_then(|c| c.split('`').next());
        documented.insert(name, treatment.unwrap_or("(none)").to_owned());
    }
    for alarm in template_alarms() {
        let set = at(&t, &["Resources", alarm.as_str(), "Properties", "TreatMissingData"]);
        let set = set.as_str().unwrap_or_else(|| panic!("{alarm} sets TreatMissingData"));
        assert_eq!(documented.get(&alarm).map(String::as_str), Some(set), "{alarm}'s row in docs/operating.md");
        assert_ne!(set, "breaching", "{alarm} would fire on a stack not configured yet");
    }
}

#[test]
fn every_metric_the_functions_emit_is_listed_under_metrics() {
    let page = operating();
    let listed = section(&page, "## Metrics");
    let emitted = super::template::emitted(&Metrics::detailed("Ns"));
    let missing: Vec<&String> = emitted.keys().filter(|name| !listed.contains(&format!("`{name}`"))).collect();
    assert!(missing.is_empty(), "docs/operating.md's Metrics does not list {missing:?}");
}

/// Every field path of a JSON line (`fields.collection`, `span.name`, `SyncLagSeconds`), with
/// the text values seen at it.
fn paths(value: &serde_json::Value, prefix: &str, into: &mut std::collections::BTreeMap<String, BTreeSet<String>>) {
    if let Some(object) = value.as_object() {
        for (key, inner) in object {
            let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            paths(inner, &path, into);
            into.entry(path).or_default().extend(inner.as_str().map(str::to_owned));
        }
    }
}

/// The text a query compares a field with: `field = 'text'`, and `field like /^prefix/` as
/// (field, prefix, whether a prefix).
fn literals(query: &str) -> Vec<(String, String, bool)> {
    let mut found = Vec::new();
    for (operator, close, prefix) in [(" = '", '\'', false), (" like /", '/', true)] {
        for (at, _) in query.match_indices(operator) {
            let field = query[..at].rsplit([' ', '(']).next().unwrap_or_default().to_owned();
            let rest = &query[at + operator.len()..];
            let literal = rest.split(close).next().unwrap_or_default();
            found.push((field, literal.trim_start_matches('^').to_owned(), prefix));
        }
    }
    found
}

/// The fields a Logs Insights query reads: its identifiers, less the language's words, the
/// functions it calls, the names it gives (`as lag`), quoted text and patterns.
fn fields_read(query: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "fields", "filter", "stats", "sort", "by", "as", "and", "or", "not", "like", "in", "desc", "asc", "limit",
        "display", "parse", "SOURCE", "dedup",
    ];
    let mut text = String::new();
    let mut quote = None;
    for c in query.chars() {
        match (quote, c) {
            (None, '\'' | '"' | '/') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) => text.push(c),
            _ => {}
        }
    }
    let tokens: Vec<(String, char)> = {
        let mut out = Vec::new();
        let mut current = String::new();
        for c in text.chars().chain([' ']) {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '@' {
                current.push(c);
            } else {
                if !current.is_empty() {
                    out.push((std::mem::take(&mut current), c));
                }
            }
        }
        out
    };
    let aliases: BTreeSet<&str> = tokens.windows(2).filter(|w| w[0].0 == "as").map(|w| w[1].0.as_str()).collect();
    tokens
        .iter()
        .filter(|(t, next)| *next != '(' && !WORDS.contains(&t.as_str()) && !aliases.contains(t.as_str()))
        .filter(|(t, _)| !t.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|(t, _)| t.clone())
        .collect()
}

/// The Logs Insights queries the docs and the dashboard give.
fn documented_queries() -> Vec<String> {
    let page = operating();
    let mut queries = Vec::new();
    let detail = section(&page, "### Per-collection detail in Logs Insights");
    for block in detail.split("```").skip(1).step_by(2) {
        // The fence's language tag, if any, is no query.
        let block = block.split_once('\n').map_or(block, |(_, rest)| rest);
        queries.extend(block.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).fold(
            Vec::<String>::new(),
            |mut all, line| {
                // A query goes on on lines that start with `|` or are indented.
                match line.starts_with([' ', '|']) {
                    true => all.last_mut().expect("a query's first line").push_str(&line),
                    false => all.push(line),
                }
                all
            },
        ));
    }
    let logs = section(&page, "## Logs").replace('\n', " ");
    let inline = logs.split('`').find(|s| s.starts_with("fields ")).expect("the Logs section's example query");
    queries.push(inline.to_owned());
    let dashboard = super::switches::Deployed::with(&[]).dashboard();
    for widget in dashboard["widgets"].as_array().unwrap() {
        if let Some(query) = widget["properties"]["query"].as_str() {
            queries.push(query.split_once('|').map_or(query, |(_, rest)| rest).to_owned());
        }
    }
    queries
}

/// The docs' and the dashboard's Logs Insights queries read fields the functions write: each
/// field path a query names (and each value it compares one with) is in a line the real
/// functions logged (renewer and syncer runs through their handlers, a webhook event), as
/// deployed (JSON, INFO), or in their metric lines; and the log-field reference lists exactly
/// the fields of each line it names.
#[test]
fn every_field_a_documented_query_reads_is_in_the_functions_lines() {
    let (runtime, captured, _this_thread) = super::capture::runtime("info");
    runtime.block_on(async {
        let stack = harness::Stack::start(&["clockings"], harness::simulator::SimulatorConfig::default()).await;
        stack.simulator.seed("clockings", 3);
        assert!(stack.renew().await.healthy);
        assert!(stack.sync(&[]).await.healthy);
        // As the Lambdas run them: their handlers write the runs' last lines.
        let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
        assert!(stack.renewer().handle(deadline).await.expect("a renewer run").healthy);
        let syncer = stack.syncer(&[]);
        assert!(syncer.handle(serde_json::json!({}), deadline).await.expect("a syncer run").healthy);
        let date = stack.simulator.now().format("%Y-%m-%d").to_string();
        let change = serde_json::json!({"id": 1, "date": date, "person": {"id": 2}});
        assert_eq!(stack.simulator.change("clockings", change).await.delivered, 1);
    });
    let mut seen = std::collections::BTreeMap::new();
    let all = String::from_utf8(captured.take()).unwrap();
    for line in all.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("a JSON line: {line}"));
        paths(&value, "", &mut seen);
    }
    // Every metric line, each count non-zero (a zero count is left out of its line).
    for doc in super::template::published_docs(&Metrics::new("Ns")) {
        paths(&doc.to_json(0), "", &mut seen);
    }
    log_reference_matches(&all);
    for query in documented_queries() {
        let unknown: Vec<String> = fields_read(&query).into_iter().filter(|f| !seen.contains_key(f)).collect();
        assert!(unknown.is_empty(), "{query}\nreads {unknown:?}, which no line has");
        for (field, literal, prefix) in literals(&query) {
            let values = seen.get(&field).cloned().unwrap_or_default();
            let matched = values.iter().any(|v| if prefix { v.starts_with(&literal) } else { *v == literal });
            assert!(matched, "{query}\ncompares {field} with {literal:?}, which no line has (it has {values:?})");
        }
    }
}

/// A run takes up to 15 minutes, longer than the AWS CLI's default read timeout, and a timed-out
/// call is retried: every documented `aws lambda invoke` sets `--cli-read-timeout`.
#[test]
fn every_documented_lambda_invoke_waits_for_the_whole_run() {
    let root = harness::workspace_root();
    let mut pages = vec![root.join("README.md")];
    let mut folders = vec![root.join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().path()) {
            if entry.is_dir() {
                folders.push(entry);
            } else if entry.extension().is_some_and(|e| e == "md") {
                pages.push(entry);
            }
        }
    }
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        // Each command as written (continuation lines joined): in a code block.
        for block in text.split("```").skip(1).step_by(2) {
            let block = block.replace("\\\n", " ");
            for command in block.lines().filter(|l| l.contains("aws lambda invoke")) {
                assert!(command.contains("--cli-read-timeout"), "{}: {command}", page.display());
            }
        }
        // And inline: `aws lambda invoke --function-name …` (a bare mention of the command is none).
        let inline = text.split('`').skip(1).step_by(2);
        for span in inline.filter(|s| s.starts_with("aws lambda invoke") && s.contains("--function-name")) {
            assert!(span.contains("--cli-read-timeout"), "{}: {span}", page.display());
        }
    }
}

/// The deploying guide's description of each function's permissions names every IAM action the
/// template grants it (conditional grants included).
#[test]
fn the_iam_description_names_every_action_each_function_is_granted() {
    let guide = flowing(&std::fs::read_to_string(harness::workspace_root().join("docs/deploying.md")).unwrap());
    let at_ = |needle: &str| guide.find(needle).unwrap_or_else(|| panic!("deploying.md: no {needle:?}"));
    let kms = &guide[at_("The renewer and the syncer `kms:Decrypt`")..at_("the publisher only")];
    let segments = [
        ("ReceiverFunction", guide[at_("the receiver may only")..at_("the renewer only")].to_owned()),
        ("RenewerFunction", guide[at_("the renewer only")..at_("the syncer only")].to_owned() + kms),
        ("SyncerFunction", guide[at_("the syncer only")..at_("the publisher only")].to_owned()),
        ("PublisherFunction", guide[at_("the publisher only")..at_("each dead-letter queue's policy")].to_owned()),
    ];
    for (function, prose) in segments {
        let named: BTreeSet<&str> = prose
            .split('`')
            .skip(1)
            .step_by(2)
            .flat_map(|span| span.split('/'))
            .map(|word| word.rsplit(':').next().unwrap())
            .collect();
        let granted: BTreeSet<String> = super::template::all_statements(&super::template::function(function))
            .into_iter()
            .flat_map(|(_, s)| at(&s, &["Action"]).as_sequence().unwrap().iter().map(text).collect::<Vec<_>>())
            .collect();
        let missing: Vec<&String> = granted.iter().filter(|a| !named.contains(a.rsplit(':').next().unwrap())).collect();
        assert!(missing.is_empty(), "deploying.md's {function} does not name {missing:?}");
    }
}

/// Every parameter of the template is in the deploying guide's list of what `sam deploy
/// --guided` asks (its table, or the sentence after it).
#[test]
fn every_template_parameter_is_in_the_deploying_guide() {
    let guide = std::fs::read_to_string(harness::workspace_root().join("docs/deploying.md")).unwrap();
    let first = section(&guide, "## First deployment");
    let t = template();
    let missing: Vec<String> = at(&t, &["Parameters"])
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .filter(|name| !first.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "deploying.md's First deployment does not name {missing:?}");
}

/// The crates' version is the CHANGELOG's latest release (an `Unreleased` section is the next).
#[test]
fn the_crate_version_is_the_changelogs_latest_release() {
    let root = harness::workspace_root();
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let package = cargo.split("[workspace.package]").nth(1).expect("[workspace.package]");
    let version = package.lines().find_map(|l| l.strip_prefix("version = ")).expect("a version").trim_matches('"');
    let changelog = std::fs::read_to_string(root.join("CHANGELOG.md")).unwrap();
    let released = changelog
        .lines()
        .filter_map(|l| l.strip_prefix("## ["))
        .find(|l| !l.contains("Unreleased"))
        .and_then(|l| l.split(']').next())
        .expect("a released version in CHANGELOG.md");
    assert_eq!(version, released, "Cargo.toml's workspace version and CHANGELOG.md's latest release");
}

/// The log-field reference in docs/operating.md (`| \`line\` | function | \`field\`, … |`) names
/// exactly the fields of each line it lists, as the functions write them.
fn log_reference_matches(logged: &str) {
    let page = operating();
    let reference = section(&page, "### Log fields");
    let mut fields_of: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for line in logged.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(fields) = value["fields"].as_object() else { continue };
        let message = fields.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_owned();
        fields_of.entry(message).or_default().extend(fields.keys().filter(|k| *k != "message").cloned());
    }
    let rows: Vec<(String, BTreeSet<String>)> = reference
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let message = cells[0].trim_start_matches("| ").trim_matches('`').to_owned();
            let fields =
                cells.last().unwrap().trim_end_matches(" |").split(", ").map(|f| f.trim_matches('`').to_owned());
            (message, fields.collect())
        })
        .collect();
    assert!(rows.len() >= 5, "the reference lists the lines the runbooks read: {rows:?}");
    for (message, documented) in rows {
        let written = fields_of.get(&message).unwrap_or_else(|| panic!("no line {message:?} was logged"));
        assert_eq!(&documented, written, "the fields of the {message:?} line");
    }
}
