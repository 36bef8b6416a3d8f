//! "Ask" hand-outs: the window answers the hand-out policy's questions (see
//! `grantkeeper_core::policy::ask`). Each question is shown as a dialog (`hand-out-question`);
//! the user's Allow once or Deny comes back through `answer_hand_out`; no answer within the
//! asker's wait (the question's `wait_ms`) is a Deny.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::paths;
use grantkeeper_core::policy::ask::{self, Question};
use serde::Serialize;
use tauri::{AppHandle, Emitter, State};
use ts_rs::TS;

/// Questions waiting for the user, by id.
#[derive(Default)]
pub struct Questions {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Sender<bool>>>,
}

/// One question as the window receives it (the `hand-out-question` event).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct HandOutAsked {
    /// Its id, for `answer_hand_out`.
    #[ts(type = "number")]
    pub id: u64,
    /// What is asked.
    pub question: Question,
}

/// Serves the questions while the window is open.
pub fn start(app: AppHandle, questions: Arc<Questions>, stop: &CancelToken) {
    let Some(home) = paths::default_home() else {
        return;
    };
    let stop = stop.clone();
    std::thread::spawn(move || {
        let answer = move |question: Question| {
            let id = questions.next.fetch_add(1, Ordering::Relaxed);
            // A little longer than the asker, whose own timeout then decides (and says so).
            let wait = question.wait() + Duration::from_millis(500);
            let (tx, rx) = channel();
            lock(&questions).insert(id, tx);
            let shown = app.emit("hand-out-question", HandOutAsked { id, question });
            let allow = shown.is_ok() && rx.recv_timeout(wait).unwrap_or(false);
            lock(&questions).remove(&id);
            if !allow {
                let _ = app.emit("hand-out-question-closed", id);
            }
            allow
        };
        if let Err(e) = ask::serve(&home, Arc::new(answer), &stop) {
            eprintln!("grantkeeper: the window cannot answer hand-out questions: {e}");
        }
    });
}

fn lock(q: &Questions) -> std::sync::MutexGuard<'_, HashMap<u64, Sender<bool>>> {
    q.waiting.lock().unwrap_or_else(|p| p.into_inner())
}

/// The user's answer to question `id`: allow this one hand-out, or deny it.
#[tauri::command]
pub fn answer_hand_out(
    questions: State<'_, Arc<Questions>>,
    id: u64,
    allow: bool,
) -> Result<(), String> {
    match lock(&questions).remove(&id) {
        Some(tx) => {
            let _ = tx.send(allow);
            Ok(())
        }
        None => Err("this question was already answered or timed out".into()),
    }
}
