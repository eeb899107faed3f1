//! A hostile tenant against `sluice serve`'s security model
//! (docs/security.md), next to a well-behaved tenant whose output must
//! stay exact: native code by a plugin crate's build script or by
//! librdkafka's `plugin.library.paths` (each shown to run when the
//! developer or operator asks for it, and refused to the tenant), the
//! other refused Kafka properties, host paths, another tenant's identity,
//! missing, wrong and other tenants' tokens, a 100 MB body and 200
//! concurrent deploys.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sluice::kafka::embedded::EmbeddedKafka;

use crate::hot_swap::component;
use crate::serve::{cli, cli_as, free_port, spawn_serve};
use crate::support::{self, SluiceRun};

const OPS_TOKEN: &str = "ops-token-0123456789abcdef0123456789";

/// A request to the admin API with `token`: the status and JSON answer.
fn api(
    admin: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = ureq::request(method, &format!("http://{admin}{path}"));
    if let Some(t) = token {
        request = request.set("Authorization", &format!("Bearer {t}"));
    }
    let response = match body {
        Some(b) => request.send_json(b),
        None => request.call(),
    };
    match response {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// Uploads a component as `token`'s owner; its digest.
fn upload(admin: &str, token: &str, bytes: &[u8]) -> String {
    let r = ureq::put(&format!("http://{admin}/components"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_bytes(bytes)
        .unwrap();
    r.into_json::<Value>().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A one-step pipeline's text: `<app>-in` through `plugin` to
/// `<app>-out`, with `extra` lines at the top.
fn pipeline_text(app: &str, plugin: &str, extra: &str) -> String {
    format!(
        "application.id = \"{app}\"\n{extra}\n[processing]\ncommit.interval.ms = 100\n[sources.events]\ntopic = \"{app}-in\"\n[steps.work]\nplugin = \"{plugin}\"\ninputs = [\"events\"]\n[sinks.out]\ntopic = \"{app}-out\"\ninputs = [\"work\"]\n"
    )
}

/// A plugin crate whose build script writes `marker`: what a host that
/// builds tenants' crates would run natively.
fn crate_with_build_script(dir: &Path, marker: &Path) -> std::path::PathBuf {
    let krate = dir.join("evil-crate");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"evil-crate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[lib]\ncrate-type = [\"cdylib\"]\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(krate.join("src/lib.rs"), "").unwrap();
    std::fs::write(
        krate.join("build.rs"),
        format!(
            "fn main() {{ std::fs::write({:?}, format!(\"uid {{}} pid {{}}\", std::process::id(), std::process::id())).unwrap(); }}\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    krate
}

/// A shared library whose constructor writes `marker`: what
/// `plugin.library.paths` makes librdkafka load into the process.
fn library_writing(dir: &Path, marker: &Path) -> std::path::PathBuf {
    let source = dir.join("evil.c");
    std::fs::write(
        &source,
        format!(
            "#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void evil(void) {{ FILE *f = fopen(\"{}\", \"w\"); if (f) {{ fprintf(f, \"pid %d\\n\", getpid()); fclose(f); }} }}\nint conf_init(void *conf, void **opaque, char *err, unsigned long size) {{ return 0; }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let library = dir.join("libevil.so");
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .output()
        .expect("running cc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    library
}

/// A 100 MB upload on a raw connection: the status line of the answer.
fn upload_100_mb(admin: &str, token: &str) -> String {
    let mut stream = std::net::TcpStream::connect(admin).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let size = 100 << 20;
    write!(
        stream,
        "PUT /components HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {token}\r\nContent-Length: {size}\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![0u8; 1 << 20];
    // The host may answer and close before the body is all sent.
    for _ in 0..100 {
        if stream.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_hostile_tenant_cannot_run_native_code_reach_host_paths_or_other_tenants() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let u = support::unique("s");
    let ops = format!("ops.{u}");
    for t in [format!("{ops}-in"), format!("{ops}-out")] {
        kafka.create_topic(&t, 1).unwrap();
    }
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(OPS_TOKEN.as_bytes()));
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        format!("[tenants.ops]\ntopics = [\"ops.\"]\ntoken-sha256 = \"{digest}\"\n"),
    )
    .unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let mut host = spawn_serve(
        dir.path(),
        &brokers,
        &admin,
        &["--tenants", tenants.to_str().unwrap()],
    );
    support::wait_until("the admin API to answer", &mut [&mut host], || {
        cli(&admin, &["status"]).is_ok()
    });

    // The well-behaved tenant deploys with its own token (the CLI
    // uploads its component) and processes a numbered stream throughout.
    let tag = component("tag-v1");
    let ops_dir = dir.path().join("ops");
    std::fs::create_dir_all(&ops_dir).unwrap();
    let ops_file = support::write_pipeline(
        &ops_dir,
        &pipeline_text(&ops, &tag.display().to_string(), ""),
    );
    let deployed = cli_as(&admin, OPS_TOKEN, &["deploy", ops_file.to_str().unwrap()]).unwrap();
    assert_eq!(deployed["tenant"], "ops");
    let mut sent = 0;
    let mut feed = |n: usize| {
        let records: Vec<_> = (sent..sent + n)
            .map(|i| {
                (
                    Some(format!("k{}", i % 5)),
                    format!("ops-{i}").into_bytes(),
                    1,
                )
            })
            .collect();
        support::produce(&brokers, &format!("{ops}-in"), &records);
        sent += n;
    };
    feed(500);

    // The hostile tenant, created by the operator; its token is shown once.
    let created = cli(
        &admin,
        &[
            "tenant",
            "create",
            "evil",
            "--topics",
            "evil.",
            "--max-pipelines",
            "4",
        ],
    )
    .unwrap();
    let evil = created["token"].as_str().unwrap().to_owned();
    let evil = evil.as_str();
    let deploy = |body: Value| api(&admin, Some(evil), "POST", "/pipelines", Some(body));
    let refused = |(code, body): (u16, Value), words: &[&str]| {
        let message = body["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            (400..500).contains(&code) && words.iter().all(|w| message.contains(w)),
            "expected a refusal naming {words:?}, got {code} {body}"
        );
    };

    // 1. No native code from a tenant: a crate directory is never built.
    let built = dir.path().join("built-natively");
    let krate = crate_with_build_script(dir.path(), &built);
    let krate_text = pipeline_text("evil.crate", &krate.display().to_string(), "");
    refused(
        deploy(json!({ "pipeline": krate_text })),
        &["was not uploaded", "`sluice deploy` does both"],
    );
    // Today's escape was `{"file": <a pipeline on the host>}` naming the
    // crate: the host opened the file and built the crate.
    let krate_file = support::write_pipeline(&krate, &krate_text);
    let (code, body) = deploy(json!({ "file": krate_file }));
    assert_eq!(code, 422, "a path is not a deploy");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `file`"),
        "answered as JSON: {body}"
    );

    // 2. No library loaded by librdkafka, and no other refused property.
    let loaded = dir.path().join("dlopened");
    let library = library_writing(dir.path(), &loaded);
    let tenant_tag = upload(&admin, evil, &std::fs::read(&tag).unwrap());
    let with_kafka = |app: &str, key: &str, value: &str| {
        json!({
            "pipeline": pipeline_text(app, "tag.wasm", &format!("[kafka]\n\"{key}\" = \"{value}\"")),
            "plugins": { "tag.wasm": tenant_tag },
        })
    };
    refused(
        deploy(with_kafka(
            "evil.lib",
            "plugin.library.paths",
            library.to_str().unwrap(),
        )),
        &["`plugin.library.paths`", "native library"],
    );
    for (key, value, reach) in [
        ("ssl.ca.location", "/etc/shadow", "names a file"),
        ("sasl.kerberos.kinit.cmd", "touch /tmp/x", "runs a command"),
        ("sasl.password", "guess", "credential"),
        ("bootstrap.servers", "127.0.0.1:1", "chooses the brokers"),
        ("group.id", &ops, "identity"),
        ("transactional.id", &format!("{ops}-0"), "identity"),
        ("client.id", "ops", "identity"),
        ("debug", "all", "floods"),
    ] {
        refused(
            deploy(with_kafka("evil.props", key, value)),
            &[&format!("`{key}`"), reach],
        );
    }

    // 3. No host path: a state directory, a plugin path on the host, a
    // digest another tenant uploaded, a path in place of a digest.
    refused(
        deploy(json!({
            "pipeline": pipeline_text("evil.state", "tag.wasm", "[state]\ndir = \"/tmp\""),
            "plugins": { "tag.wasm": tenant_tag },
        })),
        &["[state] `dir` is refused"],
    );
    let on_host = tag.display().to_string();
    refused(
        deploy(json!({ "pipeline": pipeline_text("evil.path", &on_host, "") })),
        &[&format!("`{on_host}` was not uploaded")],
    );
    // A component ops alone uploaded is not evil's to name.
    let ops_only = wat::parse_str("(component (core module))").unwrap();
    let ops_digest = upload(&admin, OPS_TOKEN, &ops_only);
    let evil_digest = upload(&admin, evil, &wat::parse_str("(component)").unwrap());
    let tagged_other = |plugin: &str| {
        deploy(json!({
            "pipeline": pipeline_text("evil.other", "p.wasm", ""),
            "plugins": { "p.wasm": plugin },
        }))
    };
    refused(
        tagged_other(&ops_digest),
        &["no component", "uploaded by this owner"],
    );
    refused(
        tagged_other("../../../etc/passwd"),
        &["not a component digest"],
    );

    // 4. Identity comes from the host: another tenant's application.id,
    // and a tenant whose prefix would reach into ops'.
    refused(
        deploy(json!({
            "pipeline": pipeline_text(&format!("{ops}.stolen"), "tag.wasm", ""),
            "plugins": { "tag.wasm": tenant_tag },
        })),
        &["`application.id`", "`evil.`"],
    );
    let e = cli(
        &admin,
        &["tenant", "create", "nested", "--topics", "ops.inner."],
    )
    .unwrap_err();
    assert!(e.contains("overlaps tenant `ops`"), "{e}");

    // 5. Tokens: none, a wrong one, and evil's on ops' pipeline.
    for token in [None, Some("wrong-token-of-the-right-length-000000")] {
        let (code, body) = api(&admin, token, "GET", "/pipelines", None);
        assert_eq!(code, 401, "{body}");
        assert!(!body.to_string().contains("ops"), "{body}");
    }
    let missing = api(&admin, Some(evil), "GET", "/pipelines/evil.nothing", None);
    let theirs = api(
        &admin,
        Some(evil),
        "GET",
        &format!("/pipelines/{ops}"),
        None,
    );
    assert_eq!(
        (missing.0, theirs.0),
        (404, 404),
        "another tenant's pipeline is not found"
    );
    assert_eq!(
        theirs.1["error"],
        format!("no pipeline `{ops}` is deployed"),
        "as a missing one"
    );
    for (method, path, body) in [
        ("POST", format!("/pipelines/{ops}/pause"), None),
        ("DELETE", format!("/pipelines/{ops}"), None),
        (
            "POST",
            format!("/pipelines/{ops}/steps/work/swap"),
            Some(json!({ "component": evil_digest })),
        ),
        ("GET", "/tenants/ops".to_owned(), None),
    ] {
        let (code, answer) = api(&admin, Some(evil), method, &path, body);
        assert_eq!(code, 404, "{method} {path}: {answer}");
    }
    for (method, path, body) in [
        (
            "POST",
            "/tenants/other".to_owned(),
            Some(json!({ "topics": ["other."] })),
        ),
        ("POST", "/tenants/ops/token".to_owned(), None),
        ("GET", "/metrics".to_owned(), None),
        (
            "POST",
            "/pipelines".to_owned(),
            Some(json!({ "pipeline": pipeline_text(&ops, "t.wasm", ""), "tenant": "ops" })),
        ),
    ] {
        let (code, answer) = api(&admin, Some(evil), method, &path, body);
        assert_eq!(code, 403, "{method} {path}: {answer}");
    }
    let (code, listed) = api(&admin, Some(evil), "GET", "/pipelines", None);
    assert_eq!((code, listed), (200, json!([])), "only its own pipelines");
    let (_, tenants) = api(&admin, Some(evil), "GET", "/tenants", None);
    assert_eq!(tenants.as_array().unwrap().len(), 1, "{tenants}");
    assert_eq!(tenants[0]["name"], "evil");
    let (code, _) = api(&admin, Some(evil), "PUT", "/components?tenant=ops", None);
    assert_eq!(code, 403, "uploading into another tenant's area");
    feed(500);

    // 6. A 100 MB body is refused (413) and the host stays up.
    assert!(upload_100_mb(&admin, evil).contains("413"), "not refused");
    assert!(upload_100_mb(&admin, "no-such-token").contains("401"));

    // 7. 200 concurrent deploys: 4 (its `max-pipelines`) start; the rest
    // are refused at once, and the host stays up.
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let admin = &admin;
                let body = json!({
                    "pipeline": pipeline_text(&format!("evil.c{i}"), "tag.wasm", ""),
                    "plugins": { "tag.wasm": tenant_tag },
                });
                s.spawn(move || api(admin, Some(evil), "POST", "/pipelines", Some(body)).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started = answers.iter().filter(|&&c| c == 201).count();
    let over = answers.iter().filter(|&&c| c == 429).count();
    assert_eq!((started, over), (4, 196), "{answers:?}");
    let (_, running) = api(&admin, Some(evil), "GET", "/pipelines", None);
    let first = running[0]["name"].as_str().unwrap().to_owned();
    // A swap names an uploaded digest, never a path.
    let (code, _) = api(
        &admin,
        Some(evil),
        "POST",
        &format!("/pipelines/{first}/steps/work/swap"),
        Some(json!({ "plugin": krate })),
    );
    assert_eq!(code, 422);
    let (code, answer) = api(
        &admin,
        Some(evil),
        "POST",
        &format!("/pipelines/{first}/steps/work/swap"),
        Some(json!({ "component": krate })),
    );
    assert_eq!(code, 400, "{answer}");
    for p in running.as_array().unwrap() {
        let path = format!("/pipelines/{}", p["name"].as_str().unwrap());
        assert_eq!(api(&admin, Some(evil), "DELETE", &path, None).0, 200);
    }
    feed(500);

    // Nothing native ran: neither the build script nor the library.
    assert!(!built.exists(), "a tenant's build script ran on the host");
    assert!(
        !loaded.exists(),
        "a tenant's library was loaded into the host"
    );

    // `ops`' output is exact, in order, and the host is up.
    let total = sent as u64;
    support::wait_until("all of ops' records", &mut [&mut host], || {
        cli_as(&admin, OPS_TOKEN, &["status", &ops]).unwrap()["records_in"] == total
    });
    host.terminate();
    let out: Vec<String> = support::read_all(&brokers, &format!("{ops}-out"), 1)
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    let want: Vec<String> = (0..sent).map(|i| format!("ops-{i}")).collect();
    assert_eq!(out, want);

    // The test can fail: what it refused does run when its owner asks.
    // The developer's build runs the crate's build script...
    let _ = std::process::Command::new(support::sluice_bin())
        .args(["plugin", "build", krate.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        built.exists(),
        "the build script is a real escape when built"
    );
    // ...and `sluice run`, where the user is the operator, gives
    // librdkafka the library.
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let run_file = support::write_pipeline(
        &run_dir,
        &pipeline_text(
            &ops,
            &tag.display().to_string(),
            &format!(
                "[kafka]\n\"plugin.library.paths\" = \"{}\"",
                library.display()
            ),
        ),
    );
    let mut run = SluiceRun::start(&run_file, &brokers, run_dir.join("run.log"));
    let mut seen = false;
    for _ in 0..300 {
        if loaded.exists() {
            seen = true;
            break;
        }
        if run.child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    run.kill();
    assert!(
        seen,
        "the library is a real escape when librdkafka is given it"
    );
}
