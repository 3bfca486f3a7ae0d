//! CPU time, read from `/proc` (Linux): the hosts' own, so a figure per
//! request is the server's cost and not the load generator's, and the
//! generator's, so a run can say when it takes so much of the machine that
//! the host was starved (issue #17: above a third of it, the figure is
//! flagged).
//!
//! The hosts a bench starts register here ([`watch`]) for as long as they
//! run; [`Sample::now`] reads them all, this process, and the children it has
//! reaped (`wrk`), and [`Sample::since`] turns two samples into [`CpuUse`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The hosts this process started and still runs.
static HOSTS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Count `pid`'s CPU as the host's until [`unwatch`].
pub fn watch(pid: u32) {
    HOSTS.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
}

pub fn unwatch(pid: u32) {
    HOSTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| *p != pid);
}

/// The fields of `/proc/{pid}/stat` after the command name, in seconds:
/// (utime + stime, cutime + cstime).
fn stat(pid: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // USER_HZ is 100 on Linux.
    (f.len() == 4).then(|| ((f[0] + f[1]) / 100.0, (f[2] + f[3]) / 100.0))
}

/// A process's CPU seconds so far (user + system, all threads).
pub fn seconds(pid: u32) -> Option<f64> {
    stat(&pid.to_string()).map(|(own, _)| own)
}

/// This process's CPU seconds so far and its reaped children's.
pub fn this_process() -> (f64, f64) {
    stat("self").unwrap_or_default()
}

/// CPU seconds at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    hosts: Vec<(u32, f64)>,
    bench: f64,
    children: f64,
}

/// CPU used between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub elapsed: Duration,
    /// The watched hosts' CPU seconds (`None` if no host was watched, e.g.
    /// a `--target` host of another process).
    pub host: Option<f64>,
    /// This process's and its reaped children's CPU seconds: the load.
    pub load: f64,
}

impl Sample {
    pub fn now() -> Sample {
        let hosts = HOSTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|&p| Some((p, seconds(p)?)))
            .collect();
        let (bench, children) = this_process();
        Sample {
            at: Instant::now(),
            hosts,
            bench,
            children,
        }
    }

    /// What was used from `earlier` to this sample.
    pub fn since(&self, earlier: &Sample) -> CpuUse {
        let host: Vec<f64> = self
            .hosts
            .iter()
            .filter_map(|(p, s)| Some(s - earlier.hosts.iter().find(|(q, _)| q == p)?.1))
            .collect();
        CpuUse {
            elapsed: self.at - earlier.at,
            host: (!host.is_empty()).then(|| host.iter().sum()),
            load: (self.bench - earlier.bench) + (self.children - earlier.children),
        }
    }
}

/// Cores of this machine.
pub fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

impl CpuUse {
    /// The load generator's share of the whole machine, 0–1.
    pub fn load_share(&self) -> f64 {
        self.load / (self.elapsed.as_secs_f64().max(1e-9) * cores())
    }

    /// Host CPU µs per operation, if the host was watched.
    pub fn host_us_per(&self, ops: usize) -> Option<f64> {
        self.host.map(|h| h * 1e6 / ops.max(1) as f64)
    }

    /// "host 71 µs/req (1.42 cores), load 24 % of the machine", flagged when
    /// the load takes more than a third of the machine.
    pub fn describe(&self, ops: usize) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let host = match (self.host_us_per(ops), self.host) {
            (Some(us), Some(h)) => format!("host {us:.0} µs/req ({:.2} cores), ", h / secs),
            _ => String::new(),
        };
        let share = self.load_share();
        format!(
            "{host}load {:.0} % of the machine{}",
            share * 100.0,
            starved(share)
        )
    }
}

/// What to say beside a figure whose load generator took `share` (0–1) of
/// the machine: nothing, or that it took over a third and starved the host.
pub fn starved(share: f64) -> &'static str {
    if share > 1.0 / 3.0 {
        " — the load generator takes over a third of the machine: the host is starved, this rate understates it"
    } else {
        ""
    }
}
