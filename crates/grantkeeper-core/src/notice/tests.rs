//! Notices: each condition is notified once, again only after it cleared and came back, and no
//! notice holds a token.

use super::*;
use crate::audit::{EventKind, NewEvent};
use crate::test_support::{acme_crm, cli, temp_vault};

struct One {
    _dir: tempfile::TempDir,
    vault: Vault,
    tenant: TenantId,
    conn: ConnectionId,
}

fn one() -> One {
    let (dir, _kc, vault) = temp_vault();
    let (tenant, conn) = acme_crm(&vault, "secret1");
    One {
        _dir: dir,
        vault,
        tenant,
        conn,
    }
}

impl One {
    fn set(&self, sql: &str) {
        self.vault
            .conn()
            .execute(
                &format!("UPDATE connections SET {sql} WHERE id = ?1"),
                [self.conn.as_str()],
            )
            .unwrap();
    }

    fn take(&self) -> Vec<Notice> {
        let notices = self.vault.take_notices().unwrap();
        for n in &notices {
            let text = format!("{n:?}");
            assert!(!text.contains("secret1"), "a token in {text}");
        }
        notices
    }
}

#[test]
fn re_consent_is_notified_once_and_again_after_it_came_back() {
    let s = one();
    assert_eq!(s.take(), vec![], "a healthy grant");
    s.set("status = 'needs_reconsent'");
    let n = s.take();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].condition, NoticeCondition::NeedsReconsent);
    assert_eq!(n[0].summary, "Re-consent needed: acme/crm");
    assert_eq!(n[0].tenant_id, s.tenant);
    assert_eq!(n[0].connection_id, s.conn);
    assert_eq!(s.take(), vec![], "already notified");
    assert_eq!(s.take(), vec![], "still already notified");
    s.set("status = 'active'");
    assert_eq!(s.take(), vec![], "cleared");
    s.set("status = 'needs_reconsent'");
    assert_eq!(s.take().len(), 1, "it came back");
}

#[test]
fn a_refresh_token_ending_within_the_set_days_is_notified() {
    let s = one();
    let now = now_ms();
    s.set(&format!(
        "refresh_expires_at = {}, refresh_hard_expires_at = {}",
        now + 60 * DAY,
        now + 3 * DAY + 3_600_000
    ));
    s.vault
        .set_notice_settings(NoticeSettings { expiring_days: 2 })
        .unwrap();
    assert_eq!(s.take(), vec![], "4 days away, notified within 2");
    s.vault
        .set_notice_settings(NoticeSettings::default())
        .unwrap();
    assert_eq!(s.vault.notice_settings().unwrap().expiring_days, 7);
    let n = s.take();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].condition, NoticeCondition::RefreshExpiring);
    assert_eq!(n[0].summary, "Refresh token expiring: acme/crm");
    assert!(
        n[0].body.starts_with("Its refresh token ends in 4 days ("),
        "{}",
        n[0].body
    );
    assert_eq!(s.take(), vec![]);
    s.set("has_refresh_token = 0");
    assert_eq!(s.take(), vec![], "no refresh token, nothing to end");
}

#[test]
fn repeated_refresh_failures_and_other_flags_are_notified() {
    let s = one();
    let now = now_ms();
    let failures: Vec<NewEvent> = (1..=3)
        .map(|m| {
            NewEvent::new(EventKind::RefreshFailed, &cli())
                .at(now - (4 - m) * 60_000)
                .tenant(&s.tenant)
                .connection(&s.conn)
                .detail(serde_json::json!({ "class": "transient", "error": "timeout" }))
        })
        .collect();
    s.vault.record_events(&failures).unwrap();
    let n = s.take();
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        n[0].condition,
        NoticeCondition::Flag(AnomalyKind::RefreshFailures)
    );
    assert_eq!(n[0].summary, "Refreshes failing: acme/crm");
    assert!(n[0].body.starts_with("3 refreshes failed in a row since "));
    assert_eq!(s.take(), vec![]);
    s.set("status = 'revoked'");
    assert_eq!(s.take(), vec![], "nothing about a revoked grant");
}
