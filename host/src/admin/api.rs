//! The HTTP admin API of `sluice serve`. JSON in and out; errors are
//! `{"error": "..."}` with a status that says whose fault it is (400 a bad
//! request, 401 no valid token, 403 the operator's alone, 404 no such
//! pipeline (or not the caller's), 409 a conflict, 413 a body over its
//! limit, 429 over a quota, 500 the pipeline failed).
//!
//! Every request carries `Authorization: Bearer <token>`: the operator's
//! token, or a tenant's, which reaches only that tenant's pipelines,
//! components and status ([`super::auth`]).
//!
//! | method and path | who | does |
//! |---|---|---|
//! | `GET /pipelines` | any | the caller's pipelines' status |
//! | `POST /pipelines` `{"pipeline": "<toml text>", "plugins": {"<ref>": "<digest>"}, "tenant": "<name>"}` | any | deploys a pipeline; plugins are uploaded components |
//! | `PUT /components[?tenant=<name>]` (the component's bytes) | any | stores a component in the owner's area; answers its digest |
//! | `GET /pipelines/{name}` | owner | one pipeline's status |
//! | `DELETE /pipelines/{name}` | owner | stops and removes it |
//! | `POST /pipelines/{name}/pause`, `.../resume` | owner | pauses or resumes consuming |
//! | `POST /pipelines/{name}/steps/{step}/swap` `{"component": "<digest>"}` or `{"rollback": true}` | owner | swaps a step's plugin |
//! | `GET /tenants`, `GET /tenants/{name}` | any | tenants the caller may see: limits, pipelines, live instances, dropped log lines |
//! | `POST /tenants/{name}` `{"topics": ["<prefix>"], ...}` | operator | creates a tenant (the fields of a tenants file); answers its first token |
//! | `POST /tenants/{name}/token` | operator | issues another token for a tenant |
//! | `GET /metrics` | operator | Prometheus metrics |
//!
//! Host calls block (a deploy compiles plugins), so handlers run them on
//! the runtime's blocking threads.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use super::auth::{self, Caller};
use super::pipelines::{
    AdminError, DeployRequest, Host, State as PipelineState, Status, SwapTo, TenantStatus,
};
use super::tenants::Tenant;

type Labels = Vec<(String, String)>;

/// A pipeline's count, read from its status.
type Read = fn(&Status) -> u64;

