//! The WebKitGTK environment of the window, set before any window exists. The benchmark's blank
//! window (`examples/blank_window.rs`) includes this file, so the floor it measures has the same.

/// Sets what is not set explicitly already.
pub fn configure() {
    // WebKitGTK's DMA-BUF renderer (software GL where there is no GPU, as under Xvfb) costs this
    // table UI about 130 MB more memory and slower paints than the older path, measured by
    // scripts/bench-app; it is also a known cause of blank windows on some GPUs.
    default_env("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    // JavaScriptCore's generational collector promotes what survives a young collection, and
    // what it promotes is freed only by a full collection, which an idle window may not run
    // for a long time. Each list load of 10,000 connections leaves megabytes of parsed rows
    // that survive a young collection made mid-load, so the window kept them: every collection
    // full instead keeps it 6 to 14 MB smaller at idle after many loads with no slower views
    // (scripts/bench-app, against a run with the variable set to 0). The web process inherits
    // this environment.
    default_env("JSC_alwaysDoFullCollection", "1");
}

/// Sets `name` to `value` unless it is set: an explicit setting wins.
fn default_env(name: &str, value: &str) {
    if std::env::var_os(name).is_none() {
        std::env::set_var(name, value);
    }
}
