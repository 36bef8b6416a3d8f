use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use super::server::read_request_line;
use super::*;
use crate::audit::{Actor, ActorKind};
use crate::keychain::MemoryKeychain;
use crate::oauth::loopback::CancelToken;

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn lines_are_bounded_and_requests_clamped() {
    let mut pending = b"{\"op\":\"status\"}\r\n{\"op\"".to_vec();
    assert_eq!(
        next_line(&mut pending).unwrap().unwrap(),
        b"{\"op\":\"status\"}"
    );
    assert_eq!(next_line(&mut pending), Ok(None));
    pending.extend(std::iter::repeat_n(b' ', MAX_LINE));
    assert_eq!(next_line(&mut pending), Err(LineError::TooLong));
    let mut exact = vec![b' '; MAX_LINE];
    exact.push(b'\n');
    assert_eq!(next_line(&mut exact).unwrap().unwrap().len(), MAX_LINE);
    assert!(matches!(
        decode_request(&vec![b' '; MAX_LINE + 1]),
        Err(LineError::TooLong)
    ));
    assert!(matches!(
        decode_request(b"\xff"),
        Err(LineError::Invalid(_))
    ));
    let huge = format!(
        r#"{{"op":"token","tenant":"t","connection":"c","min_valid_ms":{},"hint":null,"timeout_ms":{}}}"#,
        u64::MAX,
        u64::MAX
    );
    match decode_request(huge.as_bytes()).unwrap() {
        Request::Token {
            min_valid_ms,
            timeout_ms,
            ..
        } => {
            assert_eq!(min_valid_ms, 315_576_000_000, "10 years");
            assert_eq!(timeout_ms, Some(600_000));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decode_request(br#"{"op":"token","min_valid_ms":-1}"#),
        Err(LineError::Invalid(_))
    ));
}

#[test]
fn a_slow_client_is_cut_off() {
    let (server, mut client) = UnixStream::pair().unwrap();
    let dripper = std::thread::spawn(move || {
        for _ in 0..100 {
            if client.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let started = std::time::Instant::now();
    let mut pending = Vec::new();
    assert!(read_request_line(&server, &mut pending, Duration::from_millis(300)).is_none());
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(server);
    dripper.join().unwrap();
}

#[test]
fn serves_status_lock_unlock_and_refuses_unknown_connections() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", runtime.path());
    let home = dir.path().join("vault");
    let kc = Arc::new(MemoryKeychain::default());
    Vault::open(&home, kc.clone())
        .unwrap()
        .create_tenant("Acme", Some("acme"), "", &Actor::new(ActorKind::Cli))
        .unwrap();
    let (h, kc2) = (home.clone(), kc.clone());
    let opener: Arc<Opener> = Arc::new(move || Vault::open(&h, kc2.clone()));
    let stop = CancelToken::default();
    let server = {
        let (home, stop) = (home.clone(), stop.clone());
        std::thread::spawn(move || serve(&home, opener, &stop))
    };
    let mut client = loop {
        if let Some(c) = AgentClient::connect(&home) {
            break c;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mode = std::fs::metadata(socket_path(&home))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        client.call(&Request::Status, WAIT).unwrap().locked,
        Some(false)
    );
    let unknown = Request::Token {
        tenant: "acme".into(),
        connection: "nope".into(),
        min_valid_ms: 0,
        hint: None,
        timeout_ms: None,
    };
    assert_eq!(
        client.call(&unknown, WAIT).unwrap().kind,
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        client.call(&Request::Lock, WAIT).unwrap().locked,
        Some(true)
    );
    assert_eq!(
        client.call(&unknown, WAIT).unwrap().kind,
        Some(ErrorKind::Locked)
    );
    assert_eq!(
        client.call(&Request::Unlock, WAIT).unwrap().locked,
        Some(false)
    );

    // Bounds: a line past 8 KiB is answered once and the connection closed.
    let path = socket_path(&home);
    let mut long = UnixStream::connect(&path).unwrap();
    let _ = long.write_all(&vec![b'x'; MAX_LINE + 100]);
    let mut answer = String::new();
    long.set_read_timeout(Some(WAIT)).unwrap();
    let _ = long.read_to_string(&mut answer);
    assert!(answer.contains("longer than 8192 bytes"), "{answer}");
    assert_eq!(answer.lines().count(), 1, "then closed");
    // A bad line is answered and the connection goes on.
    let mut c2 = UnixStream::connect(&path).unwrap();
    c2.write_all(b"{\"op\":\"nope\"}\n{\"op\":\"status\"}\n")
        .unwrap();
    let mut r2 = BufReader::new(&c2);
    let (mut l1, mut l2) = (String::new(), String::new());
    r2.read_line(&mut l1).unwrap();
    r2.read_line(&mut l2).unwrap();
    assert!(l1.contains("bad request"), "{l1}");
    assert!(l2.contains("\"locked\":false"), "{l2}");
    // Past MAX_CONNECTIONS at once, a connection is closed unanswered.
    let held: Vec<UnixStream> = (0..MAX_CONNECTIONS)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = UnixStream::connect(&path).unwrap();
    let _ = extra.write_all(b"{\"op\":\"status\"}\n");
    extra.set_read_timeout(Some(WAIT)).unwrap();
    let mut nothing = String::new();
    let _ = extra.read_to_string(&mut nothing);
    assert_eq!(nothing, "", "closed without an answer");
    drop(held);
    drop(c2);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = AgentClient::connect(&home).unwrap();
    assert_eq!(
        again.call(&Request::Status, WAIT).unwrap().locked,
        Some(false)
    );
    stop.cancel();
    server.join().unwrap().unwrap();
    assert!(AgentClient::connect(&home).is_none(), "socket removed");
}
