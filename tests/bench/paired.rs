//! Paired devices (issue 10): reconnecting to a known peer (`connect` start → stream open), and
//! the stream's throughput against plain TCP over the same lab link, with the CPU each side spends.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use localpair_lab::pairs::{self, STEP};
use localpair_lab::{ChildGuard, Host, HostSpec, Lab, LabError, Localpair};

use crate::Options;
use crate::table::Table;

/// Bytes moved per throughput run.
const BULK: usize = 512 << 20;
/// Linux reports process times in USER_HZ ticks, 100 per second.
const TICKS_PER_SECOND: f64 = 100.0;
const CHUNK: usize = 256 * 1024;

fn lab_pair() -> Result<(Lab, Host, Host), LabError> {
    let lab = Lab::new("bench_paired")?;
    let desk = lab.add_host(HostSpec::new().name("desk"))?;
    let phone = lab.add_host(HostSpec::new().name("phone"))?;
    pairs::pair(&desk, &phone)?;
    Ok((lab, desk, phone))
}

pub(crate) fn reconnect(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let (_lab, desk, phone) = lab_pair()?;
    for multicast in [true, false] {
        if !multicast {
            desk.drop_multicast()?;
            phone.drop_multicast()?;
        }
        // One listener for the whole series, as a device that stays reachable would run it.
        let listener = pairs::Listener::start(&desk, "", false)?;
        let mut inside = Vec::new();
        let mut via = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..options.runs {
            let ran = pairs::connect(&phone, "desk", "", b"")?;
            if ran.code() != Some(0) {
                return Err(LabError::Timeout(format!("connect failed: {}", ran.stderr)));
            }
            let json = ran.json();
            inside.push(json["elapsed_ms"].as_f64().unwrap_or(f64::NAN));
            *via.entry(json["via"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        drop(listener);
        let label = if multicast {
            "reconnect to a known peer, multicast working"
        } else {
            "reconnect to a known peer, multicast dropped"
        };
        eprintln!("{label}: via {via:?}");
        table.times(&format!("{label} — `connect` start → stream open"), inside);
    }
    Ok(())
}

/// utime + stime of a process, in seconds, while /proc still has it (a zombie keeps its totals).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// Follows a process's CPU time until it exits; the last reading is its total.
fn watch_cpu(pid: u32) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let mut last = 0.0;
        while let Some(seconds) = cpu_seconds(pid) {
            last = seconds;
            std::thread::sleep(Duration::from_millis(5));
        }
        last
    })
}

/// One transfer of BULK bytes through a pipeline of two processes: the bench writes into the
/// sender's stdin, the sender moves it to the receiver over the lab link, the bench drains the
/// receiver's stdout. Returns MiB/s and the CPU seconds per GiB of sender and receiver.
fn pipeline(
    start_receiver: impl FnOnce() -> Result<ChildGuard, LabError>,
    start_sender: impl FnOnce() -> Result<ChildGuard, LabError>,
) -> Result<(f64, f64, f64), LabError> {
    let mut receiver = start_receiver()?;
    let receiver_cpu = watch_cpu(receiver.id());
    let mut out = receiver.stdout.take();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        while let Some(Ok(n)) = out.as_mut().map(|o| o.read(&mut buf)) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut sender = start_sender()?;
    let sender_cpu = watch_cpu(sender.id());
    let mut stdin = sender.stdin.take();
    let started = Instant::now();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![0x5au8; CHUNK];
        if let Some(stdin) = &mut stdin {
            for _ in 0..BULK / CHUNK {
                if stdin.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    });
    let _ = feeder.join();
    let status = sender.wait_timeout(Duration::from_secs(300))?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = receiver.wait_timeout(STEP)?;
    let _ = drain.join();
    if status.is_none_or(|s| !s.success()) || received.load(Ordering::Relaxed) != BULK as u64 {
        return Err(LabError::Timeout(format!(
            "bulk transfer failed: {} of {BULK} bytes",
            received.load(Ordering::Relaxed)
        )));
    }
    let gib = BULK as f64 / f64::from(1u32 << 30);
    Ok((
        BULK as f64 / f64::from(1u32 << 20) / seconds,
        sender_cpu.join().unwrap_or(f64::NAN) / gib,
        receiver_cpu.join().unwrap_or(f64::NAN) / gib,
    ))
}

/// Port of the plain relay's receiver.
const RELAY_PORT: u16 = 47_998;

/// `lab-bench` itself as a plain TCP relay inside a host, with stdin and stdout piped.
fn relay(host: &Host, mode: &str, arg: &str) -> Result<ChildGuard, LabError> {
    let exe = std::env::current_exe().map_err(|e| LabError::io("finding lab-bench", e))?;
    let mut command = host.command(exe);
    command
        .args([mode, arg])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    ChildGuard::spawn(&mut command)
}

