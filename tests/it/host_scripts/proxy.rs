//! What the app's nginx file lets through, against the test's own nginx and a busybox app
//! with CGI endpoints: the app's own 502 is its answer (no fallback to the old color, no
//! switch back, nothing replayed), a 5 MB upload, a server-sent stream silent for longer than
//! nginx's old 60 s read timeout, IPv6, and the upstream header for the host's own probes
//! only. Then the restore of a run killed between moving its nginx file into place and
//! reloading, after another app's reload loaded that file: it reloads nginx itself.

use super::*;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::PermissionsExt as _;

/// The app: busybox httpd serving /version and /healthz as the other tests' app does, plus
/// CGI endpoints: `flaky` (the release's version; a release built "broken" answers it with
/// its own 502, the app's own `X-Hoist-Upstream` header on every answer, and one line on
/// stderr per request), `upload` (the byte count of the request body) and `events` (a
/// server-sent stream: an event, 70 s of silence, an event, 20 s, an event).
const CGI_DOCKERFILE: &str = "FROM busybox:1.35\n\
ARG VERSION=dev\n\
ARG BROKEN=\n\
COPY cgi-bin /www/cgi-bin\n\
RUN printf '%s\\n' \"$VERSION\" > /www/version && printf 'ok\\n' > /www/healthz && chmod 755 /www/cgi-bin/*\n\
RUN if [ -n \"$BROKEN\" ]; then touch /www/flaky; fi\n\
EXPOSE 8080\n\
CMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

const FLAKY: &str = "#!/bin/sh\n\
v=$(cat /www/version)\n\
echo \"flaky-hit $v\" >&2\n\
if [ -e /www/flaky ]; then\n\
  printf 'HTTP/1.0 502 Bad Gateway\\r\\nContent-Type: text/plain\\r\\nX-Hoist-Upstream: forged-by-the-app\\r\\n\\r\\n%s\\n' \"$v\"\n\
else\n\
  printf 'Content-Type: text/plain\\r\\nX-Hoist-Upstream: forged-by-the-app\\r\\n\\r\\n%s\\n' \"$v\"\n\
fi\n";

const UPLOAD: &str = "#!/bin/sh\n\
n=$(head -c \"${CONTENT_LENGTH:-0}\" | wc -c)\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$n\"\n";

const EVENTS: &str = "#!/bin/sh\n\
printf 'Content-Type: text/event-stream\\r\\nCache-Control: no-cache\\r\\n\\r\\n'\n\
echo 'data: first'; echo\n\
sleep 70\n\
echo 'data: second'; echo\n\
sleep 20\n\
echo 'data: third'; echo\n";

/// A blue-green host whose app is the CGI one.
fn cgi_app(tag: &str) -> Option<BlueGreen> {
    let bg = BlueGreen::new(tag)?;
    let dir = bg.host.dir.path();
    std::fs::write(dir.join("Dockerfile"), CGI_DOCKERFILE).unwrap();
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    for (name, text) in [("flaky", FLAKY), ("upload", UPLOAD), ("events", EVENTS)] {
        std::fs::write(dir.join("cgi-bin").join(name), text).unwrap();
    }
    Some(bg)
}

