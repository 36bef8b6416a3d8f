use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::audit::ActorKind;
use crate::keychain::MemoryKeychain;
use crate::model::{AccountIdentity, Endpoints, ExpirySource, ProviderAppId};
use crate::secret::{AccessToken, RefreshToken, TokenSet};
use crate::status::{GrantState, StatusStep};
use crate::{NewConnection, NewProviderApp};

fn review_row(risk: Option<Risk>, status: ConnectionStatus) -> GrantReportRow {
    GrantReportRow {
        tenant: "acme".into(),
        tenant_name: "Acme".into(),
        connection: "crm".into(),
        connection_id: ConnectionId::generate(),
        provider_app: "idp".into(),
        preset: None,
        account: None,
        account_org: None,
        status,
        status_detail: None,
        status_steps: vec![],
        scopes: vec![],
        highest_risk: risk,
        scopes_granted_reported: true,
        consented_at: 0,
        consented_by: None,
        access_expires_at: None,
        has_refresh_token: true,
        refresh_expires_at: None,
        refresh_hard_expires_at: None,
        last_refresh_at: None,
        last_used_at: None,
    }
}

#[test]
fn review_filters_combine() {
    const DAY: i64 = 86_400_000;
    let now = 100 * DAY;
    let any = ReviewFilter::default();
    let high = ReviewFilter {
        high_risk: true,
        ..ReviewFilter::default()
    };
    let unused = ReviewFilter {
        unused_days: Some(30),
        ..ReviewFilter::default()
    };
    let expiring = ReviewFilter {
        refresh_expiring_days: Some(7),
        ..ReviewFilter::default()
    };
    let reconsent = ReviewFilter {
        needs_reconsent: true,
        ..ReviewFilter::default()
    };
    let mut row = review_row(Some(Risk::Medium), ConnectionStatus::Active);
    row.last_used_at = Some(now - 2 * DAY);
    assert!(any.matches(&row, now));
    assert!(!high.matches(&row, now), "medium is not high");
    assert!(!unused.matches(&row, now), "used two days ago");
    assert!(!expiring.matches(&row, now), "no refresh expiry known");
    assert!(!reconsent.matches(&row, now));

    let mut row = review_row(Some(Risk::High), ConnectionStatus::NeedsReconsent);
    row.consented_at = now - 40 * DAY;
    row.refresh_expires_at = Some(now + 30 * DAY);
    row.refresh_hard_expires_at = Some(now + 3 * DAY);
    assert!(high.matches(&row, now));
    assert!(
        unused.matches(&row, now),
        "never used, consented 40 days ago"
    );
    assert!(
        expiring.matches(&row, now),
        "the hard expiry is within 7 days"
    );
    assert!(reconsent.matches(&row, now));
    let all = ReviewFilter {
        high_risk: true,
        unused_days: Some(30),
        refresh_expiring_days: Some(7),
        needs_reconsent: true,
        tenant: None,
        flag: None,
    };
    assert!(all.matches(&row, now));
    row.last_used_at = Some(now - DAY);
    assert!(!all.matches(&row, now), "every condition must hold");
}

#[test]
fn csv_fields_are_quoted_and_neutralised() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field(""), "");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    assert_eq!(csv_field(" padded"), "\" padded\"");
    assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
    assert_eq!(csv_field("@sum"), "'@sum");
}

