//! The golden frame vectors of `wit/frames/` (see its README.md), which
//! every SDK's test suite reads alike: each valid vector must decode to its
//! JSON and its JSON must encode to its bytes; each malformed one must be
//! refused.
//!
//! `SLUICE_WRITE_FRAMES=1 cargo test -p sluice-frame --test golden` rewrites
//! the `.hex` of every valid vector from its `.json` with this crate's
//! [`Writer`] (malformed vectors are written by hand). The committed files
//! are the source of truth; check a rewrite against `wit/FRAME.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sluice_frame::{FrameError, Reader, Status, Writer};

// ------------------------------------------------------------------ JSON

/// Just enough JSON for the vectors: no exponents, no surrogate pairs.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i),
            Some(&c),
            "JSON: expected {:?} at {}",
            c as char,
            self.i
        );
        self.i += 1;
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'n' => self.word("null", Json::Null),
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'"' => Json::Str(self.string()),
            b'[' => {
                self.i += 1;
                let mut out = Vec::new();
                self.ws();
                if self.s[self.i] == b']' {
                    self.i += 1;
                    return Json::Arr(out);
                }
                loop {
                    out.push(self.value());
                    self.ws();
                    self.i += 1;
                    match self.s[self.i - 1] {
                        b',' => {}
                        b']' => return Json::Arr(out),
                        c => panic!("JSON: unexpected {:?} in array", c as char),
                    }
                }
            }
            b'{' => {
                self.i += 1;
                let mut out = BTreeMap::new();
                self.ws();
                if self.s[self.i] == b'}' {
                    self.i += 1;
                    return Json::Obj(out);
                }
                loop {
                    self.ws();
                    let k = self.string();
                    self.eat(b':');
                    out.insert(k, self.value());
                    self.ws();
                    self.i += 1;
                    match self.s[self.i - 1] {
                        b',' => {}
                        b'}' => return Json::Obj(out),
                        c => panic!("JSON: unexpected {:?} in object", c as char),
                    }
                }
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i] == b'-' || self.s[self.i].is_ascii_digit())
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(text.parse().expect("JSON: an integer"))
            }
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Json {
        assert!(
            self.s[self.i..].starts_with(w.as_bytes()),
            "JSON: bad word at {}",
            self.i
        );
        self.i += w.len();
        v
    }

    fn string(&mut self) -> String {
        self.eat(b'"');
        let mut out = Vec::new();
        loop {
            let c = self.s[self.i];
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).unwrap(),
                b'\\' => {
                    let e = self.s[self.i];
                    self.i += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                            self.i += 4;
                            char::from_u32(u32::from_str_radix(hex, 16).unwrap())
                                .expect("JSON: no surrogates in vectors")
                        }
                        other => other as char,
                    };
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}

fn parse_json(text: &str) -> Json {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let v = p.value();
    p.ws();
    assert_eq!(p.i, p.s.len(), "JSON: trailing text");
    v
}

impl Json {
    fn get(&self, k: &str) -> &Json {
        match self {
            Json::Obj(m) => m.get(k).unwrap_or(&Json::Null),
            _ => panic!("not an object: {self:?}"),
        }
    }

    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(a) => a,
            _ => panic!("not an array: {self:?}"),
        }
    }

    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            _ => panic!("not a string: {self:?}"),
        }
    }

    /// `null`, `{"utf8": ...}` or `{"hex": ...}` as bytes.
    fn bytes(&self) -> Option<Vec<u8>> {
        match self {
            Json::Null => None,
            Json::Obj(m) => Some(match (m.get("utf8"), m.get("hex")) {
                (Some(Json::Str(s)), None) => s.as_bytes().to_vec(),
                (None, Some(Json::Str(h))) => unhex(h),
                _ => panic!("bytes are {{\"utf8\": ..}} or {{\"hex\": ..}}: {self:?}"),
            }),
            _ => panic!("not bytes: {self:?}"),
        }
    }
}

// ------------------------------------------------------------------ model

/// A decoded record, with every byte field owned, as the JSON means it.
#[derive(Debug, PartialEq)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Debug, PartialEq)]
enum St {
    Ok(Vec<Rec>),
    Rejected(String, String),
}

#[derive(Debug, PartialEq)]
enum Frame {
    Input(Vec<Rec>),
    Output(Vec<St>),
}

fn rec_of(j: &Json) -> Rec {
    Rec {
        key: j.get("key").bytes(),
        value: j.get("value").bytes(),
        timestamp: match j.get("timestamp") {
            Json::Null => None,
            Json::Num(n) => Some(*n),
            other => panic!("bad timestamp {other:?}"),
        },
        headers: j
            .get("headers")
            .arr()
            .iter()
            .map(|h| {
                let pair = h.arr();
                assert_eq!(pair.len(), 2, "a header is [name, value]");
                (pair[0].str().to_owned(), pair[1].bytes())
            })
            .collect(),
    }
}

