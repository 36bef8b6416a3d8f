//! Each flag on a seeded history: it fires on its pattern and stays quiet on normal use.

use chrono::{Duration as Days, Local, NaiveTime, TimeZone};

use super::*;
use crate::audit::{Actor, ActorKind, EventKind, NewEvent};
use crate::model::Endpoints;
use crate::test_support::{acme, acme_crm, cli, new_connection, public_app, temp_vault, tokens};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// `days_ago` days before today, at `hour`:`minute` local time.
fn local(days_ago: i64, hour: u32, minute: u32) -> UnixMillis {
    let date = Local::now().date_naive() - Days::days(days_ago);
    let at = date.and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap());
    Local
        .from_local_datetime(&at)
        .earliest()
        .unwrap()
        .timestamp_millis()
}

fn program(path: &str) -> Actor {
    let mut a = Actor::new(ActorKind::Agent);
    a.caller = Some(format!("pid 4242 {path}"));
    a
}

struct Seeded {
    _dir: tempfile::TempDir,
    vault: Vault,
    tenant: TenantId,
    conn: ConnectionId,
}

impl Seeded {
    /// A connection used normally for 21 days: working hours (09:00–16:59 local), 6 hand-outs an
    /// hour by two programs, a refresh each hour.
    fn normal() -> Self {
        let (dir, _kc, vault) = temp_vault();
        let (tenant, conn) = acme_crm(&vault, "a");
        let s = Self {
            _dir: dir,
            vault,
            tenant,
            conn,
        };
        let mut events = Vec::new();
        for day in (0..21).rev() {
            for hour in 9..17 {
                for k in 0..6 {
                    let who = if k % 2 == 0 {
                        "/usr/bin/python3"
                    } else {
                        "/usr/bin/node"
                    };
                    events.push((EventKind::HandedOut, program(who), local(day, hour, k * 9)));
                }
                events.push((EventKind::Refreshed, cli(), local(day, hour, 55)));
            }
        }
        let now = s.now();
        s.record(
            events
                .into_iter()
                .filter(|(_, _, at)| *at <= now)
                .map(|(kind, actor, at)| s.event(kind, &actor, at))
                .collect(),
        );
        s
    }

    fn event(&self, kind: EventKind, actor: &Actor, at: UnixMillis) -> NewEvent {
        NewEvent::new(kind, actor)
            .at(at)
            .tenant(&self.tenant)
            .connection(&self.conn)
    }

    fn record(&self, events: Vec<NewEvent>) {
        self.vault.record_events(&events).unwrap();
    }

    /// Today at 16:30 local: the seeded working day is under way.
    fn now(&self) -> UnixMillis {
        local(0, 16, 30)
    }

    fn flags(&self) -> Vec<Anomaly> {
        self.vault
            .anomalies_at(&ConnectionFilter::default(), None, self.now())
            .unwrap()
    }

    fn kinds(&self) -> Vec<AnomalyKind> {
        self.flags().into_iter().map(|a| a.kind).collect()
    }
}

#[test]
fn a_normal_history_raises_no_flag() {
    let s = Seeded::normal();
    assert_eq!(s.flags(), vec![]);
}

#[test]
fn a_burst_far_above_the_busiest_hour_is_flagged() {
    let s = Seeded::normal();
    // Three times the usual busiest hour (6) is 18, under the minimum of 20: not yet a burst.
    s.record(
        (0..14)
            .map(|k| {
                s.event(
                    EventKind::HandedOut,
                    &program("/usr/bin/python3"),
                    local(0, 16, k),
                )
            })
            .collect(),
    );
    assert_eq!(s.kinds(), vec![]);
    s.record(
        (0..40)
            .map(|k| {
                s.event(
                    EventKind::HandedOut,
                    &program("/usr/bin/python3"),
                    local(0, 16, 15 + k / 4),
                )
            })
            .collect(),
    );
    let flags = s.flags();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].kind, AnomalyKind::Burst);
    assert_eq!(flags[0].since, local(0, 16, 0));
    assert!(
        flags[0]
            .explanation
            .starts_with("58 hand-outs in the hour from ")
            && flags[0]
                .explanation
                .ends_with("its busiest hour in the 14 days before had 6."),
        "{}",
        flags[0].explanation
    );
}

#[test]
fn a_program_never_seen_before_is_flagged() {
    let s = Seeded::normal();
    let at = local(1, 11, 12);
    s.record(vec![s.event(
        EventKind::HandedOut,
        &program("/usr/bin/curl"),
        at,
    )]);
    let flags = s.flags();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].kind, AnomalyKind::NewProgram);
    assert_eq!(flags[0].since, at);
    assert!(
        flags[0]
            .explanation
            .starts_with("/usr/bin/curl took a token for the first time on ")
            && flags[0]
                .explanation
                .ends_with("before that only /usr/bin/node and /usr/bin/python3 had."),
        "{}",
        flags[0].explanation
    );
}