/// An HTTP answer: status, header lines (lower-cased names), body (de-chunked).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One request to `addr` over a fresh connection (`Connection: close`), with `headers` and
/// `body` (a POST when there is one).
fn request(
    addr: SocketAddr,
    path: &str,
    headers: &[&str],
    body: Option<&[u8]>,
) -> Result<Answer, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n",
        if body.is_some() { "POST" } else { "GET" }
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if let Some(b) = body {
        let _ = write!(head, "Content-Length: {}\r\n", b.len());
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    if let Some(b) = body {
        // nginx may refuse (413) before reading it all: what it says is the answer.
        let _ = stream.write_all(b);
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end: {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status: {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| format!("a cut chunked body: {rest:?}"))?
    } else {
        rest.to_owned()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// A chunked body's data; `None` when it does not end with the last (empty) chunk.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(after.get(..n)?);
        rest = after.get(n + 2..)?;
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// An address of this host that is not loopback: a client reaching nginx there is, to
/// nginx, not the host itself.
fn non_loopback() -> Ipv4Addr {
    let out = Command::new("hostname").arg("-I").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<Ipv4Addr>().ok())
        .find(|a| !a.is_loopback())
        .expect("this host has a non-loopback IPv4 address (hostname -I)")
}

/// Whether this host has IPv6 (an address, `::1` at least), as the script decides.
fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6").is_ok_and(|t| !t.trim().is_empty())
}

/// Everything container `id` wrote, stdout and stderr.
fn container_log(id: &str) -> String {
    let out = Command::new("docker").args(["logs", id]).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Each color's /flaky was hit exactly as often as the client got an answer from it
/// (`v1_answers`, `v2_answers`): no request was passed on from one color to the other.
fn assert_each_color_saw_its_answers(host: &Host, v1_answers: usize, v2_answers: usize) {
    let hits = |release: &str| {
        let (id, _, _, _) = host.release(release);
        container_log(&id)
            .lines()
            .filter(|l| *l == format!("flaky-hit {release}"))
            .count()
    };
    assert_eq!(hits("v2"), v2_answers, "v2's requests");
    assert_eq!(hits("v1"), v1_answers, "v1's requests");
}

/// v2's /flaky answers its own 502 to every request, under a client's load, from its switch
/// through its post-switch check: nginx passes each 502 to the client as v2's answer, never
/// marks v2 down, replays nothing on v1 (each color saw exactly the requests the client got
/// its answer from), and the deploy goes through with no switch back. Its
/// `blue_green.proxy.max_body` (1m) is then what nginx lets through.
#[test]
fn an_app_answering_its_own_502_is_deployed_with_nothing_replayed_on_the_old_color() {
    let Some(bg) = cgi_app("pxflaky") else {
        return;
    };
    let host = &bg.host;
    let (run, r) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let port = host.port;
    let client = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            let answer = request(local(port), "/cgi-bin/flaky", &[], None);
            seen.push((Instant::now(), answer.map(|a| (a.status, a.body))));
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    });
    let knobs = BgKnobs {
        post_switch_check: 4,
        max_body: 1 << 20,
        ..KNOBS
    };
    let (run, r) = bg.deploy("v2", true, knobs);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let seen = client.join().unwrap();
    assert_eq!(
        (&r["status"], &r["rolled_back"]),
        (&"deployed".into(), &false.into()),
        "{r}\n{}\n{}",
        run.stdout,
        run.stderr
    );

    let failed: Vec<_> = seen.iter().filter(|(_, a)| a.is_err()).collect();
    assert!(failed.is_empty(), "requests with no answer: {failed:?}");
    let answers: Vec<(Instant, u16, &str)> = seen
        .iter()
        .filter_map(|(at, a)| a.as_ref().ok().map(|(s, b)| (*at, *s, b.trim())))
        .collect();
    let first_v2 = answers
        .iter()
        .find(|(_, _, b)| *b == "v2")
        .map(|(at, _, _)| *at)
        .expect("the client reached v2");
    // Past the moment a graceful reload lets both workers accept, only v2 answers, with its
    // own 502.
    let late_v1: Vec<_> = answers
        .iter()
        .filter(|(at, _, b)| *b != "v2" && at.duration_since(first_v2) > Duration::from_secs(1))
        .collect();
    assert!(late_v1.is_empty(), "answers after v2's: {late_v1:?}");
    let v2_answers: Vec<_> = answers.iter().filter(|(_, _, b)| *b == "v2").collect();
    assert!(v2_answers.len() > 20, "{}", v2_answers.len());
    assert!(
        v2_answers.iter().all(|(_, s, _)| *s == 502),
        "{v2_answers:?}"
    );
    let v1_answers = answers.iter().filter(|(_, _, b)| *b == "v1").count();
    // Each color saw exactly the requests whose answers the client got from it: none was
    // passed on from v2 to v1.
    assert_each_color_saw_its_answers(host, v1_answers, v2_answers.len());

    // max_body: 1m.
    let big = vec![b'x'; 2 << 20];
    let a = request(local(host.port), "/cgi-bin/upload", &[], Some(&big)).unwrap();
    assert_eq!(a.status, 413, "{a:?}");
    let small = vec![b'x'; 512 << 10];
    let a = request(local(host.port), "/cgi-bin/upload", &[], Some(&small)).unwrap();
    assert_eq!((a.status, a.body.trim()), (200, "524288"), "{a:?}");
}