pub(crate) fn throughput(table: &mut Table, options: &Options) -> Result<(), LabError> {
    let (_lab, desk, phone) = lab_pair()?;
    let runs = options.runs.clamp(1, 5);
    let (mut tls_rates, mut relay_rates, mut tcp_rates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut send_cpu, mut recv_cpu) = (Vec::new(), Vec::new());
    let (mut relay_send_cpu, mut relay_recv_cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        // The stream: `connect` reads BULK bytes from stdin, `listen --once` writes them out.
        let (rate, sent, received) = pipeline(
            || Localpair::on(&desk)?.args(["listen", "--once"]).spawn(),
            || {
                Localpair::on(&phone)?
                    .args(["--json", "connect", "desk"])
                    .stdin_piped()
                    .spawn()
            },
        )?;
        tls_rates.push(rate);
        send_cpu.push(sent);
        recv_cpu.push(received);
        // Plain TCP through the very same pipes: a relay with the same buffer size.
        let to = SocketAddr::from((desk.addr(), RELAY_PORT)).to_string();
        let (rate, sent, received) = pipeline(
            || relay(&desk, "--relay-receive", &RELAY_PORT.to_string()),
            || relay(&phone, "--relay-send", &to),
        )?;
        relay_rates.push(rate);
        relay_send_cpu.push(sent);
        relay_recv_cpu.push(received);
        tcp_rates.push(plain_tcp(&desk, &phone)?);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        localpair_lab::stats::median(v)
    };
    let (tls, relayed, tcp) = (
        median(&mut tls_rates),
        median(&mut relay_rates),
        median(&mut tcp_rates),
    );
    for (label, value, unit) in [
        ("stream connect → listen, 512 MiB (median)", tls, "MiB/s"),
        (
            "plain TCP relay through the same pipes, 512 MiB (median)",
            relayed,
            "MiB/s",
        ),
        (
            "plain TCP between two threads over the same link, 512 MiB (median)",
            tcp,
            "MiB/s",
        ),
        ("stream / plain TCP relay (medians)", tls / relayed, "×"),
        (
            "stream / plain TCP between threads (medians)",
            tls / tcp,
            "×",
        ),
        ("CPU of `connect` (sending)", median(&mut send_cpu), "s/GiB"),
        (
            "CPU of `listen` (receiving)",
            median(&mut recv_cpu),
            "s/GiB",
        ),
        (
            "CPU of the plain relay (sending)",
            median(&mut relay_send_cpu),
            "s/GiB",
        ),
        (
            "CPU of the plain relay (receiving)",
            median(&mut relay_recv_cpu),
            "s/GiB",
        ),
    ] {
        table.value(label, runs, value, unit);
    }
    Ok(())
}

/// The relay's two halves (`lab-bench --relay-receive PORT`, `lab-bench --relay-send ADDR`):
/// stdin to one TCP connection, or one accepted connection to stdout, through a buffer of the
/// size `localpair` uses, with plain reads and writes (no splice: the kernel would skip the
/// copies that `localpair` has to make).
pub(crate) fn relay_main(mode: &str, arg: &str) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let copy = |from: &mut dyn std::io::Read, to: &mut dyn std::io::Write, buf: &mut [u8]| {
        loop {
            match from.read(buf)? {
                0 => return to.flush(),
                n => to.write_all(&buf[..n])?,
            }
        }
    };
    match mode {
        "--relay-receive" => {
            let port: u16 = arg.parse().map_err(std::io::Error::other)?;
            let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
            let (mut stream, _) = listener.accept()?;
            copy(&mut stream, &mut std::io::stdout().lock(), &mut buf)
        }
        _ => {
            let to: SocketAddr = arg.parse().map_err(std::io::Error::other)?;
            let mut stream = TcpStream::connect(to)?;
            copy(&mut std::io::stdin().lock(), &mut stream, &mut buf)?;
            stream.shutdown(std::net::Shutdown::Write)
        }
    }
}

/// MiB/s of BULK bytes over a plain TCP connection between the two hosts.
fn plain_tcp(desk: &Host, phone: &Host) -> Result<f64, LabError> {
    let port = 47_999;
    let receiver = desk.spawn(move || -> std::io::Result<u64> {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    })?;
    std::thread::sleep(Duration::from_millis(100));
    let to = SocketAddr::from((desk.addr(), port));
    let seconds = phone.run(move || -> std::io::Result<f64> {
        let mut stream = TcpStream::connect(to)?;
        let chunk = vec![0x5au8; CHUNK];
        let started = Instant::now();
        for _ in 0..BULK / CHUNK {
            stream.write_all(&chunk)?;
        }
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest)?;
        Ok(started.elapsed().as_secs_f64())
    })?;
    let seconds = seconds.map_err(|e| LabError::io("plain TCP", e))?;
    let got = receiver
        .join()
        .map_err(|e| LabError::io("plain TCP receiver", e))?;
    if got != BULK as u64 {
        return Err(LabError::Timeout(format!("plain TCP moved {got} bytes")));
    }
    Ok(BULK as f64 / f64::from(1u32 << 20) / seconds)
}