fn frame_of(j: &Json) -> Frame {
    match j.get("direction").str() {
        "input" => Frame::Input(j.get("records").arr().iter().map(rec_of).collect()),
        "output" => Frame::Output(
            j.get("statuses")
                .arr()
                .iter()
                .map(|s| match (s.get("ok"), s.get("rejected")) {
                    (Json::Arr(rs), Json::Null) => St::Ok(rs.iter().map(rec_of).collect()),
                    (Json::Null, r @ Json::Obj(_)) => St::Rejected(
                        r.get("code").str().to_owned(),
                        r.get("message").str().to_owned(),
                    ),
                    _ => panic!("a status is {{\"ok\": [..]}} or {{\"rejected\": {{..}}}}: {s:?}"),
                })
                .collect(),
        ),
        d => panic!("unknown direction {d}"),
    }
}

// ------------------------------------------------------------------ codec

fn read_rec(r: &mut Reader<'_>) -> Result<Rec, FrameError> {
    let rec = r.record()?;
    let headers = rec
        .headers()
        .map(|h| h.map(|(n, v)| (n.to_owned(), v.map(<[u8]>::to_vec))))
        .collect::<Result<_, _>>()?;
    Ok(Rec {
        key: rec.key.map(<[u8]>::to_vec),
        value: rec.value.map(<[u8]>::to_vec),
        timestamp: rec.timestamp,
        headers,
    })
}

/// Decodes a whole frame the way the host does: every field, then no
/// trailing bytes. `Err` carries why it was refused.
fn decode(direction: &str, buf: &[u8]) -> Result<Frame, String> {
    let out = match direction {
        "input" => {
            let (mut r, n) = Reader::input(buf).map_err(|e| e.to_string())?;
            let recs = (0..n)
                .map(|_| read_rec(&mut r))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            (r, Frame::Input(recs))
        }
        "output" => {
            let (mut r, n) = Reader::output(buf).map_err(|e| e.to_string())?;
            let mut sts = Vec::new();
            for _ in 0..n {
                sts.push(match r.status().map_err(|e| e.to_string())? {
                    Status::Ok(k) => St::Ok(
                        (0..k)
                            .map(|_| read_rec(&mut r))
                            .collect::<Result<_, _>>()
                            .map_err(|e| e.to_string())?,
                    ),
                    Status::Rejected { code, message } => St::Rejected(code.into(), message.into()),
                });
            }
            (r, Frame::Output(sts))
        }
        d => panic!("unknown direction {d}"),
    };
    if !out.0.is_empty() {
        return Err(format!("trailing bytes at {}", out.0.position()));
    }
    Ok(out.1)
}

fn write_rec(w: &mut Writer, r: &Rec) {
    w.record(
        r.key.as_deref(),
        r.value.as_deref(),
        r.timestamp,
        r.headers.iter().map(|(n, v)| (n.as_str(), v.as_deref())),
    );
}

fn encode(f: &Frame) -> Vec<u8> {
    match f {
        Frame::Input(recs) => {
            let mut w = Writer::input(Vec::new(), recs.len() as u32);
            recs.iter().for_each(|r| write_rec(&mut w, r));
            w.finish()
        }
        Frame::Output(sts) => {
            let mut w = Writer::output(Vec::new(), sts.len() as u32);
            for s in sts {
                match s {
                    St::Ok(recs) => {
                        w.begin_ok();
                        recs.iter().for_each(|r| write_rec(&mut w, r));
                    }
                    St::Rejected(code, message) => w.rejected(code, message),
                }
            }
            w.finish()
        }
    }
}

// ------------------------------------------------------------------ files

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).expect("hex digits"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn frames_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../wit/frames")
}

/// Every vector, by name, sorted.
fn vectors() -> Vec<(String, Json, PathBuf)> {
    let mut names: Vec<String> = std::fs::read_dir(frames_dir())
        .expect("wit/frames/")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let dir = frames_dir();
            let json = parse_json(&std::fs::read_to_string(dir.join(format!("{n}.json"))).unwrap());
            (n.clone(), json, dir.join(format!("{n}.hex")))
        })
        .collect()
}

#[test]
fn golden_vectors_decode_encode_and_refuse_as_written() {
    let write = std::env::var_os("SLUICE_WRITE_FRAMES").is_some();
    let all = vectors();
    assert!(all.len() >= 8, "only {} vectors in wit/frames/", all.len());
    let mut failures = Vec::new();
    for (name, json, hex_path) in &all {
        let direction = json.get("direction").str();
        let malformed = json.get("error") == &Json::Bool(true);
        if write && !malformed {
            // Only new or changed vectors, so that a hand layout survives.
            let bytes = encode(&frame_of(json));
            let old = std::fs::read_to_string(hex_path).map(|t| unhex(&t)).ok();
            if old.as_deref() != Some(&bytes[..]) {
                std::fs::write(hex_path, format!("{}\n", hex(&bytes))).unwrap();
            }
        }
        let bytes = unhex(&std::fs::read_to_string(hex_path).expect("a .hex per .json"));
        if malformed {
            if let Ok(f) = decode(direction, &bytes) {
                failures.push(format!("{name}: malformed, but decoded as {f:?}"));
            }
            continue;
        }
        let want = frame_of(json);
        match decode(direction, &bytes) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!("{name}: decoded\n  {got:?}\nwant\n  {want:?}")),
            Err(e) => failures.push(format!("{name}: refused: {e}")),
        }
        let encoded = encode(&want);
        if encoded != bytes {
            failures.push(format!(
                "{name}: encoded\n  {}\nwant\n  {}",
                hex(&encoded),
                hex(&bytes)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
