use super::*;
use std::io::Read;

fn get(port: u16, target: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_idle_sockets_and_the_callback() {
    let l = LoopbackListener::bind(None).unwrap();
    let port = l.port();
    assert!(l.redirect_uri().starts_with("http://127.0.0.1:"));
    let h =
        std::thread::spawn(move || l.wait(Duration::from_secs(10), &CancelToken::default(), "xyz"));
    // Idle speculative connections must not block the real one.
    let _idle1 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _idle2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(get(port, "/favicon.ico").starts_with("HTTP/1.1 404"));
    let page = get(port, "/callback?code=abc&state=xyz&iss=https%3A%2F%2Fidp");
    assert!(page.contains("go back to Grantkeeper"));
    let params = h.join().unwrap().unwrap();
    assert_eq!(params["code"], "abc");
    assert_eq!(params["iss"], "https://idp");
    // The port is free again.
    std::thread::sleep(Duration::from_millis(50));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

fn send(port: u16, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn waiting(
    state: &'static str,
) -> (
    u16,
    std::thread::JoinHandle<Result<CallbackParams, OAuthError>>,
) {
    let l = LoopbackListener::bind(None).unwrap();
    let port = l.port();
    let h =
        std::thread::spawn(move || l.wait(Duration::from_secs(20), &CancelToken::default(), state));
    (port, h)
}

#[test]
fn a_wrong_or_missing_state_does_not_end_the_wait() {
    let (port, h) = waiting("st-good");
    for target in [
        "/callback?code=forged&state=st-bad",
        "/callback?code=forged",
        "/callback?error=access_denied&state=",
        "/callback?error=access_denied&state=st-goodX",
        "/callback?code=forged&state=st-goo",
    ] {
        let page = get(port, target);
        assert!(page.starts_with("HTTP/1.1 400"), "{target}: {page}");
        assert!(page.contains("Not this sign-in"), "{page}");
        assert!(!h.is_finished(), "{target} ended the wait");
    }
    let page = get(port, "/callback?code=real&state=st-good");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("Signed in"),
        "{page}"
    );
    let params = h.join().unwrap().unwrap();
    assert_eq!(params["code"], "real");
}

#[test]
fn a_denial_with_the_right_state_ends_the_wait() {
    let (port, h) = waiting("s1");
    assert!(get(port, "/callback?error=access_denied&state=s1").contains("not completed"));
    assert_eq!(h.join().unwrap().unwrap()["error"], "access_denied");
}

#[test]
fn oversized_or_malformed_heads_are_refused_and_the_wait_goes_on() {
    let (port, h) = waiting("s1");
    let mut big = b"GET /callback?code=x&state=s1 HTTP/1.1\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    big.extend_from_slice(b"\r\n\r\n");
    assert!(send(port, &big).starts_with("HTTP/1.1 431"));
    let long_line = format!("GET /callback?code={} HTTP/1.1\r\n\r\n", "c".repeat(9000));
    assert!(send(port, long_line.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(send(port, b"NONSENSE\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(send(port, b"GET /callback HTTP/1.1\r\nno colon\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(!h.is_finished());
    assert!(get(port, "/callback?code=ok&state=s1").contains("Signed in"));
    assert_eq!(h.join().unwrap().unwrap()["code"], "ok");
}

#[test]
fn a_slow_client_is_cut_off_at_the_head_timeout() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let dripper = std::thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        for b in b"GET /callback?code=x HTTP/1.1\r\nHost: a\r\n"
            .iter()
            .cycle()
            .take(200)
        {
            if c.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (stream, _) = server.accept().unwrap();
    let started = Instant::now();
    assert_eq!(read_head(&stream, Duration::from_millis(300)), Err(None));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(stream);
    dripper.join().unwrap();
}

#[test]
fn connections_past_the_cap_are_closed() {
    let (port, h) = waiting("s1");
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // One more: closed without an answer.
    let extra = send(port, b"GET /callback?code=x&state=s1 HTTP/1.1\r\n\r\n");
    assert_eq!(extra, "");
    assert!(!h.is_finished());
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    assert!(get(port, "/callback?code=ok&state=s1").contains("Signed in"));
    assert_eq!(h.join().unwrap().unwrap()["code"], "ok");
}

#[test]
fn request_heads_parse_strictly() {
    let h = parse_request_head(b"GET /callback?code=a%20b&state=s HTTP/1.1\r\nHost: x\r\n\r\nrest")
        .unwrap();
    assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/callback"));
    assert_eq!(h.params["code"], "a b");
    assert!(parse_request_head(b"GET / HTTP/1.0\n\n").is_ok());
    assert_eq!(
        parse_request_head(b"GET / HTTP/1.1\r\nHost: x\r\n"),
        Err(HeadError::Incomplete)
    );
    assert_eq!(parse_request_head(b""), Err(HeadError::Incomplete));
    assert_eq!(
        parse_request_head(&[b'a'; MAX_HEAD]),
        Err(HeadError::TooLarge)
    );
    for bad in [
        &b"GET  / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/2\r\n\r\n",
        b"GET http://x/ HTTP/1.1\r\n\r\n",
        b"GET /a\x01 HTTP/1.1\r\n\r\n",
        b"G\xffT / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET / HTTP/1.1\r\n: empty\r\n\r\n",
    ] {
        assert_eq!(
            parse_request_head(bad),
            Err(HeadError::Malformed),
            "{bad:?}"
        );
    }
    let h = parse_request_head(b"GET /callback?code=c&state=s HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(classify(&h, "/callback", "s", false), Answer::SignedIn);
    assert_eq!(
        classify(&h, "/callback", "s", true),
        Answer::AlreadyReceived
    );
    assert_eq!(classify(&h, "/callback", "t", false), Answer::WrongState);
    assert_eq!(classify(&h, "/callback", "", false), Answer::WrongState);
    assert_eq!(classify(&h, "/other", "s", false), Answer::NotFound);
}

#[test]
fn timeout_and_cancel_close_the_listener() {
    let l = LoopbackListener::bind(None).unwrap();
    let port = l.port();
    let e = l
        .wait(Duration::from_millis(200), &CancelToken::default(), "s")
        .unwrap_err();
    assert!(matches!(e, OAuthError::TimedOut { .. }));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    let again = LoopbackListener::bind(Some(port)).unwrap();
    let cancel = CancelToken::default();
    cancel.cancel();
    assert!(matches!(
        again.wait(Duration::from_secs(5), &cancel, "s"),
        Err(OAuthError::Cancelled)
    ));
}

#[test]
fn a_taken_fixed_port_is_a_clear_error() {
    let l = LoopbackListener::bind(None).unwrap();
    let e = LoopbackListener::bind(Some(l.port())).unwrap_err();
    assert!(e.to_string().contains("not free"));
}
