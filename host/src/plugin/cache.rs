//! Compiled components, cached on disk.
//!
//! A JavaScript or Python plugin is a 12–18 MB component that wasmtime
//! takes about 20 s to compile; a Rust one takes well under a second.
//! The cache keeps the compiled artifact of each component so that every
//! start after the first loads it in milliseconds.
//!
//! - The key is the component's SHA-256 together with the wasmtime version
//!   and the engine's [`Engine::precompile_compatibility_hash`]: another
//!   wasmtime, or an engine configured differently, never reads an entry
//!   it could not run.
//! - An entry is written to a temporary file and renamed into place, so a
//!   reader never sees half of one. It starts with a magic line and the
//!   SHA-256 of the artifact; [`Component::deserialize`] trusts its input
//!   (it is native code), so an entry is loaded only when both match and
//!   wasmtime recognizes the artifact as a component. A bad entry is
//!   compiled again and replaced, with a warning.
//! - The directory is `$SLUICE_COMPONENT_CACHE`, else
//!   `~/.cache/sluice/components`, created readable by its owner only.
//!   `SLUICE_COMPONENT_CACHE=off` turns the cache off.
//!
//! The directory is bounded: `$SLUICE_COMPONENT_CACHE_MAX_MB` mebibytes
//! (2,048 by default). After a compile writes an entry, and at most once
//! every ten minutes per directory (a `last-pruned` stamp file says when),
//! the directory is measured; past the bound, the entries used longest ago
//! (a hit refreshes a component entry's modification time) are deleted
//! until it holds three quarters of it ([`prune`]). A deleted entry costs
//! one compile the next time it is needed.
//!
//! A component that changed still compiles mostly from cache:
//! [`FunctionCache`] keeps Cranelift's code for each function, keyed by
//! the function's code, under `functions/` of the same directory. A
//! one-line edit of a Python plugin changes its snapshot's data, not
//! the 12,000-odd functions of CPython, so the next compile reuses nearly all of
//! them: about 3 s of CPU instead of 12 for an 18 MB Python component
//! (2–3.5 s instead of 6.5 s on two idle cores).

use std::borrow::Cow;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

/// The first bytes of an entry; the number is the layout's version.
const MAGIC: &[u8] = b"sluice compiled component 1\n";

/// The first bytes of a [`FunctionCache`] entry.
const FUNCTION_MAGIC: &[u8] = b"sluice compiled function 1\n";

/// The size bound of a cache directory when `$SLUICE_COMPONENT_CACHE_MAX_MB`
/// does not set one.
const DEFAULT_MAX_MB: u64 = 2_048;

/// A directory is measured at most this often (by all processes together).
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The file whose modification time says when the directory was last
/// measured.
const PRUNE_STAMP: &str = "last-pruned";

/// Components at least this large show a spinner while they compile
/// (where standard error is a terminal).
const SPINNER_FROM_BYTES: usize = 1 << 20;

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Loaded from a cache entry.
    Cached,
    /// Compiled, and written to the cache.
    Compiled,
    /// Compiled; the cache is off or could not be written.
    CompiledUncached,
}

/// A directory of compiled components (or none: the cache is off).
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
    /// The directory's size bound, in bytes.
    max_bytes: u64,
}

impl ComponentCache {
    /// The cache at `dir`, bounded at the default size.
    pub fn at(dir: impl Into<PathBuf>) -> ComponentCache {
        ComponentCache {
            dir: Some(dir.into()),
            max_bytes: DEFAULT_MAX_MB << 20,
        }
    }

    /// No cache: every load compiles.
    pub fn off() -> ComponentCache {
        ComponentCache {
            dir: None,
            max_bytes: 0,
        }
    }

    /// The same cache, bounded at `max_bytes`.
    pub fn with_max_bytes(self, max_bytes: u64) -> ComponentCache {
        ComponentCache { max_bytes, ..self }
    }

