//! "Ask" hand-outs: how the command line or the agent reaches the window to ask the user.
//!
//! The window, while it runs, serves a Unix socket beside the agent's (`ask-<vault>.sock` in
//! `$XDG_RUNTIME_DIR/grantkeeper/`, a 0700 folder; mode 0600). A process that needs an answer
//! connects, checks with `SO_PEERCRED` that the window is this user's, sends one [`Question`]
//! line and waits up to [`ASK_TIMEOUT`] for one [`Answer`] line. No socket, no answer in time,
//! or a window of another user is a refusal that says what to do. The window checks its peers
//! the same way and refuses other users' processes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Error, Result};
use crate::oauth::loopback::CancelToken;

/// The longest a hand-out waits for the user's answer before it is refused; a hand-out with
/// less time left (`grantkeeper token --timeout`) waits only that long.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// One question to the user: may this program take this connection's token?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export, rename = "HandOutQuestion")]
pub struct Question {
    /// The tenant's slug.
    pub tenant: String,
    /// The connection's name.
    pub connection: String,
    /// The program's executable path, when known.
    pub program: Option<String>,
    /// Its process id, when known.
    pub pid: Option<u32>,
    /// How long the asker waits for the answer, in milliseconds: the window's dialog closes as
    /// a Deny when it is over.
    #[serde(default = "default_wait_ms")]
    #[ts(type = "number")]
    pub wait_ms: u64,
}

impl Question {
    /// How long the window waits for the user: the asker's wait, at most [`ASK_TIMEOUT`].
    pub fn wait(&self) -> Duration {
        let most = u64::try_from(ASK_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.wait_ms.clamp(1, most))
    }
}

fn default_wait_ms() -> u64 {
    u64::try_from(ASK_TIMEOUT.as_millis()).unwrap_or(u64::MAX)
}

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Allow this one hand-out.
    pub allow: bool,
}

/// The socket the window answers on, for the vault in `home`.
pub fn socket_path(home: &Path) -> PathBuf {
    crate::paths::socket(home, "ask")
}

/// Asks the window, waiting [`Question::wait`]; `Ok(answer)`, or `Err(why no answer came)` in
/// words for the refusal.
pub fn ask_window(home: &Path, q: &Question) -> Result<bool, String> {
    let wait = q.wait();
    let path = socket_path(home);
    let no_window =
        || "no Grantkeeper window is running to ask the user (open it and try again)".to_owned();
    let stream = UnixStream::connect(&path).map_err(|_| no_window())?;
    match crate::private::peer(&stream) {
        Some((uid, _)) if uid == crate::private::euid() => {}
        _ => return Err("the process answering for the window is not this user's".into()),
    }
    let mut line = serde_json::to_string(q).expect("questions serialize");
    line.push('\n');
    (&stream)
        .write_all(line.as_bytes())
        .map_err(|_| no_window())?;
    let _ = stream.set_read_timeout(Some(wait));
    let mut reader = BufReader::new((&stream).take(4096));
    let mut answer = String::new();
    match reader.read_line(&mut answer) {
        Ok(n) if n > 0 => serde_json::from_str::<Answer>(&answer)
            .map(|a| a.allow)
            .map_err(|_| "the window gave no valid answer".to_owned()),
        Ok(_) => Err("the window closed without answering".into()),
        Err(_) => Err(format!(
            "nobody answered in the window within {} s",
            wait.as_secs_f64().round().max(1.0)
        )),
    }
}

/// What answers a question (the window shows it and waits for the user); `false` on timeout.
pub type Answerer = dyn Fn(Question) -> bool + Send + Sync;

/// Serves questions until `stop` is cancelled, each on its own thread; processes of other
/// users are refused. Refuses to start when another window answers on the socket.
pub fn serve(home: &Path, answer: Arc<Answerer>, stop: &CancelToken) -> Result<()> {
    let path = socket_path(home);
    if let Some(dir) = path.parent().filter(|d| *d != home) {
        crate::private::ensure_socket_dir(dir)?;
    }
    if UnixStream::connect(&path).is_ok() {
        return Err(Error::Invalid(format!(
            "another window already answers hand-out questions ({})",
            path.display()
        )));
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| Error::io(&path, e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(&path, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(&path, e))?;
    while !stop.is_cancelled() {
        match listener.accept() {
            Ok((stream, _)) => {
                let answer = answer.clone();
                std::thread::spawn(move || serve_one(stream, &*answer));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(Error::io(&path, e));
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

fn serve_one(stream: UnixStream, answer: &Answerer) {
    match crate::private::peer(&stream) {
        Some((uid, _)) if uid == crate::private::euid() => {}
        other => {
            tracing::warn!(peer = ?other, "refused a hand-out question from another user");
            return;
        }
    }
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    if BufReader::new((&stream).take(8192))
        .read_line(&mut line)
        .is_err()
    {
        return;
    }
    let Ok(q) = serde_json::from_str::<Question>(&line) else {
        return;
    };
    let mut out = serde_json::to_string(&Answer { allow: answer(q) }).expect("answers serialize");
    out.push('\n');
    let _ = (&stream).write_all(out.as_bytes());
}
