// Grantkeeper's HTTPS relay page, for providers that refuse http://127.0.0.1 redirect URIs
// (Slack, Intuit production). Host this folder on any static HTTPS host and register its URL as
// the redirect URI. The page forwards the authorization response (code, state, iss, …) to the
// Grantkeeper listener on this computer, whose port is the suffix of `state` ("<random>~<port>").
// It sends nothing anywhere else and keeps nothing.
(function () {
  "use strict";
  var query = window.location.search;
  var params = new URLSearchParams(query);
  var state = params.get("state") || "";
  var match = /~(\d{1,5})$/.exec(state);
  var port = match ? Number(match[1]) : 0;
  var pasteBox = document.getElementById("paste");
  var urlField = document.getElementById("url");
  urlField.value = window.location.href;
  document.getElementById("copy").addEventListener("click", function () {
    urlField.select();
    if (navigator.clipboard) navigator.clipboard.writeText(urlField.value);
  });
  if (!params.has("code") && !params.has("error")) {
    document.getElementById("title").textContent = "Nothing to relay";
    document.getElementById("message").textContent = "This page only forwards sign-in answers to Grantkeeper.";
    return;
  }
  if (port >= 1024 && port <= 65535) {
    window.location.replace("http://127.0.0.1:" + port + "/callback" + query);
    // If the app is not listening (another machine, timed out), offer the paste fallback.
    window.setTimeout(function () { pasteBox.hidden = false; }, 3000);
  } else {
    document.getElementById("title").textContent = "Paste this into Grantkeeper";
    document.getElementById("message").textContent = "Grantkeeper is waiting for this address.";
    pasteBox.hidden = false;
  }
})();