    /// The process's cache: `$SLUICE_COMPONENT_CACHE` (`off` for none),
    /// else `components` under Sluice's cache directory; bounded at
    /// `$SLUICE_COMPONENT_CACHE_MAX_MB` mebibytes (2,048 by default; a
    /// value that is not a number is reported and the default used).
    pub fn from_env() -> ComponentCache {
        let cache = match std::env::var_os("SLUICE_COMPONENT_CACHE") {
            Some(v) if v == "off" => return ComponentCache::off(),
            Some(v) if !v.is_empty() => ComponentCache::at(v),
            _ => ComponentCache::at(crate::toolchain::cache_dir().join("components")),
        };
        match std::env::var("SLUICE_COMPONENT_CACHE_MAX_MB") {
            Ok(v) => match v.trim().parse::<u64>() {
                Ok(mb) => cache.with_max_bytes(mb.saturating_mul(1 << 20)),
                Err(_) => {
                    tracing::warn!(
                        value = %v,
                        "SLUICE_COMPONENT_CACHE_MAX_MB is not a whole number of mebibytes; using {DEFAULT_MAX_MB}"
                    );
                    cache
                }
            },
            Err(_) => cache,
        }
    }

    /// Its directory, if it is on.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The entry file of the component whose SHA-256 is `digest` (hex),
    /// compiled by `engine`.
    pub fn entry(&self, engine: &Engine, digest: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{digest}-{}.cwasm", &engine_key(engine)[..16])))
    }

    /// The compiled `bytes` (whose SHA-256 is `digest`, hex): from the
    /// cache when an entry is there and sound, else compiled (with a
    /// spinner on a terminal for a large component) and cached. `name` is
    /// for messages.
    pub fn component(
        &self,
        engine: &Engine,
        name: &str,
        bytes: &[u8],
        digest: &str,
    ) -> wasmtime::Result<(Component, Origin)> {
        let entry = self.entry(engine, digest);
        if let Some(path) = &entry {
            match read_entry(engine, path) {
                Ok(Some(component)) => {
                    tracing::debug!(plugin = %name, entry = %path.display(), "compiled component from the cache");
                    // Used now: the last to be pruned.
                    let _ = std::fs::File::options()
                        .write(true)
                        .open(path)
                        .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                    return Ok((component, Origin::Cached));
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(plugin = %name, entry = %path.display(), "ignoring a bad cache entry ({why}); compiling again");
                }
            }
        }
        let component = compile(engine, name, bytes)?;
        let Some(path) = entry else {
            return Ok((component, Origin::CompiledUncached));
        };
        match component
            .serialize()
            .map_err(|e| format!("{e:#}"))
            .and_then(|artifact| write_entry(&path, &artifact).map_err(|e| e.to_string()))
        {
            Ok(()) => {
                self.prune_when_due();
                Ok((component, Origin::Compiled))
            }
            Err(why) => {
                tracing::warn!(plugin = %name, entry = %path.display(), "cannot write the compiled component to the cache: {why}");
                Ok((component, Origin::CompiledUncached))
            }
        }
    }
}

impl ComponentCache {
    /// Prunes the directory to its bound if no process has measured it in
    /// the last [`PRUNE_EVERY`].
    fn prune_when_due(&self) {
        let Some(dir) = &self.dir else { return };
        let stamp = dir.join(PRUNE_STAMP);
        let now = std::time::SystemTime::now();
        let due = std::fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .map_or(true, |at| {
                now.duration_since(at).unwrap_or_default() >= PRUNE_EVERY
            });
        if !due {
            return;
        }
        if let Err(e) = std::fs::write(&stamp, b"") {
            tracing::debug!(dir = %dir.display(), "cannot stamp the cache's prune time: {e}");
            return;
        }
        match prune(dir, self.max_bytes) {
            Ok(p) if p.removed > 0 => tracing::info!(
                dir = %dir.display(),
                removed = p.removed,
                freed_mib = p.freed >> 20,
                kept_mib = p.kept >> 20,
                "pruned the compiled-component cache to its bound (SLUICE_COMPONENT_CACHE_MAX_MB)"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot prune the compiled-component cache: {e}")
            }
        }
    }
}

