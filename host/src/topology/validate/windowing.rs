//! A windowed aggregation's `window` table, with `emit`, `late` and
//! `close.idle.after`: the window type and its durations, each bounded
//! (see [`MAX_WINDOW_DURATION`] and [`MAX_WINDOWS_PER_RECORD`]) so that
//! window arithmetic cannot overflow or exhaust memory.

use crate::topology::pipeline_file::{CloseDef, WindowDef};
use crate::topology::{
    EmitMode, LatePolicy, MAX_WINDOW_DURATION, MAX_WINDOWS_PER_RECORD, Windowing,
};
use crate::window::Windows;
use crate::window::hopping::Hopping;
use crate::window::session::Sessions;
use crate::window::sliding::Sliding;

/// Reads a step's `window` table.
pub(super) fn windowing(
    def: &WindowDef,
    emit: Option<EmitMode>,
    late: Option<LatePolicy>,
    close: Option<&CloseDef>,
) -> Result<Windowing, String> {
    let grace = match &def.grace {
        None => 0,
        Some(toml::Value::Integer(0)) => 0,
        Some(v) => duration("grace", v)?,
    };
    let windows = windows(def)?;
    let idle_close = match close {
        None => None,
        Some(c) => Some(duration("close.idle.after", &c.idle.after)?),
    };
    Ok(Windowing {
        windows,
        grace,
        emit: emit.unwrap_or_default(),
        late: late.unwrap_or_default(),
        idle_close,
    })
}

