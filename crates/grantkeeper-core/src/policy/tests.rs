use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;

use super::ask::{self, Question};
use super::*;
use crate::audit::{ActorKind, EventKind};
use crate::deadline::Deadline;
use crate::model::{ConnectionId, TenantId};
use crate::oauth::loopback::CancelToken;
use crate::test_support::{acme, cli, home, new_connection, public_app, temp_vault, tokens};
use crate::vault::Vault;

fn program(path: &str) -> Actor {
    Actor {
        kind: ActorKind::Cli,
        app_hint: None,
        caller: Some(format!("pid 4242 {path}")),
    }
}

/// Tenant `acme` with two connections, `crm` and `mail`.
fn setup(v: &Vault) -> (TenantId, ConnectionId, ConnectionId) {
    let t = acme(v);
    let app = t
        .add_provider_app(public_app("idp", Default::default()), &cli())
        .unwrap();
    let crm = t
        .store_connection(new_connection(&app.id, "crm"), tokens("1"), &cli())
        .unwrap();
    let mail = t
        .store_connection(new_connection(&app.id, "mail"), tokens("2"), &cli())
        .unwrap();
    (t.tenant.id.clone(), crm.id, mail.id)
}

fn take(v: &Vault, t: &TenantId, c: &ConnectionId, actor: &Actor) -> crate::error::Result<String> {
    let scope = v.tenant(t)?;
    let h = scope.access_token(
        c,
        Duration::from_secs(1),
        &Deadline::within(Duration::from_secs(5)),
        actor,
    )?;
    Ok(h.token.expose().to_owned())
}

fn count(v: &Vault, kind: EventKind) -> i64 {
    v.conn()
        .query_row(
            "SELECT count(*) FROM events WHERE kind = ?1",
            [kind.as_str()],
            |r| r.get(0),
        )
        .unwrap()
}

fn listed(paths: &[&str]) -> Rule {
    Rule::new(
        Mode::Listed,
        &paths.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
    )
    .unwrap()
}

