//! This host's own name and addresses, read from the kernel (`/proc`): what "this server"
//! means besides the configured `public_names` when the device listeners are bound to every
//! address (the package's `0.0.0.0`). Read on demand, never cached: a command sees the
//! addresses of the network namespace it runs in. Nothing here decides anything; the rules
//! that use these are `domain::provserver::OwnAddresses`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kernel's host name, or empty.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Every address of this host's interfaces (IPv4 from the local routing table, IPv6 from
/// `if_inet6` without link-local ones, whose URLs need a zone). Empty where `/proc` is not
/// readable.
pub fn addresses() -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = std::fs::read_to_string("/proc/net/fib_trie")
        .map(|t| local_ipv4(&t))
        .unwrap_or_default()
        .into_iter()
        .map(IpAddr::V4)
        .collect();
    if let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") {
        out.extend(ipv6_addresses(&text).into_iter().map(IpAddr::V6));
    }
    out
}

/// The addresses `/proc/net/fib_trie` lists as `/32 host LOCAL` (each appears once per
/// routing table; kept once).
fn local_ipv4(fib_trie: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in fib_trie.lines() {
        let l = line.trim();
        if let Some(ip) = l.strip_prefix("|-- ") {
            last = ip.trim().parse().ok();
        } else if l.starts_with("/32 host LOCAL")
            && let Some(ip) = last
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

/// The addresses of `/proc/net/if_inet6` (32 hex digits first on each line), link-local
/// ones left out.
fn ipv6_addresses(if_inet6: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in if_inet6.lines() {
        let Some(hex) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let ip = Ipv6Addr::from(bits);
        let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
        if hex.len() == 32 && !link_local && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_are_read_from_the_kernels_tables() {
        let fib = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
                   \x20          |-- 127.0.0.1\n              /32 host LOCAL\n\
                   \x20          |-- 192.0.2.0\n              /24 link UNICAST\n\
                   \x20          |-- 192.0.2.2\n              /32 host LOCAL\n\
                   \x20       |-- 192.0.2.255\n           /32 link BROADCAST\n\
                   Local:\n           |-- 192.0.2.2\n              /32 host LOCAL\n";
        assert_eq!(
            local_ipv4(fib),
            [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(192, 0, 2, 2)]
        );
        let v6 = "fd000000000000000000000000000002 04 40 00 82     eth0\n\
                  fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
                  00000000000000000000000000000001 01 80 10 80       lo\n";
        assert_eq!(
            ipv6_addresses(v6),
            [
                "fd00::2".parse::<Ipv6Addr>().expect("ip"),
                Ipv6Addr::LOCALHOST
            ]
        );
    }
}

/// This process as `pid:start`, the start time being field 22 of `/proc/<pid>/stat` (clock
/// ticks since boot): a pid the kernel reuses later does not name the same process. `pid:0`
/// where `/proc` cannot be read.
pub fn process_token() -> String {
    let pid = std::process::id();
    format!("{pid}:{}", start_ticks(pid).unwrap_or(0))
}

/// Whether the process a `process_token` named still runs. A token that does not parse, or
/// whose start time could not be read when it was made, counts as running: nothing is
/// declared dead on a guess.
pub fn process_running(token: &str) -> bool {
    let Some((pid, start)) = token.split_once(':') else {
        return true;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return true;
    };
    if start == 0 {
        return true;
    }
    start_ticks(pid) == Some(start)
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`; the command name (field 2) may hold spaces
/// and parentheses, so fields are counted after its last `)`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_start_ticks(&stat)
}

fn stat_start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first; starttime is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod process_tests {
    use super::*;

    #[test]
    fn the_start_time_is_read_after_a_name_with_spaces_and_parentheses() {
        let stat =
            "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(stat_start_ticks(stat), Some(987654));
        assert_eq!(stat_start_ticks("garbage"), None);
    }

    #[test]
    fn this_process_runs_and_a_changed_start_time_does_not() {
        let me = process_token();
        assert!(process_running(&me), "{me}");
        let (pid, start) = me.split_once(':').expect("token");
        let other = format!("{pid}:{}", start.parse::<u64>().expect("start") + 1);
        assert!(!process_running(&other));
        assert!(process_running("not a token"));
    }
}

/// This host's fully qualified name: the kernel's host name when it has a dot; else the
/// first dotted name of the `/etc/hosts` line that lists the host name (Debian's installer
/// writes `127.0.1.1 host.example.com host`); else the host name with the `domain` (or the
/// first `search` domain) of `/etc/resolv.conf`. `None` when none of these gives one: a short
/// name that phones' resolvers may not complete.
pub fn fqdn() -> Option<String> {
    let host = host_name();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    fqdn_from(&host, &read("/etc/hosts"), &read("/etc/resolv.conf"))
}

fn fqdn_from(host: &str, hosts: &str, resolv: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.');
    if host.is_empty() || host == "localhost" {
        return None;
    }
    if host.contains('.') {
        return Some(host.to_string());
    }
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut names = line.split_whitespace().skip(1);
        let names: Vec<&str> = names.by_ref().collect();
        if names.iter().any(|n| n.eq_ignore_ascii_case(host))
            && let Some(full) = names.iter().find(|n| {
                let lower = n.to_ascii_lowercase();
                lower.starts_with(&format!("{}.", host.to_ascii_lowercase()))
            })
        {
            return Some(full.trim_end_matches('.').to_string());
        }
    }
    let mut search = None;
    for line in resolv.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("domain") => search = words.next().or(search),
            Some("search") if search.is_none() => search = words.next(),
            _ => {}
        }
    }
    search
        .map(|d| d.trim_end_matches('.'))
        .filter(|d| !d.is_empty() && *d != "localdomain")
        .map(|d| format!("{host}.{d}"))
}

#[cfg(test)]
mod fqdn_tests {
    use super::fqdn_from;

    #[test]
    fn the_full_name_comes_from_the_host_name_then_hosts_then_resolv_conf() {
        assert_eq!(
            fqdn_from("prov.corp.example", "", "").as_deref(),
            Some("prov.corp.example")
        );
        let hosts = "127.0.0.1 localhost\n127.0.1.1\tprov.corp.example prov # installer\n";
        assert_eq!(
            fqdn_from("prov", hosts, "search other.example\n").as_deref(),
            Some("prov.corp.example")
        );
        assert_eq!(
            fqdn_from(
                "prov",
                "127.0.0.1 localhost\n",
                "nameserver 10.0.0.1\nsearch lan.example corp.example\n"
            )
            .as_deref(),
            Some("prov.lan.example")
        );
        assert_eq!(
            fqdn_from("prov", "", "search a.example\ndomain b.example\n").as_deref(),
            Some("prov.b.example")
        );
        // A name listed without a dotted one, no domain: nothing to complete it with.
        assert_eq!(
            fqdn_from("prov", "127.0.1.1 prov\n", "nameserver 1.1.1.1\n"),
            None
        );
        assert_eq!(fqdn_from("prov", "", "search localdomain\n"), None);
        assert_eq!(fqdn_from("", "", "search x.example\n"), None);
        // `provision.example` is another host, not this one's full name.
        assert_eq!(
            fqdn_from("prov", "10.0.0.9 provision.example prov2\n", ""),
            None
        );
    }
}
