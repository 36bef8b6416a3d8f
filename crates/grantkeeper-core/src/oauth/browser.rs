//! Opening the system browser: `$BROWSER` first (the Linux convention: a `:`-separated list of
//! commands, `%s` standing for the URL), else the platform's opener. Never an embedded webview.

use std::process::{Command, Stdio};

use super::OAuthError;

/// Opens `url` in the user's browser without waiting for it.
pub fn open(url: &str) -> Result<(), OAuthError> {
    if let Some(list) = std::env::var_os("BROWSER").filter(|v| !v.is_empty()) {
        let list = list.to_string_lossy().into_owned();
        let mut last_err = String::new();
        for cmd in list.split(':').filter(|c| !c.trim().is_empty()) {
            match spawn_browser(cmd, url) {
                Ok(()) => return Ok(()),
                Err(e) => last_err = format!("$BROWSER '{cmd}': {e}"),
            }
        }
        return Err(OAuthError::Browser(last_err));
    }
    open::that_detached(url).map_err(|e| OAuthError::Browser(e.to_string()))
}

fn spawn_browser(cmd: &str, url: &str) -> std::io::Result<()> {
    let mut words = cmd
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if words.is_empty() {
        return Err(std::io::Error::other("empty command"));
    }
    if words.iter().any(|w| w.contains("%s")) {
        for w in &mut words {
            *w = w.replace("%s", url);
        }
    } else {
        words.push(url.to_owned());
    }
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Reap it whenever it exits; the sign-in does not wait for the browser.
    std::thread::spawn(move || child.wait());
    Ok(())
}