#[test]
fn use_at_an_unusual_hour_is_flagged() {
    let s = Seeded::normal();
    s.record(
        (0..3)
            .map(|k| {
                s.event(
                    EventKind::HandedOut,
                    &program("/usr/bin/python3"),
                    local(0, 3, 10 + k),
                )
            })
            .collect(),
    );
    let flags = s.flags();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].kind, AnomalyKind::OffHours);
    assert!(
        flags[0].explanation.starts_with(
            "3 hand-outs in the last 24 hours at 03:00–04:00, hours that saw under 1% of its "
        ) && flags[0].explanation.contains(" earlier hand-outs"),
        "{}",
        flags[0].explanation
    );
}

#[test]
fn repeated_refresh_failures_are_flagged_until_one_succeeds() {
    let s = Seeded::normal();
    let fail = |m| {
        s.event(EventKind::RefreshFailed, &cli(), local(0, 16, m))
            .detail(serde_json::json!({ "class": "needs_reconsent", "error": "invalid_grant" }))
    };
    s.record(vec![fail(1), fail(2)]);
    assert_eq!(s.kinds(), vec![], "two failures are not yet a pattern");
    s.record(vec![fail(3)]);
    let flags = s.flags();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].kind, AnomalyKind::RefreshFailures);
    assert_eq!(flags[0].since, local(0, 16, 1));
    assert!(flags[0]
        .explanation
        .starts_with("3 refreshes failed in a row since "));
    assert!(flags[0]
        .explanation
        .contains("(last: the provider refused the grant)"));
    s.record(vec![s.event(EventKind::Refreshed, &cli(), local(0, 16, 4))]);
    assert_eq!(s.kinds(), vec![]);
}

#[test]
fn repeated_refused_hand_outs_are_flagged_for_24_hours() {
    let s = Seeded::normal();
    let refused = |days_ago, hour, m| {
        s.event(EventKind::HandOutRefused, &program("/tmp/dropper"), local(days_ago, hour, m))
            .detail(serde_json::json!({ "mode": "listed", "reason": "/tmp/dropper is not a listed program" }))
    };
    // Two refusals today and older ones are not yet a pattern.
    s.record(vec![
        refused(3, 10, 0),
        refused(3, 10, 1),
        refused(0, 14, 5),
        refused(0, 15, 5),
    ]);
    assert_eq!(
        s.kinds(),
        vec![],
        "two refusals within 24 hours are not yet a pattern"
    );
    s.record(vec![refused(0, 16, 5)]);
    let flags = s.flags();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].kind, AnomalyKind::RefusedHandOuts);
    assert_eq!(flags[0].since, local(0, 14, 0));
    assert!(
        flags[0]
            .explanation
            .starts_with("The hand-out policy refused 3 hand-outs in the last 24 hours, the first in the hour from "),
        "{}",
        flags[0].explanation
    );
    // A day later the flag is gone again.
    let later = s
        .vault
        .anomalies_at(&ConnectionFilter::default(), None, s.now() + 2 * DAY)
        .unwrap();
    assert!(
        !later.iter().any(|a| a.kind == AnomalyKind::RefusedHandOuts),
        "{later:?}"
    );
}

#[test]
fn scopes_added_at_re_consent_are_flagged_for_30_days() {
    let s = Seeded::normal();
    let reconsent = |at| {
        s.event(EventKind::Consented, &cli(), at)
            .detail(serde_json::json!({
                "reconsent": true, "scopes_granted": ["read", "files.write", "admin"],
                "scopes_added": ["files.write", "admin"], "scopes_dropped": []
            }))
    };
    // A re-consent without new scopes is no flag.
    s.record(vec![s
        .event(EventKind::Consented, &cli(), local(3, 10, 0))
        .detail(
            serde_json::json!({ "reconsent": true, "scopes_added": [], "scopes_dropped": [] }),
        )]);
    assert_eq!(s.kinds(), vec![]);
    s.record(vec![reconsent(local(2, 10, 0))]);
    let flags = s.flags();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0].kind, AnomalyKind::ScopesAdded);
    assert!(flags[0]
        .explanation
        .ends_with("added 2 scopes: files.write, admin."));
    let later = s
        .vault
        .anomalies_at(
            &ConnectionFilter::default(),
            None,
            local(2, 10, 0) + 31 * DAY,
        )
        .unwrap();
    assert!(
        later.iter().all(|a| a.kind != AnomalyKind::ScopesAdded),
        "{later:?}"
    );
}

#[test]
fn an_active_grant_unused_for_30_days_is_flagged() {
    let now = local(0, 12, 0);
    let subject = |active, last_used_at| Subject {
        id: ConnectionId::generate(),
        tenant_id: TenantId::generate(),
        target: "acme/crm".into(),
        active,
        created_at: now - 90 * DAY,
        last_used_at,
    };
    let quiet = flags(&subject(true, Some(now - 29 * DAY)), None, &[], now);
    assert_eq!(quiet, vec![]);
    let unused = flags(&subject(true, Some(now - 45 * DAY)), None, &[], now);
    assert_eq!(unused.len(), 1);
    assert_eq!(unused[0].kind, AnomalyKind::Unused);
    assert!(unused[0]
        .explanation
        .starts_with("Not used for 45 days (last hand-out "));
    let never = flags(&subject(true, None), None, &[], now);
    assert!(never[0]
        .explanation
        .starts_with("Never used in the 90 days since it was connected on "));
    assert_eq!(
        flags(&subject(false, None), None, &[], now),
        vec![],
        "not when revoked"
    );
}

