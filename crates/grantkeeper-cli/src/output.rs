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