/// What [`prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Files deleted.
    pub removed: usize,
    /// Their bytes.
    pub freed: u64,
    /// The bytes left.
    pub kept: u64,
}

/// Bounds the cache at `dir` (compiled components, function entries, and
/// the temporary files of writes that never finished): when its files
/// hold more than `max_bytes`, deletes those modified longest ago until
/// three quarters of `max_bytes` remain. Entries a reader has open stay
/// readable; a deleted entry is a miss next time.
pub fn prune(dir: &Path, max_bytes: u64) -> std::io::Result<Pruned> {
    fn walk(
        dir: &Path,
        files: &mut Vec<(std::time::SystemTime, u64, PathBuf)>,
    ) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&entry.path(), files)?;
            } else if kind.is_file() && entry.file_name() != PRUNE_STAMP {
                let meta = entry.metadata()?;
                files.push((meta.modified()?, meta.len(), entry.path()));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    let mut kept: u64 = files.iter().map(|f| f.1).sum();
    let mut pruned = Pruned {
        removed: 0,
        freed: 0,
        kept,
    };
    if kept <= max_bytes {
        return Ok(pruned);
    }
    let target = max_bytes / 4 * 3;
    files.sort_unstable_by_key(|f| f.0);
    for (_, len, path) in files {
        if kept <= target {
            break;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                pruned.removed += 1;
                pruned.freed += len;
            }
            // Another process pruned it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        kept -= len;
    }
    pruned.kept = kept;
    Ok(pruned)
}

/// Cranelift's incremental compilation cache on disk
/// ([`wasmtime::Config::enable_incremental_compilation`]): the compiled
/// code of each function, keyed by a hash of the function's Cranelift IR
/// and the compiler's settings (Cranelift checks its own version in each
/// entry). A component compiles function by function, so one that changed
/// a little reuses the code of every function it did not change.
///
/// - An entry is a file named for the SHA-256 of its key, under a folder
///   per wasmtime version; it starts with a magic line and the SHA-256 of
///   the code, and one that does not match is a miss (the function is
///   compiled again and the entry replaced). The code is native code: as
///   for [`ComponentCache`], the directory is its owner's alone.
/// - Entries are written to a temporary file and renamed into place, not
///   synced: a torn entry fails its checksum.
/// - About 60 MB of entries for a Python or JavaScript component, pruned
///   with the components ([`prune`]); a changed plugin adds the few
///   functions it changed. The keys
///   of about 1% of a large component's functions differ from one compile
///   to the next: those are compiled every time.
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl FunctionCache {
    /// The cache at `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> FunctionCache {
        FunctionCache {
            dir: dir.into(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// How many functions were found in the cache, and how many not, so far.
    pub fn lookups(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The process's function cache: `functions/<wasmtime version>` in the
    /// component cache's directory ([`ComponentCache::from_env`]), none
    /// when that is off.
    pub fn from_env() -> Option<FunctionCache> {
        ComponentCache::from_env()
            .dir()
            .map(|dir| FunctionCache::at(dir.join("functions").join(wasmtime_version())))
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        let name = hex::encode(Sha256::digest(key));
        self.dir.join(&name[..2]).join(&name[2..])
    }
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let code = std::fs::read(self.path(key)).ok().and_then(|data| {
            let rest = data.strip_prefix(FUNCTION_MAGIC)?;
            let (sum, code) = rest.split_at_checked(32)?;
            (Sha256::digest(code).as_slice() == sum).then(|| code.to_vec())
        });
        let counter = if code.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        code.map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let path = self.path(key);
        let dir = path.parent().expect("an entry has a directory");
        let write = || -> std::io::Result<()> {
            create_private_dir(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(FUNCTION_MAGIC)?;
            tmp.write_all(&Sha256::digest(&value))?;
            tmp.write_all(&value)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        write().is_ok()
    }
}

/// The wasmtime version and the engine's compatibility hash, hashed.
fn engine_key(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the digest is read")
        }
    }
    let mut sha = Sha(Sha256::new());
    sha.write(wasmtime_version().as_bytes());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut sha);
    hex::encode(sha.0.finalize())
}

/// The wasmtime this host was built with.
pub fn wasmtime_version() -> &'static str {
    // Recorded by the build script from Cargo.lock.
    env!("SLUICE_WASMTIME_VERSION")
}

