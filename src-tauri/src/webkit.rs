//! The WebKitGTK environment of the window, set before any window exists. The benchmark's blank
//! window (`examples/blank_window.rs`) includes this file, so the floor it measures has the same.

/// Sets what is not set explicitly already.
pub fn configure() {
    // WebKitGTK's DMA-BUF renderer (software GL where there is no GPU, as under Xvfb) costs this
    // table UI about 130 MB more memory and slower paints than the older path, measured by
    // scripts/bench-app; it is also a known cause of blank windows on some GPUs. An explicit
    // setting wins.
    if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
        std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
    }
}