/// The counters: name, help, and where each pipeline's value comes from.
const COUNTERS: [(&str, &str, Read); 13] = [
    ("records_in", "Source records processed", |s| s.records_in),
    ("records_out", "Records written to sinks", |s| s.records_out),
    ("rejected", "Records a plugin rejected", |s| s.rejected),
    ("trapped", "Records a plugin trapped on", |s| s.trapped),
    (
        "dead_letters",
        "Records written to the dead-letter topic",
        |s| s.dead_letters,
    ),
    (
        "refused",
        "Outputs a sink topic would refuse (too large, or a timestamp out of its range)",
        |s| s.refused,
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
    (
        "unkeyed",
        "Records without a key dropped (or dead-lettered) before a repartition topic",
        |s| s.unkeyed,
    ),
    (
        "repartitioned",
        "Records read back from the pipeline's repartition topics",
        |s| s.repartitioned,
    ),
    (
        "join_skipped",
        "Records a join dropped for want of a key or a value",
        |s| s.join_skipped,
    ),
    ("swaps", "Plugin swaps done", |s| s.swaps),
];

/// The metrics: counters follow each pipeline's counts.
struct Metrics {
    registry: Registry,
    counters: Vec<(&'static str, Read, Family<Labels, Counter>)>,
    up: Family<Labels, Gauge>,
    parked: Family<Labels, Gauge>,
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
        let parked = Family::<Labels, Gauge>::default();
        registry.register(
            "pipeline_parked",
            "1 while a running pipeline is parked (no input for --park-after: no Kafka clients or threads held)",
            parked.clone(),
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
            parked,
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
            self.parked.get_or_create(&labels).set(i64::from(s.parked));
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
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        };
        let body = Json(serde_json::json!({ "error": self.to_string() }));
        if status == StatusCode::UNAUTHORIZED {
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
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

/// Finds who calls, before any body is read: a request without a token
/// the host knows is answered 401 at once.
async fn authenticate(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer);
    match app.host.authenticate(token) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// Answers every error as `{"error": "..."}`, those of axum's extractors
/// too (a body that is not JSON or not of the request's shape, a body over
/// its limit, an unknown route), keeping their status.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let message = match String::from_utf8_lossy(&body).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        text => text.to_owned(),
    };
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Swap {
    component: Option<String>,
    #[serde(default)]
    rollback: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Owner {
    tenant: Option<String>,
}

/// Bytes a JSON request body may have (a pipeline file is a few KiB).
pub const MAX_JSON_BODY: usize = 1 << 20;

/// Bytes an uploaded component may have, unless `sluice serve
/// --max-upload-mb` says otherwise (JavaScript and Python components are
/// 12–18 MB).
pub const DEFAULT_MAX_UPLOAD: usize = 64 << 20;

type Caught = Extension<Caller>;

/// The admin API's routes over `host`; an uploaded component may have at
/// most `max_upload` bytes, any other body [`MAX_JSON_BODY`].
pub fn router(host: Arc<Host>, max_upload: usize) -> Router {
    let app = App {
        host,
        metrics: Arc::new(Mutex::new(Metrics::new())),
    };
    Router::new()
        .route(
            "/pipelines",
            get(|State(app): State<App>, Extension(c): Caught| async move {
                blocking(move || Ok(Json(app.host.list(&c)))).await
            })
            .post(
                |State(app): State<App>, Extension(c): Caught, Json(d): Json<DeployRequest>| async move {
                    blocking(move || app.host.deploy(&c, d))
                        .await
                        .map(|s| (StatusCode::CREATED, Json(s)))
                },
            ),
        )
        .route(
            "/components",
            put(
                |State(app): State<App>,
                 Extension(c): Caught,
                 Query(owner): Query<Owner>,
                 body: axum::body::Bytes| async move {
                    blocking(move || app.host.upload(&c, owner.tenant.as_deref(), &body))
                        .await
                        .map(|s| (StatusCode::CREATED, Json(s)))
                },
            )
            .layer(DefaultBodyLimit::max(max_upload)),
        )
        .route(
            "/pipelines/{name}",
            get(
                |State(app): State<App>, Extension(c): Caught, Path(name): Path<String>| async move {
                    blocking(move || app.host.status(&c, &name).map(Json)).await
                },
            )
            .delete(
                |State(app): State<App>, Extension(c): Caught, Path(name): Path<String>| async move {
                    blocking(move || app.host.remove(&c, &name).map(Json)).await
                },
            ),
        )
        .route(
            "/pipelines/{name}/pause",
            post(
                |State(app): State<App>, Extension(c): Caught, Path(name): Path<String>| async move {
                    blocking(move || app.host.pause(&c, &name, true).map(Json)).await
                },
            ),
        )
        .route(
            "/pipelines/{name}/resume",
            post(
                |State(app): State<App>, Extension(c): Caught, Path(name): Path<String>| async move {
                    blocking(move || app.host.pause(&c, &name, false).map(Json)).await
                },
            ),
        )
        .route(
            "/pipelines/{name}/steps/{step}/swap",
            post(
                |State(app): State<App>,
                 Extension(c): Caught,
                 Path((name, step)): Path<(String, String)>,
                 Json(swap): Json<Swap>| async move {
                    let to = match (swap.component, swap.rollback) {
                        (Some(digest), false) => SwapTo::Component(digest),
                        (None, true) => SwapTo::Rollback,
                        _ => {
                            return Err(AdminError::Invalid(
                                "give either `component` (the digest of an uploaded component) or `rollback: true`"
                                    .into(),
                            ));
                        }
                    };
                    blocking(move || app.host.swap(&c, &name, &step, to).map(Json)).await
                },
            ),
        )
        .route(
            "/tenants",
            get(|State(app): State<App>, Extension(c): Caught| async move {
                blocking(move || Ok(Json(app.host.tenants(&c)))).await
            }),
        )
        .route(
            "/tenants/{name}",
            get(
                |State(app): State<App>, Extension(c): Caught, Path(name): Path<String>| async move {
                    blocking(move || app.host.tenant(&c, &name).map(Json)).await
                },
            )
            .post(
                |State(app): State<App>,
                 Extension(c): Caught,
                 Path(name): Path<String>,
                 Json(tenant): Json<serde_json::Value>| async move {
                    let tenant: Tenant = serde_json::from_value(tenant).map_err(|e| {
                        AdminError::Invalid(format!(
                            "tenant `{}`: {e}",
                            name.chars().take(64).collect::<String>()
                        ))
                    })?;
                    blocking(move || app.host.create_tenant(&c, &name, tenant))
                        .await
                        .map(|(status, token)| {
                            let mut body = serde_json::to_value(status).expect("serializable");
                            body["token"] = token.into();
                            (StatusCode::CREATED, Json(body))
                        })
                },
            ),
        )
        .route(
            "/tenants/{name}/token",
            post(
                |State(app): State<App>, Extension(c): Caught, Path(name): Path<String>| async move {
                    blocking(move || app.host.issue_token(&c, &name))
                        .await
                        .map(|token| (StatusCode::CREATED, Json(serde_json::json!({ "token": token }))))
                },
            ),
        )
        .route(
            "/metrics",
            get(|State(app): State<App>, Extension(c): Caught| async move {
                if c != Caller::Operator {
                    return Err(AdminError::Forbidden(
                        "metrics cover every tenant: they need the operator's token".into(),
                    ));
                }
                let (statuses, tenants) = blocking({
                    let host = Arc::clone(&app.host);
                    move || Ok((host.list(&c), host.tenants(&c)))
                })
                .await?;
                let text = app
                    .metrics
                    .lock()
                    .expect("not poisoned")
                    .render(&statuses, &tenants);
                Ok::<_, AdminError>((
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                ))
            }),
        )
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(app)
}

/// Serves the admin API on `addr` until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    host: Arc<Host>,
    max_upload: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "admin API listening");
    axum::serve(listener, router(host, max_upload))
        .with_graceful_shutdown(shutdown)
        .await
}
