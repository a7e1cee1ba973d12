//! `evserver bench` against local servers, with both backends: exact counts, the held rate,
//! timeouts, refused connections, 500s, the JSON round trip and the exit statuses.

mod support;

use evserver_bench::report::{self, Document};
use support::{backends, bench, refused_url, tcp_server, temp_dir, unix_server, Behaviour};

#[test]
fn exact_counts_with_n_keep_alive_and_pipelined() {
    for backend in backends() {
        let (url, seen) = tcp_server(Behaviour::Answer(200));
        let (code, doc) = bench(
            "n",
            &[
                "-n",
                "1000",
                "-c",
                "8",
                "-t",
                "2",
                "--backend",
                backend,
                &url,
            ],
        );
        assert_eq!(code, 0, "{backend}");
        let r = &doc.runs[0];
        assert_eq!(r.requests, 1000, "{backend}");
        assert_eq!(r.sent, 1000, "{backend}");
        assert_eq!(r.status.get("200"), Some(&1000), "{backend}");
        assert_eq!(r.errors.total, 0, "{backend}");
        assert_eq!(r.latency.count, 1000, "{backend}");
        assert_eq!(seen.requests(), 1000, "{backend}");
        assert_eq!(
            r.bytes,
            1000 * "HTTP/1.1 200 X\r\nContent-Length: 5\r\n\r\nhello".len() as u64
        );
        assert_eq!(
            doc.config.backend_used,
            if backend == "poll" {
                "epoll"
            } else {
                "io_uring"
            }
        );

        let (url, seen) = tcp_server(Behaviour::Answer(200));
        let (code, doc) = bench(
            "pipe",
            &[
                "-n",
                "1001",
                "-c",
                "3",
                "--pipeline",
                "4",
                "--backend",
                backend,
                &url,
            ],
        );
        assert_eq!(code, 0);
        assert_eq!(doc.runs[0].requests, 1001, "{backend}");
        assert_eq!(seen.requests(), 1001, "{backend}");
    }
}

#[test]
fn close_opens_a_connection_per_request() {
    for backend in backends() {
        let (url, seen) = tcp_server(Behaviour::Answer(200));
        let (code, doc) = bench(
            "close",
            &["-n", "60", "-c", "4", "--close", "--backend", backend, &url],
        );
        assert_eq!(code, 0);
        assert_eq!(doc.runs[0].requests, 60, "{backend}");
        assert_eq!(seen.requests(), 60, "{backend}");
        // Each request had its own connection (a connection may open unused at the end).
        assert!(
            seen.connections() >= 60,
            "{backend}: {}",
            seen.connections()
        );
    }
}