#[test]
fn listed_programs_get_tokens_and_others_are_refused_and_recorded() {
    let (_d, _kc, v) = temp_vault();
    let (t, crm, mail) = setup(&v);
    assert_eq!(
        take(&v, &t, &crm, &program("/opt/any")).unwrap(),
        "at-1",
        "any by default"
    );
    v.set_hand_out_rule(&t, Some(&crm), Some(listed(&["/opt/sync"])), &cli())
        .unwrap();
    assert_eq!(count(&v, EventKind::PolicyChanged), 1);
    assert_eq!(take(&v, &t, &crm, &program("/opt/sync")).unwrap(), "at-1");
    let e = take(&v, &t, &crm, &program("/opt/evil")).unwrap_err();
    assert!(matches!(e, Error::HandOutRefused(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("/opt/evil (pid 4242)") && text.contains("not a listed program"),
        "{text}"
    );
    assert!(
        text.contains("grantkeeper policy set acme/crm listed"),
        "{text}"
    );
    assert!(!text.contains("at-1"));
    // The refusal is in the history with the program and the reason; no hand-out was.
    let (caller, detail): (String, String) = v
        .conn()
        .query_row(
            "SELECT caller, detail FROM events WHERE kind = 'hand_out_refused'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(caller, "pid 4242 /opt/evil");
    assert!(
        detail.contains("not a listed program") && detail.contains("listed"),
        "{detail}"
    );
    assert_eq!(count(&v, EventKind::HandedOut), 2);
    // An unidentified caller is refused too; the other connection still follows `any`.
    let unknown = Actor {
        caller: Some("pid 7".into()),
        ..program("/x")
    };
    assert!(take(&v, &t, &crm, &unknown).is_err());
    assert_eq!(take(&v, &t, &mail, &program("/opt/evil")).unwrap(), "at-2");
    // The window's own acts are not gated.
    assert!(take(&v, &t, &crm, &Actor::new(ActorKind::App)).is_ok());
}

#[test]
fn tenant_default_applies_unless_the_connection_has_its_own_rule() {
    let (_d, _kc, v) = temp_vault();
    let (t, crm, mail) = setup(&v);
    v.set_hand_out_rule(&t, None, Some(listed(&["/opt/sync"])), &cli())
        .unwrap();
    v.set_hand_out_rule(&t, Some(&mail), Some(Rule::any()), &cli())
        .unwrap();
    assert!(take(&v, &t, &crm, &program("/opt/other")).is_err());
    assert!(take(&v, &t, &mail, &program("/opt/other")).is_ok());
    // Removing the connection's rule brings back the tenant default.
    let p = v.set_hand_out_rule(&t, Some(&mail), None, &cli()).unwrap();
    assert!(p.connections.is_empty());
    assert!(take(&v, &t, &mail, &program("/opt/other")).is_err());
    assert_eq!(v.hand_out_policy(&t).unwrap(), p);
}

#[test]
fn bad_rules_are_refused_with_what_to_do() {
    let e = Rule::new(Mode::Listed, &[]).unwrap_err().to_string();
    assert!(e.contains("--allow"), "{e}");
    let e = Rule::new(Mode::Listed, &["python3".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("absolute"), "{e}");
    assert!(Rule::new(Mode::Listed, &["/usr/../etc/x".into()]).is_err());
}

/// The stored row, to put back later.
fn row(v: &Vault, t: &TenantId) -> (i64, String, Vec<u8>) {
    v.conn()
        .query_row(
            "SELECT version, body, mac FROM hand_out_policies WHERE tenant_id = ?1",
            [t.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

fn put_back(v: &Vault, t: &TenantId, (version, body, mac): &(i64, String, Vec<u8>)) {
    v.conn()
        .execute(
            "INSERT OR REPLACE INTO hand_out_policies (tenant_id, version, body, mac) VALUES (?1, ?2, ?3, ?4)",
            params![t.as_str(), version, body, mac],
        )
        .unwrap();
}

fn assert_fails_closed(v: &Vault, t: &TenantId, c: &ConnectionId, why: &str) {
    let before = count(v, EventKind::HandOutRefused);
    let e = take(v, t, c, &program("/opt/sync")).unwrap_err();
    assert!(matches!(e, Error::Tampered(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("changed outside Grantkeeper") && text.contains(why),
        "{text}"
    );
    assert!(text.contains("grantkeeper policy set acme"), "{text}");
    assert_eq!(
        count(v, EventKind::HandOutRefused),
        before + 1,
        "the refusal is recorded"
    );
    assert!(v.hand_out_policy(t).is_err());
}

#[test]
fn an_edited_row_fails_closed_until_set_again() {
    let (_d, _kc, v) = temp_vault();
    let (t, crm, _) = setup(&v);
    v.set_hand_out_rule(&t, None, Some(listed(&["/opt/sync"])), &cli())
        .unwrap();
    let (version, body, mac) = row(&v, &t);
    // Loosen it: the tenant default becomes `any`, MAC kept.
    let loose = body.replace("\"listed\"", "\"any\"");
    assert_ne!(loose, body);
    put_back(&v, &t, &(version, loose, mac.clone()));
    assert_fails_closed(&v, &t, &crm, "does not authenticate");
    // A higher version with the old MAC does not authenticate either.
    put_back(&v, &t, &(version + 5, body, mac));
    assert_fails_closed(&v, &t, &crm, "does not authenticate");
    // Setting it again restores hand-outs, and the event says what it replaced.
    v.set_hand_out_rule(&t, None, Some(listed(&["/opt/sync"])), &cli())
        .unwrap();
    assert!(take(&v, &t, &crm, &program("/opt/sync")).is_ok());
    let detail: String = v
        .conn()
        .query_row(
            "SELECT detail FROM events WHERE kind = 'policy_changed' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.contains("\"replaced_changed_outside\":true"),
        "{detail}"
    );
}

#[test]
fn an_older_row_put_back_fails_closed_even_in_a_new_process() {
    let (dir, kc, v) = temp_vault();
    let (t, crm, _) = setup(&v);
    v.set_hand_out_rule(&t, Some(&crm), Some(Rule::any()), &cli())
        .unwrap();
    let old = row(&v, &t);
    v.set_hand_out_rule(&t, Some(&crm), Some(listed(&["/opt/sync"])), &cli())
        .unwrap();
    put_back(&v, &t, &old);
    assert_fails_closed(&v, &t, &crm, "older record");
    drop(v);
    // A process that never saw the newer row learns its version from the keychain.
    let v = Vault::open(&home(&dir), kc).unwrap();
    assert_fails_closed(&v, &t, &crm, "older record");
}

#[test]
fn a_deleted_row_fails_closed_even_in_a_new_process() {
    let (dir, kc, v) = temp_vault();
    let (t, crm, mail) = setup(&v);
    v.set_hand_out_rule(&t, Some(&crm), Some(listed(&["/opt/sync"])), &cli())
        .unwrap();
    v.conn()
        .execute("DELETE FROM hand_out_policies", [])
        .unwrap();
    assert_fails_closed(&v, &t, &crm, "deleted");
    drop(v);
    let v = Vault::open(&home(&dir), kc).unwrap();
    assert_fails_closed(&v, &t, &crm, "deleted");
    // Never a silent `any`: the connection without a rule of its own is refused too.
    assert!(take(&v, &t, &mail, &program("/opt/other")).is_err());
    // Another tenant, never given a policy, is not affected.
    let other = v.create_tenant("Beta", Some("beta"), "", &cli()).unwrap();
    assert!(v.hand_out_policy(&other.id).unwrap().default.is_none());
}

#[test]
fn a_crash_between_row_and_keychain_leaves_a_usable_policy() {
    let (_d, kc, v) = temp_vault();
    let (t, crm, _) = setup(&v);
    let entry = crate::keychain::EntryName::master_key(v.id());
    let before = crate::keychain::Keychain::get(&*kc, &entry)
        .unwrap()
        .unwrap();
    v.set_hand_out_rule(&t, Some(&crm), Some(listed(&["/opt/sync"])), &cli())
        .unwrap();
    // The keychain as if the process died after the row's commit.
    crate::keychain::Keychain::set(&*kc, &entry, &before).unwrap();
    let v2 = Vault::open(v.home(), kc.clone()).unwrap();
    assert!(take(&v2, &t, &crm, &program("/opt/sync")).is_ok());
    assert!(take(&v2, &t, &crm, &program("/opt/other")).is_err());
}

fn window(
    answer: impl Fn(Question) -> bool + Send + Sync + 'static,
    home: &std::path::Path,
) -> CancelToken {
    let stop = CancelToken::default();
    let (h, s) = (home.to_owned(), stop.clone());
    std::thread::spawn(move || ask::serve(&h, Arc::new(answer), &s).unwrap());
    for _ in 0..200 {
        if std::os::unix::net::UnixStream::connect(ask::socket_path(home)).is_ok() {
            return stop;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the window's socket did not appear");
}

#[test]
fn ask_is_answered_by_the_window_and_refused_without_one() {
    let (_d, _kc, v) = temp_vault();
    let (t, crm, _) = setup(&v);
    v.set_hand_out_rule(
        &t,
        Some(&crm),
        Some(Rule::new(Mode::Ask, &[]).unwrap()),
        &cli(),
    )
    .unwrap();
    let e = take(&v, &t, &crm, &program("/opt/sync"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no Grantkeeper window is running"), "{e}");
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    let stop = window(
        move |q| {
            let allow = q.program.as_deref() == Some("/opt/sync");
            seen.lock().unwrap().push(q);
            allow
        },
        v.home(),
    );
    assert_eq!(take(&v, &t, &crm, &program("/opt/sync")).unwrap(), "at-1");
    let e = take(&v, &t, &crm, &program("/opt/evil"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("denied it in the window"), "{e}");
    let mut asked = asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2);
    // The window waits as long as the hand-out has left (5 s here), no longer.
    let wait = asked[0].wait();
    assert!(
        wait > Duration::from_secs(4) && wait <= Duration::from_secs(5),
        "{wait:?}"
    );
    asked[0].wait_ms = 0;
    assert_eq!(
        asked[0],
        Question {
            tenant: "acme".into(),
            connection: "crm".into(),
            program: Some("/opt/sync".into()),
            pid: Some(4242),
            wait_ms: 0,
        }
    );
    assert_eq!(count(&v, EventKind::HandOutRefused), 2);
    stop.cancel();
}

#[test]
fn an_unanswered_question_times_out_as_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let stop = window(
        |_| {
            std::thread::sleep(Duration::from_secs(2));
            true
        },
        dir.path(),
    );
    let q = Question {
        tenant: "acme".into(),
        connection: "crm".into(),
        program: None,
        pid: None,
        wait_ms: 300,
    };
    let started = std::time::Instant::now();
    let e = ask::ask_window(dir.path(), &q).unwrap_err();
    assert!(e.contains("nobody answered"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    stop.cancel();
}

#[test]
fn programs_are_read_back_from_the_history_caller() {
    let me = Program::of_pid(std::process::id());
    assert!(me.exe.is_some());
    assert_eq!(Program::from_caller(&me.to_caller()), Some(me.clone()));
    assert_eq!(
        Program::from_caller("pid 12"),
        Some(Program { pid: 12, exe: None })
    );
    assert_eq!(Program::from_caller("someone"), None);
    // A peer running this same binary (the command line asking the agent) stands for the
    // program that ran it.
    let parent = std::os::unix::process::parent_id();
    assert_eq!(
        Program::agent_peer(std::process::id()),
        Program::of_pid(parent)
    );
    assert_eq!(Program::asking(), Program::of_pid(parent));
    assert_eq!(
        parent_of(std::process::id()),
        Some(std::os::unix::process::parent_id())
    );
}
