//! What the CLI subcommands (`sluice deploy`, `swap`, `status`, ...) call
//! the admin API with.

use serde_json::Value;

/// An admin API error: the server's message, or why it could not be
/// reached.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// Calls `method path` on the admin API at `base` (`http://host:port`),
/// with an optional JSON body; returns the JSON answer.
pub fn call(
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, ClientError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let request = ureq::request(method, &url);
    let response = match body {
        Some(b) => request.send_json(b),
        None => request.call(),
    };
    match response {
        Ok(r) => r
            .into_json()
            .map_err(|e| ClientError(format!("{url}: unreadable answer: {e}"))),
        Err(ureq::Error::Status(code, r)) => {
            let message = r
                .into_json::<Value>()
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            Err(ClientError(format!("{message} (HTTP {code})")))
        }
        Err(e) => Err(ClientError(format!(
            "cannot reach the admin API at {base}: {e} (is `sluice serve` running there?)"
        ))),
    }
}

/// GETs `url` as text (`/metrics`).
pub fn get_text(url: &str) -> Result<String, ClientError> {
    ureq::get(url)
        .call()
        .map_err(|e| ClientError(format!("{url}: {e}")))?
        .into_string()
        .map_err(|e| ClientError(format!("{url}: {e}")))
}
