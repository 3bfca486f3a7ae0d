//! What a hold costs the shared Redis, and the fleet's ceiling that implies
//! (issue #18): this machine's two cores cannot show hosts scaling out, so
//! `tacos-bench stores` prints the model beside the measured rate.
//!
//! Redis executes commands on one thread, so one primary's ceiling is about
//! one core divided by its CPU per hold (`/proc`, network included). Its own
//! account of the commands, `INFO commandstats` (calls and µs inside each
//! command), says which requests that CPU goes to. A cluster of N primaries
//! multiplies the ceiling by N only while each hold's keys fall in one slot
//! and the holds spread over the slots.
//!
//! Only configurations with kv on Redis get the model: with kv on DynamoDB,
//! Redis holds the queue only, and its CPU per hold is mostly its idle
//! polling over a slow run.

use anyhow::Context;
use std::collections::BTreeMap;

/// `INFO commandstats`: per command, (calls, µs spent in it).
#[derive(Debug, Clone, Default)]
pub struct CommandStats(BTreeMap<String, (u64, u64)>);

impl CommandStats {
    /// The server's figures now.
    pub fn read(url: &str) -> anyhow::Result<CommandStats> {
        let client = ::redis::Client::open(url).context("the redis url")?;
        let mut con = client.get_connection().context("connecting to redis")?;
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .context("INFO commandstats")?;
        Ok(CommandStats::parse(&info))
    }

    /// Lines like `cmdstat_evalsha:calls=3,usec=120,usec_per_call=40.00,…`.
    fn parse(info: &str) -> CommandStats {
        let mut stats = BTreeMap::new();
        for line in info.lines() {
            let Some((name, fields)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let field = |key: &str| {
                fields
                    .split(',')
                    .filter_map(|f| f.split_once('='))
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, v)| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            stats.insert(name.to_string(), (field("calls"), field("usec")));
        }
        CommandStats(stats)
    }

    /// What happened since `before`, per hold: (command, calls, µs), the
    /// costliest first, `INFO` itself left out.
    pub fn per_hold(&self, before: &CommandStats, holds: usize) -> Vec<(String, f64, f64)> {
        let n = holds.max(1) as f64;
        let mut out: Vec<(String, f64, f64)> = self
            .0
            .iter()
            .filter(|(name, _)| name.as_str() != "info")
            .map(|(name, &(calls, usec))| {
                let (c0, u0) = before.0.get(name).copied().unwrap_or((0, 0));
                let calls = calls.saturating_sub(c0) as f64 / n;
                let usec = usec.saturating_sub(u0) as f64 / n;
                (name.clone(), calls, usec)
            })
            .filter(|(_, calls, _)| *calls > 0.0)
            .collect();
        out.sort_by(|a, b| b.2.total_cmp(&a.2));
        out
    }
}

/// The model's lines for one configuration on Redis: the commands a hold
/// runs, and the ceilings its Redis CPU implies beside the measured rate.
/// Redis counts a command a script runs on its own line as well as inside
/// the script's `evalsha`, so the lines are not added up.
pub fn print_model(name: &str, commands: &[(String, f64, f64)], redis_us: f64, rate: f64) {
    let listed: Vec<String> = commands
        .iter()
        .map(|(cmd, calls, us)| format!("{cmd} {calls:.1}× {us:.0} µs"))
        .collect();
    println!(
        "    {name}: redis-server {redis_us:.0} µs of CPU per hold (/proc); its commands per hold, those its scripts run counted inside evalsha too: {}",
        listed.join(", ")
    );
    let one = 1e6 / redis_us.max(1.0);
    let cluster: Vec<String> = [3, 10]
        .iter()
        .map(|n| format!("{n} primaries {:.0}", one * *n as f64))
        .collect();
    println!(
        "      ceiling: one primary {one:.0} holds/s (a core); {} holds/s if holds spread over slots; measured here {rate:.0} holds/s",
        cluster.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::CommandStats;

    #[test]
    fn commandstats_are_read_per_hold() {
        let before = CommandStats::parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=400,usec_per_call=40.00,rejected_calls=0,failed_calls=0\r\n",
        );
        let after = CommandStats::parse(
            "# Commandstats\r\ncmdstat_evalsha:calls=40,usec=1600,usec_per_call=40.00\r\ncmdstat_hmget:calls=20,usec=100,usec_per_call=5.00\r\ncmdstat_info:calls=2,usec=50,usec_per_call=25.00\r\n",
        );
        let per = after.per_hold(&before, 10);
        assert_eq!(
            per,
            vec![("evalsha".into(), 3.0, 120.0), ("hmget".into(), 2.0, 10.0)]
        );
    }
}
