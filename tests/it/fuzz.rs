//! The scenario loader under thousands of generated and mutated files: it never panics, and
//! every error it returns is located (it names the file, and a line or a key).
//!
//! Inputs: each of the 29 built-in scenario files (17 scenarios, 12 anomalies) mutated 240
//! times with a seeded mutator (byte flips, deleted, duplicated and truncated lines, values
//! swapped between keys, values replaced by other types), loaded once as PostgreSQL and once
//! as MariaDB alternately: 6,960 mutated files; plus 1,500 files generated from fragments of
//! valid scenarios. 8,460 inputs in all, about 5 s in a debug build. A failure prints the
//! seed-reproducible input.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use contention::engine::EngineKind;
use contention::scenario::{self, ScenarioError};

const MUTATIONS_PER_FILE: usize = 240;
const GENERATED: usize = 1_500;

/// xorshift64*: seeded, dependency-free, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const VALUES: &[&str] = &[
    "0",
    "-1",
    "100001",
    "1e400",
    "\"eight\"",
    "true",
    "[]",
    "[1, \"n\"]",
    "{}",
    "{ value = 1 }",
    "\"100000000h\"",
    "\"0s\"",
    "\":nope\"",
    "\"x >\"",
    "\"/dev/zero\"",
    "[\"/dev/zero\"]",
    "\"\"",
    "1979-05-27",
    "\"SELECT 1\"",
];

fn builtin_files() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("anomalies")] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        entries.sort();
        for p in entries {
            let text = std::fs::read_to_string(&p).unwrap();
            files.push((p, text));
        }
    }
    files
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            // Flip a byte (the result read back as text, as a file with a bad byte would be).
            0 => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
            1 => {
                lines.remove(i);
            }
            2 => {
                let copy = lines[i].clone();
                lines.insert(i, copy);
            }
            // Swap the values of two `key = value` lines.
            3 => {
                let j = rng.below(lines.len());
                if let (Some((ka, va)), Some((kb, vb))) =
                    (lines[i].split_once(" = "), lines[j].split_once(" = "))
                {
                    let (a, b) = (format!("{ka} = {vb}"), format!("{kb} = {va}"));
                    lines[i] = a;
                    lines[j] = b;
                }
            }
            // A value of another type or out of range.
            4 | 5 => {
                if let Some((k, _)) = lines[i].split_once(" = ") {
                    lines[i] = format!("{k} = {}", rng.pick(VALUES));
                }
            }
            _ => {
                let cut = rng.below(lines[i].len() + 1);
                let cut = (0..=cut)
                    .rev()
                    .find(|c| lines[i].is_char_boundary(*c))
                    .unwrap_or(0);
                lines[i].truncate(cut);
            }
        }
    }
    lines.join("\n")
}

/// A file built from fragments of valid scenarios, some of them broken.
fn generate(rng: &mut Rng) -> String {
    let fragments = [
        "name = \"gen\"",
        "summary = \"generated\"",
        "[params]\nn = 3",
        "[params]\nn = { value = 3, help = \"rows\" }",
        "[setup]\nsql = \"CREATE TABLE t (id int PRIMARY KEY, v int)\"",
        "[setup]\nfiles = [\"missing.sql\"]",
        "[setup]\nsql = \"\"\"\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (:n);\n\"\"\"",
        "[draw]\nrow = { uniform = [1, \"n\"] }",
        "[draw]\nhot = { zipf = [10, 1.1] }\ncold = { chance = 0.3, distinct_from = \"hot\" }",
        "[run]\nclients = 4\noperations = 20",
        "[run]\nduration = \"1s\"\nthink = \"5ms\"\nisolation = \"rc,rr\"",
        "[settings]\nlock_timeout = \"1s\"",
        "[strategy.a]\nsummary = \"a\"\nexpect.rc = [\"no-anomalies\"]\n[[strategy.a.step]]\nsql = \"UPDATE t SET v = v + 1 WHERE id = :row\"",
        "[[strategy.a.step]]\nsql = \"SELECT v FROM t WHERE id = :row\"\nreject_if = \"v > 3\"\noutcome = \"full\"",
        "[[strategy.a.step]]\nwhen = \"rows == 0\"\ncommit = true",
        "[auditor.look]\nsummary = \"looks\"\n[[auditor.look.step]]\nsql = \"SELECT 1\"\nflag_if = \"rows > 0\"\nflag = \"seen\"",
        "[[invariant]]\nname = \"neg\"\nanomaly = \"none\"\nexplain = \"never\"\nsql = \"SELECT count(*) FROM t WHERE v < 0\"",
        "[[invariant]]\nname = \"seen\"\nanomaly = \"read skew\"\nexplain = \"x\"\nobserved_by = \"look\"",
        "[session.a]\nbind = { row = 1 }\n[schedule.one]\nsummary = \"s\"\nsteps = \"a1 b1 a2\"",
        "[on.mariadb.settings]\ninnodb_lock_wait_timeout = \"1\"",
        "[anomaly]\nid = \"G0\"\nreference = \"Adya\"\ndefinition = \"d\"",
    ];
    let mut parts: Vec<&str> = Vec::new();
    for _ in 0..(2 + rng.below(12)) {
        parts.push(fragments[rng.below(fragments.len())]);
    }
    let text = parts.join("\n");
    if rng.below(3) == 0 {
        mutate(&text, rng)
    } else {
        text
    }
}

