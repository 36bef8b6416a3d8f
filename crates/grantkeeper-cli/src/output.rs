//! Human tables or JSON, one choice per invocation. Output is plain: no colors or other terminal
//! escapes, whatever the terminal or `NO_COLOR` say, and control characters that came from
//! providers or users (an account name holding an escape sequence) are replaced before printing.

use std::io::Write;

use serde_json::Value;

use crate::exit::Failure;

/// Where command results go.
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether JSON was asked for.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints one record: JSON, or the human line.
    pub fn value<T: serde::Serialize>(
        &self,
        v: &T,
        human: impl FnOnce() -> String,
    ) -> Result<(), Failure> {
        if self.json {
            return emit(&format!("{}\n", to_json(v)));
        }
        let line = human();
        if line.is_empty() {
            return Ok(());
        }
        emit(&format!("{line}\n"))
    }

    /// Prints a confirmation.
    pub fn message(&self, msg: &str) -> Result<(), Failure> {
        if self.json {
            emit(&format!(
                "{}\n",
                serde_json::json!({ "ok": true, "message": msg })
            ))
        } else {
            emit(&format!("{msg}\n"))
        }
    }

    /// Prints rows: a JSON array, or an aligned table.
    pub fn table<T: serde::Serialize>(
        &self,
        rows: &[T],
        headers: &[&str],
        cells: impl Fn(&T) -> Vec<String>,
    ) -> Result<(), Failure> {
        if self.json {
            return emit(&format!("{}\n", to_json(&rows)));
        }
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| cells(r).iter().map(|c| one_line(c)).collect())
            .collect();
        let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
        for row in &body {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut text = String::new();
        let mut line = |cells: Vec<String>| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            text.push_str(parts.join("  ").trim_end());
            text.push('\n');
        };
        line(headers.iter().map(|h| h.to_string()).collect());
        for row in body {
            line(row);
        }
        emit(&text)
    }
}

/// Writes `text` to stdout, with control characters other than line ends and tabs replaced.
/// A stdout that cannot be written (a closed pipe) is a failure, not a panic.
pub fn emit(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(plain(text).as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::other(format!("cannot write to standard output: {e}")))
}

/// Writes a progress note or prompt to stderr (never the failure line, see [`report`]).
/// A stderr that cannot be written is ignored.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", plain(text));
}

/// Text safe for a terminal: tabs, `\n` and `\r\n` stay; every other control character
/// (ESC of an escape sequence, a lone CR, C1 controls) becomes U+FFFD.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' => out.push(c),
            '\r' if chars.peek() == Some(&'\n') => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Prints the failure as the one `grantkeeper: …` line on stderr (line breaks and control
/// characters of provider messages flattened) and returns its exit code.
pub fn report(f: &Failure) -> u8 {
    use std::io::Write;
    let line = one_line(&f.message);
    let _ = writeln!(std::io::stderr().lock(), "grantkeeper: {}", line.trim());
    f.code
}

/// Text for one line: line breaks and tabs become spaces, other control characters U+FFFD.
pub fn one_line(text: &str) -> String {
    plain(&text.replace("\r\n", " ").replace(['\n', '\t'], " "))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(plain("a\tb\nc\r\n"), "a\tb\nc\r\n");
        assert_eq!(
            plain("\u{1b}[31mred\u{1b}[0m"),
            "\u{FFFD}[31mred\u{FFFD}[0m"
        );
        assert_eq!(plain("over\rwrite"), "over\u{FFFD}write");
        assert_eq!(plain("c1\u{9b}31m"), "c1\u{FFFD}31m");
        assert_eq!(
            one_line("two\nlines\r\nthree\u{7}"),
            "two lines three\u{FFFD}"
        );
    }
}
