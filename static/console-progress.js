// The console's integration page: while a session is open, poll its progress and move the bar;
// when it has ended, put the new status badge and reason in place without reloading the page.
(function () {
  var live = document.getElementById("sc-live");
  if (!live) return;
  var url = live.dataset.progressUrl, watched = Number(live.dataset.sessionId);
  var bar = document.getElementById("sc-progress-bar"), text = document.getElementById("sc-progress-text");
  var INTERVAL = 1500, failures = 0, timer = null;

  function showStatus(data) {
    var badge = document.querySelector("#sc-status-badge .sc-badge");
    if (badge) {
      badge.textContent = data.status_label;
      badge.style.background = data.status_colour;
    }
    var reason = document.getElementById("sc-status-reason");
    if (reason) reason.textContent = data.status_reason;
  }

  function showSession(session) {
    text.textContent = session.text;
    if (session.percent === null) {
      bar.removeAttribute("value");
    } else {
      bar.value = session.percent;
    }
    live.dataset.itemsSeen = session.items_seen;
  }

  function ended(session) {
    document.getElementById("sc-live-title").textContent = "Session " + session.id + " ended: " + session.state_label;
    bar.value = 100;
    live.classList.add("sc-live-ended");
    live.dataset.state = session.state;
    document.getElementById("sc-live-end").hidden = false;
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        var session = data.session;
        if (!session || session.id < watched) return schedule();
        showSession(session);
        if (session.open) return schedule();
        showStatus(data);
        ended(session);
      })
      .catch(function () {
        failures += 1;
        if (failures < 5) schedule();  // a few missed answers (a restart, the network) are not the end
        else text.textContent += " (live updates stopped: reload the page)";
      });
  }

  function schedule() {
    timer = setTimeout(poll, INTERVAL);
  }

  schedule();
})();
