//! Damaged requests: random edits of the valid fixtures, under random small limits, must give
//! one outcome however the bytes are split (the codec never answers by the segmentation).

mod fixture;

use evserver_http::Limits;
use fixture::conn::run;
use fixture::splits::{plans, XorShift};
use fixture::{escape, load_all};

/// Bytes that matter to the grammar, plus ordinary ones.
const INTERESTING: &[u8] = b"\r\n \t:;=\"\\,/?#*0a9fF\x00\x7f\xe9-";

const MUTANTS_PER_FIXTURE: u64 = 60;

fn mutate(input: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(out.len() + 1);
        let byte = INTERESTING[rng.below(INTERESTING.len())];
        match rng.below(3) {
            0 => out.insert(at, byte),
            1 if at < out.len() => out[at] = byte,
            _ if at < out.len() => {
                out.remove(at);
            }
            _ => out.push(byte),
        }
    }
    out
}

fn small_limits(rng: &mut XorShift) -> (Limits, usize) {
    let limits = Limits {
        max_request_line: 8 + rng.below(40),
        max_headers: 1 + rng.below(6),
        max_header_field: 4 + rng.below(40),
        max_head: 16 + rng.below(200),
        max_body: rng.below(40) as u64,
    };
    (limits, 4 + rng.below(40))
}

#[test]
fn damaged_requests_give_one_outcome_however_they_are_split() {
    let mut failures = Vec::new();
    for fixture in load_all("valid") {
        let mut rng = XorShift::new(fixture.input.len() as u64 + fixture.name.len() as u64);
        for round in 0..MUTANTS_PER_FIXTURE {
            let input = mutate(&fixture.input, &mut rng);
            let (limits, max_metadata) = if round % 2 == 0 {
                small_limits(&mut rng)
            } else {
                (fixture.expect.limits.clone(), fixture.expect.max_metadata)
            };
            let mut first = None;
            for (plan, pieces) in plans(input.len()) {
                let outcome = run(&input, &pieces, &limits, max_metadata);
                match &first {
                    None => first = Some(outcome),
                    Some(whole) if *whole != outcome => {
                        failures.push(format!(
                            "{} round {round}: {plan} gives {:?}, whole gives {:?}\n  input: {}\n  {limits:?} max_metadata {max_metadata}",
                            fixture.name,
                            outcome.end,
                            whole.end,
                            escape(&input)
                        ));
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
