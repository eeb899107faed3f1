//! What the CLI subcommands (`sluice deploy`, `swap`, `status`, ...) call
//! the admin API with.

use serde_json::Value;

/// An admin API error: the server's message, or why it could not be
/// reached.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// The admin API at `base` (`http://host:port`), called with `token`.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the API at `base`, authenticating with `token`.
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    fn request(&self, method: &str, path: &str) -> (String, ureq::Request) {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::request(method, &url);
        if let Some(token) = &self.token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        (url, request)
    }

    /// Calls `method path`, with an optional JSON body; returns the JSON
    /// answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let (url, request) = self.request(method, path);
        let response = match body {
            Some(b) => request.send_json(b),
            None => request.call(),
        };
        self.answer(&url, response)
    }

    /// Uploads a component's bytes (`PUT /components`), for `tenant` when
    /// the operator uploads on a tenant's behalf; returns its digest.
    pub fn upload(&self, bytes: &[u8], tenant: Option<&str>) -> Result<String, ClientError> {
        let path = match tenant {
            Some(t) => format!("/components?tenant={t}"),
            None => "/components".to_owned(),
        };
        let (url, request) = self.request("PUT", &path);
        let response = request
            .set("Content-Type", "application/wasm")
            .send_bytes(bytes);
        let answer = self.answer(&url, response)?;
        answer["digest"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError(format!("{url}: the answer has no digest: {answer}")))
    }

    fn answer(
        &self,
        url: &str,
        response: Result<ureq::Response, ureq::Error>,
    ) -> Result<Value, ClientError> {
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
                let hint = if code == 401 && self.token.is_none() {
                    " (give the token with --token-file or SLUICE_TOKEN)"
                } else {
                    ""
                };
                Err(ClientError(format!("{message} (HTTP {code}){hint}")))
            }
            Err(e) => Err(ClientError(format!(
                "cannot reach the admin API at {}: {e} (is `sluice serve` running there?)",
                self.base
            ))),
        }
    }

    /// GETs `path` as text (`/metrics`).
    pub fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let (url, request) = self.request("GET", path);
        request
            .call()
            .map_err(|e| ClientError(format!("{url}: {e}")))?
            .into_string()
            .map_err(|e| ClientError(format!("{url}: {e}")))
    }
}

/// The bytes of the component at `path`: read as it is if it is a
/// `.wasm`, else built here (a plugin crate or source directory) first.
fn component_bytes(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
    let component = if path.is_dir() {
        eprintln!("building {} here", path.display());
        crate::toolchain::build(path, &crate::toolchain::BuildOptions::default())
            .map_err(|e| ClientError(format!("building {}: {e}", path.display())))?
    } else {
        path.to_owned()
    };
    std::fs::read(&component)
        .map_err(|e| ClientError(format!("reading {}: {e}", component.display())))
}

/// `sluice deploy`: reads the pipeline file, builds (here) and uploads
/// each plugin it names, and deploys its text with their digests.
pub fn deploy(
    client: &Client,
    file: &std::path::Path,
    tenant: Option<&str>,
) -> Result<Value, ClientError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ClientError(format!("reading {}: {e}", file.display())))?;
    let base = file.parent().unwrap_or(std::path::Path::new("."));
    let mut plugins = serde_json::Map::new();
    for written in super::pipelines::plugin_references(&text)
        .map_err(|e| ClientError(format!("{}: {e}", file.display())))?
    {
        let bytes = component_bytes(&base.join(&written))?;
        let digest = client.upload(&bytes, tenant)?;
        plugins.insert(written, digest.into());
    }
    let source = file.file_name().map(|n| n.to_string_lossy().into_owned());
    client.call(
        "POST",
        "/pipelines",
        Some(serde_json::json!({
            "pipeline": text,
            "plugins": plugins,
            "tenant": tenant,
            "source": source,
        })),
    )
}

/// `sluice swap`: builds (here) and uploads the new component to the
/// pipeline owner's area, then swaps it in.
pub fn swap(
    client: &Client,
    name: &str,
    step: &str,
    plugin: &std::path::Path,
) -> Result<Value, ClientError> {
    let bytes = component_bytes(plugin)?;
    let status = client.call("GET", &format!("/pipelines/{name}"), None)?;
    let digest = client.upload(&bytes, status["tenant"].as_str())?;
    client.call(
        "POST",
        &format!("/pipelines/{name}/steps/{step}/swap"),
        Some(serde_json::json!({ "component": digest })),
    )
}
