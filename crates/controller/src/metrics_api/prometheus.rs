//! The Prometheus backend (`--prometheus-url`): each [`Query`] becomes one
//! PromQL instant query (`GET /api/v1/query`), and the vector it returns
//! becomes groups, exactly as the scrape store answers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::query::{Group, Query, to_promql};
use super::scrape::{HttpClient, HttpError, get_text, http_client};

/// How long one PromQL query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why Prometheus did not answer.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// The request failed.
    #[error("prometheus: {0}")]
    Http(#[from] HttpError),
    /// The answer is not Prometheus' JSON.
    #[error("prometheus answered something else: {0}")]
    Json(#[from] serde_json::Error),
    /// Prometheus refused the query.
    #[error("prometheus refused {query}: {error}")]
    Refused {
        /// The PromQL.
        query: String,
        /// Its error.
        error: String,
    },
}

/// A Prometheus to ask.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    base: String,
    client: HttpClient,
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<AnswerData>,
}

#[derive(Debug, Deserialize)]
struct AnswerData {
    #[serde(default)]
    result: Vec<VectorSample>,
}

#[derive(Debug, Deserialize)]
struct VectorSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

impl PrometheusClient {
    /// A client of the Prometheus at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            client: http_client(),
        }
    }

    /// Runs `query` as an instant query.
    pub async fn evaluate(&self, query: &Query) -> Result<Vec<Group>, PrometheusError> {
        let promql = to_promql(query);
        let query_string = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", &promql)
            .finish();
        let url = format!("{}/api/v1/query?{query_string}", self.base);
        let text = match get_text(&self.client, &url, QUERY_TIMEOUT).await {
            Ok(text) => text,
            // Prometheus explains a bad query in a 400's JSON body.
            Err(HttpError::Status { body, .. }) => body,
            Err(error) => return Err(error.into()),
        };
        let answer: Answer = serde_json::from_str(&text)?;
        if answer.status != "success" {
            return Err(PrometheusError::Refused {
                query: promql,
                error: answer.error.unwrap_or_default(),
            });
        }
        Ok(vector_groups(answer, &query.group_by))
    }
}

/// The vector's samples as groups (labels limited to `group_by`; NaN dropped).
fn vector_groups(answer: Answer, group_by: &[String]) -> Vec<Group> {
    answer
        .data
        .map(|data| data.result)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|sample| {
            let value: f64 = sample.value.1.parse().ok()?;
            if value.is_nan() {
                return None;
            }
            let labels = group_by
                .iter()
                .map(|label| {
                    let value = sample.metric.get(label).cloned().unwrap_or_default();
                    (label.clone(), value)
                })
                .collect();
            Some((labels, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instant_vectors() {
        let answer: Answer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"workload":"web","classification":"success","extra":"x"},"value":[1.5,"12"]},
                {"metric":{"workload":"db"},"value":[1.5,"NaN"]}]}}"#,
        )
        .unwrap();
        let groups = vector_groups(answer, &["workload".into(), "classification".into()]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].0["workload"], "web");
        assert_eq!(groups[0].0["classification"], "success");
        assert_eq!(groups[0].1, 12.0);
    }
}
