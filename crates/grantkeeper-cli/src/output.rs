//! Human tables or JSON, one choice per invocation.

use serde_json::Value;

/// Where command results go.
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Prints one record: JSON, or the human line.
    pub fn value<T: serde::Serialize>(&self, v: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", to_json(v));
        } else {
            let line = human();
            if !line.is_empty() {
                println!("{line}");
            }
        }
    }

    /// Prints a confirmation.
    pub fn message(&self, msg: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "ok": true, "message": msg }));
        } else {
            println!("{msg}");
        }
    }

    /// Prints rows: a JSON array, or an aligned table.
    pub fn table<T: serde::Serialize>(
        &self,
        rows: &[T],
        headers: &[&str],
        cells: impl Fn(&T) -> Vec<String>,
    ) {
        if self.json {
            println!("{}", to_json(&rows));
            return;
        }
        let body: Vec<Vec<String>> = rows.iter().map(cells).collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in &body {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            println!("{}", parts.join("  ").trim_end());
        };
        line(headers.iter().map(|h| h.to_string()).collect());
        for row in body {
            line(row);
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// "in 5 min", "3 h ago"; "-" when unknown.
pub fn relative(at: Option<i64>, now: i64) -> String {
    let Some(at) = at else { return "-".into() };
    let diff = at - now;
    let abs = diff.unsigned_abs();
    let text = match abs {
        a if a >= 86_400_000 => format!("{} d", a / 86_400_000),
        a if a >= 3_600_000 => format!("{} h", a / 3_600_000),
        a if a >= 60_000 => format!("{} min", a / 60_000),
        a => format!("{} s", a / 1000),
    };
    if diff >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}
