//! The one input grammar every command uses: "empty means not given", booleans, durations and lists.

use std::time::Duration;

/// Every problem with the inputs, reported at once, one per line, each naming its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input:\n  - {}", problems.join("\n  - "))]
pub struct InvalidInputs {
    /// One message per problem.
    pub problems: Vec<String>,
}

/// Splits list inputs given as repeated flags, commas or newlines.
pub fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split([',', '\n']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses `90s`, `10m`, `1h30m` or plain seconds.
///
/// # Errors
/// A message naming the input.
pub fn parse_duration(input: &str, value: &str) -> Result<Duration, String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v)
        .map_err(|_| format!("{input}: {v:?} is not a duration (use 90s, 10m, 1h30m or seconds)"))
}

/// Parses `true`/`false` (also `1`/`0`, `yes`/`no`).
///
/// # Errors
/// A message naming the input.
pub fn parse_bool(input: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("{input}: {other:?} is not true or false")),
    }
}

/// A value that counts as given: trimmed, and not empty (runners set `INPUT_X=""` for inputs
/// without a value).
pub fn given(v: &Option<String>) -> Option<&str> {
    given_str(v.as_deref())
}

/// [`given`] for a borrowed value.
pub fn given_str(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// [`given`], owned.
pub fn given_owned(v: &Option<String>) -> Option<String> {
    given(v).map(str::to_owned)
}