/// The same app through a canary's window: v2 staged, then switched as a canary watched for
/// 6 s while a client asks /flaky, which v2 answers with its own 502 every time. Every 502
/// reaches the client as v2's answer, nothing is replayed on v1, and the canary holds (no
/// switch back), as it must for an app whose 502s are its own.
#[test]
fn a_canary_of_an_app_answering_its_own_502_holds_with_nothing_replayed() {
    let Some(bg) = cgi_app("pxcanary") else {
        return;
    };
    let host = &bg.host;
    let (run, r) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    bg.broken_phases.set(true);
    let (run, r) = bg.phase(Body::BgStage, "v2", "run-canary");
    assert_eq!(r["status"], "staged", "{r}\n{}", run.stderr);

    let port = host.port;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let (run, r) = bg.canary("v2", "run-canary", 6, move || {
        let until = Instant::now() + Duration::from_secs(9);
        while Instant::now() < until {
            let answer = request(local(port), "/cgi-bin/flaky", &[], None);
            log.lock()
                .unwrap()
                .push(answer.map(|a| (a.status, a.body.trim().to_owned())));
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert_eq!(
        (&r["status"], &r["rolled_back"]),
        (&"deployed".into(), &false.into()),
        "{r}\n{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        r["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("canary: held for 6s after its switch"),
        "{r}"
    );
    let seen = seen.lock().unwrap();
    let failed: Vec<_> = seen.iter().filter(|a| a.is_err()).collect();
    assert!(failed.is_empty(), "requests with no answer: {failed:?}");
    let answers: Vec<&(u16, String)> = seen.iter().filter_map(|a| a.as_ref().ok()).collect();
    let v2: Vec<_> = answers.iter().filter(|(_, b)| b == "v2").collect();
    let v1_count = answers.iter().filter(|(_, b)| b == "v1").count();
    assert!(
        v2.len() > 20,
        "{} answers from v2 and {v1_count} from v1 (v2's 502s replayed on v1?)",
        v2.len()
    );
    assert!(v2.iter().all(|(s, _)| *s == 502), "{v2:?}");
    assert_each_color_saw_its_answers(host, v1_count, v2.len());
}

/// What a port of the app's own would give, through nginx with the defaults: a 5 MB upload
/// passes; a server-sent stream silent for 70 s (past nginx's old 60 s read timeout) gets
/// each event as it is sent and ends whole after 90 s; IPv6 answers where the host has it; and
/// the upstream header goes only to probes from the host itself, never the app's own.
#[test]
fn the_proxy_passes_uploads_long_streams_and_ipv6_and_keeps_its_header_local() {
    let Some(bg) = cgi_app("pxcontract") else {
        return;
    };
    let host = &bg.host;
    let (run, r) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    let port = host.port;

    // The stream, on its own thread, while the rest is checked.
    let stream = std::thread::spawn(move || {
        let started = Instant::now();
        let mut s = TcpStream::connect(local(port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        write!(
            s,
            "GET /cgi-bin/events HTTP/1.1\r\nHost: app\r\nAccept: text/event-stream\r\n\
             Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        let mut arrived: Vec<(&str, Duration)> = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => panic!("the stream failed after {:?}: {e}", started.elapsed()),
            };
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw);
            for event in ["first", "second", "third"] {
                if text.contains(&format!("data: {event}"))
                    && !arrived.iter().any(|(e, _)| *e == event)
                {
                    arrived.push((event, started.elapsed()));
                }
            }
        }
        (arrived, parse_answer(&raw), started.elapsed())
    });

    // A 5 MB upload.
    let body = vec![b'x'; 5 << 20];
    let a = request(local(port), "/cgi-bin/upload", &[], Some(&body)).unwrap();
    assert_eq!((a.status, a.body.trim()), (200, "5242880"), "{a:?}");

    // IPv6, where the host has it; else nginx's file has no IPv6 listen to fail on.
    if host_has_ipv6() {
        let a = request(
            SocketAddr::from((IpAddr::V6(Ipv6Addr::LOCALHOST), port)),
            "/version",
            &[],
            None,
        )
        .unwrap();
        assert_eq!((a.status, a.body.trim()), (200, "v1"), "{a:?}");
    } else {
        assert!(
            !bg.conf_text().contains("listen [::]"),
            "{}",
            bg.conf_text()
        );
    }

    // The upstream header: the host's own probe gets nginx's, and only nginx's.
    let blue = format!("127.0.0.1:{}", bg.blue);
    let probe = ["X-Hoist-Probe: 1"];
    let a = request(local(port), "/cgi-bin/flaky", &probe, None).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-hoist-upstream"), [blue.as_str()], "{a:?}");
    // A client that is not the host itself gets none, probe header or not.
    let outside = SocketAddr::from((non_loopback(), port));
    let a = request(outside, "/cgi-bin/flaky", &probe, None).unwrap();
    assert_eq!((a.status, a.body.trim()), (200, "v1"), "{a:?}");
    assert!(a.header("x-hoist-upstream").is_empty(), "{a:?}");
    // Nor does a local client that does not probe.
    let a = request(local(port), "/cgi-bin/flaky", &[], None).unwrap();
    assert!(a.header("x-hoist-upstream").is_empty(), "{a:?}");

    let (arrived, answer, took) = stream.join().unwrap();
    eprintln!("stream: {arrived:?} in {took:?}");
    let answer = answer.unwrap_or_else(|e| panic!("the stream: {e}"));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.body, "data: first\n\ndata: second\n\ndata: third\n\n",
        "the whole stream, ended by the app"
    );
    let at = |event: &str| {
        arrived
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, t)| *t)
            .unwrap()
    };
    assert!(
        at("first") < Duration::from_secs(5),
        "streamed: {arrived:?}"
    );
    assert!(at("second") >= Duration::from_secs(65), "{arrived:?}");
    assert!(at("third") >= Duration::from_secs(85), "{arrived:?}");
}

