//! `grantkeeper notifications`: what the window's desktop notifications warn about.

use clap::Args;
use grantkeeper_core::notice::NoticeSettings;

use crate::exit::Failure;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct NotificationsArgs {
    /// Warn when a refresh token ends within this many days (default 7).
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    expiring_days: Option<u32>,
}

pub fn notifications(args: &NotificationsArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let mut settings = vault.notice_settings()?;
    if let Some(days) = args.expiring_days {
        settings = NoticeSettings {
            expiring_days: days,
        };
        vault.set_notice_settings(settings)?;
    }
    out.value(&settings, || {
        format!(
            "The window notifies when a refresh token ends within {} days, a grant needs re-consent, refreshes keep failing, or a new anomaly flag appears.",
            settings.expiring_days
        )
    })
}