/// Loads `text` as `path`, asserting no panic and a located error.
fn check(path: &Path, text: &str, engine: EngineKind) -> Result<(), String> {
    let loaded = catch_unwind(AssertUnwindSafe(|| scenario::load_text(path, text, engine)))
        .map_err(|_| "the loader panicked".to_string())?;
    let Err(e) = loaded else { return Ok(()) };
    located(path, text, &e)
}

fn located(path: &Path, text: &str, e: &ScenarioError) -> Result<(), String> {
    let shown = e.to_string();
    if e.file != path || !shown.starts_with(&path.display().to_string()) {
        return Err(format!("the error does not name the file: {shown}"));
    }
    if e.line.is_none() && e.key.is_none() {
        return Err(format!("the error has neither a line nor a key: {shown}"));
    }
    if let Some((line, col)) = e.line {
        let lines = text.lines().count().max(1);
        if line == 0 || col == 0 || line > lines + 1 {
            return Err(format!(
                "line {line}:{col} is outside the file's {lines} lines: {shown}"
            ));
        }
    }
    Ok(())
}

#[test]
fn the_loader_never_panics_and_every_error_is_located() {
    // A panic is caught and reported with its input; keep the default hook quiet meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let engines = [EngineKind::Postgres, EngineKind::Mariadb];
    let mut rng = Rng(0x5eed_c0de_2024_0001);
    let mut inputs = 0usize;
    let mut refused = 0usize;
    let mut failures = Vec::new();
    let files = builtin_files();
    assert_eq!(
        files.len(),
        29,
        "the built-in files changed: update the doc comment"
    );
    for (path, text) in &files {
        // The unmutated file loads on every engine it runs on (two-phase-commit's nodes pin
        // PostgreSQL).
        let runs_on = scenario::engines_of(path.to_str().expect("a UTF-8 path"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for engine in runs_on {
            if let Err(e) = scenario::load_text(path, text, engine) {
                failures.push(format!(
                    "{}: the built-in file is refused: {e}",
                    path.display()
                ));
            }
        }
        for i in 0..MUTATIONS_PER_FILE {
            let mutated = mutate(text, &mut rng);
            let engine = engines[i % 2];
            inputs += 1;
            if scenario::load_text(path, &mutated, engine).is_err() {
                refused += 1;
            }
            if let Err(why) = check(path, &mutated, engine) {
                failures.push(format!(
                    "{} ({engine:?}): {why}\n--- input ---\n{mutated}",
                    path.display()
                ));
            }
        }
    }
    let gen_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/generated.toml");
    for i in 0..GENERATED {
        let text = generate(&mut rng);
        inputs += 1;
        if let Err(why) = check(&gen_path, &text, engines[i % 2]) {
            failures.push(format!("generated: {why}\n--- input ---\n{text}"));
        }
    }
    std::panic::set_hook(hook);
    assert_eq!(inputs, 29 * MUTATIONS_PER_FILE + GENERATED);
    // The mutator is not toothless: most mutated files are refused.
    assert!(refused > inputs / 3, "only {refused} of {inputs} refused");
    assert!(
        failures.is_empty(),
        "{} of {inputs} inputs failed; the first:\n{}",
        failures.len(),
        failures
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
