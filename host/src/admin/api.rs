//! The HTTP admin API of `sluice serve`. JSON in and out; errors are
//! `{"error": "..."}` with a status that says whose fault it is (400 a bad
//! request, 404 no such pipeline, 409 a conflict, 500 the pipeline failed).
//!
//! | method and path | does |
//! |---|---|
//! | `GET /pipelines` | every pipeline's status |
//! | `POST /pipelines` `{"file": "<pipeline.toml>", "tenant": "<name>"}` | deploys a pipeline (its tenant, on a host with tenants) |
//! | `GET /pipelines/{name}` | one pipeline's status |
//! | `DELETE /pipelines/{name}` | stops and removes it |
//! | `POST /pipelines/{name}/pause`, `.../resume` | pauses or resumes consuming |
//! | `POST /pipelines/{name}/steps/{step}/swap` `{"plugin": "<.wasm or crate>"}` or `{"rollback": true}` | swaps a step's plugin |
//! | `GET /metrics` | Prometheus metrics |
//!
//! Host calls block (a deploy builds and compiles plugins), so handlers
//! run them on the runtime's blocking threads.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use super::pipelines::{AdminError, Host, State as PipelineState, Status, SwapTo};

type Labels = Vec<(String, String)>;

/// A pipeline's count, read from its status.
type Read = fn(&Status) -> u64;

/// The counters: name, help, and where each pipeline's value comes from.
const COUNTERS: [(&str, &str, Read); 7] = [
    ("records_in", "Source records processed", |s| s.records_in),
    ("records_out", "Records written to sinks", |s| s.records_out),
    ("rejected", "Records a plugin rejected", |s| s.rejected),
    ("trapped", "Records a plugin trapped on", |s| s.trapped),
    (
        "dead_letters",
        "Records written to the dead-letter topic",
        |s| s.dead_letters,
    ),
    ("late", "Records too late for every window", |s| s.late),
    ("swaps", "Plugin swaps done", |s| s.swaps),
];

/// The metrics: counters follow each pipeline's counts.
struct Metrics {
    registry: Registry,
    counters: Vec<(&'static str, Read, Family<Labels, Counter>)>,
    up: Family<Labels, Gauge>,
    /// What each counter showed at the last scrape, per pipeline.
    last: HashMap<(String, &'static str), u64>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sluice");
        let mut counters = Vec::new();
        for (name, help, read) in COUNTERS {
            let family = Family::<Labels, Counter>::default();
            registry.register(name, help, family.clone());
            counters.push((name, read, family));
        }
        let up = Family::<Labels, Gauge>::default();
        registry.register(
            "pipeline_running",
            "1 while a pipeline consumes, 0 when paused, stopped or failed",
            up.clone(),
        );
        Metrics {
            registry,
            counters,
            up,
            last: HashMap::new(),
        }
    }

    fn render(&mut self, statuses: &[Status]) -> String {
        for s in statuses {
            let labels = vec![("pipeline".to_owned(), s.name.clone())];
            for (name, read, family) in &self.counters {
                let now = read(s);
                let last = self.last.entry((s.name.clone(), name)).or_insert(0);
                family
                    .get_or_create(&labels)
                    .inc_by(now.saturating_sub(*last));
                *last = (*last).max(now);
            }
            self.up
                .get_or_create(&labels)
                .set(i64::from(s.state == PipelineState::Running));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

#[derive(Clone)]
struct App {
    host: Arc<Host>,
    metrics: Arc<Mutex<Metrics>>,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match self {
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
            AdminError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// Runs a blocking host call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AdminError> + Send + 'static,
) -> Result<T, AdminError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AdminError::Failed(format!("the request's thread failed: {e}")))?
}

#[derive(Deserialize)]
struct Deploy {
    file: PathBuf,
    tenant: Option<String>,
}

#[derive(Deserialize)]
struct Swap {
    plugin: Option<PathBuf>,
    #[serde(default)]
    rollback: bool,
}

/// The admin API's routes over `host`.
pub fn router(host: Arc<Host>) -> Router {
    let app = App {
        host,
        metrics: Arc::new(Mutex::new(Metrics::new())),
    };
    Router::new()
        .route(
            "/pipelines",
            get(|State(app): State<App>| async move {
                blocking(move || Ok(Json(app.host.list()))).await
            })
            .post(|State(app): State<App>, Json(d): Json<Deploy>| async move {
                blocking(move || app.host.deploy(&d.file, d.tenant.as_deref()))
                    .await
                    .map(|s| (StatusCode::CREATED, Json(s)))
            }),
        )
        .route(
            "/pipelines/{name}",
            get(
                |State(app): State<App>, Path(name): Path<String>| async move {
                    blocking(move || app.host.status(&name).map(Json)).await
                },
            )
            .delete(
                |State(app): State<App>, Path(name): Path<String>| async move {
                    blocking(move || app.host.remove(&name).map(Json)).await
                },
            ),
        )
        .route(
            "/pipelines/{name}/pause",
            post(
                |State(app): State<App>, Path(name): Path<String>| async move {
                    blocking(move || app.host.pause(&name, true).map(Json)).await
                },
            ),
        )
        .route(
            "/pipelines/{name}/resume",
            post(
                |State(app): State<App>, Path(name): Path<String>| async move {
                    blocking(move || app.host.pause(&name, false).map(Json)).await
                },
            ),
        )
        .route(
            "/pipelines/{name}/steps/{step}/swap",
            post(
                |State(app): State<App>,
                 Path((name, step)): Path<(String, String)>,
                 Json(swap): Json<Swap>| async move {
                    let to = match (swap.plugin, swap.rollback) {
                        (Some(p), false) => SwapTo::Plugin(p),
                        (None, true) => SwapTo::Rollback,
                        _ => {
                            return Err(AdminError::Invalid(
                                "give either `plugin` (a component or crate) or `rollback: true`"
                                    .into(),
                            ));
                        }
                    };
                    blocking(move || app.host.swap(&name, &step, to).map(Json)).await
                },
            ),
        )
        .route(
            "/metrics",
            get(|State(app): State<App>| async move {
                let statuses = blocking({
                    let host = Arc::clone(&app.host);
                    move || Ok(host.list())
                })
                .await?;
                let text = app.metrics.lock().expect("not poisoned").render(&statuses);
                Ok::<_, AdminError>((
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                ))
            }),
        )
        .with_state(app)
}

/// Serves the admin API on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    host: Arc<Host>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "admin API listening");
    axum::serve(listener, router(host))
        .with_graceful_shutdown(shutdown)
        .await
}
