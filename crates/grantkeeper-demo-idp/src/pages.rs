//! The consent page and the small result pages the demo provider shows in the browser.

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}
main{max-width:28rem;margin:4rem auto;background:#fff;border:1px solid #dde1e8;border-radius:12px;padding:2rem}
h1{font-size:1.3rem;margin:0 0 .5rem}p{line-height:1.5}ul{padding-left:1.2rem}li{margin:.3rem 0}
code{background:#eef0f4;padding:0 .25rem;border-radius:4px}.who{color:#58607a;font-size:.9rem}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}button{font:inherit;padding:.55rem 1.2rem;border-radius:8px;border:1px solid #c5cad6;background:#fff;cursor:pointer}
button.approve{background:#2f6fe4;border-color:#2f6fe4;color:#fff}";

/// The consent page for one authorization request.
pub fn consent(request_id: &str, client_id: &str, scopes: &[String], account: &str) -> String {
    let items: String = scopes
        .iter()
        .map(|s| format!("<li><code>{}</code></li>", esc(s)))
        .collect();
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Demo provider — consent</title>\
         <style>{STYLE}</style></head><body><main>\
         <h1>Grantkeeper demo provider</h1>\
         <p class=who>Signed in as <strong>{account}</strong></p>\
         <p>The application <code>{client}</code> asks for access to your demo account:</p>\
         <ul>{items}</ul>\
         <form method=post action=/authorize/decision>\
         <input type=hidden name=request value=\"{req}\">\
         <div class=actions>\
         <button class=approve type=submit name=decision value=approve id=approve>Approve</button>\
         <button type=submit name=decision value=deny id=deny>Deny</button>\
         </div></form></main></body></html>",
        account = esc(account),
        client = esc(client_id),
        req = esc(request_id),
    )
}

/// A page that explains a refused request (never redirected to an unchecked URI).
pub fn problem(message: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Demo provider</title>\
         <style>{STYLE}</style></head><body><main><h1>This request cannot be served</h1>\
         <p>{}</p></main></body></html>",
        esc(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_page_escapes_what_the_request_carries() {
        let page = consent("r\"1", "<script>", &["a<b".into()], "ada");
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a&lt;b"));
        assert!(page.contains("value=\"r&quot;1\""));
    }
}