#[test]
fn report_rows_carry_scopes_with_risk_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), Arc::new(MemoryKeychain::default())).unwrap();
    let actor = Actor::new(ActorKind::Cli);
    let t = vault
        .create_tenant("Acme, Inc.", Some("acme"), "", &actor)
        .unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    let app = scope
        .add_provider_app(
            NewProviderApp {
                preset: Some("generic-oidc".into()),
                ..crate::test_support::public_app("google", Endpoints::default())
            },
            &actor,
        )
        .unwrap();
    scope
        .store_connection(
            NewConnection {
                name: "mail".into(),
                provider_app_id: app.id.clone(),
                account: AccountIdentity {
                    subject: Some("sub-1".into()),
                    username: Some("=ada@example.com".into()),
                    org_id: None,
                },
                scopes_requested: vec!["openid".into(), "offline_access".into()],
                scopes_granted: Some(vec!["openid".into(), "offline_access".into(), "x".into()]),
                consented_by: Some("ada".into()),
                access_expiry: Some((1_772_357_400_000, ExpirySource::Response)),
                refresh_expires_at: None,
                refresh_hard_expires_at: None,
                metadata: BTreeMap::new(),
                dpop_key: None,
            },
            TokenSet {
                access_token: AccessToken::new("at-secret-value"),
                refresh_token: Some(RefreshToken::new("rt-secret-value")),
                id_token: None,
            },
            &actor,
        )
        .unwrap();

    let rows = vault
        .export_grant_report(
            &ConnectionFilter {
                tenant: Some(t.id.clone()),
                status: None,
            },
            ReportFormat::Csv,
            &actor,
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.tenant.as_str(), r.connection.as_str()), ("acme", "mail"));
    assert_eq!(r.provider_app, "google");
    assert_eq!(r.account.as_deref(), Some("=ada@example.com"));
    let names: Vec<_> = r.scopes.iter().map(|s| s.scope.as_str()).collect();
    assert_eq!(names, ["openid", "offline_access", "x"]);
    assert_eq!(r.scopes[0].risk, Some(Risk::Low));
    assert!(r.scopes[2].granted && !r.scopes[2].requested);
    assert_eq!(r.scopes[2].risk, None, "unknown to the catalog");
    assert_eq!(r.highest_risk, Some(Risk::Medium));

    let csv = to_csv(&rows);
    let lines: Vec<_> = csv.split("\r\n").collect();
    assert_eq!(lines.len(), 3, "header, one row, and the final line end");
    assert_eq!(lines[0], CSV_COLUMNS.join(","));
    assert!(lines[1].starts_with("acme,\"Acme, Inc.\",mail,google,generic-oidc,'=ada@example.com,,active,openid offline_access,openid offline_access x,openid=low offline_access=medium x=?,medium,"), "{}", lines[1]);
    assert!(
        lines[1].contains(",2026-03-01T09:30:00Z,true,"),
        "{}",
        lines[1]
    );
    let json = serde_json::to_string(&rows).unwrap();
    for text in [&csv, &json] {
        assert!(!text.contains("secret-value"), "no token in the report");
    }

    // The export is in the history, with the tenant; the plain report is not.
    let last = &vault.recent_events(1).unwrap()[0];
    assert_eq!(last.kind, EventKind::Exported);
    assert_eq!(last.tenant_id.as_ref(), Some(&t.id));
    assert_eq!(last.detail.as_ref().unwrap()["format"], "csv");
    assert_eq!(last.detail.as_ref().unwrap()["rows"], 1);
    vault.grant_report(&ConnectionFilter::default()).unwrap();
    assert_eq!(vault.recent_events(1).unwrap()[0].seq, last.seq);
    assert_eq!(vault.newest_event_seq().unwrap(), last.seq);
    assert!(vault.verify_history().unwrap().is_intact());
}

#[test]
fn the_newest_event_number_moves_with_each_change_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), Arc::new(MemoryKeychain::default())).unwrap();
    assert_eq!(vault.newest_event_seq().unwrap(), 0);
    let actor = Actor::new(ActorKind::Cli);
    vault
        .create_tenant("acme", Some("acme"), "", &actor)
        .unwrap();
    let first = vault.newest_event_seq().unwrap();
    assert_eq!(first, vault.recent_events(1).unwrap()[0].seq);
    vault.list_tenants().unwrap();
    assert_eq!(vault.newest_event_seq().unwrap(), first);
    vault
        .create_tenant("globex", Some("globex"), "", &actor)
        .unwrap();
    assert!(vault.newest_event_seq().unwrap() > first);
}

