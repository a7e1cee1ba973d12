//! What the fuzz targets share: reading a fuzz input as a plan of read sizes plus the data, so
//! that a target can feed the same bytes whole and in pieces and compare the outcomes.

/// Splits a fuzz input into (read sizes, data): the first byte says how many (0 to 7) of the
/// bytes after it are read sizes. `None` for an empty input.
pub fn split_input(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&n, rest) = input.split_first()?;
    Some(rest.split_at((n as usize % 8).min(rest.len())))
}

/// The size of read number `i` under `plan`: its bytes plus one, cycled; with an empty plan,
/// `whole` (everything in one read).
pub fn read_size(plan: &[u8], i: usize, whole: usize) -> usize {
    if plan.is_empty() {
        whole
    } else {
        plan[i % plan.len()] as usize + 1
    }
}
