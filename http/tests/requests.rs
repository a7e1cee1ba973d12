//! Runs the raw request fixtures of `tests/requests/{valid,invalid}` (see tests/README.md):
//! each is fed whole, byte by byte and in seeded random splits, and must give its expected
//! result every way.

mod fixture;

use fixture::conn::{run, End, Outcome};
use fixture::splits::plans;
use fixture::{load_all, Fixture};

/// Runs `fixture` under every split and returns the whole-input outcome, or why the splits
/// disagree.
fn outcome_under_every_split(fixture: &Fixture) -> Result<Outcome, String> {
    let expect = &fixture.expect;
    let mut whole: Option<Outcome> = None;
    for (plan, pieces) in plans(fixture.input.len()) {
        let outcome = run(&fixture.input, &pieces, &expect.limits, expect.max_metadata);
        match &whole {
            None => whole = Some(outcome),
            Some(first) if *first != outcome => {
                return Err(format!(
                    "{}: fed {plan} gives {:?} after {} requests, fed whole gives {:?} after {}",
                    fixture.name,
                    outcome.end,
                    outcome.requests.len(),
                    first.end,
                    first.requests.len()
                ));
            }
            Some(_) => {}
        }
    }
    whole.ok_or_else(|| format!("{}: no plans", fixture.name))
}

fn check_requests(fixture: &Fixture, outcome: &Outcome) -> Result<(), String> {
    let expected = &fixture.expect.requests;
    if outcome.requests == *expected {
        return Ok(());
    }
    let show = |requests: &[fixture::Request]| {
        requests
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("---\n")
    };
    Err(format!(
        "{}: requests differ\n--- expected\n{}--- got\n{}",
        fixture.name,
        show(expected),
        show(&outcome.requests)
    ))
}

fn check_valid(fixture: &Fixture) -> Result<(), String> {
    let outcome = outcome_under_every_split(fixture)?;
    if outcome.end != End::Clean {
        return Err(format!(
            "{}: ended {:?}, expected Clean",
            fixture.name, outcome.end
        ));
    }
    if fixture.expect.requests.is_empty() {
        return Err(format!(
            "{}: the .expect file lists no request",
            fixture.name
        ));
    }
    check_requests(fixture, &outcome)
}

fn check_invalid(fixture: &Fixture) -> Result<(), String> {
    let expect = &fixture.expect;
    let (Some(status), Some(name)) = (expect.status, &expect.error) else {
        return Err(format!(
            "{}: the .expect file needs status and error",
            fixture.name
        ));
    };
    let outcome = outcome_under_every_split(fixture)?;
    let End::Error(error) = outcome.end else {
        return Err(format!(
            "{}: ended {:?}, expected {name}",
            fixture.name, outcome.end
        ));
    };
    if format!("{error:?}") != *name || error.status() != status {
        return Err(format!(
            "{}: got {error:?} ({}), expected {name} ({status})",
            fixture.name,
            error.status()
        ));
    }
    check_requests(fixture, &outcome)
}

fn check_all(kind: &str, at_least: usize, check: fn(&Fixture) -> Result<(), String>) {
    let fixtures = load_all(kind);
    assert!(
        fixtures.len() >= at_least,
        "only {} {kind} fixtures",
        fixtures.len()
    );
    let failures: Vec<String> = fixtures.iter().filter_map(|f| check(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} {kind} fixtures failed:\n\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn valid_requests_parse_as_expected_however_they_are_split() {
    check_all("valid", 20, check_valid);
}

#[test]
fn invalid_requests_are_refused_with_their_status_however_they_are_split() {
    check_all("invalid", 40, check_invalid);
}

#[test]
fn the_harness_decodes_escapes() {
    assert_eq!(
        fixture::unescape("a\\r\\n\\t\\0\\\\\\x7f\\xE9"),
        b"a\r\n\t\0\\\x7f\xe9"
    );
    assert_eq!(fixture::escape(b"a\r\n\t\\\x7f"), "a\\r\\n\\t\\\\\\x7f");
}