#[test]
fn the_vault_flags_an_unused_grant_and_not_a_revoked_one() {
    let s = Seeded::normal();
    let later = s.now() + 40 * DAY;
    let flags = s
        .vault
        .anomalies_at(&ConnectionFilter::default(), None, later)
        .unwrap();
    assert_eq!(
        flags.iter().map(|a| a.kind).collect::<Vec<_>>(),
        vec![AnomalyKind::Unused]
    );
    s.vault
        .tenant(&s.tenant)
        .unwrap()
        .revoke(&s.conn, &cli())
        .unwrap();
    assert_eq!(
        s.vault
            .anomalies_at(&ConnectionFilter::default(), None, later)
            .unwrap(),
        vec![]
    );
}

#[test]
fn profiles_fold_only_new_events_and_go_with_their_tenant() {
    let s = Seeded::normal();
    let seeded: i64 = s
        .vault
        .conn()
        .query_row(
            "SELECT count(*) FROM events WHERE connection_id IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    {
        let conn = s.vault.conn();
        assert_eq!(
            crate::audit::rollup::catch_up(&conn).unwrap() as i64,
            seeded
        );
    }
    s.flags();
    {
        let conn = s.vault.conn();
        assert_eq!(crate::audit::rollup::catch_up(&conn).unwrap(), 0);
    }
    s.record(vec![s.event(
        EventKind::HandedOut,
        &program("/usr/bin/python3"),
        local(0, 16, 20),
    )]);
    {
        let conn = s.vault.conn();
        assert_eq!(crate::audit::rollup::catch_up(&conn).unwrap(), 1);
        let programs: i64 = conn
            .query_row("SELECT count(*) FROM usage_programs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(programs, 2);
    }
    // Without the record of how far they were folded, the profiles are rebuilt, not doubled.
    let before = crate::audit::rollup::profiles(&s.vault.conn(), None).unwrap();
    s.vault
        .conn()
        .execute("DELETE FROM meta WHERE key = 'usage_through'", [])
        .unwrap();
    assert_eq!(
        crate::audit::rollup::profiles(&s.vault.conn(), None).unwrap(),
        before
    );
    s.vault.delete_tenant(&s.tenant, &cli()).unwrap();
    let conn = s.vault.conn();
    for table in ["usage_profiles", "usage_programs"] {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table} keeps nothing of a deleted tenant");
    }
}

#[test]
fn a_program_is_named_by_its_path_else_by_front_end_and_hint() {
    use crate::audit::rollup::program;
    assert_eq!(
        program(
            Some(ActorKind::Agent),
            None,
            Some("pid 42 /usr/bin/python3")
        ),
        "/usr/bin/python3"
    );
    assert_eq!(
        program(Some(ActorKind::Agent), None, Some("pid 42 /opt/my app/run")),
        "/opt/my app/run"
    );
    assert_eq!(
        program(Some(ActorKind::Cli), Some("sync"), Some("pid 42")),
        "the command line (hint \"sync\")"
    );
    assert_eq!(program(Some(ActorKind::App), None, None), "the window");
    assert_eq!(HOUR * 24, DAY);
}

#[test]
fn the_review_filters_by_flag_kind_or_any_flag() {
    use crate::report::{FlagFilter, ReviewFilter};
    let (_dir, _kc, vault) = temp_vault();
    let t = acme(&vault);
    let app = t
        .add_provider_app(public_app("idp", Endpoints::default()), &cli())
        .unwrap();
    let crm = t
        .store_connection(new_connection(&app.id, "crm"), tokens("a"), &cli())
        .unwrap();
    t.store_connection(new_connection(&app.id, "erp"), tokens("b"), &cli())
        .unwrap();
    let now = now_ms();
    let failures: Vec<NewEvent> = (1..=3)
        .map(|m| {
            NewEvent::new(EventKind::RefreshFailed, &cli())
                .at(now - (4 - m) * 60_000)
                .tenant(&t.tenant.id)
                .connection(&crm.id)
                .detail(serde_json::json!({ "class": "transient", "error": "timeout" }))
        })
        .collect();
    vault.record_events(&failures).unwrap();
    let names = |flag| {
        let filter = ReviewFilter {
            flag,
            ..ReviewFilter::default()
        };
        let rows = vault.grant_review(&filter).unwrap();
        rows.into_iter().map(|r| r.connection).collect::<Vec<_>>()
    };
    assert_eq!(names(None), vec!["crm", "erp"]);
    assert_eq!(names(Some(FlagFilter::Any)), vec!["crm"]);
    let failing = Some(FlagFilter::Kind(AnomalyKind::RefreshFailures));
    assert_eq!(names(failing), vec!["crm"]);
    assert_eq!(
        names(Some(FlagFilter::Kind(AnomalyKind::Burst))),
        Vec::<String>::new()
    );
}
