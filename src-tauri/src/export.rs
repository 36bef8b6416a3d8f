//! Exporting the grant review: the native save dialog asks where, the core writes the file.

use std::path::PathBuf;

use grantkeeper_core::model::now_ms;
use grantkeeper_core::report::{ReportFormat, ReviewFilter};
use grantkeeper_core::timefmt::format_rfc3339;
use serde::Serialize;
use tauri::AppHandle;
use tauri_plugin_dialog::DialogExt;
use ts_rs::TS;

use crate::actions::app_actor;
use crate::state::{with_vault, CmdResult, CommandError};

/// Where an export was written.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ExportResult {
    /// The file.
    pub path: String,
    /// Grants in it.
    pub rows: u32,
}

/// Test builds only: answer the save dialog with this folder and the suggested file name (a
/// native dialog cannot be clicked over WebDriver). Release builds always ask.
#[cfg(debug_assertions)]
const TEST_ANSWER_ENV: &str = "GK_TEST_SAVE_DIALOG_DIR";

/// Asks where to save the review (the native save dialog, in the Downloads folder with a dated
/// name), then the core writes it there, recorded in the usage history. `None`: the user
/// cancelled the dialog; nothing was written or recorded.
#[tauri::command]
pub async fn export_review(
    app: AppHandle,
    filter: ReviewFilter,
    format: ReportFormat,
) -> CmdResult<Option<ExportResult>> {
    let asker = app.clone();
    let chosen = tauri::async_runtime::spawn_blocking(move || ask_where(&asker, format))
        .await
        .map_err(|e| CommandError::new(format!("internal error: {e}")))?;
    let Some(path) = chosen else {
        return Ok(None);
    };
    with_vault(app, move |v| {
        let rows = v.save_review(&filter, format, &path, &app_actor("grant review export"))?;
        Ok(Some(ExportResult {
            path: path.display().to_string(),
            rows: u32::try_from(rows).unwrap_or(u32::MAX),
        }))
    })
    .await
}

/// The file the user chose in the save dialog (blocks until it closes).
fn ask_where(app: &AppHandle, format: ReportFormat) -> Option<PathBuf> {
    let (ext, kind) = match format {
        ReportFormat::Csv => ("csv", "CSV"),
        ReportFormat::Json => ("json", "JSON"),
    };
    let stamp = format_rfc3339(now_ms())
        .replace([':', '-'], "")
        .replace('T', "-");
    let name = format!("grantkeeper-review-{}.{ext}", &stamp[..15.min(stamp.len())]);
    ask_save_path(app, "Save grant review", &name, (kind, ext))
}

/// Where to save a file named `name` by default (the native save dialog, in the Downloads
/// folder, offering `filter`: a kind's name and extension); blocks until it closes. `None`:
/// cancelled.
pub(crate) fn ask_save_path(
    app: &AppHandle,
    title: &str,
    name: &str,
    filter: (&str, &str),
) -> Option<PathBuf> {
    #[cfg(debug_assertions)]
    if let Some(dir) = std::env::var_os(TEST_ANSWER_ENV) {
        return Some(PathBuf::from(dir).join(name));
    }
    let mut dialog = app
        .dialog()
        .file()
        .set_title(title)
        .set_file_name(name)
        .add_filter(filter.0, &[filter.1]);
    if let Some(dir) = dirs::download_dir().or_else(dirs::home_dir) {
        dialog = dialog.set_directory(dir);
    }
    dialog.blocking_save_file()?.into_path().ok()
}
