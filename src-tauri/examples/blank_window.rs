//! A blank window on Grantkeeper's stack, for `scripts/bench-app`: the same Tauri, wry and
//! WebKitGTK build, the same window (label, title, size) from `tauri.conf.json` and the same
//! WebKit environment (`src/webkit.rs`), serving one empty page instead of the UI. Its memory is
//! the floor the app's window is measured against.
//!
//!   cargo build --release -p grantkeeper-app --example blank_window

use std::borrow::Cow;

use tauri::utils::assets::{AssetKey, AssetsIter, CspHash};

#[path = "../src/webkit.rs"]
mod webkit;

const PAGE: &[u8] =
    b"<!doctype html><html><head><meta charset=\"utf-8\"><title>Grantkeeper</title></head><body></body></html>";

/// The one page every window of the blank app loads.
struct BlankPage;

impl<R: tauri::Runtime> tauri::Assets<R> for BlankPage {
    fn get(&self, key: &AssetKey) -> Option<Cow<'_, [u8]>> {
        (key.as_ref().trim_start_matches('/') == "index.html").then_some(Cow::Borrowed(PAGE))
    }

    fn iter(&self) -> Box<AssetsIter<'_>> {
        Box::new(std::iter::once((
            Cow::Borrowed("/index.html"),
            Cow::Borrowed(PAGE),
        )))
    }

    fn csp_hashes(&self, _html_path: &AssetKey) -> Box<dyn Iterator<Item = CspHash<'_>> + '_> {
        Box::new(std::iter::empty())
    }
}

fn main() {
    webkit::configure();
    let mut context = tauri::generate_context!();
    context.set_assets(Box::new(BlankPage));
    tauri::Builder::default()
        .run(context)
        .expect("the blank window failed to start");
}
