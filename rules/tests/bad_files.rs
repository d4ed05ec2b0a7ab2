//! Rejected rules files: each error names the exact line and dotted key.

use surge_rules::{parse, RulesError, MAX_FILE_BYTES};

/// Two valid carriers, lines 1 to 8.
const CARRIERS: &[&str] = &[
    "[[carriers]]",
    "name = \"SF\"",
    "cost_cents = 1800",
    "days = 1",
    "[[carriers]]",
    "name = \"ZTO\"",
    "cost_cents = 600",
    "days = 3",
];

fn with_carriers(rest: &[&str]) -> String {
    lines(&[CARRIERS, rest].concat())
}

fn lines(lines: &[&str]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn check(case: &str, text: &str, line: usize, key: &str, message: &str) {
    let err = parse(text).expect_err(case);
    assert_eq!((err.line, err.key.as_str()), (line, key), "{case}: {err}");
    assert!(
        err.message.contains(message),
        "{case}: message {:?} lacks {message:?}",
        err.message
    );
}

#[test]
fn bad_files_table() {
    // (case, text, line, key, message substring)
    let cases: Vec<(&str, String, usize, &str, &str)> = vec![
        (
            "syntax: unquoted string",
            lines(&["[review]", "hold_unpaid = true", "max_amount_cents = lots"]),
            3,
            "review.max_amount_cents",
            "quoted",
        ),
        (
            "syntax: unclosed header",
            lines(&["[sender]", "name = \"x\"", "[review", "hold_unpaid = true"]),
            3,
            "review",
            "",
        ),
        (
            "syntax: duplicate key",
            lines(&["[review]", "hold_unpaid = true", "hold_unpaid = false"]),
            3,
            "review.hold_unpaid",
            "duplicate key",
        ),
        (
            "unknown key in [review]",
            lines(&["[review]", "hold_unpaid = true", "hold_on_typo = true"]),
            3,
            "review.hold_on_typo",
            "unknown field `hold_on_typo`",
        ),
        (
            "unknown top-level table",
            lines(&["[sender]", "name = \"x\"", "", "[reviews]"]),
            4,
            "reviews",
            "unknown field `reviews`",
        ),
        (
            "unknown key in a rule",
            with_carriers(&[
                "[[allocation.rules]]",
                "name = \"a\"",
                "carriers = [\"SF\"]",
                "[[allocation.rules]]",
                "name = \"b\"",
                "region = [\"Guangdong\"]",
                "carriers = [\"SF\"]",
            ]),
            14,
            "allocation.rules[1].region",
            "unknown field `region`",
        ),
        (
            "unknown key in an inline rule",
            with_carriers(&[
                "[allocation]",
                "rules = [{ name = \"a\", carriers = [\"SF\"], weight = 1 }]",
            ]),
            10,
            "allocation.rules[0].weight",
            "unknown field `weight`",
        ),
        (
            "wrong type: string for bool",
            lines(&["[review]", "hold_unpaid = \"yes\""]),
            2,
            "review.hold_unpaid",
            "invalid type",
        ),
        (
            "wrong type: float for cost",
            lines(&[
                "[[carriers]]",
                "name = \"SF\"",
                "cost_cents = 18.5",
                "days = 1",
            ]),
            3,
            "carriers[0].cost_cents",
            "invalid type",
        ),
        (
            "wrong type: table for a section",
            lines(&["sender = 5"]),
            1,
            "sender",
            "expected a table",
        ),
        (
            "wrong type: list entry",
            lines(&["[review]", "blocked_receivers = [\"a\", 13800000013]"]),
            2,
            "review.blocked_receivers[1]",
            "invalid type",
        ),
        (
            "missing carrier field",
            lines(&["[[carriers]]", "name = \"SF\"", "days = 1"]),
            1,
            "carriers[0].cost_cents",
            "missing field `cost_cents`",
        ),
        (
            "missing rule carriers",
            with_carriers(&["[[allocation.rules]]", "name = \"a\""]),
            9,
            "allocation.rules[0].carriers",
            "missing field `carriers`",
        ),
        (
            "unknown carrier in a rule",
            with_carriers(&[
                "[[allocation.rules]]",
                "name = \"a\"",
                "carriers = [\"SF\"]",
                "[[allocation.rules]]",
                "name = \"b\"",
                "carriers = [\"SF\", \"XYZ\"]",
            ]),
            14,
            "allocation.rules[1].carriers",
            "unknown carrier `XYZ`",
        ),
        (
            "unknown default_carrier",
            with_carriers(&[
                "[allocation]",
                "prefer = \"cost\"",
                "default_carrier = \"EMS\"",
            ]),
            11,
            "allocation.default_carrier",
            "unknown carrier `EMS`",
        ),
        (
            "default_carrier without carriers",
            lines(&["[allocation]", "default_carrier = \"SF\""]),
            2,
            "allocation.default_carrier",
            "unknown carrier `SF`",
        ),
        (
            "duplicate carrier",
            with_carriers(&[
                "[[carriers]]",
                "name = \"SF\"",
                "cost_cents = 1",
                "days = 2",
            ]),
            10,
            "carriers[2].name",
            "duplicate carrier `SF` (first declared on line 2)",
        ),
        (
            "duplicate rule name",
            with_carriers(&[
                "[[allocation.rules]]",
                "name = \"a\"",
                "carriers = [\"SF\"]",
                "[[allocation.rules]]",
                "name = \"a\"",
                "carriers = [\"ZTO\"]",
            ]),
            13,
            "allocation.rules[1].name",
            "duplicate rule name `a`",
        ),
        (
            "empty rule name",
            with_carriers(&["[[allocation.rules]]", "name = \"\"", "carriers = [\"SF\"]"]),
            10,
            "allocation.rules[0].name",
            "1 to 64 bytes",
        ),
        (
            "rule name too long",
            with_carriers(&[
                "[[allocation.rules]]",
                &format!("name = \"{}\"", "r".repeat(65)),
                "carriers = [\"SF\"]",
            ]),
            10,
            "allocation.rules[0].name",
            "got 65",
        ),
        (
            "min weight above max",
            with_carriers(&[
                "[[allocation.rules]]",
                "name = \"a\"",
                "max_weight_grams = 1000",
                "min_weight_grams = 2000",
                "carriers = [\"SF\"]",
            ]),
            12,
            "allocation.rules[0].min_weight_grams",
            "greater than max_weight_grams 1000",
        ),
        (
            "negative weight",
            with_carriers(&[
                "[[allocation.rules]]",
                "name = \"a\"",
                "max_weight_grams = -1",
                "carriers = [\"SF\"]",
            ]),
            11,
            "allocation.rules[0].max_weight_grams",
            "negative",
        ),
        (
            "negative cost",
            lines(&[
                "[[carriers]]",
                "name = \"SF\"",
                "cost_cents = -5",
                "days = 1",
            ]),
            3,
            "carriers[0].cost_cents",
            "negative",
        ),
        (
            "negative days",
            lines(&[
                "[[carriers]]",
                "name = \"SF\"",
                "cost_cents = 5",
                "days = -1",
            ]),
            4,
            "carriers[0].days",
            "got -1",
        ),
        (
            "unknown label stock",
            lines(&[
                "[[carriers]]",
                "name = \"SF\"",
                "cost_cents = 5",
                "days = 1",
                "label = \"A4\"",
            ]),
            5,
            "carriers[0].label",
            "not one of 4x6, 100x180, 76x130",
        ),
        (
            "route for a division that does not exist",
            lines(&[
                "[[carriers]]",
                "name = \"SF\"",
                "cost_cents = 5",
                "days = 1",
                "[[carriers.routes]]",
                "division = \"990101\"",
                "sorting_code = \"X\"",
            ]),
            6,
            "carriers[0].routes[0].division",
            "no division's code starts with 990101",
        ),
        (
            "route without a code or a text",
            lines(&[
                "[[carriers]]",
                "name = \"SF\"",
                "cost_cents = 5",
                "days = 1",
                "[[carriers.routes]]",
                "division = \"33\"",
            ]),
            6,
            "carriers[0].routes[0].division",
            "needs a sorting_code, a destination or both",
        ),
        (
            "negative max amount",
            lines(&["[review]", "", "max_amount_cents = -100"]),
            3,
            "review.max_amount_cents",
            "negative",
        ),
        (
            "bad global prefer",
            lines(&["[allocation]", "prefer = \"fast\""]),
            2,
            "allocation.prefer",
            "unknown variant `fast`",
        ),
        (
            "bad rule prefer",
            with_carriers(&[
                "[[allocation.rules]]",
                "name = \"a\"",
                "carriers = [\"SF\"]",
                "prefer = \"Speed\"",
            ]),
            12,
            "allocation.rules[0].prefer",
            "expected `cost` or `speed`",
        ),
        (
            "empty carriers",
            with_carriers(&["[[allocation.rules]]", "name = \"a\"", "carriers = []"]),
            11,
            "allocation.rules[0].carriers",
            "at least one carrier",
        ),
        (
            "lowercase carrier name",
            lines(&[
                "[[carriers]]",
                "name = \"sf\"",
                "cost_cents = 1",
                "days = 1",
            ]),
            2,
            "carriers[0].name",
            "[A-Z0-9_-]{1,16}",
        ),
        (
            "carrier name too long",
            with_carriers(&[
                "[[carriers]]",
                "name = \"ABCDEFGHIJKLMNOPQ\"",
                "cost_cents = 1",
                "days = 1",
            ]),
            10,
            "carriers[2].name",
            "[A-Z0-9_-]{1,16}",
        ),
        (
            "empty carrier name",
            lines(&["[[carriers]]", "cost_cents = 1", "days = 1", "name = \"\""]),
            4,
            "carriers[0].name",
            "[A-Z0-9_-]{1,16}",
        ),
        (
            "blank blocked receiver",
            lines(&[
                "[review]",
                "blocked_receivers = [",
                "  \"a\",",
                "  \"\",",
                "]",
            ]),
            4,
            "review.blocked_receivers",
            "blank",
        ),
        (
            "earliest problem wins",
            with_carriers(&[
                "[allocation]",
                "default_carrier = \"EMS\"",
                "[[allocation.rules]]",
                "name = \"a\"",
                "carriers = [\"XYZ\"]",
                "[review]",
                "max_amount_cents = -1",
            ]),
            10,
            "allocation.default_carrier",
            "unknown carrier `EMS`",
        ),
    ];
    for (case, text, line, key, message) in &cases {
        check(case, text, *line, key, message);
    }
}

#[test]
fn limits() {
    let carrier = |i: usize| format!("[[carriers]]\nname = \"C{i}\"\ncost_cents = 1\ndays = 1\n");
    let carriers: String = (0..65).map(carrier).collect();
    check(
        "65 carriers",
        &carriers,
        64 * 4 + 1,
        "carriers",
        "more than 64 carriers",
    );
    let carriers: String = (0..64).map(carrier).collect();
    assert!(parse(&carriers).is_ok(), "64 carriers are fine");

    let rule = |i: usize| format!("[[allocation.rules]]\nname = \"r{i}\"\ncarriers = [\"C0\"]\n");
    let rules: String = carrier(0) + &(0..257).map(rule).collect::<String>();
    check(
        "257 rules",
        &rules,
        4 + 256 * 3 + 1,
        "allocation.rules",
        "more than 256 rules",
    );

    let regions = vec!["\"P\""; 257].join(",\n");
    let text = format!(
        "{}[[allocation.rules]]\nname = \"r\"\ncarriers = [\"C0\"]\nregions = [\n{regions}\n]\n",
        carrier(0)
    );
    check(
        "257 regions",
        &text,
        8 + 256 + 1,
        "allocation.rules[0].regions",
        "more than 256 regions",
    );

    let blocked: Vec<String> = (0..10_001).map(|i| format!("\"{i}\"")).collect();
    let text = format!(
        "[review]\nblocked_receivers = [\n{}\n]\n",
        blocked.join(",\n")
    );
    check(
        "10001 blocked receivers",
        &text,
        3 + 10_000,
        "review.blocked_receivers",
        "more than 10000 entries",
    );

    let big = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
    check("file too big", &big, 1, "", "256 KiB");
    let head = "[review]\n# ";
    let padded = format!("{head}{}\n", "x".repeat(MAX_FILE_BYTES - head.len() - 1));
    assert_eq!(padded.len(), MAX_FILE_BYTES);
    assert!(parse(&padded).is_ok(), "exactly 256 KiB is fine");
}

#[test]
fn error_display_names_line_and_key() {
    let err = parse("[review]\nfoo = 1\n").expect_err("unknown key");
    assert_eq!(
        err,
        RulesError {
            line: 2,
            key: "review.foo".into(),
            message: err.message.clone(),
        }
    );
    assert!(
        err.to_string()
            .starts_with("line 2, key `review.foo`: unknown field `foo`"),
        "{err}"
    );
}