fn compile(engine: &Engine, name: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
    let started = Instant::now();
    let spinner = (bytes.len() >= SPINNER_FROM_BYTES).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .expect("a valid template"),
        );
        bar.set_message(format!(
            "compiling plugin `{name}` ({:.1} MB) for the first time; later starts load it from the cache",
            bytes.len() as f64 / 1e6
        ));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let compiled = Component::new(engine, bytes);
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    tracing::info!(
        plugin = %name,
        bytes = bytes.len(),
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "compiled component"
    );
    compiled
}

/// The component in the entry at `path`: `None` if there is no entry,
/// an error saying what is wrong with one that cannot be trusted.
fn read_entry(engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let rest = data
        .strip_prefix(MAGIC)
        .ok_or("it does not start with the entry header")?;
    if rest.len() < 32 {
        return Err("it is truncated".into());
    }
    let (sum, artifact) = rest.split_at(32);
    if Sha256::digest(artifact).as_slice() != sum {
        return Err("its checksum does not match".into());
    }
    if Engine::detect_precompiled(artifact) != Some(Precompiled::Component) {
        return Err("it is not a compiled component".into());
    }
    // SAFETY: the artifact is the one this cache wrote (its checksum
    // matches, in a directory only its owner can write), serialized by
    // wasmtime for an engine with this version and compatibility hash;
    // deserialize checks both again.
    unsafe { Component::deserialize(engine, artifact) }
        .map(Some)
        .map_err(|e| format!("{e:#}"))
}

