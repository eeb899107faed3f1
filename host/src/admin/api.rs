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
//! | `GET /tenants` | every tenant: limits, pipelines, live instances, dropped log lines |
//! | `POST /tenants/{name}` `{"topics": ["<prefix>"], ...}` | creates a tenant (the fields of a tenants file) |
//! | `GET /tenants/{name}` | one tenant |
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

use super::pipelines::{AdminError, Host, State as PipelineState, Status, SwapTo, TenantStatus};
use super::tenants::Tenant;

type Labels = Vec<(String, String)>;

/// A pipeline's count, read from its status.
type Read = fn(&Status) -> u64;

/// The counters: name, help, and where each pipeline's value comes from.
const COUNTERS: [(&str, &str, Read); 9] = [
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
    (
        "partly_late",
        "Records too late for some of their windows, added to the others",
        |s| s.partly_late,
    ),
    (
        "late_windows",
        "(record, window) pairs dropped because the window had closed",
        |s| s.late_windows,
    ),
    ("swaps", "Plugin swaps done", |s| s.swaps),
];

/// The metrics: counters follow each pipeline's counts.
struct Metrics {
    registry: Registry,
    counters: Vec<(&'static str, Read, Family<Labels, Counter>)>,
    up: Family<Labels, Gauge>,
    lag: Family<Labels, Gauge>,
    instances: Family<Labels, Gauge>,
    dropped_logs: Family<Labels, Counter>,
    /// What each counter showed at the last scrape, per pipeline (or
    /// tenant).
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
        let lag = Family::<Labels, Gauge>::default();
        registry.register(
            "pipeline_lag",
            "Records on a pipeline's partitions not yet processed and committed",
            lag.clone(),
        );
        let instances = Family::<Labels, Gauge>::default();
        registry.register(
            "tenant_plugin_instances",
            "A tenant's plugin instances alive now",
            instances.clone(),
        );
        let dropped_logs = Family::<Labels, Counter>::default();
        registry.register(
            "tenant_log_lines_dropped",
            "A tenant's plugin log lines dropped over its log-lines-per-second",
            dropped_logs.clone(),
        );
        Metrics {
            registry,
            counters,
            up,
            lag,
            instances,
            dropped_logs,
            last: HashMap::new(),
        }
    }

    /// Moves `family`'s counter for `labels` on to `now`.
    fn follow(
        last: &mut HashMap<(String, &'static str), u64>,
        family: &Family<Labels, Counter>,
        labels: &Labels,
        name: &'static str,
        now: u64,
    ) {
        let last = last.entry((labels[0].1.clone(), name)).or_insert(0);
        family
            .get_or_create(labels)
            .inc_by(now.saturating_sub(*last));
        *last = (*last).max(now);
    }

    fn render(&mut self, statuses: &[Status], tenants: &[TenantStatus]) -> String {
        for s in statuses {
            let labels = vec![("pipeline".to_owned(), s.name.clone())];
            for (name, read, family) in &self.counters {
                Self::follow(&mut self.last, family, &labels, name, read(s));
            }
            self.up
                .get_or_create(&labels)
                .set(i64::from(s.state == PipelineState::Running));
            if let Some(lag) = s.lag {
                self.lag.get_or_create(&labels).set(lag as i64);
            }
        }
        for t in tenants {
            let labels = vec![("tenant".to_owned(), t.name.clone())];
            self.instances
                .get_or_create(&labels)
                .set(t.live_instances as i64);
            Self::follow(
                &mut self.last,
                &self.dropped_logs,
                &labels,
                "tenant_log_lines_dropped",
                t.dropped_log_lines,
            );
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
            "/tenants",
            get(|State(app): State<App>| async move {
                blocking(move || Ok(Json(app.host.tenants()))).await
            }),
        )
        .route(
            "/tenants/{name}",
            get(
                |State(app): State<App>, Path(name): Path<String>| async move {
                    blocking(move || app.host.tenant(&name).map(Json)).await
                },
            )
            .post(
                |State(app): State<App>,
                 Path(name): Path<String>,
                 Json(tenant): Json<serde_json::Value>| async move {
                    let tenant: Tenant = serde_json::from_value(tenant)
                        .map_err(|e| AdminError::Invalid(format!("tenant `{name}`: {e}")))?;
                    blocking(move || app.host.create_tenant(&name, tenant))
                        .await
                        .map(|t| (StatusCode::CREATED, Json(t)))
                },
            ),
        )
        .route(
            "/metrics",
            get(|State(app): State<App>| async move {
                let (statuses, tenants) = blocking({
                    let host = Arc::clone(&app.host);
                    move || Ok((host.list(), host.tenants()))
                })
                .await?;
                let text = app
                    .metrics
                    .lock()
                    .expect("not poisoned")
                    .render(&statuses, &tenants);
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