#[test]
fn unix_socket_targets() {
    for backend in backends() {
        let dir = temp_dir(&format!("unix-{backend}"));
        let (url, seen) = unix_server(&dir);
        let (code, doc) = bench(
            "unix",
            &["-n", "300", "-c", "4", "--backend", backend, &url],
        );
        assert_eq!(code, 0);
        assert_eq!(doc.runs[0].requests, 300, "{backend}");
        assert_eq!(seen.requests(), 300);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_moderate_rate_is_held() {
    for backend in backends() {
        let (url, _) = tcp_server(Behaviour::Answer(200));
        let (code, doc) = bench(
            "rate",
            &[
                "-R",
                "400",
                "-d",
                "2s",
                "-c",
                "8",
                "--backend",
                backend,
                &url,
            ],
        );
        assert_eq!(code, 0);
        let r = &doc.runs[0];
        let rate = r.rate.as_ref().expect("rate results");
        assert!(
            (rate.achieved - 400.0).abs() < 400.0 * 0.05,
            "{backend}: {rate:?}"
        );
        assert!(rate.reached);
        let expected = 400.0 * r.duration_s;
        assert!(
            (r.requests as f64 - expected).abs() < expected * 0.05,
            "{backend}: {}",
            r.requests
        );
        assert!(r.latency_uncorrected.is_some());
        assert_eq!(r.errors.total, 0);
    }
}

#[test]
fn timeouts_are_counted_and_connections_reopened() {
    for backend in backends() {
        let (url, seen) = tcp_server(Behaviour::Silent);
        let (code, doc) = bench(
            "timeout",
            &[
                "-d",
                "1s",
                "-c",
                "2",
                "--timeout",
                "200ms",
                "--backend",
                backend,
                &url,
            ],
        );
        assert_eq!(code, 0);
        let r = &doc.runs[0];
        assert_eq!(r.requests, 0);
        // Two connections, each timing out about every 200 ms for a second.
        assert!(r.errors.timeout >= 4, "{backend}: {:?}", r.errors);
        assert_eq!(r.errors.total, r.errors.timeout);
        assert!(
            seen.connections() >= 4,
            "{backend}: re-opened {}",
            seen.connections()
        );
    }
}

#[test]
fn refused_connections_are_classified() {
    for backend in backends() {
        let (code, doc) = bench(
            "refused",
            &["-n", "7", "-c", "2", "--backend", backend, &refused_url()],
        );
        assert_eq!(code, 0);
        let e = &doc.runs[0].errors;
        assert_eq!((e.connect, e.total), (7, 7), "{backend}: {e:?}");
        assert_eq!(doc.runs[0].requests, 0);
    }
}

#[test]
fn server_errors_are_counted_by_status_and_fail_an_assert() {
    for backend in backends() {
        let (url, _) = tcp_server(Behaviour::Answer(500));
        let (code, doc) = bench(
            "500",
            &[
                "-n",
                "20",
                "-c",
                "2",
                "--assert",
                "errors==0",
                "--backend",
                backend,
                &url,
            ],
        );
        assert_eq!(code, 3, "{backend}: an assert failed");
        let r = &doc.runs[0];
        assert_eq!(r.requests, 20);
        assert_eq!(r.errors.status.get("500"), Some(&20));
        assert_eq!(r.errors.total, 20);
        let (code, _) = bench("500ok", &["-n", "5", "--assert", "status_5xx==5", &url]);
        assert_eq!(code, 0);
    }
}

#[test]
fn the_json_document_round_trips() {
    let (url, _) = tcp_server(Behaviour::Answer(200));
    let (_, doc) = bench("json", &["-n", "500", "-c", "4", "--warmup", "200ms", &url]);
    assert_eq!(doc.schema, report::SCHEMA);
    let text = serde_json::to_string(&doc).expect("serialize");
    let back: Document = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, doc);
    let r = &doc.runs[0];
    assert_eq!(r.requests, 500, "the warmup is not counted");
    let h = report::deserialize(&r.latency.histogram).expect("histogram");
    assert_eq!(h.len(), 500);
    assert_eq!(h.max(), r.latency.max);
    assert_eq!(doc.config.requests, Some(500));
    assert!(doc.started_at.ends_with('Z'));
    assert!(doc.machine.cpus >= 1);
}

#[test]
fn compare_exit_statuses() {
    let (url, _) = tcp_server(Behaviour::Answer(200));
    let dir = temp_dir("compare");
    let base = dir.join("base.json");
    let base_s = base.display().to_string();
    let (code, _) = bench("save", &["-n", "300", "--save", &base_s, &url]);
    assert_eq!(code, 0);
    let saved: Document = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();

    // A huge threshold: no regression.
    let (code, _) = bench(
        "cmp-ok",
        &[
            "-n",
            "300",
            "--compare",
            &base_s,
            "--threshold",
            "100000%",
            &url,
        ],
    );
    assert_eq!(code, 0);

    // A baseline far faster than anything this run can do: throughput fell.
    let mut fast = saved.clone();
    fast.summary.requests_per_sec.median *= 1000.0;
    let fast_path = dir.join("fast.json");
    std::fs::write(&fast_path, serde_json::to_string(&fast).unwrap()).unwrap();
    let (code, _) = bench(
        "cmp-rps",
        &[
            "-n",
            "300",
            "--compare",
            &fast_path.display().to_string(),
            &url,
        ],
    );
    assert_eq!(code, 4);

    // A baseline with a far lower p99 and slower throughput: p99 rose.
    let mut tight = saved;
    tight.summary.requests_per_sec.median = 0.001;
    tight.summary.p99_us.median = 0.001;
    let tight_path = dir.join("tight.json");
    std::fs::write(&tight_path, serde_json::to_string(&tight).unwrap()).unwrap();
    let (code, _) = bench(
        "cmp-p99",
        &[
            "-n",
            "300",
            "--compare",
            &tight_path.display().to_string(),
            &url,
        ],
    );
    assert_eq!(code, 4);

    // An assert failure wins over a regression.
    let (code, _) = bench(
        "cmp-assert",
        &[
            "-n",
            "50",
            "--compare",
            &tight_path.display().to_string(),
            "--assert",
            "requests<1",
            &url,
        ],
    );
    assert_eq!(code, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn runs_report_median_and_spread() {
    let (url, seen) = tcp_server(Behaviour::Answer(200));
    let (code, doc) = bench("runs", &["-n", "200", "--runs", "3", &url]);
    assert_eq!(code, 0);
    assert_eq!(doc.runs.len(), 3);
    assert_eq!(doc.summary.runs, 3);
    assert_eq!(seen.requests(), 600);
    let s = &doc.summary.requests_per_sec;
    assert!(s.min <= s.median && s.median <= s.max);
}

#[test]
fn usage_and_runtime_errors_have_their_statuses() {
    let run = |args: &[&str]| {
        let mut argv = vec!["evserver-bench"];
        argv.extend_from_slice(args);
        evserver_bench::main(argv)
    };
    assert_eq!(run(&["https://127.0.0.1/"]), 2);
    assert_eq!(run(&["--assert", "nonsense", "http://127.0.0.1:1/"]), 2);
    assert_eq!(run(&["-c", "1", "-t", "2", "http://127.0.0.1:1/"]), 2);
    assert_eq!(run(&["-d", "ten", "http://127.0.0.1:1/"]), 2);
    assert_eq!(
        run(&["--compare", "/nonexistent/base.json", "http://127.0.0.1:1/"]),
        1
    );
    assert_eq!(
        run(&["--body-file", "/nonexistent/body", "http://127.0.0.1:1/"]),
        1
    );
    assert_eq!(run(&["--help"]), 0);
}

#[test]
fn running_out_of_file_descriptors_is_reported_not_a_hang() {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    for backend in backends() {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_evserver-bench"));
        cmd.args([
            "-c",
            "100",
            "-d",
            "300ms",
            "--backend",
            backend,
            &refused_url(),
        ]);
        // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 40,
                    rlim_max: 40,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().expect("run evserver-bench");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{backend}: {stderr}");
        assert!(
            stderr.contains("cannot open a socket"),
            "{backend}: {stderr}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("Errors"), "{backend}: {stdout}");
    }
}

/// Runs the `evserver-bench` binary; returns its exit status and standard output.
fn bench_binary(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_evserver-bench"))
        .args(args)
        .output()
        .expect("run evserver-bench");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_run_with_no_completed_request_is_not_saved_as_a_baseline() {
    let (url, _) = tcp_server(Behaviour::Silent);
    let dir = temp_dir("save-empty");
    let base = dir.join("base.json");
    let base_s = base.display().to_string();
    let (code, _, err) = bench_binary(&["-d", "1s", "-c", "2", "--save", &base_s, &url]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not saved as a baseline"), "{err}");
    assert!(!base.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_baseline_noisier_than_the_threshold_is_said_to_be() {
    let (url, _) = tcp_server(Behaviour::Answer(200));
    let dir = temp_dir("noisy");
    let base = dir.join("base.json");
    let base_s = base.display().to_string();
    let (code, _, err) = bench_binary(&["-n", "200", "--runs", "3", "--save", &base_s, &url]);
    assert_eq!(code, 0, "{err}");
    let mut saved: Document =
        serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    let rps = &mut saved.summary.requests_per_sec;
    rps.min = rps.median * 0.8;
    rps.max = rps.median * 1.2;
    // 200 requests on a loaded machine give a wild p99: pin its spread so only the rate's
    // 40% spread decides the note.
    let p99 = &mut saved.summary.p99_us;
    p99.min = p99.median;
    p99.max = p99.median;
    std::fs::write(&base, serde_json::to_string(&saved).unwrap()).unwrap();
    let (_, out, _) = bench_binary(&["-n", "200", "--compare", &base_s, "--threshold", "5%", &url]);
    assert!(out.contains("the gate is finer than the noise"), "{out}");
    let (_, out, _) = bench_binary(&[
        "-n",
        "200",
        "--compare",
        &base_s,
        "--threshold",
        "50%",
        &url,
    ]);
    assert!(!out.contains("finer than the noise"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