/// A deploy killed right after its new nginx file was moved into place, before it reloaded
/// nginx: another app's run takes the host's nginx lock the moment the dead run lets go of it
/// and reloads nginx, which loads the unverified file (nginx routes to v2). The watchdog puts
/// the previous file back and reloads nginx itself, so that nginx routes to v1 alone, not
/// to v2's port first, where a release staged later would get live requests.
#[test]
fn a_restore_after_a_kill_before_the_reload_reloads_nginx() {
    let Some(mut bg) = BlueGreen::new("pxreload") else {
        return;
    };
    // nginx, through a wrapper whose `-t` waits (to be killed there) once `hold` exists.
    let hold = bg.nginx.dir.path().join("hold-next-test");
    let holding = bg.nginx.dir.path().join("holding");
    let wrapper = bg.nginx.dir.path().join("nginx-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             if [ \"$3\" = -t ] && [ -e '{hold}' ]; then rm -f '{hold}'; touch '{holding}'; sleep 60; fi\n\
             exec '{nginx}' \"$@\"\n",
            hold = hold.display(),
            holding = holding.display(),
            nginx = bg.nginx.bin,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let real = std::mem::replace(&mut bg.nginx.bin, wrapper.display().to_string());
    let host = &bg.host;
    let (run, _) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    let (v1, v1_name, _, _) = host.release("v1");
    let before = bg.conf_text();

    std::fs::write(&hold, "").unwrap();
    let (mut child, _dir) = bg.spawn_deploy("v2", KNOBS);
    let deadline = Instant::now() + Duration::from_secs(90);
    while !holding.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the deploy ended");
        assert!(
            Instant::now() < deadline,
            "the deploy never tested its nginx file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The window: the new file is in place, and the run has not reloaded.
    let state = host.state_dir().join("deploy.state");
    let recorded = std::fs::read_to_string(&state).unwrap();
    assert!(recorded.lines().any(|l| l == "phase switch"), "{recorded}");
    assert!(!recorded.lines().any(|l| l == "reloaded"), "{recorded}");
    assert!(bg.conf_text().contains("release=v2"), "{}", bg.conf_text());
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));

    // Another app: waits for the host's nginx lock (the run holds it), then reloads nginx.
    let (ready, waiting) = std::sync::mpsc::channel();
    let args = bg.nginx.args();
    let port = host.port;
    let other = std::thread::spawn(move || {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open("/run/hoist/nginx.lock")
            .unwrap();
        ready.send(()).unwrap();
        // SAFETY: flock(2) on a file this thread opened and keeps open until it returns.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let out = Command::new(&real)
            .args(&args)
            .args(["-s", "reload"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        // The reload loaded the dead run's file: nginx routes to v2.
        let deadline = Instant::now() + Duration::from_secs(10);
        while http_get(port, "/version").as_deref() != Ok("v2") {
            assert!(Instant::now() < deadline, "nginx never routed to v2");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(lock);
    });
    waiting.recv().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the process group of the child we spawned.
    unsafe {
        libc::kill(-libc::pid_t::try_from(child.id()).unwrap(), libc::SIGKILL);
    }
    let _ = child.wait();
    other.join().unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    while state.exists() {
        assert!(Instant::now() < deadline, "the watchdog never finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(bg.conf_text(), before, "the previous file is back");
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));
    assert_eq!(host.running_ids(), [v1.as_str()]);
    let record = host.history().pop().unwrap();
    assert_eq!(record["status"], "killed", "{record}");
    assert_eq!(record["rolled_back"], true, "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("nginx routes to {v1_name} (blue)")),
        "{record}"
    );

    // What nginx has loaded is v1's file: a release staged in the idle color (green, v2's
    // port) serves nothing until it is switched to. An nginx still running the dead run's
    // file would send live requests to it (once the failures of v2's removed container
    // were more than nginx's fail_timeout, 10 s, ago).
    let (run, r) = bg.phase(Body::BgStage, "v3", "run-after");
    assert_ok(&run);
    assert_eq!(r["status"], "staged", "{r}");
    assert_eq!(
        BlueGreen::label(&host.release("v3").0, "hoist.color"),
        "green"
    );
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `blue_green.install_proxy: true` on a host without nginx, with the package managers faked
/// on PATH (each "installs" nginx by linking the real one under the name the run looks for):
/// with apt-get (Debian, Ubuntu), the distribution's default site, a second default server
/// for the port, is disabled and the deploy goes through; with a yum that has no nginx and
/// amazon-linux-extras (Amazon Linux 2), nginx comes from amazon-linux-extras' nginx1.
#[test]
fn install_proxy_disables_the_default_site_and_knows_amazon_linux_2() {
    if !common::prerequisite(
        !common::have_command("dnf") && !common::have_command("yum"),
        "a host with no dnf or yum of its own (they come before the faked apt-get)",
    ) {
        return;
    }
    for (tag, fakes) in [
        ("pxapt", &[("apt-get", true)][..]),
        (
            "pxal2",
            &[("yum", false), ("amazon-linux-extras", true)][..],
        ),
    ] {
        let Some(mut bg) = BlueGreen::new(tag) else {
            return;
        };
        let real = std::mem::take(&mut bg.nginx.bin);
        let name = format!("hoist-test-nginx-{}", std::process::id());
        bg.nginx.bin = name.clone();
        let root = bg.nginx.dir.path();
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = root.join("installs");
        for (tool, installs) in fakes {
            let body = if *installs {
                format!("ln -sf '{real}' '{}/{name}'", bin.display())
            } else {
                "echo 'No package nginx available.'; exit 1".to_owned()
            };
            let path = bin.join(tool);
            std::fs::write(
                &path,
                format!(
                    "#!/bin/sh\necho \"{tool} $*\" >> '{}'\n{body}\n",
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The distribution's default site, as Debian's package enables it, for the app's port.
        let conf = root.join("nginx.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        let include = format!("include {}/conf.d/*.conf;", root.display());
        let text = text.replace(
            &include,
            &format!("{include}\n  include {}/sites-enabled/*;", root.display()),
        );
        std::fs::write(&conf, text).unwrap();
        std::fs::create_dir_all(root.join("sites-enabled")).unwrap();
        let site = root.join("sites-enabled/default");
        if tag == "pxapt" {
            std::fs::write(
                &site,
                format!(
                    "server {{ listen {} default_server; server_name _; return 200 'welcome'; }}\n",
                    bg.host.port
                ),
            )
            .unwrap();
        }

        let (_, image_id) = bg.host.build("v1", false);
        let mut text = bg.deploy_script("v1", &image_id, KNOBS);
        text = text.replacen(
            "HOIST_BG_INSTALL_PROXY='false'",
            "HOIST_BG_INSTALL_PROXY='true'",
            1,
        );
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let run = run_script_with(&text, &format!("HS_TOKEN={SECRET}\n"), &[("PATH", &path)]);
        let r = marked(&run, "HOIST-RESULT ");
        assert_eq!(r["status"], "deployed", "{tag}: {r}\n{}", run.stdout);
        let installs = std::fs::read_to_string(&log).unwrap();
        if tag == "pxapt" {
            assert!(installs.starts_with("apt-get install"), "{installs}");
            assert!(!site.exists(), "the default site is disabled");
            assert!(run.stdout.contains("disabled nginx's default site"));
        } else {
            assert_eq!(
                installs
                    .lines()
                    .map(|l| l.split(' ').next().unwrap())
                    .collect::<Vec<_>>(),
                ["yum", "amazon-linux-extras"],
                "{installs}"
            );
            assert!(installs.contains("amazon-linux-extras install -y nginx1"));
        }
        assert_eq!(http_get(bg.host.port, "/version").as_deref(), Ok("v1"));
    }
}