/// The windows of a `window` table, by its `type`.
fn windows(def: &WindowDef) -> Result<Windows, String> {
    // Each type takes its own fields and no other's.
    let fields = [
        ("size", def.size.as_ref()),
        ("advance", def.advance.as_ref()),
        ("difference", def.difference.as_ref()),
        ("gap", def.gap.as_ref()),
    ];
    let (wanted, optional): (&[&str], &[&str]) = match def.kind.as_str() {
        "tumbling" => (&["size"], &[]),
        "hopping" => (&["size", "advance"], &[]),
        "sliding" => (&["difference"], &[]),
        "session" => (&["gap"], &[]),
        other => {
            return Err(format!(
                "`type` = {other:?}: expected tumbling, hopping, sliding or session"
            ));
        }
    };
    for (name, value) in fields {
        match value {
            Some(_) if !wanted.contains(&name) && !optional.contains(&name) => {
                let hint = match (def.kind.as_str(), name) {
                    ("tumbling", "advance") => " (use `type = \"hopping\"`)",
                    _ => "",
                };
                return Err(format!(
                    "{} windows have no `{name}`{hint}; they take {}",
                    def.kind,
                    wanted
                        .iter()
                        .map(|w| format!("`{w}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
            None if wanted.contains(&name) => {
                return Err(format!("{} windows need `{name}`", def.kind));
            }
            _ => {}
        }
    }
    let field = |name: &str| -> Result<i64, String> {
        let (_, v) = fields
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a known field");
        duration(name, v.expect("checked above"))
    };
    Ok(match def.kind.as_str() {
        "tumbling" => Windows::Hopping(crate::window::tumbling::tumbling(field("size")?)?),
        "hopping" => Windows::Hopping(hopping(field("size")?, field("advance")?)?),
        "sliding" => Windows::Sliding(Sliding::new(field("difference")?)?),
        _ => Windows::Session(Sessions::new(field("gap")?)?),
    })
}

/// Hopping windows of `size` every `advance` ms, into at most
/// [`MAX_WINDOWS_PER_RECORD`] of which a record falls.
fn hopping(size: i64, advance: i64) -> Result<Hopping, String> {
    let hopping = Hopping::new(size, advance)?;
    let per_record = (size + advance - 1) / advance;
    if per_record > MAX_WINDOWS_PER_RECORD {
        return Err(format!(
            "a record would fall into {per_record} windows (`size` {size} ms / `advance` {advance} ms); \
             at most {MAX_WINDOWS_PER_RECORD} are allowed, as each is a store entry per key: \
             make `advance` at least {} ms",
            (size + MAX_WINDOWS_PER_RECORD - 1) / MAX_WINDOWS_PER_RECORD
        ));
    }
    Ok(hopping)
}

/// A positive duration, in ms: a number of milliseconds or a duration
/// such as `"5m"`, at most [`MAX_WINDOW_DURATION`]. `name` is its key.
pub(super) fn duration(name: &str, v: &toml::Value) -> Result<i64, String> {
    match v {
        toml::Value::Integer(ms) if *ms > 0 => bounded(name, *ms),
        toml::Value::String(s) => crate::window::duration::parse(s)
            .and_then(|ms| {
                if ms > 0 {
                    bounded(name, ms)
                } else {
                    Err(format!("`{name}` must be positive"))
                }
            })
            .map_err(|m| format!("`{name}`: {m}")),
        other => Err(format!(
            "`{name}` must be a positive number of milliseconds or a duration such as \"5m\", got {other}"
        )),
    }
}

/// `ms`, if it is at most [`MAX_WINDOW_DURATION`].
fn bounded(name: &str, ms: i64) -> Result<i64, String> {
    if ms > MAX_WINDOW_DURATION {
        Err(format!(
            "`{name}` is {ms} ms; window durations are at most {MAX_WINDOW_DURATION} ms (100 years)"
        ))
    } else {
        Ok(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Operation;
    use crate::topology::validate::tests::{AGGREGATE, load};

    #[test]
    fn windows_are_read_and_checked() {
        let windowed = |window: &str, extra: &str| {
            load(&format!(
                r#"
                application.id = "app"
                [errors]
                rejected = "skip"
                [sources.views]
                [steps.w]
                aggregate = "count"
                inputs = ["views"]
                window = {window}
                {extra}
                [sinks.out]
                inputs = ["w"]
            "#
            ))
        };
        let t = windowed(
            r#"{ type = "hopping", size = "5m", advance = "1m", grace = "30s" }"#,
            "late = \"dlq\"\nemit = \"on-window-close\"",
        )
        .unwrap();
        let Operation::Aggregate {
            window: Some(w), ..
        } = &t.steps[0].op
        else {
            panic!("windowed")
        };
        assert_eq!(
            (w.windows, w.grace, w.idle_close),
            (
                Windows::Hopping(Hopping::new(300_000, 60_000).unwrap()),
                30_000,
                None
            )
        );
        assert_eq!((w.emit, w.late), (EmitMode::OnWindowClose, LatePolicy::Dlq));
        assert!(t.uses_dlq(), "late records go to the DLQ");
        let e = windowed(r#"{ type = "tumbling", size = 100, advance = 10 }"#, "").unwrap_err();
        assert!(e.contains("tumbling windows have no `advance`"), "{e}");
        let e = windowed(r#"{ type = "session", size = 100 }"#, "").unwrap_err();
        assert!(
            e.contains("session windows have no `size`; they take `gap`"),
            "{e}"
        );
        let e = windowed(r#"{ type = "sliding" }"#, "").unwrap_err();
        assert!(e.contains("sliding windows need `difference`"), "{e}");
        let e = windowed(r#"{ type = "weekly", size = 1 }"#, "").unwrap_err();
        assert!(
            e.contains("expected tumbling, hopping, sliding or session"),
            "{e}"
        );
        let window = |w: &str, extra: &str| {
            let t = windowed(w, extra).unwrap();
            let Operation::Aggregate {
                window: Some(w), ..
            } = &t.steps[0].op
            else {
                panic!("windowed")
            };
            *w
        };
        let w = window(
            r#"{ type = "session", gap = "30m", grace = "1m" }"#,
            "close.idle.after = \"10s\"",
        );
        assert_eq!(
            (w.windows, w.grace, w.idle_close),
            (
                Windows::Session(Sessions::new(1_800_000).unwrap()),
                60_000,
                Some(10_000)
            )
        );
        let w = window(r#"{ type = "sliding", difference = "10s" }"#, "");
        assert_eq!(w.windows, Windows::Sliding(Sliding::new(10_000).unwrap()));
        let e = windowed(
            r#"{ type = "tumbling", size = 10 }"#,
            "close.idle.after = \"soon\"",
        )
        .unwrap_err();
        assert!(e.contains("`close.idle.after`"), "{e}");
        let e = windowed(
            r#"{ type = "hopping", size = "5 fortnights", advance = 1 }"#,
            "",
        )
        .unwrap_err();
        assert!(e.contains("`size`") && e.contains("unit"), "{e}");
        let e = load(&AGGREGATE.replace(
            "aggregate = \"count\"",
            "aggregate = \"count\"\n        emit = \"on-update\"",
        ))
        .unwrap_err();
        assert!(e.contains("only a windowed aggregation"), "{e}");
    }

    #[test]
    fn windows_that_would_exhaust_memory_or_overflow_are_refused() {
        let agg = |window: &str| {
            load(&format!(
                "application.id = \"app\"\n[sources.in]\ntopic = \"input\"\n[steps.c]\naggregate = \"count\"\ninputs = [\"in\"]\nwindow = {{ {window} }}\n[sinks.out]\ninputs = [\"c\"]\n"
            ))
        };
        let e = agg("type = \"hopping\", size = \"1d\", advance = 1").unwrap_err();
        assert!(
            e.contains("would fall into 86400000 windows") && e.contains("at least 8640 ms"),
            "{e}"
        );
        agg("type = \"hopping\", size = \"1d\", advance = \"10s\"").unwrap();
        let e = agg("type = \"session\", gap = 9223372036854775807").unwrap_err();
        assert!(e.contains("at most"), "{e}");
        let e = agg("type = \"tumbling\", size = \"1m\", grace = \"99999999d\"").unwrap_err();
        assert!(e.contains("`grace`") && e.contains("100 years"), "{e}");
    }
}
