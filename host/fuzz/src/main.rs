//! `tacos-fuzz`: run the fuzz targets on mutated seeds and random bytes.
//!
//! ```text
//! tacos-fuzz [--target NAME]... [--inputs N | --seconds S] [--seed N] [--corpus DIR]
//! ```
//!
//! Inputs are generated, not coverage-guided: each is a seed (the target's
//! own, plus any files in `--corpus DIR/<target>/`) with a few random
//! mutations (bit flips, interesting bytes, inserted or deleted runs, a splice
//! with another seed), or random bytes. The same `--seed` gives the same
//! inputs. A panic stops the run: the input is written to
//! `host/fuzz/crashes/<target>-<sha256>` and the command fails, and the input
//! goes into `host/fuzz/corpus/<target>/` as a regression seed once fixed
//! (every corpus file is run first, on every run).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tacos_fuzz::{Ctx, TARGETS, Target};

struct Args {
    targets: Vec<String>,
    inputs: Option<u64>,
    seconds: Option<f64>,
    seed: u64,
    corpus: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        targets: Vec::new(),
        inputs: None,
        seconds: None,
        seed: 1,
        corpus: Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => a.targets.push(value()?),
            "--inputs" => a.inputs = Some(value()?.parse().map_err(|e| format!("--inputs: {e}"))?),
            "--seconds" => {
                a.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--corpus" => a.corpus = PathBuf::from(value()?),
            "--list" => {
                for t in TARGETS {
                    println!("{:<10} {}", t.name, t.about);
                }
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (see the source's doc)")),
        }
    }
    if let Some(bad) = a
        .targets
        .iter()
        .find(|n| !TARGETS.iter().any(|t| t.name == n.as_str()))
    {
        return Err(format!("no target `{bad}` (--list shows them)"));
    }
    Ok(a)
}

/// Bytes that break parsers more often than random ones do.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"%",
    b"%2F",
    b"%zz",
    b"/",
    b"//",
    b"\n",
    b"\"",
    b"\\u0000",
    b"{",
    b"}",
    b"[",
    b"]",
    b"=",
    b"&",
    b".",
    b"..",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"4294967295",
    b"\xf0\x9f\x8c\xae",
    b"v1,",
    b" ",
    b"Bearer ",
    b"\x80\x00\x00\x00",
];

fn mutate(rng: &mut SmallRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.random_ratio(1, 16) {
        let len = rng.random_range(0..256);
        return (0..len).map(|_| rng.random()).collect();
    }
    let mut data = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=data.len());
        match rng.random_range(0..6) {
            0 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] = rng.random();
            }
            2 => {
                let token = INTERESTING[rng.random_range(0..INTERESTING.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 if at < data.len() => {
                let end = rng.random_range(at..=data.len().min(at + 16));
                data.drain(at..end);
            }
            4 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let from = rng.random_range(0..=other.len());
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => {
                let run: Vec<u8> = (0..rng.random_range(1..64)).map(|_| rng.random()).collect();
                data.splice(at..at, run);
            }
        }
    }
    data
}

/// Run one input; on a panic, keep it and say where.
fn run_one(ctx: &Ctx, target: &Target, data: &[u8]) -> Result<(), PathBuf> {
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(ctx, data)));
    if outcome.is_ok() {
        return Ok(());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes");
    let _ = std::fs::create_dir_all(&dir);
    let name = format!(
        "{}-{}",
        target.name,
        hex::encode(sha2::Sha256::digest(data))
    );
    let path = dir.join(name);
    let _ = std::fs::write(&path, data);
    Err(path)
}

fn corpus(dir: &Path, target: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tacos-fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let ctx = match Ctx::new() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tacos-fuzz: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let chosen: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| args.targets.is_empty() || args.targets.iter().any(|n| n == t.name))
        .collect();
    // Without a budget: a quick smoke run.
    // Each target gets its share, rounded up: at least the inputs asked for in all.
    let per_target_inputs = args.inputs.map(|n| n.div_ceil(chosen.len() as u64));
    let per_target_time = match (args.inputs, args.seconds) {
        (None, None) => Some(Duration::from_secs(2)),
        (_, s) => s.map(|s| Duration::from_secs_f64(s / chosen.len() as f64)),
    };
    // Panics are expected to be caught; keep their messages short.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    println!(
        "{:<10} {:>12} {:>10} {:>12}",
        "target", "inputs", "seconds", "inputs/s"
    );
    let mut total = 0u64;
    let started_all = Instant::now();
    for target in chosen {
        let mut rng = SmallRng::seed_from_u64(args.seed ^ target.name.len() as u64);
        let mut seeds = (target.seeds)(&ctx);
        let regressions = corpus(&args.corpus, target.name);
        for input in &regressions {
            if let Err(path) = run_one(&ctx, target, input) {
                eprintln!(
                    "tacos-fuzz: {} crashed on a corpus input: {}",
                    target.name,
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
        seeds.extend(regressions);
        let started = Instant::now();
        let mut n = 0u64;
        loop {
            if per_target_inputs.is_some_and(|max| n >= max)
                || per_target_time
                    .is_some_and(|max| n.is_multiple_of(256) && started.elapsed() >= max)
            {
                break;
            }
            let input = mutate(&mut rng, &seeds);
            if let Err(path) = run_one(&ctx, target, &input) {
                eprintln!(
                    "tacos-fuzz: {} crashed after {n} inputs; the input is in {}",
                    target.name,
                    path.display()
                );
                return ExitCode::FAILURE;
            }
            n += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{:<10} {:>12} {:>10.1} {:>12.0}",
            target.name,
            n,
            secs,
            n as f64 / secs.max(1e-9)
        );
        total += n;
    }
    let secs = started_all.elapsed().as_secs_f64();
    println!(
        "{:<10} {:>12} {:>10.1} {:>12.0}  (seed {}; no crash)",
        "all",
        total,
        secs,
        total as f64 / secs.max(1e-9),
        args.seed
    );
    ExitCode::SUCCESS
}
