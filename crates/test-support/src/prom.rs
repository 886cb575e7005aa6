//! A small Prometheus / OpenMetrics text-format parser.
//!
//! Enough for asserting metric values in tests: `# ` lines are skipped, each
//! sample line is `name{label="value",...} value [timestamp]`.

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Sample name, e.g. `request_total` or `response_latency_ms_bucket`.
    pub name: String,
    /// Labels in the order they were written.
    pub labels: Vec<(String, String)>,
    /// Sample value.
    pub value: f64,
}

impl Sample {
    /// The value of `label`, if present.
    pub fn label(&self, label: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == label)
            .map(|(_, v)| v.as_str())
    }

    /// True when every `(label, value)` pair in `subset` is present.
    pub fn matches(&self, subset: &[(&str, &str)]) -> bool {
        subset.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// Parses every sample of a text exposition; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// Sum of the values of all samples named `name` whose labels include
/// `subset`; `None` when no sample matches.
pub fn sum(samples: &[Sample], name: &str, subset: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for sample in samples
        .iter()
        .filter(|s| s.name == name && s.matches(subset))
    {
        *found.get_or_insert(0.0) += sample.value;
    }
    found
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        let (parsed, after) = parse_labels(&rest[1..])?;
        labels = parsed;
        rest = after;
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` and returns the labels and the text after `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = text.find('=')?;
        let key = text[..eq].trim().to_string();
        text = text[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                other => value.push(other),
            }
        };
        labels.push((key, value));
        text = &text[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP request Total requests.
# TYPE request counter
request_total{direction="inbound",authority="a:1",target_addr="127.0.0.1:80"} 3
request_total{direction="outbound",authority="b:2",target_addr="127.0.0.1:81"} 4
response_total{direction="inbound",status_code="200",error="say \"hi\", ok"} 2.5
process_open_fds 12
response_latency_ms_bucket{le="+Inf"} 7
# EOF
"#;

    #[test]
    fn sums_over_matching_series() {
        let samples = parse(TEXT);
        assert_eq!(sum(&samples, "request_total", &[]), Some(7.0));
        assert_eq!(
            sum(&samples, "request_total", &[("direction", "inbound")]),
            Some(3.0)
        );
        assert_eq!(
            sum(&samples, "request_total", &[("direction", "nope")]),
            None
        );
        assert_eq!(sum(&samples, "process_open_fds", &[]), Some(12.0));
        assert_eq!(
            sum(&samples, "response_latency_ms_bucket", &[("le", "+Inf")]),
            Some(7.0)
        );
    }

    #[test]
    fn unescapes_label_values() {
        let samples = parse(TEXT);
        let response = samples.iter().find(|s| s.name == "response_total").unwrap();
        assert_eq!(response.label("error"), Some("say \"hi\", ok"));
        assert_eq!(response.value, 2.5);
    }
}
