//! The WebKitGTK environment of the window, set before any window exists. The benchmark's blank
//! window (`examples/blank_window.rs`) includes this file, so the floor it measures has the same.

/// Sets what is not set explicitly already.
pub fn configure() {
    // WebKitGTK's DMA-BUF renderer (software GL where there is no GPU, as under Xvfb) costs this
    // table UI about 130 MB more memory and slower paints than the older path, measured by
    // scripts/bench-app; it is also a known cause of blank windows on some GPUs. An explicit
    // setting wins.
    set_default("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    // JavaScriptCore collects garbage on a timer once script stops allocating; its default delay
    // grows with how little was allocated (0.0003125 % CPU per MB), so after the window replaced
    // a 10,000-connection list or opened a history, tens of MB of garbage stayed in the idle web
    // process. At 0.03 a few MB allocated bring the full collection within a second of going
    // quiet, still capped at JavaScriptCore's own 5 % CPU (collectionTimerMaxPercentCPU).
    set_default("JSC_percentCPUPerMBForFullTimer", "0.03");
}

fn set_default(key: &str, value: &str) {
    if std::env::var_os(key).is_none() {
        std::env::set_var(key, value);
    }
}
