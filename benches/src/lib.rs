//! What the benchmarks in `benches/` share: reading criterion's results back, so that a
//! benchmark can print the ratio of our median to a peer library's measured in the same
//! run.

/// Criterion's median estimate, in nanoseconds, for `group/function`, read from the
/// `estimates.json` it wrote in this run (`None` if it is not there).
pub fn median_ns(group: &str, function: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let candidates = [
        format!("{dir}/criterion/{group}/{function}/new/estimates.json"),
        format!("../{dir}/criterion/{group}/{function}/new/estimates.json"),
    ];
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())?;
    let at = text.find("\"median\"")?;
    let rest = &text[at..];
    let pe = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let num: String = rest[pe..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == 'e' || *c == '-')
        .collect();
    num.parse().ok()
}