fn write_entry(path: &Path, artifact: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("an entry has a directory");
    create_private_dir(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(MAGIC)?;
    tmp.write_all(&Sha256::digest(artifact))?;
    tmp.write_all(artifact)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const ECHO: &str = r#"(component
        (core module $m (func (export "f") (param i32) (result i32) local.get 0))
        (core instance $i (instantiate $m))
        (func (export "f") (param "x" u32) (result u32) (canon lift (core func $i "f"))))"#;

    fn component_bytes() -> Vec<u8> {
        wat::parse_str(ECHO).unwrap()
    }

    fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn the_second_load_comes_from_the_cache_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::at(dir.path());
        let engine = crate::plugin::engine();
        let bytes = component_bytes();
        let (_, first) = cache
            .component(&engine, "echo", &bytes, &digest(&bytes))
            .unwrap();
        assert_eq!(first, Origin::Compiled);
        let (component, second) = cache
            .component(&engine, "echo", &bytes, &digest(&bytes))
            .unwrap();
        assert_eq!(second, Origin::Cached);

        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(1_000);
        let instance = wasmtime::component::Linker::new(&engine)
            .instantiate(&mut store, &component)
            .unwrap();
        let f = instance
            .get_typed_func::<(u32,), (u32,)>(&mut store, "f")
            .unwrap();
        assert_eq!(f.call(&mut store, (41,)).unwrap(), (41,));
    }

    #[test]
    fn a_tampered_entry_is_compiled_again_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::at(dir.path());
        let engine = crate::plugin::engine();
        let bytes = component_bytes();
        cache
            .component(&engine, "echo", &bytes, &digest(&bytes))
            .unwrap();
        let entry = cache.entry(&engine, &digest(&bytes)).unwrap();
        let mut data = std::fs::read(&entry).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&entry, &data).unwrap();
        assert_eq!(
            read_entry(&engine, &entry).unwrap_err(),
            "its checksum does not match"
        );

        let (_, origin) = cache
            .component(&engine, "echo", &bytes, &digest(&bytes))
            .unwrap();
        assert_eq!(origin, Origin::Compiled);
        assert!(read_entry(&engine, &entry).unwrap().is_some());
        std::fs::write(&entry, b"not an entry").unwrap();
        assert!(read_entry(&engine, &entry).unwrap_err().contains("header"));
    }

    #[test]
    fn the_key_follows_the_bytes_and_the_engine() {
        let cache = ComponentCache::at("/nonexistent");
        let engine = crate::plugin::engine();
        let other = {
            let mut config = wasmtime::Config::new();
            config.wasm_component_model(true);
            Engine::new(&config).unwrap()
        };
        let bytes = component_bytes();
        let a = cache.entry(&engine, &digest(&bytes)).unwrap();
        assert_eq!(a, cache.entry(&engine, &digest(&bytes)).unwrap());
        assert_ne!(a, cache.entry(&other, &digest(&bytes)).unwrap());
        let mut changed = bytes.clone();
        changed.push(0);
        assert_ne!(a, cache.entry(&engine, &digest(&changed)).unwrap());
        assert!(
            ComponentCache::off()
                .entry(&engine, &digest(&bytes))
                .is_none()
        );
    }

    /// A component whose code is ECHO's, with `data` in a data segment.
    fn echo_with_data(data: &str) -> Vec<u8> {
        wat::parse_str(ECHO.replace(
            "(func (export \"f\") (param i32) (result i32) local.get 0))",
            &format!(
                "(memory 1) (data (i32.const 0) \"{data}\") \
                 (func (export \"f\") (param i32) (result i32) local.get 0 i32.load))"
            ),
        ))
        .unwrap()
    }

    fn engine_with(functions: &Arc<FunctionCache>) -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config
            .enable_incremental_compilation(functions.clone())
            .unwrap();
        Engine::new(&config).unwrap()
    }

    fn call_f(engine: &Engine, bytes: &[u8], arg: u32) -> u32 {
        let component = Component::new(engine, bytes).unwrap();
        let mut store = wasmtime::Store::new(engine, ());
        let instance = wasmtime::component::Linker::new(engine)
            .instantiate(&mut store, &component)
            .unwrap();
        let f = instance
            .get_typed_func::<(u32,), (u32,)>(&mut store, "f")
            .unwrap();
        f.call(&mut store, (arg,)).unwrap().0
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for shard in std::fs::read_dir(dir).unwrap() {
            for entry in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                found.push(entry.unwrap().path());
            }
        }
        found.sort();
        found
    }

    #[test]
    fn a_changed_component_reuses_the_code_of_its_unchanged_functions() {
        let dir = tempfile::tempdir().unwrap();
        let first = Arc::new(FunctionCache::at(dir.path()));
        assert_eq!(call_f(&engine_with(&first), &echo_with_data("\\01"), 0), 1);
        let (hits, misses) = first.lookups();
        assert_eq!(hits, 0);
        assert_eq!(entries(dir.path()).len(), misses);
        // Other data, the same functions: compiled from the entries (all
        // but one or two whose keys differ from one compile to the next:
        // usually one; two once in CI, under load).
        let second = Arc::new(FunctionCache::at(dir.path()));
        assert_eq!(call_f(&engine_with(&second), &echo_with_data("\\02"), 0), 2);
        let (hits, misses) = second.lookups();
        assert!(hits > misses, "{hits} hits, {misses} misses");
        // Without the cache: the same code.
        let plain = Engine::new(wasmtime::Config::new().wasm_component_model(true)).unwrap();
        assert_eq!(call_f(&plain, &echo_with_data("\\02"), 0), 2);
    }

    #[test]
    fn a_damaged_function_entry_is_a_miss_and_is_replaced() {
        use wasmtime::CacheStore;
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::at(dir.path());
        assert!(cache.insert(b"key", b"code".to_vec()));
        assert_eq!(cache.get(b"key").as_deref(), Some(&b"code"[..]));
        assert!(cache.get(b"other key").is_none());
        let path = cache.path(b"key");
        let mut data = std::fs::read(&path).unwrap();
        *data.last_mut().unwrap() ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        assert!(cache.get(b"key").is_none(), "a checksum mismatch is a miss");
        std::fs::write(&path, b"sluice compiled function 1\nshort").unwrap();
        assert!(cache.get(b"key").is_none());
        assert_eq!(cache.lookups(), (1, 3));

        // Every entry of a compile damaged: the next compile misses them
        // all, still runs right, and writes them again.
        let dir = tempfile::tempdir().unwrap();
        let first = Arc::new(FunctionCache::at(dir.path()));
        assert_eq!(call_f(&engine_with(&first), &echo_with_data("\\07"), 0), 7);
        for entry in entries(dir.path()) {
            std::fs::write(&entry, b"garbage").unwrap();
        }
        let second = Arc::new(FunctionCache::at(dir.path()));
        assert_eq!(call_f(&engine_with(&second), &echo_with_data("\\09"), 0), 9);
        assert_eq!(second.lookups().0, 0, "no damaged entry is used");
        let third = Arc::new(FunctionCache::at(dir.path()));
        assert_eq!(call_f(&engine_with(&third), &echo_with_data("\\0a"), 0), 10);
        assert!(third.lookups().0 > 0, "the entries were written again");
    }

    #[test]
    fn an_unwritable_cache_still_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        // A directory inside a file cannot be made.
        let cache = ComponentCache::at(file.join("cache"));
        let (_, origin) = cache
            .component(
                &crate::plugin::engine(),
                "echo",
                &component_bytes(),
                &digest(&component_bytes()),
            )
            .unwrap();
        assert_eq!(origin, Origin::CompiledUncached);
    }

    fn aged(path: &Path, bytes: usize, age_secs: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![0u8; bytes]).unwrap();
        set_age(path, age_secs);
    }

    fn set_age(path: &Path, age_secs: u64) {
        let at = std::time::SystemTime::now() - Duration::from_secs(age_secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn prune_deletes_the_files_used_longest_ago_until_three_quarters_of_the_bound_remain() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        aged(&d.join("a.cwasm"), 400, 400);
        aged(&d.join("functions/v/ab/cdef"), 300, 300);
        aged(&d.join("b.cwasm"), 200, 200);
        aged(&d.join("c.cwasm"), 100, 100);
        // Under the bound: nothing goes.
        let kept = prune(d, 1_000).unwrap();
        assert_eq!((kept.removed, kept.kept), (0, 1_000));
        // Over it: the oldest go until at most 525 bytes are left.
        let p = prune(d, 700).unwrap();
        assert_eq!(
            p,
            Pruned {
                removed: 2,
                freed: 700,
                kept: 300
            }
        );
        assert!(!d.join("a.cwasm").exists());
        assert!(!d.join("functions/v/ab/cdef").exists());
        assert!(d.join("b.cwasm").exists() && d.join("c.cwasm").exists());
    }

    #[test]
    fn a_compile_prunes_a_cache_past_its_bound_at_most_once_in_ten_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        aged(&d.join("stale-1.cwasm"), 1 << 20, 3_600);
        let cache = ComponentCache::at(d).with_max_bytes(1 << 20);
        let engine = crate::plugin::engine();
        let a = echo_with_data("a");
        let (_, origin) = cache.component(&engine, "a", &a, &digest(&a)).unwrap();
        assert_eq!(origin, Origin::Compiled);
        assert!(!d.join("stale-1.cwasm").exists(), "the old entry went");
        assert!(cache.entry(&engine, &digest(&a)).unwrap().exists());
        assert!(d.join(PRUNE_STAMP).exists());
        // A second compile within ten minutes does not measure again.
        aged(&d.join("stale-2.cwasm"), 1 << 20, 3_600);
        let b = echo_with_data("b");
        cache.component(&engine, "b", &b, &digest(&b)).unwrap();
        assert!(d.join("stale-2.cwasm").exists());
        // A hit makes an entry the newest.
        let entry = cache.entry(&engine, &digest(&a)).unwrap();
        set_age(&entry, 7_200);
        let (_, origin) = cache.component(&engine, "a", &a, &digest(&a)).unwrap();
        assert_eq!(origin, Origin::Cached);
        let used = std::fs::metadata(&entry).unwrap().modified().unwrap();
        assert!(used.elapsed().unwrap() < Duration::from_secs(60));
    }
}