#[test]
fn connection_rows_hold_what_the_list_shows_and_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), Arc::new(MemoryKeychain::default())).unwrap();
    let actor = Actor::new(ActorKind::Cli);
    let mut made = Vec::new();
    for (tenant, names) in [("beta", ["zeta", "alpha"]), ("acme", ["crm", "mail"])] {
        let t = vault
            .create_tenant(tenant, Some(tenant), "", &actor)
            .unwrap();
        let scope = vault.tenant(&t.id).unwrap();
        let app = scope
            .add_provider_app(
                crate::test_support::public_app("idp", Endpoints::default()),
                &actor,
            )
            .unwrap();
        for name in names {
            let c = scope
                .store_connection(
                    NewConnection {
                        name: name.into(),
                        provider_app_id: app.id.clone(),
                        account: AccountIdentity {
                            subject: Some(format!("sub-{name}")),
                            username: Some(format!("{name}@example.com")),
                            org_id: Some("org-1".into()),
                        },
                        scopes_requested: vec!["openid".into(), "offline_access".into()],
                        scopes_granted: None,
                        consented_by: Some("ada".into()),
                        access_expiry: Some((1_772_357_400_000, ExpirySource::Response)),
                        refresh_expires_at: Some(1_772_400_000_000),
                        refresh_hard_expires_at: Some(1_772_500_000_000),
                        metadata: BTreeMap::from([("instance_url".into(), "https://x".into())]),
                        dpop_key: None,
                    },
                    TokenSet {
                        access_token: AccessToken::new("at-secret-value"),
                        refresh_token: Some(RefreshToken::new("rt-secret-value")),
                        id_token: None,
                    },
                    &actor,
                )
                .unwrap();
            made.push((t.id.clone(), c));
        }
    }

    // Every connection, by tenant slug and name, each row the list's part of its connection.
    let rows = vault.connection_rows(&ConnectionFilter::default()).unwrap();
    let names: Vec<_> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["crm", "mail", "alpha", "zeta"]);
    for r in &rows {
        let (_, c) = made.iter().find(|(_, c)| c.id == r.id).unwrap();
        assert_eq!(r, &ConnectionRow::from(c.clone()));
        assert_eq!(
            r.account.subject.as_deref(),
            Some(&*format!("sub-{}", r.name))
        );
        assert_eq!(r.refresh_hard_expires_at, Some(1_772_500_000_000));
        assert!(r.has_refresh_token);
    }

    // One tenant's.
    let beta = &made[0].0;
    let only = vault
        .connection_rows(&ConnectionFilter {
            tenant: Some(beta.clone()),
            status: None,
        })
        .unwrap();
    assert_eq!(only.len(), 2);
    assert!(only.iter().all(|r| &r.tenant_id == beta));

    // What the detail view holds stays out, and so does every secret.
    let json = serde_json::to_string(&rows).unwrap();
    for absent in [
        "scopes",
        "metadata",
        "consented",
        "instance_url",
        "secret-value",
    ] {
        assert!(!json.contains(absent), "{absent} in {json}");
    }

    // In column form (as the window gets it): every row reads back the same, each tenant and
    // provider app id sent once, and nothing more than the rows held.
    let columns = ConnectionColumns::from(rows.clone());
    assert_eq!(columns.len(), rows.len());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(columns.row(i).as_ref(), Some(r));
    }
    assert_eq!(columns.row(rows.len()), None);
    assert_eq!(columns.row(rows.len() + 5), None);
    assert_eq!(columns.tenants.len(), 2);
    assert_eq!(columns.apps.len(), 2);
    assert_eq!(columns.step_start.len(), rows.len() + 1);
    let sent = serde_json::to_string(&columns).unwrap();
    for absent in [
        "scopes",
        "metadata",
        "consented",
        "instance_url",
        "secret-value",
    ] {
        assert!(!sent.contains(absent), "{absent} in {sent}");
    }
    assert!(ConnectionColumns::from(Vec::new()).is_empty());
}

#[test]
fn connection_columns_keep_each_rows_status_steps_and_ids() {
    let row = |tenant: &TenantId, app: &ProviderAppId, steps: Vec<StatusStep>| ConnectionRow {
        id: ConnectionId::generate(),
        tenant_id: tenant.clone(),
        provider_app_id: app.clone(),
        name: format!("c{}", steps.len()),
        account: AccountIdentity::default(),
        status: ConnectionStatus::Active,
        status_detail: None,
        status_steps: steps,
        access_expires_at: Some(5),
        has_refresh_token: false,
        refresh_expires_at: None,
        refresh_hard_expires_at: Some(9),
        last_used_at: None,
    };
    let step = |from, state| StatusStep {
        from,
        state,
        attention: state == GrantState::NeedsReconsent,
    };
    let (t1, t2) = (TenantId::generate(), TenantId::generate());
    let (a1, a2) = (ProviderAppId::generate(), ProviderAppId::generate());
    let rows = vec![
        row(
            &t1,
            &a1,
            vec![step(0, GrantState::Active), step(7, GrantState::Expiring)],
        ),
        row(&t2, &a2, vec![]),
        row(&t1, &a2, vec![step(3, GrantState::NeedsReconsent)]),
    ];
    let columns = ConnectionColumns::from(rows.clone());
    assert_eq!(columns.tenants, [t1, t2]);
    assert_eq!(columns.apps, [a1, a2]);
    assert_eq!(columns.tenant, [0, 1, 0]);
    assert_eq!(columns.app, [0, 1, 1]);
    assert_eq!(columns.step_start, [0, 2, 2, 3]);
    assert_eq!(columns.name.text, "c2c0c1");
    assert_eq!(columns.name.ends, [Some(2), Some(4), Some(6)]);
    assert_eq!(columns.subject.ends, [None, None, None]);
    let back: Vec<_> = (0..rows.len()).map(|i| columns.row(i).unwrap()).collect();
    assert_eq!(back, rows);
}
